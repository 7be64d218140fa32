//! The security officer's page: escalated cases to take over, the break-glass report, and the
//! subjects on probation or flagged. Break-glass itself is opened from the case page.

use std::collections::BTreeSet;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use deskgate_core::{CaseState, Role};
use deskgate_store::CaseFilter;
use serde::Deserialize;

use super::cases::{Notice, after_action};
use super::session::SignedIn;
use super::{Console, Failure, Nav, at, refuse, words};
use crate::error::ApiError;
use crate::views::CaseSummary;

/// Recent cases whose subjects are checked for probation and flags: probation follows an
/// execution, so executed cases name every subject on it unless older than this many cases.
const RECENT: u32 = 500;

struct CaseRow {
    id: String,
    subject_id: String,
    tier: String,
    action: String,
    agent_id: String,
    state: String,
    opened_at: String,
    updated_at: String,
}

impl From<&CaseSummary> for CaseRow {
    fn from(c: &CaseSummary) -> Self {
        Self {
            id: c.id.clone(),
            subject_id: c.subject_id.clone(),
            tier: words(c.tier),
            action: words(c.action),
            agent_id: c.agent_id.clone(),
            state: words(c.state),
            opened_at: at(c.opened_at),
            updated_at: at(c.updated_at),
        }
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

/// Subjects of recent cases who are on probation now or flagged by the security team.
async fn watched_subjects(console: &Console) -> Result<Vec<Watched>, ApiError> {
    let store = &console.service.store;
    let mut ids = BTreeSet::new();
    for state in [Some(CaseState::Executed), None] {
        let cases = store
            .list_cases(&CaseFilter {
                state,
                limit: RECENT,
                ..CaseFilter::default()
            })
            .await?;
        ids.extend(cases.into_iter().map(|c| c.subject_id));
    }
    let now = console.service.now();
    let mut watched = Vec::new();
    for id in ids {
        let Some(subject) = store.subject(&id).await? else {
            continue;
        };
        let on_probation = subject.on_probation(now);
        if on_probation || subject.flagged {
            watched.push(Watched {
                id: subject.id,
                name: subject.display_name,
                tier: words(subject.tier),
                probation_until: subject.probation_until.filter(|_| on_probation).map(at),
                flagged: subject.flagged,
            });
        }
    }
    Ok(watched)
}

pub(super) async fn security_page(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    if staff.0.role != Role::SecurityOfficer {
        return Ok(refuse(&staff, "this page is for security officers"));
    }
    let service = &console.service;
    let escalated = service
        .list_cases(&staff.0, Some(CaseState::Escalated), false)
        .await?;
    let break_glass = service.break_glass_report(&staff.0).await?;
    Ok(SecurityPage {
        nav: Some(staff.nav()),
        escalated: escalated.iter().map(CaseRow::from).collect(),
        break_glass: break_glass.iter().map(CaseRow::from).collect(),
        watched: watched_subjects(&console).await?,
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
