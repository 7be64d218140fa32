//! Audit append throughput on SQLite with durable commits (synchronous = FULL: an acknowledged
//! entry survives power loss), against a plain durable single-row insert of the same bytes into
//! the same database in the same run. Many callers append at once, as request handlers do, and
//! the store group-commits them.
//!
//! `cargo bench -p deskgate-store --bench append` (DESKGATE_BENCH_ENTRIES to change the count).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use deskgate_audit::AuditEvent;
use deskgate_audit::event::{SentVerification, VerificationStarted};
use deskgate_store::{Change, NewAuditEntry, Store, system_actor};

const CALLERS: usize = 64;

fn entry(i: usize) -> NewAuditEntry {
    NewAuditEntry::new(
        Utc::now(),
        system_actor(),
        Some(&format!("c-{i:032x}")),
        AuditEvent::VerificationStarted(VerificationStarted::Sent(SentVerification {
            verification_id: format!("v-{i:016x}"),
            method: "sms_code".to_owned(),
            class: "phone_of_record".to_owned(),
            destination: "+1 *** *** 42".to_owned(),
            respondent: format!("u-{i:016x}"),
            expires_at: Utc::now(),
        })),
    )
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("DESKGATE_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store: Arc<dyn Store> = deskgate_store::open(&url).await.unwrap();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = caller;
            while i < total {
                store
                    .commit(Change {
                        audit: vec![entry(i)],
                        ..Change::default()
                    })
                    .await
                    .unwrap();
                i += CALLERS;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log_secs = started.elapsed().as_secs_f64();
    assert_eq!(store.audit_size().await.unwrap(), total as u64);

    // Baseline: the same canonical bytes, one durable insert per row, into the same file.
    let bodies: Vec<String> = store
        .audit_entries(0, total as u64)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.body)
        .collect();
    let baseline_count = (total / 10).max(100).min(total);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            url.parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full),
        )
        .await
        .unwrap();
    sqlx::query("CREATE TABLE plain (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    for body in bodies.iter().take(baseline_count) {
        sqlx::query("INSERT INTO plain (body) VALUES ($1)")
            .bind(body)
            .execute(&pool)
            .await
            .unwrap();
    }
    let plain_secs = started.elapsed().as_secs_f64();

    let log_rate = total as f64 / log_secs;
    let plain_rate = baseline_count as f64 / plain_secs;
    println!(
        "audit append: {total} entries from {CALLERS} concurrent callers in {log_secs:.2} s = {log_rate:.0} entries/s (durable, group commit)"
    );
    println!(
        "plain durable insert: {baseline_count} rows in {plain_secs:.2} s = {plain_rate:.0} rows/s (one transaction per row)"
    );
    println!(
        "ratio audit/plain: {:.2} (target: >= 20000 entries/s)",
        log_rate / plain_rate
    );
}
