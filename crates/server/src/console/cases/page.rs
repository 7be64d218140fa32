//! The case page: the request, the playbook, the verification controls and the live status
//! card htmx polls.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::hash::{Hash, Hasher};

use deskgate_core::{ApiId, CaseState, Method, Role, VerificationState};
use serde::Deserialize;

use super::super::session::SignedIn;
use super::super::{Console, Failure, Nav, at, words};
use super::what_now::{Seen, WhatNow};
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
    /// Why the last answer was refused, shown at the field.
    error: Option<String>,
    /// The field the agent types into next.
    focus: bool,
}

struct VerificationRow {
    method: String,
    class: String,
    state: String,
    destination: String,
    counted: String,
}

/// The part of the case page that changes while the agent waits: what now, state, evidence,
/// approvals and the grant. Polled by htmx; when what it shows changes, the whole page reloads,
/// so the steps, the code fields and the panel never disagree.
struct Live {
    case_id: String,
    state: String,
    /// A finished case stops polling.
    polling: bool,
    /// What this render shows, in short: a poll that finds another asks for a reload.
    version: String,
    what_now: WhatNow,
    /// The next action's kind (`jump`, `post`, `link`, `wait`), target and words.
    next: (&'static str, String, String),
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
}

fn remaining(until: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (until - now).num_seconds().max(0);
    format!("{} min {:02} s", seconds / 60, seconds % 60)
}

fn still_needed(case: &CaseView) -> Vec<String> {
    let mut out = Vec::new();
    if case.state.is_live() && case.state != CaseState::Approved {
        if case.progress.classes_short > 0 {
            out.push(format!(
                "{} more independent verification(s)",
                case.progress.classes_short
            ));
        }
        for set in &case.progress.missing_any_of {
            let names: Vec<String> = set.iter().map(words).collect();
            out.push(format!("one of: {}", names.join(", ")));
        }
        for role in &case.progress.approvals_missing {
            out.push(format!("approval by a {}", in_sentence(role)));
        }
    }
    out
}

impl Live {
    fn build(seen: &Seen<'_>) -> Self {
        let (case, now) = (seen.case, seen.now);
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
        let grant = case
            .grant
            .as_ref()
            .filter(|g| case.state == CaseState::Approved && g.consumed_at.is_none())
            .filter(|g| g.expires_at > now)
            .map(|g| GrantPanel {
                expires_at: at(g.expires_at),
                remaining: remaining(g.expires_at, now),
                waiting_until: seen.not_before.filter(|from| now < *from).map(at),
            });
        let what_now = seen.what_now();
        let (kind, target, label) = what_now.next.parts();
        let next = (kind, target.to_owned(), label.to_owned());
        let mut hasher = std::hash::DefaultHasher::new();
        (
            case.updated_at,
            case.state.to_string(),
            &what_now.headline,
            kind,
        )
            .hash(&mut hasher);
        Self {
            case_id: case.id.clone(),
            state: words(case.state),
            polling: case.state.is_live(),
            version: format!("{:016x}", hasher.finish()),
            what_now,
            next,
            verifications,
            still_needed: still_needed(case),
            grant,
            outcome: case.outcome_reason.clone(),
        }
    }
}

/// A verification that passed and counts, shown ticked above the steps still to do.
struct DoneRow {
    label: String,
    at: String,
}

fn done_rows(case: &CaseView) -> Vec<DoneRow> {
    case.verifications
        .iter()
        .filter(|v| v.state == VerificationState::Passed)
        .map(|v| DoneRow {
            label: match &v.destination {
                Some(to) if v.method.is_code() => format!("{} ({to})", words(v.method)),
                _ => words(v.method),
            },
            at: v.completed_at.map(at).unwrap_or_default(),
        })
        .collect()
}

/// The steps still to do, numbered after the ones done; their buttons only while a
/// verification can start.
fn steps(case: &CaseView, done: u32) -> Vec<Step> {
    let can_verify = matches!(case.state, CaseState::Open | CaseState::Verifying);
    case.playbook
        .iter()
        .map(|s| Step {
            number: done + s.number,
            title: s.title.clone(),
            script: s.script.clone(),
            methods: if can_verify {
                s.methods
                    .iter()
                    .map(|m| MethodButton {
                        id: m.api_id(),
                        label: method_label(*m),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// The code fields of pending verifications, while the case takes answers. `error` is shown at
/// the field it is about; the field the what-now panel points to takes the focus.
fn code_entries(
    case: &CaseView,
    error: Option<(&str, String)>,
    focus: Option<&str>,
) -> Vec<CodeEntry> {
    if case.state != CaseState::Verifying {
        return Vec::new();
    }
    case.verifications
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
            error: error
                .as_ref()
                .filter(|(vid, _)| *vid == v.id)
                .map(|(_, e)| e.clone()),
            focus: focus == Some(format!("#code-{}", v.id).as_str()),
        })
        .collect()
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
    risk_label: String,
    risk_reasons: Vec<String>,
    done: Vec<DoneRow>,
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
    /// The viewer's own approval is needed: the panel with the decision buttons.
    can_approve: bool,
    live: Live,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/case_live.html")]
struct LiveFragment {
    live: Live,
}

/// Whether `viewer` may give an approval `case` still needs: their role is missing, and they
/// neither opened nor work it (the service refuses that anyway; the page does not offer it).
fn can_approve(case: &CaseView, viewer: &deskgate_core::Staff) -> bool {
    let role = match viewer.role {
        Role::Supervisor => deskgate_core::ApproverRole::Supervisor,
        Role::SecurityOfficer => deskgate_core::ApproverRole::SecurityOfficer,
        _ => return false,
    };
    matches!(case.state, CaseState::Open | CaseState::Verifying)
        && case.agent_id != viewer.id
        && case.progress.approvals_missing.contains(&role)
}

/// What a render of the case page shows besides the case.
#[derive(Default)]
pub(super) struct Shown<'a> {
    pub notice: Option<Notice>,
    pub error: Option<&'a AppError>,
    /// The verification the error is about: the error goes to its field.
    pub error_at: Option<&'a str>,
    /// A callback's one-time code, only in the answer that started it.
    pub read_out: Option<String>,
}

/// Reads out as "1 0 4 2 7".
fn spelled(reference: &str) -> String {
    reference
        .trim_start_matches(deskgate_core::REFERENCE_PREFIX)
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The case as `staff` sees it: its done steps, the steps still to do, and the live part
/// with its what-now panel. The page and the poll build it the same way, so they agree.
async fn load(
    console: &Console,
    staff: &SignedIn,
    id: &str,
) -> Result<(CaseView, Vec<DoneRow>, Vec<Step>, Live), Failure> {
    let case = console.service.get_case(&staff.0, id).await?;
    let not_before = console.service.grant_not_before(&staff.0, &case.id).await?;
    let done = done_rows(&case);
    let steps = steps(&case, u32::try_from(done.len()).unwrap_or(0));
    let live = Live::build(&Seen {
        case: &case,
        viewer: staff.0.role,
        not_before,
        first_step_with_methods: steps
            .iter()
            .find(|s| !s.methods.is_empty())
            .map(|s| s.number),
        can_approve: can_approve(&case, &staff.0),
        now: console.service.now(),
    });
    Ok((case, done, steps, live))
}

pub(super) async fn render_case(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    shown: Shown<'_>,
) -> Result<Response, Failure> {
    let (case, done, steps, live) = load(console, staff, id).await?;
    let seen_can_approve = can_approve(&case, &staff.0);
    let message = shown.error.map(|e| e.message().to_owned());
    let at_field = shown.error_at.zip(message.clone());
    let codes = code_entries(&case, at_field.clone(), Some(live.next.1.as_str()));
    let page = CasePage {
        nav: Some(staff.nav()),
        notice: shown.notice.map(Notice::text),
        // An error about a code field is shown there, not at the top.
        error: message.filter(|_| !codes.iter().any(|c| c.error.is_some())),
        id: case.id.clone(),
        reference: case.reference.clone(),
        reference_digits: spelled(&case.reference),
        subject_id: case.subject.id.clone(),
        subject_name: case.subject.name.clone(),
        tier: words(case.tier),
        action: words(case.action),
        channel: words(case.channel),
        ticket: case.ticket.clone().unwrap_or_default(),
        caller_number: case.caller_number.clone().unwrap_or_default(),
        opened_at: at(case.opened_at),
        risk_level: case.risk.level.to_string(),
        risk_label: words(case.risk.level),
        risk_reasons: case.risk.reasons.iter().map(|r| r.text.clone()).collect(),
        done,
        steps,
        codes,
        read_out: shown.read_out,
        can_end: case.state.is_live(),
        can_self_serve: matches!(case.state, CaseState::Open | CaseState::Verifying)
            && deskgate_app::self_service::ACTIONS.contains(&case.action),
        can_break_glass: staff.0.role == Role::SecurityOfficer
            && !case.break_glass
            && matches!(case.state, CaseState::Open | CaseState::Verifying),
        executed_at: case.executed_at.map(at),
        can_approve: seen_can_approve,
        live,
    };
    let status = shown.error.map_or(StatusCode::OK, crate::error::status);
    Ok((status, page).into_response())
}

pub(crate) async fn case_page(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, Failure> {
    let shown = Shown {
        notice: q.notice,
        ..Shown::default()
    };
    render_case(&console, &staff, &id, shown).await
}

#[derive(Deserialize)]
pub(crate) struct LiveQuery {
    /// The version the page shows.
    seen: Option<String>,
}

/// The live fragment htmx polls. When what it would show differs from what the page shows, the
/// page reloads whole (`HX-Refresh`), so steps, fields and panel change together.
pub(crate) async fn live(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> Result<Response, Failure> {
    let (_, _, _, live) = load(&console, &staff, &id).await?;
    if q.seen.is_some_and(|v| v != live.version) {
        return Ok(([("HX-Refresh", "true")], LiveFragment { live }).into_response());
    }
    Ok(LiveFragment { live }.into_response())
}
