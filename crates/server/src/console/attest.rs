//! The manager's page behind the emailed attestation link. The link reached a mailbox, which is
//! what an attacker who took over an account can read, so the page first asks the manager to
//! prove who they are with a code sent to their own phone of record; only then do the case
//! summary and Confirm / Reject appear. The first GET of the link moves its token into a
//! short-lived HttpOnly cookie and redirects to the token-free `/console/attest`; the forms
//! after it carry no token in their URLs (see [`crate::link_tokens`]). The sign-in is kept in a
//! second cookie, bound to the link by the service.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_core::Decision;
use serde::Deserialize;

use super::{Console, Failure, Nav, at, error_page, words};
use deskgate_app::AppError;
use deskgate_app::service::parse_id;

/// The cookie holding the attestation session, scoped to the attestation pages.
const COOKIE: &str = "deskgate_attest";
/// The cookie holding the link's token after its first GET.
const LINK_COOKIE: &str = "deskgate_attest_link";
/// Where the attestation pages live, token-free.
const PAGES: &str = "/console/attest";

#[derive(Template, WebTemplate)]
#[template(path = "console/attest.html")]
struct AttestPage {
    nav: Option<Nav>,
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
    /// The manager did not recognise the request: security was alerted.
    reported: bool,
    subject_name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/attest_link_error.html")]
struct LinkErrorPage {
    nav: Option<Nav>,
    message: String,
    /// The link was used or ran out, rather than refused for another reason.
    spent: bool,
}

/// A refusal on the manager's pages, in words for a manager (not the staff console's error
/// page): a used or expired link says so and what to do.
fn link_error(e: &AppError) -> Response {
    let spent = matches!(
        e,
        AppError::NotFound(_) | AppError::Conflict(_) | AppError::Gone(_)
    );
    (
        crate::error::status(e),
        LinkErrorPage {
            nav: None,
            message: e.message().to_owned(),
            spent,
        },
    )
        .into_response()
}

fn session(headers: &HeaderMap) -> Option<&str> {
    crate::link_tokens::cookie(headers, COOKIE)
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
                manager: hint["name"].as_str().unwrap_or_default().to_owned(),
                code_goes_to: hint["code_goes_to"].as_str().unwrap_or_default().to_owned(),
                code_pending: hint["code_pending"].as_bool().unwrap_or(false),
                error,
            },
        )
            .into_response(),
        Err(e) => link_error(&e),
    }
}

/// The link's token, from the cookie its first GET set.
fn link_token(headers: &HeaderMap) -> Result<String, AppError> {
    crate::link_tokens::presented(headers, None, Some(LINK_COOKIE)).map_err(|e| {
        if e.code() == "link_token_required" {
            AppError::unauthenticated_as(
                "link_token_required",
                "open the link in the email you received again",
            )
        } else {
            e
        }
    })
}

/// The first GET of the emailed link: a live link's token goes into a cookie, the browser to
/// the page.
pub(super) async fn open_link(
    State(console): State<Console>,
    Path(token): Path<String>,
) -> Response {
    if !crate::link_tokens::well_formed(&token) {
        return link_error(&AppError::not_found("link"));
    }
    match console.service.check_attestation_link(&token).await {
        Ok(()) => crate::link_tokens::into_cookie(&token, LINK_COOKIE, PAGES, PAGES),
        Err(e) => link_error(&e),
    }
}

pub(super) async fn attestation_page(
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let token = link_token(&headers)?;
    let view = match console
        .service
        .attestation_view(&token, session(&headers))
        .await
    {
        Ok(view) => view,
        Err(e) if e.code() == "manager_sign_in_required" => {
            return Ok(sign_in_page(&console, token, StatusCode::OK, None).await);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(AttestPage {
        nav: None,
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
pub(super) async fn send_code(State(console): State<Console>, headers: HeaderMap) -> Response {
    let token = match link_token(&headers) {
        Ok(token) => token,
        Err(e) => return link_error(&e),
    };
    match console.service.send_attestation_code(&token).await {
        Ok(_) => sign_in_page(&console, token, StatusCode::OK, None).await,
        Err(e) if matches!(e, AppError::RateLimited(_)) => {
            sign_in_page(
                &console,
                token,
                crate::error::status(&e),
                Some(e.message().to_owned()),
            )
            .await
        }
        Err(e) => link_error(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
}

/// Checks the code; on success keeps the attestation session in a cookie (the service binds
/// it to this link).
pub(super) async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let token = match link_token(&headers) {
        Ok(token) => token,
        Err(e) => return link_error(&e),
    };
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
                "{COOKIE}={}; Path={PAGES}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
                held.session
            );
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    let mut response = Redirect::to(PAGES).into_response();
                    response.headers_mut().insert(header::SET_COOKIE, value);
                    response
                }
                Err(_) => error_page(
                    None,
                    &AppError::invalid("the link is not a valid cookie path"),
                ),
            }
        }
        Err(e) if e.code() == "wrong_code" || e.code() == "sign_in_code_expired" => {
            sign_in_page(
                &console,
                token,
                crate::error::status(&e),
                Some(e.message().to_owned()),
            )
            .await
        }
        Err(e) => link_error(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct AttestForm {
    decision: String,
}

/// Records the manager's decision, with the attestation session from their sign-in.
pub(super) async fn attest(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<AttestForm>,
) -> Response {
    let token = match link_token(&headers) {
        Ok(token) => token,
        Err(e) => return link_error(&e),
    };
    // "I do not recognise this": a rejection, and the security team is alerted.
    let result = if form.decision == "unrecognised" {
        console
            .service
            .report_unrecognised(&token, session(&headers))
            .await
            .map(|case| (Decision::Reject, true, case))
    } else {
        match parse_id::<Decision>("decision", &form.decision) {
            Ok(decision) => console
                .service
                .attest(&token, decision, None, session(&headers))
                .await
                .map(|case| (decision, false, case)),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok((decision, reported, case)) => AttestedPage {
            nav: None,
            confirmed: decision == Decision::Confirm,
            reported,
            subject_name: case.subject.name,
        }
        .into_response(),
        Err(e) => link_error(&e),
    }
}
