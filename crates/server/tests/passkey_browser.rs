//! Passkeys in a real browser: Debian's chromium through chromedriver, with Chrome's virtual
//! authenticator (the W3C WebAuthn WebDriver extension) standing in for the person's device. The
//! pages' vendored script runs under their strict CSP, exactly as a person's browser runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::chromedriver as browser;
use deskgate_testkit::server as common;

use browser::{Chromedriver, add_virtual_authenticator, click, shoot, type_into, wait_text};
use chrono::Utc;
use common::{Backend, TestServer};
use deskgate_store::{Change, Credential};
use serde_json::json;
use thirtyfour::prelude::*;

const AGENT: &str = "sam.rivera";

/// A server whose public URL is `http://localhost:PORT`: the RP id must be a host name, and
/// Chromium treats localhost as a secure context.
async fn server() -> (TestServer, String) {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
    })
    .await;
    let base = s.service.config().public_url.clone();
    (s, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_member_registers_a_passkey_and_signs_in_with_it_in_chromium() {
    let (s, base) = server().await;
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = chromedriver.browser(&profile).await;
    add_virtual_authenticator(&browser).await;

    // Signed in with the token, the staff member adds a passkey on the account page.
    browser
        .goto(format!("{base}/console/sign-in"))
        .await
        .unwrap();
    type_into(&browser, "#token", &s.token(AGENT)).await;
    click(&browser, "form[action='/console/sign-in'] button").await;
    wait_text(&browser, By::Css("header .who"), "Sign out").await;
    browser
        .goto(format!("{base}/console/account"))
        .await
        .unwrap();
    wait_text(&browser, By::Id("no-passkeys"), "no console passkeys").await;
    type_into(&browser, "#passkey-label", "Virtual key").await;
    click(&browser, "#add-passkey-button").await;
    wait_text(&browser, By::Id("account-notice"), "Passkey added").await;
    wait_text(&browser, By::Id("passkeys"), "Virtual key").await;
    shoot(&browser, "passkey-account").await;

    // Signed out, the passkey alone signs them in to the same kind of console session.
    click(&browser, "header .who button").await;
    wait_text(&browser, By::Tag("h1"), "Sign in").await;
    shoot(&browser, "passkey-sign-in").await;
    type_into(&browser, "#passkey-name", AGENT).await;
    click(&browser, "#passkey-sign-in-button").await;
    wait_text(&browser, By::Css("header .who"), AGENT).await;
    wait_text(&browser, By::Tag("h1"), "My queue").await;

    let events = s.events_since(0).await;
    assert!(events.contains(&"staff.passkey_registered".to_owned()));
    assert!(events.contains(&"staff.signed_in".to_owned()));
    browser.quit().await.unwrap();
    s.finish().await;
}

/// Issues a temporary access pass for `subject` as an MFA reset would (only its hash is kept).
async fn seed_pass(s: &TestServer, subject: &str) -> String {
    let pass = deskgate_app::secrets::random_token();
    let now = Utc::now();
    s.service
        .store()
        .commit(Change {
            credentials: vec![Credential {
                subject_id: subject.to_owned(),
                kind: "temporary_access_pass".to_owned(),
                hash: deskgate_app::secrets::token_hash(&pass),
                created_at: now,
                expires_at: Some(now + chrono::Duration::hours(1)),
                used_at: None,
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    pass
}

/// Enrols the browser's virtual authenticator for `subject` on the pass page.
async fn enrol_in_browser(s: &TestServer, browser: &WebDriver, base: &str, subject: &str) {
    let pass = seed_pass(s, subject).await;
    browser.goto(format!("{base}/tap")).await.unwrap();
    type_into(browser, "#subject", subject).await;
    type_into(browser, "#pass", &pass).await;
    click(browser, "#create-passkey").await;
    wait_text(browser, By::Id("passkey-status"), "passkey is enrolled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_signs_in_to_their_own_page_and_creates_recovery_codes_in_chromium() {
    let (s, base) = server().await;
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = chromedriver.browser(&profile).await;
    add_virtual_authenticator(&browser).await;
    enrol_in_browser(&s, &browser, &base, "u-alice").await;

    browser.goto(format!("{base}/me")).await.unwrap();
    wait_text(&browser, By::Tag("h1"), "Your account").await;
    shoot(&browser, "me-sign-in").await;
    type_into(&browser, "#me-name", "u-alice").await;
    click(&browser, "#me-sign-in-button").await;
    wait_text(&browser, By::Css("header .who"), "Sign out").await;
    wait_text(&browser, By::Id("passkeys"), "(this session)").await;
    wait_text(&browser, By::Id("contacts"), "email").await;
    shoot(&browser, "me-account").await;

    click(&browser, "#new-codes").await;
    wait_text(&browser, By::Tag("h1"), "Your new recovery codes").await;
    let codes = browser
        .find_all(By::Css("#new-recovery-codes li code"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let download = browser.find(By::Id("download-codes")).await.unwrap();
    assert_eq!(
        download.attr("download").await.unwrap().as_deref(),
        Some("recovery-codes.txt")
    );
    shoot(&browser, "me-recovery-codes").await;
    browser.goto(format!("{base}/me")).await.unwrap();
    wait_text(&browser, By::Id("recovery-codes"), "10 unused").await;
    click(&browser, "#sign-out").await;
    wait_text(&browser, By::Id("notice"), "signed out").await;

    let events = s.events_since(0).await;
    for wanted in [
        "subject.signed_in",
        "recovery_codes.issued",
        "subject.signed_out",
    ] {
        assert!(events.contains(&wanted.to_owned()), "{wanted}: {events:?}");
    }
    browser.quit().await.unwrap();
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_resets_their_password_on_their_own_with_a_passkey_in_chromium() {
    let (s, base) = server().await;
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = chromedriver.browser(&profile).await;
    add_virtual_authenticator(&browser).await;
    // Alice's MFA was reset at the help desk; the pass went to one contact of record, and the
    // passkey she enrols with it depends on that contact.
    let pass = s
        .executed_mfa_reset(AGENT, "u-alice", "alice.jensen@example.org")
        .await;
    let (pass, pass_went_to) = (
        pass["pass"].as_str().unwrap().to_owned(),
        pass["to"].as_str().unwrap().to_owned(),
    );
    browser.goto(format!("{base}/tap")).await.unwrap();
    type_into(&browser, "#subject", "u-alice").await;
    type_into(&browser, "#pass", &pass).await;
    click(&browser, "#create-passkey").await;
    wait_text(&browser, By::Id("passkey-status"), "passkey is enrolled").await;
    // Weeks later, past the probation and the freshness window.
    s.clock.advance(chrono::Duration::days(15));

    browser.goto(format!("{base}/recover")).await.unwrap();
    type_into(&browser, "#recover-name", "u-alice").await;
    click(&browser, "#action-password_reset").await;
    click(&browser, "#recover-start-button").await;
    wait_text(&browser, By::Tag("h1"), "confirm it is you").await;
    click(&browser, "#use-passkey").await;
    wait_text(&browser, By::Id("notice"), "That matched").await;
    wait_text(&browser, By::Id("passed"), "A passkey").await;
    // The second step goes through the contact the pass did not.
    let (method, to) = if pass_went_to.contains('@') {
        ("sms_code", "+1 555 010 0142")
    } else {
        ("email_code", "alice.jensen@example.org")
    };
    click(&browser, &format!("#send-{method}")).await;
    wait_text(&browser, By::Id("notice"), "a code is on its way").await;
    let code = s
        .outbox()
        .iter()
        .rev()
        .find(|m| m["kind"] == "verification_code" && m["to"] == to)
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    type_into(&browser, &format!("#code-{method}"), &code).await;
    click(&browser, &format!("#check-{method}")).await;
    wait_text(&browser, By::Tag("h1"), "Done").await;
    shoot(&browser, "recover-passkey-done").await;

    let events = s.events_since(0).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "execution.performed")
            .count(),
        2,
        "{events:?}"
    );
    browser.quit().await.unwrap();
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_enrols_with_a_pass_and_confirms_a_case_with_the_passkey_in_chromium() {
    let (s, base) = server().await;
    let pass = deskgate_app::secrets::random_token();
    let now = Utc::now();
    s.service
        .store()
        .commit(Change {
            credentials: vec![Credential {
                subject_id: "u-alice".to_owned(),
                kind: "temporary_access_pass".to_owned(),
                hash: deskgate_app::secrets::token_hash(&pass),
                created_at: now,
                expires_at: Some(now + chrono::Duration::hours(1)),
                used_at: None,
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = chromedriver.browser(&profile).await;
    add_virtual_authenticator(&browser).await;

    // The pass creates the passkey on the enrolment page.
    browser.goto(format!("{base}/tap")).await.unwrap();
    type_into(&browser, "#subject", "u-alice").await;
    type_into(&browser, "#pass", &pass).await;
    click(&browser, "#create-passkey").await;
    wait_text(&browser, By::Id("passkey-status"), "passkey is enrolled").await;
    shoot(&browser, "passkey-tap").await;

    // Weeks later (a passkey bound minutes ago is no device of record yet), the agent asks for
    // the passkey; the emailed link's page confirms it.
    s.clock.advance(chrono::Duration::days(15));
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "passkey" }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let link = s.last_message("passkey_link")["link"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(link.starts_with(&base), "{link}");
    browser.goto(&link).await.unwrap();
    click(&browser, "#use-passkey").await;
    wait_text(&browser, By::Id("passkey-status"), "confirmed it is you").await;
    shoot(&browser, "passkey-verify").await;

    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    let passed = case["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["method"] == "passkey" && v["state"] == "passed");
    assert!(passed, "{case}");
    browser.quit().await.unwrap();
    s.finish().await;
}
