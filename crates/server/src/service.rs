//! The application service: one method per use case. Each loads what the core needs, lets the core
//! decide, commits the change with its audit entries in one transaction, and only then performs
//! side effects. Authorization is checked here, for every call, against the caller's role and the
//! case's people.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use deskgate_core::risk::assess;
use deskgate_core::{
    Action, ApiId, ApproverRole, AttemptOutcome, Case, CaseState, Channel, ContactKind, Decision,
    Method, NewCase, Requirements, Role, Signals, Staff, Subject, SubjectStatus, Verification,
    VerificationState,
};
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
use crate::secrets::{self, CodeHasher};
use crate::views::{
    AttestationView, CaseSummary, CaseView, ExecutionView, SubjectRef, SubjectView,
};

type ApiResult<T> = Result<T, ApiError>;

pub struct Service {
    pub store: Arc<dyn Store>,
    pub audit: Arc<crate::audit_log::AuditLog>,
    pub config: Config,
    pub clock: Clock,
    pub codes: CodeHasher,
    pub delivery: Arc<dyn Delivery>,
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
}

/// Methods this deployment can run today. The others exist in the vocabulary and are refused
/// with a clear error until their adapters land.
const RUNNABLE: [Method; 4] = [
    Method::SmsCode,
    Method::VoiceCode,
    Method::EmailCode,
    Method::ManagerAttestation,
];

fn actor(staff: &Staff) -> Actor {
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

    fn entry(
        &self,
        actor: &Actor,
        case_id: Option<&str>,
        event: &str,
        details: Value,
    ) -> NewAuditEntry {
        NewAuditEntry::new(self.now(), actor.clone(), case_id, event, details)
    }

    /// Resolves a bearer token to its staff member.
    pub async fn authenticate(&self, token: &str) -> ApiResult<Staff> {
        if token.is_empty() || token.len() > 256 {
            return Err(ApiError::unauthenticated());
        }
        self.store
            .staff_for_token(&secrets::token_hash(token))
            .await?
            .ok_or_else(ApiError::unauthenticated)
    }

    /// Makes a new API token for a staff member; only its hash is stored.
    pub async fn create_token(&self, staff_name: &str, label: &str) -> ApiResult<String> {
        let staff = self
            .store
            .staff_by_name(staff_name)
            .await?
            .ok_or_else(|| ApiError::not_found("staff member"))?;
        let token = secrets::random_token();
        self.store
            .add_api_token(&secrets::token_hash(&token), &staff.id, label, self.now())
            .await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    &system_actor(),
                    None,
                    "staff.token_created",
                    json!({ "staff_id": staff.id, "label": label }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(token)
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

    async fn load_case(&self, id: &str) -> ApiResult<StoredCase> {
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
        if staff.subject_id.as_deref() == Some(case.subject_id.as_str()) {
            return Err(deskgate_core::CaseError::SelfService.into());
        }
        if case.agent_id != staff.id && !staff.role.oversees_cases() {
            return Err(ApiError::forbidden("this case belongs to another agent"));
        }
        Ok(())
    }

    fn freshness(&self) -> Duration {
        Duration::days(
            Requirements::simple_rules(deskgate_core::Tier::Standard, Action::PasswordReset)
                .contact_freshness_days,
        )
    }

    /// Methods the agent can use for this subject now, in the order the playbook offers them.
    pub fn offered_methods(&self, subject: &Subject, case: &Case) -> Vec<Method> {
        let now = self.now();
        let fresh = case.requirements.freshness();
        RUNNABLE
            .into_iter()
            .filter(|m| match m.contact_kind() {
                Some(kind) => trusted_contact(subject, kind, fresh, now).is_some(),
                None => subject.voucher(&[&case.subject_id]).is_some(),
            })
            .collect()
    }

    async fn view(&self, case: &Case) -> ApiResult<CaseView> {
        let subject = self
            .store
            .subject(&case.subject_id)
            .await?
            .ok_or_else(|| ApiError::not_found("subject"))?;
        let offered = self.offered_methods(&subject, case);
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

    async fn signals(&self, subject: &Subject, caller_number: Option<&str>) -> ApiResult<Signals> {
        let now = self.now();
        let fresh = self.freshness();
        let (open, recent) = self
            .store
            .subject_case_counts(
                &subject.id,
                now - Duration::days(self.config.recent_recovery_days),
            )
            .await?;
        let phone = subject.contact(ContactKind::Phone);
        Ok(Signals {
            recently_changed_contacts: subject
                .contacts
                .iter()
                .filter(|c| c.changed_within(fresh, now))
                .map(|c| (c.kind, (now - c.changed_at).num_days()))
                .collect(),
            recent_recoveries: recent,
            open_cases_for_subject: open,
            caller_number_differs: match (caller_number, phone) {
                (Some(given), Some(record)) => phone_digits(given) != phone_digits(&record.value),
                (Some(_), None) => true,
                _ => false,
            },
            new_hire_without_factors: subject.authenticators.is_empty()
                && subject
                    .hired_at
                    .is_some_and(|h| now - h < Duration::days(self.config.new_hire_days)),
            subject_flagged: subject.flagged,
            subject_status: Some(subject.status),
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
        let subject = self
            .subject_or(
                &req.subject,
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_subject",
            )
            .await?;
        let agent_manager = match &caller.subject_id {
            Some(id) => self.store.subject(id).await?.and_then(|s| s.manager),
            None => None,
        };
        let signals = self.signals(&subject, req.caller_number.as_deref()).await?;
        let risk = assess(subject.tier, req.action, &signals);
        let requirements = Requirements::simple_rules(subject.tier, req.action);
        let now = self.now();
        let case = Case::open(
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
                risk,
                requirements,
            },
            now,
        )?;
        let details = json!({
            "subject_id": case.subject_id,
            "tier": case.subject_tier,
            "action": case.action,
            "channel": case.channel,
            "ticket": case.ticket,
            "risk": case.risk.level,
            "risk_reasons": case.risk.reasons.iter().map(|r| r.code.clone()).collect::<Vec<_>>(),
            "requirements": case.requirements,
        });
        self.store
            .commit(Change {
                audit: vec![self.entry(&actor(caller), Some(&case.id), "case.opened", details)],
                case: Some(CaseWrite::Insert(case.clone())),
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, tier = %case.subject_tier, "case opened");
        let offered = self.offered_methods(&subject, &case);
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

    fn approval_entries(&self, who: &Actor, before: CaseState, case: &Case) -> Vec<NewAuditEntry> {
        let mut out = Vec::new();
        if before != CaseState::Approved && case.state == CaseState::Approved {
            let progress = case.progress(self.now());
            out.push(self.entry(
                who,
                Some(&case.id),
                "case.approved",
                json!({ "counted_classes": progress.counted_classes }),
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
        let mut case = stored.case.clone();
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
        let now = self.now();
        let fresh = case.requirements.freshness();
        let vid = format!("v-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let (verification, message, link) = if let Some(kind) = method.contact_kind() {
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
            (v, message, None)
        } else {
            let excluded: Vec<&str> =
                [Some(case.subject_id.as_str()), caller.subject_id.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
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
                max_attempts: 1,
                started_at: now,
                expires_at,
                completed_at: None,
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
            (v, message, Some(link))
        };
        let destination = verification.destination.clone();
        let respondent = verification.respondent.clone();
        let expires_at = verification.expires_at;
        case.start_verification(verification, now)?;
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
                "destination": destination, "respondent": respondent, "expires_at": expires_at,
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
        let code = code.trim();
        if !(6..=12).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::invalid("code must be 6 to 12 digits"));
        }
        let mut case = stored.case.clone();
        let now = self.now();
        let verification = case
            .verification(vid)
            .ok_or_else(|| ApiError::not_found("verification"))?
            .clone();
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
        let matched = verification
            .secret_hash
            .as_deref()
            .is_some_and(|h| self.codes.matches(vid, code, h));
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
        let mut audit = vec![self.entry(&who, Some(&case.id), event, details)];
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
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

    async fn live_link(&self, token: &str) -> ApiResult<LinkToken> {
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

    /// A digest of what the approver saw: the request and the evidence collected so far.
    fn case_digest(case: &Case) -> String {
        let seen = json!({
            "case_id": case.id, "subject_id": case.subject_id, "action": case.action,
            "channel": case.channel, "agent_id": case.agent_id, "opened_at": case.opened_at,
            "ticket": case.ticket, "new_contact": case.new_contact,
            "evidence": case.evidence().iter().map(|e| json!({
                "verification_id": e.verification_id, "method": e.method, "passed_at": e.passed_at,
            })).collect::<Vec<_>>(),
        });
        hex::encode(Sha256::digest(seen.to_string().as_bytes()))
    }

    pub async fn attestation_view(&self, token: &str) -> ApiResult<AttestationView> {
        let link = self.live_link(token).await?;
        let case = self.load_case(&link.case_id).await?.case;
        let subject = self
            .subject_or(&case.subject_id, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let respondent = self
            .subject_or(&link.respondent, StatusCode::NOT_FOUND, "not_found")
            .await?;
        Ok(AttestationView {
            case_id: case.id.clone(),
            respondent: SubjectRef {
                id: respondent.id.clone(),
                name: respondent.display_name.clone(),
                tier: respondent.tier,
            },
            subject: SubjectRef {
                id: subject.id.clone(),
                name: subject.display_name.clone(),
                tier: subject.tier,
            },
            action: case.action,
            channel: case.channel,
            agent_id: case.agent_id.clone(),
            ticket: case.ticket.clone(),
            opened_at: case.opened_at,
            risk: case.risk.clone(),
            expires_at: link.expires_at,
            question: format!(
                "Did {} ask the help desk for a {} through {}? Confirm only if you have spoken to \
                 them yourself, in person or on a number you already know.",
                subject.display_name, case.action, case.channel
            ),
            how_to_answer:
                "POST this URL with {\"decision\": \"confirm\"} or {\"decision\": \"reject\"}"
                    .to_owned(),
        })
    }

    /// Records the manager's decision from the link. A caller who also presents staff
    /// credentials must be that manager.
    pub async fn attest(
        &self,
        token: &str,
        decision: Decision,
        presenter: Option<&Staff>,
    ) -> ApiResult<CaseView> {
        let link = self.live_link(token).await?;
        if let Some(staff) = presenter
            && staff.subject_id.as_deref() != Some(link.respondent.as_str())
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_the_manager",
                "this link works only for the manager it was sent to",
            ));
        }
        let stored = self.load_case(&link.case_id).await?;
        let mut case = stored.case.clone();
        let now = self.now();
        let respondent = self
            .subject_or(&link.respondent, StatusCode::NOT_FOUND, "not_found")
            .await?;
        let role =
            if respondent.owners.is_empty() && case.subject_tier == deskgate_core::Tier::Service {
                ApproverRole::Owner
            } else {
                ApproverRole::Manager
            };
        let digest = Self::case_digest(&case);
        let before = case.state;
        case.attest(
            &link.verification_id,
            &link.respondent,
            role,
            decision,
            digest.clone(),
            now,
        )?;
        let who = Actor {
            id: link.respondent.clone(),
            role: "manager".to_owned(),
            auth: "attestation_link".to_owned(),
        };
        let mut audit = vec![self.entry(
            &who,
            Some(&case.id),
            match decision {
                Decision::Confirm => "attestation.confirmed",
                Decision::Reject => "attestation.rejected",
            },
            json!({ "verification_id": link.verification_id, "case_digest": digest }),
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
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                use_links: vec![(link.token_hash.clone(), now)],
                audit,
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// Consumes the case's grant and performs the action through the built-in directory.
    pub async fn execute(&self, caller: &Staff, case_id: &str) -> ApiResult<ExecutionView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let mut case = stored.case.clone();
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
        let manager = match &subject.manager {
            Some(m) => self.store.subject(m).await?,
            None => None,
        };
        let owner = match case
            .approvals
            .iter()
            .find(|a| a.decision == Decision::Confirm)
            .map(|a| a.approver_id.clone())
            .or_else(|| subject.owners.first().cloned())
        {
            Some(id) if subject.is_non_human() => self.store.subject(&id).await?,
            _ => None,
        };
        let tap_ttl = Duration::minutes(self.config.tap_ttl_minutes);
        let execution =
            directory::execute(&case, &subject, owner.as_ref(), tap_ttl, now).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "execution_refused",
                    e.to_string(),
                )
            })?;
        let notices =
            directory::notices(&case, &subject, &execution.subject, manager.as_ref(), now);
        let audit = vec![
            self.entry(
                &who,
                Some(&case.id),
                "grant.consumed",
                json!({
                    "grant_id": grant.id, "agent_id": grant.agent_id, "subject_id": grant.subject_id,
                    "tier": case.subject_tier, "action": grant.action,
                }),
            ),
            self.entry(
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
            ),
        ];
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                subjects: vec![execution.subject.clone()],
                credentials: execution.credentials.clone(),
                audit,
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, "recovery executed");
        let mut failures = Vec::new();
        for message in execution.secret_message.iter().chain(notices.iter()) {
            if let Err(e) = self.delivery.send(message).await {
                tracing::warn!(case = %case.id, kind = %message.kind, error = %e, "delivery failed after execution");
                failures.push(json!({ "kind": message.kind, "channel": message.channel }));
            }
        }
        if !failures.is_empty() {
            // The action happened; the audit trail must say the person was not told.
            self.store
                .commit(Change {
                    audit: vec![self.entry(
                        &system_actor(),
                        Some(&case.id),
                        "delivery.failed",
                        json!({ "messages": failures }),
                    )],
                    ..Change::default()
                })
                .await?;
        }
        Ok(ExecutionView {
            case: self.view(&case).await?,
            grant_id: grant.id,
            result: execution.details,
            notices_sent: notices.len(),
            delivery_failures: failures.len(),
        })
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
