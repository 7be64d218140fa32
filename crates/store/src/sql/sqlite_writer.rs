//! The single SQLite writer: takes the first queued change and everything else already waiting,
//! applies each change's writes in its own savepoint (so a stale version or a used link refuses
//! that change alone), appends all accepted changes' audit entries with multi-row inserts, and
//! commits once. Callers are answered only after COMMIT. If the audit append fails, nothing in the
//! group is written: no change without its audit entries.

use std::collections::BTreeMap;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::append::AuditAppend;
use super::change::ChangeWrites;
use super::sequencer::Sequencer;
use crate::audit::AuditRecord;
use crate::{Change, Hash, NewAuditEntry, Result, StoreError};

/// One queued commit and where to answer once it is durable (or refused).
pub(super) struct Job {
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

/// What each change of a group comes to: `None` while it is accepted and its audit entries are
/// still to append, else its refusal.
type Outcomes = Vec<Option<Result<Vec<AuditRecord>>>>;

/// Starts the writer task on `pool`; commits reach it through the queue returned.
pub(super) fn start(pool: SqlitePool) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
    tokio::spawn(run(pool, rx));
    tx
}

/// Queues `change` for the writer and waits until it is durable (or refused).
pub(super) async fn submit(writer: &mpsc::Sender<Job>, change: Change) -> Result<Vec<AuditRecord>> {
    let (reply, answer) = oneshot::channel();
    writer
        .send(Job { change, reply })
        .await
        .map_err(|_| StoreError::Commit("the writer has stopped".to_owned()))?;
    answer
        .await
        .map_err(|_| StoreError::Commit("the writer has stopped".to_owned()))?
}

async fn run(pool: SqlitePool, mut jobs: mpsc::Receiver<Job>) {
    let mut frontier = Frontier::default();
    while let Some(first) = jobs.recv().await {
        let batch = take_group(first, &mut jobs);
        let outcomes = match group_commit(&pool, &batch, &mut frontier).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                frontier = Frontier::default();
                tracing::error!(error = %e, "group commit failed; nothing in it was written");
                group_failed(&e, batch.len())
            }
        };
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// `first` and whatever else is already queued, up to [`MAX_GROUP`] changes.
fn take_group(first: Job, jobs: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_GROUP {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// The answer for each of the `size` changes of a group that could not commit.
fn group_failed(e: &StoreError, size: usize) -> Vec<Result<Vec<AuditRecord>>> {
    let audit = matches!(e, StoreError::AuditUnavailable(_));
    let reason = e.to_string();
    (0..size)
        .map(|_| {
            Err(if audit {
                StoreError::AuditUnavailable(reason.clone())
            } else {
                StoreError::Commit(reason.clone())
            })
        })
        .collect()
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
    let mut head = Sqlite::read_head(&mut tx).await?;
    if head.size != frontier.next_size {
        frontier.hashes.clear();
    }
    let outcomes = write_each(&mut tx, batch).await?;
    let entries: Vec<&NewAuditEntry> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_none())
        .flat_map(|(job, _)| job.change.audit.iter())
        .collect();
    let mut records = Sqlite::append_entries(&mut tx, &entries, &mut head, &mut frontier.hashes)
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

/// Writes each change of the group in a savepoint of its own, so a refused change is rolled
/// back alone. A change with nothing but audit entries is accepted as it is.
async fn write_each(tx: &mut SqliteConnection, batch: &[Job]) -> Result<Outcomes> {
    let mut outcomes: Outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        if !job.change.has_writes() {
            outcomes.push(None);
            continue;
        }
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
        match Sqlite::write_change(&mut savepoint, &job.change).await {
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
    Ok(outcomes)
}
