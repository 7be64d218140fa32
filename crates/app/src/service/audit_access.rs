//! Reading the audit log: checkpoints, entries and proofs, for auditors and security officers.

use super::*;

impl Service {
    pub async fn audit_checkpoint(&self, caller: &Staff, cut: bool) -> AppResult<Value> {
        ensure_auditor(caller)?;
        let latest = match self.store.latest_checkpoint().await? {
            Some(c) if !cut => c,
            _ => self.audit.cut(self.now()).await.map_err(log_error)?,
        };
        Ok(json!({
            "size": latest.size, "root": latest.root, "note": latest.note,
            "created_at": latest.created_at, "verifier_key": self.audit.verifier_key(),
        }))
    }

    pub async fn audit_entries(&self, caller: &Staff, start: u64, end: u64) -> AppResult<Value> {
        ensure_auditor(caller)?;
        if end < start || end - start > 1000 {
            return Err(AppError::invalid(
                "need start <= end and at most 1000 entries per call",
            ));
        }
        let size = self.store.audit_size().await?;
        let records = self.store.audit_entries(start, end.min(size)).await?;
        Ok(json!({
            "size": size,
            "entries": records.iter().map(|r| json!({
                "index": r.index, "canonical": r.body, "leaf_hash": r.leaf_hash,
            })).collect::<Vec<_>>(),
        }))
    }

    pub async fn audit_inclusion(&self, caller: &Staff, index: u64, size: u64) -> AppResult<Value> {
        ensure_auditor(caller)?;
        let (proof, root) = self.audit.inclusion(index, size).await.map_err(log_error)?;
        let leaf = self.store.audit_entries(index, index + 1).await?;
        Ok(json!({
            "index": index, "size": size, "root": root.to_hex(),
            "leaf_hash": leaf.first().map(|r| r.leaf_hash.clone()),
            "proof": proof.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        }))
    }

    pub async fn audit_consistency(&self, caller: &Staff, from: u64, to: u64) -> AppResult<Value> {
        ensure_auditor(caller)?;
        let (proof, old_root, new_root) =
            self.audit.consistency(from, to).await.map_err(log_error)?;
        Ok(json!({
            "from": from, "to": to, "old_root": old_root.to_hex(), "new_root": new_root.to_hex(),
            "proof": proof.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        }))
    }
}
