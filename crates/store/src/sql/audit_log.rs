//! Reads of the audit log, its stored Merkle hashes and its signed checkpoints (and the one write
//! outside [`Store::commit`](crate::Store::commit): saving a checkpoint).

use std::collections::BTreeMap;

use sqlx::Row;

use super::codec::{corrupt, parse_time};
use super::{Backend, SqlStore};
use crate::audit::AuditRecord;
use crate::{Hash, Result, StoreError, StoredCheckpoint, time_text};

/// Audit log rows (`idx`, `body`, `leaf_hash`, `chain_hash`) as records.
fn audit_rows<R: Row>(rows: Vec<R>) -> Result<Vec<AuditRecord>>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|r| {
            Ok(AuditRecord {
                index: u64::try_from(r.try_get::<i64, _>("idx")?).map_err(corrupt)?,
                body: r.try_get("body")?,
                leaf_hash: r.try_get("leaf_hash")?,
                chain_hash: r.try_get("chain_hash")?,
            })
        })
        .collect()
}

pub(super) async fn audit_size(store: &SqlStore) -> Result<u64> {
    store
        .count("SELECT size FROM audit_head WHERE id = 1", &[])
        .await
}

pub(super) async fn audit_entries(
    store: &SqlStore,
    start: u64,
    end: u64,
) -> Result<Vec<AuditRecord>> {
    let start = i64::try_from(start).map_err(corrupt)?;
    let end = i64::try_from(end).map_err(corrupt)?;
    on_pool!(store, |p| {
        let rows = sqlx::query(
            "SELECT idx, body, leaf_hash, chain_hash FROM audit_log \
             WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        )
        .bind(start)
        .bind(end)
        .fetch_all(p)
        .await?;
        audit_rows(rows)
    })
}

pub(super) async fn audit_for_case(store: &SqlStore, case_id: &str) -> Result<Vec<AuditRecord>> {
    on_pool!(store, |p| {
        let rows = sqlx::query(
            "SELECT idx, body, leaf_hash, chain_hash FROM audit_log \
             WHERE case_id = $1 ORDER BY idx",
        )
        .bind(case_id)
        .fetch_all(p)
        .await?;
        audit_rows(rows)
    })
}

pub(super) async fn audit_hashes(store: &SqlStore, indexes: &[u64]) -> Result<Vec<Hash>> {
    let mut found: BTreeMap<u64, Hash> = BTreeMap::new();
    // Chunked so a large proof never builds an oversized statement.
    for chunk in indexes.chunks(500) {
        let list = chunk
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!("SELECT idx, hash FROM audit_hashes WHERE idx IN ({list})");
        let rows: Vec<(i64, String)> = on_pool!(store, |p| {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>>>()?
        });
        for (idx, text) in rows {
            found.insert(
                u64::try_from(idx).map_err(corrupt)?,
                Hash::from_hex(&text).map_err(corrupt)?,
            );
        }
    }
    indexes
        .iter()
        .map(|i| {
            found
                .get(i)
                .copied()
                .ok_or_else(|| StoreError::NotFound(format!("stored hash {i}")))
        })
        .collect()
}

pub(super) async fn save_checkpoint(store: &SqlStore, c: &StoredCheckpoint) -> Result<()> {
    let size = i64::try_from(c.size).map_err(corrupt)?;
    on_pool!(store, |p| {
        sqlx::query(
            "INSERT INTO audit_checkpoints (size, root, note, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING",
        )
        .bind(size)
        .bind(&c.root)
        .bind(&c.note)
        .bind(time_text(c.created_at))
        .execute(p)
        .await?;
    });
    Ok(())
}

pub(super) async fn latest_checkpoint(store: &SqlStore) -> Result<Option<StoredCheckpoint>> {
    let row: Option<(i64, String, String, String)> = on_pool!(store, |p| {
        match sqlx::query(
            "SELECT size, root, note, created_at FROM audit_checkpoints \
             ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(p)
        .await?
        {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
            None => None,
        }
    });
    row.map(|(size, root, note, created)| {
        Ok(StoredCheckpoint {
            size: u64::try_from(size).map_err(corrupt)?,
            root,
            note,
            created_at: parse_time(&created)?,
        })
    })
    .transpose()
}
