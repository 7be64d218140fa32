//! The new-case form: search the directory, choose the action, open the case.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_core::{ApiId, Channel};
use serde::Deserialize;

use super::super::session::SignedIn;
use super::super::{Console, Failure, Nav, optional, words};
use deskgate_app::AppError;
use deskgate_app::labels::Label;
use deskgate_app::service::{OpenCase, parse_id};
use deskgate_app::views::SubjectView;

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
pub(crate) struct SearchQuery {
    q: Option<String>,
}

/// The new-case form; `?q=` searches the directory (contacts come back masked).
pub(crate) async fn new_case(
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
pub(crate) struct OpenCaseForm {
    subject: String,
    action: String,
    channel: String,
    caller_number: Option<String>,
    ticket: Option<String>,
    note: Option<String>,
    new_contact: Option<String>,
}

pub(crate) async fn open_case(
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
