//! Execution: who may execute, the grant checked, and the bundle's final word with the evidence
//! collected. What follows an allowed execution (the plan, the grant consumed, the directory or
//! a connector acting, the record) is the one pipeline of [`crate::execution`].

use deskgate_audit::AuditEvent;
use deskgate_audit::event::{ExecutionAbandoned, GrantExpired, PolicyVerdict};

use super::*;
use crate::execution::Allowed;

impl Service {
    /// Consumes the case's grant and performs the action through the configured connector
    /// (the built-in directory unless `connector` says otherwise).
    pub async fn execute(&self, caller: &Staff, case_id: &str) -> AppResult<ExecutionView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let stored = self.sync_before_execution(stored).await?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        // The grant is checked before the bundle is asked: an expired one ends the case.
        match case.clone().begin_execution(&caller.id, now) {
            Ok(_) => {}
            Err(deskgate_core::CaseError::GrantExpired) => {
                return Err(self.expire_grant(caller, &stored, now).await);
            }
            Err(e) => return Err(e.into()),
        }
        let subject = self.required_subject(&case.subject_id).await?;
        // Cedar is the final gate, asked with the evidence actually collected.
        let decision = self
            .decide_on_case(Stage::Execute, caller, &stored.case, &subject)
            .await?;
        let pin = policy_gate::pin(&decision, now);
        if decision.outcome != Outcome::Allow {
            let escalate = decision.outcome == Outcome::Escalate;
            return Err(self
                .refuse_execution(caller, &stored, &pin, escalate, now)
                .await);
        }
        // As before the pipeline was shared: a connector execution records the case as
        // stored, without the executing agent among its participants.
        let case = if self.connector.is_some() {
            stored.case.clone()
        } else {
            case
        };
        self.perform_allowed(Allowed {
            caller,
            case,
            version: stored.version,
            subject,
            pin,
            now,
        })
        .await
    }

    /// Ends the case whose grant expired before it was used; returns the error for the caller.
    async fn expire_grant(
        &self,
        caller: &Staff,
        stored: &StoredCase,
        now: DateTime<Utc>,
    ) -> AppError {
        let mut expired = stored.case.clone();
        if let Err(e) = expired.expire("the grant expired before it was used".to_owned(), now) {
            return e.into();
        }
        let event = AuditEvent::GrantExpired(GrantExpired {
            grant_id: stored.case.grant.as_ref().map(|g| g.id.clone()),
        });
        let entry = self.entry(&actor(caller), Some(&stored.case.id), event);
        match self
            .store
            .commit(updating(&expired, stored.version, vec![entry]))
            .await
        {
            Ok(_) => deskgate_core::CaseError::GrantExpired.into(),
            Err(e) => e.into(),
        }
    }

    /// Records the bundle's refusal (`execution.refused`) or escalation (`case.escalated`) of
    /// the execution; returns the error for the caller.
    async fn refuse_execution(
        &self,
        caller: &Staff,
        stored: &StoredCase,
        pin: &PolicyPin,
        escalate: bool,
        now: DateTime<Utc>,
    ) -> AppError {
        let mut refused = stored.case.clone();
        if escalate && let Err(e) = refused.escalate(pin.reasons.join("; "), now) {
            return e.into();
        }
        refused.record_decision(pin.clone());
        let verdict = PolicyVerdict {
            reasons: pin.reasons.clone(),
            policy_ids: pin.policy_ids.clone(),
        };
        let event = if escalate {
            AuditEvent::CaseEscalated(verdict)
        } else {
            AuditEvent::ExecutionRefused(verdict)
        };
        let entry = self.entry(&actor(caller), Some(&stored.case.id), event);
        let change = updating(&refused, stored.version, vec![self.pinned(entry, pin)]);
        if let Err(e) = self.store.commit(change).await {
            return e.into();
        }
        if escalate {
            AppError::conflict(
                "escalated",
                format!(
                    "the case was escalated to a security officer: {}",
                    pin.reasons.join("; ")
                ),
            )
            .with_details(json!({ "reasons": pin.reasons, "policy_ids": pin.policy_ids }))
        } else {
            policy_refusal(pin)
        }
    }

    /// A deny or cancel of a case whose connector call is in flight. While the call may still
    /// answer it is refused: the outcome, notices and probation land first. A call that has
    /// given no outcome for [`ABANDON_IN_FLIGHT_MINUTES`] (the process died mid-call) is ended
    /// `failed`, the outcome unknown, so the case does not hang forever.
    pub(super) async fn abandon_execution(
        &self,
        caller: &Staff,
        stored: StoredCase,
        consumed_at: DateTime<Utc>,
        reason: &str,
    ) -> AppResult<CaseView> {
        let now = self.now();
        if now < consumed_at + Duration::minutes(ABANDON_IN_FLIGHT_MINUTES) {
            return Err(deskgate_core::CaseError::ExecutionInFlight.into());
        }
        let mut case = stored.case.clone();
        case.fail_execution(
            format!("the connector's outcome was never recorded; ended by staff: {reason}"),
            now,
        )?;
        let event = AuditEvent::ExecutionAbandoned(ExecutionAbandoned {
            reason: reason.to_owned(),
            grant_consumed_at: consumed_at,
        });
        let entry = self.entry(&actor(caller), Some(&case.id), event);
        self.store
            .commit(updating(&case, stored.version, vec![entry]))
            .await?;
        self.view(&case).await
    }
}
