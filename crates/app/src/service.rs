//! The application service, one module per use case: cases, verification (with push, callback,
//! identity proofing and attestation in modules of their own), approvals and break-glass,
//! execution, links, credentials, staff tokens, subjects, policy administration and audit access.
//! Each use case loads what the core needs, lets the core decide, commits the change with its audit
//! entries in one transaction, and only then performs side effects. Authorization is checked here,
//! for every call, against the caller's role and the case's people. This root holds what every use
//! case shares: the service itself, audit-entry builders, case loading and the policy gate.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use deskgate_audit::{AuditEvent, event};
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

use crate::audit_events::{self, code_verification, ids};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::{Delivery, Message, Secret};
use crate::error::AppError;
use crate::policy_gate::{self, StoreFacts};
use crate::secrets::{self, CodeHasher};
use crate::views::{CaseSummary, CaseView, ExecutionView, SubjectView};

mod alerts;
mod approvals;
mod audit_access;
mod cases;
mod credentials;
mod execution;
mod failures;
mod links;
pub(crate) mod methods;
mod oversight;
mod policy_admin;
mod sign_in_audit;
mod staff_tokens;
mod subjects;
mod verification;

pub use sign_in_audit::FailureSummary;

pub use methods::{AttestationSession, CodeSent};
pub use oversight::{
    AdminOverview, Day, Exceptions, RosterEntry, SecurityOverview, Stats, WatchedSubject,
};

type AppResult<T> = Result<T, AppError>;

pub struct Service {
    /// Seals secrets the server must read back (TOTP seeds).
    pub(crate) sealer: secrets::Sealer,
    /// The policy bundle in force; replaced whole on reload.
    pub(crate) policy: std::sync::RwLock<Arc<Bundle>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) audit: Arc<crate::audit_log::AuditLog>,
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) codes: CodeHasher,
    pub(crate) delivery: Arc<dyn Delivery>,
    /// The connector that performs granted actions; `None` is the built-in directory.
    pub(crate) connector: Option<Arc<dyn deskgate_connectors::Connector>>,
    /// Who may read `/metrics`.
    pub(crate) metrics: crate::telemetry::MetricsAccess,
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

/// The credential kind holding a subject's sealed TOTP seed and the last time step accepted.
const TOTP: &str = "totp";

/// After this long without an outcome, an execution in flight is taken as lost (the process
/// died mid-call) and a deny or cancel ends it `failed`; until then they are refused.
const ABANDON_IN_FLIGHT_MINUTES: i64 = 15;

/// The credential kind holding a rotated service secret, sealed, until its one retrieval.
pub(crate) const SECRET_PICKUP: &str = "service_secret_pickup";

/// Where an enrolment's secret (recovery codes, an app's seed, the pass that enrolled a passkey)
/// was shown or sent, and the takeover units of whoever could see it: what it depends on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// In words, e.g. `mailed to the email of record`.
    pub shown_in: String,
    pub units: std::collections::BTreeSet<String>,
}

/// What the store keeps for an enrolled TOTP authenticator.
#[derive(serde::Serialize, serde::Deserialize)]
struct TotpRecord {
    sealed: String,
    last_step: Option<u64>,
    /// How the seed reached the app; absent in records written before provenance was kept,
    /// whose seeds were mailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance>,
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
fn replay_error(e: deskgate_store::StoreError) -> AppError {
    match e {
        deskgate_store::StoreError::Conflict(_) => {
            AppError::conflict("replayed", "this delivery was already processed")
        }
        other => other.into(),
    }
}

/// A refusal by the policy: the reasons and the policies that decided, never a silent no.
fn policy_refusal(pin: &PolicyPin) -> AppError {
    AppError::policy_denied(pin.clone())
}

pub(crate) fn actor(staff: &Staff) -> Actor {
    Actor {
        id: staff.id.clone(),
        role: staff.role.to_string(),
        auth: "bearer_token".to_owned(),
    }
}

/// A staff member's stated reason (approval, denial, break-glass): 1 to 1000 printable
/// characters, trimmed, so the audit log never holds an empty or control-laden reason.
fn checked_reason(reason: &str) -> AppResult<&str> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 || reason.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "reason must be 1 to 1000 printable characters",
        ));
    }
    Ok(reason)
}

fn check_text(field: &str, value: &Option<String>, max: usize) -> AppResult<()> {
    if let Some(v) = value
        && (v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control))
    {
        return Err(AppError::invalid(format!(
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
    /// The store, for adapters that read what the use cases wrote (readiness, exports, tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configuration the service was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The service's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The audit log's verifier key, which auditors check signed checkpoints against.
    pub fn audit_verifier_key(&self) -> &str {
        self.audit.verifier_key()
    }

    /// Signs the current tree now (unless the latest checkpoint covers it), for an export.
    ///
    /// # Errors
    /// The store cannot be read or the checkpoint cannot be saved.
    pub async fn cut_checkpoint(
        &self,
    ) -> Result<deskgate_store::StoredCheckpoint, crate::audit_log::AuditLogError> {
        self.audit.cut(self.now()).await
    }

    /// Signs a checkpoint of the audit log every `interval`, in the background.
    pub fn spawn_checkpointer(&self, interval: std::time::Duration) {
        self.audit
            .clone()
            .spawn_checkpointer(interval, self.clock.clone());
    }

    /// The service, performing granted actions through `connector` instead of the configured
    /// one (and syncing subjects from it): for an adapter that brings its own, such as a test
    /// double.
    #[must_use]
    pub fn with_connector(mut self, connector: Arc<dyn deskgate_connectors::Connector>) -> Self {
        self.connector = Some(crate::metered_connector::metered(connector));
        self
    }

    /// The single sign-on relying party, when `[oidc]` is configured.
    pub fn sso(&self) -> Option<Arc<crate::sso::Sso>> {
        crate::sso::Sso::from_config(&self.config, &self.sealer)
    }
}

impl Service {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The audit entry of `event`, by `actor`, now. Entries are built only from typed events:
    /// adding one is a variant and its details type in `deskgate_audit::event`.
    pub(crate) fn entry(
        &self,
        actor: &Actor,
        case_id: Option<&str>,
        event: AuditEvent,
    ) -> NewAuditEntry {
        NewAuditEntry::new(self.now(), actor.clone(), case_id, event)
    }

    /// Reserves a message to `contact` under the per-contact send limit, right before it is sent:
    /// bounded sends per contact, across cases and kinds (codes, links), because a flood of
    /// messages is itself an attack. The count and the reservation are one serialised write, so
    /// racing requests cannot overshoot; a reserved slot stays counted even if delivery fails.
    pub(crate) async fn contact_send_slot(
        &self,
        contact: &deskgate_core::Contact,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
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
            Err(deskgate_store::StoreError::LimitReached { sent }) => Err(AppError::rate_limited(
                "too_many_sends",
                format!(
                    "{sent} messages were sent to this {} of record in the last {} minutes; wait before sending another",
                    contact.kind, self.config.codes.send_window_minutes
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends `message` to `contact` under the per-contact send limit: the slot is reserved first
    /// and stays counted whatever happens. A failed delivery is a 502 and the caller records
    /// nothing, so no undelivered code or link is ever on a case.
    pub(crate) async fn send_within_limit(
        &self,
        contact: &deskgate_core::Contact,
        message: &Message,
        what: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        self.contact_send_slot(contact, now).await?;
        self.delivery.send(message).await.map_err(|e| {
            tracing::warn!(case = ?message.case_id, kind = %message.kind, error = %e, "delivery failed");
            AppError::upstream_failed("delivery_failed",
                format!("the {what} could not be delivered; nothing was recorded, try again"),
            )
        })
    }

    /// The "this was not me" link that goes with every notice of `case`: any contact of record
    /// can raise the alarm until well after probation begins. Returns its URL and what the store
    /// keeps (the token's hash).
    pub(crate) fn not_me_link(
        &self,
        case: &Case,
        subject_id: &str,
        now: DateTime<Utc>,
    ) -> (String, LinkToken) {
        let token = secrets::random_token();
        let url = format!(
            "{}/not-me/{token}",
            self.config.public_url.trim_end_matches('/')
        );
        let link = LinkToken {
            token_hash: secrets::token_hash(&token),
            kind: "not_me".to_owned(),
            case_id: case.id.clone(),
            verification_id: String::new(),
            respondent: subject_id.to_owned(),
            created_at: now,
            expires_at: now + Duration::hours(case.requirements.probation_hours.max(72)),
            used_at: None,
        };
        (url, link)
    }

    /// The audit entry of a verification `caller` started on `case`.
    pub(crate) fn started(
        &self,
        caller: &Staff,
        case: &Case,
        details: event::VerificationStarted,
    ) -> NewAuditEntry {
        self.entry(
            &actor(caller),
            Some(&case.id),
            AuditEvent::VerificationStarted(details),
        )
    }

    /// Marks an audit entry with the bundle digest of the decision it records.
    pub(crate) fn pinned(&self, mut entry: NewAuditEntry, pin: &PolicyPin) -> NewAuditEntry {
        entry.policy_digest = Some(pin.bundle_digest.clone());
        entry
    }

    /// The subject `id`, which the request needs: a missing one is invalid input under `code`.
    async fn subject_or(&self, id: &str, code: &'static str) -> AppResult<Subject> {
        self.store
            .subject(id)
            .await?
            .ok_or_else(|| AppError::invalid_as(code, format!("no subject {id}")))
    }

    /// The subject `id`, which must exist.
    pub(crate) async fn required_subject(&self, id: &str) -> AppResult<Subject> {
        self.store
            .subject(id)
            .await?
            .ok_or_else(|| AppError::not_found_as("not_found", format!("no subject {id}")))
    }

    pub(crate) async fn load_case(&self, id: &str) -> AppResult<StoredCase> {
        if id.len() > 64 {
            return Err(AppError::not_found("case"));
        }
        self.store
            .case(id)
            .await?
            .ok_or_else(|| AppError::not_found("case"))
    }

    fn can_view(staff: &Staff, case: &Case) -> bool {
        staff.role.oversees_cases() || staff.role == Role::Auditor || case.agent_id == staff.id
    }

    /// The case's agent, or a supervisor / security officer; never someone the case is about.
    pub(crate) fn ensure_can_work(staff: &Staff, case: &Case) -> AppResult<()> {
        if !staff.role.works_cases() {
            return Err(AppError::forbidden(format!(
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
            return Err(AppError::forbidden("this case belongs to another agent"));
        }
        Ok(())
    }

    pub(crate) async fn view(&self, case: &Case) -> AppResult<CaseView> {
        let subject = self
            .store
            .subject(&case.subject_id)
            .await?
            .ok_or_else(|| AppError::not_found("subject"))?;
        let offered = self.offered_methods(&subject, case).await?;
        Ok(CaseView::build(case, &subject, &offered, self.now()))
    }

    /// The store's half of the risk signals. `exclude` names a case already counted that must
    /// not count against itself (at execute, the case being executed).
    async fn store_facts(
        &self,
        subject: &Subject,
        caller_number: Option<&str>,
        agent_id: &str,
        exclude: Option<&Case>,
    ) -> AppResult<StoreFacts> {
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
            // The self-service desk is no person whose pace could drift or betray an insider;
            // self-service is limited per account and per address instead.
            requests_by_agent: if agent_id == crate::self_service::DESK_ID {
                0
            } else {
                by_agent.saturating_sub(own(in_window))
            },
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
    ) -> AppResult<PolicyDecision> {
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
            channel: case.channel,
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

    async fn own_manager(&self, staff: &Staff) -> AppResult<Option<String>> {
        Ok(match &staff.subject_id {
            Some(id) => self.store.subject(id).await?.and_then(|s| s.manager),
            None => None,
        })
    }

    /// Asks the bundle; an evaluation failure denies.
    fn decide(&self, ask: policy_gate::Ask<'_>) -> AppResult<PolicyDecision> {
        self.bundle()
            .evaluate(&policy_gate::request(ask))
            .map_err(|e| {
                tracing::error!(error = %e, "policy evaluation failed; denying");
                AppError::policy_unevaluated(format!(
                    "the policy could not be evaluated, so the request is denied: {e}"
                ))
            })
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
                    AuditEvent::CaseApproved(event::CaseApproved {
                        counted_classes: ids(&progress.counted_classes),
                    }),
                ),
                case,
            ));
            if let Some(g) = &case.grant {
                out.push(self.entry(
                    &system_actor(),
                    Some(&case.id),
                    AuditEvent::GrantMinted(event::GrantMinted {
                        grant_id: g.id.clone(),
                        agent_id: g.agent_id.clone(),
                        subject_id: g.subject_id.clone(),
                        tier: case.subject_tier.to_string(),
                        action: g.action.to_string(),
                        expires_at: g.expires_at,
                    }),
                ));
            }
        }
        out
    }
}

/// Who may read the audit log and its proofs.
fn ensure_auditor(caller: &Staff) -> AppResult<()> {
    if matches!(caller.role, Role::Auditor | Role::SecurityOfficer) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "only auditors and security officers read the audit log",
        ))
    }
}

fn log_error(e: crate::audit_log::AuditLogError) -> AppError {
    match e {
        crate::audit_log::AuditLogError::Range(m) => AppError::invalid(m),
        crate::audit_log::AuditLogError::Store(s) => s.into(),
        other => {
            tracing::error!(error = %other, "audit log failure");
            AppError::unavailable("audit_unavailable", "the audit log is unavailable")
        }
    }
}

/// Refuses a subject the security team holds: flagged, as a "this was not me" report leaves it,
/// or, with `or_locked`, locked. What hands something over (a pass, a secret) refuses both; a
/// verification link refuses only the flag, so a locked account can still be verified for its
/// unlock. The refusal changes nothing.
pub(crate) fn ensure_not_on_hold(subject: &Subject, or_locked: bool) -> AppResult<()> {
    if subject.flagged || (or_locked && subject.status == SubjectStatus::Locked) {
        return Err(AppError::forbidden_as(
            "subject_on_hold",
            "the security team holds this account: nothing can be done through this link or \
             pass. Contact the security team.",
        ));
    }
    Ok(())
}

/// Parses an API id, answering a clear error naming the field.
pub fn parse_id<T: ApiId + Copy + 'static>(field: &str, value: &str) -> AppResult<T> {
    T::from_api_id(value).ok_or_else(|| {
        AppError::invalid(format!(
            "{field} must be one of: {}",
            T::all()
                .iter()
                .map(|v| v.api_id())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}
