use chrono::TimeZone;
use deskgate_core::risk::assess;
use deskgate_core::{
    ApiId, Channel, ContactKind, NewCase, Requirements, Role, Signals, Staff, SubjectStatus, Tier,
};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A contact of record set `age_days` ago and verified then.
fn contact(kind: ContactKind, value: &str, age_days: i64) -> Contact {
    Contact {
        kind,
        value: value.to_owned(),
        verified_at: Some(now() - Duration::days(age_days)),
        changed_at: now() - Duration::days(age_days),
    }
}

fn person(id: &str, contacts: Vec<Contact>) -> Subject {
    Subject {
        id: id.to_owned(),
        display_name: id.to_owned(),
        tier: Tier::Standard,
        status: SubjectStatus::Active,
        manager: None,
        owners: Vec::new(),
        groups: Vec::new(),
        contacts,
        authenticators: Vec::new(),
        flagged: false,
        hired_at: None,
        utc_offset_minutes: None,
        probation_until: None,
        identity: None,
    }
}

fn alice() -> Subject {
    person(
        "u-alice",
        vec![
            contact(ContactKind::Phone, "+1 555 0100", 400),
            contact(ContactKind::Email, "alice@example.org", 400),
        ],
    )
}

fn erin() -> Subject {
    person(
        "u-erin",
        vec![contact(ContactKind::Email, "erin@example.org", 400)],
    )
}

fn payroll() -> Subject {
    Subject {
        tier: Tier::Service,
        owners: vec!["u-erin".to_owned(), "u-carol".to_owned()],
        ..person("svc-payroll", Vec::new())
    }
}

fn case(
    subject: &Subject,
    action: Action,
    new_contact: Option<&str>,
    requester: Option<&str>,
) -> Case {
    let agent = Staff {
        id: "a-1".to_owned(),
        name: "Agent".to_owned(),
        role: Role::Agent,
        subject_id: Some("u-agent".to_owned()),
        team: String::new(),
        region: String::new(),
        shift: String::new(),
    };
    Case::open(
        NewCase {
            id: "c-1".to_owned(),
            subject,
            agent: &agent,
            agent_manager: None,
            action,
            channel: Channel::Phone,
            caller_number: None,
            ticket: None,
            note: None,
            new_contact: new_contact.map(str::to_owned),
            requester: requester.map(str::to_owned),
            risk: assess(subject.tier, action, &Signals::default()),
            requirements: Requirements::simple_rules(subject.tier, action),
        },
        now(),
    )
    .expect("the case opens")
}

fn plan(subject: &Subject, action: Action) -> Result<ExecutionPlan, PlanRefusal> {
    ExecutionPlan::for_case(&case(subject, action, None, None), subject, None, now())
}

#[test]
fn a_new_password_goes_to_the_trusted_email_of_record() {
    let plan = plan(&alice(), Action::PasswordReset).unwrap();
    assert_eq!(plan.step, Step::ResetPassword);
    assert_eq!(
        plan.secret_to,
        SecretRoute::TrustedContact(contact(ContactKind::Email, "alice@example.org", 400))
    );
}

#[test]
fn without_a_trusted_email_the_secret_goes_to_the_trusted_phone() {
    let mut subject = alice();
    // An email changed yesterday is inside the freshness window: no secret goes there.
    subject.contacts[1] = contact(ContactKind::Email, "new@example.org", 1);
    let plan = plan(&subject, Action::PasswordReset).unwrap();
    assert_eq!(
        plan.secret_to,
        SecretRoute::TrustedContact(contact(ContactKind::Phone, "+1 555 0100", 400))
    );
}

#[test]
fn a_secret_with_no_trusted_contact_to_go_to_is_refused() {
    let fresh = person(
        "u-new",
        vec![
            contact(ContactKind::Phone, "+1 555 0199", 1),
            contact(ContactKind::Email, "new@example.org", 2),
        ],
    );
    let unverified = person(
        "u-unverified",
        vec![Contact {
            verified_at: None,
            ..contact(ContactKind::Email, "x@example.org", 400)
        }],
    );
    for subject in [&fresh, &unverified, &person("u-none", Vec::new())] {
        assert_eq!(
            plan(subject, Action::PasswordReset),
            Err(PlanRefusal::NoTrustedContact("a temporary password"))
        );
        for action in [Action::MfaReset, Action::FactorRebind] {
            assert_eq!(
                plan(subject, action),
                Err(PlanRefusal::NoTrustedContact("a temporary access pass"))
            );
        }
        // Nothing generated, nothing to send: an unlock needs no contact.
        assert_eq!(
            plan(subject, Action::AccountUnlock).map(|p| p.secret_to),
            Ok(SecretRoute::Nowhere)
        );
    }
    assert_eq!(
        PlanRefusal::NoTrustedContact("a temporary password").to_string(),
        "the subject has no trusted contact of record to receive a temporary password"
    );
}

#[test]
fn a_factor_reset_issues_a_pass_of_the_playbooks_lifetime_to_the_trusted_contact() {
    let subject = alice();
    let mut case = case(&subject, Action::MfaReset, None, None);
    case.requirements.tap_minutes = 25;
    let plan = ExecutionPlan::for_case(&case, &subject, None, now()).unwrap();
    assert_eq!(
        plan.step,
        Step::ResetFactors {
            pass_lifetime: Duration::minutes(25)
        }
    );
    assert!(
        matches!(plan.secret_to, SecretRoute::TrustedContact(ref c) if c.kind == ContactKind::Email)
    );
}

#[test]
fn a_contact_change_replaces_the_contact_of_its_kind_and_sends_no_secret() {
    let subject = alice();
    let case = case(&subject, Action::PhoneChange, Some("+1 555 0777"), None);
    let plan = ExecutionPlan::for_case(&case, &subject, None, now()).unwrap();
    assert_eq!(
        plan.step,
        Step::ChangeContact {
            kind: ContactKind::Phone,
            value: "+1 555 0777".to_owned()
        }
    );
    assert_eq!(plan.secret_to, SecretRoute::Nowhere);
    let mut without = case.clone();
    without.new_contact = None;
    assert_eq!(
        ExecutionPlan::for_case(&without, &subject, None, now()),
        Err(PlanRefusal::NoNewContact)
    );
}

#[test]
fn a_rotated_service_secret_is_sealed_for_the_owner_who_asked() {
    let (svc, erin) = (payroll(), erin());
    let case = case(&svc, Action::ServiceCredentialRotate, None, Some("u-erin"));
    let plan = ExecutionPlan::for_case(&case, &svc, Some(&erin), now()).unwrap();
    assert_eq!(plan.step, Step::RotateServiceCredential);
    assert_eq!(
        plan.secret_to,
        SecretRoute::SealedPickup {
            owner: Box::new(erin.clone()),
            to: contact(ContactKind::Email, "erin@example.org", 400),
        }
    );
}

#[test]
fn a_service_secret_goes_to_no_one_but_a_trusted_owner_who_asked() {
    let (svc, erin) = (payroll(), erin());
    let refused = Err(PlanRefusal::NoTrustedContact("a service credential"));
    let asked = case(&svc, Action::ServiceCredentialRotate, None, Some("u-erin"));
    // Nobody asked, or the one loaded is not the requester.
    assert_eq!(ExecutionPlan::for_case(&asked, &svc, None, now()), refused);
    let unasked = case(&svc, Action::ServiceCredentialRotate, None, None);
    assert_eq!(
        ExecutionPlan::for_case(&unasked, &svc, Some(&erin), now()),
        refused
    );
    // The requester is no owner.
    let mut not_owned = svc.clone();
    not_owned.owners = vec!["u-carol".to_owned()];
    assert_eq!(
        ExecutionPlan::for_case(&asked, &not_owned, Some(&erin), now()),
        refused
    );
    // The owner's only email changed yesterday, and a phone never receives it.
    let mut fresh = erin.clone();
    fresh.contacts = vec![
        contact(ContactKind::Email, "erin@new.example", 1),
        contact(ContactKind::Phone, "+1 555 0300", 400),
    ];
    assert_eq!(
        ExecutionPlan::for_case(&asked, &svc, Some(&fresh), now()),
        refused
    );
}

#[test]
fn every_action_confirms_the_subject_and_factor_resets_need_nothing_else_of_the_directory() {
    for action in Action::all() {
        let operations = required_operations(*action);
        assert_eq!(operations.first(), Some(&Operation::Lookup), "{action}");
        assert!(
            !operations.contains(&Operation::RevokeSessions),
            "{action}: revoking sessions is best effort"
        );
    }
    for action in [Action::MfaReset, Action::FactorRebind] {
        assert_eq!(required_operations(action), [Operation::Lookup]);
    }
    assert_eq!(
        required_operations(Action::AccountUnlock),
        [Operation::Lookup, Operation::Unlock]
    );
    assert_eq!(
        required_operations(Action::ServiceCredentialRotate).len(),
        2
    );
    assert_eq!(
        Action::all().len(),
        7,
        "a new action needs its operations here"
    );
}
