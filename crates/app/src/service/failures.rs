//! Failed verifications across a case: after each wrong answer or rejected check, the case is
//! escalated to a security officer with its risk raised when the failures reach the bundle's
//! limit, and the security contacts are alerted. The core decides; this writes it down.

use deskgate_core::FailureEscalation;

use super::*;

/// An escalation for failures, ready to commit with the answer that caused it.
pub(super) struct Escalated {
    pub entry: NewAuditEntry,
    pub escalation: FailureEscalation,
}

impl Service {
    /// Escalates `case` when its failures reached the next multiple of the bundle's limit, and
    /// returns the audit entry to commit with the answer; the alert goes out after the commit
    /// ([`Self::alert_failures`]).
    pub(super) fn escalate_after_failures(
        &self,
        who: &Actor,
        case: &mut Case,
    ) -> Option<Escalated> {
        let limit = self
            .bundle()
            .thresholds()
            .failed_verifications
            .escalate_after;
        let escalation = case.escalate_after_failures(limit, self.now())?;
        let event = AuditEvent::CaseEscalatedAfterFailures(event::EscalatedAfterFailures {
            failures: u64::from(escalation.failures),
            limit: u64::from(escalation.limit),
            risk_before: escalation.risk_before.to_string(),
            risk_after: escalation.risk_after.to_string(),
            exhausted_methods: case
                .exhausted_methods()
                .iter()
                .map(ToString::to_string)
                .collect(),
            alerted: self.config.security_contacts.len() as u64,
        });
        Some(Escalated {
            entry: self.entry(who, Some(&case.id), event),
            escalation,
        })
    }

    /// Tells every security contact that a case was escalated for failed verifications. An alert
    /// that cannot be delivered is logged; the escalation stands.
    pub(super) async fn alert_failures(&self, case: &Case, escalated: &Option<Escalated>) {
        let Some(Escalated { escalation, .. }) = escalated else {
            return;
        };
        let body = format!(
            "Case {} [{}] ({} for {}) reached {} wrong answers or rejected checks. It is escalated to \
             a security officer with a denial proposed; the risk is now {}.",
            case.reference(),
            case.id,
            crate::labels::in_sentence(&case.action),
            case.subject_id,
            escalation.failures,
            escalation.risk_after
        );
        self.alert_security(
            "failed_verifications_alert",
            &case.subject_id,
            &case.id,
            body,
        )
        .await;
    }
}
