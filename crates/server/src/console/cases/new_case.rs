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
    /// Department or teams, and the manager: what tells two people with one name apart.
    groups: String,
    manager: String,
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
            groups: s.groups.join(", "),
            manager: s.manager.clone().unwrap_or_default(),
        }
    }
}

/// What the agent typed, shown again when the case could not be opened.
#[derive(Default, Deserialize)]
pub(crate) struct OpenCaseForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    channel: String,
    caller_number: Option<String>,
    ticket: Option<String>,
    note: Option<String>,
    new_contact: Option<String>,
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
    form: OpenCaseForm,
    /// The field the refusal is about, if one.
    error_at: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
}

/// The form, with `query`'s search results; `form` holds what was typed before.
async fn page(
    console: &Console,
    staff: &SignedIn,
    query: String,
    form: OpenCaseForm,
    refused: Option<(String, Option<&'static str>)>,
) -> Result<NewCasePage, Failure> {
    let (subjects, search_error) = if query.is_empty() {
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
    let (error, error_at) = match refused {
        Some((message, at)) => (Some(message), at),
        None => (search_error, None),
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
        form,
        error_at,
    })
}

/// The new-case form; `?q=` searches the directory (contacts come back masked).
pub(crate) async fn new_case(
    State(console): State<Console>,
    staff: SignedIn,
    Query(search): Query<SearchQuery>,
) -> Result<Response, Failure> {
    let query = optional(search.q).unwrap_or_default();
    let form = OpenCaseForm::default();
    Ok(page(&console, &staff, query, form, None)
        .await?
        .into_response())
}

/// Opens the case, or shows the form again with what was typed and why it was refused: never a
/// bare error page with the form lost.
pub(crate) async fn open_case(
    State(console): State<Console>,
    staff: SignedIn,
    Form(form): Form<OpenCaseForm>,
) -> Result<Response, Failure> {
    let opened = match request(&form) {
        Ok(request) => console.service.open_case(&staff.0, request).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(case) => Ok(Redirect::to(&format!("/console/cases/{}", case.id)).into_response()),
        Err(e @ AppError::Unauthenticated(_)) => Err(e.into()),
        Err(e) => {
            let at = field_of(&e);
            let status = crate::error::status(&e);
            let query = form.subject.trim().to_owned();
            let page = page(
                &console,
                &staff,
                query,
                form,
                Some((e.message().to_owned(), at)),
            )
            .await?;
            Ok((status, page).into_response())
        }
    }
}

/// The request the form makes. On a phone call the caller's number is required: a blank
/// number must never look safer than a number that differs from the one of record.
fn request(form: &OpenCaseForm) -> Result<OpenCase, AppError> {
    if form.action.is_empty() {
        return Err(AppError::invalid_as(
            "action_required",
            "choose the action the caller asks for",
        ));
    }
    let channel: Channel = parse_id("channel", &form.channel)?;
    let caller_number = optional(form.caller_number.clone());
    if channel == Channel::Phone && caller_number.is_none() {
        return Err(AppError::invalid_as(
            "caller_number_required",
            "on a phone call, type the caller's number as the phone system shows it (\"withheld\" is not accepted: ask them to call from a number, or use another channel)",
        ));
    }
    Ok(OpenCase {
        subject: form.subject.trim().to_owned(),
        action: parse_id("action", &form.action)?,
        channel,
        caller_number,
        ticket: optional(form.ticket.clone()),
        note: optional(form.note.clone()),
        new_contact: optional(form.new_contact.clone()),
        requester: None,
    })
}

/// The form field a refusal is about, so the page can say it there.
fn field_of(e: &AppError) -> Option<&'static str> {
    match e.code() {
        "caller_number_required" => Some("caller_number"),
        "action_required" => Some("action"),
        _ => ["caller_number", "new_contact", "ticket", "note"]
            .into_iter()
            .find(|f| e.message().starts_with(f)),
    }
}
