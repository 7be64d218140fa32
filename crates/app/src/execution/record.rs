//! The record of an execution, the same for every executor: its start (the grant consumed,
//! committed before an executor acts outside the store), its success (probation, the secret
//! handed over, the "this was not me" link, notices to every contact of record,
//! `execution.performed`) and its failure (`execution.failed`, the case `failed`).

use chrono::{DateTime, Duration, Utc};
use deskgate_audit::AuditEvent;
use deskgate_audit::event::{
    BuiltinExecution, ConnectorExecution, DeliveryFailed, ExecutionFailed, ExecutionPerformed,
    ExecutionResult, ExecutionStarted, NoticeSent, UndeliveredMessage,
};
use deskgate_core::{Case, PolicyPin, Subject};
use deskgate_store::{Actor, CaseWrite, Change, NewAuditEntry, system_actor};
use serde_json::json;

use super::executor::{Failure, Performed, RemoteOutcome};
use super::plan::ExecutionPlan;
use crate::delivery::Message;
use crate::error::{AppError, AppResult};
use crate::notices;
use crate::service::Service;
use crate::views::ExecutionView;

/// An execution whose grant is consumed (in memory, and in the store once started), waiting for
/// its executor's outcome.
pub(super) struct Underway {
    /// The executor's name, for the record.
    pub executor: &'static str,
    /// The agent who executes.
    pub who: Actor,
    pub case: Case,
    /// The stored version of the case the next commit replaces.
    pub version: i64,
    /// The subject before the action.
    pub subject: Subject,
    pub plan: ExecutionPlan,
    pub grant_id: String,
    /// The bundle's decision to execute.
    pub pin: PolicyPin,
    /// Entries that commit with the next change: the grant's consumption, until it is committed.
    pub pending: Vec<NewAuditEntry>,
    pub now: DateTime<Utc>,
}

/// The change that writes `case` over `version` with `audit`.
fn updating(case: &Case, version: i64, audit: Vec<NewAuditEntry>) -> Change {
    Change {
        case: Some(CaseWrite::Update {
            case: case.clone(),
            expected_version: version,
        }),
        audit,
        ..Change::default()
    }
}

impl Service {
    /// Before an executor acts outside the store: commits the grant's consumption and
    /// `execution.started`. If this commit fails, nothing happens.
    pub(super) async fn record_start(&self, run: &mut Underway) -> AppResult<()> {
        let started = AuditEvent::ExecutionStarted(ExecutionStarted {
            connector: run.executor.to_owned(),
            action: run.case.action.to_string(),
            subject_id: run.case.subject_id.clone(),
        });
        let started = self.entry(&system_actor(), Some(&run.case.id), started);
        let mut audit = std::mem::take(&mut run.pending);
        audit.push(self.pinned(started, &run.pin));
        self.store
            .commit(updating(&run.case, run.version, audit))
            .await?;
        run.version += 1;
        Ok(())
    }

    /// Ends the case `failed` and records why; returns the error for the caller.
    pub(super) async fn record_failure(&self, run: Underway, failure: &Failure) -> AppError {
        let Underway {
            executor,
            who,
            mut case,
            version,
            now,
            ..
        } = run;
        let reason = format!("the {executor} connector failed: {failure}");
        tracing::warn!(case = %case.id, action = %case.action, error = %failure, "execution failed");
        if let Err(e) = case.fail_execution(reason.clone(), now) {
            return e.into();
        }
        let failed = AuditEvent::ExecutionFailed(ExecutionFailed {
            connector: executor.to_owned(),
            action: case.action.to_string(),
            subject_id: case.subject_id.clone(),
            error: failure.to_string(),
            agent_id: who.id,
        });
        let failed = self.entry(&system_actor(), Some(&case.id), failed);
        if let Err(e) = self
            .store
            .commit(updating(&case, version, vec![failed]))
            .await
        {
            // The grant is spent and the case stays in flight; it can only be ended now.
            tracing::error!(case = %case.id, error = %e, "the failed execution could not be recorded");
            return e.into();
        }
        AppError::upstream_failed(
            "execution_failed",
            format!(
                "{reason}. The grant is spent and the case is failed; open a new case to try again."
            ),
        )
        .with_details(json!({ "case_id": case.id, "case_state": case.state }))
    }

    /// Commits the successful execution (the case executed, the subject on probation,
    /// credentials, the "this was not me" and retrieval links, `execution.performed`), then
    /// hands the secret over and sends the notices.
    pub(super) async fn record_success(
        &self,
        run: Underway,
        performed: Performed,
    ) -> AppResult<ExecutionView> {
        let Underway {
            executor,
            who,
            mut case,
            version,
            subject,
            plan,
            grant_id,
            pin,
            pending,
            now,
        } = run;
        let Performed {
            subject: mut next,
            mut credentials,
            secret,
            result,
            remote,
        } = performed;
        // Further high-risk changes escalate while the subject is on probation.
        next.probation_until = Some(now + Duration::hours(case.requirements.probation_hours));
        let handover = self.hand_over(&case, &plan, secret, now)?;
        case.complete_execution(now)?;
        let manager = match &subject.manager {
            Some(m) => self.store.subject(m).await?,
            None => None,
        };
        let (not_me_url, not_me_link) = self.not_me_link(&case, &subject.id, now);
        let notices =
            notices::after_execution(&case, &subject, &next, manager.as_ref(), &not_me_url, now);
        let event = performed_event(executor, &who, &case, result.clone(), remote, &notices);
        let entry = self.entry(&system_actor(), Some(&case.id), event);
        let mut audit = pending;
        audit.push(self.pinned(Self::on_evidence(entry, &case), &pin));
        credentials.extend(handover.credential);
        // A contact the case put on record depends on what the case's evidence depended on.
        credentials.extend(self.contact_provenance_record(&case, &next, now).await?);
        self.store
            .commit(Change {
                subjects: vec![next],
                credentials,
                new_links: std::iter::once(not_me_link).chain(handover.link).collect(),
                ..updating(&case, version, audit)
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, connector = executor, "recovery executed");
        let messages = handover.message.iter().chain(notices.iter());
        let failures = self.deliver_after_execution(&case.id, messages).await?;
        Ok(ExecutionView {
            case: self.view(&case).await?,
            grant_id,
            result: serde_json::to_value(&result).unwrap_or_default(),
            notices_sent: notices.len(),
            delivery_failures: failures,
        })
    }

    /// Sends what an execution produced (the secret, the pickup link, the notices), after its
    /// commit. The action has happened, so a failed delivery does not undo it; the audit trail
    /// records who was not told. Returns how many messages failed.
    async fn deliver_after_execution(
        &self,
        case_id: &str,
        messages: impl Iterator<Item = &Message>,
    ) -> AppResult<usize> {
        let mut failures = Vec::new();
        for message in messages {
            if let Err(e) = self.delivery.send(message).await {
                tracing::warn!(case = %case_id, kind = %message.kind, error = %e, "delivery failed after execution");
                failures.push(UndeliveredMessage {
                    kind: message.kind.clone(),
                    channel: message.channel.clone(),
                });
            }
        }
        let count = failures.len();
        if count > 0 {
            let failed = AuditEvent::DeliveryFailed(DeliveryFailed { messages: failures });
            self.store
                .commit(Change {
                    audit: vec![self.entry(&system_actor(), Some(case_id), failed)],
                    ..Change::default()
                })
                .await?;
        }
        Ok(count)
    }
}

/// `execution.performed`: what changed and who was told. The built-in directory's entry has no
/// backend id, agent or sessions; a connector's has them.
fn performed_event(
    executor: &'static str,
    who: &Actor,
    case: &Case,
    result: ExecutionResult,
    remote: Option<RemoteOutcome>,
    notices: &[Message],
) -> AuditEvent {
    let notices = notices
        .iter()
        .map(|n| NoticeSent {
            channel: n.channel.clone(),
            subject_id: n.subject_id.clone(),
        })
        .collect();
    let connector = executor.to_owned();
    let (action, subject_id) = (case.action.to_string(), case.subject_id.clone());
    let tier = case.subject_tier.to_string();
    AuditEvent::ExecutionPerformed(match remote {
        None => ExecutionPerformed::Builtin(BuiltinExecution {
            connector,
            action,
            subject_id,
            tier,
            result,
            notices,
        }),
        Some(remote) => ExecutionPerformed::Connector(ConnectorExecution {
            connector,
            backend_id: remote.backend_id,
            action,
            subject_id,
            tier,
            agent_id: who.id.clone(),
            result,
            sessions: remote.sessions,
            notices,
        }),
    })
}
