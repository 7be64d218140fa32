//! Property test: random sequences of case events never reach `executed` without the
//! requirements met by independently counted evidence, never count a class twice, and a refused
//! event never changes the case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use deskgate_core::risk::assess;
use deskgate_core::{
    Action, ApproverRole, AttemptOutcome, Case, CaseState, Channel, ContactKind, Decision,
    IndependenceClass, Method, NewCase, Requirements, Role, Signals, Staff, Subject, SubjectStatus,
    Tier, Verification, VerificationState,
};
use proptest::prelude::*;

const METHODS: [Method; 6] = [
    Method::SmsCode,
    Method::VoiceCode,
    Method::EmailCode,
    Method::ManagerAttestation,
    Method::Knowledge,
    Method::RecoveryCode,
];

#[derive(Debug, Clone)]
enum Op {
    Start {
        method: usize,
        stale_contact: bool,
    },
    Answer {
        which: usize,
        matched: bool,
    },
    Attest {
        which: usize,
        confirm: bool,
        by_manager: bool,
    },
    /// The manager asks for a sign-in code for an attestation link.
    Challenge {
        which: usize,
    },
    /// The manager reads the sign-in code back.
    SignIn {
        which: usize,
        matched: bool,
    },
    Approve {
        who: usize,
        confirm: bool,
    },
    Execute {
        by_owner: bool,
    },
    /// Execution through an external connector: consume the grant, then its answer.
    BeginExecution {
        by_owner: bool,
    },
    ConnectorAnswered {
        ok: bool,
    },
    /// The system of record shows a new phone (or email) of record.
    ContactChanged {
        phone: bool,
    },
    Wait {
        minutes: i64,
    },
    Deny,
    Cancel,
    Escalate,
    Resume,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        16 => (0..METHODS.len(), prop::bool::weighted(0.2)).prop_map(|(method, stale_contact)| Op::Start { method, stale_contact }),
        24 => (0..8usize, prop::bool::weighted(0.8)).prop_map(|(which, matched)| Op::Answer { which, matched }),
        12 => (0..8usize, prop::bool::weighted(0.95), prop::bool::weighted(0.9)).prop_map(|(which, confirm, by_manager)| Op::Attest { which, confirm, by_manager }),
        8 => (0..8usize).prop_map(|which| Op::Challenge { which }),
        8 => (0..8usize, prop::bool::weighted(0.85)).prop_map(|(which, matched)| Op::SignIn { which, matched }),
        12 => (0..6usize, prop::bool::weighted(0.95)).prop_map(|(who, confirm)| Op::Approve { who, confirm }),
        12 => prop::bool::weighted(0.8).prop_map(|by_owner| Op::Execute { by_owner }),
        8 => prop::bool::weighted(0.8).prop_map(|by_owner| Op::BeginExecution { by_owner }),
        6 => prop::bool::ANY.prop_map(|ok| Op::ConnectorAnswered { ok }),
        3 => prop::bool::ANY.prop_map(|phone| Op::ContactChanged { phone }),
        6 => (1..25i64).prop_map(|minutes| Op::Wait { minutes }),
        1 => Just(Op::Deny),
        1 => Just(Op::Cancel),
        1 => Just(Op::Escalate),
        1 => Just(Op::Resume),
        1 => Just(Op::Close),
    ]
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0)
        .single()
        .unwrap()
}

fn subject(tier: Tier) -> Subject {
    Subject {
        id: "s-1".into(),
        display_name: "Sam Subject".into(),
        tier,
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
    }
}

/// Counts evidence the way DESIGN.md states the rule, independently of `Requirements::evaluate`.
fn independently_counted(case: &Case, now: DateTime<Utc>) -> BTreeSet<IndependenceClass> {
    case.verifications
        .iter()
        .filter(|v| v.state == VerificationState::Passed)
        .filter(|v| v.method != Method::Knowledge)
        .filter(|v| {
            v.contact_changed_at
                .is_none_or(|c| now - c >= Duration::days(14))
        })
        .map(|v| v.method.class())
        .collect()
}

/// The id of an existing verification for most `which`, an unknown one for the rest.
fn pick(case: &Case, which: usize) -> String {
    match case.verifications.len() {
        0 => format!("v{which}"),
        n if which < 7 => case.verifications[which % n].id.clone(),
        _ => "v-unknown".to_owned(),
    }
}

/// Staff approvers: (staff id, the person behind the account). `sup-5` is the subject's manager
/// `m-1` holding a supervisor account; `a-1` is the agent; `sup-4` is linked to nobody.
const APPROVERS: [(&str, Option<&str>); 6] = [
    ("sup-1", Some("p-sup-1")),
    ("sup-2", Some("p-sup-2")),
    ("a-1", Some("s-agent")),
    ("sup-3", Some("s-1")),
    ("sup-4", None),
    ("sup-5", Some("m-1")),
];

fn requirements_hold(case: &Case, now: DateTime<Utc>) -> bool {
    let counted = independently_counted(case, now);
    let needs_manager = case.requirements.min_classes >= 2;
    let approvers: BTreeSet<&str> = case
        .approvals
        .iter()
        .filter(|a| a.decision == Decision::Confirm && a.role == ApproverRole::Supervisor)
        .map(|a| a.approver_id.as_str())
        .filter(|id| *id != case.agent_id && *id != "sup-3")
        .collect();
    counted.len() >= case.requirements.min_classes as usize
        && (!needs_manager || counted.contains(&IndependenceClass::Manager))
        && approvers.len() >= case.requirements.approvals.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn no_sequence_executes_without_requirements(
        tier in prop::sample::select(vec![Tier::Standard, Tier::Privileged, Tier::Executive]),
        action in prop::sample::select(vec![Action::PasswordReset, Action::MfaReset, Action::AccountUnlock]),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let subject = subject(tier);
        let agent = Staff { id: "a-1".into(), name: "Agent".into(), role: Role::Agent, subject_id: Some("s-agent".into()), team: String::new(), region: String::new(), shift: String::new() };
        let mut now = start();
        let mut case = Case::open(NewCase {
            id: "c-1".into(), subject: &subject, agent: &agent, agent_manager: None, action,
            channel: Channel::Phone, caller_number: None, ticket: None, note: None, new_contact: None,
            requester: None,
            risk: assess(tier, action, &Signals::default()),
            requirements: if tier == Tier::Standard {
                Requirements::simple_rules(tier, action)
            } else {
                Requirements {
                    approvals: vec![ApproverRole::Supervisor, ApproverRole::Supervisor],
                    cooling_off_minutes: if action == Action::MfaReset { 20 } else { 0 },
                    ..Requirements::simple_rules(tier, action)
                }
            },
        }, now).unwrap();
        let mut next_id = 0;
        // Grants minted when the first grant was consumed: none may follow.
        let mut minted_at_consumption: Option<u32> = None;
        for op in ops {
            let before = case.clone();
            let result: Result<(), deskgate_core::CaseError> = match op {
                Op::Start { method, stale_contact } => {
                    next_id += 1;
                    let m = METHODS[method];
                    case.start_verification(Verification {
                        id: format!("v{next_id}"), method: m, state: VerificationState::Pending,
                        destination: None,
                        respondent: if m == Method::ManagerAttestation { "m-1".into() } else { "s-1".into() },
                        contact_changed_at: m.contact_kind().map(|_| if stale_contact { now - Duration::days(3) } else { now - Duration::days(400) }),
                        secret_hash: None, attempts: 0, max_attempts: 5, started_at: now,
                        expires_at: now + Duration::minutes(10), completed_at: None,
                        respondent_check: None,
                        units: Default::default(),
                    }, now)
                }
                Op::Answer { which, matched } => {
                    // Mostly an existing verification, sometimes an unknown id.
                    let id = pick(&case, which);
                    case.answer_code(&id, matched, now).map(|_| ())
                }
                Op::Challenge { which } => {
                    let id = pick(&case, which);
                    case.challenge_respondent(&id, "h".into(), "+1 *** 42".into(), now + Duration::minutes(10), 3, now)
                }
                Op::SignIn { which, matched } => {
                    let id = pick(&case, which);
                    case.authenticate_respondent(&id, matched, now).map(|_| ())
                }
                Op::Attest { which, confirm, by_manager } => {
                    let id = pick(&case, which);
                    let by = if by_manager { "m-1" } else { "x-9" };
                    let d = if confirm { Decision::Confirm } else { Decision::Reject };
                    let attested = case.attest(&id, by, ApproverRole::Manager, d, now);
                    if attested.is_ok() {
                        let check = case.verification(&id).and_then(|v| v.respondent_check.clone());
                        prop_assert!(check.is_some_and(|c| c.passed_at.is_some()), "attested without signing in");
                    }
                    attested
                }
                Op::Approve { who, confirm } => {
                    let (id, own_subject) = APPROVERS[who];
                    let d = if confirm { Decision::Confirm } else { Decision::Reject };
                    case.approve(id, own_subject, ApproverRole::Supervisor, d, now)
                }
                Op::Execute { by_owner } => {
                    let who = if by_owner { "a-1" } else { "a-2" };
                    let executed = case.execute(who, now);
                    if let Ok(grant) = &executed {
                        prop_assert!(grant.not_before.is_none_or(|t| now >= t), "executed during the cooling-off");
                    }
                    if executed.is_ok() {
                        prop_assert!(requirements_hold(&case, now), "executed without requirements: {case:#?}");
                        prop_assert_eq!(who, "a-1");
                    }
                    executed.map(|_| ())
                }
                Op::BeginExecution { by_owner } => {
                    let who = if by_owner { "a-1" } else { "a-2" };
                    let begun = case.begin_execution(who, now);
                    if begun.is_ok() {
                        prop_assert!(requirements_hold(&case, now), "began without requirements: {case:#?}");
                        prop_assert_eq!(case.state, CaseState::Approved);
                        prop_assert!(case.execution_in_flight());
                    }
                    begun.map(|_| ())
                }
                Op::ConnectorAnswered { ok } => {
                    let was_in_flight = case.execution_in_flight();
                    let answered = if ok {
                        case.complete_execution(now)
                    } else {
                        case.fail_execution("the directory failed".into(), now)
                    };
                    prop_assert_eq!(answered.is_ok(), was_in_flight);
                    answered
                }
                Op::ContactChanged { phone } => {
                    let kind = if phone { ContactKind::Phone } else { ContactKind::Email };
                    case.contact_changed(kind, now);
                    Ok(())
                }
                Op::Wait { minutes } => { now += Duration::minutes(minutes); Ok(()) }
                Op::Deny => case.deny("denied".into(), now),
                Op::Cancel => case.cancel("cancelled".into(), now),
                Op::Escalate => case.escalate("escalated".into(), now),
                Op::Resume => case.resume(now),
                Op::Close => case.close(now),
            };
            if result.is_err() {
                prop_assert_eq!(&case, &before, "a refused event changed the case");
            }
            // One person, one word: nobody counts twice, and nobody who worked the case or is its
            // subject counts at all (attestations are approvals of their respondent).
            let counted_persons: Vec<String> =
                case.counted_approvals().iter().map(|a| a.person_id.clone()).collect();
            let mut distinct = counted_persons.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), counted_persons.len(), "one person counted twice: {:?}", counted_persons);
            for p in &counted_persons {
                prop_assert!(p != &case.subject_id && !case.participants.contains(p), "{p} counted though it worked the case");
            }
            let progress = case.progress(now);
            let counted = independently_counted(&case, now);
            prop_assert_eq!(&progress.counted_classes, &counted, "a class counted twice or wrongly");
            if case.state == CaseState::Approved {
                prop_assert!(case.grant.is_some());
            }
            if matches!(case.state, CaseState::Executed | CaseState::Closed | CaseState::Failed) {
                let g = case.grant.as_ref().unwrap();
                prop_assert!(g.consumed_at.is_some());
            }
            if case.state == CaseState::Failed {
                prop_assert!(case.executed_at.is_none(), "a failed case reads as executed");
            }
            if case.grant.as_ref().is_some_and(|g| g.consumed_at.is_some()) {
                minted_at_consumption.get_or_insert(case.grants_minted);
            }
            if let Some(minted) = minted_at_consumption {
                prop_assert_eq!(case.grants_minted, minted, "a grant was minted after one was used");
            }
        }
    }
}

#[test]
fn two_codes_to_one_phone_do_not_meet_a_two_class_requirement() {
    let subject = subject(Tier::Standard);
    let agent = Staff {
        id: "a-1".into(),
        name: "Agent".into(),
        role: Role::Agent,
        subject_id: Some("p-agent".into()),
        team: String::new(),
        region: String::new(),
        shift: String::new(),
    };
    let now = start();
    let mut case = Case::open(
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
            requirements: Requirements {
                min_classes: 2,
                required_any_of: vec![],
                ..Requirements::simple_rules(Tier::Standard, Action::MfaReset)
            },
        },
        now,
    )
    .unwrap();
    for (i, m) in [Method::SmsCode, Method::VoiceCode].into_iter().enumerate() {
        case.start_verification(
            Verification {
                id: format!("v{i}"),
                method: m,
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
            },
            now,
        )
        .unwrap();
        case.answer_code(&format!("v{i}"), true, now).unwrap();
    }
    assert_eq!(case.state, CaseState::Verifying);
    assert!(matches!(
        case.execute("a-1", now),
        Err(deskgate_core::CaseError::RequirementsNotMet(_))
    ));
}

#[test]
fn agent_cannot_open_case_about_themselves() {
    let subject = subject(Tier::Standard);
    let agent = Staff {
        id: "a-1".into(),
        name: "Agent".into(),
        role: Role::Agent,
        subject_id: Some("s-1".into()),
        team: String::new(),
        region: String::new(),
        shift: String::new(),
    };
    let err = Case::open(
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
        start(),
    )
    .unwrap_err();
    assert_eq!(err, deskgate_core::CaseError::SelfService);
}

/// A case with one pending manager attestation `v-m` sent to `m-1`, allowing `max` wrong answers.
fn case_awaiting_manager(max: u32) -> (Case, DateTime<Utc>) {
    let subject = subject(Tier::Standard);
    let agent = Staff {
        id: "a-1".into(),
        name: "Agent".into(),
        role: Role::Agent,
        subject_id: Some("p-agent".into()),
        team: String::new(),
        region: String::new(),
        shift: String::new(),
    };
    let now = start();
    let mut case = Case::open(
        NewCase {
            id: "c-2".into(),
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
            id: "v-m".into(),
            method: Method::ManagerAttestation,
            state: VerificationState::Pending,
            destination: None,
            respondent: "m-1".into(),
            contact_changed_at: None,
            secret_hash: None,
            attempts: 0,
            max_attempts: max,
            started_at: now,
            expires_at: now + Duration::hours(4),
            completed_at: None,
            respondent_check: None,
            units: Default::default(),
        },
        now,
    )
    .unwrap();
    (case, now)
}

#[test]
fn a_manager_who_has_not_signed_in_cannot_attest() {
    let (mut case, now) = case_awaiting_manager(5);
    let before = case.clone();
    let refused = case.attest("v-m", "m-1", ApproverRole::Manager, Decision::Confirm, now);
    assert_eq!(
        refused,
        Err(deskgate_core::CaseError::RespondentNotAuthenticated)
    );
    assert_eq!(case, before);
    case.challenge_respondent(
        "v-m",
        "h".into(),
        "+1 *** 42".into(),
        now + Duration::minutes(10),
        3,
        now,
    )
    .unwrap();
    // A code sent is not a sign-in: it must be read back.
    assert_eq!(
        case.attest("v-m", "m-1", ApproverRole::Manager, Decision::Confirm, now),
        Err(deskgate_core::CaseError::RespondentNotAuthenticated)
    );
    assert_eq!(
        case.authenticate_respondent("v-m", true, now),
        Ok(AttemptOutcome::Passed)
    );
    case.attest("v-m", "m-1", ApproverRole::Manager, Decision::Confirm, now)
        .unwrap();
    assert_eq!(
        case.verification("v-m").unwrap().state,
        VerificationState::Passed
    );
}

#[test]
fn wrong_sign_in_codes_count_across_resends_and_lock_the_attestation() {
    let (mut case, now) = case_awaiting_manager(3);
    let expires = now + Duration::minutes(10);
    case.challenge_respondent("v-m", "h1".into(), "p".into(), expires, 3, now)
        .unwrap();
    assert_eq!(
        case.authenticate_respondent("v-m", false, now),
        Ok(AttemptOutcome::Failed { attempts_left: 2 })
    );
    // A new code does not reset the count.
    case.challenge_respondent("v-m", "h2".into(), "p".into(), expires, 3, now)
        .unwrap();
    assert_eq!(case.respondent_code_hash("v-m"), Some("h2"));
    assert_eq!(
        case.authenticate_respondent("v-m", false, now),
        Ok(AttemptOutcome::Failed { attempts_left: 1 })
    );
    assert_eq!(
        case.authenticate_respondent("v-m", false, now),
        Ok(AttemptOutcome::Locked)
    );
    assert_eq!(
        case.verification("v-m").unwrap().state,
        VerificationState::Locked
    );
    assert_eq!(case.respondent_code_hash("v-m"), None);
    assert!(case.authenticate_respondent("v-m", true, now).is_err());
}

#[test]
fn sign_in_codes_expire_are_single_use_and_bounded_per_link() {
    let (mut case, now) = case_awaiting_manager(5);
    assert_eq!(
        case.authenticate_respondent("v-m", true, now),
        Err(deskgate_core::CaseError::NoRespondentChallenge)
    );
    case.challenge_respondent(
        "v-m",
        "h".into(),
        "p".into(),
        now + Duration::minutes(10),
        2,
        now,
    )
    .unwrap();
    let later = now + Duration::minutes(10);
    assert_eq!(
        case.authenticate_respondent("v-m", true, later),
        Err(deskgate_core::CaseError::RespondentChallengeExpired)
    );
    case.challenge_respondent(
        "v-m",
        "h".into(),
        "p".into(),
        later + Duration::minutes(10),
        2,
        later,
    )
    .unwrap();
    assert_eq!(
        case.challenge_respondent(
            "v-m",
            "h".into(),
            "p".into(),
            later + Duration::minutes(10),
            2,
            later
        ),
        Err(deskgate_core::CaseError::TooManyRespondentCodes(2))
    );
    assert_eq!(
        case.authenticate_respondent("v-m", true, later),
        Ok(AttemptOutcome::Passed)
    );
    assert_eq!(
        case.authenticate_respondent("v-m", true, later),
        Err(deskgate_core::CaseError::NoRespondentChallenge)
    );
}
