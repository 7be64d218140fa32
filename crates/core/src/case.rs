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
use crate::risk::{RiskAssessment, RiskLevel};

mod executing;
mod failures;
mod people;
mod verifying;

pub use failures::FailureEscalation;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A help-desk call (also what a decision assumes when no channel is given).
    #[default]
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
    /// The short number people read out (`DG-10427`), handed out by the store when the case is
    /// first written; 0 until then.
    #[serde(default)]
    pub number: u64,
    pub subject_id: String,
    /// The subject's display name when the case was opened, for queues and reports.
    #[serde(default)]
    pub subject_name: String,
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
    /// How many times the case was escalated for failed verifications: the next escalation
    /// comes at the next multiple of the limit.
    #[serde(default)]
    pub failure_escalations: u32,
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
    #[error("every try of {0} on this case is used up; use another method, or deny the case")]
    MethodExhausted(Method),
}

/// The prefix of every case reference.
pub const REFERENCE_PREFIX: &str = "DG-";

/// The number in a case reference as people type it (`DG-10427`, `dg 10427`, `10427`), if it is one.
pub fn reference_number(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = match t.get(..2) {
        Some(p) if p.eq_ignore_ascii_case("dg") => t[2..].trim_start_matches(['-', ' ']),
        _ => t,
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

impl Case {
    /// The short reference people read out on a call, e.g. `DG-10427`.
    pub fn reference(&self) -> String {
        format!("{REFERENCE_PREFIX}{}", self.number)
    }

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
            subject_name: new.subject.display_name.clone(),
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
            failure_escalations: 0,
            number: 0,
        })
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

#[cfg(test)]
mod reference_tests {
    use super::reference_number;

    #[test]
    fn references_read_as_people_type_them() {
        for typed in ["DG-10427", "dg-10427", " DG 10427 ", "10427", "Dg10427"] {
            assert_eq!(reference_number(typed), Some(10427), "{typed}");
        }
        for typed in [
            "",
            "DG-",
            "DG-x1",
            "c-10427",
            "DG--",
            "0",
            "DG-1234567890123",
            "-5",
        ] {
            assert_eq!(reference_number(typed), None, "{typed}");
        }
    }
}
