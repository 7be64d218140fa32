//! Details of staff events: sign-in by passkey and single sign-on, refusals, tokens and access.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A staff member named by id: `staff.disabled` and `staff.enabled` (`sso.rs`,
/// `set_staff_disabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffRef {
    pub staff_id: String,
}

/// `staff.sign_in` (`sso.rs`, `sso_sign_in`): single sign-on. Note the name differs from the
/// passkey sign-in's `staff.signed_in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSignIn {
    /// Always `oidc`.
    pub method: String,
    pub staff_id: String,
    /// The provider's issuer.
    pub issuer: String,
    /// The provider's subject (`sub`) for the person.
    pub provider_subject: String,
}

/// `staff.signed_in` (`staff_passkeys.rs`, `staff_passkey_sign_in`): console passkey sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSignedIn {
    pub staff_id: String,
    /// Always `passkey`.
    pub method: String,
    pub passkey_id: String,
}

/// `staff.sign_in_failed`: one refused sign-in. The two sites write different keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StaffSignInFailed {
    /// A refused passkey sign-in (`staff_passkeys.rs`, `audit_passkey_refusal`).
    Passkey(PasskeySignInFailed),
    /// A refused single sign-on (`sso.rs`, `audit_sso_refusal`).
    Oidc(OidcSignInFailed),
}

/// A refused passkey sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignInFailed {
    /// Always `passkey`.
    pub method: String,
    pub reason: String,
    /// The staff member of the name given, `null` when no staff member has it.
    #[serde(deserialize_with = "super::nullable")]
    pub staff_id: Option<String>,
}

/// A refused single sign-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSignInFailed {
    /// Always `oidc`.
    pub method: String,
    pub reason: String,
    /// The identity the provider vouched for, `null` when the attempt did not get that far.
    #[serde(deserialize_with = "super::nullable")]
    pub identity: Option<String>,
    /// The staff member registered with that identity, or `null`.
    #[serde(deserialize_with = "super::nullable")]
    pub staff_id: Option<String>,
}

/// `staff.sign_in_failures` (`sign_in_guard.rs`, `audit_sign_in_failures`): refusals of one
/// client address in one window that were counted rather than audited one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSignInFailures {
    /// The client address (`0.0.0.0` for newcomers counted together when the table is full).
    pub address: String,
    pub count: u64,
    /// Refusals by reason.
    pub reasons: BTreeMap<String, u64>,
    /// Refusals by sign-in method.
    pub methods: BTreeMap<String, u64>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// `staff.passkey_registered` (`staff_passkeys.rs`, `finish_staff_passkey_registration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffPasskeyRegistered {
    pub staff_id: String,
    pub passkey_id: String,
    /// The label the staff member gave it.
    pub label: String,
}

/// `staff.sso_identity_set` (`sso.rs`, `set_staff_sso_identity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSsoIdentitySet {
    pub staff_id: String,
    /// The identity registered, `null` when it was removed.
    #[serde(deserialize_with = "super::nullable")]
    pub identity: Option<String>,
}

/// `staff.token_created` (`service/staff_tokens.rs`, `create_token_for_days`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffTokenCreated {
    pub staff_id: String,
    pub label: String,
    /// The first 12 hex digits of the token's hash.
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
}

/// `staff.token_revoked` (`service/staff_tokens.rs`, `revoke_token_by_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffTokenRevoked {
    pub staff_id: String,
    /// The first 12 hex digits of the token's hash.
    pub token_id: String,
}

/// `staff.tokens_revoked` (`service/staff_tokens.rs`, `revoke_staff_tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffTokensRevoked {
    pub staff_id: String,
    /// How many tokens were revoked.
    pub revoked: u64,
}
