//! A fresh database per test, on embedded SQLite or on PostgreSQL (`DESKGATE_TEST_POSTGRES`,
//! default the local `test` database), and [`on_both_backends!`](crate::on_both_backends) to run
//! a test once on each. Used by the server harness and by the store's own tests.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::database::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::database::Backend::Postgres).await;
            }
        })+
    };
}

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_base_url() -> String {
    std::env::var("DESKGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// An empty database the test owns: a SQLite file under `dir`, or a newly created PostgreSQL
/// database, dropped by [`FreshDatabase::drop_now`].
pub struct FreshDatabase {
    pub url: String,
    pg_database: Option<String>,
}

impl FreshDatabase {
    /// Creates the database; `sqlite_file` names the file under `dir` for SQLite.
    pub async fn create(backend: Backend, dir: &Path, sqlite_file: &str) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.join(sqlite_file).display()),
                pg_database: None,
            },
            Backend::Postgres => {
                let base = postgres_base_url();
                let name = format!("dg_t_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&base).await.expect(
                    "PostgreSQL must run for the tests (DESKGATE_TEST_POSTGRES; see README: test \
                     command)",
                );
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let (prefix, _) = base.rsplit_once('/').unwrap();
                Self {
                    url: format!("{prefix}/{name}"),
                    pg_database: Some(name),
                }
            }
        }
    }

    /// Drops the PostgreSQL database (a SQLite file goes with its directory).
    pub async fn drop_now(&self) {
        if let Some(name) = &self.pg_database
            && let Ok(admin) = sqlx::PgPool::connect(&postgres_base_url()).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}
