//! Details of verification events: started, passed, failed, locked, expired, identity proofing,
//! and the manager's attestation.
//!
//! `verification.started`, `verification.passed` and `verification.failed` are written by one
//! site per method, each with its own keys, so their details are untagged enums with one
//! variant per shape. Every shape has a fixed key set, so exactly one variant parses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `verification.started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerificationStarted {
    /// A code or link was sent to a contact of record: SMS, voice and email codes and the
    /// manager's attestation link (`service/verification.rs`, `start_verification`), and the
    /// passkey link (`passkeys.rs`, `start_passkey`).
    Sent(SentVerification),
    /// Nothing was sent: the caller reads a saved recovery code or their authenticator app's
    /// code (`service/verification.rs`, `start_verification`).
    Unsent(CodeVerification),
    /// A callback to the phone of record was placed (`service/callback.rs`).
    Callback(CallbackStarted),
    /// A push challenge went to the enrolled device (`service/push.rs`).
    Push(PushStarted),
    /// An identity-proofing inquiry was created at the vendor (`service/id_proofing.rs`).
    IdProofing(IdProofingStarted),
}

/// A verification identified by id, method and independence class: `verification.started` of a
/// recovery code or TOTP, and `verification.passed` / `verification.locked` of a code read back
/// (`service/verification.rs`, `answer_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeVerification {
    pub verification_id: String,
    /// The method (`sms_code`, `recovery_code`, `totp`...).
    pub method: String,
    /// The method's independence class (`phone_of_record`, `device_of_record`...).
    pub class: String,
}

/// A code or link sent to a contact of record (see [`VerificationStarted::Sent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentVerification {
    pub verification_id: String,
    pub method: String,
    pub class: String,
    /// The contact it went to, masked. Written from an `Option` at the code and link site,
    /// always set there; so always a string.
    pub destination: String,
    /// Who must answer: the subject id, or the vouching manager's or owner's.
    pub respondent: String,
    pub expires_at: DateTime<Utc>,
}

/// A callback placed (see [`VerificationStarted::Callback`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackStarted {
    pub verification_id: String,
    pub method: String,
    pub class: String,
    /// The phone of record, masked.
    pub destination: String,
    /// The telephony provider's id of the call.
    pub call_sid: String,
}

/// A push challenge sent (see [`VerificationStarted::Push`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushStarted {
    pub verification_id: String,
    pub method: String,
    pub class: String,
    /// The enrolled device's authenticator id.
    pub device: String,
}

/// An identity-proofing inquiry created (see [`VerificationStarted::IdProofing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdProofingStarted {
    pub verification_id: String,
    pub method: String,
    pub class: String,
    /// The email of record the vendor's link went to, masked.
    pub destination: String,
    /// The vendor (`standard-webhooks`, `persona`...).
    pub vendor: String,
    /// The vendor's id of the inquiry.
    pub inquiry_id: String,
    /// The identity fields the document must match (`name_first`, `name_last`, `birthdate`).
    pub match_fields: Vec<String>,
}

/// `verification.passed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerificationPassed {
    /// A code read back matched: a sent code, a recovery code or a TOTP code
    /// (`service/verification.rs`, `answer_code`).
    Code(CodeVerification),
    /// The right digits were keyed in on a callback (`service/callback.rs`); no class.
    Callback(CallbackOutcome),
    /// The device approved with the matching number (`service/push.rs`); no class.
    Push(PushOutcome),
    /// The vendor approved the inquiry and the document matched (`service/id_proofing.rs`); no
    /// method and no class.
    IdProofing(IdvResult),
    /// An enrolled, settled passkey answered the link (`passkeys.rs`, `passkey_link_answer`).
    Passkey(PasskeyAnswered),
}

/// `verification.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerificationFailed {
    /// A wrong code, with the attempts left (`service/verification.rs`, `answer_code`); no
    /// class.
    WrongCode(WrongCode),
    /// Wrong or no digits on a callback (`service/callback.rs`).
    Callback(CallbackOutcome),
    /// Denied on the device, or approved with a wrong number (`service/push.rs`).
    Push(PushOutcome),
    /// The inquiry was declined, lacked a check, or the document did not match
    /// (`service/id_proofing.rs`).
    IdProofing(IdvResult),
    /// A valid assertion from a passkey bound inside the freshness window: written with the
    /// same keys as a passed passkey verification (`passkeys.rs`, `passkey_link_answer`).
    PasskeyNotSettled(PasskeyAnswered),
    /// The assertion was refused (`passkeys.rs`, `passkey_link_answer`).
    PasskeyRefused(PasskeyRefused),
}

/// A wrong code (see [`VerificationFailed::WrongCode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrongCode {
    pub verification_id: String,
    pub method: String,
    pub attempts_left: u32,
}

/// The outcome of a callback's Gather webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackOutcome {
    pub verification_id: String,
    /// Always `callback`.
    pub method: String,
    /// The provider's call id from the webhook, empty when it sent none.
    pub call_sid: String,
    /// What happened, in words.
    pub outcome: String,
}

/// The enrolled device's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushOutcome {
    pub verification_id: String,
    /// Always `push`.
    pub method: String,
    /// What happened, in words.
    pub outcome: String,
}

/// A valid passkey assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAnswered {
    pub verification_id: String,
    /// Always `passkey`.
    pub method: String,
    /// Always `device_of_record`.
    pub class: String,
    /// The passkey that answered.
    pub authenticator_id: String,
}

/// A refused passkey assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRefused {
    pub verification_id: String,
    /// Always `passkey`.
    pub method: String,
    /// Why the assertion was refused.
    pub reason: String,
}

/// `verification.expired` (`service/verification.rs`, `answer_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationExpired {
    pub verification_id: String,
    pub method: String,
}

/// An identity-verification vendor's result for an inquiry (`service/id_proofing.rs`,
/// `idv_webhook`): `idv.pending`, and `verification.passed` / `verification.failed` of
/// identity proofing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdvResult {
    pub verification_id: String,
    pub inquiry_id: String,
    /// The vendor's decision, lower case (`approved`, `declined`, `needsreview`, `pending`, or
    /// `other("...")` for a status the vendor spelled otherwise).
    pub status: String,
    pub checks: IdvChecks,
    /// Whether the document matched every configured field of the identity of record.
    pub identity_matched: bool,
    /// The fields that did not match (`identity_of_record` when the subject has none).
    pub unmatched_fields: Vec<String>,
}

/// Which evidence the vendor reports as passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdvChecks {
    pub document: bool,
    pub selfie: bool,
    pub liveness: bool,
}

/// `security.idv_identity_mismatch` (`service/id_proofing.rs`, `idv_webhook`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdvIdentityMismatch {
    pub verification_id: String,
    pub subject_id: String,
    pub unmatched_fields: Vec<String>,
    /// How many security contacts are alerted.
    pub alerted: u64,
}

/// `attestation.code_sent` (`service/attestation.rs`, `send_attestation_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationCodeSent {
    pub verification_id: String,
    /// The manager's phone of record, masked.
    pub destination: String,
    pub expires_at: DateTime<Utc>,
}

/// `attestation.signed_in` and `attestation.locked` (`service/attestation.rs`,
/// `sign_in_to_attestation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationSignIn {
    pub verification_id: String,
    /// How the manager signs in: always `sms_code`.
    pub method: String,
}

/// `attestation.sign_in_failed` (`service/attestation.rs`, `sign_in_to_attestation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationSignInFailed {
    pub verification_id: String,
    pub attempts_left: u32,
}

/// `attestation.confirmed` and `attestation.rejected` (`service/attestation.rs`, `attest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationDecided {
    pub verification_id: String,
    /// The case's approval digest the decision is bound to.
    pub case_digest: String,
}

/// `attestation.unrecognised` (`service/methods/attestation.rs`, `report_unrecognised`): after
/// rejecting, the manager said they know nothing of this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationUnrecognised {
    pub verification_id: String,
    /// How many security contacts were alerted.
    pub alerted: u64,
}
