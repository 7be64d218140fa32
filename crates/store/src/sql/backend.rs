//! Where SQLite and PostgreSQL differ. Everything else is written once: the steps of a commit are
//! default methods of traits over [`SqlBackend`] ([`ChangeWrites`](super::change::ChangeWrites),
//! [`AuditAppend`](super::append::AuditAppend), [`Sequencer`](super::sequencer::Sequencer)), and
//! each backend takes them as they are.

use sqlx::postgres::PgQueryResult;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Database, Postgres, Sqlite};

pub(super) trait SqlBackend: Database {
    /// Reads the sequencer row (`size`, `chain_hash`) inside a writer's transaction.
    const READ_HEAD: &'static str;

    /// How many rows a statement changed: how a single-use step tells whether it won.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

impl SqlBackend for Sqlite {
    /// The single writer task made its transaction the writer before reading (see
    /// [`group_commit`](super::sqlite_writer)), so no other process appends meanwhile.
    const READ_HEAD: &'static str = "SELECT size, chain_hash FROM audit_head WHERE id = 1";

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl SqlBackend for Postgres {
    /// Locks the row: every writer waits for it, so commits are serialised.
    const READ_HEAD: &'static str =
        "SELECT size, chain_hash FROM audit_head WHERE id = 1 FOR UPDATE";

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}
