//! A commit on PostgreSQL: one transaction per change. Reading the sequencer row locks it, so
//! writers (of this and any other instance sharing the database) are serialised; the change's
//! writes and its audit entries then go in that same transaction.

use std::collections::BTreeMap;

use sqlx::Postgres;
use sqlx::postgres::{PgConnection, PgPool};

use super::append::AuditAppend;
use super::change::ChangeWrites;
use super::sequencer::Sequencer;
use crate::audit::AuditRecord;
use crate::{Change, NewAuditEntry, Result};

pub(super) async fn commit(pool: &PgPool, change: Change) -> Result<Vec<AuditRecord>> {
    let mut tx = pool.begin().await?;
    let mut head = Postgres::read_head(&mut tx).await?;
    lock_destinations(&mut tx, &change).await?;
    Postgres::write_change(&mut tx, &change).await?;
    let entries: Vec<&NewAuditEntry> = change.audit.iter().collect();
    // Several instances may share the database: read the right edge from the table.
    let mut cache = BTreeMap::new();
    let appended = Postgres::append_entries(&mut tx, &entries, &mut head, &mut cache).await?;
    tx.commit().await?;
    Ok(appended)
}

/// The sequencer row already serialises writers; a lock per destination keeps the send limit
/// exact on its own, in a fixed order so that two changes never wait on each other.
async fn lock_destinations(tx: &mut PgConnection, change: &Change) -> Result<()> {
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
    Ok(())
}
