//! Details of what a subject does on their own page (`my_account.rs`): passkey sign-in and
//! sign-out, refusals, and changes to their passkeys.

use serde::{Deserialize, Serialize};

/// `subject.signed_in`: a subject signed in to their own page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSignedIn {
    pub subject_id: String,
    /// Always `passkey`.
    pub method: String,
    pub passkey_id: String,
}

/// `subject.signed_in_with_provider`: a subject signed in to their own page through the
/// organisation's OpenID provider (a session that sees and reports, and changes no way in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSignedInWithProvider {
    pub subject_id: String,
    pub issuer: String,
    /// The provider's `sub` for the person.
    pub provider_subject: String,
}

/// `subject.sign_in_failed`: one refused sign-in to the own page, audited one by one while the
/// address has not sent many (the rest are counted in `staff.sign_in_failures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSignInFailed {
    /// `passkey`, or `oidc` for a sign-in through the organisation's OpenID provider.
    pub method: String,
    pub reason: String,
    /// The subject of the name given, `null` when no subject has it.
    #[serde(deserialize_with = "super::nullable")]
    pub subject_id: Option<String>,
}

/// `subject.signed_out`: the subject ended their session on their own page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSignedOut {
    pub subject_id: String,
}

/// `subject.passkey_added`: the subject added a passkey on their own page, while signed in with
/// another; it depends on whatever that one depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectPasskeyAdded {
    pub subject_id: String,
    pub passkey_id: String,
    pub label: String,
    pub shown_in: String,
    pub depends_on: Vec<String>,
}

/// `subject.passkey_renamed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectPasskeyRenamed {
    pub subject_id: String,
    pub passkey_id: String,
    pub label: String,
}

/// `subject.passkey_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectPasskeyRemoved {
    pub subject_id: String,
    pub passkey_id: String,
}

/// `subject.device_renamed`: an authenticator app or push device, renamed on the own page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectDeviceRenamed {
    pub subject_id: String,
    pub device_id: String,
    pub label: String,
}

/// `subject.device_removed`: an authenticator app or push device, removed on the own page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectDeviceRemoved {
    pub subject_id: String,
    pub device_id: String,
    /// `totp` or `push`.
    pub kind: String,
}
