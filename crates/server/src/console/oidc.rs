//! Console sign-in through the OpenID provider configured in `[oidc]`:
//! `GET /console/sign-in/oidc` sends the browser to the provider and seals the attempt into a
//! short-lived cookie of this browser; `GET /console/oidc/callback` finishes it through
//! [`Sso::finish`](deskgate_app::sso::Sso::finish) and [`Service::sso_sign_in`] and starts the same
//! console session the token sign-in starts. Every refusal is a page, never a session; refusals
//! nobody vouched for are audited through the per-address tally (`super::note_refusal`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::{ClientAddress, Console, error_page, note_refusal, session};
use deskgate_app::AppError;
use deskgate_app::service::Service;
use deskgate_app::sso::{ATTEMPT_TTL, Callback, SignInFor, SsoFailure};

/// Holds the attempt this browser started, sealed (its state, nonce and PKCE verifier), so a
/// response for another browser's attempt (login CSRF) is refused. Lax, because the provider's redirect back is a cross-site
/// top-level navigation; scoped to the callback path; HttpOnly.
const ATTEMPT_COOKIE: &str = "deskgate_oidc";
const ATTEMPT_ATTRIBUTES: &str = "Path=/console/oidc; HttpOnly; Secure; SameSite=Lax";

fn attempt_cookie(headers: &HeaderMap) -> Option<&str> {
    crate::link_tokens::cookie(headers, ATTEMPT_COOKIE)
}

fn refusal(failure: &SsoFailure) -> Response {
    error_page(None, &failure.error)
}

/// Sends the browser to the provider with a fresh state, nonce and PKCE challenge, to sign in
/// to the console.
pub(super) async fn begin(State(console): State<Console>) -> Response {
    begin_for(&console, SignInFor::Console).await
}

/// The same, to sign in to the own page (`/me`).
pub(super) async fn begin_own_page(State(console): State<Console>) -> Response {
    begin_for(&console, SignInFor::OwnPage).await
}

async fn begin_for(console: &Console, audience: SignInFor) -> Response {
    let Some(sso) = &console.sso else {
        return error_page(None, &AppError::not_found("single sign-on"));
    };
    match sso.begin_for(audience).await {
        Ok((url, sealed)) => {
            let cookie = format!(
                "{ATTEMPT_COOKIE}={sealed}; Max-Age={}; {ATTEMPT_ATTRIBUTES}",
                ATTEMPT_TTL.as_secs()
            );
            let mut response = Redirect::to(&url).into_response();
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                    response
                }
                Err(_) => error_page(
                    None,
                    &AppError::invalid("the sign-in state is not a cookie"),
                ),
            }
        }
        Err(failure) => refusal(&failure),
    }
}

/// Shown once signed in: the session cookie is SameSite=Strict, and the browser arrived here
/// from the provider's site, so it would not send the cookie along a redirect. A refresh from
/// this page is a same-site navigation, which does.
#[derive(Template, WebTemplate)]
#[template(path = "console/signed_in.html")]
struct SignedInPage {
    nav: Option<super::Nav>,
    name: String,
    provider: String,
}

/// Finishes the attempt and starts the console session, or shows why not (audited).
pub(super) async fn callback(
    State(console): State<Console>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(sso) = &console.sso else {
        return error_page(None, &AppError::not_found("single sign-on"));
    };
    let state = callback.state.as_deref().unwrap_or_default();
    let outcome = async {
        let attempt = sso.open_attempt(state, attempt_cookie(&headers))?;
        let audience = attempt.audience;
        console.service.spend_sign_in_attempt(&attempt).await?;
        Ok((audience, sso.finish(&callback, attempt).await?))
    }
    .await;
    let mut response = match outcome {
        // The own page refuses (and audits) an identity with no account itself.
        Ok((SignInFor::OwnPage, identity)) => {
            super::me::signed_in_through_provider(&console, &identity).await
        }
        Ok((SignInFor::Console, identity)) => match console.service.sso_sign_in(&identity).await {
            Ok(staff) => signed_in(&console, &staff.name, sso.provider_name()).await,
            Err(failure) => refused(&console, address, failure).await,
        },
        Err(failure) => refused(&console, address, failure).await,
    };
    // The attempt is over either way: the cookie goes with it.
    if let Ok(expired) = HeaderValue::from_str(&format!(
        "{ATTEMPT_COOKIE}=; Max-Age=0; {ATTEMPT_ATTRIBUTES}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    response
}

/// A refusal of an identity the provider vouched for is always audited in detail; one nobody
/// vouched for only while the address has not sent many.
async fn refused(console: &Console, address: std::net::IpAddr, failure: SsoFailure) -> Response {
    if failure.identity.is_some()
        || note_refusal(console, address, deskgate_app::sso::METHOD, failure.reason).await
    {
        Service::audit_sso_refusal(&console.service, &failure).await;
    }
    refusal(&failure)
}

async fn signed_in(console: &Console, staff_name: &str, provider: &str) -> Response {
    let started = match session::start_session(console, staff_name).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(cookie) = started.headers().get(header::SET_COOKIE).cloned() else {
        return error_page(None, &AppError::invalid("no console session was started"));
    };
    let mut page = (
        StatusCode::OK,
        SignedInPage {
            nav: None,
            name: staff_name.to_owned(),
            provider: provider.to_owned(),
        },
    )
        .into_response();
    page.headers_mut().append(header::SET_COOKIE, cookie);
    page
}
