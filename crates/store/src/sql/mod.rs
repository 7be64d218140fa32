//! The SQL implementation of [`Store`] for SQLite and PostgreSQL. Queries are written once with
//! `$N` placeholders, which both backends accept, and run on whichever pool is configured.
//!
//! [`connect`] opens a pool; [`directory`], [`cases`] and [`audit_log`] hold the queries outside
//! [`Store::commit`]; [`codec`] turns column text and JSON documents into values and back. The
//! commit path is below.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deskgate_core::{ApiId, Case, ContactKind, Staff, Subject};
use sqlx::Row;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditRecord, canonical_body, chain, leaf_hash, parse_hash};
use crate::{
    ApiToken, CaseFilter, CaseWrite, Change, Credential, Hash, LinkToken, NewAuditEntry, Result,
    SsoStaff, StaffAccess, Store, StoreError, StoredCase, StoredCheckpoint, time_text,
};
use codec::{corrupt, json};

/// Runs `$body` with `$p` bound to whichever pool is configured; each arm is type-checked for its
/// own backend, so one query text serves both.
macro_rules! on_pool {
    ($self:expr, |$p:ident| $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($p) => $body,
            Backend::Postgres($p) => $body,
        }
    };
}

mod audit_log;
mod cases;
mod codec;
mod connect;
mod directory;

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub struct SqlStore {
    backend: Backend,
    /// SQLite has one writer: commits go to a single task that group-commits whatever is queued
    /// (one fsync for many changes, each in its own savepoint). PostgreSQL writers serialise on the
    /// locked sequencer row instead.
    sqlite_writer: Option<mpsc::Sender<Job>>,
}

/// One queued commit and where to answer once it is durable (or refused).
struct Job {
    change: Change,
    reply: oneshot::Sender<Result<Vec<AuditRecord>>>,
}

/// Most changes one group commit takes; bounds the latency of the first one queued.
const MAX_GROUP: usize = 512;

/// Stored Merkle hashes the next appends will read (the tree's right edge), kept by the single
/// SQLite writer between group commits so an append reads nothing back from disk. `next_size` is
/// the log size the cache was built for: if another process appended meanwhile, it is dropped.
#[derive(Default)]
struct Frontier {
    next_size: i64,
    hashes: BTreeMap<u64, Hash>,
}

/// The SQLite writer: takes the first queued change and everything else already waiting, applies
/// each change's writes in its own savepoint (so a stale version or a used link refuses that change
/// alone), appends all accepted changes' audit entries with multi-row inserts, and commits once.
/// Callers are answered only after COMMIT. If the audit append fails, nothing in the group is
/// written: no change without its audit entries.
async fn sqlite_writer(pool: SqlitePool, mut jobs: mpsc::Receiver<Job>) {
    let mut frontier = Frontier::default();
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = match group_commit(&pool, &batch, &mut frontier).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                frontier = Frontier::default();
                tracing::error!(error = %e, "group commit failed; nothing in it was written");
                let audit = matches!(e, StoreError::AuditUnavailable(_));
                let reason = e.to_string();
                batch
                    .iter()
                    .map(|_| {
                        Err(if audit {
                            StoreError::AuditUnavailable(reason.clone())
                        } else {
                            StoreError::Commit(reason.clone())
                        })
                    })
                    .collect()
            }
        };
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

async fn group_commit(
    pool: &SqlitePool,
    batch: &[Job],
    frontier: &mut Frontier,
) -> Result<Vec<Result<Vec<AuditRecord>>>> {
    let mut tx = pool.begin().await?;
    // A write first makes this transaction the writer before it reads the sequencer, so no other
    // process can append between the read and the write.
    sqlx::query("UPDATE audit_head SET size = size WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let mut head = read_head_sqlite(&mut tx).await?;
    if head.size != frontier.next_size {
        frontier.hashes.clear();
    }
    let mut outcomes: Vec<Option<Result<Vec<AuditRecord>>>> = Vec::with_capacity(batch.len());
    for job in batch {
        if !job.change.has_writes() {
            outcomes.push(None);
            continue;
        }
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
        match writes_sqlite(&mut savepoint, &job.change).await {
            Ok(()) => {
                savepoint.commit().await?;
                outcomes.push(None);
            }
            Err(e) => {
                savepoint.rollback().await?;
                outcomes.push(Some(Err(e)));
            }
        }
    }
    let entries: Vec<&NewAuditEntry> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_none())
        .flat_map(|(job, _)| job.change.audit.iter())
        .collect();
    let mut records = append_sqlite(&mut tx, &entries, &mut head, &mut frontier.hashes)
        .await?
        .into_iter();
    tx.commit().await?;
    frontier.next_size = head.size;
    Ok(batch
        .iter()
        .zip(outcomes)
        .map(|(job, outcome)| {
            outcome.unwrap_or_else(|| Ok(records.by_ref().take(job.change.audit.len()).collect()))
        })
        .collect())
}

fn subject_email(s: &Subject) -> Option<String> {
    s.contact(ContactKind::Email)
        .map(|c| c.value.to_lowercase())
}

/// The sequencer row as read inside a writer's transaction.
struct Head {
    size: i64,
    chain: [u8; 32],
}

/// Rows per multi-row insert: well under SQLite's and PostgreSQL's bind-parameter limits.
const ROWS_PER_INSERT: usize = 200;

/// The non-audit writes of one change, instantiated per backend.
macro_rules! writes_fn {
    ($name:ident, $conn:ty) => {
        async fn $name(tx: &mut $conn, change: &Change) -> Result<()> {
            match &change.case {
                Some(CaseWrite::Insert(case)) => {
                    sqlx::query(
                        "INSERT INTO cases (id, subject_id, agent_id, state, action, opened_at, \
                         updated_at, executed_at, version, doc, caller_number) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)",
                    )
                    .bind(&case.id)
                    .bind(&case.subject_id)
                    .bind(&case.agent_id)
                    .bind(case.state.api_id())
                    .bind(case.action.api_id())
                    .bind(time_text(case.opened_at))
                    .bind(time_text(case.updated_at))
                    .bind(case.executed_at.map(time_text))
                    .bind(json(case)?)
                    .bind(case.caller_number.as_deref())
                    .execute(&mut *tx)
                    .await?;
                }
                Some(CaseWrite::Update {
                    case,
                    expected_version,
                }) => {
                    let done = sqlx::query(
                        "UPDATE cases SET state = $1, updated_at = $2, executed_at = $3, \
                         version = version + 1, doc = $4 WHERE id = $5 AND version = $6",
                    )
                    .bind(case.state.api_id())
                    .bind(time_text(case.updated_at))
                    .bind(case.executed_at.map(time_text))
                    .bind(json(case)?)
                    .bind(&case.id)
                    .bind(*expected_version)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict(format!(
                            "case {} changed concurrently",
                            case.id
                        )));
                    }
                }
                None => {}
            }
            for s in &change.subjects {
                sqlx::query(
                    "INSERT INTO subjects (id, display_name, email, tier, status, doc, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
                     display_name = excluded.display_name, email = excluded.email, \
                     tier = excluded.tier, status = excluded.status, doc = excluded.doc, \
                     updated_at = excluded.updated_at",
                )
                .bind(&s.id)
                .bind(&s.display_name)
                .bind(subject_email(s))
                .bind(s.tier.api_id())
                .bind(s.status.api_id())
                .bind(json(s)?)
                .bind(time_text(Utc::now()))
                .execute(&mut *tx)
                .await?;
            }
            for l in &change.new_links {
                sqlx::query(
                    "INSERT INTO link_tokens (token_hash, kind, case_id, verification_id, \
                     respondent, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                )
                .bind(&l.token_hash)
                .bind(&l.kind)
                .bind(&l.case_id)
                .bind(&l.verification_id)
                .bind(&l.respondent)
                .bind(time_text(l.created_at))
                .bind(time_text(l.expires_at))
                .execute(&mut *tx)
                .await?;
            }
            for (hash, at) in &change.use_links {
                let done = sqlx::query(
                    "UPDATE link_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
                )
                .bind(time_text(*at))
                .bind(hash)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict("the link was already used".to_owned()));
                }
            }
            for (subject_id, kind, at) in &change.consume_credentials {
                let done = sqlx::query(
                    "UPDATE credentials SET used_at = $1 \
                     WHERE subject_id = $2 AND kind = $3 AND used_at IS NULL",
                )
                .bind(time_text(*at))
                .bind(subject_id)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(
                        "the credential was already used".to_owned(),
                    ));
                }
            }
            for r in &change.revoke_handovers {
                let at = time_text(r.at);
                sqlx::query(
                    "UPDATE link_tokens SET used_at = $1 WHERE used_at IS NULL AND \
                     (respondent = $2 OR case_id IN (SELECT id FROM cases WHERE subject_id = $2))",
                )
                .bind(&at)
                .bind(&r.subject_id)
                .execute(&mut *tx)
                .await?;
                for kind in &r.credential_kinds {
                    sqlx::query(
                        "UPDATE credentials SET used_at = $1, hash = '' \
                         WHERE subject_id = $2 AND kind = $3 AND used_at IS NULL",
                    )
                    .bind(&at)
                    .bind(&r.subject_id)
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for swap in &change.swap_credentials {
                let c = &swap.credential;
                let done = sqlx::query(
                    "UPDATE credentials SET hash = $1, created_at = $2, expires_at = $3, \
                     used_at = $4 WHERE subject_id = $5 AND kind = $6 AND hash = $7 \
                     AND used_at IS NULL",
                )
                .bind(&c.hash)
                .bind(time_text(c.created_at))
                .bind(c.expires_at.map(time_text))
                .bind(c.used_at.map(time_text))
                .bind(&c.subject_id)
                .bind(&c.kind)
                .bind(&swap.expected_hash)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(format!(
                        "the {} changed concurrently or was already used",
                        c.kind
                    )));
                }
            }
            for (subject_id, hash, at) in &change.spend_recovery_codes {
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $1 \
                     WHERE subject_id = $2 AND code_hash = $3 AND used_at IS NULL",
                )
                .bind(time_text(*at))
                .bind(subject_id)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(
                        "the recovery code was already used".to_owned(),
                    ));
                }
            }
            for codes in &change.recovery_codes {
                sqlx::query("DELETE FROM recovery_codes WHERE subject_id = $1")
                    .bind(&codes.subject_id)
                    .execute(&mut *tx)
                    .await?;
                for hash in &codes.hashes {
                    sqlx::query(
                        "INSERT INTO recovery_codes (subject_id, code_hash, issued_at, used_at) \
                         VALUES ($1, $2, $3, NULL)",
                    )
                    .bind(&codes.subject_id)
                    .bind(hash)
                    .bind(time_text(codes.issued_at))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            // Atomic because writers are serialised: SQLite has one writer, and on PostgreSQL
            // every commit holds the sequencer row and a lock per destination (see `commit`).
            for slot in &change.send_slots {
                let sent: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM code_sends WHERE contact_hash = $1 AND sent_at >= $2",
                )
                .bind(&slot.contact_hash)
                .bind(time_text(slot.since))
                .fetch_one(&mut *tx)
                .await?;
                let sent = u32::try_from(sent).unwrap_or(u32::MAX);
                if sent >= slot.limit {
                    return Err(StoreError::LimitReached { sent });
                }
                sqlx::query("INSERT INTO code_sends (contact_hash, sent_at) VALUES ($1, $2)")
                    .bind(&slot.contact_hash)
                    .bind(time_text(slot.at))
                    .execute(&mut *tx)
                    .await?;
            }
            for (vendor, id, at) in &change.webhook_deliveries {
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (vendor, delivery_id, received_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (vendor, delivery_id) DO NOTHING",
                )
                .bind(vendor)
                .bind(id)
                .bind(time_text(*at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(format!(
                        "webhook delivery {id} was already processed"
                    )));
                }
            }
            for (hash, at, expires_at) in &change.spent_sign_ins {
                // Kept only as long as the attempt itself could live: older ones guard nothing.
                sqlx::query("DELETE FROM sign_in_spent WHERE expires_at < $1")
                    .bind(time_text(*at))
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(
                    "INSERT INTO sign_in_spent (attempt_hash, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (attempt_hash) DO NOTHING",
                )
                .bind(hash)
                .bind(time_text(*expires_at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(
                        "the sign-in attempt was already used".to_owned(),
                    ));
                }
            }
            for c in &change.credentials {
                sqlx::query(
                    "INSERT INTO credentials (subject_id, kind, hash, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_id, kind) DO UPDATE SET \
                     hash = excluded.hash, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at, used_at = excluded.used_at",
                )
                .bind(&c.subject_id)
                .bind(&c.kind)
                .bind(&c.hash)
                .bind(time_text(c.created_at))
                .bind(c.expires_at.map(time_text))
                .bind(c.used_at.map(time_text))
                .execute(&mut *tx)
                .await?;
            }
            for access in &change.staff_access {
                let (staff_id, done) = match access {
                    StaffAccess::SsoIdentity { staff_id, identity } => {
                        let done = sqlx::query("UPDATE staff SET sso_identity = $1 WHERE id = $2")
                            .bind(identity.as_deref())
                            .bind(staff_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| match e.as_database_error() {
                                Some(d) if d.is_unique_violation() => StoreError::Conflict(
                                    "another staff member signs in with that identity".to_owned(),
                                ),
                                _ => StoreError::from(e),
                            })?;
                        (staff_id, done)
                    }
                    StaffAccess::Disable { staff_id, at } => {
                        let at = time_text(*at);
                        let done = sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2")
                            .bind(&at)
                            .bind(staff_id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(
                            "UPDATE api_tokens SET revoked_at = $1 \
                             WHERE staff_id = $2 AND revoked_at IS NULL",
                        )
                        .bind(&at)
                        .bind(staff_id)
                        .execute(&mut *tx)
                        .await?;
                        (staff_id, done)
                    }
                    StaffAccess::Enable { staff_id } => {
                        let done = sqlx::query("UPDATE staff SET disabled_at = NULL WHERE id = $1")
                            .bind(staff_id)
                            .execute(&mut *tx)
                            .await?;
                        (staff_id, done)
                    }
                };
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound(format!("staff member {staff_id}")));
                }
            }
            Ok(())
        }
    };
}

/// Appends audit entries after `head`: canonical bodies, chain hashes, the Merkle tree's new
/// stored hashes (reading the ones it needs from `cache`, else from the table), all with
/// multi-row inserts, and the sequencer row once. Every failure is an audit failure.
macro_rules! append_fn {
    ($name:ident, $db:ty, $conn:ty) => {
        async fn $name(
            tx: &mut $conn,
            entries: &[&NewAuditEntry],
            head: &mut Head,
            cache: &mut BTreeMap<u64, Hash>,
        ) -> Result<Vec<AuditRecord>> {
            let audit_err =
                |e: &dyn std::fmt::Display| StoreError::AuditUnavailable(e.to_string());
            let mut records = Vec::with_capacity(entries.len());
            let mut times = Vec::with_capacity(entries.len());
            let mut hash_rows: Vec<(i64, String)> = Vec::new();
            for entry in entries {
                let index = u64::try_from(head.size).map_err(corrupt)?;
                let body = canonical_body(index, entry);
                let needed: Vec<u64> = deskgate_audit::append_reads(index)
                    .map_err(|e| audit_err(&e))?
                    .into_iter()
                    .filter(|i| !cache.contains_key(i))
                    .collect();
                if !needed.is_empty() {
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
                    .map_err(|e| audit_err(&e))?;
                    for r in rows {
                        let idx: i64 = r.try_get(0)?;
                        let text: String = r.try_get(1)?;
                        cache.insert(
                            u64::try_from(idx).map_err(corrupt)?,
                            Hash::from_hex(&text).map_err(corrupt)?,
                        );
                    }
                }
                let new_hashes =
                    deskgate_audit::stored_hashes_for_append(index, body.as_bytes(), &*cache)
                        .map_err(|e| audit_err(&e))?;
                let first =
                    deskgate_audit::stored_hash_count(index).map_err(|e| audit_err(&e))?;
                for (at, hash) in (first..).zip(new_hashes) {
                    hash_rows.push((i64::try_from(at).map_err(corrupt)?, hash.to_hex()));
                    cache.insert(at, hash);
                }
                let leaf = leaf_hash(body.as_bytes());
                head.chain = chain(&head.chain, &leaf);
                records.push(AuditRecord {
                    index,
                    body,
                    leaf_hash: hex::encode(leaf),
                    chain_hash: hex::encode(head.chain),
                });
                times.push(time_text(entry.time));
                head.size += 1;
            }
            for chunk in hash_rows.chunks(ROWS_PER_INSERT) {
                let values = (0..chunk.len())
                    .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!("INSERT INTO audit_hashes (idx, hash) VALUES {values}");
                let mut q = sqlx::query::<$db>(&sql);
                for (idx, hash) in chunk {
                    q = q.bind(*idx).bind(hash);
                }
                q.execute(&mut *tx).await.map_err(|e| audit_err(&e))?;
            }
            for (chunk_no, chunk) in records.chunks(ROWS_PER_INSERT).enumerate() {
                let values = (0..chunk.len())
                    .map(|i| {
                        let b = 7 * i;
                        format!(
                            "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                            b + 1,
                            b + 2,
                            b + 3,
                            b + 4,
                            b + 5,
                            b + 6,
                            b + 7
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO audit_log (idx, time, case_id, event, body, leaf_hash, chain_hash) \
                     VALUES {values}"
                );
                let mut q = sqlx::query::<$db>(&sql);
                for (i, record) in chunk.iter().enumerate() {
                    let at = chunk_no * ROWS_PER_INSERT + i;
                    let entry = entries[at];
                    q = q
                        .bind(i64::try_from(record.index).map_err(corrupt)?)
                        .bind(&times[at])
                        .bind(entry.case_id.as_deref())
                        .bind(entry.event.name())
                        .bind(&record.body)
                        .bind(&record.leaf_hash)
                        .bind(&record.chain_hash);
                }
                q.execute(&mut *tx).await.map_err(|e| audit_err(&e))?;
            }
            if !records.is_empty() {
                sqlx::query("UPDATE audit_head SET size = $1, chain_hash = $2 WHERE id = 1")
                    .bind(head.size)
                    .bind(hex::encode(head.chain))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| audit_err(&e))?;
                // Keep only what the next append reads: the right edge of the tree.
                let next = u64::try_from(head.size).map_err(corrupt)?;
                let keep: std::collections::BTreeSet<u64> = deskgate_audit::append_reads(next)
                    .map_err(|e| audit_err(&e))?
                    .into_iter()
                    .collect();
                cache.retain(|k, _| keep.contains(k));
            }
            Ok(records)
        }
    };
}

macro_rules! read_head_fn {
    ($name:ident, $conn:ty, $sql:expr) => {
        async fn $name(tx: &mut $conn) -> Result<Head> {
            let row = sqlx::query($sql).fetch_one(&mut *tx).await?;
            let size: i64 = row.try_get(0)?;
            let text: String = row.try_get(1)?;
            Ok(Head {
                size,
                chain: parse_hash(0, &text).map_err(corrupt)?,
            })
        }
    };
}

writes_fn!(writes_sqlite, sqlx::SqliteConnection);
writes_fn!(writes_postgres, sqlx::PgConnection);
append_fn!(append_sqlite, sqlx::Sqlite, sqlx::SqliteConnection);
append_fn!(append_postgres, sqlx::Postgres, sqlx::PgConnection);
read_head_fn!(
    read_head_sqlite,
    sqlx::SqliteConnection,
    "SELECT size, chain_hash FROM audit_head WHERE id = 1"
);
read_head_fn!(
    read_head_postgres,
    sqlx::PgConnection,
    "SELECT size, chain_hash FROM audit_head WHERE id = 1 FOR UPDATE"
);

impl SqlStore {
    pub async fn open(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let pool = connect::sqlite(url).await?;
            let (writer, rx) = mpsc::channel(4 * MAX_GROUP);
            tokio::spawn(sqlite_writer(pool.clone(), rx));
            Ok(Self {
                backend: Backend::Sqlite(pool),
                sqlite_writer: Some(writer),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self {
                backend: Backend::Postgres(connect::postgres(url).await?),
                sqlite_writer: None,
            })
        } else {
            Err(StoreError::UnsupportedUrl(
                url.split(':').next().unwrap_or_default().to_owned(),
            ))
        }
    }

    /// The first column of every row `sql` returns, as text: a JSON document or a hash.
    async fn docs(&self, sql: &str, binds: &[&str], limit: Option<i64>) -> Result<Vec<String>> {
        on_pool!(self, |p| {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            if let Some(l) = limit {
                q = q.bind(l);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
                .collect()
        })
    }

    /// The single number `sql` returns, such as a `COUNT(*)`.
    async fn count(&self, sql: &str, binds: &[&str]) -> Result<u64> {
        let n: i64 = on_pool!(self, |p| {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_one(p).await?.try_get::<i64, _>(0)?
        });
        u64::try_from(n).map_err(corrupt)
    }
}

/// Each query lives in the module of its job; this only dispatches.
#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    async fn ping(&self) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    async fn subject(&self, id: &str) -> Result<Option<Subject>> {
        directory::subject(self, id).await
    }

    async fn search_subjects(&self, query: &str, limit: u32) -> Result<Vec<Subject>> {
        directory::search_subjects(self, query, limit).await
    }

    async fn subject_count(&self) -> Result<u64> {
        directory::subject_count(self).await
    }

    async fn upsert_staff(&self, staff: &Staff) -> Result<()> {
        directory::upsert_staff(self, staff).await
    }

    async fn staff(&self, id: &str) -> Result<Option<Staff>> {
        directory::staff(self, id).await
    }

    async fn staff_by_name(&self, name: &str) -> Result<Option<Staff>> {
        directory::staff_by_name(self, name).await
    }

    async fn list_staff(&self) -> Result<Vec<Staff>> {
        directory::list_staff(self).await
    }

    async fn add_api_token(
        &self,
        token_hash: &str,
        staff_id: &str,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        directory::add_api_token(self, token_hash, staff_id, label, now).await
    }

    async fn staff_by_sso_identity(&self, identity: &str) -> Result<Option<SsoStaff>> {
        directory::staff_by_sso_identity(self, identity).await
    }

    async fn staff_access(&self) -> Result<Vec<(String, Option<String>, Option<DateTime<Utc>>)>> {
        directory::staff_access(self).await
    }

    async fn staff_for_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Staff>> {
        directory::staff_for_token(self, token_hash, now).await
    }

    async fn expire_token_at(&self, token_hash: &str, at: DateTime<Utc>) -> Result<()> {
        directory::expire_token_at(self, token_hash, at).await
    }

    async fn revoke_staff_tokens(&self, staff_id: &str, now: DateTime<Utc>) -> Result<u64> {
        directory::revoke_staff_tokens(self, staff_id, now).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        directory::list_api_tokens(self).await
    }

    async fn revoke_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        directory::revoke_token(self, token_hash, now).await
    }

    async fn case(&self, id: &str) -> Result<Option<StoredCase>> {
        cases::case(self, id).await
    }

    async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<Case>> {
        cases::list_cases(self, filter).await
    }

    async fn subject_case_counts(
        &self,
        subject_id: &str,
        since: DateTime<Utc>,
    ) -> Result<(u32, u32)> {
        cases::subject_case_counts(self, subject_id, since).await
    }

    async fn velocity_counts(
        &self,
        subject_id: &str,
        caller_number: Option<&str>,
        agent_id: &str,
        since: DateTime<Utc>,
    ) -> Result<(u32, u32, u32)> {
        cases::velocity_counts(self, subject_id, caller_number, agent_id, since).await
    }

    async fn webhook_seen(&self, vendor: &str, delivery_id: &str) -> Result<bool> {
        cases::webhook_seen(self, vendor, delivery_id).await
    }

    async fn recovery_codes(&self, subject_id: &str) -> Result<Vec<String>> {
        cases::recovery_codes(self, subject_id).await
    }

    async fn link(&self, token_hash: &str) -> Result<Option<LinkToken>> {
        cases::link(self, token_hash).await
    }

    async fn credential(&self, subject_id: &str, kind: &str) -> Result<Option<Credential>> {
        cases::credential(self, subject_id, kind).await
    }

    async fn commit(&self, change: Change) -> Result<Vec<AuditRecord>> {
        match (&self.backend, &self.sqlite_writer) {
            (Backend::Sqlite(_), Some(writer)) => {
                let (reply, answer) = oneshot::channel();
                writer
                    .send(Job { change, reply })
                    .await
                    .map_err(|_| StoreError::Commit("the writer has stopped".to_owned()))?;
                answer
                    .await
                    .map_err(|_| StoreError::Commit("the writer has stopped".to_owned()))?
            }
            (Backend::Sqlite(_), None) => Err(StoreError::Commit("no writer".to_owned())),
            (Backend::Postgres(p), _) => {
                let mut tx = p.begin().await?;
                let mut head = read_head_postgres(&mut tx).await?;
                // The sequencer row already serialises writers; a lock per destination keeps
                // the send limit exact on its own, in a fixed order so that two changes never
                // wait on each other.
                let mut destinations: Vec<&str> = change
                    .send_slots
                    .iter()
                    .map(|s| s.contact_hash.as_str())
                    .collect();
                destinations.sort_unstable();
                destinations.dedup();
                for d in destinations {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                        .bind(d)
                        .execute(&mut *tx)
                        .await?;
                }
                writes_postgres(&mut tx, &change).await?;
                let entries: Vec<&NewAuditEntry> = change.audit.iter().collect();
                // Several instances may share the database: read the right edge from the table.
                let mut cache = BTreeMap::new();
                let appended = append_postgres(&mut tx, &entries, &mut head, &mut cache).await?;
                tx.commit().await?;
                Ok(appended)
            }
        }
    }

    async fn audit_size(&self) -> Result<u64> {
        audit_log::audit_size(self).await
    }

    async fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<AuditRecord>> {
        audit_log::audit_entries(self, start, end).await
    }

    async fn audit_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        audit_log::audit_hashes(self, indexes).await
    }

    async fn save_checkpoint(&self, c: &StoredCheckpoint) -> Result<()> {
        audit_log::save_checkpoint(self, c).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        audit_log::latest_checkpoint(self).await
    }

    async fn audit_for_case(&self, case_id: &str) -> Result<Vec<AuditRecord>> {
        audit_log::audit_for_case(self, case_id).await
    }
}
