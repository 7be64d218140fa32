//! Staff passkeys in the console: the account page's Passkeys section (register one), and
//! "Sign in with a passkey" on the sign-in page, which creates the same console session as the
//! token sign-in. The browser side is the vendored `/passkey/static/passkey.js`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::Value;

use super::session::{SignedIn, render_sign_in, start_session};
use super::{ClientAddress, Console, Failure, Nav, at, error_page, note_refusal};
use crate::error::ApiError;
use deskgate_app::AppError;
use deskgate_app::staff_passkeys::PasskeySignIn;

struct PasskeyRow {
    label: String,
    created_at: String,
    last_used_at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/account.html")]
struct AccountPage {
    nav: Option<Nav>,
    name: String,
    role: String,
    linked: bool,
    passkeys: Vec<PasskeyRow>,
    notice: Option<String>,
}

async fn render_account(
    console: &Console,
    staff: &SignedIn,
    notice: Option<String>,
) -> Result<Response, Failure> {
    let passkeys = console
        .service
        .staff_passkey_list(&staff.0)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            label: p.label,
            created_at: at(p.created_at),
            last_used_at: p.last_used_at.map(at).unwrap_or_else(|| "never".to_owned()),
        })
        .collect();
    Ok(AccountPage {
        nav: Some(staff.nav()),
        name: staff.0.name.clone(),
        role: super::words(staff.0.role),
        linked: staff.0.subject_id.is_some(),
        passkeys,
        notice,
    }
    .into_response())
}

pub(super) async fn account_page(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    render_account(&console, &staff, None).await
}

/// Registration options for the signed-in staff member, as JSON for the page's script.
pub(super) async fn registration_options(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        console
            .service
            .staff_passkey_registration_options(&staff.0)
            .await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct RegisterForm {
    ceremony: String,
    credential: String,
    #[serde(default)]
    label: String,
}

pub(super) async fn register(
    State(console): State<Console>,
    staff: SignedIn,
    Form(form): Form<RegisterForm>,
) -> Result<Response, Failure> {
    let credential: Value = serde_json::from_str(&form.credential)
        .map_err(|_| AppError::invalid("credential is not JSON"))?;
    let result = console
        .service
        .finish_staff_passkey_registration(&staff.0, &form.ceremony, &credential, &form.label)
        .await;
    match result {
        Ok(_) => render_account(&console, &staff, Some("Passkey added.".to_owned())).await,
        Err(e) if matches!(e, AppError::Unauthenticated(_)) => Err(e.into()),
        Err(e) => Ok(error_page(Some(staff.nav()), &e)),
    }
}

#[derive(Deserialize)]
pub(super) struct NameForm {
    name: String,
}

/// The challenge for signing in as the named staff member, as JSON for the page's script.
pub(super) async fn sign_in_options(
    State(console): State<Console>,
    Form(form): Form<NameForm>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        console
            .service
            .staff_passkey_sign_in_options(&form.name)
            .await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    name: String,
    ceremony: String,
    credential: String,
}

/// Checks the assertion and starts the console session, exactly as the token sign-in does. A
/// refusal is audited in detail only while the address has not sent many.
pub(super) async fn sign_in(
    State(console): State<Console>,
    ClientAddress(address): ClientAddress,
    Form(form): Form<SignInForm>,
) -> Response {
    let credential: Value = serde_json::from_str(&form.credential).unwrap_or(Value::Null);
    match console
        .service
        .staff_passkey_sign_in(&form.name, &form.ceremony, &credential)
        .await
    {
        Ok(PasskeySignIn::SignedIn(staff)) => match start_session(&console, &staff.name).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        },
        Ok(PasskeySignIn::Refused { reason }) => {
            if note_refusal(&console, address, "passkey", reason).await {
                console
                    .service
                    .audit_passkey_refusal(&form.name, reason)
                    .await;
            }
            let refused = deskgate_app::staff_passkeys::sign_in_refused();
            render_sign_in(
                &console,
                crate::error::status(&refused),
                Some(refused.message().to_owned()),
            )
            .await
        }
        Err(e) => Failure::from(e).into_response(),
    }
}
