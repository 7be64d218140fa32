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

/// `subject.sign_in_failed`: one refused sign-in to the own page, audited one by one while the
/// address has not sent many (the rest are counted in `staff.sign_in_failures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSignInFailed {
    /// Always `passkey`.
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
