//! The SQL implementation of [`Store`] for SQLite and PostgreSQL. Queries are written once with
//! `$N` placeholders, which both backends accept, and run on whichever pool is configured.
//!
//! One module per job:
//! - [`connect`] opens a pool and brings its schema up to date;
//! - [`directory`], [`cases`] and [`audit_log`] hold the queries outside [`Store::commit`];
//! - [`codec`] turns column text and JSON documents into values and back;
//! - a commit runs through [`sqlite_writer`] (group commits on the single SQLite writer) or
//!   [`postgres_commit`] (one transaction serialised on the sequencer row);
//! - both write a change with the steps in [`change`] and append its audit entries with
//!   [`append`], after reading the sequencer row with [`sequencer`];
//! - [`backend`] is where the two backends differ.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deskgate_core::{Case, Staff, Subject};
use sqlx::Row;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use tokio::sync::mpsc;

use crate::audit::AuditRecord;
use crate::{
    ApiToken, CaseFilter, Change, Credential, Hash, LinkToken, Result, SsoStaff, Store, StoreError,
    StoredCase, StoredCheckpoint,
};

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

mod append;
mod audit_log;
mod backend;
mod cases;
mod change;
mod codec;
mod connect;
mod directory;
mod postgres_commit;
mod sequencer;
mod sqlite_writer;

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub struct SqlStore {
    backend: Backend,
    /// SQLite has one writer: commits go to a single task that group-commits whatever is queued
    /// (one fsync for many changes, each in its own savepoint). PostgreSQL writers serialise on the
    /// locked sequencer row instead.
    sqlite_writer: Option<mpsc::Sender<sqlite_writer::Job>>,
}

impl SqlStore {
    pub async fn open(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let pool = connect::sqlite(url).await?;
            let writer = sqlite_writer::start(pool.clone());
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
        u64::try_from(n).map_err(codec::corrupt)
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

    async fn next_case_number(&self) -> Result<u64> {
        cases::next_case_number(self).await
    }

    async fn case_id_by_number(&self, number: u64) -> Result<Option<String>> {
        cases::case_id_by_number(self, number).await
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
        let observed = crate::observed::observe(&change);
        let result = match (&self.backend, &self.sqlite_writer) {
            (Backend::Sqlite(_), Some(writer)) => sqlite_writer::submit(writer, change).await,
            (Backend::Sqlite(_), None) => Err(StoreError::Commit("no writer".to_owned())),
            (Backend::Postgres(p), _) => postgres_commit::commit(p, change).await,
        };
        observed.record(&result);
        result
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
