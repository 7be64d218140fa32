//! My queue, and finding a case by the reference a colleague reads out.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::SignedIn;
use super::super::{Console, Failure, Nav, at, words};
use deskgate_app::AppError;
use deskgate_app::views::CaseSummary;
use deskgate_core::CaseState;

struct QueueRow {
    id: String,
    reference: String,
    subject: String,
    action: String,
    state: String,
    risk: String,
    risk_label: String,
    opened_at: String,
}

impl From<&CaseSummary> for QueueRow {
    fn from(c: &CaseSummary) -> Self {
        Self {
            id: c.id.clone(),
            reference: c.reference.clone(),
            subject: c.subject_name.clone(),
            action: words(c.action),
            state: words(c.state),
            risk: c.risk.to_string(),
            risk_label: words(c.risk),
            opened_at: at(c.opened_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    cases: Vec<QueueRow>,
    /// Why a reference typed into "Find a case" led nowhere.
    find_error: Option<String>,
}

/// The signed-in staff member's live cases.
async fn queue_rows(console: &Console, staff: &SignedIn) -> Result<Vec<QueueRow>, Failure> {
    if !staff.0.role.works_cases() {
        return Ok(Vec::new());
    }
    let mut live: Vec<CaseSummary> = console
        .service
        .list_cases(&staff.0, None, true)
        .await?
        .into_iter()
        .filter(|c| c.state.is_live())
        .collect();
    // What the agent can finish now comes first: approved cases (their grant runs for minutes),
    // then cases in verification, then new ones; a case with an officer comes last.
    live.sort_by_key(|c| {
        let rank = match c.state {
            CaseState::Approved => 0,
            CaseState::Verifying => 1,
            CaseState::Open => 2,
            _ => 3,
        };
        (rank, c.opened_at)
    });
    Ok(live.iter().map(QueueRow::from).collect())
}

/// My queue: the signed-in staff member's live cases.
pub(crate) async fn queue(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    Ok(QueuePage {
        nav: Some(staff.nav()),
        cases: queue_rows(&console, &staff).await?,
        find_error: None,
    }
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct FindQuery {
    reference: Option<String>,
}

/// "Find a case": the reference a caller or a colleague reads out (`DG-10427`) opens its page.
pub(crate) async fn find_case(
    State(console): State<Console>,
    staff: SignedIn,
    Query(q): Query<FindQuery>,
) -> Result<Response, Failure> {
    let typed = q.reference.unwrap_or_default();
    match console.service.find_case(&staff.0, &typed).await {
        Ok(id) => Ok(Redirect::to(&format!("/console/cases/{id}")).into_response()),
        Err(e) => Ok((
            crate::error::status(&e),
            QueuePage {
                nav: Some(staff.nav()),
                cases: queue_rows(&console, &staff).await?,
                find_error: Some(match e {
                    AppError::NotFound(_) => format!("No case {} was found.", typed.trim()),
                    other => other.message().to_owned(),
                }),
            },
        )
            .into_response()),
    }
}
