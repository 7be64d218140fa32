//! The [`Connector`] trait: what Deskgate asks of an identity provider when it executes a granted
//! action, with the entry it reads back ([`DirectoryEntry`]) and the errors it can get.
//!
//! Connectors act with Deskgate's own service credentials; staff never hold reset rights. Every
//! mutating call is an admin action on one subject and carries no secret chosen by a person:
//! passwords and passes are generated inside the connector and returned as [`GeneratedSecret`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deskgate_core::{ContactKind, SubjectStatus, Tier};

use crate::secret::{GeneratedSecret, TemporaryAccessPass};

/// One operation of the [`Connector`] trait, named for errors, logs and capability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    Lookup,
    ResetPassword,
    RemoveFactors,
    Unlock,
    ChangeContact,
    IssueTemporaryAccessPass,
    RevokeSessions,
    RotateServiceCredential,
}

impl Operation {
    /// Every operation, in trait order.
    pub const ALL: [Operation; 8] = [
        Self::Lookup,
        Self::ResetPassword,
        Self::RemoveFactors,
        Self::Unlock,
        Self::ChangeContact,
        Self::IssueTemporaryAccessPass,
        Self::RevokeSessions,
        Self::RotateServiceCredential,
    ];

    /// The stable identifier used in errors and log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::ResetPassword => "reset_password",
            Self::RemoveFactors => "remove_factors",
            Self::Unlock => "unlock",
            Self::ChangeContact => "change_contact",
            Self::IssueTemporaryAccessPass => "issue_temporary_access_pass",
            Self::RevokeSessions => "revoke_sessions",
            Self::RotateServiceCredential => "rotate_service_credential",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contact of record as the backend stores it. The backend knows neither when it was verified
/// nor when it changed; the application joins this with its own history to build a
/// [`deskgate_core::Contact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryContact {
    pub kind: ContactKind,
    pub value: String,
}

/// What a backend knows about a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The id Deskgate looked the subject up by.
    pub subject_id: String,
    /// The backend's own name for the entry (an LDAP DN, an IdP object id).
    pub backend_id: String,
    pub display_name: String,
    /// The tier the subject's groups map to through the configured group -> tier map.
    pub tier: Tier,
    pub status: SubjectStatus,
    /// Group names as the backend reports them.
    pub groups: Vec<String>,
    pub contacts: Vec<DirectoryContact>,
    /// The manager's subject id, when the backend records one that resolves.
    pub manager: Option<String>,
}

/// Why a connector call failed. Messages name the subject and the operation, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    #[error("the {connector} connector cannot {operation}: {reason}")]
    Unsupported {
        connector: &'static str,
        operation: Operation,
        reason: &'static str,
    },
    #[error("subject {subject_id:?} was not found in the directory")]
    NotFound { subject_id: String },
    #[error("subject id {subject_id:?} matches {count} directory entries; refusing to guess")]
    Ambiguous { subject_id: String, count: usize },
    #[error("invalid subject id: {reason}")]
    InvalidSubjectId { reason: &'static str },
    #[error("invalid {kind} value: {reason}")]
    InvalidContact {
        kind: ContactKind,
        reason: &'static str,
    },
    #[error("the directory refused Deskgate's service credentials (result code {code}: {message})")]
    ServiceBindFailed { code: u32, message: String },
    #[error("the directory refused {operation} (result code {code}: {message})")]
    Rejected {
        operation: Operation,
        code: u32,
        message: String,
    },
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        operation: Operation,
        after: Duration,
    },
    #[error("could not talk to the directory during {operation}")]
    Unavailable {
        operation: Operation,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An identity provider Deskgate can act on. Object safe: the application holds
/// `Box<dyn Connector>` / `Arc<dyn Connector>` chosen from configuration.
///
/// Operations a backend cannot perform return [`ConnectorError::Unsupported`] and are absent
/// from [`Connector::supported_operations`], so policy can refuse to offer them up front.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Short name of the backend kind (`"ldap"`, `"active_directory"`, ...), for errors and logs.
    fn name(&self) -> &'static str;

    /// The operations this connector performs; every other one returns `Unsupported`.
    fn supported_operations(&self) -> &'static [Operation];

    /// Proves the backend is usable now (reachable, Deskgate's own credentials accepted) without
    /// reading or touching any subject: what `deskgate config check` runs. A backend with nothing
    /// to reach passes.
    async fn check(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Reads the subject's groups (mapped to a tier), status and contacts of record.
    async fn lookup(&self, subject_id: &str) -> Result<DirectoryEntry, ConnectorError>;

    /// An admin password reset: the connector generates the password, sets it, and marks it as
    /// one the subject must change at next sign-in. The agent never sees it.
    async fn reset_password(&self, subject_id: &str) -> Result<GeneratedSecret, ConnectorError>;

    /// Removes every enrolled authenticator (passkeys, TOTP, push devices).
    async fn remove_factors(&self, subject_id: &str) -> Result<(), ConnectorError>;

    /// Clears a lockout so the subject can sign in again.
    async fn unlock(&self, subject_id: &str) -> Result<(), ConnectorError>;

    /// Replaces the contact of record of `kind`. The application has the new contact confirm a
    /// code before calling this.
    async fn change_contact(
        &self,
        subject_id: &str,
        kind: ContactKind,
        value: &str,
    ) -> Result<(), ConnectorError>;

    /// Issues a backend-native temporary access pass valid for `lifetime`.
    async fn issue_temporary_access_pass(
        &self,
        subject_id: &str,
        lifetime: chrono::Duration,
    ) -> Result<TemporaryAccessPass, ConnectorError>;

    /// Ends the subject's sessions and refresh tokens at the backend.
    async fn revoke_sessions(&self, subject_id: &str) -> Result<(), ConnectorError>;

    /// Replaces a non-human identity's credential with a generated one. Unlike
    /// [`Connector::reset_password`] it does not force a change: nobody signs in interactively.
    async fn rotate_service_credential(
        &self,
        subject_id: &str,
    ) -> Result<GeneratedSecret, ConnectorError>;
}
