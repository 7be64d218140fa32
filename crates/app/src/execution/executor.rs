//! The one interface every executor implements: the built-in directory (Deskgate's own store)
//! and the adapter over any [`Connector`]. An executor carries out a plan and reports what
//! changed; the pipeline around it consumes the grant, records the outcome and hands secrets
//! over, the same way for each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deskgate_audit::event::ExecutionResult;
use deskgate_connectors::{ConnectorError, GeneratedSecret};
use deskgate_core::{Action, Subject};
use deskgate_store::Credential;

use super::plan::ExecutionPlan;

/// Carries out planned executions.
#[async_trait]
pub(crate) trait Executor: Send + Sync {
    /// The name `execution.*` entries carry: `builtin`, or the connector's (`openldap`, ...).
    fn name(&self) -> &'static str;

    /// Whether `action` can be carried out here. A case is opened, and an action offered, only
    /// when it can.
    fn performs(&self, action: Action) -> bool;

    /// Whether acting reaches a system outside Deskgate's store, whose outcome is known only
    /// after the call. Then the grant's consumption and `execution.started` commit before the
    /// call, and a failure ends the case `failed` with `execution.failed`. Otherwise the change
    /// is data committed with the grant's consumption in one commit, and a failure refuses the
    /// execution with the grant intact.
    fn acts_outside(&self) -> bool;

    /// Carries out `plan` on `subject` (as synced right before, with a connector).
    async fn perform(
        &self,
        plan: &ExecutionPlan,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<Performed, Failure>;
}

/// What an executor did.
#[derive(Debug)]
pub(crate) struct Performed {
    /// The subject as Deskgate records it afterwards (the record adds probation).
    pub subject: Subject,
    /// Credentials Deskgate stores: hashes only.
    pub credentials: Vec<Credential>,
    /// The secret the step generated, handed over along the plan's route.
    pub secret: Option<GeneratedSecret>,
    /// What changed, for `execution.performed` and the agent; never the secret.
    pub result: ExecutionResult,
    /// Where a directory outside Deskgate acted.
    pub remote: Option<RemoteOutcome>,
}

/// What a directory outside Deskgate reports of a successful execution.
#[derive(Debug)]
pub(crate) struct RemoteOutcome {
    /// The backend's own name for the entry (an LDAP DN, an IdP object id).
    pub backend_id: String,
    /// What became of the subject's sessions, in words (`revoked`, `not supported by this
    /// connector`, `not revoked: ...`).
    pub sessions: String,
}

/// Why an executor did not carry out its plan.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Nothing was changed, as the built-in directory refuses (hashing the new secret failed).
    #[error("{0}")]
    Refused(&'static str),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] ConnectorError),
}
