//! The subject's own page (`/me`): a person signs in with one of their enrolled passkeys and
//! sees only their own account: the masked contacts of record and when each changed, their
//! passkeys (add, rename, remove), their other devices (rename, remove), their recovery codes (regenerate: shown once, never sent),
//! every case touching the account with "this was not me" on each, and the current probation.
//!
//! A session is one random token, hashed in the store under the subject (kind
//! [`SESSION`]; a new sign-in replaces the old one), bound to the passkey that opened it and
//! short-lived. It ends when that passkey stops being enrolled (an MFA reset), when the account
//! is held by the security team or not active, or at sign-out.
//!
//! Whatever the page enrols depends on the passkey the session was opened with: recovery codes
//! shown here and a passkey added here carry that passkey's takeover units (its device and how
//! it was enrolled), so a stolen passkey and the codes it mints count once, never twice. While
//! the account is on probation after a recovery, nothing that replaces or removes a way to sign
//! in can be done here (the recovery may not have been the person's): the help desk can.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use deskgate_audit::{AuditEvent, event};
use deskgate_core::{
    Action, AuthenticatorKind, Case, CaseState, Channel, Method, Subject, SubjectStatus,
    VerificationState, takeover,
};
use deskgate_store::{Actor, CaseFilter, Change, Credential};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AppError;
use crate::passkey_sign_in::Realm;
use crate::passkeys::{PasskeyPurpose, SUBJECT_PASSKEYS, StoredPasskey};
use crate::secrets;
use crate::service::{Provenance, Service};

mod devices;
mod provider_sign_in;
pub use devices::DeviceView;

type AppResult<T> = Result<T, AppError>;

/// The credential kind holding a subject's session on their own page.
pub const SESSION: &str = "my_account_session";
/// How long a session lasts from sign-in, whatever happens in it.
pub const SESSION_MINUTES: i64 = 15;
/// Cases shown in the history, newest first.
const HISTORY: u32 = 50;

/// The one answer for every failed sign-in to the own page: it does not say whether the account
/// exists, has passkeys, or is held.
pub fn sign_in_refused() -> AppError {
    AppError::unauthenticated_as(
        "sign_in_refused",
        "sign-in failed: check your user id or email, or use a passkey enrolled for it",
    )
}

fn no_session() -> AppError {
    AppError::unauthenticated_as(
        "no_session",
        "you are not signed in, or your session ended: sign in again",
    )
}

fn on_probation(until: DateTime<Utc>) -> AppError {
    AppError::forbidden_as(
        "on_probation",
        format!(
            "your account was recovered recently: until {} your passkeys and recovery codes can \
             be changed only through the help desk",
            until.format("%Y-%m-%d %H:%M UTC")
        ),
    )
}

fn passkey_needed() -> AppError {
    AppError::forbidden_as(
        "passkey_needed",
        "you signed in through your organisation's sign-in service: you can see your account and \
         report what was not you, but to change how you sign in, sign in here with a passkey",
    )
}

fn corrupt() -> AppError {
    AppError::internal("corrupt_credential", "the stored session is unreadable")
}

/// What the store keeps of a session.
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    token_hash: String,
    /// The authenticator id of the passkey that opened the session; `None` for a sign-in
    /// through the organisation's OpenID provider.
    #[serde(default)]
    passkey_id: Option<String>,
}

/// A live session on the own page.
pub struct MySession {
    pub subject: Subject,
    /// The passkey the session was opened with; `None` when it was opened through the
    /// organisation's OpenID provider (such a session sees and reports, it changes no way in).
    pub passkey_id: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// How a sign-in to the own page ended.
pub enum MySignIn {
    /// Signed in: the cookie value to hand the browser.
    SignedIn { cookie: String },
    /// Refused, with a short reason for the audit log (never shown: every refusal looks alike).
    Refused { reason: &'static str },
}

/// One contact of record as the page shows it.
pub struct ContactView {
    pub kind: String,
    pub masked: String,
    pub changed_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
}

/// One passkey as the page shows it.
pub struct PasskeyView {
    pub id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// How it was enrolled, in words.
    pub enrolled: String,
    /// The passkey this session was opened with (it cannot be removed from here).
    pub current: bool,
}

/// One case touching the account, with its verifications.
pub struct HistoryView {
    pub case_id: String,
    pub action: Action,
    pub channel: Channel,
    pub state: CaseState,
    pub opened_at: DateTime<Utc>,
    pub executed_at: Option<DateTime<Utc>>,
    /// `(method, outcome, when)` for each verification.
    pub verifications: Vec<(Method, VerificationState, DateTime<Utc>)>,
}

/// Everything the own page shows.
pub struct MyAccount {
    pub subject_id: String,
    pub display_name: String,
    pub contacts: Vec<ContactView>,
    pub passkeys: Vec<PasskeyView>,
    /// The authenticator app and push devices.
    pub devices: Vec<DeviceView>,
    pub recovery_codes_left: usize,
    pub recovery_codes_issued: Option<(DateTime<Utc>, String)>,
    pub probation_until: Option<DateTime<Utc>>,
    pub history: Vec<HistoryView>,
    pub session_expires_at: DateTime<Utc>,
}

fn session_cookie(subject_id: &str, token: &str) -> String {
    use base64::Engine;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(subject_id);
    format!("{id}.{token}")
}

fn parse_cookie(cookie: &str) -> Option<(String, &str)> {
    use base64::Engine;
    if cookie.len() > 512 {
        return None;
    }
    let (id, token) = cookie.split_once('.')?;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()?;
    let id = String::from_utf8(id).ok()?;
    (!id.is_empty() && !token.is_empty()).then_some((id, token))
}

fn subject_actor(subject_id: &str, auth: &str) -> Actor {
    Actor {
        id: subject_id.to_owned(),
        role: "subject".to_owned(),
        auth: auth.to_owned(),
    }
}

/// Whether the account may use its own page at all.
fn may_sign_in(subject: &Subject) -> bool {
    subject.status == SubjectStatus::Active && !subject.flagged
}

/// Whether a session opened with `passkey` (or through the provider) still holds for `subject`.
fn session_holds(subject: &Subject, passkey: Option<&str>) -> bool {
    may_sign_in(subject) && passkey.is_none_or(|id| passkey_listed(subject, id))
}

fn passkey_listed(subject: &Subject, id: &str) -> bool {
    subject
        .authenticators
        .iter()
        .any(|a| a.kind == AuthenticatorKind::Passkey && a.id == id)
}

impl Service {
    /// The subject a sign-in name stands for: their id, or their email of record exactly.
    pub(crate) async fn subject_named(&self, name: &str) -> AppResult<Option<Subject>> {
        let by_id = self.store.subject(name).await?;
        let wanted = name.trim().to_lowercase();
        let by_email = self
            .store
            .search_subjects(name, 5)
            .await?
            .into_iter()
            .find(|s| {
                s.contact(deskgate_core::ContactKind::Email)
                    .is_some_and(|c| c.reach() == wanted)
            });
        Ok(by_id.or(by_email))
    }

    /// The challenge for signing in to the own page as `name` (an id or an email of record);
    /// every name gets an answer of the same shape (see [`crate::passkey_sign_in`]).
    pub async fn my_sign_in_options(&self, name: &str) -> AppResult<Value> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(sign_in_refused());
        }
        let mut keys = Vec::new();
        if let Some(subject) = self.subject_named(name).await?
            && may_sign_in(&subject)
        {
            keys = self.usable_passkeys(&subject).await?;
        }
        self.sign_in_challenge(Realm::Subject, name, keys)
    }

    /// Checks the assertion against the ceremony the browser holds and opens a session bound to
    /// the passkey used, replacing any earlier session. A ceremony signs in once; only success
    /// is audited here (the caller audits refusals, within its limits).
    pub async fn my_sign_in(
        &self,
        name: &str,
        ceremony_token: &str,
        credential: &Value,
    ) -> AppResult<MySignIn> {
        let refused = |reason| Ok(MySignIn::Refused { reason });
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return refused("malformed");
        }
        let ceremony = match self.open_sign_in_ceremony(Realm::Subject, name, ceremony_token)? {
            Ok(ceremony) => ceremony,
            Err(reason) => return refused(reason),
        };
        let Some(subject) = self.subject_named(name).await? else {
            return refused("unknown_subject");
        };
        if !may_sign_in(&subject) {
            return refused("account_on_hold");
        }
        let (outcome, mut credentials) = self
            .check_passkey_assertion(
                &subject.id,
                PasskeyPurpose::SubjectSignIn,
                &ceremony.state,
                credential,
            )
            .await?;
        let passkey_id = match outcome {
            Ok(id) if passkey_listed(&subject, &id) => id,
            Ok(_) => return refused("passkey_not_enrolled"),
            Err(why) => {
                tracing::info!(subject = %subject.id, why, "own-page sign-in refused");
                return refused("assertion_refused");
            }
        };
        let now = self.now();
        let token = secrets::random_token();
        credentials.push(self.session_credential(&subject.id, &token, Some(&passkey_id), now)?);
        let committed = self
            .store
            .commit(Change {
                credentials,
                spent_sign_ins: vec![ceremony.spend],
                audit: vec![self.entry(
                    &subject_actor(&subject.id, "passkey"),
                    None,
                    AuditEvent::SubjectSignedIn(event::SubjectSignedIn {
                        subject_id: subject.id.clone(),
                        method: "passkey".to_owned(),
                        passkey_id,
                    }),
                )],
                ..Change::default()
            })
            .await;
        match committed {
            Ok(_) => Ok(MySignIn::SignedIn {
                cookie: session_cookie(&subject.id, &token),
            }),
            Err(deskgate_store::StoreError::Conflict(_)) => refused("ceremony_used"),
            Err(other) => Err(other.into()),
        }
    }

    fn session_credential(
        &self,
        subject_id: &str,
        token: &str,
        passkey_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> AppResult<Credential> {
        let record = SessionRecord {
            token_hash: secrets::token_hash(token),
            passkey_id: passkey_id.map(str::to_owned),
        };
        Ok(Credential {
            subject_id: subject_id.to_owned(),
            kind: SESSION.to_owned(),
            hash: serde_json::to_string(&record).map_err(|_| corrupt())?,
            created_at: now,
            expires_at: Some(now + Duration::minutes(SESSION_MINUTES)),
            used_at: None,
        })
    }

    /// Audits one refused sign-in to the own page in detail.
    pub async fn audit_my_sign_in_refusal(&self, name: &str, reason: &str) {
        let subject_id = match self.subject_named(name.trim()).await {
            Ok(found) => found.map(|s| s.id),
            Err(_) => None,
        };
        self.audit_sign_in_refusal(AuditEvent::SubjectSignInFailed(
            event::SubjectSignInFailed {
                method: "passkey".to_owned(),
                reason: reason.to_owned(),
                subject_id,
            },
        ))
        .await;
    }

    /// The live session behind a cookie, or `no_session`.
    pub async fn my_session(&self, cookie: &str) -> AppResult<MySession> {
        let (subject_id, token) = parse_cookie(cookie).ok_or_else(no_session)?;
        let now = self.now();
        let stored = self
            .store
            .credential(&subject_id, SESSION)
            .await?
            .filter(|c| c.used_at.is_none() && c.expires_at.is_some_and(|e| now < e))
            .ok_or_else(no_session)?;
        let record: SessionRecord = serde_json::from_str(&stored.hash).map_err(|_| corrupt())?;
        let presented = secrets::token_hash(token);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            presented.as_bytes(),
            record.token_hash.as_bytes(),
        )) {
            return Err(no_session());
        }
        let subject = self
            .store
            .subject(&subject_id)
            .await?
            .filter(|s| session_holds(s, record.passkey_id.as_deref()))
            .ok_or_else(no_session)?;
        Ok(MySession {
            subject,
            passkey_id: record.passkey_id,
            expires_at: stored.expires_at.unwrap_or(now),
        })
    }

    /// Ends the session (audited).
    pub async fn my_sign_out(&self, session: &MySession) -> AppResult<()> {
        let id = &session.subject.id;
        self.store
            .commit(Change {
                consume_credentials: vec![(id.clone(), SESSION.to_owned(), self.now())],
                audit: vec![self.entry(
                    &subject_actor(id, "own_page_session"),
                    None,
                    AuditEvent::SubjectSignedOut(event::SubjectSignedOut {
                        subject_id: id.clone(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// What the page shows the signed-in subject: their own account and nothing else.
    pub async fn my_account(&self, session: &MySession) -> AppResult<MyAccount> {
        let subject = &session.subject;
        let passkeys = self
            .usable_passkeys(subject)
            .await?
            .into_iter()
            .map(|p| PasskeyView {
                current: session.passkey_id.as_deref() == Some(p.authenticator_id.as_str()),
                enrolled: p.provenance.map(|v| v.shown_in).unwrap_or_else(|| {
                    "enrolled before Deskgate kept how passkeys were enrolled".to_owned()
                }),
                id: p.authenticator_id,
                label: p.label,
                created_at: p.created_at,
                last_used_at: p.last_used_at,
            })
            .collect();
        let issued = self.recovery_codes_issued(&subject.id).await?;
        Ok(MyAccount {
            subject_id: subject.id.clone(),
            display_name: subject.display_name.clone(),
            contacts: subject
                .contacts
                .iter()
                .map(|c| ContactView {
                    kind: format!("{:?}", c.kind).to_lowercase(),
                    masked: c.masked(),
                    changed_at: c.changed_at,
                    verified_at: c.verified_at,
                })
                .collect(),
            passkeys,
            devices: devices::devices(&subject.authenticators),
            recovery_codes_left: self.recovery_hashes(&subject.id).await?.len(),
            recovery_codes_issued: issued,
            probation_until: subject
                .probation_until
                .filter(|_| subject.on_probation(self.now())),
            history: self.my_history(&subject.id).await?,
            session_expires_at: session.expires_at,
        })
    }

    async fn my_history(&self, subject_id: &str) -> AppResult<Vec<HistoryView>> {
        let cases = self
            .store
            .list_cases(&CaseFilter {
                subject_id: Some(subject_id.to_owned()),
                limit: HISTORY,
                ..CaseFilter::default()
            })
            .await?;
        Ok(cases.iter().map(history_view).collect())
    }

    /// What is enrolled from this session depends on: the session's passkey and how it came to
    /// be.
    async fn session_provenance(&self, session: &MySession, what: &str) -> AppResult<Provenance> {
        let session_passkey = session.passkey_id.as_deref().ok_or_else(passkey_needed)?;
        let passkeys = self.usable_passkeys(&session.subject).await?;
        let used = passkeys
            .iter()
            .find(|p| p.authenticator_id == session_passkey)
            .ok_or_else(no_session)?;
        let mut units: BTreeSet<String> = [takeover::device(&used.authenticator_id)].into();
        match &used.provenance {
            Some(p) => units.extend(p.units.iter().cloned()),
            None => units.extend(Provenance::any_contact(self, &session.subject).units),
        }
        Ok(Provenance {
            shown_in: format!(
                "{what} on the own page, signed in with passkey \"{}\"",
                used.label
            ),
            units,
        })
    }

    /// The subject as stored now, while the session still holds: changes are made to this copy,
    /// read just before they are written, so a recovery that landed since the page loaded (an
    /// MFA reset removing passkeys) is not written back over.
    async fn fresh_subject(&self, session: &MySession) -> AppResult<Subject> {
        self.store
            .subject(&session.subject.id)
            .await?
            .filter(|s| session_holds(s, session.passkey_id.as_deref()))
            .ok_or_else(no_session)
    }

    /// Whether this session may add, replace or remove a way to sign in: only one opened with
    /// a passkey (someone who took over the account at the provider, as after a talked-into
    /// reset, must not mint codes or strip the owner's devices), and not on probation.
    fn may_change_ways_in(&self, session: &MySession) -> AppResult<()> {
        if session.passkey_id.is_none() {
            return Err(passkey_needed());
        }
        match session.subject.probation_until {
            Some(until) if session.subject.on_probation(self.now()) => Err(on_probation(until)),
            _ => Ok(()),
        }
    }

    /// New recovery codes for the signed-in subject, replacing every earlier one, shown once:
    /// never sent. Every contact of record is told.
    pub async fn my_new_recovery_codes(&self, session: &MySession) -> AppResult<Vec<String>> {
        self.may_change_ways_in(session)?;
        let provenance = self.session_provenance(session, "shown once").await?;
        let who = subject_actor(&session.subject.id, "own_page_session");
        let codes = self
            .issue_recovery_codes(&session.subject.id, &who, &provenance)
            .await?;
        self.tell_every_contact(
            &session.subject,
            "New recovery codes were created for your account on your own page; the old ones no \
             longer work. If this was not you, contact the security team at once.",
        )
        .await;
        Ok(codes)
    }

    async fn tell_every_contact(&self, subject: &Subject, body: &str) {
        for n in crate::notices::notice_to_every_contact(subject, "authenticator_notice", body) {
            if let Err(e) = self.delivery.send(&n).await {
                tracing::warn!(error = %e, "authenticator notice not delivered");
            }
        }
    }

    /// Starts adding a passkey from the own page.
    pub async fn my_passkey_options(&self, session: &MySession) -> AppResult<Value> {
        self.may_change_ways_in(session)?;
        let subject = &session.subject;
        self.passkey_registration_options(
            &subject.id,
            &subject.id,
            &subject.display_name,
            PasskeyPurpose::SubjectAdd,
            None,
        )
        .await
    }

    /// Completes adding a passkey: it joins the subject's passkeys with the session's
    /// provenance, audited; every contact of record is told.
    pub async fn my_add_passkey(
        &self,
        session: &MySession,
        ceremony_token: &str,
        credential: &Value,
        label: &str,
    ) -> AppResult<String> {
        self.may_change_ways_in(session)?;
        let label = checked_label(label)?;
        let (passkey, _) = self
            .finish_passkey_registration_for(
                &session.subject.id,
                PasskeyPurpose::SubjectAdd,
                ceremony_token,
                credential,
            )
            .await?;
        let provenance = self.session_provenance(session, "added").await?;
        let now = self.now();
        let mut subject = self.fresh_subject(session).await?;
        let (mut list, id) = self
            .enrol_passkey(&mut subject, passkey, provenance.clone(), now)
            .await?;
        relabel(&mut subject, &mut list, &id, &label);
        let added = AuditEvent::SubjectPasskeyAdded(event::SubjectPasskeyAdded {
            subject_id: subject.id.clone(),
            passkey_id: id.clone(),
            label,
            shown_in: provenance.shown_in,
            depends_on: provenance.units.into_iter().collect(),
        });
        self.commit_passkeys(&subject, &list, Some(PasskeyPurpose::SubjectAdd), added)
            .await?;
        self.tell_every_contact(
            &subject,
            "A new passkey was added to your account on your own page. If this was not you, \
             contact the security team at once.",
        )
        .await;
        Ok(id)
    }

    /// Renames one of the subject's passkeys.
    pub async fn my_rename_passkey(
        &self,
        session: &MySession,
        passkey_id: &str,
        label: &str,
    ) -> AppResult<()> {
        let label = checked_label(label)?;
        let mut subject = self.fresh_subject(session).await?;
        let mut list = self.owned_passkeys(&subject, passkey_id).await?;
        relabel(&mut subject, &mut list, passkey_id, &label);
        let renamed = AuditEvent::SubjectPasskeyRenamed(event::SubjectPasskeyRenamed {
            subject_id: subject.id.clone(),
            passkey_id: passkey_id.to_owned(),
            label,
        });
        self.commit_passkeys(&subject, &list, None, renamed).await
    }

    /// Removes one of the subject's passkeys, never the one signed in with; every contact of
    /// record is told.
    pub async fn my_remove_passkey(&self, session: &MySession, passkey_id: &str) -> AppResult<()> {
        self.may_change_ways_in(session)?;
        if session.passkey_id.as_deref() == Some(passkey_id) {
            return Err(AppError::invalid_as(
                "passkey_in_use",
                "you are signed in with this passkey: sign in with another one to remove it",
            ));
        }
        let mut subject = self.fresh_subject(session).await?;
        let mut list = self.owned_passkeys(&subject, passkey_id).await?;
        list.retain(|p| p.authenticator_id != passkey_id);
        subject
            .authenticators
            .retain(|a| !(a.kind == AuthenticatorKind::Passkey && a.id == passkey_id));
        let removed = AuditEvent::SubjectPasskeyRemoved(event::SubjectPasskeyRemoved {
            subject_id: subject.id.clone(),
            passkey_id: passkey_id.to_owned(),
        });
        self.commit_passkeys(&subject, &list, None, removed).await?;
        self.tell_every_contact(
            &subject,
            "A passkey was removed from your account on your own page. If this was not you, \
             contact the security team at once.",
        )
        .await;
        Ok(())
    }

    /// The subject's usable passkeys, when `passkey_id` is one of them.
    async fn owned_passkeys(
        &self,
        subject: &Subject,
        passkey_id: &str,
    ) -> AppResult<Vec<StoredPasskey>> {
        let list = self.usable_passkeys(subject).await?;
        if !list.iter().any(|p| p.authenticator_id == passkey_id) {
            return Err(AppError::not_found("passkey"));
        }
        Ok(list)
    }

    /// Writes the subject and their passkey list with one audit entry.
    async fn commit_passkeys(
        &self,
        subject: &Subject,
        list: &[StoredPasskey],
        ceremony: Option<PasskeyPurpose>,
        event: AuditEvent,
    ) -> AppResult<()> {
        let now = self.now();
        let consume_credentials = ceremony
            .map(|c| vec![(subject.id.clone(), c.kind(), now)])
            .unwrap_or_default();
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                credentials: vec![Self::passkeys_credential(
                    &subject.id,
                    SUBJECT_PASSKEYS,
                    list,
                    now,
                )?],
                consume_credentials,
                audit: vec![self.entry(
                    &subject_actor(&subject.id, "own_page_session"),
                    None,
                    event,
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// "This was not me" on one case of the signed-in subject's history: the same lock, flag,
    /// spending and alert as the emailed link. The session ends with it (the account is held).
    pub async fn my_not_me(&self, session: &MySession, case_id: &str) -> AppResult<Value> {
        let stored = self.load_case(case_id).await.map_err(|_| not_yours())?;
        if stored.case.subject_id != session.subject.id {
            return Err(not_yours());
        }
        let actor = subject_actor(&session.subject.id, "own_page_session");
        self.lock_for_not_me(&session.subject.id, case_id, &actor, None)
            .await
    }
}

fn not_yours() -> AppError {
    AppError::not_found("case")
}

fn checked_label(label: &str) -> AppResult<String> {
    let label = label.trim();
    let label = if label.is_empty() { "Passkey" } else { label };
    if label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "the name must be at most 64 printable characters",
        ));
    }
    Ok(label.to_owned())
}

fn relabel(subject: &mut Subject, list: &mut [StoredPasskey], id: &str, label: &str) {
    for p in list.iter_mut().filter(|p| p.authenticator_id == id) {
        p.label = label.to_owned();
    }
    for a in subject.authenticators.iter_mut().filter(|a| a.id == id) {
        a.label = label.to_owned();
    }
}

fn history_view(case: &Case) -> HistoryView {
    HistoryView {
        case_id: case.id.clone(),
        action: case.action,
        channel: case.channel,
        state: case.state,
        opened_at: case.opened_at,
        executed_at: case.executed_at,
        verifications: case
            .verifications
            .iter()
            .map(|v| (v.method, v.state, v.started_at))
            .collect(),
    }
}
