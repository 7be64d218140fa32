//! Which verification methods are offered for a subject: a method is offered only when the
//! evidence it yields could count, so a contact or an authenticator bound inside the freshness
//! window never opens a method. The server gathers what lives in the store and the configuration
//! into [`OfferFacts`]; the rules here decide.

use chrono::{DateTime, Duration, Utc};

use crate::directory::{AuthenticatorKind, ContactKind, Subject};
use crate::evidence::Method;

/// What the store and the deployment's configuration say, as plain answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferFacts {
    /// The subject holds at least one unused recovery code.
    pub has_recovery_codes: bool,
    /// The subject's TOTP seed is on record.
    pub has_totp_seed: bool,
    /// The subject holds at least one passkey the server can verify.
    pub has_usable_passkey: bool,
    /// A telephony provider is configured, so a callback can be placed.
    pub telephony: bool,
    /// An identity-proofing vendor that creates inquiries is configured.
    pub idv_vendor: bool,
    /// The subject's identity of record holds every field the vendor's result is matched on.
    pub identity_matchable: bool,
    /// An independent manager or owner can be asked to vouch (see [`crate::vouching`]).
    pub independent_voucher: bool,
}

/// The methods of `runnable` (the deployment's methods, in the order the playbook offers them)
/// that can be used for `subject` at `now`, with `freshness` the case's contact freshness window.
pub fn offered_methods(
    runnable: &[Method],
    facts: &OfferFacts,
    subject: &Subject,
    freshness: Duration,
    now: DateTime<Utc>,
) -> Vec<Method> {
    runnable
        .iter()
        .copied()
        .filter(|method| offers(*method, facts, subject, freshness, now))
        .collect()
}

/// Whether `method` can be used for `subject` at `now`: the evidence it yields could count.
pub fn offers(
    method: Method,
    facts: &OfferFacts,
    subject: &Subject,
    freshness: Duration,
    now: DateTime<Utc>,
) -> bool {
    let settled = |kind| subject.has_settled_authenticator(kind, freshness, now);
    let trusted = |kind| subject.trusted_contact(kind, freshness, now).is_some();
    match method {
        Method::RecoveryCode => facts.has_recovery_codes,
        Method::Totp => facts.has_totp_seed && settled(AuthenticatorKind::Totp),
        // The ceremony's link goes to the email of record.
        Method::Passkey => {
            facts.has_usable_passkey
                && settled(AuthenticatorKind::Passkey)
                && trusted(ContactKind::Email)
        }
        Method::Push => settled(AuthenticatorKind::Push),
        Method::Callback => facts.telephony && trusted(ContactKind::Phone),
        // The vendor's link goes to the email of record.
        Method::IdProofing => {
            facts.idv_vendor && facts.identity_matchable && trusted(ContactKind::Email)
        }
        Method::SmsCode | Method::VoiceCode => trusted(ContactKind::Phone),
        Method::EmailCode => trusted(ContactKind::Email),
        Method::ManagerAttestation => facts.independent_voucher,
        // Answers about a person can be researched: never offered.
        Method::Knowledge => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::directory::{Authenticator, Contact, SubjectStatus, Tier};

    const ALL: [Method; 11] = [
        Method::Passkey,
        Method::Push,
        Method::Callback,
        Method::Totp,
        Method::IdProofing,
        Method::RecoveryCode,
        Method::SmsCode,
        Method::VoiceCode,
        Method::EmailCode,
        Method::ManagerAttestation,
        Method::Knowledge,
    ];

    const EVERYTHING: OfferFacts = OfferFacts {
        has_recovery_codes: true,
        has_totp_seed: true,
        has_usable_passkey: true,
        telephony: true,
        idv_vendor: true,
        identity_matchable: true,
        independent_voucher: true,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn fresh() -> Duration {
        Duration::days(14)
    }

    fn subject(contact_age: i64, authenticator_age: i64) -> Subject {
        let contact = |kind, value: &str| Contact {
            kind,
            value: value.to_owned(),
            verified_at: Some(now() - Duration::days(contact_age)),
            changed_at: now() - Duration::days(contact_age),
        };
        let device = |kind| Authenticator {
            id: format!("{kind}"),
            kind,
            label: String::new(),
            enrolled_at: now() - Duration::days(authenticator_age),
        };
        Subject {
            id: "u-alice".to_owned(),
            display_name: "Alice".to_owned(),
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            manager: Some("u-bob".to_owned()),
            owners: Vec::new(),
            groups: Vec::new(),
            contacts: vec![
                contact(ContactKind::Phone, "+1 555 0100"),
                contact(ContactKind::Email, "alice@example.org"),
            ],
            authenticators: vec![
                device(AuthenticatorKind::Passkey),
                device(AuthenticatorKind::Totp),
                device(AuthenticatorKind::Push),
            ],
            flagged: false,
            hired_at: None,
            utc_offset_minutes: None,
            probation_until: None,
            identity: None,
        }
    }

    #[test]
    fn everything_settled_offers_every_runnable_method_in_playbook_order_but_knowledge() {
        let offered = offered_methods(&ALL, &EVERYTHING, &subject(400, 400), fresh(), now());
        assert_eq!(offered, ALL[..10].to_vec());
    }

    #[test]
    fn only_runnable_methods_are_offered() {
        let runnable = [Method::EmailCode, Method::SmsCode];
        let offered = offered_methods(&runnable, &EVERYTHING, &subject(400, 400), fresh(), now());
        assert_eq!(offered, runnable.to_vec());
    }

    #[test]
    fn fresh_contacts_leave_only_devices_codes_and_the_voucher() {
        let offered = offered_methods(&ALL, &EVERYTHING, &subject(3, 400), fresh(), now());
        assert_eq!(
            offered,
            vec![
                Method::Push,
                Method::Totp,
                Method::RecoveryCode,
                Method::ManagerAttestation
            ]
        );
    }

    #[test]
    fn a_freshly_bound_authenticator_is_not_a_device_of_record() {
        let offered = offered_methods(&ALL, &EVERYTHING, &subject(400, 2), fresh(), now());
        assert!(!offered.contains(&Method::Passkey));
        assert!(!offered.contains(&Method::Totp));
        assert!(!offered.contains(&Method::Push));
        assert!(offered.contains(&Method::EmailCode));
    }

    #[test]
    fn store_and_configuration_facts_gate_their_methods() {
        let alice = subject(400, 400);
        let offered = offered_methods(&ALL, &OfferFacts::default(), &alice, fresh(), now());
        assert_eq!(
            offered,
            vec![
                Method::Push,
                Method::SmsCode,
                Method::VoiceCode,
                Method::EmailCode
            ]
        );
        let no_identity = OfferFacts {
            identity_matchable: false,
            ..EVERYTHING
        };
        let offered = offered_methods(&ALL, &no_identity, &alice, fresh(), now());
        assert!(!offered.contains(&Method::IdProofing));
    }

    #[test]
    fn an_unverified_email_offers_nothing_that_sends_to_it() {
        let mut alice = subject(400, 400);
        alice.contacts[1].verified_at = None;
        let offered = offered_methods(&ALL, &EVERYTHING, &alice, fresh(), now());
        for sends_to_email in [Method::EmailCode, Method::Passkey, Method::IdProofing] {
            assert!(!offered.contains(&sends_to_email), "{sends_to_email}");
        }
        assert!(offered.contains(&Method::SmsCode));
    }

    proptest::proptest! {
        /// Whatever the facts, a contact or authenticator inside the freshness window never
        /// opens a method that relies on it.
        #[test]
        fn fresh_contacts_and_authenticators_never_open_a_method(
            contact_age in 0i64..14,
            authenticator_age in 0i64..14,
            facts in proptest::arbitrary::any::<[bool; 7]>(),
        ) {
            let [codes, totp, passkey, telephony, idv, identity, voucher] = facts;
            let facts = OfferFacts {
                has_recovery_codes: codes,
                has_totp_seed: totp,
                has_usable_passkey: passkey,
                telephony,
                idv_vendor: idv,
                identity_matchable: identity,
                independent_voucher: voucher,
            };
            let alice = subject(contact_age, authenticator_age);
            let offered = offered_methods(&ALL, &facts, &alice, fresh(), now());
            for method in offered {
                proptest::prop_assert!(
                    matches!(method, Method::RecoveryCode | Method::ManagerAttestation),
                    "{} offered on fresh factors", method
                );
            }
        }
    }
}
