//! Deskgate's application service and HTTP API. Requests come in over axum, the application
//! service loads what the core needs, the core decides, the store commits the change with its
//! audit entries, and only then do side effects (deliveries) happen.

pub mod api;
pub mod audit_log;
pub mod clock;
pub mod config;
pub mod connector_execution;
pub mod connector_setup;
pub mod console;
pub mod demo;
pub mod directory;
pub mod directory_sync;
pub mod error;
pub mod idv;
pub mod passkey_pages;
pub mod passkeys;
pub mod policy_gate;
pub mod secrets;
pub mod service;
pub mod sign_in_guard;
pub mod sso;
pub mod staff_passkeys;
pub mod totp;
pub mod views;

pub use clock::Clock;
pub use config::Config;
pub use deskgate_delivery as delivery;
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
    service.audit.clone().spawn_checkpointer(
        std::time::Duration::from_secs(service.config.checkpoint_interval_seconds.max(1)),
        service.clock.clone(),
    );
    #[cfg(unix)]
    {
        let reloader = service.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                if let Err(e) = reloader.reload_policy(None).await {
                    tracing::warn!(error = %e.message, "policy reload on SIGHUP refused");
                }
            }
        });
    }
    // The peer address is what the sign-in limits count by (see `sign_in_guard`).
    axum::serve(
        listener,
        router(service).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
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
    #[error("audit log: {0}")]
    AuditLog(#[from] audit_log::AuditLogError),
    #[error("policy bundle: {0}")]
    Policy(#[from] deskgate_policy::BundleError),
    #[error("delivery configuration: {0}")]
    Delivery(#[from] delivery::ConfigError),
    #[error("connector configuration: {0}")]
    Connector(#[from] connector_setup::ConnectorSetupError),
    #[error("single sign-on: {0}")]
    Sso(#[from] sso::OidcConfigError),
}

/// Opens the store, loads (or creates) the keys under the data directory and wires delivery.
pub async fn build(config: Config, clock: Clock) -> Result<Service, StartError> {
    // Checked first: a connector that cannot be used stops the start before anything is created.
    let connector = connector_setup::build(&config, |key| std::env::var(key).ok())?;
    let dir = config.data_dir.clone();
    let io = |source| StartError::DataDir {
        path: dir.clone(),
        source,
    };
    if let Some(oidc) = &config.oidc {
        oidc.validate()?;
    }
    std::fs::create_dir_all(&dir).map_err(io)?;
    let codes = secrets::CodeHasher::load_or_create(&dir.join("code.key")).map_err(io)?;
    let sealer = secrets::Sealer::load_or_create(&dir.join("sealing.key")).map_err(io)?;
    let store = deskgate_store::open(&config.database_url()).await?;
    let signer = audit_log::load_or_create_signer(&dir.join("audit.key"), &config.audit_origin)?;
    let audit = Arc::new(audit_log::AuditLog::new(store.clone(), signer));
    // reqwest (Twilio) is built without a crypto provider of its own; install ring once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let delivery = delivery::build(&config.delivery, &dir)?;
    let bundle = policy_gate::load(config.policy_dir.as_deref())?;
    tracing::info!(digest = bundle.digest(), "policy bundle loaded");
    Ok(Service {
        sealer,
        policy: std::sync::RwLock::new(Arc::new(bundle)),
        store,
        audit,
        config,
        clock,
        codes,
        delivery,
        connector,
    })
}
