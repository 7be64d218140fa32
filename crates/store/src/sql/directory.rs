//! The directory outside [`Store::commit`](crate::Store::commit): subjects, staff members and
//! their API tokens.

use chrono::{DateTime, Utc};
use deskgate_core::{ApiId, Staff, Subject};
use sqlx::Row;

use super::codec::{corrupt, decode, json, parse_opt_time, parse_time};
use super::{Backend, SqlStore};
use crate::{ApiToken, Result, SsoStaff, StoreError, time_text};

fn like_pattern(query: &str) -> String {
    let escaped = query
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub(super) async fn subject(store: &SqlStore, id: &str) -> Result<Option<Subject>> {
    let docs = store
        .docs("SELECT doc FROM subjects WHERE id = $1", &[id], None)
        .await?;
    Ok(decode(docs)?.pop())
}

pub(super) async fn search_subjects(
    store: &SqlStore,
    query: &str,
    limit: u32,
) -> Result<Vec<Subject>> {
    let pattern = like_pattern(query);
    let docs = store
        .docs(
            "SELECT doc FROM subjects WHERE lower(id) LIKE $1 ESCAPE '\\' \
             OR lower(display_name) LIKE $1 ESCAPE '\\' \
             OR lower(coalesce(email, '')) LIKE $1 ESCAPE '\\' \
             ORDER BY display_name, id LIMIT $2",
            &[&pattern],
            Some(i64::from(limit)),
        )
        .await?;
    decode(docs)
}

pub(super) async fn subject_count(store: &SqlStore) -> Result<u64> {
    store.count("SELECT COUNT(*) FROM subjects", &[]).await
}

pub(super) async fn upsert_staff(store: &SqlStore, staff: &Staff) -> Result<()> {
    let doc = json(staff)?;
    on_pool!(store, |p| {
        sqlx::query(
            "INSERT INTO staff (id, name, role, subject_id, doc) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, \
             subject_id = excluded.subject_id, doc = excluded.doc",
        )
        .bind(&staff.id)
        .bind(&staff.name)
        .bind(staff.role.api_id())
        .bind(staff.subject_id.as_deref())
        .bind(&doc)
        .execute(p)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(d) if d.is_unique_violation() => StoreError::Conflict(
                "another staff account is already linked to this person (or has this name)"
                    .to_owned(),
            ),
            _ => StoreError::from(e),
        })?;
    });
    Ok(())
}

pub(super) async fn staff(store: &SqlStore, id: &str) -> Result<Option<Staff>> {
    let docs = store
        .docs("SELECT doc FROM staff WHERE id = $1", &[id], None)
        .await?;
    Ok(decode(docs)?.pop())
}

pub(super) async fn staff_by_name(store: &SqlStore, name: &str) -> Result<Option<Staff>> {
    let docs = store
        .docs("SELECT doc FROM staff WHERE name = $1", &[name], None)
        .await?;
    Ok(decode(docs)?.pop())
}

pub(super) async fn list_staff(store: &SqlStore) -> Result<Vec<Staff>> {
    let docs = store
        .docs("SELECT doc FROM staff ORDER BY id", &[], None)
        .await?;
    decode(docs)
}

pub(super) async fn add_api_token(
    store: &SqlStore,
    token_hash: &str,
    staff_id: &str,
    label: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_pool!(store, |p| {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, staff_id, label, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(staff_id)
        .bind(label)
        .bind(time_text(now))
        .execute(p)
        .await?;
    });
    Ok(())
}

pub(super) async fn staff_by_sso_identity(
    store: &SqlStore,
    identity: &str,
) -> Result<Option<SsoStaff>> {
    let row: Option<(String, Option<String>)> = on_pool!(store, |p| {
        match sqlx::query(
            "SELECT doc, disabled_at FROM staff WHERE lower(sso_identity) = lower($1)",
        )
        .bind(identity)
        .fetch_optional(p)
        .await?
        {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        }
    });
    row.map(|(doc, disabled_at)| {
        Ok(SsoStaff {
            staff: serde_json::from_str(&doc).map_err(corrupt)?,
            disabled_at: parse_opt_time(disabled_at)?,
        })
    })
    .transpose()
}

pub(super) async fn staff_access(
    store: &SqlStore,
) -> Result<Vec<(String, Option<String>, Option<DateTime<Utc>>)>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = on_pool!(store, |p| {
        sqlx::query("SELECT id, sso_identity, disabled_at FROM staff ORDER BY id")
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_>>()?
    });
    rows.into_iter()
        .map(|(id, sso, disabled)| Ok((id, sso, parse_opt_time(disabled)?)))
        .collect()
}

pub(super) async fn staff_for_token(
    store: &SqlStore,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Staff>> {
    let now = time_text(now);
    let docs = store
        .docs(
            "SELECT s.doc FROM api_tokens t JOIN staff s ON s.id = t.staff_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND s.disabled_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > $2)",
            &[token_hash, &now],
            None,
        )
        .await?;
    Ok(decode(docs)?.pop())
}

pub(super) async fn expire_token_at(
    store: &SqlStore,
    token_hash: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let at = time_text(at);
    on_pool!(store, |p| {
        sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE token_hash = $2")
            .bind(&at)
            .bind(token_hash)
            .execute(p)
            .await?;
    });
    Ok(())
}

pub(super) async fn revoke_staff_tokens(
    store: &SqlStore,
    staff_id: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let now = time_text(now);
    let done = on_pool!(store, |p| {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE staff_id = $2 AND revoked_at IS NULL",
        )
        .bind(&now)
        .bind(staff_id)
        .execute(p)
        .await?
        .rows_affected()
    });
    Ok(done)
}

pub(super) async fn list_api_tokens(store: &SqlStore) -> Result<Vec<ApiToken>> {
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = on_pool!(store, |p| {
        sqlx::query_as(
            "SELECT token_hash, staff_id, label, created_at, expires_at, revoked_at \
             FROM api_tokens ORDER BY created_at, token_hash",
        )
        .fetch_all(p)
        .await?
    });
    let time = |t: Option<String>| t.as_deref().map(parse_time).transpose();
    rows.into_iter()
        .map(|(token_hash, staff_id, label, created, expires, revoked)| {
            Ok(ApiToken {
                token_hash,
                staff_id,
                label,
                created_at: parse_time(&created)?,
                expires_at: time(expires)?,
                revoked_at: time(revoked)?,
            })
        })
        .collect()
}

pub(super) async fn revoke_token(
    store: &SqlStore,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = time_text(now);
    on_pool!(store, |p| {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(&now)
        .bind(token_hash)
        .execute(p)
        .await?;
    });
    Ok(())
}
