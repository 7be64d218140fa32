//! The agent's pages: the queue of live cases, the new-case form, and the case page with its
//! script, verification controls, live status and the execute button. Each page is a room of
//! its own; the actions on a case (start, answer, execute, end) are here.

mod new_case;
mod page;
mod queue;
mod what_now;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_core::Method;
use serde::Deserialize;

use super::session::SignedIn;
use super::{Console, Failure, error_page};
use deskgate_app::AppError;
use deskgate_app::service::parse_id;

pub(super) use new_case::{new_case, open_case};
use page::{Shown, render_case};
pub(super) use page::{case_page, live};
pub(super) use queue::{find_case, queue};

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
    Decided,
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
            Self::Decided => "decided",
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
            Self::Decided => "Your decision is recorded, bound to what the case holds now.",
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

/// After a POST: success redirects to the case page (so a reload never re-posts); a refusal
/// shows the case page again with the service's reason.
pub(super) async fn after_action<T>(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    result: Result<T, AppError>,
    notice: Notice,
) -> Result<Response, Failure> {
    after_action_at(console, staff, id, result, notice, None).await
}

/// As [`after_action`], with a refusal about one verification shown at its field.
async fn after_action_at<T>(
    console: &Console,
    staff: &SignedIn,
    id: &str,
    result: Result<T, AppError>,
    notice: Notice,
    field: Option<&str>,
) -> Result<Response, Failure> {
    match result {
        Ok(_) => Ok(
            Redirect::to(&format!("/console/cases/{id}?notice={}", notice.id())).into_response(),
        ),
        Err(e) if matches!(e, AppError::Unauthenticated(_)) => Err(e.into()),
        Err(e) => match render_case(
            console,
            staff,
            id,
            Shown {
                error: Some(&e),
                error_at: field,
                ..Shown::default()
            },
        )
        .await
        {
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
            let shown = Shown {
                notice: Some(Notice::Started),
                read_out: Some(code),
                ..Shown::default()
            };
            render_case(&console, &staff, &id, shown).await
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
    after_action_at(&console, &staff, &id, result, Notice::Passed, Some(&vid)).await
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
