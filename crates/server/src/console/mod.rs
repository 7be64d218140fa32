//! The web console: server-rendered pages for help-desk staff, managers and auditors. Every page
//! is a thin view over [`Service`]: the console authenticates the session cookie through
//! [`Service::authenticate`], calls the same methods as the JSON API, and renders the result, so
//! no business rule lives here. htmx only enhances (live case status); every form posts without it.

mod admin;
mod approvals;
mod attest;
mod audit;
mod cases;
mod dashboard;
mod front_door;
mod me;
mod oidc;
mod passkeys;
mod recover;
mod security;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, Utc};
use deskgate_core::{Role, Staff};
use tower_http::csrf::CsrfLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::sign_in_guard::SignInGuard;
use deskgate_app::AppError;
use deskgate_app::labels::Label;
use deskgate_app::service::Service;

/// Pages may load scripts, styles and images from this origin only, never inline: an injected
/// `<script>` or `style=` attribute does nothing. Forms may only post back here, and no other site
/// may frame the console (clickjacking of the execute button).
pub(crate) const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// What every console handler shares.
#[derive(Clone)]
pub(crate) struct Console {
    service: Arc<Service>,
    /// One-click sign-in as any staff member; only for the demo.
    demo_sign_in: bool,
    /// Sign-in through the OpenID provider in `[oidc]`, when configured.
    sso: Option<Arc<deskgate_app::sso::Sso>>,
    /// Per-address limits and the refusal tally of the public sign-in routes.
    guard: Arc<SignInGuard>,
}

/// The console's routes, with one-click demo sign-in only when the configuration says so, which
/// only `deskgate demo` can (it is no configuration key). The state is applied here, so the
/// router merges into a router of any state (the API's included).
pub fn router<S: Clone + Send + Sync + 'static>(service: Arc<Service>) -> Router<S> {
    let demo_sign_in = service.config().demo_sign_in;
    router_with(service, demo_sign_in)
}

/// The client a request comes from, as the sign-in limits count it: the peer address when the
/// server was started with connection info, else one shared unknown address.
pub(crate) struct ClientAddress(pub(crate) IpAddr);

impl FromRequestParts<Console> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Console,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self(console.guard.address(peer, &parts.headers)))
    }
}

/// Answers 429 with `Retry-After` once the client's address has used up its allowance.
async fn rate_limited(
    State(console): State<Console>,
    ClientAddress(address): ClientAddress,
    request: Request,
    next: Next,
) -> Response {
    match console.guard.admit(address) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("deskgate_rate_limit_refusals_total", "limit" => "sign_in")
                .increment(1);
            let mut page = error_page(
                None,
                &AppError::rate_limited(
                    "too_many_sign_ins",
                    format!(
                        "Too many sign-in requests from your network. Try again in {} seconds.",
                        wait.as_secs()
                    ),
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, value);
            }
            page
        }
    }
}

/// Records a refused sign-in from `address`: one by one for the first few of a window, else only
/// counted (see [`SignInGuard`]). Answers whether the caller should audit this one in detail.
async fn note_refusal(console: &Console, address: IpAddr, method: &str, reason: &str) -> bool {
    let (detailed, closed) =
        console
            .guard
            .note_failure(address, method, reason, console.service.now());
    console.service.audit_sign_in_failures(closed).await;
    detailed
}

/// The console's routes with demo sign-in chosen by the caller (the demo command and tests).
pub fn router_with<S: Clone + Send + Sync + 'static>(
    service: Arc<Service>,
    demo_sign_in: bool,
) -> Router<S> {
    let console = Console {
        sso: service.sso(),
        guard: Arc::new(SignInGuard::new(&service.config().sign_in)),
        service,
        demo_sign_in,
    };
    spawn_failure_flusher(&console);
    Router::new()
        .merge(sign_in_routes(&console))
        .merge(me_routes(&console))
        .merge(case_routes())
        .merge(link_and_audit_routes())
        // Token-less CSRF protection: a browser marks every request with Sec-Fetch-Site or
        // Origin, and a cross-site POST is refused before any handler runs.
        .layer(CsrfLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONSOLE_CSP),
        ))
        .with_state(console)
}

/// Sign-in, sign-out and the staff member's own passkeys. Every public sign-in route shares one
/// allowance per client address.
fn sign_in_routes(console: &Console) -> Router<Console> {
    let limited = |route: MethodRouter<Console>| {
        route.route_layer(from_fn_with_state(console.clone(), rate_limited))
    };
    Router::new()
        .route(
            "/console/sign-in",
            get(session::sign_in_page).merge(limited(post(session::sign_in))),
        )
        .route(
            "/console/sign-in/demo",
            limited(post(session::demo_sign_in)),
        )
        .route("/console/sign-in/oidc", limited(get(oidc::begin)))
        .route("/console/oidc/callback", limited(get(oidc::callback)))
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/sign-in/passkey", limited(post(passkeys::sign_in)))
        .route(
            "/console/sign-in/passkey/options",
            limited(post(passkeys::sign_in_options)),
        )
        .route("/console/account", get(passkeys::account_page))
        .route("/console/account/passkeys", post(passkeys::register))
        .route(
            "/console/account/passkeys/options",
            post(passkeys::registration_options),
        )
}

/// The subject's own page and self-service recovery. Every answer is `no-store`: they carry
/// personal data and, once, recovery codes.
fn me_routes(console: &Console) -> Router<Console> {
    let limited = |route: MethodRouter<Console>| {
        route.route_layer(from_fn_with_state(console.clone(), rate_limited))
    };
    // Self-service posts: the per-address allowance, and one duration for every answer.
    let recovering =
        |route: MethodRouter<Console>| limited(route.route_layer(from_fn(recover::padded)));
    Router::new()
        .route("/me", get(me::page))
        .route("/me/sign-in", limited(post(me::sign_in)))
        .route("/me/sign-in/options", limited(post(me::sign_in_options)))
        .route("/me/sign-in/oidc", limited(get(oidc::begin_own_page)))
        .route("/me/sign-out", post(me::sign_out))
        .route("/me/recovery-codes", post(me::new_codes))
        .route("/me/passkeys", post(me::add_passkey))
        .route("/me/passkeys/options", post(me::passkey_options))
        .route("/me/passkeys/{id}/rename", post(me::rename_passkey))
        .route("/me/passkeys/{id}/remove", post(me::remove_passkey))
        .route("/me/devices/{id}/rename", post(me::rename_device))
        .route("/me/devices/{id}/remove", post(me::remove_device))
        .route("/me/not-me", post(me::not_me))
        .route("/recover", get(recover::page))
        .route("/recover/steps", get(recover::steps))
        .route("/recover/start", recovering(post(recover::start)))
        .route("/recover/send", recovering(post(recover::send)))
        .route("/recover/answer", recovering(post(recover::answer)))
        .route(
            "/recover/passkey/options",
            recovering(post(recover::passkey_options)),
        )
        .route(
            "/recover/passkey",
            recovering(post(recover::passkey_answer)),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The queue, a case's page and its steps, approvals, break-glass, the security, dashboard and
/// admin pages.
fn case_routes() -> Router<Console> {
    Router::new()
        .route("/console", get(cases::queue))
        .route("/console/cases/new", get(cases::new_case))
        .route("/console/cases/find", get(cases::find_case))
        .route("/console/cases", post(cases::open_case))
        .route("/console/cases/{id}", get(cases::case_page))
        .route("/console/cases/{id}/live", get(cases::live))
        .route(
            "/console/cases/{id}/verifications",
            post(cases::start_verification),
        )
        .route(
            "/console/cases/{id}/verifications/{vid}",
            post(cases::answer_code),
        )
        .route("/console/cases/{id}/execute", post(cases::execute))
        .route("/console/cases/{id}/end", post(cases::end_case))
        .route(
            "/console/cases/{id}/self-service",
            post(cases::self_service_link),
        )
        .route("/console/cases/{id}/approvals", post(approvals::decide))
        .route("/console/cases/{id}/resume", post(security::resume))
        .route(
            "/console/cases/{id}/break-glass",
            post(security::break_glass),
        )
        .route("/console/security", get(security::security_page))
        .route("/console/dashboard", get(dashboard::dashboard))
        .route("/console/admin", get(admin::admin_page))
        .route("/console/admin/reload", post(admin::reload))
}

/// The front door, the manager's attestation pages behind a link, the audit pages and the static
/// assets.
fn link_and_audit_routes() -> Router<Console> {
    Router::new()
        .route("/", get(front_door::front_door))
        .route("/console/approvals", get(approvals::queue))
        .route(
            "/console/attest",
            get(attest::attestation_page).post(attest::attest),
        )
        .route("/console/attest/code", post(attest::send_code))
        .route("/console/attest/sign-in", post(attest::sign_in))
        .route(
            "/console/attest/{token}",
            get(attest::open_link).post(crate::link_tokens::refuse_in_path),
        )
        .route(
            "/console/attest/{token}/code",
            post(crate::link_tokens::refuse_in_path),
        )
        .route(
            "/console/attest/{token}/sign-in",
            post(crate::link_tokens::refuse_in_path),
        )
        .route("/console/audit", get(audit::audit_page))
        .route("/console/audit/checkpoint", post(audit::cut_checkpoint))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/htmx.min.js", get(htmx))
}

/// Writes the summaries of refused sign-ins whose window has closed, also when no new refusal
/// arrives to trigger it. Needs a runtime: a router built outside one writes them only as new
/// refusals arrive.
fn spawn_failure_flusher(console: &Console) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let guard = Arc::downgrade(&console.guard);
    let service = console.service.clone();
    let every = console.guard.flush_interval();
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // The router is gone: so is the tally.
            let Some(guard) = guard.upgrade() else {
                return;
            };
            let closed = guard.closed_windows(service.now());
            service.audit_sign_in_failures(closed).await;
        }
    });
}

/// Static files are compiled in, so the console works wherever the binary runs.
async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/console.css"),
    )
}

async fn htmx() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/htmx.min.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// What the navigation shows: who is signed in and the pages their role has.
pub(crate) struct Nav {
    name: String,
    role: String,
    works_cases: bool,
    approves: bool,
    /// Approvals waiting for this person, shown as a count beside "Approvals".
    waiting: Option<usize>,
    audits: bool,
    secures: bool,
    dashboard: bool,
    administers: bool,
}

impl Nav {
    fn of(staff: &Staff, waiting: Option<usize>) -> Self {
        Self {
            name: staff.name.clone(),
            role: words(staff.role),
            works_cases: staff.role.works_cases(),
            approves: staff.role.oversees_cases(),
            waiting: waiting.filter(|n| *n > 0),
            audits: matches!(staff.role, Role::Auditor | Role::SecurityOfficer),
            secures: staff.role == Role::SecurityOfficer,
            dashboard: matches!(
                staff.role,
                Role::Supervisor | Role::SecurityOfficer | Role::Auditor
            ),
            administers: staff.role == Role::Admin,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: u16,
    message: String,
}

/// A failed console request. A missing or bad session sends the browser to sign in; anything else
/// is shown as a page carrying the service's own message and status.
pub(crate) struct Failure(AppError);

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<crate::error::ApiError> for Failure {
    fn from(e: crate::error::ApiError) -> Self {
        Self(e.0)
    }
}

impl From<deskgate_store::StoreError> for Failure {
    fn from(e: deskgate_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if matches!(self.0, AppError::Unauthenticated(_)) {
            return Redirect::to("/console/sign-in").into_response();
        }
        error_page(None, &self.0)
    }
}

fn error_page(nav: Option<Nav>, e: &AppError) -> Response {
    (
        crate::error::status(e),
        ErrorPage {
            nav,
            status: crate::error::status(e).as_u16(),
            message: e.message().to_owned(),
        },
    )
        .into_response()
}

/// A page the signed-in role may not see: 403 with the navigation, so the staff member can go
/// where they belong.
fn refuse(staff: &session::SignedIn, message: &str) -> Response {
    error_page(Some(staff.nav()), &AppError::forbidden(message))
}

/// An API id in words for people: `mfa_reset` -> `mfa reset`.
/// A domain id in the words people read: the one table in `deskgate_app::labels`.
fn words(value: impl Label) -> String {
    value.label().to_owned()
}

/// One time format on every page; UTC, because agents, managers and auditors sit in different
/// time zones and the audit log is in UTC.
fn at(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional form field: blank means absent.
fn optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
