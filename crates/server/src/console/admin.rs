//! The admin's page: the policy bundle in force (digest, policies, its own tests) with a reload
//! button, and the staff directory. Tokens are not listed: only their hashes are stored.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::SignedIn;
use super::{Console, Failure, Nav, refuse, words};
use deskgate_app::AppError;

/// One cell of the attack matrix, in words.
struct PathRow {
    tier: String,
    action: String,
    risk: String,
    paths: usize,
    cheapest: String,
}

struct StaffRow {
    id: String,
    name: String,
    role: String,
    shift: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/admin.html")]
struct AdminPage {
    nav: Option<Nav>,
    reloaded: bool,
    error: Option<String>,
    digest: String,
    policy_count: usize,
    tests_passed: usize,
    tests_failed: usize,
    /// Names of the failing test cases, with where they are written.
    failing: Vec<String>,
    /// The attack matrix of the bundle in force, or why it could not be computed.
    matrix: Vec<PathRow>,
    matrix_error: Option<String>,
    /// Paths that break the bundle's gates, in words.
    violations: Vec<String>,
    staff: Vec<StaffRow>,
}

/// The attack matrix as rows: each cell's cheapest capability sets.
fn matrix_rows(analysis: &deskgate_app::views::AttackPaths) -> Vec<PathRow> {
    analysis
        .cells
        .iter()
        .map(|c| PathRow {
            tier: words(c.tier),
            action: words(c.action),
            risk: words(c.risk),
            paths: c.paths.len(),
            cheapest: match (&c.closed, c.paths.is_empty()) {
                (Some(why), _) => format!("closed: {why}"),
                (None, true) => "unreachable with every capability".to_owned(),
                (None, false) => c
                    .cheapest()
                    .iter()
                    .map(|p| {
                        p.iter()
                            .map(|cap| cap.api_id().replace('_', " "))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            },
        })
        .collect()
}

async fn render(
    console: &Console,
    staff: &SignedIn,
    reloaded: bool,
    error: Option<&AppError>,
) -> Result<Response, Failure> {
    let overview = console.service.admin_overview(&staff.0).await?;
    let (bundle, report) = (&overview.bundle, &overview.tests);
    let page = AdminPage {
        nav: Some(staff.nav()),
        reloaded,
        error: error.map(|e| e.message().to_owned()),
        digest: bundle.digest().to_owned(),
        policy_count: bundle.policy_count(),
        tests_passed: report.passed(),
        tests_failed: report.failed(),
        failing: report
            .results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| format!("{} ({}:{})", r.name, r.file, r.line))
            .collect(),
        matrix: overview
            .analysis
            .as_ref()
            .map(matrix_rows)
            .unwrap_or_default(),
        matrix_error: overview.analysis.as_ref().err().cloned(),
        violations: overview
            .analysis
            .as_ref()
            .map(|a| a.violations.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        staff: overview
            .staff
            .iter()
            .map(|s| StaffRow {
                id: s.id.clone(),
                name: s.name.clone(),
                role: words(s.role),
                shift: s.shift.clone(),
            })
            .collect(),
    };
    let status = error.map_or(StatusCode::OK, crate::error::status);
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub(super) struct ReloadedQuery {
    reloaded: Option<bool>,
}

pub(super) async fn admin_page(
    State(console): State<Console>,
    staff: SignedIn,
    Query(q): Query<ReloadedQuery>,
) -> Result<Response, Failure> {
    match render(&console, &staff, q.reloaded.unwrap_or(false), None).await {
        Err(Failure(e)) if matches!(e, AppError::Forbidden(_) | AppError::PolicyDenied { .. }) => {
            Ok(refuse(&staff, e.message()))
        }
        other => other,
    }
}

/// Reloads the bundle from disk. A refused bundle leaves the running one in force; the page
/// shows the service's reasons next to the unchanged digest.
pub(super) async fn reload(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    match console.service.reload_policy(Some(&staff.0)).await {
        Ok(_) => Ok(Redirect::to("/console/admin?reloaded=true").into_response()),
        Err(AppError::Forbidden(_) | AppError::PolicyDenied { .. }) => {
            Ok(refuse(&staff, "only admins reload the policy bundle"))
        }
        Err(e) => render(&console, &staff, false, Some(&e)).await,
    }
}
