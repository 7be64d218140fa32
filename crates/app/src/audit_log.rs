//! The audit log as the server serves it: the checkpoint signer (key under the data directory),
//! checkpoints cut after commit, and inclusion / consistency proofs read from the stored hashes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deskgate_audit::{CheckpointSigner, Hash};
use deskgate_store::{Store, StoreError, StoredCheckpoint};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditLogError {
    #[error("signing key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit tree: {0}")]
    Tree(#[from] deskgate_audit::TreeError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] deskgate_audit::CheckpointError),
    #[error("{0}")]
    Range(String),
}

pub struct AuditLog {
    store: Arc<dyn Store>,
    signer: CheckpointSigner,
    /// Serialises checkpoint cutting so two cuts of one size never race.
    cut_lock: tokio::sync::Mutex<()>,
}

/// Loads the signer key from `path`, generating it (mode 0600) on first start.
pub fn load_or_create_signer(path: &Path, origin: &str) -> Result<CheckpointSigner, AuditLogError> {
    let key_err = |reason: String| AuditLogError::Key {
        path: path.display().to_string(),
        reason,
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        return CheckpointSigner::from_signer_key_string(text.trim())
            .map_err(|e| key_err(e.to_string()));
    }
    let signer = CheckpointSigner::generate(origin).map_err(|e| key_err(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| key_err(e.to_string()))?;
    std::io::Write::write_all(&mut file, signer.to_signer_key_string().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_err(e.to_string()))?;
    Ok(signer)
}

impl AuditLog {
    pub fn new(store: Arc<dyn Store>, signer: CheckpointSigner) -> Self {
        Self {
            store,
            signer,
            cut_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The verifier key in note `vkey` form: `name+hexid+base64(type||pubkey)`.
    pub fn verifier_key(&self) -> &str {
        self.signer.verifier_key_string()
    }

    async fn hashes(&self, indexes: Vec<u64>) -> Result<HashMap<u64, Hash>, AuditLogError> {
        let values = self.store.audit_hashes(&indexes).await?;
        Ok(indexes.into_iter().zip(values).collect())
    }

    pub async fn root(&self, size: u64) -> Result<Hash, AuditLogError> {
        let map = self.hashes(deskgate_audit::tree_root_reads(size)?).await?;
        Ok(deskgate_audit::tree_root(size, &map)?)
    }

    /// Signs the current tree unless the latest checkpoint already covers it.
    pub async fn cut(&self, now: DateTime<Utc>) -> Result<StoredCheckpoint, AuditLogError> {
        let _guard = self.cut_lock.lock().await;
        let size = self.store.audit_size().await?;
        if let Some(latest) = self.store.latest_checkpoint().await?
            && latest.size >= size
        {
            return Ok(latest);
        }
        let root = self.root(size).await?;
        let note = self.signer.sign(size, root)?;
        let checkpoint = StoredCheckpoint {
            size,
            root: root.to_hex(),
            note,
            created_at: now,
        };
        self.store.save_checkpoint(&checkpoint).await?;
        Ok(checkpoint)
    }

    fn check_range(index: u64, size: u64, log_size: u64) -> Result<(), AuditLogError> {
        if size == 0 || index >= size || size > log_size {
            return Err(AuditLogError::Range(format!(
                "need index < size <= {log_size}, got index {index}, size {size}"
            )));
        }
        Ok(())
    }

    pub async fn inclusion(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Vec<Hash>, Hash), AuditLogError> {
        Self::check_range(index, size, self.store.audit_size().await?)?;
        let map = self
            .hashes(deskgate_audit::inclusion_proof_reads(index, size)?)
            .await?;
        let proof = deskgate_audit::inclusion_proof(index, size, &map)?;
        Ok((proof, self.root(size).await?))
    }

    pub async fn consistency(
        &self,
        from: u64,
        to: u64,
    ) -> Result<(Vec<Hash>, Hash, Hash), AuditLogError> {
        let log_size = self.store.audit_size().await?;
        if from == 0 || from > to || to > log_size {
            return Err(AuditLogError::Range(format!(
                "need 0 < from <= to <= {log_size}, got from {from}, to {to}"
            )));
        }
        let map = self
            .hashes(deskgate_audit::consistency_proof_reads(from, to)?)
            .await?;
        let proof = deskgate_audit::consistency_proof(from, to, &map)?;
        Ok((proof, self.root(from).await?, self.root(to).await?))
    }

    /// Cuts a checkpoint every `every` while entries arrive; runs until the task is dropped.
    pub fn spawn_checkpointer(self: Arc<Self>, every: Duration, clock: crate::Clock) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = self.cut(clock.now()).await {
                    metrics::counter!("deskgate_audit_checkpoint_failures_total").increment(1);
                    tracing::warn!(error = %e, "cutting an audit checkpoint failed");
                }
            }
        });
    }
}
