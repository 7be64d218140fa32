//! HTTP routes under `/api/v1`, the manager's attestation link, and health checks. Handlers are
//! thin: they authenticate, parse, call the service, and let [`ApiError`] shape failures.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deskgate_core::{Action, CaseState, Channel, Decision, Method, Staff};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::link_tokens;
use deskgate_app::AppError;
use deskgate_app::service::{OpenCase, Service, parse_id};

type AppState = Arc<Service>;

/// A JSON body, with every way it can be wrong answered in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match &rejection {
        JsonRejection::JsonSyntaxError(_) => ApiError(AppError::malformed(
            "malformed_json",
            "the request body is not valid JSON",
        )),
        JsonRejection::JsonDataError(e) => {
            ApiError(AppError::invalid_as("invalid_request", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError(AppError::unsupported_media_type(
            "unsupported_media_type",
            "send the body as application/json",
        )),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError(AppError::too_large(
            "body_too_large",
            "the request body is too large",
        )),
        _ => ApiError(AppError::malformed("bad_request", rejection.body_text())),
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The authenticated staff member behind a bearer token.
pub struct Caller(pub Staff);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        Ok(Self(state.authenticate(token).await?))
    }
}

/// Staff credentials if presented; a presented but invalid token is still refused.
pub struct MaybeCaller(pub Option<Staff>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Ok(Self(None));
        }
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        Ok(Self(Some(state.authenticate(token).await?)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenCaseBody {
    subject: String,
    action: Action,
    channel: Channel,
    caller_number: Option<String>,
    ticket: Option<String>,
    note: Option<String>,
    new_contact: Option<String>,
    requester: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartVerificationBody {
    method: Method,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestBody {
    decision: Decision,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    subject: String,
    pass: String,
    /// `passkey` (the default) or `totp`.
    #[serde(default)]
    authenticator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    decision: Decision,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    s.store().ping().await?;
    Ok(Json(
        json!({ "status": "ready", "store": s.store().backend() }),
    ))
}

async fn search_subjects(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let query = q.get("q").map(String::as_str).unwrap_or_default();
    Ok(Json(
        json!({ "subjects": s.search_subjects(&caller, query).await? }),
    ))
}

async fn open_case(
    State(s): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<OpenCaseBody>,
) -> Result<impl IntoResponse, ApiError> {
    let view = s
        .open_case(
            &caller,
            OpenCase {
                subject: body.subject,
                action: body.action,
                channel: body.channel,
                caller_number: body.caller_number,
                ticket: body.ticket,
                note: body.note,
                new_contact: body.new_contact,
                requester: body.requester,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_cases(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let state = q
        .get("state")
        .map(|v| parse_id::<CaseState>("state", v))
        .transpose()?;
    let mine = match q.get("mine").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("mine must be true or false")),
    };
    Ok(Json(
        json!({ "cases": s.list_cases(&caller, state, mine).await? }),
    ))
}

async fn get_case(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.get_case(&caller, &id).await?))
}

async fn case_audit(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({ "entries": s.case_audit(&caller, &id).await? }),
    ))
}

async fn start_verification(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StartVerificationBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (vid, case) = s.start_verification(&caller, &id, body.method).await?;
    let verification = case.verifications.iter().find(|v| v.id == vid);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "verification": verification, "case": case })),
    ))
}

async fn answer_verification(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((id, vid)): Path<(String, String)>,
    ApiJson(body): ApiJson<AnswerBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.answer_code(&caller, &id, &vid, &body.code).await?))
}

async fn execute(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.execute(&caller, &id).await?))
}

async fn deny(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.end_case(&caller, &id, true, &body.reason).await?))
}

/// `POST /api/v1/cases/{id}/self-service-link`: send the caller a self-service link instead.
async fn self_service_link(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.send_self_service_link(&caller, &id).await?))
}

async fn cancel(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.end_case(&caller, &id, false, &body.reason).await?))
}

/// The agent's account of a callback is not evidence: a callback passes only when the person
/// who answers the phone of record keys in the code, as the telephony provider reports.
async fn record_callback() -> ApiError {
    ApiError(AppError::gone(
        "callback_outcome_not_accepted",
        "a callback passes only when the subject keys in the code on the call Deskgate places; the agent's outcome is not recorded",
    ))
}

/// The telephony provider's Gather webhook (form-encoded, `X-Twilio-Signature`). The signed URL
/// is the one Deskgate put in the call's TwiML: `public_url` and this path.
async fn callback_gathered(
    State(s): State<AppState>,
    Path((id, vid)): Path<(String, String)>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
    axum::Form(params): axum::Form<Vec<(String, String)>>,
) -> Result<impl IntoResponse, ApiError> {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!(
        "{}{path_and_query}",
        s.config().public_url.trim_end_matches('/')
    );
    let signature = headers
        .get(deskgate_app::telephony::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let twiml = s
        .callback_gathered(&id, &vid, &url, &params, signature)
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], twiml))
}

async fn approve(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApprovalBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        s.approve(&caller, &id, body.decision, &body.reason).await?,
    ))
}

async fn pending_approvals(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({ "cases": s.pending_approvals(&caller).await? }),
    ))
}

async fn break_glass(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.break_glass(&caller, &id, &body.reason).await?))
}

async fn break_glass_report(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        json!({ "cases": s.break_glass_report(&caller).await? }),
    ))
}

async fn resume(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.resume(&caller, &id).await?))
}

async fn reload_policy(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.reload_policy(Some(&caller)).await?))
}

/// JSON for integrations; a person's browser following the emailed link goes to the page.
/// This first GET is the one request that may carry the token in its path.
async fn attestation_view(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    // Anything but a well-formed token cannot be a link we sent (and must not reach a
    // Location header).
    if !link_tokens::well_formed(&token) {
        return Err(ApiError::not_found("link"));
    }
    if wants_page {
        return Ok(
            axum::response::Redirect::to(&format!("/console/attest/{token}")).into_response(),
        );
    }
    Ok(Json(
        s.attestation_view(&token, attestation_session(&headers))
            .await?,
    )
    .into_response())
}

/// The same view, for a client presenting the token in the `X-Link-Token` header.
async fn attestation_view_by_header(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let token = link_tokens::presented(&headers, None, None)?;
    Ok(Json(
        s.attestation_view(&token, attestation_session(&headers))
            .await?,
    ))
}

/// The attestation session a respondent presents after signing in.
fn attestation_session(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("x-attestation-session")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Sends the respondent a sign-in code on their own phone of record.
async fn attestation_code(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let token = link_tokens::presented(&headers, None, None)?;
    Ok(Json(s.send_attestation_code(&token).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    code: String,
}

/// Checks the sign-in code; answers with the attestation session.
async fn attestation_sign_in(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<impl IntoResponse, ApiError> {
    let token = link_tokens::presented(&headers, None, None)?;
    Ok(Json(s.sign_in_to_attestation(&token, &body.code).await?))
}

async fn attest(
    State(s): State<AppState>,
    MaybeCaller(presenter): MaybeCaller,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<AttestBody>,
) -> Result<impl IntoResponse, ApiError> {
    let token = link_tokens::presented(&headers, None, None)?;
    let case = s
        .attest(
            &token,
            body.decision,
            presenter.as_ref(),
            attestation_session(&headers),
        )
        .await?;
    Ok(Json(json!({
        "decision": body.decision,
        "case_id": case.id,
        "case_state": case.state,
    })))
}

fn number(q: &HashMap<String, String>, key: &str) -> Result<u64, ApiError> {
    q.get(key)
        .ok_or_else(|| ApiError::invalid(format!("{key} is required")))?
        .parse()
        .map_err(|_| ApiError::invalid(format!("{key} must be a non-negative integer")))
}

async fn audit_checkpoint(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.audit_checkpoint(&caller, false).await?))
}

async fn cut_checkpoint(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.audit_checkpoint(&caller, true).await?))
}

async fn audit_entries(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let start = number(&q, "start")?;
    let end = number(&q, "end")?;
    Ok(Json(s.audit_entries(&caller, start, end).await?))
}

async fn inclusion_proof(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let index = number(&q, "index")?;
    let size = number(&q, "size")?;
    Ok(Json(s.audit_inclusion(&caller, index, size).await?))
}

async fn consistency_proof(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let from = number(&q, "from")?;
    let to = number(&q, "to")?;
    Ok(Json(s.audit_consistency(&caller, from, to).await?))
}

async fn idv_webhook(
    State(s): State<AppState>,
    Path(vendor): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.idv_webhook(&vendor, &headers, &body).await?))
}

/// A link's token sent as a form field by the pages below.
#[derive(Deserialize)]
struct LinkForm {
    token: String,
}

/// The token of a POST to a token-free link route: the header, else the form field.
fn form_token(
    headers: &axum::http::HeaderMap,
    form: Result<axum::Form<LinkForm>, axum::extract::rejection::FormRejection>,
) -> Result<String, ApiError> {
    let form = form.ok().map(|axum::Form(f)| f.token);
    Ok(link_tokens::presented(headers, form.as_deref(), None)?)
}

/// A one-button page, no script, whose form POSTs the token in its body to `action`.
fn link_page(
    title: &str,
    heading: &str,
    text: &str,
    action: &str,
    token: &str,
    button: &str,
) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>{title}</title></head><body><main><h1>{heading}</h1><p>{text}</p>\
        <form method=\"post\" action=\"{action}\">\
        <input type=\"hidden\" name=\"token\" value=\"{token}\">\
        <button type=\"submit\">{button}</button></form></main></body></html>"
    );
    axum::response::Html(page).into_response()
}

/// The page the emailed "this was not me" link opens: one button, no script. The button POSTs
/// the token in the form body to the token-free `/not-me`.
async fn not_me_page(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    s.check_not_me(&token).await?;
    Ok(link_page(
        "Report an account recovery",
        "Was this recovery not you?",
        "Pressing the button locks the account at once and alerts the security team.",
        "/not-me",
        &token,
        "This was not me: lock the account",
    ))
}

/// The page the retrieval link opens: fetching it changes nothing, so a mail scanner that
/// follows links cannot use the one retrieval up.
async fn retrieval_page(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    s.check_retrieval(&token).await?;
    Ok(link_page(
        "Retrieve a service secret",
        "Retrieve the rotated service secret",
        "It is shown once. Put it straight into the secret store.",
        "/retrieve",
        &token,
        "Show the secret once",
    ))
}

async fn retrieve_secret(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<LinkForm>, axum::extract::rejection::FormRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let token = form_token(&headers, form)?;
    Ok(Json(s.retrieve_secret(&token).await?))
}

async fn redeem_pass(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<impl IntoResponse, ApiError> {
    match body.authenticator.as_deref() {
        None | Some("passkey") => Ok(Json(
            s.redeem_pass_for_passkey(&body.subject, &body.pass).await?,
        )),
        Some("totp") => Ok(Json(s.redeem_pass(&body.subject, &body.pass).await?)),
        Some(_) => Err(ApiError::invalid("authenticator must be passkey or totp")),
    }
}

async fn report_not_me(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<LinkForm>, axum::extract::rejection::FormRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let token = form_token(&headers, form)?;
    Ok(Json(s.report_not_me(&token).await?))
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

pub fn router(service: Arc<Service>) -> Router {
    let limit = service.config().max_body_bytes;
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(link_routes())
        .nest("/api/v1", api_routes())
        .merge(crate::console::router(service.clone()))
        .merge(crate::passkey_pages::router(service.clone()))
        .merge(crate::observability::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(crate::observability::track));
    with_security_headers(routes).with_state(service)
}

/// The JSON API under `/api/v1`: cases and their steps, approvals, reports, policy reload,
/// vendor webhooks, the temporary pass and the audit log's proofs.
fn api_routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/subjects", get(search_subjects))
        .route("/cases", post(open_case).get(list_cases))
        .route("/cases/{id}", get(get_case))
        .route("/cases/{id}/audit", get(case_audit))
        .route("/cases/{id}/verifications", post(start_verification))
        .route("/cases/{id}/verifications/{vid}", post(answer_verification))
        .route(
            "/cases/{id}/verifications/{vid}/callback",
            post(record_callback),
        )
        .route("/cases/{id}/execute", post(execute))
        .route("/cases/{id}/deny", post(deny))
        .route("/cases/{id}/cancel", post(cancel))
        .route("/cases/{id}/self-service-link", post(self_service_link))
        .route("/cases/{id}/approvals", post(approve))
        .route("/cases/{id}/resume", post(resume))
        .route("/cases/{id}/break-glass", post(break_glass))
        .route("/reports/break-glass", get(break_glass_report))
        .route("/approvals", get(pending_approvals))
        .route("/admin/policy/reload", post(reload_policy))
        .route("/webhooks/idv/{vendor}", post(idv_webhook))
        .route(
            "/webhooks/telephony/gather/{id}/{vid}",
            post(callback_gathered),
        )
        .route("/tap/redeem", post(redeem_pass))
        .route("/tap/passkey", post(crate::passkey_pages::finish_tap))
        .route(
            "/audit/checkpoint",
            get(audit_checkpoint).post(cut_checkpoint),
        )
        .route("/audit/entries", get(audit_entries))
        .route("/audit/proof/inclusion", get(inclusion_proof))
        .route("/audit/proof/consistency", get(consistency_proof))
}

/// The pages and answers behind links sent to people of record (attestation, "not me", secret
/// pickup).
fn link_routes() -> Router<Arc<Service>> {
    Router::new()
        // Only the first GET carries a link token in its path; everything after sends it in
        // the X-Link-Token header or a form field (see `link_tokens`).
        .route("/attest", get(attestation_view_by_header).post(attest))
        .route("/attest/code", post(attestation_code))
        .route("/attest/sign-in", post(attestation_sign_in))
        .route(
            "/attest/{token}",
            get(attestation_view).post(link_tokens::refuse_in_path),
        )
        .route("/attest/{token}/code", post(link_tokens::refuse_in_path))
        .route("/attest/{token}/sign-in", post(link_tokens::refuse_in_path))
        .route("/not-me", post(report_not_me))
        .route(
            "/not-me/{token}",
            get(not_me_page).post(link_tokens::refuse_in_path),
        )
        .route("/retrieve", post(retrieve_secret))
        .route(
            "/retrieve/{token}",
            get(retrieval_page).post(link_tokens::refuse_in_path),
        )
}

/// Headers every answer carries: nothing cached, sniffed, framed or referred, and a strict
/// content security policy unless a page set its own.
fn with_security_headers(routes: Router<Arc<Service>>) -> Router<Arc<Service>> {
    routes
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
}
