//! Alerts to the security contacts: one way to send them, whatever raised them (break-glass, a
//! photo ID that is not the subject's, failed verifications, a manager who does not recognise a
//! request). An alert that cannot be delivered is logged; what raised it stands.

use super::*;

impl Service {
    /// Sends `body` as a `kind` alert about `case_id` to every security contact.
    pub(super) async fn alert_security(
        &self,
        kind: &str,
        subject_id: &str,
        case_id: &str,
        body: String,
    ) {
        for to in &self.config.security_contacts {
            let alert = Message {
                to: to.clone(),
                channel: "email".to_owned(),
                kind: kind.to_owned(),
                subject_id: subject_id.to_owned(),
                case_id: Some(case_id.to_owned()),
                body: body.clone(),
                secret: None,
            };
            if let Err(e) = self.delivery.send(&alert).await {
                tracing::error!(error = %e, kind, "security alert not delivered");
            }
        }
    }
}
