//! The subject's own page, `/me` (see [`deskgate_app::my_account`]): passkey sign-in, what is on
//! record for them, their passkeys and recovery codes, their history with "this was not me".
//! Every answer is `no-store`; the session cookie is scoped to `/me`, HttpOnly and SameSite=Strict,
//! and the console's CSRF layer refuses cross-site posts. The public sign-in routes share the
//! console's per-address allowance and refusal tally.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use deskgate_app::AppError;
use deskgate_app::my_account::{MyAccount, MySession, MySignIn, SESSION_MINUTES};
use serde::Deserialize;
use serde_json::Value;

use super::{ClientAddress, Console, at, note_refusal, words};
use crate::error::ApiError;

/// The session cookie: only the own page's routes receive it.
const COOKIE: &str = "deskgate_me";
const COOKIE_ATTRIBUTES: &str = "Path=/me; HttpOnly; Secure; SameSite=Strict";

#[derive(Template, WebTemplate)]
#[template(path = "me/sign_in.html")]
struct SignInPage {
    error: Option<String>,
    notice: Option<String>,
    /// The organisation's OpenID provider, when one is configured.
    provider: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "me/signed_in.html")]
struct SignedInPage {
    provider: String,
}

struct PasskeyRow {
    id: String,
    label: String,
    created_at: String,
    last_used_at: String,
    enrolled: String,
    current: bool,
}

struct ContactRow {
    kind: String,
    masked: String,
    changed_at: String,
    verified_at: String,
}

struct HistoryRow {
    case_id: String,
    action: String,
    channel: String,
    state: String,
    opened_at: String,
    executed_at: Option<String>,
    verifications: Vec<(String, String, String)>,
}

struct DeviceRow {
    id: String,
    label: String,
    kind: &'static str,
    enrolled_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "me/account.html")]
struct AccountPage {
    display_name: String,
    session_ends: String,
    notice: Option<String>,
    error: Option<String>,
    probation_until: Option<String>,
    contacts: Vec<ContactRow>,
    passkeys: Vec<PasskeyRow>,
    devices: Vec<DeviceRow>,
    recovery_codes_left: usize,
    recovery_codes_issued: Option<String>,
    history: Vec<HistoryRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "me/codes.html")]
struct CodesPage {
    codes: Vec<String>,
    download: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "me/locked.html")]
struct LockedPage {
    message: String,
}

fn never(time: Option<DateTime<Utc>>) -> String {
    time.map(at).unwrap_or_else(|| "never".to_owned())
}

impl From<MyAccount> for AccountPage {
    fn from(a: MyAccount) -> Self {
        Self {
            display_name: a.display_name,
            session_ends: at(a.session_expires_at),
            notice: None,
            error: None,
            probation_until: a.probation_until.map(at),
            contacts: a
                .contacts
                .into_iter()
                .map(|c| ContactRow {
                    kind: c.kind,
                    masked: c.masked,
                    changed_at: at(c.changed_at),
                    verified_at: never(c.verified_at),
                })
                .collect(),
            passkeys: a
                .passkeys
                .into_iter()
                .map(|p| PasskeyRow {
                    id: p.id,
                    label: p.label,
                    created_at: at(p.created_at),
                    last_used_at: never(p.last_used_at),
                    enrolled: p.enrolled,
                    current: p.current,
                })
                .collect(),
            devices: a
                .devices
                .into_iter()
                .map(|d| DeviceRow {
                    id: d.id,
                    label: d.label,
                    kind: d.kind,
                    enrolled_at: at(d.enrolled_at),
                })
                .collect(),
            recovery_codes_left: a.recovery_codes_left,
            recovery_codes_issued: a
                .recovery_codes_issued
                .map(|(when, how)| format!("{} ({how})", at(when))),
            history: a
                .history
                .into_iter()
                .map(|h| HistoryRow {
                    case_id: h.case_id,
                    action: words(h.action),
                    channel: words(h.channel),
                    state: words(h.state),
                    opened_at: at(h.opened_at),
                    executed_at: h.executed_at.map(at),
                    verifications: h
                        .verifications
                        .into_iter()
                        .map(|(m, o, t)| (words(m), words(o), at(t)))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A failed request on the own page: without a live session the browser goes to sign in;
/// anything else is the account page's error, or a plain error page.
pub(crate) struct MeFailure(AppError);

impl From<AppError> for MeFailure {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl IntoResponse for MeFailure {
    fn into_response(self) -> Response {
        if matches!(self.0, AppError::Unauthenticated(_)) {
            return Redirect::to("/me").into_response();
        }
        super::error_page(None, &self.0)
    }
}

/// The signed-in subject.
pub(crate) struct Me(MySession);

impl FromRequestParts<Console> for Me {
    type Rejection = MeFailure;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, MeFailure> {
        let cookie = crate::link_tokens::cookie(&parts.headers, COOKIE)
            .ok_or_else(|| AppError::unauthenticated_as("no_session", "you are not signed in"))?;
        Ok(Self(console.service.my_session(cookie).await?))
    }
}

fn sign_in_page(
    console: &Console,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let provider = console.sso.as_ref().map(|s| s.provider_name().to_owned());
    (
        status,
        SignInPage {
            error,
            notice,
            provider,
        },
    )
        .into_response()
}

fn with_session_cookie(mut response: Response, cookie: &str) -> Response {
    let value = format!(
        "{COOKIE}={cookie}; {COOKIE_ATTRIBUTES}; Max-Age={}",
        SESSION_MINUTES * 60
    );
    match HeaderValue::from_str(&value) {
        Ok(v) => {
            response.headers_mut().append(header::SET_COOKIE, v);
            response
        }
        Err(_) => MeFailure(AppError::internal("internal", "unusable cookie")).into_response(),
    }
}

/// The end of a sign-in through the provider for the own page (see `super::oidc`). The session
/// cookie is SameSite=Strict and the browser arrives from the provider's site, so a page with a
/// link (a same-site navigation) takes it to the account.
pub(super) async fn signed_in_through_provider(
    console: &Console,
    who: &deskgate_app::sso::VerifiedIdentity,
) -> Response {
    let provider = console
        .sso
        .as_ref()
        .map(|s| s.provider_name().to_owned())
        .unwrap_or_default();
    match console.service.my_sign_in_through_provider(who).await {
        Ok(MySignIn::SignedIn { cookie }) => {
            with_session_cookie(SignedInPage { provider }.into_response(), &cookie)
        }
        Ok(MySignIn::Refused { .. }) => sign_in_page(
            console,
            StatusCode::FORBIDDEN,
            Some(format!(
                "You signed in at {provider}, but no account here has that identity, or it is \
                 on hold. Call the help desk."
            )),
            None,
        ),
        Err(e) => MeFailure(e).into_response(),
    }
}

fn clear_cookie(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("{COOKIE}=; {COOKIE_ATTRIBUTES}; Max-Age=0"))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /me`: the account for a live session, else the sign-in form.
pub(super) async fn page(State(console): State<Console>, me: Result<Me, MeFailure>) -> Response {
    match me {
        Ok(me) => render(&console, &me, None, None).await,
        Err(_) => sign_in_page(&console, StatusCode::OK, None, None),
    }
}

async fn render(
    console: &Console,
    me: &Me,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match console.service.my_account(&me.0).await {
        Ok(account) => {
            let status = if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let mut page = AccountPage::from(account);
            page.notice = notice;
            page.error = error;
            (status, page).into_response()
        }
        Err(e) => MeFailure(e).into_response(),
    }
}

/// Renders the outcome of a change: the account with a notice, or with the refusal at the top
/// (an ended session sends the browser to sign in).
async fn after(console: &Console, me: &Me, done: Result<(), AppError>, notice: &str) -> Response {
    match done {
        Ok(()) => render(console, me, Some(notice.to_owned()), None).await,
        Err(e @ AppError::Unauthenticated(_)) => MeFailure(e).into_response(),
        Err(e) => {
            let status = crate::error::status(&e);
            let mut page = render(console, me, None, Some(e.message().to_owned())).await;
            *page.status_mut() = status;
            page
        }
    }
}

#[derive(Deserialize)]
pub(super) struct NameForm {
    name: String,
}

/// The challenge for signing in as the named person, as JSON for the page's script.
pub(super) async fn sign_in_options(
    State(console): State<Console>,
    Form(form): Form<NameForm>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(console.service.my_sign_in_options(&form.name).await?))
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    name: String,
    ceremony: String,
    credential: String,
}

/// Checks the assertion and starts the session. A refusal is audited in detail only while the
/// address has not sent many, and every refusal looks the same.
pub(super) async fn sign_in(
    State(console): State<Console>,
    ClientAddress(address): ClientAddress,
    Form(form): Form<SignInForm>,
) -> Response {
    let credential: Value = serde_json::from_str(&form.credential).unwrap_or(Value::Null);
    match console
        .service
        .my_sign_in(&form.name, &form.ceremony, &credential)
        .await
    {
        Ok(MySignIn::SignedIn { cookie }) => {
            with_session_cookie(Redirect::to("/me").into_response(), &cookie)
        }
        Ok(MySignIn::Refused { reason }) => {
            if note_refusal(&console, address, "subject_passkey", reason).await {
                console
                    .service
                    .audit_my_sign_in_refusal(&form.name, reason)
                    .await;
            }
            let refused = deskgate_app::my_account::sign_in_refused();
            sign_in_page(
                &console,
                crate::error::status(&refused),
                Some(refused.message().to_owned()),
                None,
            )
        }
        Err(e) => MeFailure(e).into_response(),
    }
}

pub(super) async fn sign_out(State(console): State<Console>, me: Me) -> Response {
    match console.service.my_sign_out(&me.0).await {
        Ok(()) => clear_cookie(sign_in_page(
            &console,
            StatusCode::OK,
            None,
            Some("You are signed out.".to_owned()),
        )),
        Err(e) => MeFailure(e).into_response(),
    }
}

/// New recovery codes, shown once on a page of their own with a download.
pub(super) async fn new_codes(State(console): State<Console>, me: Me) -> Response {
    match console.service.my_new_recovery_codes(&me.0).await {
        Ok(codes) => {
            let text: String = codes.iter().map(|c| format!("{c}%0A")).collect();
            CodesPage {
                download: format!("data:text/plain;charset=utf-8,{text}"),
                codes,
            }
            .into_response()
        }
        Err(e) => after(&console, &me, Err(e), "").await,
    }
}

/// Registration options for another passkey, as JSON for the page's script.
pub(super) async fn passkey_options(
    State(console): State<Console>,
    me: Me,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(console.service.my_passkey_options(&me.0).await?))
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    ceremony: String,
    credential: String,
    #[serde(default)]
    label: String,
}

pub(super) async fn add_passkey(
    State(console): State<Console>,
    me: Me,
    Form(form): Form<AddForm>,
) -> Response {
    let done = match serde_json::from_str::<Value>(&form.credential) {
        Ok(credential) => console
            .service
            .my_add_passkey(&me.0, &form.ceremony, &credential, &form.label)
            .await
            .map(|_| ()),
        Err(_) => Err(AppError::invalid("credential is not JSON")),
    };
    after(&console, &me, done, "Passkey added.").await
}

#[derive(Deserialize)]
pub(super) struct LabelForm {
    label: String,
}

pub(super) async fn rename_passkey(
    State(console): State<Console>,
    me: Me,
    Path(id): Path<String>,
    Form(form): Form<LabelForm>,
) -> Response {
    let done = console
        .service
        .my_rename_passkey(&me.0, &id, &form.label)
        .await;
    after(&console, &me, done, "Passkey renamed.").await
}

pub(super) async fn remove_passkey(
    State(console): State<Console>,
    me: Me,
    Path(id): Path<String>,
) -> Response {
    let done = console.service.my_remove_passkey(&me.0, &id).await;
    after(&console, &me, done, "Passkey removed.").await
}

pub(super) async fn rename_device(
    State(console): State<Console>,
    me: Me,
    Path(id): Path<String>,
    Form(form): Form<LabelForm>,
) -> Response {
    let done = console
        .service
        .my_rename_device(&me.0, &id, &form.label)
        .await;
    after(&console, &me, done, "Device renamed.").await
}

pub(super) async fn remove_device(
    State(console): State<Console>,
    me: Me,
    Path(id): Path<String>,
) -> Response {
    let done = console.service.my_remove_device(&me.0, &id).await;
    after(&console, &me, done, "Device removed.").await
}

#[derive(Deserialize)]
pub(super) struct CaseForm {
    case_id: String,
}

/// "This was not me" on one case: the account is locked and the session ends with it.
pub(super) async fn not_me(
    State(console): State<Console>,
    me: Me,
    Form(form): Form<CaseForm>,
) -> Response {
    match console.service.my_not_me(&me.0, &form.case_id).await {
        Ok(answer) => clear_cookie(
            LockedPage {
                message: answer["message"].as_str().unwrap_or_default().to_owned(),
            }
            .into_response(),
        ),
        Err(e) => after(&console, &me, Err(e), "").await,
    }
}
