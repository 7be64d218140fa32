//! The security officer's page: escalated cases to take over, the break-glass report, and the
//! subjects on probation or flagged. Break-glass itself is opened from the case page. The data and
//! who may see it are the service's ([`Service::security_overview`](deskgate_app::service::Service::security_overview)).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::cases::{Notice, after_action};
use super::session::SignedIn;
use super::{Console, Failure, Nav, at, refuse, words};
use deskgate_app::AppError;
use deskgate_app::service::WatchedSubject;
use deskgate_app::views::CaseSummary;

struct CaseRow {
    id: String,
    reference: String,
    subject: String,
    tier: String,
    action: String,
    agent_id: String,
    state: String,
    opened_at: String,
    updated_at: String,
    /// Why it was escalated.
    reason: String,
    /// How long it has waited since.
    waiting: String,
}

impl From<&CaseSummary> for CaseRow {
    fn from(c: &CaseSummary) -> Self {
        Self {
            id: c.id.clone(),
            reference: c.reference.clone(),
            subject: c.subject_name.clone(),
            tier: words(c.tier),
            action: words(c.action),
            agent_id: c.agent_id.clone(),
            state: words(c.state),
            opened_at: at(c.opened_at),
            updated_at: at(c.updated_at),
            reason: c.reason.clone().unwrap_or_default(),
            waiting: String::new(),
        }
    }
}

/// An escalated case with how long it has waited for an officer.
fn waiting_row(c: &CaseSummary, now: chrono::DateTime<chrono::Utc>) -> CaseRow {
    let minutes = (now - c.updated_at).num_minutes().max(0);
    CaseRow {
        waiting: if minutes < 60 {
            format!("{minutes} min")
        } else {
            format!("{} h {:02} min", minutes / 60, minutes % 60)
        },
        ..CaseRow::from(c)
    }
}

struct Watched {
    id: String,
    name: String,
    tier: String,
    probation_until: Option<String>,
    flagged: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/security.html")]
struct SecurityPage {
    nav: Option<Nav>,
    escalated: Vec<CaseRow>,
    break_glass: Vec<CaseRow>,
    watched: Vec<Watched>,
}

impl From<WatchedSubject> for Watched {
    fn from(w: WatchedSubject) -> Self {
        Self {
            id: w.id,
            name: w.name,
            tier: words(w.tier),
            probation_until: w.probation_until.map(at),
            flagged: w.flagged,
        }
    }
}

pub(super) async fn security_page(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    let overview = match console.service.security_overview(&staff.0).await {
        Ok(overview) => overview,
        Err(e) if matches!(e, AppError::Forbidden(_) | AppError::PolicyDenied { .. }) => {
            return Ok(refuse(&staff, e.message()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(SecurityPage {
        nav: Some(staff.nav()),
        escalated: {
            let now = console.service.now();
            let mut waiting: Vec<&CaseSummary> = overview.escalated.iter().collect();
            // The longest wait first.
            waiting.sort_by_key(|c| c.updated_at);
            waiting.into_iter().map(|c| waiting_row(c, now)).collect()
        },
        break_glass: overview.break_glass.iter().map(CaseRow::from).collect(),
        watched: overview.watched.into_iter().map(Watched::from).collect(),
    }
    .into_response())
}

/// Takes an escalated case over; the case page then shows it in verification, owned by the
/// officer.
pub(super) async fn resume(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let result = console.service.resume(&staff.0, &id).await;
    after_action(&console, &staff, &id, result, Notice::Resumed).await
}

#[derive(Deserialize)]
pub(super) struct BreakGlassForm {
    reason: String,
}

pub(super) async fn break_glass(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<BreakGlassForm>,
) -> Result<Response, Failure> {
    let result = console
        .service
        .break_glass(&staff.0, &id, &form.reason)
        .await;
    after_action(&console, &staff, &id, result, Notice::BreakGlass).await
}
