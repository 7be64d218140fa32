//! The schema migrations of both backends: a fresh database reaches the latest version, opening it
//! again applies nothing, both folders hold the same numbered migrations, and 0007 carries recovery
//! codes stored the old way (one credential row holding a JSON list) into one row per code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::on_both_backends;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use common::{Backend, TestDb};
use deskgate_store::{Change, Credential, RecoveryCodes, StoreError};
use sqlx::migrate::Migrator;

fn folder(backend: Backend) -> PathBuf {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(name)
}

/// The migration files of a folder, by name.
fn file_names(backend: Backend) -> BTreeSet<String> {
    std::fs::read_dir(folder(backend))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// What `_sqlx_migrations` records: (version, installed_on, success, checksum), by version.
type Applied = Vec<(i64, String, bool, Vec<u8>)>;

async fn applied(db: &TestDb) -> Applied {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlite_pool(&db.url).await;
            let rows = sqlx::query_as(
                "SELECT version, CAST(installed_on AS TEXT), success, checksum \
                 FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let rows = sqlx::query_as(
                "SELECT version, installed_on::text, success, checksum \
                 FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        }
    }
}

async fn sqlite_pool(url: &str) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

on_both_backends!(fresh_database_migrates_to_latest_and_reopening_applies_nothing);

async fn fresh_database_migrates_to_latest_and_reopening_applies_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let source = Migrator::new(folder(backend).as_path()).await.unwrap();
    let expected: Vec<(i64, Vec<u8>)> = source
        .iter()
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    assert!(!expected.is_empty());

    let store = db.open().await;
    assert_eq!(
        store.backend(),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    let first = applied(&db).await;
    assert_eq!(
        first
            .iter()
            .map(|(v, _, _, c)| (*v, c.clone()))
            .collect::<Vec<_>>(),
        expected,
        "every migration of the folder, and only those, is applied as written"
    );
    assert!(first.iter().all(|(_, _, success, _)| *success));
    // The latest schema is usable: one write touching the newest tables goes through.
    store
        .commit(Change {
            subjects: vec![common::subject("s-1")],
            recovery_codes: vec![RecoveryCodes {
                subject_id: "s-1".to_owned(),
                hashes: vec!["h1".to_owned()],
                issued_at: common::at(0),
            }],
            spent_sign_ins: vec![("attempt".to_owned(), common::at(0), common::at(5))],
            audit: vec![common::entry(None, "directory.seeded", 0)],
            ..Change::default()
        })
        .await
        .unwrap();

    // A second instance (or a restart) opening the same database: no error, nothing re-run,
    // nothing lost.
    let again = db.open().await;
    assert_eq!(
        applied(&db).await,
        first,
        "reopening re-applied a migration"
    );
    assert_eq!(again.audit_size().await.unwrap(), 1);
    assert_eq!(again.recovery_codes("s-1").await.unwrap(), vec!["h1"]);
    drop(again);
    let third = db.open().await;
    assert_eq!(applied(&db).await, first);
    assert_eq!(third.subject_count().await.unwrap(), 1);
    drop((store, third));
    db.finish().await;
}

#[test]
fn both_backends_have_the_same_numbered_migrations() {
    let sqlite = file_names(Backend::Sqlite);
    let postgres = file_names(Backend::Postgres);
    assert!(
        sqlite.len() >= 9,
        "expected the migrations folder, found {sqlite:?}"
    );
    for name in sqlite.iter().chain(&postgres) {
        let (number, rest) = name.split_once('_').unwrap();
        assert!(
            number.len() == 4
                && number.bytes().all(|b| b.is_ascii_digit())
                && rest.ends_with(".sql"),
            "{name} is not NNNN_description.sql"
        );
    }
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "a migration exists for one backend only: sqlite {only_sqlite:?}, postgres {only_postgres:?}"
    );
    // Numbered 1..n without a gap or a number used twice.
    let numbers: Vec<u32> = sqlite.iter().map(|n| n[..4].parse().unwrap()).collect();
    assert_eq!(
        numbers,
        (1..=u32::try_from(numbers.len()).unwrap()).collect::<Vec<_>>()
    );
}

/// Brings a fresh database to just before 0007, through a copy of the folder's earlier files.
async fn migrate_before_0007(db: &TestDb) {
    let earlier = tempfile::tempdir().unwrap();
    for name in file_names(db.backend) {
        if name.as_str() < "0007" {
            std::fs::copy(folder(db.backend).join(&name), earlier.path().join(&name)).unwrap();
        }
    }
    let migrator = Migrator::new(earlier.path()).await.unwrap();
    assert_eq!(migrator.iter().map(|m| m.version).max(), Some(6));
    let statements = old_style_rows();
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlite_pool(&db.url).await;
            migrator.run(&pool).await.unwrap();
            for (sql, binds) in &statements {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b);
                }
                q.execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for (sql, binds) in &statements {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b);
                }
                q.execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

/// Two subjects with codes kept the old way (one `recovery_codes` credential holding a JSON
/// list of the unused hashes, one of them listed twice), a third with a password only.
fn old_style_rows() -> Vec<(&'static str, Vec<String>)> {
    let mut rows = Vec::new();
    for id in ["alice", "bob", "carol"] {
        let s = common::subject(id);
        rows.push((
            "INSERT INTO subjects (id, display_name, email, tier, status, doc, updated_at) \
             VALUES ($1, $2, NULL, 'standard', 'active', $3, $4)",
            vec![
                id.to_owned(),
                s.display_name.clone(),
                serde_json::to_string(&s).unwrap(),
                "2025-03-01T09:00:00.000000Z".to_owned(),
            ],
        ));
    }
    let credential = "INSERT INTO credentials (subject_id, kind, hash, created_at) \
                      VALUES ($1, $2, $3, $4)";
    for (id, kind, hash) in [
        ("alice", "recovery_codes", r#"["a1","a2","a3","a2"]"#),
        ("bob", "recovery_codes", r#"["b1"]"#),
        ("alice", "password", "argon2-alice"),
        ("carol", "password", "argon2-carol"),
    ] {
        rows.push((
            credential,
            vec![
                id.to_owned(),
                kind.to_owned(),
                hash.to_owned(),
                "2025-02-01T08:00:00.000000Z".to_owned(),
            ],
        ));
    }
    rows
}

on_both_backends!(migration_0007_moves_old_recovery_code_lists_into_one_row_per_code);

async fn migration_0007_moves_old_recovery_code_lists_into_one_row_per_code(backend: Backend) {
    let db = TestDb::new(backend).await;
    migrate_before_0007(&db).await;

    // Opening the store runs 0007 onwards on top of the earlier, already applied, migrations.
    let store = db.open().await;
    let versions: Vec<i64> = applied(&db).await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        versions,
        (1..=i64::try_from(file_names(backend).len()).unwrap()).collect::<Vec<_>>()
    );

    assert_eq!(
        store.recovery_codes("alice").await.unwrap(),
        vec!["a1", "a2", "a3"]
    );
    assert_eq!(store.recovery_codes("bob").await.unwrap(), vec!["b1"]);
    assert!(store.recovery_codes("carol").await.unwrap().is_empty());
    // The old list is gone; other credentials are untouched.
    assert_eq!(
        store.credential("alice", "recovery_codes").await.unwrap(),
        None
    );
    assert_eq!(
        store.credential("bob", "recovery_codes").await.unwrap(),
        None
    );
    let password = |id: &str, hash: &str| Credential {
        subject_id: id.to_owned(),
        kind: "password".to_owned(),
        hash: hash.to_owned(),
        created_at: "2025-02-01T08:00:00Z".parse().unwrap(),
        expires_at: None,
        used_at: None,
    };
    assert_eq!(
        store.credential("alice", "password").await.unwrap(),
        Some(password("alice", "argon2-alice"))
    );
    assert_eq!(
        store.credential("carol", "password").await.unwrap(),
        Some(password("carol", "argon2-carol"))
    );

    // Each moved code is its own single-use row: spending one leaves the others.
    let spend = |code: &str| Change {
        spend_recovery_codes: vec![("alice".to_owned(), code.to_owned(), common::at(10))],
        audit: vec![common::entry(None, "recovery_code.used", 0)],
        ..Change::default()
    };
    store.commit(spend("a2")).await.unwrap();
    assert_eq!(
        store.recovery_codes("alice").await.unwrap(),
        vec!["a1", "a3"]
    );
    assert!(matches!(
        store.commit(spend("a2")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.recovery_codes("alice").await.unwrap(),
        vec!["a1", "a3"]
    );
    assert_eq!(store.recovery_codes("bob").await.unwrap(), vec!["b1"]);
    drop(store);
    db.finish().await;
}
