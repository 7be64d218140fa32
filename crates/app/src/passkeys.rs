//! Passkeys (WebAuthn), with `webauthn-rs` as the relying party: the subject's passkey as a
//! `device_of_record` verification (a single-use link to the trusted email of record opens a page
//! that asks the browser for an assertion), passkey enrolment with a temporary access pass, and
//! the building blocks staff sign-in uses.
//!
//! A passkey's public key is not secret; it is kept in the credentials store (kind `passkeys`
//! for a subject, `staff_passkeys` for a staff member's console passkeys, under their directory
//! person). The state between the two halves of a ceremony (the challenge) is kept server-side
//! as a credential of kind `passkey_ceremony/<purpose>`: bound to the hash of a random token (or
//! of the link that started it), short-lived, and consumed once by a conditional update.

use chrono::{DateTime, Duration, Utc};
use deskgate_audit::{AuditEvent, event};
use deskgate_core::{Authenticator, AuthenticatorKind, Subject};
use deskgate_store::{Actor, Change, Credential};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::error::AppError;
use crate::secrets;
use crate::service::Service;

type AppResult<T> = Result<T, AppError>;

/// The credential kind holding a subject's enrolled passkeys (public keys and counters).
pub const SUBJECT_PASSKEYS: &str = "passkeys";
/// The credential kind holding a staff member's console passkeys, under their directory person.
pub const STAFF_PASSKEYS: &str = "staff_passkeys";
/// How long the browser has between asking for a challenge and answering it.
const CEREMONY_MINUTES: i64 = 5;
/// At most this many passkeys per person.
const MAX_PASSKEYS: usize = 10;

/// What a ceremony is for; each purpose keeps its own pending challenge per person, so one
/// flow never consumes another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyPurpose {
    /// A help-desk verification on a case (the emailed link).
    Verify,
    /// A manager or owner vouching on the attestation page.
    Attest,
    /// Enrolment of a subject passkey with a temporary access pass.
    Enrol,
    /// A subject signing in to their own page.
    SubjectSignIn,
    /// A subject signed in to their own page adding another passkey.
    SubjectAdd,
    /// A staff member adding a console passkey.
    StaffRegister,
    /// A staff member signing in to the console.
    StaffSignIn,
}

impl PasskeyPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Attest => "attest",
            Self::Enrol => "enrol",
            Self::SubjectSignIn => "subject_sign_in",
            Self::SubjectAdd => "subject_add",
            Self::StaffRegister => "staff_register",
            Self::StaffSignIn => "staff_sign_in",
        }
    }

    pub(crate) fn kind(self) -> String {
        format!("passkey_ceremony/{}", self.as_str())
    }

    /// Which stored passkeys answer this purpose.
    fn store_kind(self) -> &'static str {
        match self {
            Self::StaffRegister | Self::StaffSignIn => STAFF_PASSKEYS,
            _ => SUBJECT_PASSKEYS,
        }
    }
}

/// One enrolled passkey as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The id of the matching entry in the subject's authenticators (subject passkeys), or a
    /// stable id for a staff passkey.
    pub authenticator_id: String,
    pub label: String,
    pub passkey: Passkey,
    /// The highest signature counter seen; a passkey that goes backwards may be a clone.
    #[serde(default)]
    pub sign_count: u32,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// How it was enrolled (for a subject's passkey, the pass that enrolled it); absent for
    /// passkeys enrolled before provenance was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::service::Provenance>,
}

/// A pending ceremony as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct Ceremony {
    /// Hash of the token the browser holds (or of the link that started the ceremony).
    token_hash: String,
    /// `PasskeyRegistration` or `PasskeyAuthentication`, serialised.
    state: Value,
    /// For enrolment: the hash of the temporary access pass that started it.
    #[serde(default)]
    pass_hash: Option<String>,
}

/// The result of checking an assertion. The ceremony is spent either way: commit
/// `consume` and `credentials` with the audit entry that records the outcome.
pub struct PasskeyCheck {
    /// `Ok(authenticator id)` when the assertion proved possession, else why not (no secret).
    pub outcome: Result<String, String>,
    /// The updated passkey list (counter, backup flags, last use), when it passed.
    pub credentials: Vec<Credential>,
    /// The ceremony to mark used, for [`Change::consume_credentials`].
    pub consume: (String, String, DateTime<Utc>),
}

fn unavailable(why: impl Into<String>) -> AppError {
    AppError::invalid_as("passkeys_unavailable", why.into())
}

fn no_challenge() -> AppError {
    AppError::conflict(
        "no_challenge",
        "no passkey challenge is pending for this request, or it expired; start again",
    )
}

fn corrupt() -> AppError {
    AppError::internal("corrupt_credential", "stored passkeys are unreadable")
}

/// The relying party for `public_url`: its host is the RP id, its origin the only origin. An IP
/// address is no RP id (browsers refuse it), so such a deployment has no passkeys.
pub fn relying_party(public_url: &str) -> AppResult<Webauthn> {
    let url = Url::parse(public_url.trim_end_matches('/'))
        .map_err(|_| unavailable("public_url is not a URL; passkeys need it"))?;
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|_| unavailable("public_url has no origin; passkeys need one"))?;
    let rp_id = origin.domain().ok_or_else(|| {
        unavailable("passkeys need public_url to name a host by domain name, not an IP address")
    })?;
    WebauthnBuilder::new(rp_id, &origin)
        .map_err(|_| unavailable("public_url cannot be a WebAuthn relying party"))?
        .rp_name("Deskgate")
        .build()
        .map_err(|_| unavailable("public_url cannot be a WebAuthn relying party"))
}

/// A stable WebAuthn user handle for a person: not their id itself (handles should not carry
/// personal data), but derived from it so every passkey of one person shares it.
fn user_handle(owner: &str, purpose: PasskeyPurpose) -> Uuid {
    let digest = Sha256::digest(format!("deskgate/{}/{owner}", purpose.store_kind()).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

fn credential_id(passkey: &Passkey) -> String {
    hex::encode(Sha256::digest(passkey.cred_id().as_slice()))
}

fn ct_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

impl Service {
    pub(crate) fn webauthn(&self) -> AppResult<Webauthn> {
        relying_party(&self.config.public_url)
    }

    /// Stored passkeys of `kind` under `owner` (a subject id).
    pub async fn stored_passkeys(&self, owner: &str, kind: &str) -> AppResult<Vec<StoredPasskey>> {
        match self.store.credential(owner, kind).await? {
            Some(c) if !c.hash.is_empty() => serde_json::from_str(&c.hash).map_err(|_| corrupt()),
            _ => Ok(Vec::new()),
        }
    }

    pub(crate) fn passkeys_credential(
        owner: &str,
        kind: &str,
        list: &[StoredPasskey],
        now: DateTime<Utc>,
    ) -> AppResult<Credential> {
        Ok(Credential {
            subject_id: owner.to_owned(),
            kind: kind.to_owned(),
            hash: serde_json::to_string(list).map_err(|_| corrupt())?,
            created_at: now,
            expires_at: None,
            used_at: None,
        })
    }

    /// The subject's passkeys that still count: those whose authenticator entry the directory
    /// still lists (an MFA reset removes the entries, and with them the passkeys).
    pub async fn usable_passkeys(&self, subject: &Subject) -> AppResult<Vec<StoredPasskey>> {
        let listed: Vec<&str> = subject
            .authenticators
            .iter()
            .filter(|a| a.kind == AuthenticatorKind::Passkey)
            .map(|a| a.id.as_str())
            .collect();
        if listed.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .stored_passkeys(&subject.id, SUBJECT_PASSKEYS)
            .await?
            .into_iter()
            .filter(|p| listed.contains(&p.authenticator_id.as_str()))
            .collect())
    }

    /// Stores a pending ceremony for `owner`, replacing an earlier one of the same purpose.
    fn ceremony_credential(
        &self,
        owner: &str,
        purpose: PasskeyPurpose,
        ceremony: &Ceremony,
        expires_at: DateTime<Utc>,
    ) -> AppResult<Credential> {
        Ok(Credential {
            subject_id: owner.to_owned(),
            kind: purpose.kind(),
            hash: serde_json::to_string(ceremony).map_err(|_| corrupt())?,
            created_at: self.now(),
            expires_at: Some(expires_at),
            used_at: None,
        })
    }

    /// The live ceremony of `purpose` for `owner` bound to `token_hash`, or a refusal.
    async fn pending_ceremony(
        &self,
        owner: &str,
        purpose: PasskeyPurpose,
        token_hash: &str,
    ) -> AppResult<Ceremony> {
        let now = self.now();
        let stored = self
            .store
            .credential(owner, &purpose.kind())
            .await?
            .filter(|c| c.used_at.is_none() && c.expires_at.is_some_and(|e| now < e))
            .ok_or_else(no_challenge)?;
        let ceremony: Ceremony = serde_json::from_str(&stored.hash).map_err(|_| corrupt())?;
        if !ct_eq(&ceremony.token_hash, token_hash) {
            return Err(no_challenge());
        }
        Ok(ceremony)
    }

    /// Starts a passkey authentication for `owner` (a subject id) against their enrolled
    /// passkeys of the purpose's kind, bound to `binding` (the hash of a token only the
    /// legitimate browser holds: a link token, a ceremony token). Answers the options for
    /// `navigator.credentials.get`. Callable from any flow (the attestation page may use it
    /// with [`PasskeyPurpose::Attest`]).
    pub async fn passkey_options_for(
        &self,
        owner: &str,
        purpose: PasskeyPurpose,
        binding: &str,
        not_after: Option<DateTime<Utc>>,
    ) -> AppResult<Value> {
        let webauthn = self.webauthn()?;
        let keys: Vec<Passkey> = match purpose.store_kind() {
            SUBJECT_PASSKEYS => {
                let subject = self
                    .store
                    .subject(owner)
                    .await?
                    .ok_or_else(|| AppError::not_found("subject"))?;
                self.usable_passkeys(&subject).await?
            }
            kind => self.stored_passkeys(owner, kind).await?,
        }
        .into_iter()
        .map(|p| p.passkey)
        .collect();
        if keys.is_empty() {
            return Err(AppError::invalid_as("no_passkey", "no passkey is enrolled"));
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&keys)
            .map_err(|_| unavailable("the passkey challenge could not be made"))?;
        let now = self.now();
        let mut expires_at = now + Duration::minutes(CEREMONY_MINUTES);
        if let Some(limit) = not_after {
            expires_at = expires_at.min(limit);
        }
        let ceremony = Ceremony {
            token_hash: binding.to_owned(),
            state: serde_json::to_value(&state).map_err(|_| corrupt())?,
            pass_hash: None,
        };
        self.store
            .commit(Change {
                credentials: vec![self.ceremony_credential(owner, purpose, &ceremony, expires_at)?],
                ..Change::default()
            })
            .await?;
        serde_json::to_value(options).map_err(|_| corrupt())
    }

    /// Checks an assertion against the pending ceremony of `purpose` for `owner` bound to
    /// `binding`. A missing, expired or differently bound ceremony is refused with nothing
    /// spent. Otherwise the ceremony is spent whatever the outcome; on success the passkey's
    /// counter and backup flags are updated as webauthn-rs recommends, and a counter that did
    /// not move forward (a possible clone) fails. Nothing is committed here: the caller commits
    /// [`PasskeyCheck`] with its own audit entry.
    pub async fn verify_passkey_assertion(
        &self,
        owner: &str,
        purpose: PasskeyPurpose,
        binding: &str,
        assertion: &Value,
    ) -> AppResult<PasskeyCheck> {
        let ceremony = self.pending_ceremony(owner, purpose, binding).await?;
        let consume = (owner.to_owned(), purpose.kind(), self.now());
        let state: PasskeyAuthentication =
            serde_json::from_value(ceremony.state).map_err(|_| corrupt())?;
        let (outcome, credentials) = self
            .check_passkey_assertion(owner, purpose, &state, assertion)
            .await?;
        Ok(PasskeyCheck {
            outcome,
            credentials,
            consume,
        })
    }

    /// Checks an assertion against a challenge `state` for `owner`'s passkeys of the purpose's
    /// kind. Answers `Ok(authenticator id)` with the updated passkey list to commit, or why not.
    pub(crate) async fn check_passkey_assertion(
        &self,
        owner: &str,
        purpose: PasskeyPurpose,
        state: &PasskeyAuthentication,
        assertion: &Value,
    ) -> AppResult<(Result<String, String>, Vec<Credential>)> {
        let webauthn = self.webauthn()?;
        let now = self.now();
        let fail = |why: &str| (Err(why.to_owned()), Vec::new());
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(assertion.clone())
        else {
            return Ok(fail("the assertion is malformed"));
        };
        let result = match webauthn.finish_passkey_authentication(&credential, state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey assertion refused");
                return Ok(fail("the assertion did not verify"));
            }
        };
        if !result.user_verified() {
            return Ok(fail("the authenticator did not verify the user"));
        }
        let kind = purpose.store_kind();
        let mut list = self.stored_passkeys(owner, kind).await?;
        let Some(stored) = list
            .iter_mut()
            .find(|p| p.passkey.cred_id() == result.cred_id())
        else {
            return Ok(fail("the passkey is not enrolled"));
        };
        if (result.counter() > 0 || stored.sign_count > 0) && result.counter() <= stored.sign_count
        {
            tracing::warn!(owner, "passkey counter did not advance: possible clone");
            return Ok(fail(
                "the passkey's signature counter did not advance (possible cloned authenticator)",
            ));
        }
        stored.sign_count = result.counter();
        stored.passkey.update_credential(&result);
        stored.last_used_at = Some(now);
        let authenticator_id = stored.authenticator_id.clone();
        Ok((
            Ok(authenticator_id),
            vec![Self::passkeys_credential(owner, kind, &list, now)?],
        ))
    }

    /// Starts a passkey registration for `owner` bound to a fresh ceremony token, which the
    /// answer carries with the options for `navigator.credentials.create`.
    pub(crate) async fn passkey_registration_options(
        &self,
        owner: &str,
        user_name: &str,
        display_name: &str,
        purpose: PasskeyPurpose,
        pass_hash: Option<String>,
    ) -> AppResult<Value> {
        let webauthn = self.webauthn()?;
        let existing = self.stored_passkeys(owner, purpose.store_kind()).await?;
        let exclude = existing
            .iter()
            .map(|p| p.passkey.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = webauthn
            .start_passkey_registration(
                user_handle(owner, purpose),
                user_name,
                display_name,
                Some(exclude),
            )
            .map_err(|_| unavailable("the passkey registration could not be started"))?;
        let token = secrets::random_token();
        let now = self.now();
        let ceremony = Ceremony {
            token_hash: secrets::token_hash(&token),
            state: serde_json::to_value(&state).map_err(|_| corrupt())?,
            pass_hash,
        };
        self.store
            .commit(Change {
                credentials: vec![self.ceremony_credential(
                    owner,
                    purpose,
                    &ceremony,
                    now + Duration::minutes(CEREMONY_MINUTES),
                )?],
                ..Change::default()
            })
            .await?;
        Ok(json!({ "ceremony": token, "options": options }))
    }

    /// Finishes a registration started by [`Self::passkey_registration_options`]: the ceremony
    /// must be pending and bound to `ceremony_token`. Answers the new passkey and the ceremony to
    /// consume; nothing is committed here.
    pub(crate) async fn finish_passkey_registration_for(
        &self,
        owner: &str,
        purpose: PasskeyPurpose,
        ceremony_token: &str,
        credential: &Value,
    ) -> AppResult<(Passkey, Ceremony)> {
        let webauthn = self.webauthn()?;
        if ceremony_token.is_empty() || ceremony_token.len() > 128 {
            return Err(no_challenge());
        }
        let ceremony = self
            .pending_ceremony(owner, purpose, &secrets::token_hash(ceremony_token))
            .await?;
        let credential: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|_| AppError::invalid("credential is not a WebAuthn registration"))?;
        let state: PasskeyRegistration =
            serde_json::from_value(ceremony.state.clone()).map_err(|_| corrupt())?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| {
                tracing::info!(error = %e, "passkey registration refused");
                AppError::invalid_as(
                    "registration_refused",
                    "the passkey registration did not verify",
                )
            })?;
        Ok((passkey, ceremony))
    }

    // --- the help-desk verification -------------------------------------------------------

    // --- enrolment with a temporary access pass ---------------------------------------------

    /// Checks a temporary access pass without spending it; answers the stored pass credential.
    async fn live_pass(&self, subject_id: &str, pass: &str) -> AppResult<Credential> {
        let refused =
            || AppError::unauthenticated_as("pass_refused", "the pass is wrong, used or expired");
        if subject_id.is_empty() || subject_id.len() > 128 || pass.is_empty() || pass.len() > 128 {
            return Err(refused());
        }
        let now = self.now();
        let credential = self
            .store
            .credential(subject_id, "temporary_access_pass")
            .await?
            .ok_or_else(refused)?;
        if !ct_eq(&secrets::token_hash(pass), &credential.hash)
            || credential.used_at.is_some()
            || credential.expires_at.is_none_or(|e| now >= e)
        {
            return Err(refused());
        }
        Ok(credential)
    }

    /// Redeeming a temporary access pass starts a passkey registration; the pass is spent only
    /// when the registration completes ([`Self::finish_pass_passkey`]).
    pub async fn redeem_pass_for_passkey(&self, subject_id: &str, pass: &str) -> AppResult<Value> {
        let credential = self.live_pass(subject_id, pass).await?;
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or_else(|| AppError::not_found("subject"))?;
        crate::service::ensure_not_on_hold(&subject, true)?;
        self.passkey_registration_options(
            &subject.id,
            &subject.id,
            &subject.display_name,
            PasskeyPurpose::Enrol,
            Some(credential.hash),
        )
        .await
    }

    /// Completes the registration a pass started: the passkey becomes the subject's enrolled
    /// authenticator and the pass is spent, in one commit (a second use conflicts). Every
    /// contact of record is told.
    pub async fn finish_pass_passkey(
        &self,
        subject_id: &str,
        ceremony_token: &str,
        credential: &Value,
    ) -> AppResult<Value> {
        if subject_id.is_empty() || subject_id.len() > 128 {
            return Err(no_challenge());
        }
        let (passkey, ceremony) = self
            .finish_passkey_registration_for(
                subject_id,
                PasskeyPurpose::Enrol,
                ceremony_token,
                credential,
            )
            .await?;
        let now = self.now();
        self.ensure_pass_unspent(subject_id, &ceremony, now).await?;
        let mut subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or_else(|| AppError::not_found("subject"))?;
        crate::service::ensure_not_on_hold(&subject, true)?;
        let provenance = self.pass_provenance(&subject).await?;
        let (list, authenticator_id) = self
            .enrol_passkey(&mut subject, passkey, provenance.clone(), now)
            .await?;
        let notices = crate::notices::notice_to_every_contact(
            &subject,
            "authenticator_notice",
            "A temporary access pass was used to enrol a new passkey on your account. \
                       If this was not you, contact the security team at once.",
        );
        let redeemed = pass_redeemed(&subject.id, &authenticator_id);
        let who = Actor {
            id: subject.id.clone(),
            role: "subject".to_owned(),
            auth: "temporary_access_pass".to_owned(),
        };
        let mut change = Change {
            subjects: vec![subject.clone()],
            credentials: vec![Self::passkeys_credential(
                &subject.id,
                SUBJECT_PASSKEYS,
                &list,
                now,
            )?],
            consume_credentials: vec![
                (subject.id.clone(), "temporary_access_pass".to_owned(), now),
                (subject.id.clone(), PasskeyPurpose::Enrol.kind(), now),
            ],
            audit: vec![self.entry(&who, None, redeemed)],
            ..Change::default()
        };
        let shown_codes = self
            .codes_if_none_left(&subject.id, &who, &provenance, now, &mut change)
            .await?;
        self.store.commit(change).await.map_err(|e| match e {
            deskgate_store::StoreError::Conflict(_) => pass_spent(),
            other => other.into(),
        })?;
        for n in &notices {
            if let Err(e) = self.delivery.send(n).await {
                tracing::warn!(error = %e, "authenticator notice not delivered");
            }
        }
        Ok(enrolled_answer(
            &subject.id,
            &authenticator_id,
            &shown_codes,
        ))
    }

    /// Someone left without a saved recovery code gets new ones, added to `change` and shown
    /// once in the answer, never sent; saved ones still unused are kept (new ones would depend on
    /// the pass's contact).
    async fn codes_if_none_left(
        &self,
        subject_id: &str,
        who: &Actor,
        provenance: &crate::service::Provenance,
        now: DateTime<Utc>,
        change: &mut Change,
    ) -> AppResult<Vec<String>> {
        if !self.recovery_hashes(subject_id).await?.is_empty() {
            return Ok(Vec::new());
        }
        let issued = self.new_recovery_codes(subject_id, who, provenance, now);
        change.recovery_codes.push(issued.hashes);
        change.credentials.push(issued.provenance);
        change.audit.push(issued.entry);
        Ok(issued.codes)
    }

    /// The subject's temporary access pass, still unused and unexpired, and the one this
    /// registration ceremony was started with.
    async fn ensure_pass_unspent(
        &self,
        subject_id: &str,
        ceremony: &Ceremony,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let pass = self
            .store
            .credential(subject_id, "temporary_access_pass")
            .await?
            .filter(|c| c.used_at.is_none() && c.expires_at.is_some_and(|e| now < e))
            .ok_or_else(pass_spent)?;
        if !ceremony
            .pass_hash
            .as_deref()
            .is_some_and(|h| ct_eq(h, &pass.hash))
        {
            return Err(pass_spent());
        }
        Ok(())
    }

    /// Adds `passkey` to the subject's passkeys (at most [`MAX_PASSKEYS`]) and authenticators:
    /// the list to store and the new authenticator's id.
    pub(crate) async fn enrol_passkey(
        &self,
        subject: &mut Subject,
        passkey: Passkey,
        provenance: crate::service::Provenance,
        now: DateTime<Utc>,
    ) -> AppResult<(Vec<StoredPasskey>, String)> {
        let authenticator_id = format!("passkey-{}", &credential_id(&passkey)[..16]);
        let mut list = self.usable_passkeys(subject).await?;
        list.retain(|p| p.passkey.cred_id() != passkey.cred_id());
        if list.len() >= MAX_PASSKEYS {
            return Err(AppError::invalid(format!(
                "at most {MAX_PASSKEYS} passkeys per person"
            )));
        }
        list.push(StoredPasskey {
            authenticator_id: authenticator_id.clone(),
            label: "Passkey".to_owned(),
            passkey,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
            provenance: Some(provenance),
        });
        // Only the passkeys stored here are real; an entry without one is dropped.
        let stored_ids: Vec<String> = list.iter().map(|p| p.authenticator_id.clone()).collect();
        subject
            .authenticators
            .retain(|a| a.kind != AuthenticatorKind::Passkey || stored_ids.contains(&a.id));
        subject.authenticators.push(Authenticator {
            id: authenticator_id.clone(),
            kind: AuthenticatorKind::Passkey,
            label: "Passkey".to_owned(),
            enrolled_at: now,
        });
        Ok((list, authenticator_id))
    }
}

/// The refusal of a pass that is wrong, used or expired.
fn pass_spent() -> AppError {
    AppError::unauthenticated_as("pass_refused", "the pass is wrong, used or expired")
}

/// `temporary_access_pass.redeemed` for a passkey enrolment.
fn pass_redeemed(subject_id: &str, authenticator_id: &str) -> AuditEvent {
    AuditEvent::TemporaryAccessPassRedeemed(event::TemporaryAccessPassRedeemed::Passkey(
        event::PassRedeemedForPasskey {
            subject_id: subject_id.to_owned(),
            enrolled: AuthenticatorKind::Passkey.to_string(),
            authenticator_id: authenticator_id.to_owned(),
        },
    ))
}

/// The answer to a passkey enrolment with a pass, with any new recovery codes shown once.
fn enrolled_answer(subject_id: &str, authenticator_id: &str, shown_codes: &[String]) -> Value {
    json!({
        "subject_id": subject_id, "enrolled": "passkey", "authenticator_id": authenticator_id,
        "recovery_codes": shown_codes,
        "message": if shown_codes.is_empty() {
            "Your passkey is enrolled. The help desk can now ask you to confirm it is you with it."
        } else {
            "Your passkey is enrolled. Save the recovery codes shown here now, somewhere only \
             you can reach: they are shown once and never sent, and each works once."
        },
    })
}
