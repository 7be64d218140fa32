//! Console sessions. The cookie holds an API token minted for the staff member by
//! [`Service::create_token`](deskgate_app::service::Service::create_token) (only its hash is stored), so
//! every console request authenticates through the same path as the JSON API. Sign-in takes a
//! bearer token the staff member pastes; the demo may offer one-click sign-in per staff member.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_core::Staff;
use serde::Deserialize;

use super::{Console, Failure, Nav, words};
use deskgate_app::AppError;

/// Scoped to the console so API requests never carry it; HttpOnly so page scripts cannot read
/// it; SameSite=Strict so no other site's link or form arrives signed in.
const COOKIE: &str = "deskgate_console";
const COOKIE_ATTRIBUTES: &str = "Path=/console; HttpOnly; Secure; SameSite=Strict";

/// The staff member signed in to the console.
pub(crate) struct SignedIn(pub(crate) Staff, Option<usize>);

impl SignedIn {
    /// The navigation, with the count of approvals waiting for this person when they approve.
    pub(crate) fn nav(&self) -> Nav {
        Nav::of(&self.0, self.1)
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    crate::link_tokens::cookie(headers, COOKIE)
}

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, Failure> {
        let token = session_token(&parts.headers).ok_or_else(AppError::unauthenticated)?;
        let staff = state.service.authenticate(token).await?;
        // The badge in the navigation: how many approvals wait for this person. A page still
        // renders when the count cannot be had.
        let waiting = if staff.role.oversees_cases() {
            state
                .service
                .pending_approvals(&staff)
                .await
                .ok()
                .map(|cases| cases.len())
        } else {
            None
        };
        Ok(Self(staff, waiting))
    }
}

struct DemoStaff {
    name: String,
    role: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    nav: Option<Nav>,
    error: Option<String>,
    demo: Vec<DemoStaff>,
    /// "Sign in with <provider>" when `[oidc]` is configured.
    sso: Option<String>,
}

pub(super) async fn render_sign_in(
    console: &Console,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let demo = if console.demo_sign_in {
        match console.service.demo_roster().await {
            Ok(staff) => staff
                .into_iter()
                .map(|s| DemoStaff {
                    name: s.name,
                    role: words(s.role),
                })
                .collect(),
            Err(e) => return Failure::from(e).into_response(),
        }
    } else {
        Vec::new()
    };
    (
        status,
        SignInPage {
            nav: None,
            error,
            demo,
            sso: console.sso.as_ref().map(|s| s.provider_name().to_owned()),
        },
    )
        .into_response()
}

pub(super) async fn sign_in_page(State(console): State<Console>) -> Response {
    render_sign_in(&console, StatusCode::OK, None).await
}

/// Mints the console's own token for `staff_name` and sets it as the session cookie.
pub(super) async fn start_session(
    console: &Console,
    staff_name: &str,
) -> Result<Response, Failure> {
    let token = console
        .service
        .create_session_token(staff_name, SESSION_HOURS)
        .await?;
    let cookie = HeaderValue::from_str(&format!("{COOKIE}={token}; {COOKIE_ATTRIBUTES}"))
        .map_err(|_| AppError::invalid("the session token is not a valid cookie value"))?;
    let mut response = Redirect::to("/console").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    token: String,
}

/// Signs in with a pasted bearer token. The pasted token is not stored in the browser: the
/// console mints its own, so the integration token never sits in a cookie jar.
pub(super) async fn sign_in(
    State(console): State<Console>,
    Form(form): Form<TokenForm>,
) -> Response {
    let staff = match console.service.authenticate(form.token.trim()).await {
        Ok(staff) => staff,
        Err(AppError::Unauthenticated(_)) => {
            return render_sign_in(
                &console,
                StatusCode::UNAUTHORIZED,
                Some(
                    "That token is not valid. Paste the whole bearer token you were given.".into(),
                ),
            )
            .await;
        }
        Err(e) => return Failure::from(e).into_response(),
    };
    start_session(&console, &staff.name)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
pub(super) struct DemoForm {
    name: String,
}

/// One-click sign-in as a seeded staff member; exists only when the demo turned it on.
pub(super) async fn demo_sign_in(
    State(console): State<Console>,
    Form(form): Form<DemoForm>,
) -> Result<Response, Failure> {
    if !console.demo_sign_in {
        return Err(AppError::not_found("route").into());
    }
    start_session(&console, &form.name).await
}

/// Forgets the session in this browser.
/// A console session lasts one shift at most.
const SESSION_HOURS: i64 = 12;

pub(super) async fn sign_out(State(console): State<Console>, headers: HeaderMap) -> Response {
    // The token dies with the session, not only the cookie.
    if let Some(token) = session_token(&headers)
        && let Err(e) = console.service.revoke_token(token).await
    {
        tracing::warn!(error = %e.message(), "console token not revoked at sign-out");
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    let expired = format!("{COOKIE}=; Max-Age=0; {COOKIE_ATTRIBUTES}");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
