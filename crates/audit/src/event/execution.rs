//! Details of grant and execution events, and of deliveries that failed after an execution.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `grant.minted` (`service.rs`, `approval_entries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantMinted {
    pub grant_id: String,
    /// The agent the grant names.
    pub agent_id: String,
    pub subject_id: String,
    pub tier: String,
    pub action: String,
    pub expires_at: DateTime<Utc>,
}

/// `grant.consumed` (`execution.rs`, `perform_allowed`): the same keys for the built-in
/// directory and a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConsumed {
    pub grant_id: String,
    pub agent_id: String,
    pub subject_id: String,
    pub tier: String,
    pub action: String,
}

/// `grant.expired` (`service/execution.rs`, `execute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantExpired {
    /// The case's grant id, `null` when the case held none.
    #[serde(deserialize_with = "super::nullable")]
    pub grant_id: Option<String>,
}

/// `execution.started` (`execution/record.rs`, `record_start`): the grant is consumed and the
/// connector is about to act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionStarted {
    /// The connector's name (`ldap`, `active_directory`...).
    pub connector: String,
    pub action: String,
    pub subject_id: String,
}

/// `execution.failed` (`execution/record.rs`, `record_failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionFailed {
    pub connector: String,
    pub action: String,
    pub subject_id: String,
    /// The connector's error.
    pub error: String,
    /// The staff id of the agent who executed.
    pub agent_id: String,
}

/// `execution.abandoned` (`service/execution.rs`, `abandon_execution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionAbandoned {
    /// The staff member's stated reason for ending the case.
    pub reason: String,
    /// When the grant was consumed and the connector call began.
    pub grant_consumed_at: DateTime<Utc>,
}

/// `execution.performed`: the built-in directory and a connector write different keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExecutionPerformed {
    /// By the built-in directory (`execution/record.rs`, `performed_event`).
    Builtin(BuiltinExecution),
    /// By a connector (`execution/record.rs`, `performed_event`).
    Connector(ConnectorExecution),
}

impl ExecutionPerformed {
    /// The action performed.
    pub fn action(&self) -> &str {
        match self {
            Self::Builtin(e) => &e.action,
            Self::Connector(e) => &e.action,
        }
    }

    /// The subject acted on.
    pub fn subject_id(&self) -> &str {
        match self {
            Self::Builtin(e) => &e.subject_id,
            Self::Connector(e) => &e.subject_id,
        }
    }

    /// The subject's tier.
    pub fn tier(&self) -> &str {
        match self {
            Self::Builtin(e) => &e.tier,
            Self::Connector(e) => &e.tier,
        }
    }

    /// What changed.
    pub fn result(&self) -> &ExecutionResult {
        match self {
            Self::Builtin(e) => &e.result,
            Self::Connector(e) => &e.result,
        }
    }
}

/// An execution by the built-in directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinExecution {
    /// Always `builtin`.
    pub connector: String,
    pub action: String,
    pub subject_id: String,
    pub tier: String,
    pub result: ExecutionResult,
    /// The notices sent afterwards, one per contact of record (and the manager).
    pub notices: Vec<NoticeSent>,
}

/// An execution by a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorExecution {
    pub connector: String,
    /// The backend's name for the entry (an LDAP DN, an IdP object id).
    pub backend_id: String,
    pub action: String,
    pub subject_id: String,
    pub tier: String,
    /// The staff id of the agent who executed.
    pub agent_id: String,
    pub result: ExecutionResult,
    /// Whether the subject's sessions were revoked, in words (`revoked`, `not supported by
    /// this connector`, `not revoked: ...`).
    pub sessions: String,
    pub notices: Vec<NoticeSent>,
}

/// A notice sent after an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeSent {
    /// `email` or `sms`.
    pub channel: String,
    /// Whose contact it went to.
    pub subject_id: String,
}

/// What an execution changed, one shape per action (`execution/builtin.rs` and
/// `execution/connector.rs`); never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExecutionResult {
    /// `password_reset`.
    PasswordReset(PasswordResetResult),
    /// `mfa_reset` and `factor_rebind`.
    FactorsRemoved(FactorsRemovedResult),
    /// `account_unlock`.
    Unlock(UnlockResult),
    /// `email_change` and `phone_change`.
    ContactChanged(ContactChangedResult),
    /// `service_credential_rotate`.
    ServiceCredentialRotated(ServiceCredentialResult),
}

/// A temporary password went to a trusted contact of record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetResult {
    /// Always `password`.
    pub credential: String,
    /// Always `true`.
    pub must_change: bool,
    /// The contact it went to, masked.
    pub delivered_to: String,
}

/// Every authenticator was removed and a temporary access pass went to a trusted contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorsRemovedResult {
    /// `kind:id` of each authenticator removed.
    pub removed_authenticators: Vec<String>,
    /// When the pass expires. Written with `to_rfc3339` (`+00:00` and every fractional digit),
    /// not as the other timestamps of the log, so it is kept as the text written.
    pub temporary_access_pass_expires_at: String,
    /// The contact the pass went to, masked.
    pub delivered_to: String,
}

/// An account unlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockResult {
    pub was_locked: bool,
    /// The subject's status afterwards.
    pub status: String,
}

/// A contact of record replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactChangedResult {
    /// `email` or `phone`.
    pub contact: String,
    /// The old contact, masked, `null` when there was none.
    #[serde(deserialize_with = "super::nullable")]
    pub old: Option<String>,
    /// The new contact, masked.
    #[serde(deserialize_with = "super::nullable")]
    pub new: Option<String>,
}

/// A service credential rotated, handed over through a retrieval link to the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCredentialResult {
    /// Always `service_secret`.
    pub credential: String,
    /// The owner who receives the retrieval link.
    pub delivered_to_owner: String,
    /// The owner's email of record, masked. Always a string from the built-in directory; a
    /// connector execution writes `null` when the owner has no email of record.
    #[serde(deserialize_with = "super::nullable")]
    pub delivered_to: Option<String>,
}

/// `delivery.failed` (`execution/record.rs`, `deliver_after_execution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFailed {
    pub messages: Vec<UndeliveredMessage>,
}

/// A message that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndeliveredMessage {
    /// The message kind (`recovery_notice`, `temporary_password`...).
    pub kind: String,
    pub channel: String,
}
