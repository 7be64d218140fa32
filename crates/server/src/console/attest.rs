//! The manager's page behind the emailed attestation link: what they are asked to vouch for,
//! and Confirm / Reject. The link itself is the credential (single use, short-lived); no
//! sign-in is needed, as for the JSON form of the link.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use deskgate_core::Decision;
use serde::Deserialize;

use super::{Console, Failure, Nav, at, error_page, words};
use crate::service::parse_id;

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
#[template(path = "console/attested.html")]
struct AttestedPage {
    nav: Option<Nav>,
    confirmed: bool,
    subject_name: String,
}

pub(super) async fn attestation_page(
    State(console): State<Console>,
    Path(token): Path<String>,
) -> Result<Response, Failure> {
    let view = console.service.attestation_view(&token).await?;
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

#[derive(Deserialize)]
pub(super) struct AttestForm {
    decision: String,
}

/// Records the manager's decision. No staff credentials are presented: the link alone is the
/// manager's proof, exactly as for the JSON form of the link.
pub(super) async fn attest(
    State(console): State<Console>,
    Path(token): Path<String>,
    Form(form): Form<AttestForm>,
) -> Response {
    let result = match parse_id::<Decision>("decision", &form.decision) {
        Ok(decision) => console
            .service
            .attest(&token, decision, None)
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
