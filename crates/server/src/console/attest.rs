//! The manager's page behind the emailed attestation link. The link reached a mailbox, which is
//! what an attacker who took over an account can read, so the page first asks the manager to
//! prove who they are with a code sent to their own phone of record; only then do the case
//! summary and Confirm / Reject appear. The sign-in is kept in a cookie scoped to this one link.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_core::Decision;
use serde::Deserialize;

use super::{Console, Failure, Nav, at, error_page, words};
use crate::error::ApiError;
use crate::service::parse_id;

/// The cookie holding the attestation session, scoped to the link's own path.
const COOKIE: &str = "deskgate_attest";

#[derive(Template, WebTemplate)]
#[template(path = "console/attest.html")]
struct AttestPage {
    nav: Option<Nav>,
    token: String,
    manager: String,
    subject_name: String,
    subject_id: String,
    action: String,
    channel: String,
    agent_id: String,
    ticket: String,
    opened_at: String,
    risk_level: String,
    risk_reasons: Vec<String>,
    expires_at: String,
    question: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/attest_sign_in.html")]
struct SignInPage {
    nav: Option<Nav>,
    token: String,
    manager: String,
    code_goes_to: String,
    code_pending: bool,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/attested.html")]
struct AttestedPage {
    nav: Option<Nav>,
    confirmed: bool,
    subject_name: String,
}

fn session(headers: &HeaderMap) -> Option<&str> {
    super::cookie(headers, COOKIE)
}

/// The sign-in step, with what went wrong last if anything.
async fn sign_in_page(
    console: &Console,
    token: String,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    match console.service.attestation_sign_in_hint(&token).await {
        Ok(hint) => (
            status,
            SignInPage {
                nav: None,
                token,
                manager: hint["name"].as_str().unwrap_or_default().to_owned(),
                code_goes_to: hint["code_goes_to"].as_str().unwrap_or_default().to_owned(),
                code_pending: hint["code_pending"].as_bool().unwrap_or(false),
                error,
            },
        )
            .into_response(),
        Err(e) => error_page(None, &e),
    }
}

pub(super) async fn attestation_page(
    State(console): State<Console>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let view = match console
        .service
        .attestation_view(&token, session(&headers))
        .await
    {
        Ok(view) => view,
        Err(e) if e.code == "manager_sign_in_required" => {
            return Ok(sign_in_page(&console, token, StatusCode::OK, None).await);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(AttestPage {
        nav: None,
        token,
        manager: view.respondent.name,
        subject_name: view.subject.name,
        subject_id: view.subject.id,
        action: words(view.action),
        channel: words(view.channel),
        agent_id: view.agent_id,
        ticket: view.ticket.unwrap_or_default(),
        opened_at: at(view.opened_at),
        risk_level: view.risk.level.to_string(),
        risk_reasons: view.risk.reasons.into_iter().map(|r| r.text).collect(),
        expires_at: at(view.expires_at),
        question: view.question,
    }
    .into_response())
}

/// Sends the sign-in code and shows the form to enter it.
pub(super) async fn send_code(
    State(console): State<Console>,
    Path(token): Path<String>,
) -> Response {
    match console.service.send_attestation_code(&token).await {
        Ok(_) => sign_in_page(&console, token, StatusCode::OK, None).await,
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            sign_in_page(&console, token, e.status, Some(e.message)).await
        }
        Err(e) => error_page(None, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
}

/// Checks the code; on success keeps the attestation session in a cookie for this link only.
pub(super) async fn sign_in(
    State(console): State<Console>,
    Path(token): Path<String>,
    Form(form): Form<CodeForm>,
) -> Response {
    match console
        .service
        .sign_in_to_attestation(&token, &form.code)
        .await
    {
        Ok(held) => {
            let max_age = (held.expires_at - console.service.now())
                .num_seconds()
                .max(0);
            let cookie = format!(
                "{COOKIE}={}; Path=/console/attest/{token}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
                held.session
            );
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    let mut response =
                        Redirect::to(&format!("/console/attest/{token}")).into_response();
                    response.headers_mut().insert(header::SET_COOKIE, value);
                    response
                }
                Err(_) => error_page(
                    None,
                    &ApiError::invalid("the link is not a valid cookie path"),
                ),
            }
        }
        Err(e) if e.code == "wrong_code" || e.code == "sign_in_code_expired" => {
            sign_in_page(&console, token, e.status, Some(e.message)).await
        }
        Err(e) => error_page(None, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct AttestForm {
    decision: String,
}

/// Records the manager's decision, with the attestation session from their sign-in.
pub(super) async fn attest(
    State(console): State<Console>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AttestForm>,
) -> Response {
    let result = match parse_id::<Decision>("decision", &form.decision) {
        Ok(decision) => console
            .service
            .attest(&token, decision, None, session(&headers))
            .await
            .map(|case| (decision, case)),
        Err(e) => Err(e),
    };
    match result {
        Ok((decision, case)) => AttestedPage {
            nav: None,
            confirmed: decision == Decision::Confirm,
            subject_name: case.subject.name,
        }
        .into_response(),
        Err(e) => error_page(None, &e),
    }
}
