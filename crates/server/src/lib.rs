//! Deskgate's HTTP adapter: the axum API, the web console, the single sign-on browser flow and
//! the one mapping from application errors to HTTP responses ([`error`]). Every request is
//! authenticated here and handed to the application service in `deskgate-app`, which holds the
//! use cases.

pub mod api;
pub mod console;
pub mod error;
pub mod link_tokens;
mod observability;
pub mod passkey_pages;
pub mod sign_in_guard;

pub use deskgate_app as app;
pub use deskgate_app::{Clock, Config, Service, StartError, build, delivery};

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
    service.spawn_checkpointer(std::time::Duration::from_secs(
        service.config().checkpoint_interval_seconds.max(1),
    ));
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
                    tracing::warn!(error = %e.message(), "policy reload on SIGHUP refused");
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
