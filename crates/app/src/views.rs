//! What the API returns. Views are built from domain values and never carry a secret or a hash.

use chrono::{DateTime, Utc};
use deskgate_core::{
    Action, Approval, Case, CaseState, Channel, Contact, IndependenceClass, Method, PlaybookStep,
    Progress, RiskAssessment, Subject, SubjectStatus, Tier, VerificationState,
};
pub use deskgate_policy::Analysis as AttackPaths;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ContactView {
    pub kind: String,
    pub masked: String,
    pub verified: bool,
    pub changed_at: DateTime<Utc>,
}

impl From<&Contact> for ContactView {
    fn from(c: &Contact) -> Self {
        Self {
            kind: c.kind.to_string(),
            masked: c.masked(),
            verified: c.verified_at.is_some(),
            changed_at: c.changed_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SubjectView {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub status: SubjectStatus,
    pub manager: Option<String>,
    /// The directory groups (departments, teams) the subject belongs to.
    pub groups: Vec<String>,
    pub owners: Vec<String>,
    pub contacts: Vec<ContactView>,
    pub authenticators: usize,
}

impl From<&Subject> for SubjectView {
    fn from(s: &Subject) -> Self {
        Self {
            id: s.id.clone(),
            name: s.display_name.clone(),
            tier: s.tier,
            status: s.status,
            manager: s.manager.clone(),
            groups: s.groups.clone(),
            owners: s.owners.clone(),
            contacts: s.contacts.iter().map(ContactView::from).collect(),
            authenticators: s.authenticators.len(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SubjectRef {
    pub id: String,
    pub name: String,
    pub tier: Tier,
}

#[derive(Debug, Serialize)]
pub struct VerificationView {
    pub id: String,
    pub method: Method,
    pub class: IndependenceClass,
    pub state: VerificationState,
    pub destination: Option<String>,
    pub attempts_left: u32,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether this verification counts toward the requirements, and why not when it does not.
    pub counts: bool,
    pub not_counted_because: Option<String>,
    /// The takeover units this verification's evidence depends on (`phone:…`, `mailbox:…`,
    /// `device:…`, `manager:…`, `document`, `agent`): what an attacker would need to control.
    /// Evidence counts as a class of its own only when it shares none with evidence that counts.
    pub depends_on: Vec<String>,
    /// A callback's one-time code for the agent to read to the caller: only in the answer that
    /// started it, never stored (the verification keeps its hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_out: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GrantView {
    pub id: String,
    pub agent_id: String,
    pub action: Action,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct CaseView {
    pub id: String,
    /// The short reference people read out (`DG-10427`).
    pub reference: String,
    pub state: CaseState,
    pub subject: SubjectRef,
    pub tier: Tier,
    pub action: Action,
    pub channel: Channel,
    pub agent_id: String,
    pub caller_number: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
    pub new_contact: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub risk: RiskAssessment,
    pub requirements: deskgate_core::Requirements,
    pub progress: Progress,
    pub verifications: Vec<VerificationView>,
    pub approvals: Vec<Approval>,
    pub grant: Option<GrantView>,
    pub playbook: Vec<PlaybookStep>,
    pub outcome_reason: Option<String>,
    pub executed_at: Option<DateTime<Utc>>,
    /// The policy decisions on this case, each pinned to its bundle digest and policy ids.
    pub decisions: Vec<deskgate_core::PolicyPin>,
    pub break_glass: bool,
    /// Until when the subject is on probation after a recent recovery, if they are.
    pub subject_probation_until: Option<DateTime<Utc>>,
}

impl CaseView {
    pub fn build(case: &Case, subject: &Subject, offered: &[Method], now: DateTime<Utc>) -> Self {
        let progress = case.progress(now);
        let verifications = case
            .verifications
            .iter()
            .map(|v| {
                // Stale or never counting first; else whether it shares a takeover unit with
                // evidence that counts.
                let reason = Option::<deskgate_core::Evidence>::from(v)
                    .and_then(|e| case.requirements.discount_reason(&e, now))
                    .or_else(|| progress.not_independent.get(&v.id).cloned());
                VerificationView {
                    id: v.id.clone(),
                    method: v.method,
                    class: v.method.class(),
                    state: v.state,
                    destination: v.destination.clone(),
                    attempts_left: v.max_attempts.saturating_sub(v.attempts),
                    started_at: v.started_at,
                    expires_at: v.expires_at,
                    completed_at: v.completed_at,
                    counts: v.state == VerificationState::Passed && reason.is_none(),
                    not_counted_because: reason,
                    depends_on: if v.units.is_empty() {
                        crate::service::methods::depends_on(v)
                            .iter()
                            .map(ToString::to_string)
                            .collect()
                    } else {
                        v.units.iter().cloned().collect()
                    },
                    read_out: None,
                }
            })
            .collect();
        Self {
            id: case.id.clone(),
            reference: case.reference(),
            state: case.state,
            subject: SubjectRef {
                id: subject.id.clone(),
                name: subject.display_name.clone(),
                tier: subject.tier,
            },
            tier: case.subject_tier,
            action: case.action,
            channel: case.channel,
            agent_id: case.agent_id.clone(),
            caller_number: case.caller_number.clone(),
            ticket: case.ticket.clone(),
            note: case.note.clone(),
            new_contact: case.new_contact.clone(),
            opened_at: case.opened_at,
            updated_at: case.updated_at,
            risk: case.risk.clone(),
            requirements: case.requirements.clone(),
            progress,
            verifications,
            approvals: case.approvals.clone(),
            grant: case.grant.as_ref().map(|g| GrantView {
                id: g.id.clone(),
                agent_id: g.agent_id.clone(),
                action: g.action,
                issued_at: g.issued_at,
                expires_at: g.expires_at,
                consumed_at: g.consumed_at,
            }),
            playbook: deskgate_core::playbook::remaining_steps(case, offered, now),
            outcome_reason: case.outcome_reason.clone(),
            executed_at: case.executed_at,
            decisions: case.decisions.clone(),
            break_glass: case.break_glass,
            subject_probation_until: subject.probation_until.filter(|until| now < *until),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CaseSummary {
    pub id: String,
    /// The short reference people read out (`DG-10427`).
    pub reference: String,
    pub state: CaseState,
    pub subject_id: String,
    /// The subject's name as the case recorded it (its id for cases from before names were kept).
    pub subject_name: String,
    pub tier: Tier,
    pub action: Action,
    pub agent_id: String,
    pub risk: deskgate_core::RiskLevel,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub break_glass: bool,
    /// Why the case was escalated or ended, when it was.
    pub reason: Option<String>,
}

impl From<&Case> for CaseSummary {
    fn from(c: &Case) -> Self {
        Self {
            id: c.id.clone(),
            reference: c.reference(),
            state: c.state,
            subject_id: c.subject_id.clone(),
            subject_name: if c.subject_name.is_empty() {
                c.subject_id.clone()
            } else {
                c.subject_name.clone()
            },
            tier: c.subject_tier,
            action: c.action,
            agent_id: c.agent_id.clone(),
            risk: c.risk.level,
            opened_at: c.opened_at,
            updated_at: c.updated_at,
            break_glass: c.break_glass,
            reason: c.outcome_reason.clone(),
        }
    }
}

/// What a manager sees before vouching: enough to recognise the request, nothing secret.
#[derive(Debug, Serialize)]
pub struct AttestationView {
    pub case_id: String,
    pub respondent: SubjectRef,
    pub subject: SubjectRef,
    pub action: Action,
    pub channel: Channel,
    pub agent_id: String,
    pub ticket: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub risk: RiskAssessment,
    pub expires_at: DateTime<Utc>,
    pub question: String,
    pub how_to_answer: String,
}

#[derive(Debug, Serialize)]
pub struct ExecutionView {
    pub case: CaseView,
    pub grant_id: String,
    /// Where the new secret went (masked), never the secret.
    pub result: serde_json::Value,
    pub notices_sent: usize,
    pub delivery_failures: usize,
}
