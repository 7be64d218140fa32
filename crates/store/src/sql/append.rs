//! Appending audit entries after the sequencer's head: canonical bodies, chain hashes, the Merkle
//! tree's new stored hashes (reading the ones it needs from a cache, else from the table), all
//! with multi-row inserts, and the sequencer row once. Every failure is an audit failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Postgres, Row, Sqlite, Type};

use super::codec::corrupt;
use super::sequencer::{Head, Sequencer};
use crate::audit::{AuditRecord, canonical_body, chain, leaf_hash};
use crate::{Hash, NewAuditEntry, Result, StoreError, time_text};

/// Rows per multi-row insert: well under SQLite's and PostgreSQL's bind-parameter limits.
const ROWS_PER_INSERT: usize = 200;

fn audit_unavailable(e: impl Display) -> StoreError {
    StoreError::AuditUnavailable(e.to_string())
}

/// `($1, $2), ($3, $4), ...`: `rows` rows of `columns` placeholders each, numbered from `$1`.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let row = (1..=columns)
                .map(|column| format!("${}", columns * row + column))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stored hashes appending `body` at `index` adds to the Merkle tree, as rows to insert;
/// they also go into `cache`, where the next appends read them.
fn new_stored_hashes(
    index: u64,
    body: &str,
    cache: &mut BTreeMap<u64, Hash>,
) -> Result<Vec<(i64, String)>> {
    let new_hashes = deskgate_audit::stored_hashes_for_append(index, body.as_bytes(), &*cache)
        .map_err(audit_unavailable)?;
    let first = deskgate_audit::stored_hash_count(index).map_err(audit_unavailable)?;
    let mut rows = Vec::new();
    for (at, hash) in (first..).zip(new_hashes) {
        rows.push((i64::try_from(at).map_err(corrupt)?, hash.to_hex()));
        cache.insert(at, hash);
    }
    Ok(rows)
}

/// The record of entry `index` with `body`, chained after `head`, which moves past it.
fn chain_record(head: &mut Head, index: u64, body: String) -> AuditRecord {
    let leaf = leaf_hash(body.as_bytes());
    head.chain = chain(&head.chain, &leaf);
    head.size += 1;
    AuditRecord {
        index,
        body,
        leaf_hash: hex::encode(leaf),
        chain_hash: hex::encode(head.chain),
    }
}

/// Keeps in `cache` only what the next append reads: the right edge of the tree.
fn keep_right_edge(head: &Head, cache: &mut BTreeMap<u64, Hash>) -> Result<()> {
    let next = u64::try_from(head.size).map_err(corrupt)?;
    let keep: BTreeSet<u64> = deskgate_audit::append_reads(next)
        .map_err(audit_unavailable)?
        .into_iter()
        .collect();
    cache.retain(|k, _| keep.contains(k));
    Ok(())
}

impl AuditAppend for Sqlite {}
impl AuditAppend for Postgres {}

/// The audit append, written once: both backends take these default methods as they are.
pub(super) trait AuditAppend: Sequencer
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'q> Self::Arguments<'q>: IntoArguments<'q, Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<&'q str>: Encode<'q, Self>,
    for<'q> String: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    usize: ColumnIndex<Self::Row>,
{
    /// Appends `entries` after `head`, which moves past them, and returns their records.
    async fn append_entries(
        tx: &mut Self::Connection,
        entries: &[&NewAuditEntry],
        head: &mut Head,
        cache: &mut BTreeMap<u64, Hash>,
    ) -> Result<Vec<AuditRecord>> {
        let mut records = Vec::with_capacity(entries.len());
        let mut hash_rows: Vec<(i64, String)> = Vec::new();
        for entry in entries {
            let index = u64::try_from(head.size).map_err(corrupt)?;
            let body = canonical_body(index, entry);
            Self::load_missing_hashes(tx, index, cache).await?;
            hash_rows.extend(new_stored_hashes(index, &body, cache)?);
            records.push(chain_record(head, index, body));
        }
        Self::insert_stored_hashes(tx, &hash_rows).await?;
        Self::insert_log_rows(tx, entries, &records).await?;
        if !records.is_empty() {
            Self::advance_head(tx, head)
                .await
                .map_err(audit_unavailable)?;
            keep_right_edge(head, cache)?;
        }
        Ok(records)
    }

    /// Reads into `cache` the stored hashes that appending at `index` needs and it lacks.
    async fn load_missing_hashes(
        tx: &mut Self::Connection,
        index: u64,
        cache: &mut BTreeMap<u64, Hash>,
    ) -> Result<()> {
        let needed: Vec<u64> = deskgate_audit::append_reads(index)
            .map_err(audit_unavailable)?
            .into_iter()
            .filter(|i| !cache.contains_key(i))
            .collect();
        if needed.is_empty() {
            return Ok(());
        }
        let list = needed
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let rows = sqlx::query(&format!(
            "SELECT idx, hash FROM audit_hashes WHERE idx IN ({list})"
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(audit_unavailable)?;
        for r in rows {
            let idx: i64 = r.try_get(0)?;
            let text: String = r.try_get(1)?;
            cache.insert(
                u64::try_from(idx).map_err(corrupt)?,
                Hash::from_hex(&text).map_err(corrupt)?,
            );
        }
        Ok(())
    }

    async fn insert_stored_hashes(tx: &mut Self::Connection, rows: &[(i64, String)]) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values = placeholders(chunk.len(), 2);
            let sql = format!("INSERT INTO audit_hashes (idx, hash) VALUES {values}");
            let mut q = sqlx::query::<Self>(&sql);
            for (idx, hash) in chunk {
                q = q.bind(*idx).bind(hash);
            }
            q.execute(&mut *tx).await.map_err(audit_unavailable)?;
        }
        Ok(())
    }

    /// One `audit_log` row per record; `entries` and `records` are in step.
    async fn insert_log_rows(
        tx: &mut Self::Connection,
        entries: &[&NewAuditEntry],
        records: &[AuditRecord],
    ) -> Result<()> {
        let chunks = records
            .chunks(ROWS_PER_INSERT)
            .zip(entries.chunks(ROWS_PER_INSERT));
        for (records, entries) in chunks {
            let values = placeholders(records.len(), 7);
            let sql = format!(
                "INSERT INTO audit_log (idx, time, case_id, event, body, leaf_hash, chain_hash) \
                 VALUES {values}"
            );
            let mut q = sqlx::query::<Self>(&sql);
            for (record, entry) in records.iter().zip(entries) {
                q = q
                    .bind(i64::try_from(record.index).map_err(corrupt)?)
                    .bind(time_text(entry.time))
                    .bind(entry.case_id.as_deref())
                    .bind(entry.event.name())
                    .bind(&record.body)
                    .bind(&record.leaf_hash)
                    .bind(&record.chain_hash);
            }
            q.execute(&mut *tx).await.map_err(audit_unavailable)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    /// The statements keep the exact text they were written with before.
    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(0, 2), "");
        assert_eq!(placeholders(1, 2), "($1, $2)");
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(
            placeholders(2, 7),
            "($1, $2, $3, $4, $5, $6, $7), ($8, $9, $10, $11, $12, $13, $14)"
        );
    }
}
