//! Deskgate's use cases: the application service. Adapters (the HTTP server, the CLI) call it;
//! it loads what the pure core needs, the core decides, the store commits the change with its
//! audit entries, and only then do side effects (deliveries, connector calls) happen. Nothing here
//! knows about HTTP status codes: failures are [`AppError`] variants that each adapter maps.

mod audit_events;
pub mod audit_log;
pub mod clock;
pub mod config;
pub mod config_check;
pub mod connector_setup;
pub mod demo;
pub mod directory_sync;
pub mod error;
pub mod execution;
pub mod idv;
pub mod idv_inquiry;
pub use deskgate_core::labels;
mod metered_connector;
pub mod my_account;
pub mod notices;
pub mod passkey_sign_in;
pub mod passkeys;
pub mod policy_gate;
pub mod secrets;
pub mod self_service;
pub mod service;
pub mod sso;
pub mod staff_passkeys;
pub mod telemetry;
pub mod telephony;
pub mod totp;
pub mod views;

pub use clock::Clock;
pub use config::Config;
pub use deskgate_delivery as delivery;
pub use error::{AppError, AppResult};
pub use service::Service;

use std::sync::Arc;

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
    #[error("{0}")]
    Metrics(#[from] telemetry::MetricsConfigError),
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
    let metrics = telemetry::MetricsAccess::from_config(&config.metrics)?;
    telemetry::recorder();
    std::fs::create_dir_all(&dir).map_err(io)?;
    let codes = secrets::CodeHasher::load_or_create(&dir.join("code.key")).map_err(io)?;
    let sealer = secrets::Sealer::load_or_create(&dir.join("sealing.key")).map_err(io)?;
    let store = deskgate_store::open(&config.database_url()).await?;
    let signer = audit_log::load_or_create_signer(&dir.join("audit.key"), &config.audit_origin)?;
    let audit = Arc::new(audit_log::AuditLog::new(store.clone(), signer));
    // reqwest (Twilio) is built without a crypto provider of its own; install ring once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let delivery = delivery::build(&config.delivery, &dir)?;
    check_telephony(&config)?;
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
        metrics,
    })
}

/// The telephony provider's settings, checked at start-up so that a callback never fails on
/// configuration. Needs the rustls crypto provider and a Tokio runtime, like delivery.
pub(crate) fn check_telephony(config: &Config) -> Result<(), StartError> {
    if let Some(telephony) = &config.telephony {
        delivery::TwilioDelivery::new(telephony)?;
        if telephony.from.is_none() {
            return Err(StartError::Delivery(delivery::ConfigError::TwilioNoSender));
        }
    }
    Ok(())
}
