//! Who may vouch for a recovery case out of band (manager attestation): the subject's manager, or
//! an owner of a non-human identity, who is an independent person in good standing and can prove
//! who they are on a phone of their own. The server loads the people; these rules decide.

use chrono::{DateTime, Utc};

use crate::case::Case;
use crate::directory::{Contact, ContactKind, Subject, SubjectStatus};

/// Why a person may not vouch for a case, most fundamental first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VoucherRefusal {
    #[error("the subject has no manager or owner who can vouch for this request")]
    NoVoucher,
    #[error("the person is not the subject's manager or one of its owners")]
    NotManagerOrOwner,
    #[error("the subject may not vouch for themselves")]
    IsSubject,
    #[error("the requester may not vouch for their own request")]
    IsRequester,
    #[error("the person worked the case or already gave their word on it")]
    WorkedTheCase,
    #[error("the person shares a phone or email of record with the subject or the requester")]
    SharesContact,
    #[error("the person is {0}")]
    NotActive(SubjectStatus),
    #[error("the person is on probation after a recent recovery of their own account")]
    OnProbation,
    #[error("the person has no trusted email of record to receive the link")]
    NoTrustedEmail,
    #[error("the person has no trusted phone of record to sign in with")]
    NoTrustedPhone,
}

/// Where an attestation reaches the voucher: the link goes to `email`, and before the case
/// appears they sign in with a code sent to `phone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoucherReach<'a> {
    pub email: &'a Contact,
    pub phone: &'a Contact,
}

/// The id of the person to ask to vouch for `case` about `subject` when `agent` (the person behind
/// the staff account asking) works it: the manager, or the first owner not ruled out, leaving out
/// the subject, the requester, everyone who worked the case or gave their word on it, and `agent`.
pub fn voucher_id<'a>(
    case: &Case,
    subject: &'a Subject,
    agent: Option<&str>,
) -> Result<&'a str, VoucherRefusal> {
    let mut excluded = case.excluded_vouchers();
    excluded.extend(agent);
    excluded.extend(case.requester.as_deref());
    subject.voucher(&excluded).ok_or(VoucherRefusal::NoVoucher)
}

/// Whether `voucher` is a person independent of `case`: the subject's manager or owner, not the
/// subject, the requester or `agent`, not someone who worked the case or already gave their word,
/// and sharing no phone or email of record with the subject or `requester` (whoever holds a shared
/// phone or mailbox would answer for both).
pub fn independent(
    case: &Case,
    subject: &Subject,
    voucher: &Subject,
    requester: Option<&Subject>,
    agent: Option<&str>,
) -> Result<(), VoucherRefusal> {
    let id = voucher.id.as_str();
    if id == subject.id || id == case.subject_id {
        return Err(VoucherRefusal::IsSubject);
    }
    let of_record = if subject.is_non_human() {
        subject.owners.iter().any(|o| o == id)
    } else {
        subject.manager.as_deref() == Some(id)
    };
    if !of_record {
        return Err(VoucherRefusal::NotManagerOrOwner);
    }
    if case.requester.as_deref() == Some(id) {
        return Err(VoucherRefusal::IsRequester);
    }
    if agent == Some(id) || case.excluded_vouchers().contains(&id) {
        return Err(VoucherRefusal::WorkedTheCase);
    }
    let requester = requester.filter(|r| r.id != subject.id);
    if voucher.shares_contact_with(subject)
        || requester.is_some_and(|r| voucher.shares_contact_with(r))
    {
        return Err(VoucherRefusal::SharesContact);
    }
    Ok(())
}

/// Whether `voucher` may vouch for `case` about `subject` now, and the phone they sign in with:
/// independent (see [`independent`]), active, not on probation after a recovery of their own, and
/// holding a phone of record that is verified and unchanged for the case's freshness window.
pub fn may_vouch<'a>(
    case: &Case,
    subject: &Subject,
    voucher: &'a Subject,
    requester: Option<&Subject>,
    now: DateTime<Utc>,
) -> Result<&'a Contact, VoucherRefusal> {
    independent(case, subject, voucher, requester, None)?;
    in_good_standing(voucher, now)?;
    voucher
        .trusted_contact(ContactKind::Phone, case.requirements.freshness(), now)
        .ok_or(VoucherRefusal::NoTrustedPhone)
}

/// Whether `agent` may ask `voucher` to vouch for `case`, and where the request reaches them:
/// everything [`may_vouch`] asks, plus a trusted email of record for the link itself.
pub fn may_be_asked<'a>(
    case: &Case,
    subject: &Subject,
    voucher: &'a Subject,
    requester: Option<&Subject>,
    agent: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VoucherReach<'a>, VoucherRefusal> {
    independent(case, subject, voucher, requester, agent)?;
    in_good_standing(voucher, now)?;
    let fresh = case.requirements.freshness();
    let email = voucher
        .trusted_contact(ContactKind::Email, fresh, now)
        .ok_or(VoucherRefusal::NoTrustedEmail)?;
    let phone = voucher
        .trusted_contact(ContactKind::Phone, fresh, now)
        .ok_or(VoucherRefusal::NoTrustedPhone)?;
    Ok(VoucherReach { email, phone })
}

/// Active, and not on probation: a person whose own account was just recovered may be the
/// attacker who recovered it.
fn in_good_standing(voucher: &Subject, now: DateTime<Utc>) -> Result<(), VoucherRefusal> {
    if voucher.status != SubjectStatus::Active {
        return Err(VoucherRefusal::NotActive(voucher.status));
    }
    if voucher.on_probation(now) {
        return Err(VoucherRefusal::OnProbation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::case::{Channel, NewCase};
    use crate::directory::{Action, Role, Staff, Tier};
    use crate::requirements::Requirements;
    use crate::risk::{Signals, assess};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn contact(kind: ContactKind, value: &str, age_days: i64) -> Contact {
        Contact {
            kind,
            value: value.to_owned(),
            verified_at: Some(now() - Duration::days(age_days)),
            changed_at: now() - Duration::days(age_days),
        }
    }

    fn person(id: &str, manager: Option<&str>, phone: &str, email: &str) -> Subject {
        Subject {
            id: id.to_owned(),
            display_name: id.to_owned(),
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            manager: manager.map(str::to_owned),
            owners: Vec::new(),
            groups: Vec::new(),
            contacts: vec![
                contact(ContactKind::Phone, phone, 400),
                contact(ContactKind::Email, email, 400),
            ],
            authenticators: Vec::new(),
            flagged: false,
            hired_at: None,
            utc_offset_minutes: None,
            probation_until: None,
            identity: None,
        }
    }

    fn alice() -> Subject {
        person("u-alice", Some("u-bob"), "+1 555 0100", "alice@example.org")
    }

    fn bob() -> Subject {
        person("u-bob", None, "+1 555 0200", "bob@example.org")
    }

    fn case_about(subject: &Subject, requester: Option<&str>) -> Case {
        let agent = Staff {
            id: "a-1".to_owned(),
            name: "Agent".to_owned(),
            role: Role::Agent,
            subject_id: Some("u-agent".to_owned()),
            team: String::new(),
            region: String::new(),
            shift: String::new(),
        };
        let action = Action::PasswordReset;
        let opened = Case::open(
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
                new_contact: None,
                requester: requester.map(str::to_owned),
                risk: assess(subject.tier, action, &Signals::default()),
                requirements: Requirements::simple_rules(subject.tier, action),
            },
            now(),
        );
        assert!(opened.is_ok(), "{opened:?}");
        opened.unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn the_manager_in_good_standing_vouches_and_signs_in_on_their_phone() {
        let (alice, bob) = (alice(), bob());
        let case = case_about(&alice, None);
        assert_eq!(voucher_id(&case, &alice, Some("u-agent")), Ok("u-bob"));
        let phone = may_vouch(&case, &alice, &bob, None, now());
        assert_eq!(phone.map(|c| c.value.as_str()), Ok("+1 555 0200"));
        let reach = may_be_asked(&case, &alice, &bob, None, Some("u-agent"), now());
        assert_eq!(reach.map(|r| r.email.value.as_str()), Ok("bob@example.org"));
    }

    #[test]
    fn nobody_vouches_when_the_only_manager_works_the_case() {
        let (alice, bob) = (alice(), bob());
        let case = case_about(&alice, None);
        assert_eq!(
            voucher_id(&case, &alice, Some("u-bob")),
            Err(VoucherRefusal::NoVoucher)
        );
        assert_eq!(
            may_be_asked(&case, &alice, &bob, None, Some("u-bob"), now()),
            Err(VoucherRefusal::WorkedTheCase)
        );
        let mut worked = case.clone();
        assert!(worked.record_participant(Some("u-bob")).is_ok());
        assert_eq!(
            may_vouch(&worked, &alice, &bob, None, now()),
            Err(VoucherRefusal::WorkedTheCase)
        );
    }

    #[test]
    fn the_subject_never_vouches_for_themselves() {
        let mut alice = alice();
        alice.manager = Some("u-alice".to_owned());
        let case = case_about(&alice, None);
        assert_eq!(
            voucher_id(&case, &alice, None),
            Err(VoucherRefusal::NoVoucher)
        );
        assert_eq!(
            may_vouch(&case, &alice, &alice, None, now()),
            Err(VoucherRefusal::IsSubject)
        );
    }

    #[test]
    fn someone_who_is_not_the_manager_cannot_vouch() {
        let alice = alice();
        let case = case_about(&alice, None);
        let mallory = person("u-mallory", None, "+1 555 0300", "m@example.org");
        assert_eq!(
            may_vouch(&case, &alice, &mallory, None, now()),
            Err(VoucherRefusal::NotManagerOrOwner)
        );
    }

    #[test]
    fn a_manager_sharing_a_phone_with_the_subject_is_not_independent() {
        let alice = alice();
        let mut bob = bob();
        bob.contacts[0] = contact(ContactKind::Phone, "+1 (555) 0100", 400);
        let case = case_about(&alice, None);
        assert_eq!(
            may_vouch(&case, &alice, &bob, None, now()),
            Err(VoucherRefusal::SharesContact)
        );
    }

    #[test]
    fn an_owner_sharing_a_mailbox_with_the_requesting_owner_is_not_independent() {
        let mut service = person("svc-build", None, "", "");
        service.tier = Tier::Service;
        service.contacts.clear();
        service.owners = vec!["u-alice".to_owned(), "u-bob".to_owned()];
        let requester = alice();
        let mut bob = bob();
        bob.contacts[1] = contact(ContactKind::Email, " Alice@Example.org", 400);
        let case = case_about(&service, Some("u-alice"));
        assert_eq!(voucher_id(&case, &service, None), Ok("u-bob"));
        assert_eq!(
            may_vouch(&case, &service, &bob, Some(&requester), now()),
            Err(VoucherRefusal::SharesContact)
        );
        assert_eq!(
            may_vouch(&case, &service, &requester, Some(&requester), now()),
            Err(VoucherRefusal::IsRequester)
        );
    }

    #[test]
    fn a_manager_on_probation_or_not_active_cannot_vouch() {
        let alice = alice();
        let case = case_about(&alice, None);
        let mut bob = bob();
        bob.probation_until = Some(now() + Duration::days(1));
        assert_eq!(
            may_vouch(&case, &alice, &bob, None, now()),
            Err(VoucherRefusal::OnProbation)
        );
        bob.probation_until = Some(now() - Duration::seconds(1));
        assert!(may_vouch(&case, &alice, &bob, None, now()).is_ok());
        bob.status = SubjectStatus::OnLeave;
        assert_eq!(
            may_vouch(&case, &alice, &bob, None, now()),
            Err(VoucherRefusal::NotActive(SubjectStatus::OnLeave))
        );
    }

    #[test]
    fn a_manager_whose_phone_changed_recently_cannot_sign_in() {
        let alice = alice();
        let case = case_about(&alice, None);
        let mut bob = bob();
        bob.contacts[0] = contact(ContactKind::Phone, "+1 555 9999", 1);
        assert_eq!(
            may_vouch(&case, &alice, &bob, None, now()),
            Err(VoucherRefusal::NoTrustedPhone)
        );
    }

    #[test]
    fn the_link_needs_a_trusted_email_before_the_phone_is_looked_at() {
        let alice = alice();
        let case = case_about(&alice, None);
        let mut bob = bob();
        bob.contacts[0].verified_at = None;
        bob.contacts[1].verified_at = None;
        assert_eq!(
            may_be_asked(&case, &alice, &bob, None, None, now()),
            Err(VoucherRefusal::NoTrustedEmail)
        );
    }

    proptest::proptest! {
        /// A phone changed inside the freshness window never lets anyone vouch, whatever else
        /// holds.
        #[test]
        fn a_freshly_changed_phone_never_vouches(
            age in 0i64..30,
            on_leave: bool,
            probation_days in -5i64..5,
        ) {
            let alice = alice();
            let case = case_about(&alice, None);
            let mut bob = bob();
            bob.contacts[0] = contact(ContactKind::Phone, "+1 555 0200", age);
            if on_leave { bob.status = SubjectStatus::OnLeave; }
            bob.probation_until = Some(now() + Duration::days(probation_days));
            let fresh = case.requirements.freshness();
            let allowed = may_vouch(&case, &alice, &bob, None, now());
            let expected = !on_leave && probation_days <= 0 && Duration::days(age) >= fresh;
            proptest::prop_assert_eq!(allowed.is_ok(), expected);
            if let Ok(phone) = allowed {
                proptest::prop_assert!(now() - phone.changed_at >= fresh);
            }
        }
    }
}
