//! The sequencer row (`audit_head`): the log's size and last chain hash. A commit reads it inside
//! its transaction before appending and moves it past the entries it appended; on PostgreSQL the
//! read locks it, which is what serialises writers (see [`SqlBackend::READ_HEAD`]).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Postgres, Row, Sqlite, Type};

use super::backend::SqlBackend;
use super::codec::corrupt;
use crate::Result;
use crate::audit::parse_hash;

/// The sequencer row as read inside a writer's transaction.
pub(super) struct Head {
    pub(super) size: i64,
    pub(super) chain: [u8; 32],
}

impl Sequencer for Sqlite {}
impl Sequencer for Postgres {}

/// The sequencer's statements, written once: both backends take these default methods as they
/// are; only the read differs, by [`SqlBackend::READ_HEAD`].
pub(super) trait Sequencer: SqlBackend
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'q> Self::Arguments<'q>: IntoArguments<'q, Self>,
    for<'q> String: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    usize: ColumnIndex<Self::Row>,
{
    async fn read_head(tx: &mut Self::Connection) -> Result<Head> {
        let row = sqlx::query(Self::READ_HEAD).fetch_one(&mut *tx).await?;
        let size: i64 = row.try_get(0)?;
        let text: String = row.try_get(1)?;
        Ok(Head {
            size,
            chain: parse_hash(0, &text).map_err(corrupt)?,
        })
    }

    /// Moves the sequencer past the entries just appended: `head` as it now stands.
    async fn advance_head(tx: &mut Self::Connection, head: &Head) -> sqlx::Result<()> {
        sqlx::query("UPDATE audit_head SET size = $1, chain_hash = $2 WHERE id = 1")
            .bind(head.size)
            .bind(hex::encode(head.chain))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
