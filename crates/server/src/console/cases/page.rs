//! The case page: the request, the playbook, the verification controls and the live status
//! card htmx polls.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use deskgate_core::{ApiId, CaseState, Method, Role, VerificationState};

use super::super::session::SignedIn;
use super::super::{Console, Failure, Nav, at, words};
use super::{Notice, NoticeQuery};
use deskgate_app::AppError;
use deskgate_app::labels::in_sentence;
use deskgate_app::views::CaseView;

/// A method the agent can start, with the words on its button.
struct MethodButton {
    id: &'static str,
    label: &'static str,
}

fn method_label(method: Method) -> &'static str {
    match method {
        Method::SmsCode => "Send a code by text to the phone of record",
        Method::VoiceCode => "Call the phone of record with a code",
        Method::EmailCode => "Send a code to the email of record",
        Method::ManagerAttestation => "Ask the manager to confirm by link",
        Method::RecoveryCode => "Check a saved recovery code",
        Method::Passkey => "Ask for a passkey",
        Method::Push => "Send a push with number matching",
        Method::Totp => "Check an authenticator app code",
        Method::Callback => "Call back on the number of record",
        Method::IdProofing => "Start identity proofing",
        Method::Knowledge => "Knowledge questions (never count)",
    }
}

struct Step {
    number: u32,
    title: String,
    script: String,
    methods: Vec<MethodButton>,
}

/// A verification waiting for the code the caller reads back.
struct CodeEntry {
    id: String,
    label: String,
    attempts_left: u32,
    expires_at: String,
    /// Recovery codes are letters and digits; one-time codes are digits.
    numeric: bool,
}

struct VerificationRow {
    method: String,
    class: String,
    state: String,
    destination: String,
    counted: String,
}

/// The part of the case page that changes while the agent waits: state, evidence, approvals,
/// and the grant. Polled by htmx; rendered in full on every page load.
struct Live {
    case_id: String,
    state: String,
    /// A finished case stops polling.
    polling: bool,
    verifications: Vec<VerificationRow>,
    still_needed: Vec<String>,
    grant: Option<GrantPanel>,
    outcome: Option<String>,
}

struct GrantPanel {
    expires_at: String,
    remaining: String,
    /// The end of a cooling-off delay still running; execution waits for it.
    waiting_until: Option<String>,
    usable: bool,
}

fn remaining(until: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (until - now).num_seconds().max(0);
    format!("{} min {:02} s", seconds / 60, seconds % 60)
}

impl Live {
    fn build(case: &CaseView, not_before: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let verifications = case
            .verifications
            .iter()
            .map(|v| VerificationRow {
                method: words(v.method),
                class: words(v.class),
                state: words(v.state),
                destination: v.destination.clone().unwrap_or_default(),
                counted: if v.counts {
                    "counts".to_owned()
                } else {
                    v.not_counted_because.clone().unwrap_or_default()
                },
            })
            .collect();
        let mut still_needed = Vec::new();
        if case.state.is_live() && case.state != CaseState::Approved {
            if case.progress.classes_short > 0 {
                still_needed.push(format!(
                    "{} more independent verification(s)",
                    case.progress.classes_short
                ));
            }
            for set in &case.progress.missing_any_of {
                let names: Vec<String> = set.iter().map(words).collect();
                still_needed.push(format!("one of: {}", names.join(", ")));
            }
            for role in &case.progress.approvals_missing {
                still_needed.push(format!("approval by a {}", in_sentence(role)));
            }
        }
        // The grant is usable while approved, unconsumed, unexpired and past any cooling-off;
        // the service re-checks all of it at execute, this only decides whether to offer it.
        let grant = case
            .grant
            .as_ref()
            .filter(|g| case.state == CaseState::Approved && g.consumed_at.is_none())
            .map(|g| {
                let waiting = not_before.filter(|from| now < *from);
                GrantPanel {
                    expires_at: at(g.expires_at),
                    remaining: remaining(g.expires_at, now),
                    waiting_until: waiting.map(at),
                    usable: g.expires_at > now && waiting.is_none(),
                }
            });
        Self {
            case_id: case.id.clone(),
            state: words(case.state),
            polling: case.state.is_live(),
            verifications,
            still_needed,
            grant,
            outcome: case.outcome_reason.clone(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/case.html")]
struct CasePage {
    nav: Option<Nav>,
    notice: Option<&'static str>,
    error: Option<String>,
    id: String,
    reference: String,
    reference_digits: String,
    subject_id: String,
    subject_name: String,
    tier: String,
    action: String,
    channel: String,
    ticket: String,
    caller_number: String,
    opened_at: String,
    risk_level: String,
    risk_reasons: Vec<String>,
    steps: Vec<Step>,
    codes: Vec<CodeEntry>,
    /// A callback's one-time code, shown only on the page answering the start.
    read_out: Option<String>,
    can_end: bool,
    /// The case could be moved to the self-service page.
    can_self_serve: bool,
    /// Security officers may open break-glass on a case still short of its playbook.
    can_break_glass: bool,
    executed_at: Option<String>,
    live: Live,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/case_live.html")]
struct LiveFragment {
    live: Live,
}

pub(super) async fn render_case(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    notice: Option<Notice>,
    error: Option<&AppError>,
) -> Result<Response, Failure> {
    render_case_reading_out(console, staff, id, notice, error, None).await
}

pub(super) async fn render_case_reading_out(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    notice: Option<Notice>,
    error: Option<&AppError>,
    read_out: Option<String>,
) -> Result<Response, Failure> {
    let case = console.service.get_case(&staff.0, id).await?;
    let not_before = console.service.grant_not_before(&staff.0, &case.id).await?;
    let now = console.service.now();
    let codes = case
        .verifications
        .iter()
        // Only methods the caller answers with a code get a code field; a callback's code is
        // keyed in on the call, never typed here by the agent.
        .filter(|v| v.state == VerificationState::Pending && v.method.is_answered())
        .map(|v| CodeEntry {
            id: v.id.clone(),
            label: match &v.destination {
                Some(to) => format!(
                    "Code the caller reads back ({}, sent to {to})",
                    words(v.method)
                ),
                None => format!("Code the caller reads out ({})", words(v.method)),
            },
            attempts_left: v.attempts_left,
            expires_at: at(v.expires_at),
            numeric: v.method != Method::RecoveryCode,
        })
        .collect();
    let page = CasePage {
        nav: Some(staff.nav()),
        notice: notice.map(Notice::text),
        error: error.map(|e| e.message().to_owned()),
        id: case.id.clone(),
        reference: case.reference.clone(),
        reference_digits: case
            .reference
            .trim_start_matches(deskgate_core::REFERENCE_PREFIX)
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" "),
        subject_id: case.subject.id.clone(),
        subject_name: case.subject.name.clone(),
        tier: words(case.tier),
        action: words(case.action),
        channel: words(case.channel),
        ticket: case.ticket.clone().unwrap_or_default(),
        caller_number: case.caller_number.clone().unwrap_or_default(),
        opened_at: at(case.opened_at),
        risk_level: case.risk.level.to_string(),
        risk_reasons: case.risk.reasons.iter().map(|r| r.text.clone()).collect(),
        steps: case
            .playbook
            .iter()
            .map(|s| Step {
                number: s.number,
                title: s.title.clone(),
                script: s.script.clone(),
                methods: s
                    .methods
                    .iter()
                    .map(|m| MethodButton {
                        id: m.api_id(),
                        label: method_label(*m),
                    })
                    .collect(),
            })
            .collect(),
        codes,
        read_out,
        can_end: case.state.is_live(),
        can_self_serve: matches!(case.state, CaseState::Open | CaseState::Verifying)
            && deskgate_app::self_service::ACTIONS.contains(&case.action),
        can_break_glass: staff.0.role == Role::SecurityOfficer
            && !case.break_glass
            && matches!(case.state, CaseState::Open | CaseState::Verifying),
        executed_at: case.executed_at.map(at),
        live: Live::build(&case, not_before, now),
    };
    let status = error.map_or(StatusCode::OK, crate::error::status);
    Ok((status, page).into_response())
}

pub(crate) async fn case_page(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, Failure> {
    render_case(&console, &staff, &id, q.notice, None).await
}

/// The live fragment htmx polls.
pub(crate) async fn live(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let case = console.service.get_case(&staff.0, &id).await?;
    let not_before = console.service.grant_not_before(&staff.0, &case.id).await?;
    Ok(LiveFragment {
        live: Live::build(&case, not_before, console.service.now()),
    }
    .into_response())
}
