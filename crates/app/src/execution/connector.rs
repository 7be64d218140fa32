//! Any [`Connector`] (LDAP / Active Directory) as an executor, acting with Deskgate's own service
//! credentials. The first call confirms the subject where the directory keeps it, right before
//! acting: every execution touches the directory, even one whose action (a factor reset) lives
//! in Deskgate's store, so none runs on a stale view while the directory is down. Sessions are
//! revoked afterwards where the connector can; the record says when it could not.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deskgate_audit::event::{
    ExecutionResult, PasswordResetResult, ServiceCredentialResult, UnlockResult,
};
use deskgate_connectors::{Connector, ConnectorError};
use deskgate_core::{Action, Contact, ContactKind, Subject, SubjectStatus};

use super::builtin::{contact_changed, delivered_to, reset_factors, unverified};
use super::executor::{Executor, Failure, Performed, RemoteOutcome};
use super::plan::{ExecutionPlan, SecretRoute, Step, required_operations};

/// The adapter over the configured connector.
pub(crate) struct ConnectorExecutor<'a>(pub &'a dyn Connector);

#[async_trait]
impl Executor for ConnectorExecutor<'_> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn performs(&self, action: Action) -> bool {
        let supported = self.0.supported_operations();
        required_operations(action)
            .iter()
            .all(|operation| supported.contains(operation))
    }

    fn acts_outside(&self) -> bool {
        true
    }

    async fn perform(
        &self,
        plan: &ExecutionPlan,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<Performed, Failure> {
        let connector = self.0;
        let entry = connector.lookup(&subject.id).await?;
        let mut performed = act(connector, plan, subject, now).await?;
        let sessions = match connector.revoke_sessions(&subject.id).await {
            Ok(()) => "revoked".to_owned(),
            Err(ConnectorError::Unsupported { .. }) => "not supported by this connector".to_owned(),
            // The action itself happened; the record says the sessions may live on.
            Err(e) => format!("not revoked: {e}"),
        };
        performed.remote = Some(RemoteOutcome {
            backend_id: entry.backend_id,
            sessions,
        });
        Ok(performed)
    }
}

/// Calls the connector for the planned step and records its effect on Deskgate's copy of the
/// subject. Generated secrets come from the directory; Deskgate stores no copy.
async fn act(
    connector: &dyn Connector,
    plan: &ExecutionPlan,
    subject: &Subject,
    now: DateTime<Utc>,
) -> Result<Performed, ConnectorError> {
    let id = subject.id.as_str();
    let mut next = subject.clone();
    let (secret, result) = match &plan.step {
        Step::ResetPassword => {
            let secret = connector.reset_password(id).await?;
            let result = ExecutionResult::PasswordReset(PasswordResetResult {
                credential: "password".to_owned(),
                must_change: true,
                delivered_to: delivered_to(plan),
            });
            (Some(secret), result)
        }
        // Factors live in Deskgate's store, not in the directory.
        Step::ResetFactors { pass_lifetime } => {
            return Ok(reset_factors(plan, subject, *pass_lifetime, now));
        }
        Step::Unlock => {
            connector.unlock(id).await?;
            next.status = SubjectStatus::Active;
            let result = ExecutionResult::Unlock(UnlockResult {
                was_locked: subject.status == SubjectStatus::Locked,
                status: SubjectStatus::Active.to_string(),
            });
            (None, result)
        }
        Step::ChangeContact { kind, value } => {
            connector.change_contact(id, *kind, value).await?;
            replace_first(&mut next, *kind, unverified(*kind, value, now));
            (None, contact_changed(subject, &next, *kind))
        }
        Step::RotateServiceCredential => {
            let secret = connector.rotate_service_credential(id).await?;
            let (owner, to) = match &plan.secret_to {
                SecretRoute::SealedPickup { owner, .. } => (
                    owner.id.clone(),
                    owner.contact(ContactKind::Email).map(Contact::masked),
                ),
                _ => (String::new(), None),
            };
            let result = ExecutionResult::ServiceCredentialRotated(ServiceCredentialResult {
                credential: "service_secret".to_owned(),
                delivered_to_owner: owner,
                delivered_to: to,
            });
            (Some(secret), result)
        }
    };
    Ok(Performed {
        subject: next,
        credentials: Vec::new(),
        secret,
        result,
        remote: None,
    })
}

/// Replaces the first contact of `kind` (the one the directory's change replaced) with `new`;
/// other contacts of that kind (a desk phone) stay.
fn replace_first(subject: &mut Subject, kind: ContactKind, new: Contact) {
    match subject.contacts.iter_mut().find(|c| c.kind == kind) {
        Some(c) => *c = new,
        None => subject.contacts.push(new),
    }
}
