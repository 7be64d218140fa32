//! Reads about cases and what acts on them outside [`Store::commit`](crate::Store::commit):
//! cases and their counts, links, credentials, recovery codes and webhook deliveries.

use chrono::{DateTime, Utc};
use deskgate_core::{ApiId, Case};
use sqlx::Row;

use super::codec::{corrupt, decode, parse_opt_time, parse_time};
use super::{Backend, SqlStore};
use crate::{CaseFilter, Credential, LinkToken, Result, StoredCase, time_text};

const LIVE_STATES: &str = "('open','verifying','approved','escalated')";

pub(super) async fn case(store: &SqlStore, id: &str) -> Result<Option<StoredCase>> {
    let row: Option<(String, i64)> = on_pool!(store, |p| {
        match sqlx::query("SELECT doc, version FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?
        {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        }
    });
    row.map(|(doc, version)| {
        Ok(StoredCase {
            case: serde_json::from_str::<Case>(&doc).map_err(corrupt)?,
            version,
        })
    })
    .transpose()
}

/// One counter row for every instance: the row lock orders concurrent callers on PostgreSQL, and
/// SQLite has one writer.
pub(super) async fn next_case_number(store: &SqlStore) -> Result<u64> {
    let next: i64 = on_pool!(store, |p| {
        sqlx::query("UPDATE case_numbers SET next = next + 1 WHERE id = 1 RETURNING next")
            .fetch_one(p)
            .await?
            .try_get(0)?
    });
    u64::try_from(next).map_err(|_| corrupt("case number out of range"))
}

pub(super) async fn case_id_by_number(store: &SqlStore, number: u64) -> Result<Option<String>> {
    let Ok(number) = i64::try_from(number) else {
        return Ok(None);
    };
    Ok(on_pool!(store, |p| {
        match sqlx::query("SELECT id FROM cases WHERE number = $1")
            .bind(number)
            .fetch_optional(p)
            .await?
        {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        }
    }))
}

pub(super) async fn list_cases(store: &SqlStore, filter: &CaseFilter) -> Result<Vec<Case>> {
    let mut sql = String::from("SELECT doc FROM cases WHERE 1 = 1");
    let mut binds: Vec<&str> = Vec::new();
    let state = filter.state.map(|s| s.api_id());
    for (column, value) in [
        ("state", state),
        ("agent_id", filter.agent_id.as_deref()),
        ("subject_id", filter.subject_id.as_deref()),
    ] {
        if let Some(v) = value {
            binds.push(v);
            sql.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    }
    sql.push_str(&format!(
        " ORDER BY opened_at DESC, id LIMIT ${}",
        binds.len() + 1
    ));
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    let docs = store.docs(&sql, &binds, Some(i64::from(limit))).await?;
    decode(docs)
}

pub(super) async fn subject_case_counts(
    store: &SqlStore,
    subject_id: &str,
    since: DateTime<Utc>,
) -> Result<(u32, u32)> {
    let live = store
        .count(
            &format!("SELECT COUNT(*) FROM cases WHERE subject_id = $1 AND state IN {LIVE_STATES}"),
            &[subject_id],
        )
        .await?;
    let since = time_text(since);
    let executed = store
        .count(
            "SELECT COUNT(*) FROM cases WHERE subject_id = $1 AND executed_at >= $2",
            &[subject_id, &since],
        )
        .await?;
    Ok((
        u32::try_from(live).unwrap_or(u32::MAX),
        u32::try_from(executed).unwrap_or(u32::MAX),
    ))
}

pub(super) async fn velocity_counts(
    store: &SqlStore,
    subject_id: &str,
    caller_number: Option<&str>,
    agent_id: &str,
    since: DateTime<Utc>,
) -> Result<(u32, u32, u32)> {
    let since = time_text(since);
    let per = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let subject = store
        .count(
            "SELECT COUNT(*) FROM cases WHERE subject_id = $1 AND opened_at >= $2",
            &[subject_id, &since],
        )
        .await?;
    let caller = match caller_number {
        Some(n) => {
            store
                .count(
                    "SELECT COUNT(*) FROM cases WHERE caller_number = $1 AND opened_at >= $2",
                    &[n, &since],
                )
                .await?
        }
        None => 0,
    };
    let agent = store
        .count(
            "SELECT COUNT(*) FROM cases WHERE agent_id = $1 AND opened_at >= $2",
            &[agent_id, &since],
        )
        .await?;
    Ok((per(subject), per(caller), per(agent)))
}

pub(super) async fn webhook_seen(
    store: &SqlStore,
    vendor: &str,
    delivery_id: &str,
) -> Result<bool> {
    let n = store
        .count(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE vendor = $1 AND delivery_id = $2",
            &[vendor, delivery_id],
        )
        .await?;
    Ok(n > 0)
}

pub(super) async fn recovery_codes(store: &SqlStore, subject_id: &str) -> Result<Vec<String>> {
    store
        .docs(
            "SELECT code_hash FROM recovery_codes WHERE subject_id = $1 AND used_at IS NULL \
             ORDER BY code_hash",
            &[subject_id],
            None,
        )
        .await
}

pub(super) async fn link(store: &SqlStore, token_hash: &str) -> Result<Option<LinkToken>> {
    type Row6 = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
    );
    let row: Option<Row6> = on_pool!(store, |p| {
        match sqlx::query(
            "SELECT kind, case_id, verification_id, respondent, created_at, expires_at, used_at \
             FROM link_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(p)
        .await?
        {
            Some(r) => Some((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            )),
            None => None,
        }
    });
    row.map(
        |(kind, case_id, verification_id, respondent, created, expires, used)| {
            Ok(LinkToken {
                token_hash: token_hash.to_owned(),
                kind,
                case_id,
                verification_id,
                respondent,
                created_at: parse_time(&created)?,
                expires_at: parse_time(&expires)?,
                used_at: parse_opt_time(used)?,
            })
        },
    )
    .transpose()
}

pub(super) async fn credential(
    store: &SqlStore,
    subject_id: &str,
    kind: &str,
) -> Result<Option<Credential>> {
    type Row4 = (String, String, Option<String>, Option<String>);
    let row: Option<Row4> = on_pool!(store, |p| {
        match sqlx::query(
            "SELECT hash, created_at, expires_at, used_at FROM credentials \
             WHERE subject_id = $1 AND kind = $2",
        )
        .bind(subject_id)
        .bind(kind)
        .fetch_optional(p)
        .await?
        {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
            None => None,
        }
    });
    row.map(|(hash, created, expires, used)| {
        Ok(Credential {
            subject_id: subject_id.to_owned(),
            kind: kind.to_owned(),
            hash,
            created_at: parse_time(&created)?,
            expires_at: parse_opt_time(expires)?,
            used_at: parse_opt_time(used)?,
        })
    })
    .transpose()
}
