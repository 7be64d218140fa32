//! The bridge between a case and the policy bundle: builds Cedar decision requests from what the
//! store holds (staff, subject, signals, evidence, approvals) and pins each decision to the case.

use chrono::{DateTime, Duration, Utc};
use deskgate_core::{
    Action, ApproverRole, Case, ContactKind, Decision as Verdict, PolicyPin, Staff, Subject,
};
use deskgate_policy::{
    ApprovalInput, Bundle, Decision, DecisionRequest, EvidenceInput, RiskSignals, StaffInfo, Stage,
    SubjectInfo,
};

/// Facts about the request context that come from the store.
pub struct StoreFacts {
    pub recent_recoveries: u32,
    pub open_cases_for_subject: u32,
    pub requests_for_subject: u32,
    pub requests_from_caller_number: u32,
    pub requests_by_agent: u32,
}

fn days(d: Duration) -> u32 {
    u32::try_from(d.num_days().max(0)).unwrap_or(u32::MAX)
}

fn digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

/// The risk signals of a request about `subject` at `now`.
pub fn signals(
    subject: &Subject,
    caller_number: Option<&str>,
    facts: &StoreFacts,
    now: DateTime<Utc>,
) -> RiskSignals {
    let phone = subject.contact(ContactKind::Phone);
    RiskSignals {
        contact_changes: subject
            .contacts
            .iter()
            .map(|c| deskgate_policy::risk::ContactChange {
                kind: c.kind,
                days_ago: days(now - c.changed_at),
            })
            .collect(),
        recent_recoveries: facts.recent_recoveries,
        open_cases_for_subject: facts.open_cases_for_subject,
        requests_for_subject: facts.requests_for_subject,
        requests_from_caller_number: facts.requests_from_caller_number,
        requests_by_agent: facts.requests_by_agent,
        caller_number_differs: match (caller_number, phone) {
            (Some(given), Some(record)) => digits(given) != digits(&record.value),
            (Some(_), None) => true,
            _ => false,
        },
        subject_local_hour: subject.utc_offset_minutes.and_then(|offset| {
            let local = now + Duration::minutes(i64::from(offset));
            u8::try_from(chrono::Timelike::hour(&local)).ok()
        }),
        days_since_hire: subject.hired_at.map(|h| days(now - h)),
        no_enrolled_factors: subject.authenticators.is_empty(),
        subject_flagged: subject.flagged,
    }
}

pub fn staff_info(staff: &Staff, own_manager: Option<String>) -> StaffInfo {
    StaffInfo {
        id: staff.id.clone(),
        role: staff.role,
        team: staff.team.clone(),
        region: staff.region.clone(),
        shift: staff.shift.clone(),
        subject_id: staff.subject_id.clone(),
        manager_id: own_manager,
    }
}

pub fn subject_info(subject: &Subject, now: DateTime<Utc>) -> SubjectInfo {
    SubjectInfo {
        id: subject.id.clone(),
        tier: subject.tier,
        status: subject.status,
        groups: subject.groups.clone(),
        on_probation: subject.on_probation(now),
    }
}

/// Evidence as the policy sees it: every passed verification with the age of its contact.
pub fn evidence(case: &Case, now: DateTime<Utc>) -> Vec<EvidenceInput> {
    case.evidence()
        .iter()
        .map(|e| EvidenceInput {
            class: e.class,
            contact_age_days: e.contact_changed_at.map(|c| days(now - c)),
            caller_supplied: false,
        })
        .collect()
}

/// Staff approvals (manager attestations are evidence of class `manager`).
/// Only approvals bound to the case as it stands count, and they are named by the person who
/// gave them, so one person holding two accounts is seen once.
pub fn approvals(case: &Case) -> Vec<ApprovalInput> {
    case.counted_approvals()
        .iter()
        .filter(|a| a.decision == Verdict::Confirm && a.role != ApproverRole::Manager)
        .map(|a| ApprovalInput {
            approver_id: a.person_id.clone(),
            role: a.role,
        })
        .collect()
}

/// Everything one decision needs.
pub struct Ask<'a> {
    pub stage: Stage,
    pub principal: StaffInfo,
    pub case_agent_id: String,
    pub subject: &'a Subject,
    pub action: Action,
    pub signals: RiskSignals,
    pub case: Option<&'a Case>,
    pub requester_is_owner: bool,
    /// How the request came in (the case's channel, or the one a new case names).
    pub channel: deskgate_core::Channel,
    pub now: DateTime<Utc>,
}

pub fn request(ask: Ask<'_>) -> DecisionRequest {
    let (evidence, approvals, waited_minutes) = match ask.case {
        Some(case) => (
            evidence(case, ask.now),
            approvals(case),
            case.grant
                .as_ref()
                .map(|g| u32::try_from((ask.now - g.issued_at).num_minutes().max(0)).unwrap_or(0))
                .unwrap_or(0),
        ),
        None => (Vec::new(), Vec::new(), 0),
    };
    DecisionRequest {
        stage: ask.stage,
        principal: ask.principal,
        case_agent_id: ask.case_agent_id,
        subject: subject_info(ask.subject, ask.now),
        action: ask.action,
        signals: ask.signals,
        evidence,
        approvals,
        waited_minutes,
        break_glass: ask.case.is_some_and(|c| c.break_glass),
        requester_is_owner: ask.requester_is_owner,
        channel: ask.channel,
    }
}

/// The decision as it is pinned to the case and written to the audit log.
pub fn pin(decision: &Decision, now: DateTime<Utc>) -> PolicyPin {
    PolicyPin {
        stage: decision.stage.api_id().to_owned(),
        outcome: decision.outcome.to_string(),
        bundle_digest: decision.bundle_digest.clone(),
        policy_ids: decision.policy_ids.clone(),
        reasons: decision.reasons.clone(),
        at: now,
    }
}

/// Loads the bundle named by the configuration, or the one compiled in.
pub fn load(dir: Option<&std::path::Path>) -> Result<Bundle, deskgate_policy::BundleError> {
    match dir {
        Some(d) => Bundle::load_dir(d),
        None => Bundle::default_bundle(),
    }
}
