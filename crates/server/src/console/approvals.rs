//! The supervisor's and security officer's page: live cases waiting for an approval their role
//! can give, each with approve / reject and a reason.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_core::Decision;
use serde::Deserialize;

use super::session::SignedIn;
use super::{Console, Failure, Nav, at, words};
use deskgate_app::AppError;
use deskgate_app::service::parse_id;

struct Waiting {
    id: String,
    reference: String,
    subject: String,
    tier: String,
    action: String,
    agent_id: String,
    risk: String,
    opened_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/approvals.html")]
struct ApprovalsPage {
    nav: Option<Nav>,
    cases: Vec<Waiting>,
    error: Option<String>,
    decided: bool,
}

async fn render(
    console: &Console,
    staff: &SignedIn,
    error: Option<&AppError>,
    decided: bool,
) -> Result<Response, Failure> {
    let cases = console
        .service
        .pending_approvals(&staff.0)
        .await?
        .iter()
        .map(|c| Waiting {
            id: c.id.clone(),
            reference: c.reference.clone(),
            subject: c.subject_name.clone(),
            tier: words(c.tier),
            action: words(c.action),
            agent_id: c.agent_id.clone(),
            risk: c.risk.to_string(),
            opened_at: at(c.opened_at),
        })
        .collect();
    let page = ApprovalsPage {
        nav: Some(staff.nav()),
        cases,
        error: error.map(|e| e.message().to_owned()),
        decided,
    };
    Ok(match error {
        Some(e) => (crate::error::status(e), page).into_response(),
        None => page.into_response(),
    })
}

#[derive(Deserialize)]
pub(super) struct DecidedQuery {
    decided: Option<bool>,
}

/// Approvals waiting for me.
pub(super) async fn queue(
    State(console): State<Console>,
    staff: SignedIn,
    Query(q): Query<DecidedQuery>,
) -> Result<Response, Failure> {
    render(&console, &staff, None, q.decided.unwrap_or(false)).await
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    decision: String,
    reason: String,
    /// `case` when decided from the case page: the answer goes back there.
    #[serde(default)]
    back: String,
}

pub(super) async fn decide(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, Failure> {
    let result = match parse_id::<Decision>("decision", &form.decision) {
        Ok(decision) => {
            console
                .service
                .approve(&staff.0, &id, decision, &form.reason)
                .await
        }
        Err(e) => Err(e),
    };
    match (result, form.back.as_str()) {
        (Ok(_), "case") => {
            Ok(Redirect::to(&format!("/console/cases/{id}?notice=decided")).into_response())
        }
        (Ok(_), _) => Ok(Redirect::to("/console/approvals?decided=true").into_response()),
        (Err(e), "case") => {
            super::cases::after_action::<()>(
                &console,
                &staff,
                &id,
                Err(e),
                super::cases::Notice::Decided,
            )
            .await
        }
        (Err(e), _) => render(&console, &staff, Some(&e), false).await,
    }
}
