//! Console sign-in through a real OpenID provider (npm oidc-provider, started per test from
//! tests/fixtures/oidc; `./scripts/test.sh` installs it), driven without a browser by a client
//! that keeps each site's cookies: Deskgate -> provider login and consent -> Deskgate's callback
//! -> a console session. Refusals (unknown identity, tampered or replayed state, disabled staff,
//! provider errors) leave no session and are audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use deskgate_app::sso::{CALLBACK_PATH, IdentityClaim, OidcConfig};
use deskgate_store::Actor;
use deskgate_testkit::chromedriver::Chromedriver;
use deskgate_testkit::on_both_backends;
use deskgate_testkit::server::{Backend, TestServer};
use deskgate_testkit::web::{
    Browser, CLIENT_ID, OidcProvider, PROVIDER_NAME, Page, free_port, server_with_provider,
    session_cookie,
};
use reqwest::{StatusCode, Url};
use serde_json::Value;

const AGENT: &str = "sam.rivera";
const SUPERVISOR: &str = "morgan.lee";
/// A Deskgate server with `[oidc]` pointing at a real provider that knows its callback.
struct Setup {
    s: TestServer,
    provider: OidcProvider,
}

async fn setup(backend: Backend) -> Setup {
    setup_with(backend, IdentityClaim::Email).await
}

async fn setup_with(backend: Backend, claim: IdentityClaim) -> Setup {
    setup_on(backend, claim, false).await
}

/// With `localhost`, Deskgate's public URL names another site than the provider's 127.0.0.1, so a
/// browser treats the provider's redirect back as cross-site, as in production.
async fn setup_on(backend: Backend, claim: IdentityClaim, localhost: bool) -> Setup {
    let (s, provider) = server_with_provider(backend, claim, move |c| {
        if localhost {
            c.public_url = c.public_url.replace("127.0.0.1", "localhost");
        }
    })
    .await;
    Setup { s, provider }
}

fn admin() -> Actor {
    Actor {
        id: "test-admin".to_owned(),
        role: "admin".to_owned(),
        auth: "test".to_owned(),
    }
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let mut out = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

/// The console home as this browser sees it: the queue when signed in, else a redirect.
async fn console_home(b: &mut Browser, base: &str) -> Page {
    b.get(&format!("{base}/console")).await
}

/// Audit entries of `event` appended after index `from`.
async fn entries(s: &TestServer, from: u64, event: &str) -> Vec<Value> {
    let store = &s.service.store();
    let size = store.audit_size().await.unwrap();
    store
        .audit_entries(from, size)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry().unwrap())
        .filter(|e| e["event"] == event)
        .collect()
}

async fn assert_refused(s: &TestServer, from: u64, page: &Page, reason: &str, shown: &str) {
    assert!(
        page.status.is_client_error() || page.status.is_server_error(),
        "{} {}",
        page.status,
        page.body
    );
    assert!(
        page.body.contains(shown),
        "{shown:?} not on:\n{}",
        page.body
    );
    assert!(session_cookie(page).is_none(), "{:?}", page.set_cookies);
    assert!(entries(s, from, "staff.sign_in").await.is_empty());
    let failed = entries(s, from, "staff.sign_in_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["details"]["method"], "oidc");
    assert_eq!(failed[0]["details"]["reason"], reason, "{failed:?}");
}

async fn staff_signs_in_through_the_provider_and_gets_a_console_session(backend: Backend) {
    let Setup { s, provider } = setup(backend).await;
    // Registered in other letter case than the provider sends: emails match without case.
    s.service
        .set_staff_sso_identity(AGENT, Some("Sam@Example.org"), &admin())
        .await
        .unwrap();
    let mut b = Browser::new();

    let sign_in = b.get(&format!("{}/console/sign-in", s.base)).await;
    assert!(
        sign_in
            .body
            .contains(r#"href="/console/sign-in/oidc">Sign in with Example IdP</a>"#),
        "{}",
        sign_in.body
    );

    // The authorization request: code flow, PKCE S256, state, nonce, the email scope; the
    // attempt is bound to this browser by a short-lived HttpOnly Lax cookie holding the state.
    let start = b.get(&format!("{}/console/sign-in/oidc", s.base)).await;
    let auth = start.location.clone().unwrap();
    assert!(
        auth.as_str()
            .starts_with(&format!("{}/auth?", provider.issuer))
    );
    assert_eq!(query(&auth, "response_type").as_deref(), Some("code"));
    assert_eq!(
        query(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query(&auth, "code_challenge").is_some_and(|c| c.len() >= 43));
    assert!(query(&auth, "nonce").is_some_and(|n| n.len() >= 16));
    assert!(
        query(&auth, "scope")
            .unwrap()
            .split(' ')
            .any(|s| s == "email")
    );
    let state = query(&auth, "state").unwrap();
    let attempt = start
        .set_cookies
        .iter()
        .find(|c| c.starts_with("deskgate_oidc="))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
        "Path=/console/oidc",
    ] {
        assert!(attempt.contains(attribute), "{attempt}");
    }
    // The attempt (state, nonce, PKCE verifier) travels sealed: nothing of it in the clear.
    let deskgate = start.url.clone();
    let sealed = b.cookie(&deskgate, "deskgate_oidc").unwrap();
    assert!(!sealed.contains(&state), "{sealed}");

    let from = s.service.store().audit_size().await.unwrap();
    let callback = b.continue_at_provider(start, &s.base, "sam").await;
    assert_eq!(query(&callback, "state"), Some(state.clone()));
    let done = b.get(callback.as_str()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let cookie = session_cookie(&done).expect("a console session");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // The Strict session cookie is not sent along the provider's cross-site redirect, so the
    // page moves on by itself from Deskgate's own origin.
    assert!(
        done.body
            .contains(r#"http-equiv="refresh" content="0; url=/console""#)
    );
    assert!(
        done.body.contains("signed in as sam.rivera"),
        "{}",
        done.body
    );
    assert_eq!(
        b.cookie(&done.url, "deskgate_oidc"),
        None,
        "attempt cookie kept"
    );

    let home = console_home(&mut b, &s.base).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("sam.rivera · Agent"), "{}", home.body);
    assert!(home.body.contains("My queue"));

    let signed = entries(&s, from, "staff.sign_in").await;
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0]["details"]["method"], "oidc");
    assert_eq!(signed[0]["details"]["staff_id"], signed[0]["actor"]["id"]);
    assert_eq!(signed[0]["actor"]["auth"], "oidc");
    assert_eq!(signed[0]["details"]["issuer"], provider.issuer);
    // Neither the code nor the state ever reaches the audit log.
    let code = query(&callback, "code").unwrap();
    let size = s.service.store().audit_size().await.unwrap();
    for r in s.service.store().audit_entries(0, size).await.unwrap() {
        assert!(
            !r.body.contains(&code) && !r.body.contains(&state),
            "{}",
            r.body
        );
    }

    // Signing out ends the session like any console session.
    let out = b.post(&format!("{}/console/sign-out", s.base), &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = console_home(&mut b, &s.base).await;
    assert_eq!(
        after.location.map(|l| l.path().to_owned()).as_deref(),
        Some("/console/sign-in")
    );
    s.finish().await;
}

async fn an_identity_no_staff_member_has_is_refused_without_a_session(backend: Backend) {
    let Setup { s, provider: _p } = setup(backend).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("sam@example.org"), &admin())
        .await
        .unwrap();
    let mut b = Browser::new();
    let from = s.service.store().audit_size().await.unwrap();
    let callback = b.through_provider(&s.base, "mallory").await;
    let page = b.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_refused(
        &s,
        from,
        &page,
        "unknown_identity",
        "no Deskgate staff member is registered with that identity",
    )
    .await;
    let failed = entries(&s, from, "staff.sign_in_failed").await;
    assert_eq!(failed[0]["details"]["identity"], "mallory@example.org");
    let home = console_home(&mut b, &s.base).await;
    assert_eq!(
        home.status,
        StatusCode::SEE_OTHER,
        "signed in after a refusal"
    );
    s.finish().await;
}

async fn a_tampered_or_replayed_state_is_refused(backend: Backend) {
    let Setup { s, provider: _p } = setup(backend).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("sam@example.org"), &admin())
        .await
        .unwrap();

    // Tampered: the state in the response is not the one this browser's attempt holds.
    let mut b = Browser::new();
    let callback = b.through_provider(&s.base, "sam").await;
    let state = query(&callback, "state").unwrap();
    let mut forged = state.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let from = s.service.store().audit_size().await.unwrap();
    let page = b
        .get(with_query(&callback, "state", &forged).as_str())
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_refused(
        &s,
        from,
        &page,
        "state_mismatch",
        "does not belong to the sign-in",
    )
    .await;

    // Another browser (no attempt cookie) cannot use this browser's response: login CSRF.
    let mut other = Browser::new();
    let from = s.service.store().audit_size().await.unwrap();
    let page = other.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_refused(
        &s,
        from,
        &page,
        "no_attempt_cookie",
        "did not start a sign-in",
    )
    .await;

    // Replayed: a response that signed in once never signs in again, even with the cookie.
    let mut b = Browser::new();
    let callback = b.through_provider(&s.base, "sam").await;
    let deskgate = Url::parse(&s.base).unwrap();
    let sealed = b.cookie(&deskgate, "deskgate_oidc").unwrap();
    let done = b.get(callback.as_str()).await;
    assert!(session_cookie(&done).is_some(), "{}", done.body);
    let mut replayer = Browser::new();
    replayer.set_cookie(&deskgate, "deskgate_oidc", &sealed);
    let from = s.service.store().audit_size().await.unwrap();
    let page = replayer.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_refused(&s, from, &page, "state_unknown", "already used").await;
    s.finish().await;
}

async fn a_disabled_staff_member_is_refused_and_their_session_ends(backend: Backend) {
    let Setup { s, provider: _p } = setup(backend).await;
    s.service
        .set_staff_sso_identity(SUPERVISOR, Some("morgan@example.org"), &admin())
        .await
        .unwrap();
    let mut b = Browser::new();
    let callback = b.through_provider(&s.base, "morgan").await;
    let done = b.get(callback.as_str()).await;
    assert!(session_cookie(&done).is_some(), "{}", done.body);
    assert_eq!(console_home(&mut b, &s.base).await.status, StatusCode::OK);

    s.service
        .set_staff_disabled(SUPERVISOR, true, &admin())
        .await
        .unwrap();
    // The open session and the staff member's API token died with the disabling.
    let home = console_home(&mut b, &s.base).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER, "{}", home.body);
    let (status, _) = s.get("/api/v1/cases", Some(&s.token(SUPERVISOR))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let from = s.service.store().audit_size().await.unwrap();
    let callback = b.through_provider(&s.base, "morgan").await;
    let page = b.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_refused(&s, from, &page, "staff_disabled", "access is disabled").await;
    let failed = entries(&s, from, "staff.sign_in_failed").await;
    assert_eq!(failed[0]["details"]["identity"], "morgan@example.org");
    assert!(failed[0]["details"]["staff_id"].is_string());

    // Enabled again, the same person signs in again.
    s.service
        .set_staff_disabled(SUPERVISOR, false, &admin())
        .await
        .unwrap();
    let callback = b.through_provider(&s.base, "morgan").await;
    let done = b.get(callback.as_str()).await;
    assert!(session_cookie(&done).is_some(), "{}", done.body);
    assert_eq!(console_home(&mut b, &s.base).await.status, StatusCode::OK);
    s.finish().await;
}

on_both_backends!(
    staff_signs_in_through_the_provider_and_gets_a_console_session,
    an_identity_no_staff_member_has_is_refused_without_a_session,
    a_tampered_or_replayed_state_is_refused,
    a_disabled_staff_member_is_refused_and_their_session_ends,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_is_not_an_identity() {
    let Setup { s, provider: _p } = setup(Backend::Sqlite).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("unverified-sam@example.org"), &admin())
        .await
        .unwrap();
    let mut b = Browser::new();
    let from = s.service.store().audit_size().await.unwrap();
    let callback = b.through_provider(&s.base, "unverified-sam").await;
    let page = b.get(callback.as_str()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_refused(
        &s,
        from,
        &page,
        "email_unverified",
        "has not verified your email",
    )
    .await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_error_response_is_shown_and_audited() {
    let Setup { s, provider: _p } = setup(Backend::Sqlite).await;
    let mut b = Browser::new();
    let start = b.get(&format!("{}/console/sign-in/oidc", s.base)).await;
    let state = query(&start.location.unwrap(), "state").unwrap();
    let from = s.service.store().audit_size().await.unwrap();
    // What the provider sends back when the person declines.
    let page = b
        .get(&format!(
            "{}{CALLBACK_PATH}?error=access_denied&error_description=End-User%20aborted&state={state}",
            s.base
        ))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_refused(
        &s,
        from,
        &page,
        "provider_error",
        "Example IdP did not sign you in (access_denied: End-User aborted)",
    )
    .await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_be_reached_is_a_clear_error_and_the_server_still_runs() {
    let port = free_port();
    let s = TestServer::start_with(Backend::Sqlite, move |c| {
        c.oidc = Some(OidcConfig {
            issuer: format!("http://127.0.0.1:{port}"),
            client_id: CLIENT_ID.to_owned(),
            client_secret: "unused".to_owned(),
            claim: IdentityClaim::Sub,
            scopes: None,
            provider_name: PROVIDER_NAME.to_owned(),
        });
    })
    .await;
    let mut b = Browser::new();
    let page = b.get(&format!("{}/console/sign-in/oidc", s.base)).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(
        page.body.contains("Example IdP cannot be reached"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("unused"));
    assert!(b.cookie(&page.url, "deskgate_oidc").is_none());
    // Token sign-in is unaffected.
    let (status, _) = s.get("/api/v1/cases", Some(&s.token(AGENT))).await;
    assert_eq!(status, StatusCode::OK);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_oidc_table_there_is_no_sso_button_or_route() {
    let s = TestServer::start(Backend::Sqlite).await;
    let mut b = Browser::new();
    let page = b.get(&format!("{}/console/sign-in", s.base)).await;
    assert!(!page.body.contains("/console/sign-in/oidc"));
    let page = b.get(&format!("{}/console/sign-in/oidc", s.base)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_identity_belongs_to_one_staff_member_only() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("shared@example.org"), &admin())
        .await
        .unwrap();
    let e = s
        .service
        .set_staff_sso_identity(SUPERVISOR, Some("SHARED@example.org"), &admin())
        .await
        .unwrap_err();
    assert_eq!(
        deskgate_server::error::status(&e).as_u16(),
        StatusCode::CONFLICT.as_u16(),
        "{}",
        e.message()
    );
    let found = s
        .service
        .store()
        .staff_by_sso_identity("shared@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.staff.name, AGENT);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_claim_can_name_the_staff_member() {
    let Setup { s, provider: _p } = setup_with(Backend::Sqlite, IdentityClaim::Sub).await;
    // The provider's subject for login "sam" is "sam"; the email is not asked for.
    s.service
        .set_staff_sso_identity(AGENT, Some("sam"), &admin())
        .await
        .unwrap();
    let mut b = Browser::new();
    let start = b.get(&format!("{}/console/sign-in/oidc", s.base)).await;
    let scope = query(start.location.as_ref().unwrap(), "scope").unwrap();
    assert_eq!(scope, "openid");
    let callback = b.continue_at_provider(start, &s.base, "sam").await;
    let done = b.get(callback.as_str()).await;
    assert!(session_cookie(&done).is_some(), "{}", done.body);
    let home = console_home(&mut b, &s.base).await;
    assert!(home.body.contains("sam.rivera · Agent"), "{}", home.body);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_naming_another_issuer_is_refused() {
    let Setup { s, provider: _p } = setup(Backend::Sqlite).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("sam@example.org"), &admin())
        .await
        .unwrap();
    let mut b = Browser::new();
    let callback = b.through_provider(&s.base, "sam").await;
    let from = s.service.store().audit_size().await.unwrap();
    let mixed_up = with_query(&callback, "iss", "https://evil.example");
    let page = b.get(mixed_up.as_str()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_refused(&s, from, &page, "issuer_mismatch", "another provider").await;
    s.finish().await;
}

/// In Chromium: the provider's redirect back is cross-site, so the Lax attempt cookie must come
/// along and the Strict session cookie must still be used once the browser lands on the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_through_the_provider_and_lands_on_the_console() {
    use thirtyfour::prelude::*;
    let Setup { s, provider: _p } = setup_on(Backend::Sqlite, IdentityClaim::Email, true).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("sam@example.org"), &admin())
        .await
        .unwrap();
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.browser(&profile).await;
    let base = s.service.config().public_url.clone();
    let text_of = |css: &'static str| {
        let driver = driver.clone();
        async move {
            for _ in 0..100 {
                if let Ok(e) = driver.find(By::Css(css)).await
                    && let Ok(t) = e.text().await
                {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!(
                "{css} never appeared: {}",
                driver.source().await.unwrap_or_default()
            );
        }
    };

    driver
        .goto(format!("{base}/console/sign-in"))
        .await
        .unwrap();
    driver
        .find(By::LinkText("Sign in with Example IdP"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The provider's own login and consent pages.
    text_of("input[name='login']").await;
    driver
        .find(By::Css("input[name='login']"))
        .await
        .unwrap()
        .send_keys("sam")
        .await
        .unwrap();
    driver
        .find(By::Css("input[name='password']"))
        .await
        .unwrap()
        .send_keys("any")
        .await
        .unwrap();
    driver
        .find(By::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_of("input[name='prompt'][value='consent']").await;
    driver
        .find(By::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back at Deskgate, signed in, on the agent's queue.
    let mut heading = String::new();
    for _ in 0..100 {
        heading = text_of("h1").await;
        if heading.contains("My queue") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        heading.contains("My queue"),
        "{heading}: {}",
        driver.source().await.unwrap()
    );
    assert!(text_of("header .who").await.contains("sam.rivera"));
    driver.quit().await.unwrap();
    drop(chromedriver);
    s.finish().await;
}
