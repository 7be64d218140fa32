//! Every connector call, timed and counted as Prometheus series (through the `metrics` facade):
//! `deskgate_connector_duration_seconds` and `deskgate_connector_errors_total`, by connector and
//! operation. Labels never carry the subject or the directory's answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use deskgate_connectors::{
    Connector, ConnectorError, DirectoryEntry, GeneratedSecret, Operation, TemporaryAccessPass,
};
use deskgate_core::ContactKind;
use metrics::{counter, histogram};

/// Wraps the connector the service acts through.
pub(crate) struct Metered(pub(crate) Arc<dyn Connector>);

/// `connector`, timed: wrapped once, whichever way it was configured.
pub(crate) fn metered(connector: Arc<dyn Connector>) -> Arc<dyn Connector> {
    Arc::new(Metered(connector))
}

impl Metered {
    async fn timed<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        let (connector, operation) = (self.0.name(), operation.as_str());
        let started = Instant::now();
        let result = call.await;
        histogram!("deskgate_connector_duration_seconds", "connector" => connector, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            counter!("deskgate_connector_errors_total", "connector" => connector, "operation" => operation)
                .increment(1);
        }
        result
    }
}

#[async_trait]
impl Connector for Metered {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn supported_operations(&self) -> &'static [Operation] {
        self.0.supported_operations()
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.0.check().await
    }

    async fn lookup(&self, subject_id: &str) -> Result<DirectoryEntry, ConnectorError> {
        self.timed(Operation::Lookup, self.0.lookup(subject_id))
            .await
    }

    async fn reset_password(&self, subject_id: &str) -> Result<GeneratedSecret, ConnectorError> {
        self.timed(Operation::ResetPassword, self.0.reset_password(subject_id))
            .await
    }

    async fn remove_factors(&self, subject_id: &str) -> Result<(), ConnectorError> {
        self.timed(Operation::RemoveFactors, self.0.remove_factors(subject_id))
            .await
    }

    async fn unlock(&self, subject_id: &str) -> Result<(), ConnectorError> {
        self.timed(Operation::Unlock, self.0.unlock(subject_id))
            .await
    }

    async fn change_contact(
        &self,
        subject_id: &str,
        kind: ContactKind,
        value: &str,
    ) -> Result<(), ConnectorError> {
        let call = self.0.change_contact(subject_id, kind, value);
        self.timed(Operation::ChangeContact, call).await
    }

    async fn issue_temporary_access_pass(
        &self,
        subject_id: &str,
        lifetime: chrono::Duration,
    ) -> Result<TemporaryAccessPass, ConnectorError> {
        let call = self.0.issue_temporary_access_pass(subject_id, lifetime);
        self.timed(Operation::IssueTemporaryAccessPass, call).await
    }

    async fn revoke_sessions(&self, subject_id: &str) -> Result<(), ConnectorError> {
        self.timed(
            Operation::RevokeSessions,
            self.0.revoke_sessions(subject_id),
        )
        .await
    }

    async fn rotate_service_credential(
        &self,
        subject_id: &str,
    ) -> Result<GeneratedSecret, ConnectorError> {
        let call = self.0.rotate_service_credential(subject_id);
        self.timed(Operation::RotateServiceCredential, call).await
    }
}
