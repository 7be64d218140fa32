//! The agent's pages: the queue of live cases, the new-case form, and the case page with its
//! script, verification controls, live status and the execute button.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use deskgate_core::{ApiId, CaseState, Channel, Method, Role, VerificationState};
use serde::Deserialize;

use super::session::SignedIn;
use super::{Console, Failure, Nav, at, error_page, optional, words};
use deskgate_app::AppError;
use deskgate_app::labels::{Label, in_sentence};
use deskgate_app::service::{OpenCase, parse_id};
use deskgate_app::views::{CaseSummary, CaseView, SubjectView};

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
    Ok(console
        .service
        .list_cases(&staff.0, None, true)
        .await?
        .iter()
        .filter(|c| c.state.is_live())
        .map(QueueRow::from)
        .collect())
}

/// My queue: the signed-in staff member's live cases.
pub(super) async fn queue(
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
pub(super) struct FindQuery {
    reference: Option<String>,
}

/// "Find a case": the reference a caller or a colleague reads out (`DG-10427`) opens its page.
pub(super) async fn find_case(
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

/// An option of a `<select>`, by API id and words.
struct Choice {
    id: &'static str,
    label: String,
}

fn choices<T: ApiId + Label + 'static>() -> Vec<Choice> {
    choices_of(T::all())
}

fn choices_of<T: ApiId + Label>(values: &[T]) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            id: v.api_id(),
            label: words(v),
        })
        .collect()
}

struct SubjectRow {
    id: String,
    name: String,
    tier: String,
    status: String,
    contacts: String,
}

impl From<&SubjectView> for SubjectRow {
    fn from(s: &SubjectView) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            tier: words(s.tier),
            status: words(s.status),
            contacts: s
                .contacts
                .iter()
                .map(|c| format!("{} {}", c.kind, c.masked))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/new_case.html")]
struct NewCasePage {
    nav: Option<Nav>,
    query: String,
    searched: bool,
    subjects: Vec<SubjectRow>,
    actions: Vec<Choice>,
    channels: Vec<Choice>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

/// The new-case form; `?q=` searches the directory (contacts come back masked).
pub(super) async fn new_case(
    State(console): State<Console>,
    staff: SignedIn,
    Query(search): Query<SearchQuery>,
) -> Result<Response, Failure> {
    let query = optional(search.q).unwrap_or_default();
    let (subjects, error) = if query.is_empty() {
        (Vec::new(), None)
    } else {
        match console.service.search_subjects(&staff.0, &query).await {
            Ok(found) => (found.iter().map(SubjectRow::from).collect(), None),
            Err(e) if matches!(e, AppError::Invalid(_) | AppError::RequirementsNotMet(_)) => {
                (Vec::new(), Some(e.message().to_owned()))
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(NewCasePage {
        nav: Some(staff.nav()),
        searched: !query.is_empty(),
        query,
        subjects,
        // Only what the directory can perform: a case is never opened for anything else.
        actions: choices_of(&console.service.offered_actions()),
        channels: choices::<Channel>(),
        error,
    }
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct OpenCaseForm {
    subject: String,
    action: String,
    channel: String,
    caller_number: Option<String>,
    ticket: Option<String>,
    note: Option<String>,
    new_contact: Option<String>,
}

pub(super) async fn open_case(
    State(console): State<Console>,
    staff: SignedIn,
    Form(form): Form<OpenCaseForm>,
) -> Result<Response, Failure> {
    let request = OpenCase {
        subject: form.subject.trim().to_owned(),
        action: parse_id("action", &form.action)?,
        channel: parse_id("channel", &form.channel)?,
        caller_number: optional(form.caller_number),
        ticket: optional(form.ticket),
        note: optional(form.note),
        new_contact: optional(form.new_contact),
        requester: None,
    };
    let case = console.service.open_case(&staff.0, request).await?;
    Ok(Redirect::to(&format!("/console/cases/{}", case.id)).into_response())
}

/// What just happened, shown once after a redirect. A fixed set, so nothing a link carries is
/// ever echoed into the page.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum Notice {
    Started,
    Passed,
    Executed,
    Ended,
    Resumed,
    BreakGlass,
    SelfServiceLink,
}

impl Notice {
    fn id(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Passed => "passed",
            Self::Executed => "executed",
            Self::Ended => "ended",
            Self::Resumed => "resumed",
            Self::BreakGlass => "break_glass",
            Self::SelfServiceLink => "self_service_link",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Started => "Verification started.",
            Self::Passed => "Code accepted.",
            Self::Executed => {
                "Executed. The result went to the subject's contacts of record; you will not see it."
            }
            Self::Ended => "The case is closed to further work.",
            Self::Resumed => "You took the case over; it is back in verification and yours.",
            Self::BreakGlass => {
                "Break-glass opened with your approval; the security contacts were alerted."
            }
            Self::SelfServiceLink => {
                "A self-service link went to the email of record and this case is cancelled. \
                 Tell the caller to open it; they confirm it is them there."
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct NoticeQuery {
    notice: Option<Notice>,
}

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

async fn render_case(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    notice: Option<Notice>,
    error: Option<&AppError>,
) -> Result<Response, Failure> {
    render_case_reading_out(console, staff, id, notice, error, None).await
}

async fn render_case_reading_out(
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

pub(super) async fn case_page(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, Failure> {
    render_case(&console, &staff, &id, q.notice, None).await
}

/// The live fragment htmx polls.
pub(super) async fn live(
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

/// After a POST: success redirects to the case page (so a reload never re-posts); a refusal
/// shows the case page again with the service's reason.
pub(super) async fn after_action<T>(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    result: Result<T, AppError>,
    notice: Notice,
) -> Result<Response, Failure> {
    match result {
        Ok(_) => Ok(
            Redirect::to(&format!("/console/cases/{id}?notice={}", notice.id())).into_response(),
        ),
        Err(e) if matches!(e, AppError::Unauthenticated(_)) => Err(e.into()),
        Err(e) => match render_case(console, staff, id, None, Some(&e)).await {
            Ok(page) => Ok(page),
            // The case itself cannot be shown (not found, not yours): show why the action failed.
            Err(_) => Ok(error_page(Some(staff.nav()), &e)),
        },
    }
}

#[derive(Deserialize)]
pub(super) struct MethodForm {
    method: String,
}

pub(super) async fn start_verification(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<MethodForm>,
) -> Result<Response, Failure> {
    let result = match parse_id::<Method>("method", &form.method) {
        Ok(method) => console
            .service
            .start_verification(&staff.0, &id, method)
            .await
            .map(|(vid, case)| {
                case.verifications
                    .into_iter()
                    .find(|v| v.id == vid)
                    .and_then(|v| v.read_out)
            }),
        Err(e) => Err(e),
    };
    match result {
        // The code exists only in this answer: show it now rather than redirect it away.
        Ok(Some(code)) => {
            render_case_reading_out(
                &console,
                &staff,
                &id,
                Some(Notice::Started),
                None,
                Some(code),
            )
            .await
        }
        other => after_action(&console, &staff, &id, other, Notice::Started).await,
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
}

pub(super) async fn answer_code(
    State(console): State<Console>,
    staff: SignedIn,
    Path((id, vid)): Path<(String, String)>,
    Form(form): Form<CodeForm>,
) -> Result<Response, Failure> {
    let result = console
        .service
        .answer_code(&staff.0, &id, &vid, &form.code)
        .await;
    after_action(&console, &staff, &id, result, Notice::Passed).await
}

pub(super) async fn execute(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let result = console.service.execute(&staff.0, &id).await;
    after_action(&console, &staff, &id, result, Notice::Executed).await
}

#[derive(Deserialize)]
pub(super) struct EndForm {
    outcome: String,
    reason: String,
}

/// Deny (the request looks fraudulent) or cancel (the caller withdrew, opened by mistake).
pub(super) async fn end_case(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<EndForm>,
) -> Result<Response, Failure> {
    let deny = match form.outcome.as_str() {
        "deny" => true,
        "cancel" => false,
        _ => {
            let e = AppError::invalid("outcome must be deny or cancel");
            return after_action::<()>(&console, &staff, &id, Err(e), Notice::Ended).await;
        }
    };
    let result = console
        .service
        .end_case(&staff.0, &id, deny, &form.reason)
        .await;
    after_action(&console, &staff, &id, result, Notice::Ended).await
}

/// Sends the caller a self-service link instead of working the case.
pub(super) async fn self_service_link(
    State(console): State<Console>,
    staff: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let result = console.service.send_self_service_link(&staff.0, &id).await;
    after_action(&console, &staff, &id, result, Notice::SelfServiceLink).await
}
