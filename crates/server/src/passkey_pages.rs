//! The pages a subject's browser runs passkey ceremonies on: the verification link
//! (`/passkey/{token}`) and temporary-access-pass enrolment (`/tap`), plus the small vendored
//! script both (and the console's passkey forms) use. Served under the console's strict CSP: the
//! script comes from this origin, nothing inline. The link's first GET moves its token into a
//! short-lived cookie and redirects to the token-free `/passkey/verify`; the ceremony's requests
//! carry it in that cookie (or the `X-Link-Token` header), never in their URLs.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::api::ApiJson;
use crate::error::ApiError;
use deskgate_app::service::Service;

type AppState = Arc<Service>;

#[derive(Template, WebTemplate)]
#[template(path = "passkey/verify.html")]
struct VerifyPage {
    name: String,
    case_id: String,
    expires_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "passkey/tap.html")]
struct TapPage;

/// The cookie holding a passkey link's token after its first GET.
const LINK_COOKIE: &str = "deskgate_passkey_link";

fn link_token(headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(crate::link_tokens::presented(
        headers,
        None,
        Some(LINK_COOKIE),
    )?)
}

/// The first GET of the emailed link: a live link's token goes into a cookie, the browser to
/// the page.
async fn open_link(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    if !crate::link_tokens::well_formed(&token) {
        return Err(ApiError::not_found("link"));
    }
    s.passkey_link_view(&token).await?;
    Ok(crate::link_tokens::into_cookie(
        &token,
        LINK_COOKIE,
        "/passkey",
        "/passkey/verify",
    ))
}

async fn verify_page(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = link_token(&headers)?;
    let view = s.passkey_link_view(&token).await?;
    let text = |k: &str| view[k].as_str().unwrap_or_default().to_owned();
    let expires_at = view["expires_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    Ok(VerifyPage {
        name: text("name"),
        case_id: text("case_id"),
        expires_at,
    }
    .into_response())
}

async fn verify_options(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = link_token(&headers)?;
    Ok(Json(s.passkey_link_options(&token).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertionBody {
    credential: Value,
}

async fn verify_answer(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssertionBody>,
) -> Result<Json<Value>, ApiError> {
    let token = link_token(&headers)?;
    Ok(Json(s.passkey_link_answer(&token, &body.credential).await?))
}

async fn tap_page() -> Response {
    TapPage.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TapFinishBody {
    subject: String,
    ceremony: String,
    credential: Value,
}

/// `POST /api/v1/tap/passkey`: completes the passkey registration a redeemed pass started.
pub(crate) async fn finish_tap(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<TapFinishBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        s.finish_pass_passkey(&body.subject, &body.ceremony, &body.credential)
            .await?,
    ))
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/passkey.js"),
    )
        .into_response()
}

/// The subject-facing passkey pages, with the console's CSP.
pub fn router<S: Clone + Send + Sync + 'static>(service: Arc<Service>) -> Router<S> {
    Router::new()
        .route("/passkey/verify", get(verify_page))
        .route("/passkey/options", get(verify_options))
        .route("/passkey/answer", post(verify_answer))
        .route(
            "/passkey/{token}",
            get(open_link).post(crate::link_tokens::refuse_in_path),
        )
        .route(
            "/passkey/{token}/options",
            get(crate::link_tokens::refuse_in_path),
        )
        .route("/passkey/static/passkey.js", get(script))
        .route("/tap", get(tap_page))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::console::CONSOLE_CSP),
        ))
        .with_state(service)
}
