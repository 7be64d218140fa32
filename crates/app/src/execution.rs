//! One execution pipeline for the built-in directory and every connector.
//!
//! Once the bundle allowed a case's execution (`service/execution.rs`), the pipeline:
//! 1. settles the [`ExecutionPlan`] (what happens, where any generated secret goes); a case that
//!    cannot be carried out is refused here with its grant intact;
//! 2. consumes the grant. An [`Executor`] that acts outside Deskgate's store (a connector)
//!    commits the consumption and `execution.started` first, so the grant is spent before the
//!    directory is touched; the built-in directory's change is data, committed with the
//!    consumption in one commit;
//! 3. lets the executor carry the plan out;
//! 4. records the outcome ([`record`]): on success the case `executed`, probation, the secret
//!    handed over, a "this was not me" link, notices to every contact of record and
//!    `execution.performed`, all in one commit, then the deliveries; on a directory's failure the
//!    case `failed` with `execution.failed`.
//!
//! The same executor decides which actions a case may be opened for
//! ([`Service::offered_actions`]): a connector performs an action only when it supports every
//! operation the action needs ([`required_operations`]).

mod builtin;
mod connector;
mod executor;
mod handover;
pub mod plan;
mod record;

use chrono::{DateTime, Utc};
use deskgate_audit::AuditEvent;
use deskgate_audit::event::GrantConsumed;
use deskgate_core::{Action, ApiId, Case, PolicyPin, Staff, Subject};

pub use plan::{ExecutionPlan, PlanRefusal, SecretRoute, Step, required_operations};

use builtin::BuiltinDirectory;
use connector::ConnectorExecutor;
use executor::Executor;
use record::Underway;

use crate::error::{AppError, AppResult};
use crate::service::{Service, actor};
use crate::views::ExecutionView;

/// An execution the bundle allowed.
pub(crate) struct Allowed<'a> {
    pub caller: &'a Staff,
    /// The case as it is to be recorded, its grant not yet consumed.
    pub case: Case,
    /// The stored version of the case.
    pub version: i64,
    /// The subject, as synced right before.
    pub subject: Subject,
    /// The bundle's decision to execute.
    pub pin: PolicyPin,
    pub now: DateTime<Utc>,
}

fn refused(message: impl Into<String>) -> AppError {
    AppError::invalid_as("execution_refused", message)
}

impl Service {
    /// The executor of this deployment: the configured connector, else the built-in directory.
    fn executor(&self) -> Box<dyn Executor + '_> {
        match &self.connector {
            Some(connector) => Box::new(ConnectorExecutor(connector.as_ref())),
            None => Box::new(BuiltinDirectory),
        }
    }

    /// The actions this deployment can carry out, in the vocabulary's order: with a connector,
    /// those whose operations it supports. A case is opened only for one of these.
    pub fn offered_actions(&self) -> Vec<Action> {
        let executor = self.executor();
        Action::all()
            .iter()
            .copied()
            .filter(|action| executor.performs(*action))
            .collect()
    }

    /// Refuses `action` when this deployment's directory cannot carry it out. Changes nothing.
    pub(crate) fn ensure_action_offered(&self, action: Action) -> AppResult<()> {
        let executor = self.executor();
        if executor.performs(action) {
            return Ok(());
        }
        Err(AppError::invalid_as(
            "action_unsupported",
            format!(
                "the {} directory cannot perform {}: no case can be opened for it",
                executor.name(),
                action.api_id()
            ),
        ))
    }

    /// Carries out an allowed execution through this deployment's executor and records it.
    pub(crate) async fn perform_allowed(&self, allowed: Allowed<'_>) -> AppResult<ExecutionView> {
        let executor = self.executor();
        let Allowed {
            caller,
            mut case,
            version,
            subject,
            pin,
            now,
        } = allowed;
        let requester = self.owner_asking(&case, &subject).await?;
        let plan = ExecutionPlan::for_case(&case, &subject, requester.as_ref(), now)
            .map_err(|e| refused(e.to_string()))?;
        let grant = case.begin_execution(&caller.id, now)?;
        case.record_decision(pin.clone());
        let who = actor(caller);
        let consumed = AuditEvent::GrantConsumed(GrantConsumed {
            grant_id: grant.id.clone(),
            agent_id: grant.agent_id,
            subject_id: grant.subject_id,
            tier: case.subject_tier.to_string(),
            action: grant.action.to_string(),
        });
        let consumed = Self::on_evidence(self.entry(&who, Some(&case.id), consumed), &case);
        let mut run = Underway {
            executor: executor.name(),
            who,
            case,
            version,
            subject,
            plan,
            grant_id: grant.id,
            pin,
            pending: vec![consumed],
            now,
        };
        if executor.acts_outside() {
            self.record_start(&mut run).await?;
        }
        match executor.perform(&run.plan, &run.subject, now).await {
            Ok(performed) => self.record_success(run, performed).await,
            Err(failure) if executor.acts_outside() => {
                Err(self.record_failure(run, &failure).await)
            }
            Err(failure) => Err(refused(failure.to_string())),
        }
    }

    /// For a service credential rotation, the owner who asked (the case's requester, when an
    /// owner of the non-human subject): the rotated secret goes to them.
    async fn owner_asking(&self, case: &Case, subject: &Subject) -> AppResult<Option<Subject>> {
        match &case.requester {
            Some(id)
                if case.action == Action::ServiceCredentialRotate
                    && subject.is_non_human()
                    && subject.owners.contains(id) =>
            {
                Ok(self.store.subject(id).await?)
            }
            _ => Ok(None),
        }
    }
}
