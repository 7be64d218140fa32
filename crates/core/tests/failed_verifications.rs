//! Repeated failed verifications: a method whose tries are used up cannot start again on the
//! case (a new code would hand the caller five more guesses), and enough wrong answers and
//! rejected checks raise the case's risk and escalate it to a security officer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use deskgate_core::risk::{RiskLevel, assess};
use deskgate_core::{
    Action, AttemptOutcome, Case, CaseError, CaseState, Channel, Method, NewCase, Requirements,
    Role, Signals, Staff, Subject, SubjectStatus, Tier, Verification, VerificationState,
};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0)
        .single()
        .unwrap()
}

fn open_case(now: DateTime<Utc>) -> Case {
    let subject = Subject {
        id: "s-1".into(),
        display_name: "Sam Subject".into(),
        tier: Tier::Standard,
        status: SubjectStatus::Active,
        manager: Some("m-1".into()),
        owners: vec![],
        groups: vec![],
        contacts: vec![],
        authenticators: vec![],
        flagged: false,
        hired_at: None,
        utc_offset_minutes: None,
        probation_until: None,
        identity: None,
    };
    let agent = Staff {
        id: "a-1".into(),
        name: "Agent".into(),
        role: Role::Agent,
        subject_id: Some("p-agent".into()),
        team: String::new(),
        region: String::new(),
        shift: String::new(),
    };
    Case::open(
        NewCase {
            id: "c".into(),
            subject: &subject,
            agent: &agent,
            agent_manager: None,
            action: Action::MfaReset,
            channel: Channel::Phone,
            caller_number: None,
            ticket: None,
            note: None,
            new_contact: None,
            requester: None,
            risk: assess(Tier::Standard, Action::MfaReset, &Signals::default()),
            requirements: Requirements::simple_rules(Tier::Standard, Action::MfaReset),
        },
        now,
    )
    .unwrap()
}

fn verification(id: &str, method: Method, now: DateTime<Utc>) -> Verification {
    Verification {
        id: id.into(),
        method,
        state: VerificationState::Pending,
        destination: None,
        respondent: "s-1".into(),
        contact_changed_at: None,
        secret_hash: None,
        attempts: 0,
        max_attempts: 5,
        started_at: now,
        expires_at: now + Duration::minutes(10),
        completed_at: None,
        respondent_check: None,
        units: Default::default(),
    }
}

/// Answers `n` wrong codes to `id`.
fn wrong(case: &mut Case, id: &str, n: u32, now: DateTime<Utc>) -> AttemptOutcome {
    let mut last = AttemptOutcome::Passed;
    for _ in 0..n {
        last = case.answer_code(id, false, now).unwrap();
    }
    last
}

#[test]
fn a_method_whose_tries_are_used_up_cannot_start_again_on_the_case() {
    let now = start();
    let mut case = open_case(now);
    case.start_verification(verification("v1", Method::SmsCode, now), now)
        .unwrap();
    assert_eq!(wrong(&mut case, "v1", 5, now), AttemptOutcome::Locked);
    let before = case.clone();
    let again = case.start_verification(verification("v2", Method::SmsCode, now), now);
    assert_eq!(again, Err(CaseError::MethodExhausted(Method::SmsCode)));
    assert_eq!(case, before, "a refused start changes nothing");
    // Another method still starts.
    case.start_verification(verification("v3", Method::EmailCode, now), now)
        .unwrap();
}

#[test]
fn a_superseded_code_keeps_its_wrong_answers_on_the_case() {
    let now = start();
    let mut case = open_case(now);
    case.start_verification(verification("v1", Method::SmsCode, now), now)
        .unwrap();
    wrong(&mut case, "v1", 4, now);
    // A new code supersedes the first: the four wrong answers still count.
    case.start_verification(verification("v2", Method::SmsCode, now), now)
        .unwrap();
    wrong(&mut case, "v2", 1, now);
    assert_eq!(case.failures(), 5);
}

#[test]
fn enough_failures_raise_the_risk_and_escalate_once_per_limit() {
    let now = start();
    let mut case = open_case(now);
    let level = case.risk.level;
    case.start_verification(verification("v1", Method::SmsCode, now), now)
        .unwrap();
    wrong(&mut case, "v1", 4, now);
    assert_eq!(
        case.escalate_after_failures(5, now),
        None,
        "under the limit"
    );
    assert_eq!(case.state, CaseState::Verifying);
    case.start_verification(verification("v2", Method::EmailCode, now), now)
        .unwrap();
    wrong(&mut case, "v2", 1, now);
    let escalated = case.escalate_after_failures(5, now).expect("at the limit");
    assert_eq!(escalated.failures, 5);
    assert_eq!(case.state, CaseState::Escalated);
    assert!(case.risk.level > level, "the risk is raised");
    assert!(
        case.risk
            .reasons
            .iter()
            .any(|r| r.code == "failed_verifications")
    );
    assert!(case.grant.is_none());
    // Asking again escalates nothing more.
    assert_eq!(case.escalate_after_failures(5, now), None);
    // A security officer resumes; more failures escalate again only at the next multiple.
    case.resume(now).unwrap();
    case.start_verification(verification("v3", Method::VoiceCode, now), now)
        .unwrap();
    wrong(&mut case, "v3", 4, now);
    assert_eq!(case.escalate_after_failures(5, now), None);
    wrong(&mut case, "v3", 1, now);
    assert!(case.escalate_after_failures(5, now).is_some());
    assert_eq!(
        case.risk.level,
        RiskLevel::Critical.min(level.raised().raised())
    );
}

#[test]
fn a_rejected_check_counts_as_a_failure() {
    let now = start();
    let mut case = open_case(now);
    case.start_verification(verification("v1", Method::Push, now), now)
        .unwrap();
    case.complete_external("v1", false, now).unwrap();
    assert_eq!(case.failures(), 1);
}

#[test]
fn a_limit_of_zero_never_escalates() {
    let now = start();
    let mut case = open_case(now);
    case.start_verification(verification("v1", Method::SmsCode, now), now)
        .unwrap();
    wrong(&mut case, "v1", 5, now);
    assert_eq!(case.escalate_after_failures(0, now), None);
    assert_eq!(case.state, CaseState::Verifying);
}
