//! Self-service recovery pages, `/recover` (see [`deskgate_app::self_service`]). The attempt is
//! sealed in a cookie scoped to `/recover` (`HttpOnly; Secure; SameSite=Strict`); every answer is
//! `no-store`; the posts share the console's per-address allowance, and each is padded to one
//! duration so that an unknown account, a refused one and a real one take the same time.

use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_app::AppError;
use deskgate_app::self_service::{ACTIONS, Answered, Finished, METHODS, RecoverView, SENT};
use deskgate_app::service::parse_id;
use deskgate_core::{Action, Method};
use serde::Deserialize;

use super::{Console, at};

const COOKIE: &str = "deskgate_recover";
const COOKIE_ATTRIBUTES: &str = "Path=/recover; HttpOnly; Secure; SameSite=Strict; Max-Age=1800";
/// Every post takes at least this long, whatever the account.
const STEP_FLOOR: Duration = Duration::from_millis(400);

#[derive(Template, WebTemplate)]
#[template(path = "recover/start.html")]
struct StartPage {
    error: Option<String>,
    /// `(id, words, checked)` for each action.
    actions: Vec<(String, String, bool)>,
    name: String,
}

struct MethodRow {
    id: String,
    title: String,
    sends: bool,
    send_label: String,
    asks: bool,
    code_label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "recover/steps.html")]
struct StepsPage {
    action: String,
    passkey_done: bool,
    notice: Option<String>,
    expires_at: String,
    passed: Vec<String>,
    methods: Vec<MethodRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "recover/finished.html")]
struct FinishedPage {
    title: String,
    message: String,
}

fn action_words(action: Action) -> &'static str {
    match action {
        Action::PasswordReset => "Reset my password",
        Action::MfaReset => "Reset my MFA (I lost my devices)",
        Action::AccountUnlock => "Unlock my account",
        _ => "Recover my account",
    }
}

fn method_row(method: Method, waiting: &[Method]) -> MethodRow {
    let (title, send_label, code_label) = match method {
        Method::EmailCode => (
            "A code to your email on record",
            "Send a code to my email on record",
            "The code from the email",
        ),
        Method::SmsCode => (
            "A code to your phone on record",
            "Send a code to my phone on record",
            "The code from the text message",
        ),
        Method::ManagerAttestation => (
            "Your manager confirms it is you",
            "Ask my manager of record to confirm",
            "",
        ),
        Method::Push => (
            "A request to your enrolled device",
            "Send a request to my device",
            "",
        ),
        Method::IdProofing => (
            "A check of your photo ID",
            "Email me a link to check my photo ID",
            "",
        ),
        Method::RecoveryCode => (
            "One of your saved recovery codes",
            "",
            "A recovery code you saved",
        ),
        _ => (
            "Your authenticator app",
            "",
            "The code your authenticator app shows",
        ),
    };
    let sends = SENT.contains(&method);
    MethodRow {
        id: method.to_string(),
        title: title.to_owned(),
        sends,
        send_label: send_label.to_owned(),
        // The manager answers on their own page, the device on itself and the vendor by its
        // signed result, never here.
        asks: !matches!(
            method,
            Method::ManagerAttestation | Method::Push | Method::IdProofing
        ) && (!sends || waiting.contains(&method)),
        code_label: code_label.to_owned(),
    }
}

fn passed_words(method: Method) -> String {
    match method {
        Method::Passkey => "A passkey".to_owned(),
        Method::ManagerAttestation => "Your manager confirmed".to_owned(),
        Method::IdProofing => "Your photo ID matched".to_owned(),
        other => method_row(other, &[]).title,
    }
}

fn start_page(status: StatusCode, error: Option<String>) -> Response {
    prefilled(status, error, "", None)
}

/// The form, filled in from a link the help desk sent (only a name of the right length and an
/// action offered here are taken; they are escaped like any text).
fn prefilled(
    status: StatusCode,
    error: Option<String>,
    name: &str,
    action: Option<Action>,
) -> Response {
    let actions = ACTIONS
        .iter()
        .map(|a| {
            (
                a.to_string(),
                action_words(*a).to_owned(),
                Some(*a) == action,
            )
        })
        .collect();
    let name = if name.len() <= 128 { name } else { "" };
    (
        status,
        StartPage {
            error,
            actions,
            name: name.trim().to_owned(),
        },
    )
        .into_response()
}

/// Every post here answers no sooner than [`STEP_FLOOR`], whatever the account and whatever the
/// outcome (a route layer, so no handler can forget it).
pub(super) async fn padded(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(rest) = STEP_FLOOR.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    response
}

/// The browser's sealed attempt; without one, the browser goes back to the start.
pub(super) struct AttemptToken(String);

impl<S: Send + Sync> FromRequestParts<S> for AttemptToken {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Redirect> {
        crate::link_tokens::cookie(&parts.headers, COOKIE)
            .map(|t| Self(t.to_owned()))
            .ok_or_else(|| Redirect::to("/recover"))
    }
}

fn over() -> Response {
    FinishedPage {
        title: "This attempt is over".to_owned(),
        message: "It expired or was finished. Start again, or call the help desk.".to_owned(),
    }
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct PrefillQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
}

/// `GET /recover`: the form, filled in when a help-desk link says what for.
pub(super) async fn page(Query(q): Query<PrefillQuery>) -> Response {
    let action = parse_id::<Action>("action", &q.action)
        .ok()
        .filter(|a| ACTIONS.contains(a));
    prefilled(StatusCode::OK, None, &q.name, action)
}

#[derive(Deserialize)]
pub(super) struct StartForm {
    name: String,
    action: String,
}

/// `POST /recover/start`: the same answer for every name.
pub(super) async fn start(State(console): State<Console>, Form(form): Form<StartForm>) -> Response {
    let result = match parse_id::<Action>("action", &form.action) {
        Ok(action) => console.service.self_service_start(&form.name, action).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(token) => {
            let mut response = Redirect::to("/recover/steps").into_response();
            match HeaderValue::from_str(&format!("{COOKIE}={token}; {COOKIE_ATTRIBUTES}")) {
                Ok(v) => {
                    response.headers_mut().insert(header::SET_COOKIE, v);
                    response
                }
                Err(_) => super::error_page(None, &AppError::internal("internal", "bad cookie")),
            }
        }
        Err(e @ AppError::Invalid(_)) => start_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(e.message().to_owned()),
        ),
        Err(e) => super::error_page(None, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct NoticeQuery {
    #[serde(default)]
    n: Option<String>,
    /// The number to enter on the device after a push.
    #[serde(default)]
    k: Option<String>,
}

fn notice_for(n: Option<&str>, k: Option<&str>) -> Option<String> {
    let n = n?;
    Some(match n {
        "sent-push" => {
            let number = k.filter(|k| k.len() <= 3 && k.chars().all(|c| c.is_ascii_digit()))?;
            format!(
                "If you have a device enrolled, we sent it a request. Enter the number {number} \
                 on it, then reload this page."
            )
        }
        "accepted" => "That matched.".to_owned(),
        "nomatch" => {
            "That did not match, or the code expired. Try again or another way.".to_owned()
        }
        sent => {
            let what = match sent {
                "sent-email_code" => "an email on record",
                "sent-sms_code" => "a phone on record",
                "sent-id_proofing" => {
                    return Some(
                        "If we have an email on record for this account, a link to check your \
                         photo ID is on its way. Follow it on any device, then come back to this \
                         page."
                            .to_owned(),
                    );
                }
                "sent-manager_attestation" => {
                    return Some(
                        "If your account has a manager on record, we asked them to confirm it is \
                         you, by a link only they can open. Come back to this page once they have."
                            .to_owned(),
                    );
                }
                _ => return None,
            };
            format!(
                "If we have {what} for this account, a code is on its way. It works for a few \
                 minutes."
            )
        }
    })
}

/// `GET /recover/steps`: where the attempt stands.
pub(super) async fn steps(
    State(console): State<Console>,
    AttemptToken(token): AttemptToken,
    Query(query): Query<NoticeQuery>,
) -> Response {
    match console.service.self_service_view(&token).await {
        Ok(view) => render(view, notice_for(query.n.as_deref(), query.k.as_deref())),
        Err(AppError::Unauthenticated(_)) => over(),
        Err(e) => super::error_page(None, &e),
    }
}

fn render(view: RecoverView, notice: Option<String>) -> Response {
    match view.finished {
        Some(Finished::Done) => FinishedPage {
            title: "Done".to_owned(),
            message: format!(
                "{} is done. What you need next (a temporary password or pass) went to a \
                 contact of record, and every contact of record was told. If you did not ask \
                 for this, use the \"this was not me\" link in that notice.",
                action_words(view.action)
            ),
        }
        .into_response(),
        Some(Finished::Ended) => FinishedPage {
            title: "This cannot be finished here".to_owned(),
            message: "Call the help desk: they will check it is you before anything changes."
                .to_owned(),
        }
        .into_response(),
        None => StepsPage {
            action: action_words(view.action).to_owned(),
            passkey_done: view.passed.contains(&Method::Passkey),
            notice,
            expires_at: at(view.expires_at),
            passed: view.passed.iter().map(|m| passed_words(*m)).collect(),
            methods: METHODS
                .iter()
                .chain([Method::Push, Method::ManagerAttestation, Method::IdProofing].iter())
                .filter(|m| **m != Method::IdProofing || view.id_proofing)
                .filter(|m| !view.passed.contains(m))
                .map(|m| method_row(*m, &view.waiting))
                .collect(),
        }
        .into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct MethodForm {
    method: String,
    #[serde(default)]
    code: String,
}

/// Where an answer sends the browser: back to the steps with what it did.
fn answered(result: Result<Answered, AppError>) -> Response {
    match result {
        Ok(Answered::Accepted) => Redirect::to("/recover/steps?n=accepted").into_response(),
        Ok(Answered::NotMatched) => Redirect::to("/recover/steps?n=nomatch").into_response(),
        Err(AppError::Unauthenticated(_)) => over(),
        Err(e) => super::error_page(None, &e),
    }
}

/// `POST /recover/send`: the same answer whether or not anything was sent.
pub(super) async fn send(
    State(console): State<Console>,
    AttemptToken(token): AttemptToken,
    Form(form): Form<MethodForm>,
) -> Response {
    let result = match parse_id::<Method>("method", &form.method) {
        Ok(method) => console.service.self_service_send(&token, method).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(number) => {
            let k = number.map(|n| format!("&k={n}")).unwrap_or_default();
            Redirect::to(&format!("/recover/steps?n=sent-{}{k}", form.method)).into_response()
        }
        Err(AppError::Unauthenticated(_)) => over(),
        Err(e) => super::error_page(None, &e),
    }
}

/// `POST /recover/answer`: a code for one way; the change is made once the requirements are met.
pub(super) async fn answer(
    State(console): State<Console>,
    AttemptToken(token): AttemptToken,
    Form(form): Form<MethodForm>,
) -> Response {
    let result = match parse_id::<Method>("method", &form.method) {
        Ok(method) => {
            console
                .service
                .self_service_answer(&token, method, &form.code)
                .await
        }
        Err(e) => Err(e),
    };
    answered(result)
}

/// `POST /recover/passkey/options`: the challenge for a passkey, the same shape for everyone.
pub(super) async fn passkey_options(
    State(console): State<Console>,
    AttemptToken(token): AttemptToken,
) -> Response {
    let result = console.service.self_service_passkey_options(&token).await;
    match result {
        Ok(options) => axum::Json(options).into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct PasskeyForm {
    credential: String,
}

/// `POST /recover/passkey`: the browser's passkey answer.
pub(super) async fn passkey_answer(
    State(console): State<Console>,
    AttemptToken(token): AttemptToken,
    Form(form): Form<PasskeyForm>,
) -> Response {
    let credential = serde_json::from_str(&form.credential).unwrap_or(serde_json::Value::Null);
    let result = console
        .service
        .self_service_passkey_answer(&token, &credential)
        .await;
    answered(result)
}
