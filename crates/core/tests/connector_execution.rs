//! Execution through an external connector: the grant is consumed before the call, and the case
//! ends `executed` or `failed` by what the connector answered; a contact that changed in the
//! system of record takes back the evidence that went through it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use deskgate_core::risk::assess;
use deskgate_core::{
    Action, Case, CaseError, CaseState, Channel, ContactKind, Method, NewCase, Requirements, Role,
    Signals, Staff, Subject, SubjectStatus, Tier, Verification, VerificationState,
};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0)
        .single()
        .unwrap()
}

/// A standard password reset approved on one SMS code.
fn approved_case(now: DateTime<Utc>) -> Case {
    let subject = Subject {
        id: "s-1".into(),
        display_name: "Sam Subject".into(),
        tier: Tier::Standard,
        status: SubjectStatus::Active,
        manager: None,
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
    let mut case = Case::open(
        NewCase {
            id: "c".into(),
            subject: &subject,
            agent: &agent,
            agent_manager: None,
            action: Action::PasswordReset,
            channel: Channel::Phone,
            caller_number: None,
            ticket: None,
            note: None,
            new_contact: None,
            requester: None,
            risk: assess(Tier::Standard, Action::PasswordReset, &Signals::default()),
            requirements: Requirements::simple_rules(Tier::Standard, Action::PasswordReset),
        },
        now,
    )
    .unwrap();
    case.start_verification(
        Verification {
            id: "v1".into(),
            method: Method::SmsCode,
            state: VerificationState::Pending,
            destination: None,
            respondent: "s-1".into(),
            contact_changed_at: Some(now - Duration::days(400)),
            secret_hash: None,
            attempts: 0,
            max_attempts: 5,
            started_at: now,
            expires_at: now + Duration::minutes(10),
            completed_at: None,
            respondent_check: None,
            units: Default::default(),
        },
        now,
    )
    .unwrap();
    case.answer_code("v1", true, now).unwrap();
    assert_eq!(case.state, CaseState::Approved);
    case
}

#[test]
fn begin_execution_consumes_the_grant_without_claiming_success() {
    let now = start();
    let mut case = approved_case(now);
    let grant = case.begin_execution("a-1", now).unwrap();
    assert_eq!(grant.consumed_at, Some(now));
    assert_eq!(case.state, CaseState::Approved);
    assert!(case.execution_in_flight());
    assert_eq!(case.executed_at, None);
    // The grant is spent: neither path can use it again.
    assert_eq!(
        case.clone().begin_execution("a-1", now),
        Err(CaseError::GrantConsumed)
    );
    assert_eq!(
        case.clone().execute("a-1", now),
        Err(CaseError::GrantConsumed)
    );
}

#[test]
fn a_completed_execution_is_executed() {
    let now = start();
    let mut case = approved_case(now);
    case.begin_execution("a-1", now).unwrap();
    case.complete_execution(now).unwrap();
    assert_eq!(case.state, CaseState::Executed);
    assert_eq!(case.executed_at, Some(now));
    case.close(now).unwrap();
}

#[test]
fn a_failed_execution_ends_the_case_failed_with_the_grant_spent() {
    let now = start();
    let mut case = approved_case(now);
    case.begin_execution("a-1", now).unwrap();
    case.fail_execution("directory unreachable".into(), now)
        .unwrap();
    assert_eq!(case.state, CaseState::Failed);
    assert!(!case.state.is_live());
    assert_eq!(case.executed_at, None);
    assert_eq!(
        case.outcome_reason.as_deref(),
        Some("directory unreachable")
    );
    assert!(matches!(
        case.clone().execute("a-1", now),
        Err(CaseError::NotLive(CaseState::Failed))
    ));
    assert!(
        case.clone().close(now).is_err(),
        "a failed case never reads as executed"
    );
    assert!(case.cancel("x".into(), now).is_err());
}

#[test]
fn the_outcome_needs_a_consumed_grant_first() {
    let now = start();
    let mut case = approved_case(now);
    let before = case.clone();
    assert!(case.complete_execution(now).is_err());
    assert!(case.fail_execution("x".into(), now).is_err());
    assert_eq!(case, before, "a refused transition changes nothing");
}

#[test]
fn a_changed_contact_takes_back_its_evidence_and_the_grant() {
    let now = start();
    let mut case = approved_case(now);
    assert!(
        !case.contact_changed(ContactKind::Email, now),
        "no email evidence"
    );
    assert_eq!(case.state, CaseState::Approved);

    assert!(case.contact_changed(ContactKind::Phone, now));
    assert_eq!(case.state, CaseState::Verifying);
    assert_eq!(case.grant, None);
    assert!(!case.progress(now).met);
    assert!(matches!(
        case.execute("a-1", now),
        Err(CaseError::RequirementsNotMet(_))
    ));
}

#[test]
fn a_changed_contact_leaves_an_execution_in_flight_alone() {
    let now = start();
    let mut case = approved_case(now);
    case.begin_execution("a-1", now).unwrap();
    let before = case.clone();
    assert!(!case.contact_changed(ContactKind::Phone, now));
    assert_eq!(case, before);
}

#[test]
fn a_deny_or_cancel_waits_for_the_connectors_answer() {
    let now = start();
    let mut case = approved_case(now);
    case.begin_execution("a-1", now).unwrap();
    let before = case.clone();
    assert_eq!(
        case.cancel("x".into(), now),
        Err(CaseError::ExecutionInFlight)
    );
    assert_eq!(
        case.deny("x".into(), now),
        Err(CaseError::ExecutionInFlight)
    );
    assert_eq!(
        case.expire("x".into(), now),
        Err(CaseError::ExecutionInFlight)
    );
    assert_eq!(case, before, "a refused end changes nothing");
    case.complete_execution(now).unwrap();
    assert_eq!(case.state, CaseState::Executed);
}

#[test]
fn contacts_that_reach_the_same_phone_or_mailbox_are_shared() {
    let now = start();
    let contact = |kind, value: &str| deskgate_core::Contact {
        kind,
        value: value.into(),
        verified_at: Some(now),
        changed_at: now,
    };
    let person = |id: &str, contacts| Subject {
        id: id.into(),
        display_name: id.into(),
        tier: Tier::Standard,
        status: SubjectStatus::Active,
        manager: None,
        owners: vec![],
        groups: vec![],
        contacts,
        authenticators: vec![],
        flagged: false,
        hired_at: None,
        utc_offset_minutes: None,
        probation_until: None,
        identity: None,
    };
    let a = person(
        "a",
        vec![
            contact(ContactKind::Phone, "+1 555 010 0142"),
            contact(ContactKind::Email, "a@example.org"),
        ],
    );
    let b = person("b", vec![contact(ContactKind::Phone, "+15550100143")]);
    assert!(!a.shares_contact_with(&b));
    let same_phone = person("c", vec![contact(ContactKind::Phone, "+15550100142")]);
    assert!(a.shares_contact_with(&same_phone));
    let same_mailbox = person("d", vec![contact(ContactKind::Email, " A@Example.org")]);
    assert!(a.shares_contact_with(&same_mailbox));
    let crossed = person("e", vec![contact(ContactKind::Email, "+1 555 010 0142")]);
    assert!(
        !a.shares_contact_with(&crossed),
        "a phone never matches an email"
    );
}
