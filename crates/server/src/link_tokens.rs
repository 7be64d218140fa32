//! Link tokens out of URL paths. A link Deskgate sends (attestation, passkey, "this was not me",
//! secret retrieval) carries its token in the path, and that first GET is the only request that
//! may: proxies, access logs and browser history keep URLs, and a live token there is a usable
//! one. The first GET moves the token into a short-lived HttpOnly cookie scoped to the link's
//! pages (and redirects to a token-free URL) or into the page's form; every later request
//! carries it in the `X-Link-Token` header (API clients), a form field or that cookie. A POST
//! with a token in its path is refused before anything is looked up.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;
use deskgate_app::AppError;

/// The header API clients present a link token in.
pub const HEADER: &str = "x-link-token";

/// How long the cookie holding a link token lives: one visit, not the link's whole life.
const COOKIE_SECONDS: i64 = 30 * 60;

/// Tokens are URL-safe base64; anything else cannot be a link Deskgate sent (and must not reach a
/// header or a page).
pub fn well_formed(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// The link token of a request to a token-free route: the `X-Link-Token` header, else the form
/// field, else the cookie `cookie_name`.
pub fn presented(
    headers: &HeaderMap,
    form: Option<&str>,
    cookie_name: Option<&str>,
) -> Result<String, AppError> {
    let token = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or(form.map(str::trim))
        .or_else(|| cookie_name.and_then(|name| cookie(headers, name)))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AppError::unauthenticated_as(
                "link_token_required",
                "present the link's token in the X-Link-Token header, or open the link you \
                 received again",
            )
        })?;
    if !well_formed(token) {
        return Err(AppError::not_found("link"));
    }
    Ok(token.to_owned())
}

/// The answer to the first GET of a link: the token goes into an HttpOnly cookie for `scope`
/// (a path), and the browser moves on to the token-free page `to`.
pub fn into_cookie(token: &str, cookie_name: &str, scope: &str, to: &str) -> Response {
    if !well_formed(token) {
        return ApiError::not_found("link").into_response();
    }
    let cookie = format!(
        "{cookie_name}={token}; Path={scope}; Max-Age={COOKIE_SECONDS}; HttpOnly; Secure; \
         SameSite=Lax"
    );
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            let mut response = Redirect::to(to).into_response();
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        Err(_) => ApiError::not_found("link").into_response(),
    }
}

/// A POST (or a later GET) with a link token in its path.
pub fn in_path() -> ApiError {
    ApiError(AppError::malformed(
        "token_in_path",
        "link tokens are not accepted in the URL after the first visit: send the token in the \
         X-Link-Token header or the form, and POST to the link's route without it",
    ))
}

/// Handler refusing a request with a token in its path; nothing is looked up.
pub async fn refuse_in_path() -> ApiError {
    in_path()
}
