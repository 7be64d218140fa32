//! The application service: one method per use case. Each loads what the core needs, lets the core
//! decide, commits the change with its audit entries in one transaction, and only then performs
//! side effects. Authorization is checked here, for every call, against the caller's role and the
//! case's people.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use deskgate_core::{
    Action, ApiId, ApproverRole, AttemptOutcome, AuthenticatorKind, Case, CaseState, Channel,
    ContactKind, Decision, Method, NewCase, PolicyPin, Role, Staff, Subject, SubjectStatus,
    Verification, VerificationState,
};
use deskgate_policy::{Bundle, Outcome, Stage};
use deskgate_store::{
    Actor, CaseFilter, CaseWrite, Change, LinkToken, NewAuditEntry, Store, StoredCase, system_actor,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::{Delivery, Message, Secret};
use crate::directory::{self, trusted_contact};
use crate::error::ApiError;
use crate::policy_gate::{self, StoreFacts};
use crate::secrets::{self, CodeHasher};
use crate::views::{CaseSummary, CaseView, ExecutionView, SubjectView};

mod attestation;

pub use attestation::{AttestationSession, CodeSent};

type ApiResult<T> = Result<T, ApiError>;

pub struct Service {
    /// Seals secrets the server must read back (TOTP seeds).
    pub sealer: secrets::Sealer,
    /// The policy bundle in force; replaced whole on reload.
    pub policy: std::sync::RwLock<Arc<Bundle>>,
    pub store: Arc<dyn Store>,
    pub audit: Arc<crate::audit_log::AuditLog>,
    pub config: Config,
    pub clock: Clock,
    pub codes: CodeHasher,
    pub delivery: Arc<dyn Delivery>,
    /// The connector that performs granted actions; `None` is the built-in directory.
    pub connector: Option<Arc<dyn deskgate_connectors::Connector>>,
}

/// Fields of a new case, validated by [`Service::open_case`].
#[derive(Debug, Clone)]
pub struct OpenCase {
    pub subject: String,
    pub action: Action,
    pub channel: Channel,
    pub caller_number: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
    pub new_contact: Option<String>,
    /// Who the caller claims to be, when not the subject (a service account's owner).
    pub requester: Option<String>,
}

/// Methods this deployment can run today. The others exist in the vocabulary and are refused
/// with a clear error until their adapters land.
const RUNNABLE: [Method; 10] = [
    Method::Passkey,
    Method::Push,
    Method::Callback,
    Method::Totp,
    Method::IdProofing,
    Method::RecoveryCode,
    Method::SmsCode,
    Method::VoiceCode,
    Method::EmailCode,
    Method::ManagerAttestation,
];

/// The credential kind holding a subject's sealed TOTP seed and the last time step accepted.
const TOTP: &str = "totp";

/// After this long without an outcome, an execution in flight is taken as lost (the process
/// died mid-call) and a deny or cancel ends it `failed`; until then they are refused.
const ABANDON_IN_FLIGHT_MINUTES: i64 = 15;

/// The credential kind holding a rotated service secret, sealed, until its one retrieval.
pub(crate) const SECRET_PICKUP: &str = "service_secret_pickup";

/// What the store keeps for an enrolled TOTP authenticator.
#[derive(serde::Serialize, serde::Deserialize)]
struct TotpRecord {
    sealed: String,
    last_step: Option<u64>,
}

/// A saved recovery code as typed: 16 base32 characters (80 bits), dashes and case ignored.
fn normalise_recovery_code(answer: &str) -> Option<String> {
    let code: String = answer
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 16 && code.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7'))).then_some(code)
}

type PolicyDecision = deskgate_policy::Decision;

/// The change that writes `case` over `version` with its audit entries, and nothing else.
fn updating(case: &Case, version: i64, audit: Vec<NewAuditEntry>) -> Change {
    Change {
        case: Some(CaseWrite::Update {
            case: case.clone(),
            expected_version: version,
        }),
        audit,
        ..Change::default()
    }
}

/// A webhook delivery processed before is a replay, whatever else conflicted.
fn replay_error(e: deskgate_store::StoreError) -> ApiError {
    match e {
        deskgate_store::StoreError::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "replayed",
            "this delivery was already processed",
        ),
        other => other.into(),
    }
}

/// A refusal by the policy: the reasons and the policies that decided, never a silent no.
fn policy_refusal(pin: &PolicyPin) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "policy_denied",
        format!("the policy refuses this: {}", pin.reasons.join("; ")),
    )
    .with_details(json!({
        "reasons": pin.reasons, "policy_ids": pin.policy_ids, "bundle_digest": pin.bundle_digest,
    }))
}

pub(crate) fn actor(staff: &Staff) -> Actor {
    Actor {
        id: staff.id.clone(),
        role: staff.role.to_string(),
        auth: "bearer_token".to_owned(),
    }
}

fn check_text(field: &str, value: &Option<String>, max: usize) -> ApiResult<()> {
    if let Some(v) = value
        && (v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

/// Digits of a phone number, to compare numbers written differently.
/// The kind of enrolled authenticator a device-of-record method proves.
fn device_kind(method: Method) -> Option<AuthenticatorKind> {
    match method {
        Method::Totp => Some(AuthenticatorKind::Totp),
        Method::Push => Some(AuthenticatorKind::Push),
        Method::Passkey => Some(AuthenticatorKind::Passkey),
        _ => None,
    }
}

fn phone_digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

fn valid_phone(value: &str) -> bool {
    let digits = phone_digits(value);
    (7..=15).contains(&digits.len())
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
}

fn valid_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && value.len() <= 254
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

impl Service {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn entry(
        &self,
        actor: &Actor,
        case_id: Option<&str>,
        event: &str,
        details: Value,
    ) -> NewAuditEntry {
        NewAuditEntry::new(self.now(), actor.clone(), case_id, event, details)
    }

    /// Reserves a message to `contact` under the per-contact send limit, right before it is sent:
    /// bounded sends per contact, across cases and kinds (codes, links), because a flood of
    /// messages is itself an attack. The count and the reservation are one serialised write, so
    /// racing requests cannot overshoot; a reserved slot stays counted even if delivery fails.
    pub(crate) async fn contact_send_slot(
        &self,
        contact: &deskgate_core::Contact,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let slot = deskgate_store::SendSlot {
            contact_hash: self.codes.hash("contact", &contact.value.to_lowercase()),
            at: now,
            since: now - Duration::minutes(self.config.codes.send_window_minutes),
            limit: self.config.codes.max_sends_per_contact,
        };
        let reserved = self
            .store
            .commit(Change {
                send_slots: vec![slot],
                ..Change::default()
            })
            .await;
        match reserved {
            Ok(_) => Ok(()),
            Err(deskgate_store::StoreError::LimitReached { sent }) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sends",
                format!(
                    "{sent} messages were sent to this {} of record in the last {} minutes; wait before sending another",
                    contact.kind, self.config.codes.send_window_minutes
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The audit entry of a started verification: its id, method and class, plus `extra`.
    pub(crate) fn started(
        &self,
        caller: &Staff,
        case: &Case,
        vid: &str,
        method: Method,
        extra: Value,
    ) -> NewAuditEntry {
        let mut details =
            json!({ "verification_id": vid, "method": method, "class": method.class() });
        if let (Some(d), Value::Object(more)) = (details.as_object_mut(), extra) {
            d.extend(more);
        }
        self.entry(
            &actor(caller),
            Some(&case.id),
            "verification.started",
            details,
        )
    }

    /// Marks an audit entry with the bundle digest of the decision it records.
    pub(crate) fn pinned(&self, mut entry: NewAuditEntry, pin: &PolicyPin) -> NewAuditEntry {
        entry.policy_digest = Some(pin.bundle_digest.clone());
        entry
    }

    /// Resolves a bearer token to its staff member.
    pub async fn authenticate(&self, token: &str) -> ApiResult<Staff> {
        if token.is_empty() || token.len() > 256 {
            return Err(ApiError::unauthenticated());
        }
        self.store
            .staff_for_token(&secrets::token_hash(token), self.now())
            .await?
            .ok_or_else(ApiError::unauthenticated)
    }

    /// Imports directory subjects (one JSON object per item, the `Subject` shape), replacing
    /// those with the same id, in one commit with its audit entry. The tier comes from the
    /// subject's groups through `tier_groups`, never from the file, so an import cannot lower it.
    pub async fn import_subjects(
        &self,
        mut subjects: Vec<Subject>,
        by: &Actor,
    ) -> ApiResult<usize> {
        for s in &mut subjects {
            if s.id.trim().is_empty() || s.id.len() > 128 || s.display_name.trim().is_empty() {
                return Err(ApiError::invalid(format!(
                    "subject {:?}: id and display_name are required (id at most 128 characters)",
                    s.id
                )));
            }
            s.tier = self.config.tier_for_groups(&s.groups);
        }
        let count = subjects.len();
        let ids: Vec<String> = subjects.iter().map(|s| s.id.clone()).collect();
        self.store
            .commit(Change {
                subjects,
                audit: vec![self.entry(
                    by,
                    None,
                    "directory.imported",
                    json!({ "count": count, "subject_ids": ids }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(count)
    }

    /// A console session token: like an API token, but it expires after `hours` and is revoked
    /// at sign-out.
    pub async fn create_session_token(&self, staff_name: &str, hours: i64) -> ApiResult<String> {
        let token = self.create_token(staff_name, "console").await?;
        self.store
            .expire_token_at(
                &secrets::token_hash(&token),
                self.now() + Duration::hours(hours),
            )
            .await?;
        Ok(token)
    }

    /// Revokes every token of a staff member (offboarding, a lost laptop), audited.
    pub async fn revoke_staff_tokens(&self, staff_name: &str, by: &Actor) -> ApiResult<u64> {
        let staff = self
            .store
            .staff_by_name(staff_name)
            .await?
            .ok_or_else(|| ApiError::not_found("staff member"))?;
        let now = self.now();
        let revoked = self.store.revoke_staff_tokens(&staff.id, now).await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    by,
                    None,
                    "staff.tokens_revoked",
                    json!({ "staff_id": staff.id, "revoked": revoked }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(revoked)
    }

    /// Revokes the token presented (console sign-out); an unknown token changes nothing.
    pub async fn revoke_token(&self, token: &str) -> ApiResult<()> {
        if token.is_empty() || token.len() > 256 {
            return Ok(());
        }
        self.store
            .revoke_token(&secrets::token_hash(token), self.now())
            .await?;
        Ok(())
    }

    /// Makes a new API token for a staff member that expires after the configured
    /// `api_token_days`; only its hash is stored.
    pub async fn create_token(&self, staff_name: &str, label: &str) -> ApiResult<String> {
        self.create_token_for_days(staff_name, label, self.config.api_token_days)
            .await
    }

    /// Makes a new API token that expires after `days` (1 to 366): integration tokens are
    /// rotated, never kept forever.
    pub async fn create_token_for_days(
        &self,
        staff_name: &str,
        label: &str,
        days: i64,
    ) -> ApiResult<String> {
        if !(1..=366).contains(&days) {
            return Err(ApiError::invalid(
                "a token lives between 1 and 366 days; rotate it instead of keeping it",
            ));
        }
        if label.is_empty() || label.len() > 64 || label.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "the label must be 1 to 64 printable characters",
            ));
        }
        let staff = self
            .store
            .staff_by_name(staff_name)
            .await?
            .ok_or_else(|| ApiError::not_found("staff member"))?;
        let token = secrets::random_token();
        let hash = secrets::token_hash(&token);
        let now = self.now();
        let expires_at = now + Duration::days(days);
        self.store
            .add_api_token(&hash, &staff.id, label, now)
            .await?;
        self.store.expire_token_at(&hash, expires_at).await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    &system_actor(),
                    None,
                    "staff.token_created",
                    json!({
                        "staff_id": staff.id, "label": label, "token_id": &hash[..12],
                        "expires_at": expires_at,
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(token)
    }

    /// Every token issued, with its state at `now`; a token is named by the first 12 hex digits
    /// of its hash, which cannot be turned back into the token.
    pub async fn list_tokens(&self, staff_name: Option<&str>) -> ApiResult<Vec<Value>> {
        let staff = match staff_name {
            Some(name) => Some(
                self.store
                    .staff_by_name(name)
                    .await?
                    .ok_or_else(|| ApiError::not_found("staff member"))?,
            ),
            None => None,
        };
        let now = self.now();
        Ok(self
            .store
            .list_api_tokens()
            .await?
            .into_iter()
            .filter(|t| staff.as_ref().is_none_or(|s| s.id == t.staff_id))
            .map(|t| {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|at| at <= now) {
                    "expired"
                } else {
                    "live"
                };
                json!({
                    "id": &t.token_hash[..12.min(t.token_hash.len())],
                    "staff_id": t.staff_id, "label": t.label, "state": state,
                    "created_at": t.created_at, "expires_at": t.expires_at,
                    "revoked_at": t.revoked_at,
                })
            })
            .collect())
    }

    /// Revokes the one token whose id (a prefix of its hash, at least 8 hex digits) matches.
    pub async fn revoke_token_by_id(&self, id: &str, by: &Actor) -> ApiResult<()> {
        if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "a token id is at least 8 hex digits, as `admin token list` prints it",
            ));
        }
        let id = id.to_ascii_lowercase();
        let matches: Vec<_> = self
            .store
            .list_api_tokens()
            .await?
            .into_iter()
            .filter(|t| t.token_hash.starts_with(&id))
            .collect();
        let token = match matches.as_slice() {
            [one] => one,
            [] => return Err(ApiError::not_found("token")),
            _ => {
                return Err(ApiError::invalid(
                    "that id matches several tokens; give more digits",
                ));
            }
        };
        self.store
            .revoke_token(&token.token_hash, self.now())
            .await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    by,
                    None,
                    "staff.token_revoked",
                    json!({ "staff_id": token.staff_id, "token_id": &token.token_hash[..12] }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    async fn subject_or(
        &self,
        id: &str,
        status: StatusCode,
        code: &'static str,
    ) -> ApiResult<Subject> {
        self.store
            .subject(id)
            .await?
            .ok_or_else(|| ApiError::new(status, code, format!("no subject {id}")))
    }

    pub(crate) async fn load_case(&self, id: &str) -> ApiResult<StoredCase> {
        if id.len() > 64 {
            return Err(ApiError::not_found("case"));
        }
        self.store
            .case(id)
            .await?
            .ok_or_else(|| ApiError::not_found("case"))
    }

    fn can_view(staff: &Staff, case: &Case) -> bool {
        staff.role.oversees_cases() || staff.role == Role::Auditor || case.agent_id == staff.id
    }

    /// The case's agent, or a supervisor / security officer; never someone the case is about.
    fn ensure_can_work(staff: &Staff, case: &Case) -> ApiResult<()> {
        if !staff.role.works_cases() {
            return Err(ApiError::forbidden(format!(
                "the {} role cannot work recovery cases",
                staff.role
            )));
        }
        if staff.subject_id.as_deref().is_none_or(str::is_empty) {
            return Err(deskgate_core::CaseError::NoLinkedPerson.into());
        }
        if staff.subject_id.as_deref() == Some(case.subject_id.as_str()) {
            return Err(deskgate_core::CaseError::SelfService.into());
        }
        if case.agent_id != staff.id && !staff.role.oversees_cases() {
            return Err(ApiError::forbidden("this case belongs to another agent"));
        }
        Ok(())
    }

    /// The manager or owner who vouches for `case` about `subject`: not the subject, the
    /// requester or `also_excluded` (the agent's own identity), and an independent person: one
    /// sharing a phone or email of record with the subject or the requester is refused, since
    /// whoever holds that phone or mailbox would answer for both.
    async fn independent_voucher(
        &self,
        case: &Case,
        subject: &Subject,
        also_excluded: Option<&str>,
    ) -> ApiResult<Subject> {
        // Nobody who worked the case (its agent above all) or already gave their word on it
        // vouches for it, nor the requester who asks.
        let mut excluded = case.excluded_vouchers();
        excluded.extend(also_excluded);
        excluded.extend(case.requester.as_deref());
        let voucher_id = subject.voucher(&excluded).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_manager",
                "the subject has no manager or owner who can vouch for this request",
            )
        })?;
        let voucher = self
            .subject_or(voucher_id, StatusCode::UNPROCESSABLE_ENTITY, "no_manager")
            .await?;
        let requester = match case.requester.as_deref() {
            Some(id) if id != subject.id => self.store.subject(id).await?,
            _ => None,
        };
        if voucher.shares_contact_with(subject)
            || requester.is_some_and(|r| voucher.shares_contact_with(&r))
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "voucher_not_independent",
                "the manager or owner who would vouch shares a phone or email of record with the \
                 subject or the requester, so they are not an independent person; use another \
                 verification",
            ));
        }
        Ok(voucher)
    }

    /// Methods the agent can use for this subject now, in the order the playbook offers them.
    pub async fn offered_methods(&self, subject: &Subject, case: &Case) -> ApiResult<Vec<Method>> {
        let can_vouch = self.independent_voucher(case, subject, None).await.is_ok();
        let now = self.now();
        let fresh = case.requirements.freshness();
        let has_codes = !self.recovery_hashes(&subject.id).await?.is_empty();
        let has_totp = self.totp_record(subject).await?.is_some();
        let has_passkey = !self.usable_passkeys(subject).await?.is_empty();
        let settled = |kind| subject.has_settled_authenticator(kind, fresh, now);
        Ok(RUNNABLE
            .into_iter()
            .filter(|m| match (m, m.contact_kind()) {
                (Method::RecoveryCode, _) => has_codes,
                (Method::Totp, _) => has_totp && settled(AuthenticatorKind::Totp),
                (Method::Passkey, _) => {
                    has_passkey
                        && settled(AuthenticatorKind::Passkey)
                        && trusted_contact(subject, ContactKind::Email, fresh, now).is_some()
                }
                (Method::Push, _) => settled(AuthenticatorKind::Push),
                (Method::Callback, _) => {
                    self.config.telephony.is_some()
                        && trusted_contact(subject, ContactKind::Phone, fresh, now).is_some()
                }
                (Method::IdProofing, _) => {
                    crate::idv_inquiry::creating_vendor(&self.config.idv.vendors).is_some()
                        && crate::idv::ExpectedIdentity::of(
                            subject.identity.as_ref(),
                            &self.config.idv.match_fields,
                        )
                        .is_ok()
                        && trusted_contact(subject, ContactKind::Email, fresh, now).is_some()
                }
                (_, Some(kind)) => trusted_contact(subject, kind, fresh, now).is_some(),
                (_, None) => can_vouch,
            })
            .collect())
    }

    /// The subject's TOTP record, when an authenticator app is enrolled.
    async fn totp_record(&self, subject: &Subject) -> ApiResult<Option<TotpRecord>> {
        Ok(self.totp_stored(subject).await?.map(|(record, _)| record))
    }

    /// The subject's TOTP record with its stored text, which a later write must still find
    /// (compare-and-swap) for its step to count.
    async fn totp_stored(&self, subject: &Subject) -> ApiResult<Option<(TotpRecord, String)>> {
        if !subject
            .authenticators
            .iter()
            .any(|a| a.kind == AuthenticatorKind::Totp)
        {
            return Ok(None);
        }
        match self.store.credential(&subject.id, TOTP).await? {
            Some(c) => Ok(serde_json::from_str(&c.hash).ok().map(|r| (r, c.hash))),
            None => Ok(None),
        }
    }

    fn totp_credential(
        subject_id: &str,
        record: &TotpRecord,
        now: DateTime<Utc>,
    ) -> deskgate_store::Credential {
        deskgate_store::Credential {
            subject_id: subject_id.to_owned(),
            kind: TOTP.to_owned(),
            hash: serde_json::to_string(record).unwrap_or_default(),
            created_at: now,
            expires_at: None,
            used_at: None,
        }
    }

    fn totp_secret(
        &self,
        subject_id: &str,
        record: &TotpRecord,
    ) -> ApiResult<crate::totp::TotpSecret> {
        let corrupt = || {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_credential",
                "the stored authenticator seed cannot be read",
            )
        };
        let seed = self
            .sealer
            .open(&format!("{subject_id}/{TOTP}"), &record.sealed)
            .map_err(|_| corrupt())?;
        crate::totp::TotpSecret::from_bytes(seed).map_err(|_| corrupt())
    }

    /// Enrols an authenticator app for the subject: the seed is sealed in the store and sent once
    /// (as an `otpauth://` URI) to the email of record, standing in for the enrolment QR code.
    pub async fn enroll_totp(&self, subject_id: &str, by: &Actor) -> ApiResult<()> {
        let mut subject = self
            .subject_or(subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let email = subject
            .contact(ContactKind::Email)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_contact_of_record",
                    "the subject has no email of record",
                )
            })?;
        let now = self.now();
        let (uri, sealed) = self.bind_new_app(&mut subject, now)?;
        self.delivery
            .send(&Message {
                to: email.value.clone(),
                channel: "email".to_owned(),
                kind: "totp_enrolment".to_owned(),
                subject_id: subject.id.clone(),
                case_id: None,
                body: "An authenticator app was enrolled on your account. If this was not you, \
                       contact the security team."
                    .to_owned(),
                secret: Some(Secret::Link(uri)),
            })
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "delivery_failed",
                    "the enrolment could not be delivered; nothing was changed",
                )
            })?;
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                credentials: vec![Self::totp_credential(
                    &subject.id,
                    &TotpRecord {
                        sealed,
                        last_step: None,
                    },
                    now,
                )],
                audit: vec![self.entry(
                    by,
                    None,
                    "authenticator.enrolled",
                    json!({ "subject_id": subject.id, "kind": "totp", "notified": email.masked() }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// Binds a fresh authenticator app to `subject` (replacing an old one): the seed, sealed for
    /// the store, and the `otpauth://` URI that enrols it.
    fn bind_new_app(
        &self,
        subject: &mut Subject,
        now: DateTime<Utc>,
    ) -> ApiResult<(String, String)> {
        let secret = crate::totp::generate_secret();
        let uri = crate::totp::provisioning_uri(&secret, &subject.id, "Deskgate").map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.to_string(),
            )
        })?;
        let sealed = self
            .sealer
            .seal(
                &format!("{}/{TOTP}", subject.id),
                &crate::totp::secret_bytes(&secret),
            )
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "seal_failed",
                    "sealing failed",
                )
            })?;
        subject
            .authenticators
            .retain(|a| a.kind != AuthenticatorKind::Totp);
        subject.authenticators.push(deskgate_core::Authenticator {
            id: format!("totp-{}", subject.id),
            kind: AuthenticatorKind::Totp,
            label: "Authenticator app".to_owned(),
            enrolled_at: now,
        });
        Ok((uri, sealed))
    }

    /// The code the subject's enrolled authenticator app shows now (the demo's stand-in device).
    pub async fn current_totp(&self, subject_id: &str) -> ApiResult<String> {
        let subject = self
            .subject_or(subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let record = self
            .totp_record(&subject)
            .await?
            .ok_or_else(|| ApiError::not_found("enrolled authenticator app"))?;
        let secret = self.totp_secret(&subject.id, &record)?;
        let now = u64::try_from(self.now().timestamp()).unwrap_or(0);
        crate::totp::code_at(&secret, now).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "totp_failed",
                e.to_string(),
            )
        })
    }

    /// Hashes of the subject's unused recovery codes.
    async fn recovery_hashes(&self, subject_id: &str) -> ApiResult<Vec<String>> {
        Ok(self.store.recovery_codes(subject_id).await?)
    }

    /// Issues ten new recovery codes (replacing any old ones), stores only their keyed hashes,
    /// and sends them to the subject's email of record, which is also the notice that they
    /// changed.
    pub async fn issue_recovery_codes(&self, subject_id: &str, by: &Actor) -> ApiResult<usize> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let subject = self
            .subject_or(subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let email = subject.contact(ContactKind::Email).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_contact_of_record",
                "the subject has no email of record to receive recovery codes",
            )
        })?;
        let now = self.now();
        let codes: Vec<String> = (0..10)
            .map(|_| {
                let raw: Vec<u8> = (0..16)
                    .map(|_| {
                        ALPHABET[rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..ALPHABET.len())]
                    })
                    .collect();
                raw.chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect();
        let context = format!("recovery:{}", subject.id);
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| normalise_recovery_code(c))
            .map(|c| self.codes.hash(&context, &c))
            .collect();
        self.delivery
            .send(&Message {
                to: email.value.clone(),
                channel: "email".to_owned(),
                kind: "recovery_codes".to_owned(),
                subject_id: subject.id.clone(),
                case_id: None,
                body: format!(
                    "New recovery codes were issued for your account; any earlier ones no longer \
                     work. Keep them somewhere safe, each works once: {}",
                    codes.join(" ")
                ),
                secret: Some(Secret::Code(codes.join(","))),
            })
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "delivery_failed",
                    "the recovery codes could not be delivered; nothing was changed",
                )
            })?;
        self.store
            .commit(Change {
                recovery_codes: vec![deskgate_store::RecoveryCodes {
                    subject_id: subject.id.clone(),
                    hashes: hashes.clone(),
                    issued_at: now,
                }],
                audit: vec![self.entry(
                    by,
                    None,
                    "recovery_codes.issued",
                    json!({ "subject_id": subject.id, "count": hashes.len(), "delivered_to": email.masked() }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(hashes.len())
    }

    pub(crate) async fn view(&self, case: &Case) -> ApiResult<CaseView> {
        let subject = self
            .store
            .subject(&case.subject_id)
            .await?
            .ok_or_else(|| ApiError::not_found("subject"))?;
        let offered = self.offered_methods(&subject, case).await?;
        Ok(CaseView::build(case, &subject, &offered, self.now()))
    }

    pub async fn search_subjects(
        &self,
        caller: &Staff,
        query: &str,
    ) -> ApiResult<Vec<SubjectView>> {
        if !caller.role.works_cases() {
            return Err(ApiError::forbidden(
                "only help-desk staff search the directory",
            ));
        }
        let q = query.trim();
        if q.chars().count() < 2 || q.chars().count() > 100 {
            return Err(ApiError::invalid("q must be 2 to 100 characters"));
        }
        let found = self.store.search_subjects(q, 25).await?;
        Ok(found.iter().map(SubjectView::from).collect())
    }

    /// The store's half of the risk signals. `exclude` names a case already counted that must
    /// not count against itself (at execute, the case being executed).
    async fn store_facts(
        &self,
        subject: &Subject,
        caller_number: Option<&str>,
        agent_id: &str,
        exclude: Option<&Case>,
    ) -> ApiResult<StoreFacts> {
        let now = self.now();
        let thresholds = self.bundle().thresholds().clone();
        let recent = now - Duration::days(i64::from(thresholds.recent_recovery_days));
        let (open, executed) = self.store.subject_case_counts(&subject.id, recent).await?;
        let window = now - Duration::minutes(i64::from(thresholds.velocity.window_minutes));
        let (for_subject, from_number, by_agent) = self
            .store
            .velocity_counts(&subject.id, caller_number, agent_id, window)
            .await?;
        let own = |counted: bool| u32::from(counted);
        let (live, in_window, same_number) = match exclude {
            Some(c) => (
                c.state.is_live(),
                c.opened_at >= window,
                c.opened_at >= window && c.caller_number.is_some() && caller_number.is_some(),
            ),
            None => (false, false, false),
        };
        Ok(StoreFacts {
            recent_recoveries: executed,
            open_cases_for_subject: open.saturating_sub(own(live)),
            requests_for_subject: for_subject.saturating_sub(own(in_window)),
            requests_from_caller_number: from_number.saturating_sub(own(same_number)),
            requests_by_agent: by_agent.saturating_sub(own(in_window)),
        })
    }

    /// Asks the bundle about an existing case at `stage`, with the store's signals (not counting
    /// the case against itself), the evidence and approvals it holds, and `caller` as principal.
    async fn decide_on_case(
        &self,
        stage: Stage,
        caller: &Staff,
        case: &Case,
        subject: &Subject,
    ) -> ApiResult<PolicyDecision> {
        let now = self.now();
        let facts = self
            .store_facts(
                subject,
                case.caller_number.as_deref(),
                &case.agent_id,
                Some(case),
            )
            .await?;
        self.decide(policy_gate::Ask {
            stage,
            principal: policy_gate::staff_info(caller, self.own_manager(caller).await?),
            case_agent_id: case.agent_id.clone(),
            subject,
            action: case.action,
            signals: policy_gate::signals(subject, case.caller_number.as_deref(), &facts, now),
            case: Some(case),
            requester_is_owner: case
                .requester
                .as_ref()
                .is_some_and(|r| subject.owners.contains(r)),
            now,
        })
    }

    /// The bundle in force.
    pub fn bundle(&self) -> Arc<Bundle> {
        match self.policy.read() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn own_manager(&self, staff: &Staff) -> ApiResult<Option<String>> {
        Ok(match &staff.subject_id {
            Some(id) => self.store.subject(id).await?.and_then(|s| s.manager),
            None => None,
        })
    }

    /// Asks the bundle; an evaluation failure denies.
    fn decide(&self, ask: policy_gate::Ask<'_>) -> ApiResult<PolicyDecision> {
        self.bundle()
            .evaluate(&policy_gate::request(ask))
            .map_err(|e| {
                tracing::error!(error = %e, "policy evaluation failed; denying");
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "policy_denied",
                    format!("the policy could not be evaluated, so the request is denied: {e}"),
                )
            })
    }

    pub async fn open_case(&self, caller: &Staff, req: OpenCase) -> ApiResult<CaseView> {
        if !caller.role.works_cases() {
            return Err(ApiError::forbidden(format!(
                "the {} role cannot open recovery cases",
                caller.role
            )));
        }
        if req.subject.trim().is_empty() || req.subject.len() > 128 {
            return Err(ApiError::invalid("subject must be 1 to 128 characters"));
        }
        check_text("ticket", &req.ticket, 64)?;
        check_text("note", &req.note, 2000)?;
        if let Some(n) = &req.caller_number
            && !valid_phone(n)
        {
            return Err(ApiError::invalid("caller_number is not a phone number"));
        }
        match (req.action.changed_contact_kind(), &req.new_contact) {
            (Some(ContactKind::Phone), Some(v)) if !valid_phone(v) => {
                return Err(ApiError::invalid("new_contact is not a phone number"));
            }
            (Some(ContactKind::Email), Some(v)) if !valid_email(v) => {
                return Err(ApiError::invalid("new_contact is not an email address"));
            }
            _ => {}
        }
        let subject = self.subject_for_new_case(&req.subject).await?;
        let agent_manager = self.own_manager(caller).await?;
        let now = self.now();
        let facts = self
            .store_facts(&subject, req.caller_number.as_deref(), &caller.id, None)
            .await?;
        let requester_is_owner = req
            .requester
            .as_ref()
            .is_some_and(|r| subject.owners.contains(r));
        let decision = self.decide(policy_gate::Ask {
            stage: Stage::Open,
            principal: policy_gate::staff_info(caller, agent_manager.clone()),
            case_agent_id: caller.id.clone(),
            subject: &subject,
            action: req.action,
            signals: policy_gate::signals(&subject, req.caller_number.as_deref(), &facts, now),
            case: None,
            requester_is_owner,
            now,
        })?;
        let risk = decision.risk.clone();
        let requirements = decision.playbook.requirements.to_core_requirements();
        let opened = Case::open(
            NewCase {
                id: format!("c-{}", uuid::Uuid::new_v4().simple()),
                subject: &subject,
                agent: caller,
                agent_manager: agent_manager.as_deref(),
                action: req.action,
                channel: req.channel,
                caller_number: req.caller_number,
                ticket: req.ticket,
                note: req.note,
                new_contact: req.new_contact,
                requester: req.requester,
                risk,
                requirements,
            },
            now,
        );
        let pin = policy_gate::pin(&decision, now);
        // A refusal, by the bundle or by the core's guardrails, is recorded with why and, when
        // the bundle decided, the deciding policies.
        let refusal: Option<(Vec<String>, ApiError)> = match (&opened, decision.outcome) {
            (Err(e), outcome) => {
                let mut reasons = vec![e.to_string()];
                if outcome == Outcome::Deny {
                    reasons.extend(pin.reasons.iter().cloned());
                }
                Some((reasons, e.clone().into()))
            }
            (Ok(_), Outcome::Deny) => Some((pin.reasons.clone(), policy_refusal(&pin))),
            (Ok(_), _) => None,
        };
        if let Some((reasons, error)) = refusal {
            let policy_ids = if decision.outcome == Outcome::Deny {
                pin.policy_ids.clone()
            } else {
                Vec::new()
            };
            self.store
                .commit(Change {
                    audit: vec![self.pinned(
                        self.entry(
                            &actor(caller),
                            None,
                            "case.refused",
                            json!({
                                "subject_id": subject.id, "action": req.action,
                                "tier": subject.tier, "reasons": reasons,
                                "policy_ids": policy_ids,
                            }),
                        ),
                        &pin,
                    )],
                    ..Change::default()
                })
                .await?;
            return Err(error);
        }
        let mut case = opened?;
        match decision.outcome {
            Outcome::Deny | Outcome::Allow => {}
            Outcome::Escalate => {
                case.escalate(pin.reasons.join("; "), now)?;
            }
        }
        case.record_decision(pin.clone());
        let details = json!({
            "subject_id": case.subject_id,
            "tier": case.subject_tier,
            "action": case.action,
            "channel": case.channel,
            "ticket": case.ticket,
            "risk": case.risk.level,
            "risk_reasons": case.risk.reasons.iter().map(|r| r.code.clone()).collect::<Vec<_>>(),
            "requirements": case.requirements,
            "state": case.state,
            "policy_ids": pin.policy_ids,
            "playbook_rows": decision.playbook.rows,
        });
        self.store
            .commit(Change {
                audit: vec![self.pinned(
                    self.entry(&actor(caller), Some(&case.id), "case.opened", details),
                    &pin,
                )],
                case: Some(CaseWrite::Insert(case.clone())),
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, tier = %case.subject_tier, "case opened");
        let offered = self.offered_methods(&subject, &case).await?;
        Ok(CaseView::build(&case, &subject, &offered, now))
    }

    pub async fn get_case(&self, caller: &Staff, id: &str) -> ApiResult<CaseView> {
        let stored = self.load_case(id).await?;
        if !Self::can_view(caller, &stored.case) {
            return Err(ApiError::forbidden("you may only see your own cases"));
        }
        self.view(&stored.case).await
    }

    pub async fn list_cases(
        &self,
        caller: &Staff,
        state: Option<CaseState>,
        mine: bool,
    ) -> ApiResult<Vec<CaseSummary>> {
        let sees_all = caller.role.oversees_cases() || caller.role == Role::Auditor;
        if !sees_all && caller.role != Role::Agent {
            return Err(ApiError::forbidden(format!(
                "the {} role has no case list",
                caller.role
            )));
        }
        let filter = CaseFilter {
            state,
            agent_id: (mine || !sees_all).then(|| caller.id.clone()),
            subject_id: None,
            limit: 200,
        };
        let cases = self.store.list_cases(&filter).await?;
        Ok(cases.iter().map(CaseSummary::from).collect())
    }

    /// Digests of the evidence collected on a case, so an entry names exactly which verified
    /// facts a decision relied on without repeating them.
    fn evidence_digests(case: &Case) -> Vec<String> {
        case.evidence()
            .iter()
            .map(|e| {
                let fact = json!({
                    "case_id": case.id, "verification_id": e.verification_id, "method": e.method,
                    "class": e.class, "passed_at": e.passed_at,
                    "contact_changed_at": e.contact_changed_at,
                });
                hex::encode(Sha256::digest(fact.to_string().as_bytes()))
            })
            .collect()
    }

    /// The entry, marked with the digests of the evidence the case holds.
    pub(crate) fn on_evidence(mut entry: NewAuditEntry, case: &Case) -> NewAuditEntry {
        entry.evidence_digests = Self::evidence_digests(case);
        entry
    }

    pub(crate) fn approval_entries(
        &self,
        who: &Actor,
        before: CaseState,
        case: &Case,
    ) -> Vec<NewAuditEntry> {
        let mut out = Vec::new();
        if before != CaseState::Approved && case.state == CaseState::Approved {
            let progress = case.progress(self.now());
            out.push(Self::on_evidence(
                self.entry(
                    who,
                    Some(&case.id),
                    "case.approved",
                    json!({ "counted_classes": progress.counted_classes }),
                ),
                case,
            ));
            if let Some(g) = &case.grant {
                out.push(self.entry(
                    &system_actor(),
                    Some(&case.id),
                    "grant.minted",
                    json!({
                        "grant_id": g.id, "agent_id": g.agent_id, "subject_id": g.subject_id,
                        "tier": case.subject_tier, "action": g.action, "expires_at": g.expires_at,
                    }),
                ));
            }
        }
        out
    }

    /// Starts a verification; for codes and links the message is delivered before the case
    /// records it, so a failed delivery leaves the case unchanged and the agent can retry.
    pub async fn start_verification(
        &self,
        caller: &Staff,
        case_id: &str,
        method: Method,
    ) -> ApiResult<(String, CaseView)> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let cap = self.config.max_verifications_per_case;
        if stored.case.verifications.len() >= usize::try_from(cap).unwrap_or(usize::MAX) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_verifications",
                format!(
                    "this case has already started {cap} verifications, the most one case may; \
                     deny or cancel it, or escalate it to a security officer"
                ),
            ));
        }
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        if method == Method::Knowledge {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "method_never_counts",
                "knowledge questions never count toward verification: answers about a person can be researched",
            ));
        }
        if !RUNNABLE.contains(&method) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "method_not_available",
                format!("{method} is not available in this deployment yet"),
            ));
        }
        let subject = self
            .subject_or(&case.subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        // A service account has no person to verify: its registered owner who asked is verified
        // instead, through their own contacts and devices. The second owner vouches by link.
        let subject = if subject.is_non_human() && method != Method::ManagerAttestation {
            let requester = case
                .requester
                .as_ref()
                .filter(|r| subject.owners.contains(r))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "requester_not_owner",
                        "a service account is recovered for a registered owner: open the case with requester set to one",
                    )
                })?;
            self.subject_or(
                requester,
                StatusCode::UNPROCESSABLE_ENTITY,
                "requester_not_owner",
            )
            .await?
        } else {
            subject
        };
        let now = self.now();
        let fresh = case.requirements.freshness();
        if let Some(kind) = device_kind(method)
            && subject.authenticators.iter().any(|a| a.kind == kind)
            && !subject.has_settled_authenticator(kind, fresh, now)
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "authenticator_too_new",
                format!(
                    "every {kind} on record was bound less than {} day(s) ago; a factor bound inside \
                     the freshness window may be an attacker's own, so it is not a device of record yet",
                    case.requirements.contact_freshness_days
                ),
            ));
        }
        // The methods below load the case from `stored`: hand them the one that records who works it.
        let stored = StoredCase {
            case: case.clone(),
            version: stored.version,
        };
        let vid = format!("v-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        if method == Method::IdProofing {
            return self.start_id_proofing(caller, stored, subject, vid).await;
        }
        if method == Method::Push {
            return self.start_push(caller, stored, subject, vid).await;
        }
        if method == Method::Passkey {
            return self.start_passkey(caller, stored, subject, vid).await;
        }
        if method == Method::Callback {
            return self.start_callback(caller, stored, subject, vid).await;
        }
        if matches!(method, Method::RecoveryCode | Method::Totp) {
            // Nothing is sent: the caller reads a saved code, or the one their app shows.
            if method == Method::RecoveryCode && self.recovery_hashes(&subject.id).await?.is_empty()
            {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_recovery_codes",
                    "the subject has no unused recovery codes",
                ));
            }
            if method == Method::Totp && self.totp_record(&subject).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_authenticator",
                    "the subject has no enrolled authenticator app",
                ));
            }
            let v = Verification {
                id: vid.clone(),
                method,
                state: VerificationState::Pending,
                destination: None,
                respondent: subject.id.clone(),
                contact_changed_at: None,
                secret_hash: None,
                attempts: 0,
                max_attempts: self.config.codes.max_attempts,
                started_at: now,
                expires_at: now + Duration::minutes(self.config.codes.phone_ttl_minutes),
                completed_at: None,
                respondent_check: None,
            };
            case.start_verification(v, now)?;
            let started = self.started(caller, &case, &vid, method, json!({}));
            self.store
                .commit(updating(&case, stored.version, vec![started]))
                .await?;
            return Ok((vid, self.view(&case).await?));
        }
        // Codes and links alike count toward the destination's send limit.
        let (verification, message, link, destination) = if let Some(kind) = method.contact_kind() {
            let contact = subject.contact(kind).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_contact_of_record",
                    format!("the subject has no {kind} of record"),
                )
            })?;
            if trusted_contact(&subject, kind, fresh, now).is_none() {
                let why = if contact.verified_at.is_none() {
                    "was never verified".to_owned()
                } else {
                    format!(
                        "was changed {} day(s) ago, inside the {}-day freshness window",
                        (now - contact.changed_at).num_days(),
                        case.requirements.contact_freshness_days
                    )
                };
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "contact_not_trusted",
                    format!("the {kind} of record {why}; it cannot carry a verification"),
                ));
            }
            let code = CodeHasher::generate_code(self.config.codes.digits);
            let ttl = if kind == ContactKind::Email {
                self.config.codes.email_ttl_minutes
            } else {
                self.config.codes.phone_ttl_minutes
            };
            let channel = match method {
                Method::VoiceCode => "voice",
                Method::SmsCode => "sms",
                _ => "email",
            };
            let v = Verification {
                id: vid.clone(),
                method,
                state: VerificationState::Pending,
                destination: Some(contact.masked()),
                respondent: subject.id.clone(),
                contact_changed_at: Some(contact.changed_at),
                secret_hash: Some(self.codes.hash(&vid, &code)),
                attempts: 0,
                max_attempts: self.config.codes.max_attempts,
                started_at: now,
                expires_at: now + Duration::minutes(ttl),
                completed_at: None,
                respondent_check: None,
            };
            let message = Message {
                to: contact.value.clone(),
                channel: channel.to_owned(),
                kind: "verification_code".to_owned(),
                subject_id: subject.id.clone(),
                case_id: Some(case.id.clone()),
                body: format!(
                    "Your Deskgate verification code is {code}. The help desk will ask you to read \
                     it back. It expires in {ttl} minutes. If you did not call the help desk, do \
                     not share it."
                ),
                secret: Some(Secret::Code(code)),
            };
            (v, message, None, contact.clone())
        } else {
            let voucher = self
                .independent_voucher(&case, &subject, caller.subject_id.as_deref())
                .await?;
            if voucher.on_probation(now) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "manager_unavailable",
                    "the manager is on probation after a recent recovery and cannot attest",
                ));
            }
            if voucher.status != SubjectStatus::Active {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "manager_unavailable",
                    format!("the manager is {} and cannot attest", voucher.status),
                ));
            }
            let contact =
                trusted_contact(&voucher, ContactKind::Email, fresh, now).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "manager_contact_not_trusted",
                        "the manager's email of record is missing, unverified or recently changed",
                    )
                })?;
            // The link alone is not enough: the manager signs in with a code to their own phone
            // of record before the case appears, so that phone must be one we can trust.
            if trusted_contact(&voucher, ContactKind::Phone, fresh, now).is_none() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "manager_cannot_authenticate",
                    "the manager has no verified phone of record unchanged for the freshness \
                     window to receive a sign-in code on; use another verification",
                ));
            }
            let token = secrets::random_token();
            let expires_at = now + Duration::minutes(self.config.attestation_ttl_minutes);
            let url = format!(
                "{}/attest/{token}",
                self.config.public_url.trim_end_matches('/')
            );
            let v = Verification {
                id: vid.clone(),
                method,
                state: VerificationState::Pending,
                destination: Some(contact.masked()),
                respondent: voucher.id.clone(),
                contact_changed_at: None,
                secret_hash: None,
                attempts: 0,
                max_attempts: self.config.codes.max_attempts,
                started_at: now,
                expires_at,
                completed_at: None,
                respondent_check: None,
            };
            let link = LinkToken {
                token_hash: secrets::token_hash(&token),
                kind: "attestation".to_owned(),
                case_id: case.id.clone(),
                verification_id: vid.clone(),
                respondent: voucher.id.clone(),
                created_at: now,
                expires_at,
                used_at: None,
            };
            let message = Message {
                to: contact.value.clone(),
                channel: "email".to_owned(),
                kind: "attestation_link".to_owned(),
                subject_id: voucher.id.clone(),
                case_id: Some(case.id.clone()),
                body: format!(
                    "The help desk asks you to confirm that {} requested a {} (case {}). Open \
                     {url} only if you have spoken to them yourself. If you know nothing about \
                     this, reject it.",
                    subject.display_name, case.action, case.id
                ),
                secret: Some(Secret::Link(url)),
            };
            (v, message, Some(link), contact.clone())
        };
        let masked = verification.destination.clone();
        let respondent = verification.respondent.clone();
        let expires_at = verification.expires_at;
        case.start_verification(verification, now)?;
        self.contact_send_slot(&destination, now).await?;
        self.delivery.send(&message).await.map_err(|e| {
            tracing::warn!(case = %case.id, method = %method, error = %e, "delivery failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "delivery_failed",
                "the message could not be delivered; nothing was recorded, try again",
            )
        })?;
        let audit = vec![self.entry(
            &actor(caller),
            Some(&case.id),
            "verification.started",
            json!({
                "verification_id": vid, "method": method, "class": method.class(),
                "destination": masked, "respondent": respondent, "expires_at": expires_at,
            }),
        )];
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                new_links: link.into_iter().collect(),
                audit,
                ..Change::default()
            })
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    /// Creates an inquiry at the identity-verification vendor, bound to the subject's identity of
    /// record, and sends the subject (at the email of record) the vendor's link; the vendor's
    /// signed webhook completes the verification later, for this inquiry only.
    async fn start_id_proofing(
        &self,
        caller: &Staff,
        stored: StoredCase,
        subject: Subject,
        vid: String,
    ) -> ApiResult<(String, CaseView)> {
        let now = self.now();
        let mut case = stored.case.clone();
        let (vendor, vendor_config) =
            crate::idv_inquiry::creating_vendor(&self.config.idv.vendors).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "method_not_available",
                    "no identity-verification vendor is configured to create inquiries (api_url, api_key)",
                )
            })?;
        let expected = crate::idv::ExpectedIdentity::of(
            subject.identity.as_ref(),
            &self.config.idv.match_fields,
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_identity_of_record",
                format!("identity proofing cannot be bound to this subject: {e}"),
            )
        })?;
        let fresh = case.requirements.freshness();
        let email = trusted_contact(&subject, ContactKind::Email, fresh, now).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contact_not_trusted",
                "the email of record is missing, unverified or recently changed",
            )
        })?;
        let reference = format!("{}/{vid}", case.id);
        let inquiry = crate::idv_inquiry::create(vendor, vendor_config, &reference, &expected)
            .await
            .map_err(|e| {
                tracing::warn!(vendor = vendor.as_str(), error = %e, "inquiry not created");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "idv_unavailable",
                    "the identity-verification vendor did not create the inquiry; nothing was recorded, try again",
                )
            })?;
        let v = Verification {
            id: vid.clone(),
            method: Method::IdProofing,
            state: VerificationState::Pending,
            destination: Some(email.masked()),
            respondent: subject.id.clone(),
            contact_changed_at: None,
            // Only a result for this inquiry can complete the verification.
            secret_hash: Some(self.codes.hash(&vid, &inquiry.inquiry_id)),
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now + Duration::minutes(self.config.idv.ttl_minutes),
            completed_at: None,
            respondent_check: None,
        };
        case.start_verification(v, now)?;
        let url = inquiry.link;
        let message = Message {
            to: email.value.clone(),
            channel: "email".to_owned(),
            kind: "idv_link".to_owned(),
            subject_id: subject.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "The help desk asks you to prove your identity with a government ID and a selfie. \
                 Open {url} on your own device; the link is for you alone."
            ),
            secret: Some(Secret::Link(url)),
        };
        self.contact_send_slot(email, now).await?;
        self.delivery.send(&message).await.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "delivery_failed",
                "the message could not be delivered; nothing was recorded, try again",
            )
        })?;
        let started = self.started(
            caller,
            &case,
            &vid,
            Method::IdProofing,
            json!({
                "destination": email.masked(), "vendor": vendor.as_str(),
                "inquiry_id": inquiry.inquiry_id, "match_fields": expected.field_names(),
            }),
        );
        self.store
            .commit(updating(&case, stored.version, vec![started]))
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    /// Sends a push challenge to the subject's enrolled device. The agent reads the number shown
    /// on the case to the caller, who must enter it on the device: approving blindly is not
    /// possible. Pushes are limited per subject so that a flood cannot wear the person down.
    async fn start_push(
        &self,
        caller: &Staff,
        stored: StoredCase,
        subject: Subject,
        vid: String,
    ) -> ApiResult<(String, CaseView)> {
        let now = self.now();
        let mut case = stored.case.clone();
        let device = subject
            .authenticators
            .iter()
            .find(|a| a.kind == AuthenticatorKind::Push)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_authenticator",
                    "the subject has no enrolled push device",
                )
            })?;
        // Counted in the same commit that records the push, so racing requests cannot overshoot.
        let slot = deskgate_store::SendSlot {
            contact_hash: self.codes.hash("push", &subject.id),
            at: now,
            since: now - Duration::minutes(self.config.codes.send_window_minutes),
            limit: self.config.codes.max_sends_per_contact,
        };
        let number = rand::Rng::gen_range(&mut rand::rngs::OsRng, 10..100u32).to_string();
        let v = Verification {
            id: vid.clone(),
            method: Method::Push,
            state: VerificationState::Pending,
            destination: Some(format!(
                "{}: read out the number {number}; the caller must enter it on the device",
                device.label
            )),
            respondent: subject.id.clone(),
            contact_changed_at: None,
            secret_hash: Some(self.codes.hash(&vid, &number)),
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now + Duration::minutes(5),
            completed_at: None,
            respondent_check: None,
        };
        case.start_verification(v, now)?;
        let started = self.started(
            caller,
            &case,
            &vid,
            Method::Push,
            json!({ "device": device.id }),
        );
        self.store
            .commit(Change {
                send_slots: vec![slot],
                ..updating(&case, stored.version, vec![started])
            })
            .await
            .map_err(|e| match e {
                deskgate_store::StoreError::LimitReached { sent } => ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "push_limit",
                    format!(
                        "{sent} pushes went to this device in the last {} minutes; no more (push fatigue defence)",
                        self.config.codes.send_window_minutes
                    ),
                ),
                other => other.into(),
            })?;
        Ok((vid, self.view(&case).await?))
    }

    /// Calls the phone of record back through the telephony provider (never a number the caller
    /// gave). The call asks whoever answers to key in the one-time code the agent now reads to
    /// the caller; the provider's signed Gather webhook brings the digits back
    /// ([`Service::callback_gathered`]). The agent sees the code once, in this answer; only its
    /// hash is kept, and the number is shown masked.
    async fn start_callback(
        &self,
        caller: &Staff,
        stored: StoredCase,
        subject: Subject,
        vid: String,
    ) -> ApiResult<(String, CaseView)> {
        let now = self.now();
        let mut case = stored.case.clone();
        let telephony = self.config.telephony.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "method_not_available",
                "no telephony provider is configured to place callbacks",
            )
        })?;
        let fresh = case.requirements.freshness();
        let phone = trusted_contact(&subject, ContactKind::Phone, fresh, now).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contact_not_trusted",
                "the phone of record is missing, unverified or recently changed",
            )
        })?;
        let code = CodeHasher::generate_code(self.config.codes.digits);
        let action = format!(
            "{}/api/v1/webhooks/telephony/gather/{}/{vid}",
            self.config.public_url.trim_end_matches('/'),
            case.id
        );
        let twiml = crate::telephony::gather_twiml(&action, code.len());
        let placed = async {
            crate::delivery::TwilioDelivery::new(telephony)
                .map_err(|e| e.to_string())?
                .place_call(&phone.value, &twiml)
                .await
                .map_err(|e| match e {
                    // Twilio's message can quote the number called; the log keeps the codes.
                    crate::delivery::DeliveryError::Twilio { status, code, .. } => {
                        format!("Twilio refused the call (HTTP {status}, error {code:?})")
                    }
                    other => other.to_string(),
                })
        };
        let call_sid = placed.await.map_err(|e| {
            tracing::warn!(case = %case.id, error = %e, "callback not placed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "delivery_failed",
                "the callback could not be placed; nothing was recorded, try again",
            )
        })?;
        let v = Verification {
            id: vid.clone(),
            method: Method::Callback,
            state: VerificationState::Pending,
            destination: Some(phone.masked()),
            respondent: subject.id.clone(),
            contact_changed_at: Some(phone.changed_at),
            secret_hash: Some(self.codes.hash(&vid, &code)),
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now + Duration::minutes(self.config.codes.phone_ttl_minutes),
            completed_at: None,
            respondent_check: None,
        };
        case.start_verification(v, now)?;
        let started = self.started(
            caller,
            &case,
            &vid,
            Method::Callback,
            json!({ "destination": phone.masked(), "call_sid": call_sid }),
        );
        self.store
            .commit(updating(&case, stored.version, vec![started]))
            .await?;
        let mut view = self.view(&case).await?;
        if let Some(shown) = view.verifications.iter_mut().find(|v| v.id == vid) {
            shown.read_out = Some(code);
        }
        Ok((vid, view))
    }

    /// The telephony provider's Gather webhook for a callback: `params` are the form fields it
    /// posted to `url` (the action URL of the call's TwiML), `signature` its
    /// `X-Twilio-Signature`. Only a correctly signed request for a pending callback, from the
    /// configured account, whose digits match the code the agent read out (constant time)
    /// passes it; wrong digits fail it. Answers the TwiML the caller hears.
    pub async fn callback_gathered(
        &self,
        case_id: &str,
        vid: &str,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> ApiResult<String> {
        let telephony = self
            .config
            .telephony
            .as_ref()
            .ok_or_else(|| ApiError::not_found("telephony provider"))?;
        let signed = signature.is_some_and(|header| {
            crate::telephony::signature_matches(&telephony.auth_token, url, params, header)
        });
        let field = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if !signed || field("AccountSid") != Some(telephony.account_sid.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "the request is not signed by the configured telephony provider",
            ));
        }
        let stored = self.load_case(case_id).await?;
        let mut case = stored.case.clone();
        let hash = match case.verification(vid) {
            Some(v) if v.method == Method::Callback => v.secret_hash.clone().unwrap_or_default(),
            _ => return Err(ApiError::not_found("callback")),
        };
        let now = self.now();
        let digits = field("Digits").unwrap_or_default();
        let matched = !digits.is_empty() && self.codes.matches(vid, digits, &hash);
        let before = case.state;
        case.complete_external(vid, matched, now)?;
        let who = Actor {
            id: "telephony".to_owned(),
            role: "telephony_provider".to_owned(),
            auth: "webhook_signature".to_owned(),
        };
        let mut entry = self.entry(
            &who,
            Some(&case.id),
            if matched {
                "verification.passed"
            } else {
                "verification.failed"
            },
            json!({
                "verification_id": vid, "method": Method::Callback,
                "call_sid": field("CallSid").unwrap_or_default(),
                "outcome": if matched { "the code was keyed in on the phone of record" } else { "wrong or no digits keyed in" },
            }),
        );
        if matched {
            entry = Self::on_evidence(entry, &case);
        }
        let mut audit = vec![entry];
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        let words = if matched {
            "Thank you. The code is confirmed. Goodbye."
        } else {
            "That code is not the one the help desk read to you. Goodbye."
        };
        Ok(format!("<Response><Say>{words}</Say></Response>"))
    }

    /// The subject's device answers the newest pending push: approve with the number the agent
    /// read out, or deny. A wrong number fails the verification.
    pub async fn push_response(
        &self,
        subject_id: &str,
        approve: bool,
        number: Option<&str>,
    ) -> ApiResult<Value> {
        let now = self.now();
        // The push went to whoever must answer it: the subject, or for a service account the
        // owner who asked. So look at the subject's own cases and at every case in verification
        // (a bounded set: cases in verification live minutes), keeping those addressed to them.
        let mut cases = self
            .store
            .list_cases(&CaseFilter {
                state: Some(CaseState::Verifying),
                subject_id: Some(subject_id.to_owned()),
                limit: 50,
                ..CaseFilter::default()
            })
            .await?;
        cases.extend(
            self.store
                .list_cases(&CaseFilter {
                    state: Some(CaseState::Verifying),
                    limit: 1000,
                    ..CaseFilter::default()
                })
                .await?,
        );
        let (case_id, vid) = cases
            .iter()
            .flat_map(|c| c.verifications.iter().map(move |v| (c, v)))
            .filter(|(_, v)| {
                v.method == Method::Push
                    && v.respondent == subject_id
                    && v.state == VerificationState::Pending
                    && !v.is_expired(now)
            })
            .max_by_key(|(_, v)| v.started_at)
            .map(|(c, v)| (c.id.clone(), v.id.clone()))
            .ok_or_else(|| ApiError::not_found("pending push for this device"))?;
        let stored = self.load_case(&case_id).await?;
        let mut case = stored.case.clone();
        let hash = case
            .verification(&vid)
            .and_then(|v| v.secret_hash.clone())
            .unwrap_or_default();
        let matched = approve && number.is_some_and(|n| self.codes.matches(&vid, n, &hash));
        let before = case.state;
        case.complete_external(&vid, matched, now)?;
        let who = Actor {
            id: subject_id.to_owned(),
            role: "subject".to_owned(),
            auth: "enrolled_device".to_owned(),
        };
        let (event, reason) = match (approve, matched) {
            (_, true) => ("verification.passed", "approved with the matching number"),
            (true, false) => ("verification.failed", "approved with a wrong number"),
            (false, _) => ("verification.failed", "denied on the device"),
        };
        let mut entry = self.entry(
            &who,
            Some(&case.id),
            event,
            json!({ "verification_id": vid, "method": Method::Push, "outcome": reason }),
        );
        if matched {
            entry = Self::on_evidence(entry, &case);
        }
        let mut audit = vec![entry];
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        Ok(json!({ "case_id": case.id, "counted": matched, "case_state": case.state }))
    }

    /// An identity-verification vendor's signed result. Only an approved inquiry with document,
    /// selfie and liveness checks, for the inquiry Deskgate created, whose document the vendor
    /// matched to the subject's identity of record, counts as `government_id`; a delivery is
    /// processed once.
    pub async fn idv_webhook(
        &self,
        vendor: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> ApiResult<Value> {
        use crate::idv::{IdvError, IdvStatus, Vendor, WebhookVerifier};
        let unknown = || ApiError::not_found("identity-verification vendor");
        let kind = Vendor::from_path_segment(vendor).map_err(|_| unknown())?;
        let secret = self.config.idv.vendors.get(vendor).ok_or_else(unknown)?;
        let verifier = WebhookVerifier::new(kind, &secret.secret).map_err(|_| {
            tracing::error!(vendor, "the configured webhook secret is malformed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "idv_misconfigured",
                "the vendor is misconfigured",
            )
        })?;
        let now = self.now();
        let delivery = verifier.verify(headers, body, now).map_err(|e| match e {
            IdvError::Stale { .. } | IdvError::FromTheFuture { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "stale_delivery",
                "the delivery's timestamp is outside the 5-minute window",
            ),
            IdvError::MalformedBody(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", m)
            }
            _ => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "the delivery is not signed by the configured vendor",
            ),
        })?;
        let who = Actor {
            id: kind.as_str().to_owned(),
            role: "idv_vendor".to_owned(),
            auth: "webhook_signature".to_owned(),
        };
        // Checked here for a clear answer; the unique key in the commit settles races.
        if self
            .store
            .webhook_seen(kind.as_str(), &delivery.delivery_id)
            .await?
        {
            return Err(replay_error(deskgate_store::StoreError::Conflict(
                String::new(),
            )));
        }
        let seen = vec![(kind.as_str().to_owned(), delivery.delivery_id.clone(), now)];
        let Some(result) = delivery.result else {
            self.store
                .commit(Change {
                    webhook_deliveries: seen,
                    ..Change::default()
                })
                .await
                .map_err(replay_error)?;
            return Ok(
                json!({ "accepted": true, "counted": false, "reason": "no inquiry result in this event" }),
            );
        };
        let reference = result.reference_id.clone().unwrap_or_default();
        let (case_id, vid) = reference
            .split_once('/')
            .ok_or_else(|| ApiError::not_found("verification for this inquiry"))?;
        let stored = self.load_case(case_id).await?;
        let mut case = stored.case.clone();
        // The verification is bound to the inquiry Deskgate created: a result for any other
        // inquiry naming the same reference matches nothing.
        let respondent = match case.verification(vid) {
            Some(v)
                if v.method == Method::IdProofing
                    && v.secret_hash
                        .as_deref()
                        .is_some_and(|hash| self.codes.matches(vid, &result.inquiry_id, hash)) =>
            {
                v.respondent.clone()
            }
            _ => return Err(ApiError::not_found("verification for this inquiry")),
        };
        let subject = self
            .subject_or(&respondent, StatusCode::NOT_FOUND, "not_found")
            .await?;
        // Without an identity of record nothing can match: the result fails closed.
        let unmatched: Vec<&'static str> = match crate::idv::ExpectedIdentity::of(
            subject.identity.as_ref(),
            &self.config.idv.match_fields,
        ) {
            Ok(expected) => result
                .unmatched_fields(&expected)
                .into_iter()
                .map(crate::idv::IdentityField::as_str)
                .collect(),
            Err(_) => vec!["identity_of_record"],
        };
        let identity_matched = unmatched.is_empty();
        let details = json!({
            "verification_id": vid, "inquiry_id": result.inquiry_id,
            "status": format!("{:?}", result.status).to_lowercase(),
            "checks": { "document": result.checks.document, "selfie": result.checks.selfie, "liveness": result.checks.liveness },
            "identity_matched": identity_matched, "unmatched_fields": unmatched,
        });
        let final_answer = matches!(result.status, IdvStatus::Approved | IdvStatus::Declined);
        // An approved document that is not the subject's is an attempt to take the account
        // over with someone else's identity: it fails and the security team hears of it.
        let mismatch = result.status == IdvStatus::Approved && !identity_matched;
        let before = case.state;
        let counted = result.counts_as_government_id() && identity_matched;
        let event = if !final_answer {
            "idv.pending"
        } else {
            case.complete_external(vid, counted, now)?;
            if counted {
                "verification.passed"
            } else {
                "verification.failed"
            }
        };
        let mut entry = self.entry(&who, Some(&case.id), event, details);
        if counted {
            entry = Self::on_evidence(entry, &case);
        }
        let mut audit = vec![entry];
        if mismatch {
            audit.push(self.entry(
                &who,
                Some(&case.id),
                "security.idv_identity_mismatch",
                json!({
                    "verification_id": vid, "subject_id": subject.id,
                    "unmatched_fields": unmatched,
                    "alerted": self.config.security_contacts.len(),
                }),
            ));
        }
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(Change {
                case: final_answer.then(|| CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                webhook_deliveries: seen,
                audit,
                ..Change::default()
            })
            .await
            .map_err(replay_error)?;
        if mismatch {
            for to in &self.config.security_contacts {
                let alert = Message {
                    to: to.clone(),
                    channel: "email".to_owned(),
                    kind: "idv_mismatch_alert".to_owned(),
                    subject_id: subject.id.clone(),
                    case_id: Some(case.id.clone()),
                    body: format!(
                        "Identity proofing in case {} ({} for {}) was completed with a document that \
                         does not match the subject's identity of record ({}). The verification \
                         failed; treat the request as a takeover attempt.",
                        case.id,
                        case.action,
                        subject.id,
                        unmatched.join(", ")
                    ),
                    secret: None,
                };
                if let Err(e) = self.delivery.send(&alert).await {
                    tracing::error!(error = %e, "identity mismatch alert not delivered");
                }
            }
        }
        Ok(json!({
            "accepted": true, "counted": counted, "identity_matched": identity_matched,
            "case_state": case.state,
        }))
    }

    /// Checks a code read back by the caller.
    pub async fn answer_code(
        &self,
        caller: &Staff,
        case_id: &str,
        vid: &str,
        code: &str,
    ) -> ApiResult<CaseView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        let verification = case
            .verification(vid)
            .ok_or_else(|| ApiError::not_found("verification"))?
            .clone();
        let code = code.trim();
        let recovery = verification.method == Method::RecoveryCode;
        let recovery_code = if recovery {
            Some(normalise_recovery_code(code).ok_or_else(|| {
                ApiError::invalid(
                    "a recovery code is 16 letters and digits, like ABCD-EFGH-JKLM-NPQR",
                )
            })?)
        } else {
            if !(6..=12).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_digit()) {
                return Err(ApiError::invalid("code must be 6 to 12 digits"));
            }
            None
        };
        let who = actor(caller);
        if case.expire_verification(vid, now) {
            self.store
                .commit(Change {
                    case: Some(CaseWrite::Update {
                        case: case.clone(),
                        expected_version: stored.version,
                    }),
                    audit: vec![self.entry(
                        &who,
                        Some(&case.id),
                        "verification.expired",
                        json!({ "verification_id": vid, "method": verification.method }),
                    )],
                    ..Change::default()
                })
                .await?;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "verification_expired",
                "the code expired; start a new verification",
            ));
        }
        // A recovery code is checked against every unused code (each compare in constant time)
        // and, when it matches, spent in the same commit only if it is still unused: single use
        // even when two cases race for it. Likewise a TOTP step counts only if the stored record
        // is still the one read, so one step passes once.
        let mut spend_recovery_codes = Vec::new();
        let mut swap_credentials = Vec::new();
        let matched = match &recovery_code {
            Some(answer) => {
                let hashes = self.recovery_hashes(&verification.respondent).await?;
                let context = format!("recovery:{}", verification.respondent);
                let mut hit = None;
                for h in &hashes {
                    if self.codes.matches(&context, answer, h) {
                        hit = Some(h.clone());
                    }
                }
                let matched = hit.is_some();
                if let Some(h) = hit {
                    spend_recovery_codes.push((verification.respondent.clone(), h, now));
                }
                matched
            }
            None if verification.method == Method::Totp => {
                // The person verified: the subject, or the owner who asked for a service account.
                let subject = self
                    .subject_or(&verification.respondent, StatusCode::NOT_FOUND, "not_found")
                    .await?;
                let settled = subject.has_settled_authenticator(
                    AuthenticatorKind::Totp,
                    case.requirements.freshness(),
                    now,
                );
                match self.totp_stored(&subject).await?.filter(|_| settled) {
                    Some((record, stored)) => {
                        let secret = self.totp_secret(&subject.id, &record)?;
                        let unix = u64::try_from(now.timestamp()).unwrap_or(0);
                        // A code of a step already used (a replay, or an older code) fails.
                        match crate::totp::verify(&secret, code, unix, record.last_step) {
                            Ok(step) => {
                                let next = TotpRecord {
                                    sealed: record.sealed,
                                    last_step: Some(step),
                                };
                                swap_credentials.push(deskgate_store::CredentialSwap {
                                    expected_hash: stored,
                                    credential: Self::totp_credential(&subject.id, &next, now),
                                });
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    None => false,
                }
            }
            None => verification
                .secret_hash
                .as_deref()
                .is_some_and(|h| self.codes.matches(vid, code, h)),
        };
        let before = case.state;
        let outcome = case.answer_code(vid, matched, now)?;
        let base = json!({ "verification_id": vid, "method": verification.method, "class": verification.method.class() });
        let (event, details) = match outcome {
            AttemptOutcome::Passed => ("verification.passed", base),
            AttemptOutcome::Failed { attempts_left } => (
                "verification.failed",
                json!({ "verification_id": vid, "method": verification.method, "attempts_left": attempts_left }),
            ),
            AttemptOutcome::Locked => ("verification.locked", base),
        };
        let mut first = self.entry(&who, Some(&case.id), event, details);
        if outcome == AttemptOutcome::Passed {
            // This verification's own evidence digest: the last one the case holds.
            first.evidence_digests = Self::evidence_digests(&case)
                .into_iter()
                .zip(case.evidence())
                .filter(|(_, e)| e.verification_id == vid)
                .map(|(d, _)| d)
                .collect();
        }
        let mut audit = vec![first];
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                spend_recovery_codes,
                swap_credentials,
                audit,
                ..Change::default()
            })
            .await?;
        match outcome {
            AttemptOutcome::Passed => self.view(&case).await,
            AttemptOutcome::Failed { attempts_left } => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong_code",
                format!("the code is wrong; {attempts_left} attempt(s) left"),
            )
            .with_details(json!({ "attempts_left": attempts_left, "locked": false }))),
            AttemptOutcome::Locked => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong_code",
                "the code is wrong; the verification is now locked",
            )
            .with_details(json!({ "attempts_left": 0, "locked": true }))),
        }
    }

    pub(crate) async fn live_link(&self, token: &str) -> ApiResult<LinkToken> {
        if token.is_empty() || token.len() > 128 {
            return Err(ApiError::not_found("link"));
        }
        let link = self
            .store
            .link(&secrets::token_hash(token))
            .await?
            .ok_or_else(|| ApiError::not_found("link"))?;
        if link.used_at.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "link_used",
                "this link was already used",
            ));
        }
        if self.now() >= link.expires_at {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "link_expired",
                "this link has expired",
            ));
        }
        Ok(link)
    }

    /// Hands over a rotated service secret once: the link is used and the sealed copy destroyed
    /// in the same commit, so a second retrieval finds nothing.
    pub async fn retrieve_secret(&self, token: &str) -> ApiResult<Value> {
        let link = self.check_retrieval(token).await?;
        let stored = self.load_case(&link.case_id).await?;
        let subject_id = stored.case.subject_id.clone();
        let now = self.now();
        let credential = self
            .store
            .credential(&subject_id, SECRET_PICKUP)
            .await?
            .filter(|c| c.used_at.is_none() && c.expires_at.is_some_and(|e| now < e))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "link_used",
                    "the secret was already retrieved or has expired",
                )
            })?;
        let secret = self
            .sealer
            .open(&format!("{subject_id}/{SECRET_PICKUP}"), &credential.hash)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "corrupt_credential",
                    "the sealed secret cannot be read",
                )
            })?;
        let secret = String::from_utf8(secret).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_credential",
                "the sealed secret cannot be read",
            )
        })?;
        self.store
            .commit(Change {
                use_links: vec![(link.token_hash.clone(), now)],
                credentials: vec![deskgate_store::Credential {
                    hash: String::new(),
                    used_at: Some(now),
                    ..credential
                }],
                audit: vec![self.entry(
                    &Actor {
                        id: link.respondent.clone(),
                        role: "owner".to_owned(),
                        auth: "retrieval_link".to_owned(),
                    },
                    Some(&link.case_id),
                    "service_secret.retrieved",
                    json!({ "subject_id": subject_id, "by": link.respondent }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(json!({ "subject_id": subject_id, "secret": secret }))
    }

    /// The live retrieval link behind `token`; neither the service account nor the owner it
    /// was sent to may be held by the security team.
    pub async fn check_retrieval(&self, token: &str) -> ApiResult<LinkToken> {
        let link = self.live_link(token).await?;
        if link.kind != "secret_retrieval" {
            return Err(ApiError::not_found("link"));
        }
        let stored = self.load_case(&link.case_id).await?;
        for id in [&stored.case.subject_id, &link.respondent] {
            let held = self
                .subject_or(id, StatusCode::NOT_FOUND, "not_found")
                .await?;
            ensure_not_on_hold(&held, true)?;
        }
        Ok(link)
    }

    /// Redeems a temporary access pass, once, before it expires, to enrol a new authenticator
    /// app; the answer carries its `otpauth://` URI. The pass does nothing else: it opens no
    /// case, changes no contact and signs in nowhere.
    pub async fn redeem_pass(&self, subject_id: &str, pass: &str) -> ApiResult<Value> {
        let refused = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "pass_refused",
                "the pass is wrong, used or expired",
            )
        };
        if subject_id.len() > 128 || pass.is_empty() || pass.len() > 128 {
            return Err(refused());
        }
        let now = self.now();
        let credential = self
            .store
            .credential(subject_id, "temporary_access_pass")
            .await?
            .ok_or_else(refused)?;
        let presented = secrets::token_hash(pass);
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), credential.hash.as_bytes()).into();
        if !matches
            || credential.used_at.is_some()
            || credential.expires_at.is_none_or(|e| now >= e)
        {
            return Err(refused());
        }
        let mut subject = self
            .subject_or(subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        ensure_not_on_hold(&subject, true)?;
        let (uri, sealed) = self.bind_new_app(&mut subject, now)?;
        let notices = directory::notice_to_every_contact(
            &subject,
            "authenticator_notice",
            "A temporary access pass was used to enrol a new authenticator app on your \
                       account. If this was not you, contact the security team at once.",
        );
        // The pass is spent only if it is still the unused one just checked: of racing
        // redemptions, one enrols an app and the others are refused.
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                swap_credentials: vec![deskgate_store::CredentialSwap {
                    expected_hash: credential.hash.clone(),
                    credential: deskgate_store::Credential {
                        used_at: Some(now),
                        ..credential
                    },
                }],
                credentials: vec![Self::totp_credential(
                    &subject.id,
                    &TotpRecord {
                        sealed,
                        last_step: None,
                    },
                    now,
                )],
                audit: vec![self.entry(
                    &Actor {
                        id: subject.id.clone(),
                        role: "subject".to_owned(),
                        auth: "temporary_access_pass".to_owned(),
                    },
                    None,
                    "temporary_access_pass.redeemed",
                    json!({ "subject_id": subject.id, "enrolled": "totp" }),
                )],
                ..Change::default()
            })
            .await
            .map_err(|e| match e {
                deskgate_store::StoreError::Conflict(_) => refused(),
                other => other.into(),
            })?;
        // Binding a new authenticator is announced on every contact of record.
        for n in &notices {
            if let Err(e) = self.delivery.send(n).await {
                tracing::warn!(error = %e, "authenticator notice not delivered");
            }
        }
        Ok(json!({ "subject_id": subject.id, "otpauth_uri": uri }))
    }

    /// The live "not me" link behind `token`.
    pub async fn check_not_me(&self, token: &str) -> ApiResult<LinkToken> {
        let link = self.live_link(token).await?;
        if link.kind != "not_me" {
            return Err(ApiError::not_found("link"));
        }
        Ok(link)
    }

    /// "This was not me": someone at a contact of record says a recovery was not theirs. The
    /// account is locked and flagged at once (further requests are critical risk) and the security
    /// team is alerted; the link works once. In the same commit everything still outstanding that
    /// acts on the subject is spent: every unused link of the subject's cases or sent to the
    /// subject, the temporary access pass (and a passkey enrolment it started) and a sealed
    /// service secret waiting for pickup. The subject's live cases are then denied.
    pub async fn report_not_me(&self, token: &str) -> ApiResult<Value> {
        let link = self.check_not_me(token).await?;
        let now = self.now();
        let mut subject = self
            .subject_or(&link.respondent, StatusCode::NOT_FOUND, "not_found")
            .await?;
        subject.flagged = true;
        if subject.status == SubjectStatus::Active {
            subject.status = SubjectStatus::Locked;
        }
        let alerts: Vec<Message> = self
            .config
            .security_contacts
            .iter()
            .map(|to| Message {
                to: to.clone(),
                channel: "email".to_owned(),
                kind: "security_alert".to_owned(),
                subject_id: subject.id.clone(),
                case_id: Some(link.case_id.clone()),
                body: format!(
                    "A contact of record of {} reports that the recovery in case {} was not theirs. \
                     The account is locked and flagged.",
                    subject.id, link.case_id
                ),
                secret: None,
            })
            .collect();
        let spent_credentials = vec![
            "temporary_access_pass".to_owned(),
            crate::passkeys::PasskeyPurpose::Enrol.kind(),
            SECRET_PICKUP.to_owned(),
        ];
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                use_links: vec![(link.token_hash.clone(), now)],
                revoke_handovers: vec![deskgate_store::HandoverRevocation {
                    subject_id: subject.id.clone(),
                    credential_kinds: spent_credentials.clone(),
                    at: now,
                }],
                audit: vec![self.entry(
                    &Actor {
                        id: subject.id.clone(),
                        role: "contact_of_record".to_owned(),
                        auth: "not_me_link".to_owned(),
                    },
                    Some(&link.case_id),
                    "security.not_me_reported",
                    json!({
                        "subject_id": subject.id, "locked": true, "flagged": true,
                        "spent": { "links": "all unused", "credentials": spent_credentials },
                    }),
                )],
                ..Change::default()
            })
            .await?;
        self.deny_live_cases(&subject.id, &link.case_id).await;
        for alert in &alerts {
            if let Err(e) = self.delivery.send(alert).await {
                tracing::error!(error = %e, "security alert not delivered");
            }
        }
        Ok(json!({ "locked": true, "case_id": link.case_id,
                   "message": "The account is locked and the security team was alerted." }))
    }

    /// Denies every live case about `subject_id` after a "this was not me" report: their grants
    /// are withdrawn and their pending verifications closed. A case whose connector call is in
    /// flight is left to record its outcome (the subject is flagged, so nothing further runs).
    /// Best effort after the report's own commit: a case that cannot be ended is logged.
    async fn deny_live_cases(&self, subject_id: &str, reported_case: &str) {
        let reason = format!(
            "a contact of record reported the recovery in case {reported_case} as not theirs; \
             the account is locked and flagged"
        );
        for state in [
            CaseState::Open,
            CaseState::Verifying,
            CaseState::Approved,
            CaseState::Escalated,
        ] {
            let filter = CaseFilter {
                state: Some(state),
                subject_id: Some(subject_id.to_owned()),
                limit: 1000,
                ..CaseFilter::default()
            };
            let cases = match self.store.list_cases(&filter).await {
                Ok(cases) => cases,
                Err(e) => {
                    tracing::error!(subject = %subject_id, error = %e, "live cases not listed after a not-me report");
                    continue;
                }
            };
            for case in cases {
                if let Err(e) = self.deny_for_security(&case.id, &reason).await {
                    tracing::error!(case = %case.id, error = %e.message, "case not denied after a not-me report");
                }
            }
        }
    }

    /// Denies one case on the security team's behalf; a concurrent change is retried.
    async fn deny_for_security(&self, case_id: &str, reason: &str) -> ApiResult<()> {
        let mut tries = 0;
        loop {
            let stored = self.load_case(case_id).await?;
            if !stored.case.state.is_live() || stored.case.execution_in_flight() {
                return Ok(());
            }
            let mut case = stored.case.clone();
            let now = self.now();
            case.deny(reason.to_owned(), now)?;
            let committed = self
                .store
                .commit(Change {
                    case: Some(CaseWrite::Update {
                        case,
                        expected_version: stored.version,
                    }),
                    audit: vec![self.entry(
                        &system_actor(),
                        Some(case_id),
                        "case.denied",
                        json!({ "reason": reason }),
                    )],
                    ..Change::default()
                })
                .await;
            match committed {
                Ok(_) => return Ok(()),
                Err(deskgate_store::StoreError::Conflict(_)) if tries < 3 => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Consumes the case's grant and performs the action through the configured connector
    /// (the built-in directory unless `connector` says otherwise).
    pub async fn execute(&self, caller: &Staff, case_id: &str) -> ApiResult<ExecutionView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let stored = self.sync_before_execution(stored).await?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        let who = actor(caller);
        let grant = match case.execute(&caller.id, now) {
            Ok(g) => g,
            Err(deskgate_core::CaseError::GrantExpired) => {
                let mut expired = stored.case.clone();
                expired.expire("the grant expired before it was used".to_owned(), now)?;
                self.store
                    .commit(Change {
                        case: Some(CaseWrite::Update {
                            case: expired,
                            expected_version: stored.version,
                        }),
                        audit: vec![self.entry(
                            &who,
                            Some(case_id),
                            "grant.expired",
                            json!({ "grant_id": stored.case.grant.as_ref().map(|g| g.id.clone()) }),
                        )],
                        ..Change::default()
                    })
                    .await?;
                return Err(deskgate_core::CaseError::GrantExpired.into());
            }
            Err(e) => return Err(e.into()),
        };
        let subject = self
            .subject_or(&case.subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        // Cedar is the final gate, asked with the evidence actually collected.
        let decision = self
            .decide_on_case(Stage::Execute, caller, &stored.case, &subject)
            .await?;
        let pin = policy_gate::pin(&decision, now);
        if decision.outcome != Outcome::Allow {
            let mut refused = stored.case.clone();
            let escalate = decision.outcome == Outcome::Escalate;
            if escalate {
                refused.escalate(pin.reasons.join("; "), now)?;
            }
            refused.record_decision(pin.clone());
            self.store
                .commit(Change {
                    case: Some(CaseWrite::Update {
                        case: refused,
                        expected_version: stored.version,
                    }),
                    audit: vec![self.pinned(
                        self.entry(
                            &who,
                            Some(case_id),
                            if escalate {
                                "case.escalated"
                            } else {
                                "execution.refused"
                            },
                            json!({ "reasons": pin.reasons, "policy_ids": pin.policy_ids }),
                        ),
                        &pin,
                    )],
                    ..Change::default()
                })
                .await?;
            return Err(if escalate {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "escalated",
                    format!(
                        "the case was escalated to a security officer: {}",
                        pin.reasons.join("; ")
                    ),
                )
                .with_details(json!({ "reasons": pin.reasons, "policy_ids": pin.policy_ids }))
            } else {
                policy_refusal(&pin)
            });
        }
        if let Some(connector) = self.connector.clone() {
            return self
                .execute_through_connector(connector.as_ref(), caller, &stored, subject, pin, now)
                .await;
        }
        case.record_decision(pin.clone());
        let manager = match &subject.manager {
            Some(m) => self.store.subject(m).await?,
            None => None,
        };
        // A rotated service secret goes to the owner who asked and was verified.
        let owner = match &case.requester {
            Some(id) if subject.is_non_human() && subject.owners.contains(id) => {
                self.store.subject(id).await?
            }
            _ => None,
        };
        let tap_ttl = Duration::minutes(case.requirements.tap_minutes);
        let mut execution = directory::execute(&case, &subject, owner.as_ref(), tap_ttl, now)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "execution_refused",
                    e.to_string(),
                )
            })?;
        // Further high-risk changes escalate while the subject is on probation.
        execution.subject.probation_until =
            Some(now + Duration::hours(case.requirements.probation_hours));
        // A rotated service secret is sealed and handed over once, by a retrieval link to the
        // owner who asked; it never travels in a message.
        let mut pickup_message = None;
        if let Some((secret, owner)) = &execution.pickup {
            let (credential, link, message) = self.pickup(&case, owner, secret, now)?;
            execution.credentials.push(credential);
            pickup_message = Some((link, message));
        }
        // One "this was not me" link for every notice: any contact of record can raise the alarm.
        let not_me = secrets::random_token();
        let not_me_url = format!(
            "{}/not-me/{not_me}",
            self.config.public_url.trim_end_matches('/')
        );
        let not_me_link = LinkToken {
            token_hash: secrets::token_hash(&not_me),
            kind: "not_me".to_owned(),
            case_id: case.id.clone(),
            verification_id: String::new(),
            respondent: subject.id.clone(),
            created_at: now,
            expires_at: now + Duration::hours(case.requirements.probation_hours.max(72)),
            used_at: None,
        };
        let notices = directory::notices(
            &case,
            &subject,
            &execution.subject,
            manager.as_ref(),
            &not_me_url,
            now,
        );
        let audit = vec![
            Self::on_evidence(self.entry(
                &who,
                Some(&case.id),
                "grant.consumed",
                json!({
                    "grant_id": grant.id, "agent_id": grant.agent_id, "subject_id": grant.subject_id,
                    "tier": case.subject_tier, "action": grant.action,
                }),
            ), &case),
            self.pinned(Self::on_evidence(self.entry(
                &system_actor(),
                Some(&case.id),
                "execution.performed",
                json!({
                    "connector": "builtin",
                    "action": case.action,
                    "subject_id": case.subject_id,
                    "tier": case.subject_tier,
                    "result": execution.details,
                    "notices": notices.iter().map(|n| json!({"channel": n.channel, "subject_id": n.subject_id})).collect::<Vec<_>>(),
                }),
            ), &case), &pin),
        ];
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                subjects: vec![execution.subject.clone()],
                credentials: execution.credentials.clone(),
                new_links: std::iter::once(not_me_link)
                    .chain(pickup_message.as_ref().map(|(link, _)| link.clone()))
                    .collect(),
                audit,
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, "recovery executed");
        let pickup_notice = pickup_message.map(|(_, m)| m);
        let messages = execution
            .secret_message
            .iter()
            .chain(pickup_notice.iter())
            .chain(notices.iter());
        let failures = self.deliver_after_execution(&case.id, messages).await?;
        Ok(ExecutionView {
            case: self.view(&case).await?,
            grant_id: grant.id,
            result: execution.details,
            notices_sent: notices.len(),
            delivery_failures: failures,
        })
    }

    /// Sends what an execution produced (the secret, the pickup link, the notices), after its
    /// commit. The action has happened, so a failed delivery does not undo it; the audit trail
    /// records who was not told. Returns how many messages failed.
    pub(crate) async fn deliver_after_execution(
        &self,
        case_id: &str,
        messages: impl Iterator<Item = &Message>,
    ) -> ApiResult<usize> {
        let mut failures = Vec::new();
        for message in messages {
            if let Err(e) = self.delivery.send(message).await {
                tracing::warn!(case = %case_id, kind = %message.kind, error = %e, "delivery failed after execution");
                failures.push(json!({ "kind": message.kind, "channel": message.channel }));
            }
        }
        if !failures.is_empty() {
            self.store
                .commit(Change {
                    audit: vec![self.entry(
                        &system_actor(),
                        Some(case_id),
                        "delivery.failed",
                        json!({ "messages": failures }),
                    )],
                    ..Change::default()
                })
                .await?;
        }
        Ok(failures.len())
    }

    /// Denies or cancels a live case.
    pub async fn end_case(
        &self,
        caller: &Staff,
        case_id: &str,
        deny: bool,
        reason: &str,
    ) -> ApiResult<CaseView> {
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > 1000
            || reason.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "reason must be 1 to 1000 printable characters",
            ));
        }
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        if !deny && caller.role == Role::SecurityOfficer && stored.case.agent_id != caller.id {
            return Err(ApiError::forbidden(
                "security officers deny cases; only the agent or a supervisor cancels",
            ));
        }
        let mut case = stored.case.clone();
        let now = self.now();
        if let Some(consumed_at) = case.grant.as_ref().and_then(|g| g.consumed_at)
            && case.execution_in_flight()
        {
            return self
                .abandon_execution(caller, stored, consumed_at, reason)
                .await;
        }
        if deny {
            case.deny(reason.to_owned(), now)?;
        } else {
            case.cancel(reason.to_owned(), now)?;
        }
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![self.entry(
                    &actor(caller),
                    Some(&case.id),
                    if deny {
                        "case.denied"
                    } else {
                        "case.cancelled"
                    },
                    json!({ "reason": reason }),
                )],
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// A deny or cancel of a case whose connector call is in flight. While the call may still
    /// answer it is refused: the outcome, notices and probation land first. A call that has
    /// given no outcome for [`ABANDON_IN_FLIGHT_MINUTES`] (the process died mid-call) is ended
    /// `failed`, the outcome unknown, so the case does not hang forever.
    async fn abandon_execution(
        &self,
        caller: &Staff,
        stored: StoredCase,
        consumed_at: DateTime<Utc>,
        reason: &str,
    ) -> ApiResult<CaseView> {
        let now = self.now();
        if now < consumed_at + Duration::minutes(ABANDON_IN_FLIGHT_MINUTES) {
            return Err(deskgate_core::CaseError::ExecutionInFlight.into());
        }
        let mut case = stored.case.clone();
        case.fail_execution(
            format!("the connector's outcome was never recorded; ended by staff: {reason}"),
            now,
        )?;
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![self.entry(
                    &actor(caller),
                    Some(&case.id),
                    "execution.abandoned",
                    json!({ "reason": reason, "grant_consumed_at": consumed_at }),
                )],
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// A staff approval (supervisor, security officer, or an owner of a service account), bound
    /// to a digest of the case and its evidence at this moment.
    pub async fn approve(
        &self,
        caller: &Staff,
        case_id: &str,
        decision: Decision,
        reason: &str,
    ) -> ApiResult<CaseView> {
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > 1000
            || reason.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "reason must be 1 to 1000 printable characters",
            ));
        }
        let stored = self.load_case(case_id).await?;
        let subject = self
            .subject_or(&stored.case.subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let role = match caller.role {
            Role::Supervisor => ApproverRole::Supervisor,
            Role::SecurityOfficer => ApproverRole::SecurityOfficer,
            _ if caller
                .subject_id
                .as_ref()
                .is_some_and(|s| subject.owners.contains(s)) =>
            {
                ApproverRole::Owner
            }
            _ => {
                return Err(ApiError::forbidden(
                    "only supervisors, security officers and registered owners approve cases",
                ));
            }
        };
        let now = self.now();
        let pin = self
            .approval_permitted(caller, &stored.case, &stored.case, role, &subject)
            .await?;
        let mut case = stored.case.clone();
        let digest = case.approval_digest();
        let before = case.state;
        if let Err(e) = case.approve(
            &caller.id,
            caller.subject_id.as_deref(),
            role,
            decision,
            now,
        ) {
            self.refuse_approval(caller, &stored.case, role, &e.to_string(), None)
                .await?;
            return Err(e.into());
        }
        case.record_decision(pin.clone());
        let who = actor(caller);
        let mut audit = vec![self.pinned(
            Self::on_evidence(
                self.entry(
                    &who,
                    Some(&case.id),
                    "approval.recorded",
                    json!({ "role": role, "decision": decision, "reason": reason, "case_digest": digest }),
                ),
                &case,
            ),
            &pin,
        )];
        if case.state == CaseState::Denied {
            audit.push(self.entry(
                &who,
                Some(&case.id),
                "case.denied",
                json!({ "reason": case.outcome_reason }),
            ));
        }
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        self.view(&case).await
    }

    /// Break-glass: a security officer switches a case whose playbook cannot be met to the
    /// break-glass requirements, approving it as the first of two officers. Loud: the security
    /// contacts are alerted, and the case shows in the break-glass report.
    pub async fn break_glass(
        &self,
        caller: &Staff,
        case_id: &str,
        reason: &str,
    ) -> ApiResult<CaseView> {
        if caller.role != Role::SecurityOfficer {
            return Err(ApiError::forbidden(
                "only a security officer opens break-glass",
            ));
        }
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > 1000
            || reason.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "reason must be 1 to 1000 printable characters",
            ));
        }
        let stored = self.load_case(case_id).await?;
        let subject = self
            .subject_or(&stored.case.subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let mut case = stored.case.clone();
        let now = self.now();
        let resolved = self.bundle().playbooks().resolve(
            case.subject_tier,
            case.action,
            case.risk.level,
            true,
        );
        let mut requirements = resolved.requirements.to_core_requirements();
        requirements.contact_freshness_days = case.requirements.contact_freshness_days;
        let role = ApproverRole::SecurityOfficer;
        let opened = case.open_break_glass(requirements, now).and_then(|()| {
            case.approve(
                &caller.id,
                caller.subject_id.as_deref(),
                role,
                Decision::Confirm,
                now,
            )
        });
        if let Err(e) = opened {
            self.refuse_approval(caller, &stored.case, role, &e.to_string(), None)
                .await?;
            return Err(e.into());
        }
        // Opening break-glass is an approval like any other: the bundle's guardrails (own
        // manager, security tier, terminated...) decide on it with the break-glass case.
        let pin = self
            .approval_permitted(caller, &case, &stored.case, role, &subject)
            .await?;
        case.record_decision(pin.clone());
        let digest = case.approval_digest();
        let who = actor(caller);
        let audit = vec![
            self.entry(
                &who,
                Some(&case.id),
                "break_glass.opened",
                json!({ "reason": reason, "requirements": case.requirements, "playbook_rows": resolved.rows }),
            ),
            self.pinned(
                Self::on_evidence(
                    self.entry(
                        &who,
                        Some(&case.id),
                        "approval.recorded",
                        json!({ "role": role, "decision": Decision::Confirm, "reason": reason, "case_digest": digest }),
                    ),
                    &case,
                ),
                &pin,
            ),
        ];
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        for to in &self.config.security_contacts {
            let alert = Message {
                to: to.clone(),
                channel: "email".to_owned(),
                kind: "break_glass_alert".to_owned(),
                subject_id: case.subject_id.clone(),
                case_id: Some(case.id.clone()),
                body: format!(
                    "Break-glass opened by {} on case {} ({} for {}): {reason}",
                    caller.name, case.id, case.action, case.subject_id
                ),
                secret: None,
            };
            if let Err(e) = self.delivery.send(&alert).await {
                tracing::error!(error = %e, "break-glass alert not delivered");
            }
        }
        self.view(&case).await
    }

    /// Asks the bundle whether `caller` may approve `case` (as it would stand after the
    /// approval's own change) in `role`; a refusal is audited against the stored case and returned.
    async fn approval_permitted(
        &self,
        caller: &Staff,
        case: &Case,
        stored: &Case,
        role: ApproverRole,
        subject: &Subject,
    ) -> ApiResult<PolicyPin> {
        let policy = self
            .decide_on_case(Stage::Approve, caller, case, subject)
            .await?;
        let pin = policy_gate::pin(&policy, self.now());
        if policy.outcome != Outcome::Allow {
            self.refuse_approval(caller, stored, role, &pin.reasons.join("; "), Some(&pin))
                .await?;
            return Err(policy_refusal(&pin));
        }
        Ok(pin)
    }

    /// Writes `approval.refused`: who tried to approve (or open break-glass on) which case in
    /// which role, why it was refused, and the deciding policies when the bundle refused it.
    async fn refuse_approval(
        &self,
        caller: &Staff,
        case: &Case,
        role: ApproverRole,
        reason: &str,
        pin: Option<&PolicyPin>,
    ) -> ApiResult<()> {
        let entry = self.entry(
            &actor(caller),
            Some(&case.id),
            "approval.refused",
            json!({
                "role": role, "reason": reason,
                "policy_ids": pin.map(|p| p.policy_ids.clone()).unwrap_or_default(),
            }),
        );
        let entry = match pin {
            Some(p) => self.pinned(entry, p),
            None => entry,
        };
        self.store
            .commit(Change {
                audit: vec![entry],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// Break-glass cases, newest first, for security officers and auditors.
    pub async fn break_glass_report(&self, caller: &Staff) -> ApiResult<Vec<CaseSummary>> {
        if !matches!(caller.role, Role::SecurityOfficer | Role::Auditor) {
            return Err(ApiError::forbidden(
                "only security officers and auditors read this report",
            ));
        }
        let cases = self
            .store
            .list_cases(&CaseFilter {
                limit: 1000,
                ..CaseFilter::default()
            })
            .await?;
        Ok(cases
            .iter()
            .filter(|c| c.break_glass)
            .map(CaseSummary::from)
            .collect())
    }

    /// Live cases waiting for an approval the caller's role can give.
    pub async fn pending_approvals(&self, caller: &Staff) -> ApiResult<Vec<CaseSummary>> {
        let role = match caller.role {
            Role::Supervisor => ApproverRole::Supervisor,
            Role::SecurityOfficer => ApproverRole::SecurityOfficer,
            _ => {
                return Err(ApiError::forbidden(
                    "only supervisors and security officers have an approval queue",
                ));
            }
        };
        let mut out = Vec::new();
        for state in [CaseState::Open, CaseState::Verifying] {
            let cases = self
                .store
                .list_cases(&CaseFilter {
                    state: Some(state),
                    limit: 500,
                    ..CaseFilter::default()
                })
                .await?;
            out.extend(
                cases
                    .iter()
                    .filter(|c| c.agent_id != caller.id)
                    .filter(|c| {
                        caller
                            .subject_id
                            .as_deref()
                            .is_some_and(|p| !c.excluded_vouchers().contains(&p))
                    })
                    .filter(|c| {
                        c.requirements
                            .missing_approvals(&c.counted_approvals())
                            .contains(&role)
                    })
                    .map(CaseSummary::from),
            );
        }
        Ok(out)
    }

    /// A security officer takes an escalated case back into verification and works it.
    pub async fn resume(&self, caller: &Staff, case_id: &str) -> ApiResult<CaseView> {
        if caller.role != Role::SecurityOfficer {
            return Err(ApiError::forbidden(
                "only a security officer resumes an escalated case",
            ));
        }
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        case.resume(now)?;
        // The officer now owns the case: the grant, when there is one, names them.
        case.agent_id = caller.id.clone();
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![self.entry(
                    &actor(caller),
                    Some(&case.id),
                    "case.resumed",
                    json!({ "previous_agent": stored.case.agent_id, "reason": stored.case.outcome_reason }),
                )],
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// Reloads the policy bundle (admin API, or SIGHUP when `by` is `None`). A bundle that fails
    /// to load is refused with its file:line problems and the running one stays in force.
    pub async fn reload_policy(&self, by: Option<&Staff>) -> ApiResult<Value> {
        if let Some(staff) = by
            && staff.role != Role::Admin
        {
            return Err(ApiError::forbidden("only admins reload the policy bundle"));
        }
        let who = by.map(actor).unwrap_or_else(system_actor);
        let old = self.bundle().digest().to_owned();
        let loaded = policy_gate::load(self.config.policy_dir.as_deref());
        let bundle = match loaded {
            Ok(b) => b,
            Err(e) => {
                let problems = e.to_string();
                self.store
                    .commit(Change {
                        audit: vec![self.entry(
                            &who,
                            None,
                            "policy.reload_refused",
                            json!({ "current_digest": old, "problems": problems }),
                        )],
                        ..Change::default()
                    })
                    .await?;
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "policy_invalid",
                    format!("the bundle was refused; {old} stays in force: {problems}"),
                ));
            }
        };
        let new = bundle.digest().to_owned();
        let mut entry = self.entry(
            &who,
            None,
            "policy.reloaded",
            json!({ "old_digest": old, "new_digest": new, "policies": bundle.policy_count() }),
        );
        entry.policy_digest = Some(new.clone());
        // Audited before it takes effect: no decision under a bundle the log does not name.
        self.store
            .commit(Change {
                audit: vec![entry],
                ..Change::default()
            })
            .await?;
        match self.policy.write() {
            Ok(mut current) => *current = Arc::new(bundle),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(bundle),
        }
        tracing::info!(old = %old, new = %new, "policy bundle reloaded");
        Ok(json!({ "old_digest": old, "new_digest": new }))
    }

    /// Audit entries of one case, for people who may see the case.
    pub async fn case_audit(&self, caller: &Staff, case_id: &str) -> ApiResult<Vec<Value>> {
        let stored = self.load_case(case_id).await?;
        if !Self::can_view(caller, &stored.case) {
            return Err(ApiError::forbidden("you may only see your own cases"));
        }
        let records = self.store.audit_for_case(case_id).await?;
        records
            .iter()
            .map(|r| {
                let mut entry = r.entry().map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "corrupt_entry",
                        e.to_string(),
                    )
                })?;
                if let Some(o) = entry.as_object_mut() {
                    o.insert("leaf_hash".to_owned(), json!(r.leaf_hash));
                }
                Ok(entry)
            })
            .collect()
    }
}

/// Who may read the audit log and its proofs.
fn ensure_auditor(caller: &Staff) -> ApiResult<()> {
    if matches!(caller.role, Role::Auditor | Role::SecurityOfficer) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only auditors and security officers read the audit log",
        ))
    }
}

fn log_error(e: crate::audit_log::AuditLogError) -> ApiError {
    match e {
        crate::audit_log::AuditLogError::Range(m) => ApiError::invalid(m),
        crate::audit_log::AuditLogError::Store(s) => s.into(),
        other => {
            tracing::error!(error = %other, "audit log failure");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log is unavailable",
            )
        }
    }
}

/// Refuses a subject the security team holds: flagged, as a "this was not me" report leaves it,
/// or, with `or_locked`, locked. What hands something over (a pass, a secret) refuses both; a
/// verification link refuses only the flag, so a locked account can still be verified for its
/// unlock. The refusal changes nothing.
pub(crate) fn ensure_not_on_hold(subject: &Subject, or_locked: bool) -> ApiResult<()> {
    if subject.flagged || (or_locked && subject.status == SubjectStatus::Locked) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "subject_on_hold",
            "the security team holds this account: nothing can be done through this link or \
             pass. Contact the security team.",
        ));
    }
    Ok(())
}

impl Service {
    pub async fn audit_checkpoint(&self, caller: &Staff, cut: bool) -> ApiResult<Value> {
        ensure_auditor(caller)?;
        let latest = match self.store.latest_checkpoint().await? {
            Some(c) if !cut => c,
            _ => self.audit.cut(self.now()).await.map_err(log_error)?,
        };
        Ok(json!({
            "size": latest.size, "root": latest.root, "note": latest.note,
            "created_at": latest.created_at, "verifier_key": self.audit.verifier_key(),
        }))
    }

    pub async fn audit_entries(&self, caller: &Staff, start: u64, end: u64) -> ApiResult<Value> {
        ensure_auditor(caller)?;
        if end < start || end - start > 1000 {
            return Err(ApiError::invalid(
                "need start <= end and at most 1000 entries per call",
            ));
        }
        let size = self.store.audit_size().await?;
        let records = self.store.audit_entries(start, end.min(size)).await?;
        Ok(json!({
            "size": size,
            "entries": records.iter().map(|r| json!({
                "index": r.index, "canonical": r.body, "leaf_hash": r.leaf_hash,
            })).collect::<Vec<_>>(),
        }))
    }

    pub async fn audit_inclusion(&self, caller: &Staff, index: u64, size: u64) -> ApiResult<Value> {
        ensure_auditor(caller)?;
        let (proof, root) = self.audit.inclusion(index, size).await.map_err(log_error)?;
        let leaf = self.store.audit_entries(index, index + 1).await?;
        Ok(json!({
            "index": index, "size": size, "root": root.to_hex(),
            "leaf_hash": leaf.first().map(|r| r.leaf_hash.clone()),
            "proof": proof.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        }))
    }

    pub async fn audit_consistency(&self, caller: &Staff, from: u64, to: u64) -> ApiResult<Value> {
        ensure_auditor(caller)?;
        let (proof, old_root, new_root) =
            self.audit.consistency(from, to).await.map_err(log_error)?;
        Ok(json!({
            "from": from, "to": to, "old_root": old_root.to_hex(), "new_root": new_root.to_hex(),
            "proof": proof.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        }))
    }
}

/// Parses an API id, answering a clear error naming the field.
pub fn parse_id<T: ApiId + Copy + 'static>(field: &str, value: &str) -> ApiResult<T> {
    T::from_api_id(value).ok_or_else(|| {
        ApiError::invalid(format!(
            "{field} must be one of: {}",
            T::all()
                .iter()
                .map(|v| v.api_id())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}
