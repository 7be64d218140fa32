//! Self-service recovery (`/recover`): a person who cannot sign in names their account and an
//! action, and Deskgate opens a case with `channel = self_service` that the same bundle decides,
//! worked by Deskgate's own self-service desk instead of an agent. The person completes the
//! verifications on the page; once the requirements are met the grant, minted to the desk, is
//! executed at once for the browser that holds the attempt, with the same notices, probation and
//! audit as any recovery.
//!
//! The page never tells whether an account exists, whether it may be recovered here, or which
//! contacts it has. An attempt is sealed and held by the browser; for an unknown name, an account
//! the bundle refuses to self-serve (privileged tiers, probation, a flag, high risk) or one over
//! its attempt limit, the attempt is a decoy: the same menu, the same "if we have it on record, a
//! code is on its way", and every answer "did not match", with nothing sent and nothing stored. The
//! page tells everyone that privileged accounts and anything it cannot do go to the help desk. The
//! HTTP layer pads every step to one duration so timing tells nothing either.

use chrono::{DateTime, Duration, Utc};
use deskgate_core::{Action, CaseState, Channel, Method, Role, Staff, VerificationState};
use deskgate_store::CaseFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::passkey_sign_in::Realm;
use crate::service::{OpenCase, Service};

type AppResult<T> = Result<T, AppError>;

/// The staff id of Deskgate's self-service desk: it works every self-service case. No staff row
/// has it (staff ids are `st-...`) and no token authenticates as it.
pub const DESK_ID: &str = "self-service";
/// The actions a person may start on their own; the bundle decides the rest.
pub const ACTIONS: [Action; 3] = [
    Action::PasswordReset,
    Action::MfaReset,
    Action::AccountUnlock,
];
/// The ways to confirm it is you with a code the page offers, the same for everyone (a passkey
/// is offered beside them).
pub const METHODS: [Method; 4] = [
    Method::EmailCode,
    Method::SmsCode,
    Method::RecoveryCode,
    Method::Totp,
];
/// The ways the page sends something out for: codes to contacts of record, asking the manager
/// of record to confirm by their own link, a number-matched push to the enrolled device, and a
/// link to the identity-verification vendor (to the email of record only) where the person shows
/// a photo ID that the vendor matches to the identity of record.
pub const SENT: [Method; 5] = [
    Method::EmailCode,
    Method::SmsCode,
    Method::ManagerAttestation,
    Method::Push,
    Method::IdProofing,
];
/// How long an attempt lives.
const ATTEMPT_MINUTES: i64 = 30;
/// Self-service cases per account per hour; past it, attempts are decoys.
const PER_ACCOUNT_PER_HOUR: usize = 3;
const SEAL: &str = "deskgate/self_service_attempt";
/// Sealed attempts are padded to this many bytes, so a real one and a decoy look alike.
const ATTEMPT_SIZE: usize = 768;

/// Deskgate's own desk, the principal of every self-service case.
pub fn desk() -> Staff {
    Staff {
        id: DESK_ID.to_owned(),
        name: DESK_ID.to_owned(),
        role: Role::Agent,
        // No directory person has this id: the desk is nobody's colleague or manager.
        subject_id: Some("deskgate:self-service-desk".to_owned()),
        team: "self-service".to_owned(),
        region: String::new(),
        shift: String::new(),
    }
}

/// An attempt as the browser holds it, sealed.
#[derive(Serialize, Deserialize)]
struct Attempt {
    /// The name given, for a decoy's passkey challenge (the same ids each time).
    name: String,
    action: Action,
    /// The case worked for this browser; `None` for a decoy.
    case_id: Option<String>,
    expires_at: DateTime<Utc>,
}

/// Where an attempt stands, as the page shows it (the same shape for a decoy).
pub struct RecoverView {
    pub action: Action,
    /// Methods passed so far, in order.
    pub passed: Vec<Method>,
    /// Methods with a code waiting to be entered.
    pub waiting: Vec<Method>,
    /// The attempt is over: done, or ended (refused, expired, too many wrong answers).
    pub finished: Option<Finished>,
    pub expires_at: DateTime<Utc>,
    /// Whether this deployment can check a photo ID (a vendor creates inquiries): the same for
    /// every account, so showing it tells nothing about one.
    pub id_proofing: bool,
}

/// How an attempt ended.
pub enum Finished {
    /// The change was made, and every contact of record told.
    Done,
    /// Nothing more can be done here: call the help desk.
    Ended,
}

/// What an answer did.
pub enum Answered {
    Accepted,
    NotMatched,
}

fn gone() -> AppError {
    AppError::unauthenticated_as(
        "attempt_over",
        "this recovery attempt is over or expired: start again",
    )
}

impl Service {
    /// Starts an attempt for `name` (an id or an email of record) and `action`: a real case when
    /// the bundle lets this account self-serve it, else a decoy. Answers the sealed attempt.
    pub async fn self_service_start(&self, name: &str, action: Action) -> AppResult<String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(AppError::invalid(
                "enter your user id or work email (at most 128 characters)",
            ));
        }
        if !ACTIONS.contains(&action) {
            return Err(AppError::invalid(
                "on your own you can reset your password or your MFA, or unlock your account",
            ));
        }
        let case_id = match self.subject_named(name).await? {
            Some(subject) => {
                let opened = if self.under_attempt_limit(&subject.id).await? {
                    self.open_self_service_case(&subject.id, action).await
                } else {
                    None
                };
                if opened.is_none() {
                    self.tell_it_cannot_be_done_here(&subject).await;
                }
                opened
            }
            None => None,
        };
        self.seal_attempt(&Attempt {
            name: name.to_owned(),
            action,
            case_id,
            expires_at: self.now() + Duration::minutes(ATTEMPT_MINUTES),
        })
    }

    /// The page shows a refused account a decoy; the person learns on their trusted email of
    /// record instead (within its send limit, so the page cannot flood it) that this cannot be
    /// done on their own, and whom to call; someone probing an account tells its owner.
    async fn tell_it_cannot_be_done_here(&self, subject: &deskgate_core::Subject) {
        let now = self.now();
        let fresh = Duration::days(i64::from(self.bundle().thresholds().contact_freshness_days));
        let Some(email) = subject.trusted_contact(deskgate_core::ContactKind::Email, fresh, now)
        else {
            return;
        };
        let message = crate::delivery::Message {
            to: email.value.clone(),
            channel: "email".to_owned(),
            kind: "self_service_refused".to_owned(),
            subject_id: subject.id.clone(),
            case_id: None,
            body: "Someone asked to recover your account on the self-service page, and it \
                   cannot be done there. If it was you, call the help desk. If it was not you, \
                   tell the security team: nothing was changed."
                .to_owned(),
            secret: None,
        };
        if let Err(e) = self
            .send_within_limit(email, &message, "message", now)
            .await
        {
            tracing::info!(subject = %subject.id, error = %e.message(), "self-service refusal notice not sent");
        }
    }

    async fn under_attempt_limit(&self, subject_id: &str) -> AppResult<bool> {
        let since = self.now() - Duration::hours(1);
        let recent = self
            .store
            .list_cases(&CaseFilter {
                subject_id: Some(subject_id.to_owned()),
                agent_id: Some(DESK_ID.to_owned()),
                limit: 20,
                ..CaseFilter::default()
            })
            .await?
            .iter()
            .filter(|c| c.opened_at >= since)
            .count();
        Ok(recent < PER_ACCOUNT_PER_HOUR)
    }

    /// Opens the self-service case, or `None` when the bundle refuses it (audited as any
    /// refusal) or routes it to a person (the case is then cancelled: it needs the help desk).
    async fn open_self_service_case(&self, subject_id: &str, action: Action) -> Option<String> {
        let request = OpenCase {
            subject: subject_id.to_owned(),
            action,
            channel: Channel::SelfService,
            caller_number: None,
            ticket: None,
            note: Some("opened by the person on the self-service page".to_owned()),
            new_contact: None,
            requester: None,
        };
        let desk = desk();
        match self.open_case(&desk, request).await {
            Ok(view) if view.state == CaseState::Escalated => {
                let reason = "self-service cannot continue: the case needs a person";
                if let Err(e) = self.end_case(&desk, &view.id, false, reason).await {
                    tracing::warn!(case = %view.id, error = %e.message(), "escalated self-service case not cancelled");
                }
                None
            }
            Ok(view) => Some(view.id),
            Err(e) => {
                tracing::info!(error = %e.message(), "self-service case refused");
                None
            }
        }
    }

    fn seal_attempt(&self, attempt: &Attempt) -> AppResult<String> {
        let mut plain = serde_json::to_vec(attempt)
            .map_err(|_| AppError::internal("internal", "unsealable attempt"))?;
        let target = plain.len().div_ceil(ATTEMPT_SIZE).max(1) * ATTEMPT_SIZE;
        plain.resize(target, b' ');
        self.sealer
            .seal(SEAL, &plain)
            .map_err(|_| AppError::internal("internal", "unsealable attempt"))
    }

    fn open_attempt(&self, token: &str) -> AppResult<Attempt> {
        if token.len() > 4 * ATTEMPT_SIZE {
            return Err(gone());
        }
        let attempt: Attempt = self
            .sealer
            .open(SEAL, token)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(gone)?;
        if attempt.expires_at <= self.now() {
            return Err(gone());
        }
        Ok(attempt)
    }

    /// Where the attempt behind `token` stands.
    pub async fn self_service_view(&self, token: &str) -> AppResult<RecoverView> {
        let attempt = self.open_attempt(token)?;
        let mut view = RecoverView {
            action: attempt.action,
            passed: Vec::new(),
            waiting: Vec::new(),
            finished: None,
            expires_at: attempt.expires_at,
            id_proofing: crate::idv_inquiry::creating_vendor(&self.config.idv.vendors).is_some(),
        };
        let Some(case_id) = &attempt.case_id else {
            return Ok(view);
        };
        // A manager's confirmation arrives out of band: the change is made when the page next
        // looks, for the browser holding the attempt.
        self.execute_if_approved(case_id).await?;
        let case = self.load_case(case_id).await?.case;
        for v in &case.verifications {
            match v.state {
                VerificationState::Passed => view.passed.push(v.method),
                VerificationState::Pending if v.expires_at > self.now() => {
                    view.waiting.push(v.method);
                }
                _ => {}
            }
        }
        view.finished = match case.state {
            CaseState::Executed => Some(Finished::Done),
            CaseState::Open | CaseState::Verifying | CaseState::Approved => None,
            _ => Some(Finished::Ended),
        };
        Ok(view)
    }

    /// Starts `method` for the attempt: a code to a contact of record is sent, the manager is
    /// asked, a push goes to the device. Whatever happens, the answer is the same: a refusal (no
    /// such contact, too many codes) is logged, never shown, and a decoy does nothing. For a push
    /// it is the number to enter on the device (a decoy's is derived from the attempt).
    pub async fn self_service_send(
        &self,
        token: &str,
        method: Method,
    ) -> AppResult<Option<String>> {
        let attempt = self.open_attempt(token)?;
        if !SENT.contains(&method) {
            return Err(AppError::invalid("choose one of the ways offered"));
        }
        let decoy_number = (method == Method::Push).then(|| self.decoy_push_number(token));
        let Some(case_id) = attempt.case_id else {
            return Ok(decoy_number);
        };
        match self.start_verification(&desk(), &case_id, method).await {
            Ok((vid, view)) if method == Method::Push => Ok(view
                .verifications
                .iter()
                .find(|v| v.id == vid)
                .and_then(|v| push_number(v.destination.as_deref()?))
                .or(decoy_number)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::info!(case = %case_id, %method, error = %e.message(), "self-service verification not started");
                Ok(decoy_number)
            }
        }
    }

    /// A two-digit number for a decoy's push, the same for one attempt every time.
    fn decoy_push_number(&self, token: &str) -> String {
        let digest = self.codes.hash("deskgate/self_service_push", token);
        let n = u32::from_str_radix(digest.get(..4).unwrap_or("0"), 16).unwrap_or(0);
        (10 + n % 90).to_string()
    }

    /// Checks a code for `method`. When the requirements are met the change is made at once.
    pub async fn self_service_answer(
        &self,
        token: &str,
        method: Method,
        code: &str,
    ) -> AppResult<Answered> {
        let attempt = self.open_attempt(token)?;
        if code.trim().is_empty() || code.len() > 64 || !METHODS.contains(&method) {
            return Ok(Answered::NotMatched);
        }
        let Some(case_id) = attempt.case_id else {
            return Ok(Answered::NotMatched);
        };
        let desk = desk();
        let Some(pending) = self.pending(&case_id, method).await? else {
            return Ok(Answered::NotMatched);
        };
        let view = match self.answer_code(&desk, &case_id, &pending, code).await {
            Ok(view) => view,
            Err(e) => {
                tracing::info!(case = %case_id, error = %e.message(), "self-service answer refused");
                return Ok(Answered::NotMatched);
            }
        };
        let passed = view
            .verifications
            .iter()
            .any(|v| v.id == pending && v.state == VerificationState::Passed);
        if !passed {
            return Ok(Answered::NotMatched);
        }
        if view.state == CaseState::Approved {
            self.execute_if_approved(&case_id).await?;
        }
        Ok(Answered::Accepted)
    }

    /// The pending verification of `method` on the case; a held code (recovery code, app) is
    /// asked for on the spot, since nothing needs sending.
    async fn pending(&self, case_id: &str, method: Method) -> AppResult<Option<String>> {
        let find = |case: &deskgate_core::Case, now: DateTime<Utc>| {
            case.verifications
                .iter()
                .rev()
                .find(|v| {
                    v.method == method
                        && v.state == VerificationState::Pending
                        && v.expires_at > now
                })
                .map(|v| v.id.clone())
        };
        let case = self.load_case(case_id).await?.case;
        if let Some(id) = find(&case, self.now()) {
            return Ok(Some(id));
        }
        if !matches!(method, Method::RecoveryCode | Method::Totp) {
            return Ok(None);
        }
        match self.start_verification(&desk(), case_id, method).await {
            Ok((id, _)) => Ok(Some(id)),
            Err(e) => {
                tracing::info!(case = %case_id, %method, error = %e.message(), "self-service held code not asked for");
                Ok(None)
            }
        }
    }

    /// The challenge for a passkey on the page (this device or another one nearby): a real
    /// passkey verification on the case, asked on the page instead of by email, or a decoy's
    /// challenge of the same shape.
    pub async fn self_service_passkey_options(&self, token: &str) -> AppResult<Value> {
        let attempt = self.open_attempt(token)?;
        let real = match &attempt.case_id {
            Some(case_id) => self.on_page_passkey_options(case_id).await,
            None => None,
        };
        let mut options = match real {
            Some(options) => options,
            None => {
                self.sign_in_challenge(Realm::Subject, &attempt.name, Vec::new())?["options"].take()
            }
        };
        // Transports are hints a decoy could not know: neither shows them.
        if let Some(allowed) = options
            .pointer_mut("/publicKey/allowCredentials")
            .and_then(Value::as_array_mut)
        {
            for credential in allowed {
                if let Some(c) = credential.as_object_mut() {
                    c.remove("transports");
                }
            }
        }
        Ok(json!({ "options": options }))
    }

    async fn on_page_passkey_options(&self, case_id: &str) -> Option<Value> {
        let vid = match self.pending(case_id, Method::Passkey).await {
            Ok(Some(vid)) => vid,
            _ => match self
                .start_verification(&desk(), case_id, Method::Passkey)
                .await
            {
                Ok((vid, _)) => vid,
                Err(e) => {
                    tracing::info!(case = %case_id, error = %e.message(), "self-service passkey not offered");
                    return None;
                }
            },
        };
        let link = self.on_page_passkey_token(&vid);
        match self.passkey_link_options(&link).await {
            Ok(options) => Some(options),
            Err(e) => {
                tracing::info!(case = %case_id, error = %e.message(), "self-service passkey challenge not made");
                None
            }
        }
    }

    /// The page's passkey answer. When the requirements are met the change is made at once.
    pub async fn self_service_passkey_answer(
        &self,
        token: &str,
        assertion: &Value,
    ) -> AppResult<Answered> {
        let attempt = self.open_attempt(token)?;
        let Some(case_id) = attempt.case_id else {
            return Ok(Answered::NotMatched);
        };
        let Some(vid) = self.pending(&case_id, Method::Passkey).await? else {
            return Ok(Answered::NotMatched);
        };
        let link = self.on_page_passkey_token(&vid);
        match self.passkey_link_answer(&link, assertion).await {
            Ok(answer) if answer["passed"] == true => {}
            Ok(_) => return Ok(Answered::NotMatched),
            Err(e) => {
                tracing::info!(case = %case_id, error = %e.message(), "self-service passkey refused");
                return Ok(Answered::NotMatched);
            }
        }
        self.execute_if_approved(&case_id).await?;
        Ok(Answered::Accepted)
    }

    /// Makes the change once the case is approved, for the browser holding the attempt.
    async fn execute_if_approved(&self, case_id: &str) -> AppResult<()> {
        let case = self.load_case(case_id).await?.case;
        if case.state == CaseState::Approved
            && let Err(e) = self.execute(&desk(), case_id).await
        {
            tracing::warn!(case = %case_id, error = %e.message(), "self-service execution refused");
        }
        Ok(())
    }
}

impl Service {
    /// Instead of working the case, the agent sends the caller a self-service link: to the
    /// trusted email of record only (never a contact the caller gives), counted against its send
    /// limit, and the case is cancelled. The link only fills in the page's form; the person still
    /// confirms it is them there, under the same bundle.
    pub async fn send_self_service_link(
        &self,
        caller: &Staff,
        case_id: &str,
    ) -> AppResult<crate::views::CaseView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let case = &stored.case;
        if !ACTIONS.contains(&case.action) {
            return Err(AppError::invalid_as(
                "not_self_service",
                "this request cannot be made on the self-service page; work the case",
            ));
        }
        if !matches!(case.state, CaseState::Open | CaseState::Verifying) {
            return Err(AppError::conflict(
                "case_not_open",
                "only an open case can be moved to self-service",
            ));
        }
        let subject = self.required_subject(&case.subject_id).await?;
        let now = self.now();
        let email = subject
            .trusted_contact(deskgate_core::ContactKind::Email, case.requirements.freshness(), now)
            .ok_or_else(|| {
                AppError::invalid_as(
                    "contact_not_trusted",
                    "the email of record is missing, unverified or recently changed; it cannot carry a self-service link",
                )
            })?;
        let link = format!(
            "{}/recover?name={}&action={}",
            self.config.public_url.trim_end_matches('/'),
            subject.id,
            case.action
        );
        let message = crate::delivery::Message {
            to: email.value.clone(),
            channel: "email".to_owned(),
            kind: "self_service_link".to_owned(),
            subject_id: subject.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "The help desk sent you this link to recover your account yourself. You will \
                 confirm it is you with what you already have on record; nobody will ask you for a \
                 code or password by phone. {link}"
            ),
            secret: None,
        };
        self.send_within_limit(email, &message, "message", now)
            .await?;
        self.end_case(
            caller,
            case_id,
            false,
            "moved to self-service: a link went to the email of record",
        )
        .await
    }
}

/// The number a push verification asks to be entered on the device, from its destination text.
fn push_number(destination: &str) -> Option<String> {
    let after = destination.split("the number ").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}
