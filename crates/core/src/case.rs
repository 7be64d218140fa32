//! The recovery case and its state machine. Every transition is decided here and nowhere else:
//! callers load a case, call one method with `now`, and persist the result. An illegal move is an
//! error value and leaves the case as it was.
//!
//! ```text
//! open -> verifying -> approved -> executed -> closed
//! any live state -> denied | cancelled | expired | escalated;  escalated -> verifying
//! approved (grant consumed, connector call in flight) -> executed | failed  (nothing else)
//! ```

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::api_ids;
use crate::directory::{Action, ContactKind, Staff, Subject, SubjectStatus, Tier};
use crate::evidence::{AttemptOutcome, Evidence, Method, Verification, VerificationState};
use crate::requirements::{Progress, Requirements};
use crate::risk::RiskAssessment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Phone,
    Chat,
    Ticket,
    WalkIn,
    SelfService,
}
api_ids!(Channel { Phone => "phone", Chat => "chat", Ticket => "ticket", WalkIn => "walk_in",
    SelfService => "self_service" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Open,
    Verifying,
    Approved,
    Executed,
    Closed,
    Denied,
    Cancelled,
    Expired,
    Escalated,
    /// The grant was consumed but the connector reported an error: the action may not have
    /// happened (or only partly), so the case must not read as executed. Terminal: a retry is a
    /// new case with fresh evidence (see [`Case::fail_execution`]).
    Failed,
}
api_ids!(CaseState { Open => "open", Verifying => "verifying", Approved => "approved",
    Executed => "executed", Closed => "closed", Denied => "denied", Cancelled => "cancelled",
    Expired => "expired", Escalated => "escalated", Failed => "failed" });

impl CaseState {
    /// States in which the case can still move toward execution.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::Open | Self::Verifying | Self::Approved | Self::Escalated
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Confirm,
    Reject,
}
api_ids!(Decision { Confirm => "confirm", Reject => "reject" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproverRole {
    Manager,
    Owner,
    Supervisor,
    SecurityOfficer,
}
api_ids!(ApproverRole { Manager => "manager", Owner => "owner", Supervisor => "supervisor",
    SecurityOfficer => "security_officer" });

/// A policy decision the case depends on, pinned to the bundle that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPin {
    /// `open`, `approve` or `execute`.
    pub stage: String,
    /// `allow`, `deny` or `escalate`.
    pub outcome: String,
    pub bundle_digest: String,
    pub policy_ids: Vec<String>,
    pub reasons: Vec<String>,
    pub at: DateTime<Utc>,
}

/// A person's decision about a case, bound to [`Case::approval_digest`] of the case as it stood
/// when they decided. It counts only while the case still has that digest: a change to what was
/// asked or to the requirements (break-glass) leaves it on record but no longer counting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The account the approval came through: a staff id, or for an attestation the
    /// respondent's subject id.
    pub approver_id: String,
    /// The person behind that account (their subject id). "A different person" is decided on
    /// this, never on account ids: one person may hold a staff account and be a manager.
    #[serde(default)]
    pub person_id: String,
    pub role: ApproverRole,
    pub decision: Decision,
    pub case_digest: String,
    pub at: DateTime<Utc>,
}

/// Just-in-time permission: one agent, one case, one subject, one action, minutes long,
/// consumed at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub case_id: String,
    pub agent_id: String,
    pub subject_id: String,
    pub action: Action,
    pub issued_at: DateTime<Utc>,
    /// The end of the cooling-off delay; the grant cannot be used before it.
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
}

/// Everything needed to open a case; the caller has loaded the subject and the agent.
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    pub id: String,
    pub subject: &'a Subject,
    pub agent: &'a Staff,
    /// The manager of the agent's own identity, to refuse acting on one's own manager.
    pub agent_manager: Option<&'a str>,
    pub action: Action,
    pub channel: Channel,
    pub caller_number: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
    /// The new address or number for `email_change` / `phone_change`.
    pub new_contact: Option<String>,
    /// Who the caller claims to be when not the subject (an owner of a service account).
    pub requester: Option<String>,
    pub risk: RiskAssessment,
    pub requirements: Requirements,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub subject_id: String,
    pub subject_tier: Tier,
    pub action: Action,
    pub channel: Channel,
    pub agent_id: String,
    pub caller_number: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
    pub new_contact: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    pub state: CaseState,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub risk: RiskAssessment,
    pub requirements: Requirements,
    pub verifications: Vec<Verification>,
    pub approvals: Vec<Approval>,
    pub grant: Option<Grant>,
    pub grants_minted: u32,
    /// Why the case was denied, cancelled, expired or escalated.
    pub outcome_reason: Option<String>,
    pub executed_at: Option<DateTime<Utc>>,
    /// The policy decisions taken on this case, oldest first.
    #[serde(default)]
    pub decisions: Vec<PolicyPin>,
    /// Opened by a security officer because the playbook could not be met.
    #[serde(default)]
    pub break_glass: bool,
    /// The persons (subject ids) of the staff who worked the case: opened it, ran its
    /// verifications, resumed it, executed it. None of them may vouch for or approve it.
    #[serde(default)]
    pub participants: Vec<String>,
}

/// Why a transition was refused. The case is unchanged whenever one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaseError {
    #[error("nobody may open or work a recovery case about themselves")]
    SelfService,
    #[error("nobody may open a recovery case about their own manager")]
    OwnManager,
    #[error("the subject is {0}: recovery is refused")]
    SubjectNotRecoverable(SubjectStatus),
    #[error("{0} needs the new contact value")]
    MissingNewContact(Action),
    #[error("only email_change and phone_change take a new contact")]
    UnexpectedNewContact,
    #[error("the case is {0} and can no longer change")]
    NotLive(CaseState),
    #[error("a case that is {from} cannot become {to}")]
    IllegalTransition { from: CaseState, to: CaseState },
    #[error("no verification {0} in this case")]
    UnknownVerification(String),
    #[error("the verification is {0} and takes no more answers")]
    VerificationNotPending(VerificationState),
    #[error("{0} is not completed this way")]
    WrongMethod(Method),
    #[error("only the person the verification was sent to may answer it")]
    NotRespondent,
    #[error("the requirements are not met yet")]
    RequirementsNotMet(Box<Progress>),
    #[error("the grant belongs to another agent")]
    NotGrantHolder,
    #[error("the grant was already used")]
    GrantConsumed,
    #[error("the grant expired")]
    GrantExpired,
    #[error("the cooling-off delay runs until {0}")]
    CoolingOff(DateTime<Utc>),
    #[error("this person has already approved the case")]
    AlreadyApproved,
    #[error("the person the link was sent to must first prove who they are")]
    RespondentNotAuthenticated,
    #[error("the person the link was sent to has already proved who they are")]
    RespondentAlreadyAuthenticated,
    #[error("no sign-in code is waiting for an answer; ask for a new one")]
    NoRespondentChallenge,
    #[error("the sign-in code expired; ask for a new one")]
    RespondentChallengeExpired,
    #[error("{0} sign-in codes were already sent for this link")]
    TooManyRespondentCodes(u32),
    #[error(
        "this staff account is not linked to a person in the directory, so it cannot act on cases"
    )]
    NoLinkedPerson,
    #[error("this person worked the case, so they cannot vouch for or approve it")]
    WorkedTheCase,
    #[error("this person already vouched for or approved the case, so they cannot work it")]
    AlreadyContributed,
    #[error("the connector is carrying out the action now; its outcome is recorded first")]
    ExecutionInFlight,
}

impl Case {
    /// Opens a case, refusing the guardrail violations that no evidence can cure.
    pub fn open(new: NewCase<'_>, now: DateTime<Utc>) -> Result<Self, CaseError> {
        let agent_subject = new.agent.subject_id.as_deref();
        let Some(agent_person) = agent_subject.filter(|p| !p.is_empty()) else {
            return Err(CaseError::NoLinkedPerson);
        };
        if agent_subject == Some(new.subject.id.as_str())
            || new
                .subject
                .owners
                .iter()
                .any(|o| Some(o.as_str()) == agent_subject)
        {
            return Err(CaseError::SelfService);
        }
        if new.agent_manager == Some(new.subject.id.as_str()) {
            return Err(CaseError::OwnManager);
        }
        if matches!(
            new.subject.status,
            SubjectStatus::Terminated | SubjectStatus::Disabled | SubjectStatus::OnLeave
        ) {
            return Err(CaseError::SubjectNotRecoverable(new.subject.status));
        }
        match (new.action.changed_contact_kind(), &new.new_contact) {
            (Some(_), None) => return Err(CaseError::MissingNewContact(new.action)),
            (None, Some(_)) => return Err(CaseError::UnexpectedNewContact),
            _ => {}
        }
        Ok(Self {
            id: new.id,
            subject_id: new.subject.id.clone(),
            subject_tier: new.subject.tier,
            action: new.action,
            channel: new.channel,
            agent_id: new.agent.id.clone(),
            caller_number: new.caller_number,
            ticket: new.ticket,
            note: new.note,
            new_contact: new.new_contact,
            requester: new.requester,
            state: CaseState::Open,
            opened_at: now,
            updated_at: now,
            risk: new.risk,
            requirements: new.requirements,
            verifications: Vec::new(),
            approvals: Vec::new(),
            grant: None,
            grants_minted: 0,
            outcome_reason: None,
            executed_at: None,
            decisions: Vec::new(),
            break_glass: false,
            participants: vec![agent_person.to_owned()],
        })
    }

    /// A digest of the case as an approver decides on it: what is asked, of whom, by whom, and
    /// the requirements in force. Approvals bound to another digest do not count.
    pub fn approval_digest(&self) -> String {
        #[derive(Serialize)]
        struct Seen<'a> {
            case_id: &'a str,
            subject_id: &'a str,
            subject_tier: Tier,
            action: Action,
            channel: Channel,
            agent_id: &'a str,
            caller_number: &'a Option<String>,
            ticket: &'a Option<String>,
            new_contact: &'a Option<String>,
            requester: &'a Option<String>,
            opened_at: DateTime<Utc>,
            break_glass: bool,
            requirements: &'a Requirements,
        }
        let seen = Seen {
            case_id: &self.id,
            subject_id: &self.subject_id,
            subject_tier: self.subject_tier,
            action: self.action,
            channel: self.channel,
            agent_id: &self.agent_id,
            caller_number: &self.caller_number,
            ticket: &self.ticket,
            new_contact: &self.new_contact,
            requester: &self.requester,
            opened_at: self.opened_at,
            break_glass: self.break_glass,
            requirements: &self.requirements,
        };
        // Serialising plain data with derived impls cannot fail; an empty digest never matches.
        let text = serde_json::to_string(&seen).unwrap_or_default();
        let digest = sha2::Sha256::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Approvals that count now: bound to the case as it stands, given by a known person.
    pub fn counted_approvals(&self) -> Vec<Approval> {
        let digest = self.approval_digest();
        self.approvals
            .iter()
            .filter(|a| a.case_digest == digest && !a.person_id.is_empty())
            .cloned()
            .collect()
    }

    /// The persons who vouched for or approved the case and whose word still stands: the
    /// respondents of passed attestations and the givers of counted approvals.
    pub fn contributors(&self) -> Vec<&str> {
        let digest = self.approval_digest();
        let mut out: Vec<&str> = self
            .verifications
            .iter()
            .filter(|v| {
                v.method == Method::ManagerAttestation && v.state == VerificationState::Passed
            })
            .map(|v| v.respondent.as_str())
            .collect();
        out.extend(
            self.approvals
                .iter()
                .filter(|a| a.case_digest == digest)
                .map(|a| a.person_id.as_str()),
        );
        out
    }

    /// Persons who may not vouch for this case: the subject, everyone who worked it, and everyone
    /// whose word it already holds.
    pub fn excluded_vouchers(&self) -> Vec<&str> {
        let mut out = vec![self.subject_id.as_str()];
        out.extend(self.participants.iter().map(String::as_str));
        out.extend(self.contributors());
        out
    }

    /// Records that the person behind a staff account works the case. A person who already
    /// vouched for or approved it cannot also work it (one person, one role per case).
    pub fn record_participant(&mut self, person: Option<&str>) -> Result<(), CaseError> {
        let person = person
            .filter(|p| !p.is_empty())
            .ok_or(CaseError::NoLinkedPerson)?;
        if person == self.subject_id {
            return Err(CaseError::SelfService);
        }
        if self.contributors().contains(&person) {
            return Err(CaseError::AlreadyContributed);
        }
        if !self.participants.iter().any(|p| p == person) {
            self.participants.push(person.to_owned());
        }
        Ok(())
    }

    /// Refuses a person as voucher or approver when they are the subject, worked the case, or
    /// already gave their word on it.
    fn ensure_independent_person(&self, person: &str) -> Result<(), CaseError> {
        if person.is_empty() {
            return Err(CaseError::NoLinkedPerson);
        }
        if person == self.subject_id {
            return Err(CaseError::SelfService);
        }
        if self.participants.iter().any(|p| p == person) {
            return Err(CaseError::WorkedTheCase);
        }
        if self.contributors().contains(&person) {
            return Err(CaseError::AlreadyApproved);
        }
        Ok(())
    }

    /// The passed verifications, as evidence.
    pub fn evidence(&self) -> Vec<Evidence> {
        self.verifications
            .iter()
            .filter_map(Option::<Evidence>::from)
            .collect()
    }

    pub fn progress(&self, now: DateTime<Utc>) -> Progress {
        self.requirements
            .evaluate(&self.evidence(), &self.counted_approvals(), now)
    }

    pub fn verification(&self, id: &str) -> Option<&Verification> {
        self.verifications.iter().find(|v| v.id == id)
    }

    fn verification_mut(&mut self, id: &str) -> Result<&mut Verification, CaseError> {
        self.verifications
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or_else(|| CaseError::UnknownVerification(id.to_owned()))
    }

    fn ensure_live(&self) -> Result<(), CaseError> {
        if self.state.is_live() {
            Ok(())
        } else {
            Err(CaseError::NotLive(self.state))
        }
    }

    /// Adds a started verification. A newer one of the same method supersedes a pending one,
    /// so only the latest code sent can pass.
    pub fn start_verification(
        &mut self,
        verification: Verification,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        match self.state {
            CaseState::Open | CaseState::Verifying => {}
            CaseState::Approved | CaseState::Escalated => {
                return Err(CaseError::IllegalTransition {
                    from: self.state,
                    to: CaseState::Verifying,
                });
            }
            other => return Err(CaseError::NotLive(other)),
        }
        for v in &mut self.verifications {
            if v.method == verification.method && v.state == VerificationState::Pending {
                v.state = VerificationState::Expired;
                v.completed_at = Some(now);
            }
        }
        self.verifications.push(verification);
        self.state = CaseState::Verifying;
        self.updated_at = now;
        Ok(())
    }

    fn pending(&mut self, id: &str, now: DateTime<Utc>) -> Result<&mut Verification, CaseError> {
        let state = self.state;
        if state != CaseState::Verifying {
            return Err(if state.is_live() {
                CaseError::IllegalTransition {
                    from: state,
                    to: CaseState::Verifying,
                }
            } else {
                CaseError::NotLive(state)
            });
        }
        let v = self.verification_mut(id)?;
        if v.state != VerificationState::Pending {
            return Err(CaseError::VerificationNotPending(v.state));
        }
        if v.is_expired(now) {
            return Err(CaseError::VerificationNotPending(
                VerificationState::Expired,
            ));
        }
        Ok(v)
    }

    /// Marks a pending verification whose lifetime ran out as expired. Returns whether it did.
    pub fn expire_verification(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        match self.verifications.iter_mut().find(|v| v.id == id) {
            Some(v) if v.state == VerificationState::Pending && v.is_expired(now) => {
                v.state = VerificationState::Expired;
                v.completed_at = Some(now);
                self.updated_at = now;
                true
            }
            _ => false,
        }
    }

    /// Records one answer to a code verification; `matched` is the caller's constant-time
    /// comparison of the answer with the stored hash.
    pub fn answer_code(
        &mut self,
        id: &str,
        matched: bool,
        now: DateTime<Utc>,
    ) -> Result<AttemptOutcome, CaseError> {
        let v = self.pending(id, now)?;
        if !v.method.is_answered() {
            return Err(CaseError::WrongMethod(v.method));
        }
        let outcome = if matched {
            v.state = VerificationState::Passed;
            v.completed_at = Some(now);
            AttemptOutcome::Passed
        } else {
            v.attempts += 1;
            if v.attempts >= v.max_attempts {
                v.state = VerificationState::Locked;
                v.completed_at = Some(now);
                AttemptOutcome::Locked
            } else {
                AttemptOutcome::Failed {
                    attempts_left: v.max_attempts - v.attempts,
                }
            }
        };
        self.updated_at = now;
        self.refresh(now);
        Ok(outcome)
    }

    /// Completes a verification whose answer comes from outside (an identity-verification vendor,
    /// the subject's enrolled device):
    /// passed counts its class, failed closes it without counting.
    pub fn complete_external(
        &mut self,
        id: &str,
        passed: bool,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let v = self.pending(id, now)?;
        if !matches!(
            v.method,
            Method::IdProofing | Method::Push | Method::Callback | Method::Passkey
        ) {
            return Err(CaseError::WrongMethod(v.method));
        }
        v.state = if passed {
            VerificationState::Passed
        } else {
            VerificationState::Rejected
        };
        v.completed_at = Some(now);
        self.updated_at = now;
        self.refresh(now);
        Ok(())
    }

    fn pending_attestation(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<&mut Verification, CaseError> {
        let v = self.pending(id, now)?;
        if v.method != Method::ManagerAttestation {
            return Err(CaseError::WrongMethod(v.method));
        }
        Ok(v)
    }

    /// Records a one-time sign-in code sent to the attestation's respondent on a factor of their
    /// own. At most `max_codes` are sent per link.
    pub fn challenge_respondent(
        &mut self,
        id: &str,
        code_hash: String,
        destination: String,
        expires_at: DateTime<Utc>,
        max_codes: u32,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let v = self.pending_attestation(id, now)?;
        let (passed, sent) = v
            .respondent_check
            .as_ref()
            .map_or((false, 0), |c| (c.passed_at.is_some(), c.codes_sent));
        if passed {
            return Err(CaseError::RespondentAlreadyAuthenticated);
        }
        if sent >= max_codes {
            return Err(CaseError::TooManyRespondentCodes(sent));
        }
        let check = v.respondent_check.get_or_insert_with(Default::default);
        check.codes_sent += 1;
        check.code_hash = Some(code_hash);
        check.code_expires_at = Some(expires_at);
        check.destination = Some(destination);
        self.updated_at = now;
        Ok(())
    }

    /// The hash of the respondent's live sign-in code, for the caller's constant-time compare.
    pub fn respondent_code_hash(&self, id: &str) -> Option<&str> {
        self.verification(id)
            .and_then(|v| v.respondent_check.as_ref())
            .and_then(|c| c.code_hash.as_deref())
    }

    /// Records one answer to the respondent's sign-in code; `matched` is the caller's
    /// constant-time comparison. Wrong answers count across codes: at the verification's
    /// attempt limit the attestation locks and can no longer count.
    pub fn authenticate_respondent(
        &mut self,
        id: &str,
        matched: bool,
        now: DateTime<Utc>,
    ) -> Result<AttemptOutcome, CaseError> {
        let v = self.pending_attestation(id, now)?;
        let max = v.max_attempts;
        let check = v
            .respondent_check
            .as_mut()
            .filter(|c| c.code_hash.is_some())
            .ok_or(CaseError::NoRespondentChallenge)?;
        if check.passed_at.is_some() {
            return Err(CaseError::RespondentAlreadyAuthenticated);
        }
        if check.code_expires_at.is_none_or(|at| now >= at) {
            return Err(CaseError::RespondentChallengeExpired);
        }
        let outcome = if matched {
            check.code_hash = None;
            check.code_expires_at = None;
            check.method = Some(Method::SmsCode);
            check.passed_at = Some(now);
            AttemptOutcome::Passed
        } else {
            check.failures += 1;
            if check.failures >= max {
                check.code_hash = None;
                v.state = VerificationState::Locked;
                v.completed_at = Some(now);
                AttemptOutcome::Locked
            } else {
                AttemptOutcome::Failed {
                    attempts_left: max - check.failures,
                }
            }
        };
        self.updated_at = now;
        self.refresh(now);
        Ok(outcome)
    }

    /// Records the manager's (or owner's) attestation, once they have proved who they are. A
    /// rejection denies the case: the person who knows the subject says the request is not
    /// genuine.
    pub fn attest(
        &mut self,
        id: &str,
        approver_id: &str,
        role: ApproverRole,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        self.ensure_independent_person(approver_id)?;
        let case_digest = self.approval_digest();
        let v = self.pending_attestation(id, now)?;
        if v.respondent != approver_id {
            return Err(CaseError::NotRespondent);
        }
        if v.respondent_check
            .as_ref()
            .is_none_or(|c| c.passed_at.is_none())
        {
            return Err(CaseError::RespondentNotAuthenticated);
        }
        v.completed_at = Some(now);
        v.state = match decision {
            Decision::Confirm => VerificationState::Passed,
            Decision::Reject => VerificationState::Rejected,
        };
        self.approvals.push(Approval {
            approver_id: approver_id.to_owned(),
            person_id: approver_id.to_owned(),
            role,
            decision,
            case_digest,
            at: now,
        });
        self.updated_at = now;
        if decision == Decision::Reject {
            self.state = CaseState::Denied;
            self.outcome_reason = Some(format!("{approver_id} rejected the request"));
            self.grant = None;
        } else {
            self.refresh(now);
        }
        Ok(())
    }

    /// Records a staff approval (supervisor, security officer, owner), bound to the case's
    /// [`Case::approval_digest`] now. Persons are compared, not accounts: nobody approves a case
    /// about themselves or one they worked, and one person gives their word on a case once
    /// (an attestation and an approval by the same person count once, as neither). A rejection
    /// denies it.
    pub fn approve(
        &mut self,
        approver_id: &str,
        approver_person: Option<&str>,
        role: ApproverRole,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let person = approver_person.unwrap_or_default();
        if approver_id == self.agent_id {
            return Err(CaseError::SelfService);
        }
        self.ensure_independent_person(person)?;
        let case_digest = self.approval_digest();
        match self.state {
            CaseState::Open | CaseState::Verifying | CaseState::Approved => {}
            other if other.is_live() => {
                return Err(CaseError::IllegalTransition {
                    from: other,
                    to: CaseState::Approved,
                });
            }
            other => return Err(CaseError::NotLive(other)),
        }
        if self
            .approvals
            .iter()
            .any(|a| a.approver_id == approver_id && a.case_digest == case_digest)
        {
            return Err(CaseError::AlreadyApproved);
        }
        self.approvals.push(Approval {
            approver_id: approver_id.to_owned(),
            person_id: person.to_owned(),
            role,
            decision,
            case_digest,
            at: now,
        });
        self.updated_at = now;
        if decision == Decision::Reject {
            self.state = CaseState::Denied;
            self.outcome_reason = Some(format!("{approver_id} ({role}) rejected the request"));
            self.grant = None;
            return Ok(());
        }
        if self.state == CaseState::Open {
            self.state = CaseState::Verifying;
        }
        self.refresh(now);
        Ok(())
    }

    /// Switches a live case to the break-glass requirements (two security officers, a
    /// cooling-off). Evidence already collected still counts; approvals start from nothing:
    /// those given before stay on record but were given on other requirements, and an officer's
    /// routine approval must not become half of a break-glass.
    pub fn open_break_glass(
        &mut self,
        requirements: Requirements,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        match self.state {
            CaseState::Open | CaseState::Verifying => {}
            other if other.is_live() => {
                return Err(CaseError::IllegalTransition {
                    from: other,
                    to: CaseState::Verifying,
                });
            }
            other => return Err(CaseError::NotLive(other)),
        }
        if self.break_glass {
            return Err(CaseError::IllegalTransition {
                from: self.state,
                to: self.state,
            });
        }
        self.break_glass = true;
        self.requirements = requirements;
        self.approvals.clear();
        self.state = CaseState::Verifying;
        self.updated_at = now;
        Ok(())
    }

    /// Pins a policy decision to the case.
    pub fn record_decision(&mut self, pin: PolicyPin) {
        self.decisions.push(pin);
    }

    /// Moves a verifying case whose requirements are met to `approved` and mints its grant.
    fn refresh(&mut self, now: DateTime<Utc>) {
        if self.state == CaseState::Verifying && self.progress(now).met {
            self.grants_minted += 1;
            let usable_from = now + Duration::minutes(self.requirements.cooling_off_minutes);
            self.grant = Some(Grant {
                id: format!("{}-g{}", self.id, self.grants_minted),
                case_id: self.id.clone(),
                agent_id: self.agent_id.clone(),
                subject_id: self.subject_id.clone(),
                action: self.action,
                issued_at: now,
                not_before: (usable_from > now).then_some(usable_from),
                expires_at: usable_from + Duration::minutes(self.requirements.grant_minutes),
                consumed_at: None,
            });
            self.state = CaseState::Approved;
        }
    }

    /// Consumes the grant and marks the case executed. The caller performs the action only after
    /// persisting this change, so a grant can never be used twice.
    pub fn execute(&mut self, agent_id: &str, now: DateTime<Utc>) -> Result<Grant, CaseError> {
        let used = self.begin_execution(agent_id, now)?;
        self.state = CaseState::Executed;
        self.executed_at = Some(now);
        Ok(used)
    }

    /// Consumes the grant for an action performed by an external connector, whose outcome is
    /// known only after the call. The case stays `approved` with its grant consumed until
    /// [`Case::complete_execution`] or [`Case::fail_execution`]; the caller persists this change
    /// before calling the connector, so the grant can never be used twice. Nothing but the
    /// connector's outcome ends a case here; one left by a crash mid-call is failed with
    /// [`Case::fail_execution`] (the outcome unknown) and never executed again.
    pub fn begin_execution(
        &mut self,
        agent_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, CaseError> {
        match self.state {
            CaseState::Approved => {}
            CaseState::Open | CaseState::Verifying => {
                return Err(CaseError::RequirementsNotMet(Box::new(self.progress(now))));
            }
            CaseState::Executed | CaseState::Closed => return Err(CaseError::GrantConsumed),
            other => return Err(CaseError::NotLive(other)),
        }
        // The grant was minted on evidence that may since have gone stale; check again.
        let progress = self.progress(now);
        if !progress.met {
            return Err(CaseError::RequirementsNotMet(Box::new(progress)));
        }
        let grant = self
            .grant
            .as_mut()
            .ok_or(CaseError::RequirementsNotMet(Box::new(progress)))?;
        if grant.agent_id != agent_id {
            return Err(CaseError::NotGrantHolder);
        }
        if grant.consumed_at.is_some() {
            return Err(CaseError::GrantConsumed);
        }
        if let Some(from) = grant.not_before
            && now < from
        {
            return Err(CaseError::CoolingOff(from));
        }
        if now >= grant.expires_at {
            return Err(CaseError::GrantExpired);
        }
        grant.consumed_at = Some(now);
        let used = grant.clone();
        self.updated_at = now;
        Ok(used)
    }

    /// True while a consumed grant waits for its connector's answer.
    pub fn execution_in_flight(&self) -> bool {
        self.state == CaseState::Approved
            && self.grant.as_ref().is_some_and(|g| g.consumed_at.is_some())
    }

    fn ensure_in_flight(&self, to: CaseState) -> Result<(), CaseError> {
        if self.execution_in_flight() {
            Ok(())
        } else {
            Err(CaseError::IllegalTransition {
                from: self.state,
                to,
            })
        }
    }

    /// The connector performed the action.
    pub fn complete_execution(&mut self, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.ensure_in_flight(CaseState::Executed)?;
        self.state = CaseState::Executed;
        self.executed_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// The connector reported an error. The case ends as `failed`, its grant spent: going back
    /// to `approved` with a new grant would let the same (by now older) evidence drive a second
    /// attempt on a directory that may have applied part of the first one, with nobody deciding
    /// to retry. The agent opens a new case, which verifies afresh and sees this one in the
    /// subject's history.
    pub fn fail_execution(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.ensure_in_flight(CaseState::Failed)?;
        self.state = CaseState::Failed;
        self.outcome_reason = Some(reason);
        self.updated_at = now;
        Ok(())
    }

    /// The contact of record of `kind` changed at `now` (the system of record shows a new
    /// value): verifications that went through it no longer count, and an approved case whose
    /// requirements are no longer met goes back to verifying without its grant. A grant already
    /// consumed is left alone. Returns whether the case changed.
    pub fn contact_changed(&mut self, kind: ContactKind, now: DateTime<Utc>) -> bool {
        if !self.state.is_live() || self.execution_in_flight() {
            return false;
        }
        let mut changed = false;
        for v in &mut self.verifications {
            if v.method.contact_kind() == Some(kind)
                && matches!(
                    v.state,
                    VerificationState::Passed | VerificationState::Pending
                )
            {
                v.contact_changed_at = Some(now);
                changed = true;
            }
        }
        if changed {
            self.updated_at = now;
            if self.state == CaseState::Approved && !self.progress(now).met {
                self.state = CaseState::Verifying;
                self.grant = None;
            }
        }
        changed
    }

    /// Denying, cancelling or expiring waits for a connector call in flight: ending the case
    /// under it would leave the action done in the directory with no outcome, notices or
    /// probation on record.
    fn end(&mut self, to: CaseState, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        if self.execution_in_flight() {
            return Err(CaseError::ExecutionInFlight);
        }
        self.ensure_live()?;
        self.state = to;
        self.outcome_reason = Some(reason);
        self.grant = None;
        for v in &mut self.verifications {
            if v.state == VerificationState::Pending {
                v.state = VerificationState::Expired;
                v.completed_at = Some(now);
            }
        }
        self.updated_at = now;
        Ok(())
    }

    pub fn deny(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.end(CaseState::Denied, reason, now)
    }

    pub fn cancel(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.end(CaseState::Cancelled, reason, now)
    }

    pub fn expire(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.end(CaseState::Expired, reason, now)
    }

    /// Hands the case to a security officer; any grant is withdrawn. Not while a consumed
    /// grant waits for its connector: resuming would mint a second grant for the same case.
    pub fn escalate(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        if self.state == CaseState::Escalated || self.execution_in_flight() {
            return Err(CaseError::IllegalTransition {
                from: self.state,
                to: CaseState::Escalated,
            });
        }
        self.ensure_live()?;
        self.state = CaseState::Escalated;
        self.outcome_reason = Some(reason);
        self.grant = None;
        self.updated_at = now;
        Ok(())
    }

    /// A security officer takes an escalated case back into verification.
    pub fn resume(&mut self, now: DateTime<Utc>) -> Result<(), CaseError> {
        if self.state != CaseState::Escalated {
            return Err(CaseError::IllegalTransition {
                from: self.state,
                to: CaseState::Verifying,
            });
        }
        self.state = CaseState::Verifying;
        self.updated_at = now;
        self.refresh(now);
        Ok(())
    }

    pub fn close(&mut self, now: DateTime<Utc>) -> Result<(), CaseError> {
        if self.state != CaseState::Executed {
            return Err(CaseError::IllegalTransition {
                from: self.state,
                to: CaseState::Closed,
            });
        }
        self.state = CaseState::Closed;
        self.updated_at = now;
        Ok(())
    }
}
