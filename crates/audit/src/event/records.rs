//! Details of events about subjects' records, credentials and the policy bundle: directory
//! imports, seeding and sync, enrolled authenticators, recovery codes, passes, service secrets,
//! "this was not me", and policy reloads.

use serde::{Deserialize, Serialize};

/// `directory.imported` (`service/subjects.rs`, `import_subjects`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryImported {
    pub count: u64,
    pub subject_ids: Vec<String>,
}

/// `directory.seeded` (`demo.rs`, `seed`): the two entries of a demo seeding have different keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DirectorySeeded {
    /// The demo organisation was written.
    Subjects(SeededSubjects),
    /// The demo people's authenticators were backdated to long ago.
    AuthenticatorsSettled(SeededAuthenticators),
}

/// The demo organisation written (see [`DirectorySeeded::Subjects`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeededSubjects {
    /// How many subjects.
    pub subjects: u64,
    /// Always `demo`.
    pub source: String,
}

/// Authenticators backdated (see [`DirectorySeeded::AuthenticatorsSettled`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeededAuthenticators {
    /// Always `demo`.
    pub source: String,
    /// In words: `700 days ago`.
    pub authenticators_bound_at: String,
}

/// `directory.synced` (`directory_sync.rs`, `synced_entry`): a subject merged from the
/// connected directory, when a case is opened or right before execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySynced {
    pub subject_id: String,
    pub connector: String,
    /// The backend's name for the entry.
    pub backend_id: String,
    /// The subject was not in the store before.
    pub created: bool,
    pub changes: SubjectChanges,
    /// Before execution, when a changed contact took back evidence: the contact kinds that
    /// changed. Written together with `case_state`, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_withdrawn_for: Option<Vec<String>>,
    /// The case state before and after the evidence was withdrawn; see
    /// `evidence_withdrawn_for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_state: Option<FromTo<String>>,
}

/// What a directory sync changed, field by field; a field that did not change is absent
/// (`directory_sync.rs`, `merge`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<FromTo<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<FromTo<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FromTo<String>>,
    /// Group names, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<FromTo<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<ManagerChange>,
    /// Contacts that appeared or disappeared, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<ContactChange>>,
}

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromTo<T> {
    pub from: T,
    pub to: T,
}

/// The manager before (`null` when the store had none) and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerChange {
    #[serde(deserialize_with = "super::nullable")]
    pub from: Option<String>,
    pub to: String,
}

/// A contact that appeared in or disappeared from the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactChange {
    /// `email` or `phone`.
    pub kind: String,
    /// `new` or `removed`.
    pub change: String,
    /// The contact, masked.
    pub value: String,
}

/// `authenticator.enrolled` (`service/credentials.rs`, `enroll_totp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticatorEnrolled {
    pub subject_id: String,
    /// Always `totp`.
    pub kind: String,
    /// The email of record told about it, masked.
    pub notified: String,
}

/// `recovery_codes.issued` (`service/credentials.rs`, `issue_recovery_codes`): codes are shown
/// once in an authenticated enrolment; logs written before that record codes that were mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecoveryCodesIssued {
    /// Shown once to the subject, never sent.
    Shown(RecoveryCodesShown),
    /// Mailed to the email of record (what Deskgate did before codes were shown once).
    Mailed(RecoveryCodesMailed),
}

/// New recovery codes shown once (see [`RecoveryCodesIssued::Shown`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodesShown {
    pub subject_id: String,
    pub count: u64,
    /// Where they were shown, in words (e.g. the passkey enrolment after a temporary access pass).
    pub shown_in: String,
    /// The takeover units whoever saw them controlled: what the codes depend on.
    pub depends_on: Vec<String>,
}

/// Recovery codes mailed (see [`RecoveryCodesIssued::Mailed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodesMailed {
    pub subject_id: String,
    pub count: u64,
    /// The email of record they went to, masked.
    pub delivered_to: String,
}

/// `temporary_access_pass.redeemed`: the two sites write different keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TemporaryAccessPassRedeemed {
    /// An authenticator app enrolled (`service/links.rs`, `redeem_pass`).
    Totp(PassRedeemedForApp),
    /// A passkey enrolled (`passkeys.rs`, `finish_pass_passkey`).
    Passkey(PassRedeemedForPasskey),
}

/// A pass redeemed for an authenticator app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassRedeemedForApp {
    pub subject_id: String,
    /// Always `totp`.
    pub enrolled: String,
}

/// A pass redeemed for a passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassRedeemedForPasskey {
    pub subject_id: String,
    /// Always `passkey`.
    pub enrolled: String,
    pub authenticator_id: String,
}

/// `service_secret.retrieved` (`service/links.rs`, `retrieve_secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSecretRetrieved {
    /// The service account.
    pub subject_id: String,
    /// The owner who retrieved it.
    pub by: String,
}

/// `security.not_me_reported` (`service/links.rs`, `report_not_me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotMeReported {
    pub subject_id: String,
    /// Always `true`.
    pub locked: bool,
    /// Always `true`.
    pub flagged: bool,
    pub spent: SpentHandovers,
}

/// What a "this was not me" report spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpentHandovers {
    /// In words: `all unused`.
    pub links: String,
    /// The credential kinds spent.
    pub credentials: Vec<String>,
}

/// `policy.reloaded` (`service/policy_admin.rs`, `reload_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyReloaded {
    pub old_digest: String,
    pub new_digest: String,
    /// How many policies the new bundle holds.
    pub policies: u64,
}

/// `policy.reload_refused` (`service/policy_admin.rs`, `reload_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyReloadRefused {
    /// The digest of the bundle that stays in force.
    pub current_digest: String,
    /// The bundle's problems, with file and line.
    pub problems: String,
}
