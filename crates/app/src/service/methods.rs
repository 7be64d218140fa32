//! Verification methods, one module per family, all behind one interface
//! ([`VerificationFamily`]): what the family offers for a subject and case, how it starts (the
//! verification the case records, the message, the link), how an answer reaches Deskgate, and which
//! channels its evidence depends on. [`Service::start_verification`] and
//! [`Service::answer_code`] do what every method shares (authorization, the cap, who is verified,
//! expiry, the audit of the answer) and hand the rest to the family.
//!
//! Adding a method: write one module here implementing [`VerificationFamily`], then register it
//! below: a variant of [`Family`] listed in `FAMILIES`, its arm in the `dispatch!` macro, and its
//! methods' places in [`OFFER_ORDER`]. Its vocabulary (the [`Method`] name and the independence class it
//! yields) lives in `deskgate_core::evidence`.

use std::collections::BTreeSet;

use super::*;
use deskgate_core::offer::{self, OfferFacts};
use deskgate_core::{Contact, EvidenceChannel, takeover};

mod attestation;
mod callback;
mod codes;
mod held_codes;
mod id_proofing;
mod passkey;
mod push;

pub use attestation::{AttestationSession, CodeSent};

/// The methods this deployment runs, in the order the playbook offers them. The others exist in
/// the vocabulary and are refused with a clear error.
pub(super) const OFFER_ORDER: [Method; 10] = [
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
];

/// How the answer to a verification reaches Deskgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// The caller reads a code back to the agent ([`Service::answer_code`]).
    ReadBack,
    /// The respondent opens a single-use link sent to a contact of record.
    Link,
    /// The subject's enrolled device answers ([`Service::push_response`]).
    Device,
    /// The telephony provider's signed webhook brings the digits keyed in on the call.
    PhoneCall,
    /// The proofing vendor's signed webhook brings its result.
    Vendor,
}

/// What every family is handed to start a verification: the checks every method shares passed.
pub(crate) struct Start<'a> {
    pub caller: &'a Staff,
    /// The case, with the caller recorded as one who works it.
    pub stored: StoredCase,
    /// The person verified: the subject, or the registered owner who asked for a service account.
    pub subject: Subject,
    /// The new verification's id.
    pub vid: String,
    pub method: Method,
}

/// The outcome of checking a read-back answer, with the single-use spending it needs: the store
/// applies it in the same commit as the answer, only if the secret is still unused.
#[derive(Default)]
pub(crate) struct Checked {
    pub matched: bool,
    pub spend_recovery_codes: Vec<(String, String, DateTime<Utc>)>,
    pub swap_credentials: Vec<deskgate_store::CredentialSwap>,
}

impl Checked {
    fn matched(matched: bool) -> Self {
        Self {
            matched,
            ..Self::default()
        }
    }
}

/// One family of verification methods.
pub(crate) trait VerificationFamily {
    /// The methods of this family.
    const METHODS: &'static [Method];
    /// How an answer reaches Deskgate.
    const ANSWERED: Answered;

    /// Whether `method` is offered for `subject` on `case` now: the family loads the facts its
    /// methods need and [`offer::offers`] decides. A family that needs no facts beyond the
    /// subject's record keeps this default.
    async fn offers(
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        Ok(offered_with(
            svc,
            method,
            &OfferFacts::default(),
            subject,
            case,
        ))
    }

    /// Starts a verification: records it on the case, delivers what it sends (before the case
    /// records it, so a failed delivery changes nothing) and commits with `verification.started`.
    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)>;

    /// Reads a typed answer into its canonical form, refusing a malformed one.
    fn read_answer(_method: Method, answer: &str) -> AppResult<String> {
        if !(6..=12).contains(&answer.len()) || !answer.chars().all(|c| c.is_ascii_digit()) {
            return Err(AppError::invalid("code must be 6 to 12 digits"));
        }
        Ok(answer.to_owned())
    }

    /// Checks an answer read back by the caller, in constant time. A family not answered by
    /// read-back never matches; the case then refuses the answer for its method.
    async fn check(
        _svc: &Service,
        _case: &Case,
        _verification: &Verification,
        _answer: &str,
    ) -> AppResult<Checked> {
        Ok(Checked::default())
    }

    /// The channels the evidence of `verification` depends on.
    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel>;
}

/// The registered families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Codes,
    HeldCodes,
    Push,
    Callback,
    Passkey,
    Attestation,
    IdProofing,
}

/// Every registered family.
const FAMILIES: [Family; 7] = [
    Family::Codes,
    Family::HeldCodes,
    Family::Push,
    Family::Callback,
    Family::Passkey,
    Family::Attestation,
    Family::IdProofing,
];

/// Evaluates `$body` with `$F` naming the family's [`VerificationFamily`] implementation.
macro_rules! dispatch {
    ($family:expr, |$F:ident| $body:expr) => {
        match $family {
            Family::Codes => {
                type $F = codes::Codes;
                $body
            }
            Family::HeldCodes => {
                type $F = held_codes::HeldCodes;
                $body
            }
            Family::Push => {
                type $F = push::Push;
                $body
            }
            Family::Callback => {
                type $F = callback::Callback;
                $body
            }
            Family::Passkey => {
                type $F = passkey::PasskeyLink;
                $body
            }
            Family::Attestation => {
                type $F = attestation::Attestation;
                $body
            }
            Family::IdProofing => {
                type $F = id_proofing::IdProofing;
                $body
            }
        }
    };
}

impl Family {
    /// The family that runs `method`, or `None` for a method no family runs (knowledge).
    pub(crate) fn of(method: Method) -> Option<Self> {
        FAMILIES
            .into_iter()
            .find(|family| family.methods().contains(&method))
    }

    pub(crate) fn methods(self) -> &'static [Method] {
        dispatch!(self, |F| F::METHODS)
    }

    pub(crate) fn answered(self) -> Answered {
        dispatch!(self, |F| F::ANSWERED)
    }

    pub(crate) async fn offers(
        self,
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        dispatch!(self, |F| F::offers(svc, method, subject, case).await)
    }

    pub(crate) async fn start(
        self,
        svc: &Service,
        start: Start<'_>,
    ) -> AppResult<(String, CaseView)> {
        dispatch!(self, |F| F::start(svc, start).await)
    }

    pub(crate) fn read_answer(self, method: Method, answer: &str) -> AppResult<String> {
        dispatch!(self, |F| F::read_answer(method, answer))
    }

    pub(crate) async fn check(
        self,
        svc: &Service,
        case: &Case,
        verification: &Verification,
        answer: &str,
    ) -> AppResult<Checked> {
        dispatch!(self, |F| F::check(svc, case, verification, answer).await)
    }
}

/// The channels the evidence of `verification` depends on, as its family names them.
pub(crate) fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
    Family::of(verification.method)
        .map(|family| dispatch!(family, |F| F::depends_on(verification)))
        .unwrap_or_default()
}

/// Whether `method` is offered, given the facts its family loaded and the subject's record.
fn offered_with(
    svc: &Service,
    method: Method,
    facts: &OfferFacts,
    subject: &Subject,
    case: &Case,
) -> bool {
    offer::offers(
        method,
        facts,
        subject,
        case.requirements.freshness(),
        svc.now(),
    )
}

/// The takeover unit of a contact of record: its masked form and a keyed fingerprint of the
/// whole value, so two contacts that mask alike stay apart and none is shown in full.
pub(crate) fn contact_unit(svc: &Service, contact: &Contact) -> String {
    let value: String = match contact.kind {
        ContactKind::Phone => contact.value.chars().filter(char::is_ascii_digit).collect(),
        ContactKind::Email => contact.value.trim().to_lowercase(),
    };
    let digest = svc.codes.hash("takeover-unit", &value);
    let fingerprint = digest.get(..8).unwrap_or(&digest);
    match contact.kind {
        ContactKind::Phone => takeover::phone(&contact.masked(), fingerprint),
        ContactKind::Email => takeover::mailbox(&contact.masked(), fingerprint),
    }
}

/// The mailbox of record of `subject`, as a unit: where Deskgate has mailed recovery codes and
/// authenticator-app seeds. Without one, a unit that names the unknown mailbox.
pub(crate) fn mailbox_of_record(svc: &Service, subject: &Subject) -> String {
    subject.contact(ContactKind::Email).map_or_else(
        || format!("mailbox:unknown-of-{}", subject.id),
        |c| contact_unit(svc, c),
    )
}

/// Units from a list of names.
pub(crate) fn units<I: IntoIterator<Item = String>>(names: I) -> BTreeSet<String> {
    names.into_iter().collect()
}

/// A new pending verification of `method` with no secret yet; the family fills in the rest.
fn pending(
    start: &Start<'_>,
    respondent: &str,
    max_attempts: u32,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Verification {
    Verification {
        id: start.vid.clone(),
        method: start.method,
        state: VerificationState::Pending,
        destination: None,
        respondent: respondent.to_owned(),
        contact_changed_at: None,
        secret_hash: None,
        attempts: 0,
        max_attempts,
        started_at: now,
        expires_at,
        completed_at: None,
        respondent_check: None,
        units: BTreeSet::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_runnable_method_has_exactly_one_family_that_names_it() {
        for method in Method::all() {
            let owners: Vec<Family> = FAMILIES
                .into_iter()
                .filter(|f| f.methods().contains(method))
                .collect();
            if *method == Method::Knowledge {
                assert!(owners.is_empty(), "knowledge must never run");
                assert!(!OFFER_ORDER.contains(method));
            } else {
                assert_eq!(owners, vec![Family::of(*method).unwrap()], "{method}");
                assert!(OFFER_ORDER.contains(method), "{method} is never offered");
            }
        }
    }

    #[test]
    fn only_codes_the_caller_holds_or_receives_are_read_back() {
        for method in OFFER_ORDER {
            let family = Family::of(method).unwrap();
            assert_eq!(
                family.answered() == Answered::ReadBack,
                method.is_answered(),
                "{method}"
            );
        }
    }

    fn verification(method: Method, destination: Option<&str>) -> Verification {
        let now = Utc::now();
        Verification {
            id: "v-1".to_owned(),
            method,
            state: VerificationState::Passed,
            destination: destination.map(str::to_owned),
            respondent: "u-manager".to_owned(),
            contact_changed_at: None,
            secret_hash: None,
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now,
            completed_at: Some(now),
            respondent_check: None,
            units: BTreeSet::new(),
        }
    }

    #[test]
    fn evidence_names_the_channels_an_attacker_would_need() {
        let phone = "+1 *** *** 42";
        let mail = "a***@example.com";
        let cases = [
            (
                Method::SmsCode,
                Some(phone),
                vec![EvidenceChannel::Phone(phone.into())],
            ),
            (
                Method::Callback,
                Some(phone),
                vec![EvidenceChannel::Phone(phone.into())],
            ),
            (
                Method::EmailCode,
                Some(mail),
                vec![EvidenceChannel::Mailbox(mail.into())],
            ),
            (
                Method::Passkey,
                Some(mail),
                vec![
                    EvidenceChannel::Device(AuthenticatorKind::Passkey),
                    EvidenceChannel::Mailbox(mail.into()),
                ],
            ),
            (
                Method::IdProofing,
                Some(mail),
                vec![
                    EvidenceChannel::Document,
                    EvidenceChannel::Mailbox(mail.into()),
                ],
            ),
            (
                Method::ManagerAttestation,
                Some(mail),
                vec![
                    EvidenceChannel::Person("u-manager".into()),
                    EvidenceChannel::Mailbox(mail.into()),
                ],
            ),
            (
                Method::Push,
                None,
                vec![EvidenceChannel::Device(AuthenticatorKind::Push)],
            ),
            (
                Method::Totp,
                None,
                vec![EvidenceChannel::Device(AuthenticatorKind::Totp)],
            ),
            (
                Method::RecoveryCode,
                None,
                vec![EvidenceChannel::RecoveryCodes],
            ),
            (Method::Knowledge, None, vec![]),
        ];
        for (method, destination, expected) in cases {
            assert_eq!(
                depends_on(&verification(method, destination)),
                expected,
                "{method}"
            );
        }
    }
}
