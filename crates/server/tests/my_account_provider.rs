//! The own page (`/me`) signed in through the organisation's OpenID provider (npm
//! oidc-provider, as for the console): the provider's verified email names the subject of record;
//! such a session sees the account and can report "this was not me", and changes no way to sign
//! in (the provider session is what a talked-into reset hands an attacker). An identity with no
//! account is refused and audited; a console attempt cannot open the own page, nor the reverse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use deskgate_app::sso::IdentityClaim;
use deskgate_testkit::chromedriver::Chromedriver;
use deskgate_testkit::on_both_backends;
use deskgate_testkit::server::{Backend, TestServer};
use deskgate_testkit::web::{Browser, PROVIDER_NAME, Page, server_with_provider};
use reqwest::StatusCode;

const AGENT: &str = "sam.rivera";
const DAVE: &str = "u-dave";

/// Signs in to the own page through the provider as `login`; answers the callback's page.
async fn own_page_through_provider(b: &mut Browser, s: &TestServer, login: &str) -> Page {
    let start = b.get(&format!("{}/me/sign-in/oidc", s.base)).await;
    let callback = b.continue_at_provider(start, &s.base, login).await;
    b.get(callback.as_str()).await
}

async fn a_person_signs_in_through_the_provider_and_sees_but_changes_no_way_in(backend: Backend) {
    let (s, _provider) = server_with_provider(backend, IdentityClaim::Email, |_| {}).await;
    let mut b = Browser::new();
    let sign_in = b.get(&format!("{}/me", s.base)).await;
    assert!(
        sign_in
            .body
            .contains(&format!("Sign in with {PROVIDER_NAME}")),
        "{}",
        sign_in.body
    );
    let landed = own_page_through_provider(&mut b, &s, "dave.whitfield").await;
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    assert!(landed.body.contains("Signed in through"), "{}", landed.body);
    let cookie = landed
        .set_cookies
        .iter()
        .find(|c| c.starts_with("deskgate_me="))
        .unwrap();
    assert!(
        cookie.contains("Path=/me") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // No console session came with it.
    assert!(
        !landed
            .set_cookies
            .iter()
            .any(|c| c.starts_with("deskgate_console="))
    );
    let events = s.events_since(0).await;
    assert!(
        events.contains(&"subject.signed_in_with_provider".to_owned()),
        "{events:?}"
    );

    let page = b.get(&format!("{}/me", s.base)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Dave Whitfield"), "{}", page.body);
    assert!(page.body.contains("action=\"/me/sign-out\""));

    // Nothing that adds, replaces or removes a way in, and nothing written.
    let codes = s.service.store().recovery_codes(DAVE).await.unwrap();
    let size = s.service.store().audit_size().await.unwrap();
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    let device = dave.authenticators.first().unwrap().id.clone();
    for path in [
        "/me/recovery-codes".to_owned(),
        "/me/passkeys/options".to_owned(),
        format!("/me/devices/{device}/remove"),
    ] {
        let refused = b.post(&format!("{}{path}", s.base), &[]).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
        assert!(
            refused.body.contains("sign in here with a passkey"),
            "{}",
            refused.body
        );
    }
    assert_eq!(s.service.store().recovery_codes(DAVE).await.unwrap(), codes);
    assert_eq!(s.service.store().audit_size().await.unwrap(), size);
    let after = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert_eq!(after.authenticators, dave.authenticators);

    // "This was not me" works from such a session: the account is held, the session over.
    let case = s.open_case(AGENT, DAVE, "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let locked = b
        .post(&format!("{}/me/not-me", s.base), &[("case_id", id)])
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    assert!(
        locked.body.contains("your account is locked"),
        "{}",
        locked.body
    );
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.flagged, "{dave:?}");
    let again = own_page_through_provider(&mut b, &s, "dave.whitfield").await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "{}", again.body);
    s.finish().await;
}

async fn an_identity_with_no_account_is_refused_and_audited(backend: Backend) {
    let (s, _provider) = server_with_provider(backend, IdentityClaim::Email, |_| {}).await;
    let mut b = Browser::new();
    let page = own_page_through_provider(&mut b, &s, "mallory").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.body.contains("no account here has that identity"),
        "{}",
        page.body
    );
    assert!(
        !page
            .set_cookies
            .iter()
            .any(|c| c.starts_with("deskgate_me=") && !c.starts_with("deskgate_me=;"))
    );
    let store = s.service.store();
    let entries = store
        .audit_entries(0, store.audit_size().await.unwrap())
        .await
        .unwrap();
    let refused = entries
        .iter()
        .rev()
        .map(|r| r.entry().unwrap())
        .find(|e| e["event"] == "subject.sign_in_failed")
        .unwrap();
    assert_eq!(refused["details"]["method"], "oidc");
    assert_eq!(refused["details"]["reason"], "unknown_identity");
    // A staff member's provider identity opens no own page either (no subject has it).
    let page = own_page_through_provider(&mut b, &s, "sam").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    s.finish().await;
}

async fn a_console_attempt_does_not_open_the_own_page(backend: Backend) {
    let (s, _provider) = server_with_provider(backend, IdentityClaim::Email, |_| {}).await;
    // Dave is no staff member: the console refuses him, and no own-page session comes of it.
    let mut b = Browser::new();
    let page = b.sign_in_through_provider(&s.base, "dave.whitfield").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        !page
            .set_cookies
            .iter()
            .any(|c| c.starts_with("deskgate_me="))
    );
    let me = b.get(&format!("{}/me", s.base)).await;
    assert!(!me.body.contains("action=\"/me/sign-out\""));
    s.finish().await;
}

/// In Chromium: the provider's redirect back is cross-site; the page's link takes the browser to
/// the account with the Strict session cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_reaches_the_own_page_through_the_provider() {
    use thirtyfour::prelude::*;
    let (s, _provider) = server_with_provider(Backend::Sqlite, IdentityClaim::Email, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
    })
    .await;
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.browser(&profile).await;
    let base = s.service.config().public_url.clone();
    let find = |css: &'static str| {
        let driver = driver.clone();
        async move {
            for _ in 0..100 {
                if let Ok(e) = driver.find(By::Css(css)).await {
                    return e;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!(
                "{css} never appeared: {}",
                driver.source().await.unwrap_or_default()
            );
        }
    };
    driver.goto(format!("{base}/me")).await.unwrap();
    find("#me-sign-in-oidc").await.click().await.unwrap();
    find("input[name='login']")
        .await
        .send_keys("dave.whitfield")
        .await
        .unwrap();
    find("input[name='password']")
        .await
        .send_keys("any")
        .await
        .unwrap();
    find("button[type='submit']").await.click().await.unwrap();
    find("input[name='prompt'][value='consent']").await;
    find("button[type='submit']").await.click().await.unwrap();
    find("#continue").await.click().await.unwrap();
    let heading = find("h1").await.text().await.unwrap();
    assert_eq!(
        heading,
        "Dave Whitfield",
        "{}",
        driver.source().await.unwrap()
    );
    find("#sign-out").await;
    driver.quit().await.unwrap();
    drop(chromedriver);
    s.finish().await;
}

on_both_backends!(
    a_person_signs_in_through_the_provider_and_sees_but_changes_no_way_in,
    an_identity_with_no_account_is_refused_and_audited,
    a_console_attempt_does_not_open_the_own_page,
);
