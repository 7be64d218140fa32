//! `/metrics` (Prometheus text format) and the request timer every route runs under.
//!
//! Requests are labelled by the route template they matched (`/api/v1/cases/{id}`), never by the
//! raw path, so no case id, link token or subject id becomes a series; unmatched paths share one
//! label. Scraping is open to the configured peer addresses (loopback by default) or to the
//! metrics bearer token; anyone else is told the endpoint does not exist.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use deskgate_app::AppError;
use deskgate_app::service::Service;
use deskgate_app::telemetry::Admission;

use crate::error::ApiError;

/// The Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn routes() -> Router<Arc<Service>> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(service): State<Arc<Service>>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match service.metrics_access().admit(peer, bearer) {
        Admission::Admitted => {
            let mut response = service.metrics_text().await.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
            response
        }
        Admission::WrongToken => {
            ApiError(AppError::forbidden("that is not the metrics token")).into_response()
        }
        Admission::Hidden => ApiError::not_found("route").into_response(),
    }
}

/// Times every request into `deskgate_http_request_duration_seconds` by method, route template
/// and status.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("deskgate_http_request_duration_seconds",
        "method" => method, "route" => route, "status" => status)
    .record(started.elapsed().as_secs_f64());
    response
}

/// Standard methods by name; anything a client invents is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
