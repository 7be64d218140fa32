//! The web console, driven in a real browser (Debian's chromium + chromium-driver through the
//! W3C WebDriver protocol) against a real server, plus its security headers over plain HTTP.
//! Screenshots of every page are taken on every run; with DESKGATE_SCREENSHOTS=1 they replace the
//! ones in docs/screenshots/ (otherwise they go to a temporary directory, so a test run does not
//! rewrite the documentation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::chromedriver as browser;
use deskgate_testkit::server as common;

use browser::{Chromedriver, click, shoot, type_into, wait_text};
use common::{Backend, TestServer};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use thirtyfour::prelude::*;

const AGENT: &str = "sam.rivera";
const SUPERVISOR: &str = "morgan.lee";
const AUDITOR: &str = "avery.stone";

async fn sign_in(driver: &WebDriver, base: &str, token: &str) {
    driver
        .goto(format!("{base}/console/sign-in"))
        .await
        .unwrap();
    type_into(driver, "#token", token).await;
    click(driver, "form[action='/console/sign-in'] button").await;
    wait_text(driver, By::Css("header .who"), "Sign out").await;
}

/// The state cell of the verification row for `method` in the live status panel.
fn verification_state(method: &str) -> By {
    By::XPath(format!(
        "//section[@id='live']//tr[td[1][normalize-space()='{method}']]/td[4]"
    ))
}

/// The walkthrough in a browser: an agent opens an MFA reset for Alice, sends a code,
/// enters a wrong code then the right one, asks Alice's manager, who confirms from the link in a
/// second browser (the agent's page updates by itself), uses a recovery code, executes; a
/// supervisor decides an approval; the auditor sees the entries with verified proofs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_recovers_mfa_in_the_browser_and_the_auditor_verifies_the_log() {
    // The server first: it installs the TLS crypto provider the WebDriver client needs.
    let s = TestServer::start(Backend::Sqlite).await;
    let chromedriver = Chromedriver::start().await;
    // WebAuthn (next increment) needs a host name, and Chromium treats localhost as secure, so
    // the Secure session cookie is kept over plain HTTP.
    let base = s.base.replace("127.0.0.1", "localhost");
    let (agent_profile, other_profile) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let agent = chromedriver.browser(&agent_profile).await;

    // Unsigned visitors are sent to sign in.
    agent.goto(format!("{base}/console")).await.unwrap();
    wait_text(&agent, By::Tag("h1"), "Sign in").await;
    shoot(&agent, "sign-in").await;
    sign_in(&agent, &base, &s.token(AGENT)).await;
    wait_text(&agent, By::Tag("h1"), "My queue").await;

    // New case: search the directory, pick Alice, MFA reset by phone.
    agent
        .goto(format!("{base}/console/cases/new"))
        .await
        .unwrap();
    type_into(&agent, "#q", "alice").await;
    click(&agent, "form[role='search'] button").await;
    wait_text(
        &agent,
        By::Css("label[for='subject-u-alice']"),
        "Alice Jensen",
    )
    .await;
    click(&agent, "#subject-u-alice").await;
    click(&agent, "#action option[value='mfa_reset']").await;
    click(&agent, "#channel option[value='phone']").await;
    // A phone call without the caller's number is refused at that field, the form kept.
    type_into(&agent, "#ticket", "INC-1042").await;
    click(
        &agent,
        "form[action='/console/cases'] button[type='submit']",
    )
    .await;
    wait_text(&agent, By::Id("caller_number-error"), "caller's number").await;
    let kept = agent
        .find(By::Css("#ticket"))
        .await
        .unwrap()
        .value()
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("INC-1042"));
    type_into(&agent, "#caller_number", "+1 555 010 0142").await;
    shoot(&agent, "new-case").await;
    click(
        &agent,
        "form[action='/console/cases'] button[type='submit']",
    )
    .await;
    wait_text(&agent, By::Id("case-state"), "open").await;
    let case_id = agent
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // The page shows the playbook's exact words, as the API gives them.
    let (_, api_case) = s
        .get(&format!("/api/v1/cases/{case_id}"), Some(&s.token(AGENT)))
        .await;
    let shown = agent.find(By::Css(".playbook .script")).await.unwrap();
    assert_eq!(
        shown.text().await.unwrap(),
        api_case["playbook"][0]["script"].as_str().unwrap()
    );
    shoot(&agent, "case-open").await;

    // A code by text to the phone of record, and the manager asked by link while the caller
    // waits for the text.
    click(&agent, "#start-sms_code").await;
    wait_text(&agent, By::Css(".notice"), "Verification started").await;
    let code = s.last_message("verification_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    click(&agent, "#start-manager_attestation").await;
    wait_text(
        &agent,
        verification_state("The manager confirms"),
        "waiting",
    )
    .await;
    let link = s.last_message("attestation_link")["link"]
        .as_str()
        .unwrap()
        .to_owned();

    // A wrong code first: refused with the tries left, then the right one.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    type_into(&agent, "form.code input[name='code']", wrong).await;
    click(&agent, "form.code button").await;
    // Said at the field, which is marked invalid; the panel still points at it.
    wait_text(&agent, By::Css("form.code .field-error"), "wrong").await;
    let invalid = agent
        .find(By::Css("form.code input[name='code']"))
        .await
        .unwrap()
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    wait_text(&agent, By::Id("next-action"), "Type the code").await;
    shoot(&agent, "case-wrong-code").await;
    type_into(&agent, "form.code input[name='code']", &code).await;
    click(&agent, "form.code button").await;
    wait_text(&agent, By::Css(".notice"), "Code accepted").await;
    wait_text(
        &agent,
        verification_state("Text message code to the phone of record"),
        "passed",
    )
    .await;
    wait_text(&agent, By::Id("case-state"), "verifying").await;

    // The manager confirms from the link in their own browser.
    let (_, token) = link.rsplit_once("/attest/").unwrap();
    let other = chromedriver.browser(&other_profile).await;
    other
        .goto(format!("{base}/console/attest/{token}"))
        .await
        .unwrap();
    // First the manager proves it is them, with a code to their own phone; until then the page
    // says nothing about the request.
    wait_text(&other, By::Tag("main"), "first confirm it is you").await;
    assert!(!other.source().await.unwrap().contains("Alice"));
    shoot(&other, "manager-sign-in").await;
    click(&other, "#send-code").await;
    wait_text(&other, By::Tag("label"), "Code from the text message").await;
    let sign_in_code = s.last_message("attestation_sign_in_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    type_into(&other, "input#code", &sign_in_code).await;
    click(&other, "#sign-in").await;
    wait_text(&other, By::Id("question"), "Alice Jensen").await;
    shoot(&other, "manager-attestation").await;
    click(&other, "#confirm").await;
    wait_text(&other, By::Css(".notice"), "You confirmed").await;
    shoot(&other, "manager-attested").await;
    // The agent's page learns of it by polling, and reloads whole: steps and panel agree.
    wait_text(&agent, verification_state("The manager confirms"), "passed").await;
    wait_text(&agent, By::Id("case-state"), "verifying").await;

    // A saved recovery code completes the playbook; the grant and execute button appear.
    click(&agent, "#start-recovery_code").await;
    wait_text(&agent, By::Css(".notice"), "Verification started").await;
    let saved = s.recovery_codes("alice.jensen@example.org");
    type_into(&agent, "form.code input[name='code']", &saved[0]).await;
    click(&agent, "form.code button").await;
    wait_text(&agent, By::Id("case-state"), "approved").await;
    wait_text(&agent, By::Css(".grant"), "Grant valid until").await;
    shoot(&agent, "case-approved").await;
    wait_text(&agent, By::Id("next-action"), "Execute the recovery").await;
    click(&agent, "#next-action").await;
    wait_text(&agent, By::Id("case-state"), "executed").await;
    wait_text(&agent, By::Id("what-now"), "Done").await;
    // The one action left is the way back; nothing on the page can act on the case.
    wait_text(&agent, By::Id("next-action"), "Back to my queue").await;
    assert!(agent.find(By::Css("button[id^='start-']")).await.is_err());
    shoot(&agent, "case-executed").await;
    agent.goto(format!("{base}/console")).await.unwrap();
    wait_text(&agent, By::Tag("main"), "No live cases").await;
    shoot(&agent, "queue").await;

    // A supervisor approves a privileged case waiting for them.
    let privileged = s.open_case(AGENT, "u-quinn", "password_reset").await;
    let privileged_id = privileged["id"].as_str().unwrap();
    sign_in(&other, &base, &s.token(SUPERVISOR)).await;
    other
        .goto(format!("{base}/console/approvals"))
        .await
        .unwrap();
    let privileged_ref = privileged["reference"].as_str().unwrap();
    wait_text(&other, By::Tag("main"), privileged_ref).await;
    shoot(&other, "approvals").await;
    type_into(
        &other,
        &format!("#reason-{privileged_id}"),
        "Checked the ticket with the caller's team lead",
    )
    .await;
    click(&other, "button[name='decision'][value='confirm']").await;
    wait_text(&other, By::Css(".notice"), "Decision recorded").await;

    // The auditor signs in, cuts a checkpoint and sees every listed entry verified.
    click(&other, "header .who button").await;
    wait_text(&other, By::Tag("h1"), "Sign in").await;
    sign_in(&other, &base, &s.token(AUDITOR)).await;
    other.goto(format!("{base}/console/audit")).await.unwrap();
    click(&other, "#cut-checkpoint").await;
    wait_text(&other, By::Id("checkpoint-status"), "Signature verified").await;
    let size = s.service.store().audit_size().await.unwrap();
    wait_text(
        &other,
        By::Id("checkpoint-size"),
        &format!("{size} of {size} entries"),
    )
    .await;
    let rows = other
        .find_all(By::Css("table.entries tbody tr"))
        .await
        .unwrap();
    let verified = other
        .find_all(By::Css("table.entries td.verified"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 20.min(size as usize));
    assert_eq!(verified.len(), rows.len(), "every listed entry is verified");
    let events = other
        .find(By::Css("table.entries"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.contains("execution.performed"), "{events}");
    assert!(events.contains(&case_id), "{events}");
    shoot(&other, "audit").await;

    other.quit().await.unwrap();
    agent.quit().await.unwrap();
    s.assert_audit_chain_intact().await;
}

/// The security, dashboard and admin pages in a browser, over a few seeded cases: an executed
/// reset (its subject on probation), an escalation, a denial and a break-glass case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_dashboard_and_admin_pages_render_in_the_browser() {
    let s = TestServer::start(Backend::Sqlite).await;
    let chromedriver = Chromedriver::start().await;
    let base = s.base.replace("127.0.0.1", "localhost");
    let officer = "riley.chen";

    let executed = s.open_case(AGENT, "u-dave", "password_reset").await;
    let executed = executed["id"].as_str().unwrap();
    s.pass_password_reset(AGENT, executed).await;
    assert_eq!(s.execute(AGENT, executed).await.0, StatusCode::OK);
    let escalated = s.open_case("jordan.blake", "u-dave", "mfa_reset").await;
    assert_eq!(escalated["state"], "escalated");
    let denied = s.open_case(AGENT, "u-tomas", "password_reset").await;
    let denied = denied["id"].as_str().unwrap();
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{denied}/deny"),
            Some(&s.token(AGENT)),
            serde_json::json!({"reason": "the caller hung up when asked for the ticket"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let glass_case = s.open_case(AGENT, "u-priya", "password_reset").await;
    let glass = glass_case["id"].as_str().unwrap();
    let glass_ref = glass_case["reference"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{glass}/break-glass"),
            Some(&s.token(officer)),
            serde_json::json!({"reason": "devices seized in an incident"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let profile = tempfile::tempdir().unwrap();
    let browser = chromedriver.browser(&profile).await;
    sign_in(&browser, &base, &s.token(officer)).await;
    // The pages are reached from the navigation, by keyboard-visible links.
    click(&browser, "nav a[href='/console/security']").await;
    wait_text(&browser, By::Tag("h1"), "Security").await;
    wait_text(&browser, By::Id("watched"), "Dave Whitfield").await;
    wait_text(&browser, By::Id("break-glass"), glass_ref).await;
    shoot(&browser, "security").await;
    click(&browser, "nav a[href='/console/dashboard']").await;
    wait_text(&browser, By::Id("denial-rate"), "1 of 4").await;
    let bars = browser.find_all(By::Css("svg.chart rect")).await.unwrap();
    assert!(!bars.is_empty(), "the charts draw bars");
    shoot(&browser, "dashboard").await;

    click(&browser, "header .who button").await;
    wait_text(&browser, By::Tag("h1"), "Sign in").await;
    sign_in(&browser, &base, &s.token("quinn.adams")).await;
    click(&browser, "nav a[href='/console/admin']").await;
    wait_text(&browser, By::Id("tests"), "passed").await;
    // The attack paths of the bundle in force, and its gates' verdict.
    wait_text(&browser, By::Id("gates"), "Every attack path holds").await;
    let rows = browser
        .find_all(By::Css("#attack-paths tbody tr"))
        .await
        .unwrap();
    assert!(rows.len() > 20, "{} rows", rows.len());
    let matrix = browser
        .find(By::Id("attack-paths"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(matrix.contains("sim swap + mailbox"), "{matrix}");
    shoot(&browser, "admin").await;
    browser.quit().await.unwrap();
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_forbid_inline_code_and_framing() {
    let s = TestServer::start(Backend::Sqlite).await;
    let resp = s
        .client
        .get(format!("{}/console/sign-in", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(!page.contains("style="), "no inline style attributes");
    assert!(!page.contains("<script>"), "no inline scripts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_console_cookie_that_authenticates_like_a_token() {
    let s = TestServer::start(Backend::Sqlite).await;
    let client = no_redirects();
    let resp = client
        .get(format!("{}/console", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/console/sign-in");

    let resp = client
        .post(format!("{}/console/sign-in", s.base))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = client
        .post(format!("{}/console/sign-in", s.base))
        .form(&[("token", s.token(AGENT))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let (_, minted) = session.split_once('=').unwrap();
    assert_ne!(minted, s.token(AGENT), "the console mints its own token");
    // The minted token is an ordinary API token: it authenticates through the same path.
    let (status, _) = s.get("/api/v1/cases?mine=true", Some(minted)).await;
    assert_eq!(status, StatusCode::OK);

    let resp = client
        .get(format!("{}/console", s.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains(AGENT));

    let resp = client
        .post(format!("{}/console/sign-out", s.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let cleared = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // Signing out kills the token itself, not only the cookie.
    let (status, _) = s.get("/api/v1/cases?mine=true", Some(minted)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_expire_after_a_shift() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.service.create_session_token(AGENT, 12).await.unwrap();
    let (status, _) = s.get("/api/v1/cases?mine=true", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    s.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    let (status, _) = s.get("/api/v1/cases?mine=true", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Ordinary API tokens do not expire with it.
    let (status, _) = s
        .get("/api/v1/cases?mine=true", Some(&s.token(AGENT)))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_form_posts_are_refused() {
    let s = TestServer::start(Backend::Sqlite).await;
    let before = s.service.store().audit_size().await.unwrap();
    let resp = no_redirects()
        .post(format!("{}/console/sign-in", s.base))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://attacker.example")
        .form(&[("token", s.token(AGENT))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get(SET_COOKIE).is_none());
    assert_eq!(
        s.service.store().audit_size().await.unwrap(),
        before,
        "no token was minted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sign_in_exists_only_when_enabled() {
    let s = TestServer::start(Backend::Sqlite).await;
    let client = no_redirects();
    let resp = client
        .post(format!("{}/console/sign-in/demo", s.base))
        .form(&[("name", AGENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The demo command's router: same service, one-click sign-in on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo = format!("http://{}", listener.local_addr().unwrap());
    let app: axum::Router = deskgate_server::console::router_with(s.service.clone(), true);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let page = client
        .get(format!("{demo}/console/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("DEMO: sign in as sam.rivera"), "{page}");
    let resp = client
        .post(format!("{demo}/console/sign-in/demo"))
        .form(&[("name", AGENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
}
