//! Deskgate's application service and HTTP API. Requests come in over axum, the application
//! service loads what the core needs, the core decides, the store commits the change with its
//! audit entries, and only then do side effects (deliveries) happen.

pub mod api;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod directory;
pub mod error;
pub mod secrets;
pub mod service;
pub mod views;

pub use clock::Clock;
pub use config::Config;
pub use service::Service;

use std::sync::Arc;

/// Builds the HTTP application around a service.
pub fn router(service: Arc<Service>) -> axum::Router {
    api::router(service)
}

/// Serves the API on `listener` until the future `shutdown` completes.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] deskgate_store::StoreError),
}

/// Opens the store, loads (or creates) the keys under the data directory and wires delivery.
pub async fn build(config: Config, clock: Clock) -> Result<Service, StartError> {
    let dir = config.data_dir.clone();
    let io = |source| StartError::DataDir {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let codes = secrets::CodeHasher::load_or_create(&dir.join("code.key")).map_err(io)?;
    let store = deskgate_store::open(&config.database_url()).await?;
    let delivery: Arc<dyn delivery::Delivery> = if config.outbox_file {
        Arc::new(delivery::OutboxFile::new(dir.join("outbox.jsonl")))
    } else {
        Arc::new(delivery::Unconfigured)
    };
    Ok(Service {
        store,
        config,
        clock,
        codes,
        delivery,
    })
}
