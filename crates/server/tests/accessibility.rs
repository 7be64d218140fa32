//! Keyboard-only use of the console in a real browser (Debian's chromium + chromium-driver): the
//! sign-in page, the new-case form and the agent's case page are walked with Tab, Enter and Space
//! only. On every page each control must be reachable by Tab, show a visible focus indicator (its
//! computed outline or box-shadow when focused differs from when it is not, and an outline
//! contrasts 3:1 with what is behind it) and have an accessible name (the browser's own computed
//! label: a label, aria-label or text).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::chromedriver as browser;
use deskgate_testkit::server as common;

use std::collections::BTreeSet;
use std::time::Duration;

use browser::Chromedriver;
use common::{Backend, TestServer};
use deskgate_app::sso::{IdentityClaim, OidcConfig};
use serde::Deserialize;
use thirtyfour::prelude::*;

const AGENT: &str = "sam.rivera";

/// Every visible control a keyboard user must reach, tagged with a stable key; radio buttons
/// count once per group (Tab enters a group, arrows move inside it).
const TAG_CONTROLS: &str = r#"
const keyOf = el => el.type === 'radio' ? 'radio:' + el.name
  : el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '')
    + (el.getAttribute('href') ? '[href=' + el.getAttribute('href') + ']' : '')
    + ' "' + (el.innerText || el.value || '').trim().slice(0, 40) + '"';
const keys = new Set();
document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')
  .forEach(el => {
    // Content of a closed <details> is not rendered, so not focusable until opened.
    const visible = el.checkVisibility({ visibilityProperty: true });
    if (visible && !el.disabled) keys.add(keyOf(el));
  });
return [...keys];
"#;

/// What Tab just did: the newly focused element, and the previously focused one's look when
/// focused and now that it is not.
const STEP: &str = r#"
const look = el => {
  const c = getComputedStyle(el);
  return [c.outlineStyle, c.outlineWidth, c.outlineColor, c.outlineOffset, c.boxShadow].join(' ');
};
const visible = el => {
  const c = getComputedStyle(el);
  return (c.outlineStyle !== 'none' && parseFloat(c.outlineWidth) > 0) || c.boxShadow !== 'none';
};
const keyOf = el => el.type === 'radio' ? 'radio:' + el.name
  : el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '')
    + (el.getAttribute('href') ? '[href=' + el.getAttribute('href') + ']' : '')
    + ' "' + (el.innerText || el.value || '').trim().slice(0, 40) + '"';
// WCAG 1.4.11: the focus outline needs a contrast of 3:1 with what is behind it.
const rgb = text => (text.match(/[\d.]+/g) || []).map(Number);
const luminance = ([r, g, b]) => {
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
};
// What the outline is drawn over: the first opaque background under points just left and right
// of the element (the outline sits outside it), whatever the DOM nesting.
const opaque = c => c.length >= 3 && (c.length < 4 || c[3] > 0);
const under = (el, x, y) => {
  const stack = document.elementsFromPoint(Math.max(0, x), Math.max(0, y))
    .filter(e => e !== el && !el.contains(e));
  for (const e of stack) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (opaque(c)) return c;
  }
  return [255, 255, 255];
};
const contrast = el => {
  const c = getComputedStyle(el);
  if (c.outlineStyle === 'none') return null;
  const r = el.getBoundingClientRect();
  const off = parseFloat(c.outlineOffset) + parseFloat(c.outlineWidth) / 2;
  const y = r.top + r.height / 2;
  const ring = luminance(rgb(c.outlineColor));
  return Math.min(...[under(el, r.left - off, y), under(el, r.right + off, y)].map(bg => {
    const b = luminance(bg);
    return (Math.max(ring, b) + 0.05) / (Math.min(ring, b) + 0.05);
  }));
};
const el = document.activeElement;
const out = { body: !el || el === document.body };
const prev = window.__dgPrev;
if (prev && prev !== el && prev.isConnected) {
  out.prev = window.__dgPrevDesc;
  out.prev_focused = window.__dgPrevLook;
  out.prev_unfocused = look(prev);
}
if (!out.body) {
  out.key = keyOf(el);
  out.desc = keyOf(el);
  out.closed_summary = el.tagName === 'SUMMARY' && !el.parentElement.open;
  out.indicator = visible(el);
  out.contrast = contrast(el);
  out.matches = arguments[0] ? el.matches(arguments[0]) : false;
  out.in_main = !!el.closest('main');
  window.__dgPrev = el;
  window.__dgPrevDesc = out.desc;
  window.__dgPrevLook = look(el);
}
return out;
"#;

#[derive(Debug, Deserialize)]
struct Step {
    body: bool,
    key: Option<String>,
    desc: Option<String>,
    indicator: Option<bool>,
    matches: Option<bool>,
    in_main: Option<bool>,
    closed_summary: Option<bool>,
    contrast: Option<f64>,
    prev: Option<String>,
    prev_focused: Option<String>,
    prev_unfocused: Option<String>,
}

async fn press(driver: &WebDriver, key: Key) {
    driver
        .action_chain()
        .send_keys(key)
        .perform()
        .await
        .unwrap();
}

async fn type_text(driver: &WebDriver, text: &str) {
    driver
        .action_chain()
        .send_keys(text)
        .perform()
        .await
        .unwrap();
}

/// Presses Tab once and checks the focus indicator of what lost and what gained focus.
async fn tab(driver: &WebDriver, target: Option<&str>) -> Step {
    press(driver, Key::Tab).await;
    let arg = serde_json::Value::from(target.unwrap_or_default());
    let step: Step = driver
        .execute(STEP, vec![arg])
        .await
        .unwrap()
        .convert()
        .unwrap();
    if let Some(desc) = &step.desc {
        assert_eq!(
            step.indicator,
            Some(true),
            "{desc} has no visible focus indicator"
        );
        if let Some(ratio) = step.contrast {
            assert!(
                ratio >= 3.0,
                "{desc}: the focus outline contrasts {ratio:.2}:1 with its background (needs 3:1)"
            );
        }
    }
    if let (Some(prev), Some(focused), Some(unfocused)) =
        (&step.prev, &step.prev_focused, &step.prev_unfocused)
    {
        assert_ne!(
            focused, unfocused,
            "{prev} looks the same focused and unfocused"
        );
    }
    step
}

/// Tabs until the focused element matches `css`; panics if it is never reached.
async fn tab_to(driver: &WebDriver, css: &str) {
    for _ in 0..80 {
        let step = tab(driver, Some(css)).await;
        if step.matches == Some(true) {
            return;
        }
    }
    panic!("{css} is never reached with Tab");
}

async fn controls(driver: &WebDriver) -> BTreeSet<String> {
    driver
        .execute(TAG_CONTROLS, Vec::new())
        .await
        .unwrap()
        .convert::<Vec<String>>()
        .unwrap()
        .into_iter()
        .collect()
}

/// Walks the whole page with Tab from the top, opening each closed disclosure with Enter on the
/// way: every control is reached, each shows a focus indicator, "Skip to content" comes first,
/// and every control has an accessible name.
async fn walk_page(driver: &WebDriver, page: &str) {
    // From the top of a freshly loaded document (a page that focuses the field to type in
    // gives the focus back first: the walk starts at the top).
    driver.refresh().await.unwrap();
    driver
        .execute(
            "const top = document.documentElement; top.tabIndex = -1; top.focus(); \
             top.removeAttribute('tabindex');",
            Vec::new(),
        )
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for _ in 0..200 {
        let step = tab(driver, None).await;
        if step.body {
            if seen.is_empty() {
                continue;
            }
            break;
        }
        let key = step.key.clone().unwrap_or_default();
        if !seen.insert(key) {
            break; // wrapped around
        }
        order.push(step.desc.clone().unwrap_or_default());
        if step.closed_summary == Some(true) {
            press(driver, Key::Enter).await;
        }
    }
    // Counted after the walk, with every disclosure open.
    let wanted = controls(driver).await;
    assert!(
        order.first().is_some_and(|d| d.contains("Skip to content")),
        "{page}: the first Tab stop is not the skip link: {order:?}"
    );
    let missed: Vec<&String> = wanted.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "{page}: controls never reached with Tab: {missed:?} (reached {order:?})"
    );
    assert_names(driver, page).await;
}

/// Every control has an accessible name as the browser computes it (WebDriver "Get Computed
/// Label"): a label, aria-label or its text.
async fn assert_names(driver: &WebDriver, page: &str) {
    let driver_url = driver
        .server_url()
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let session = driver.session_id().to_string();
    let client = reqwest::Client::new();
    let controls = driver
        .find_all(By::Css(
            "input:not([type=hidden]), select, textarea, button, a[href], summary",
        ))
        .await
        .unwrap();
    assert!(!controls.is_empty());
    for element in controls {
        if !element.is_displayed().await.unwrap() {
            continue;
        }
        let url = format!(
            "{driver_url}/session/{session}/element/{}/computedlabel",
            element.element_id()
        );
        let label: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
        let name = label["value"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let html = element.outer_html().await.unwrap();
        assert!(!name.is_empty(), "{page}: no accessible name: {html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_opens_and_works_a_case_with_the_keyboard_only() {
    // With single sign-on configured, so its button is walked too (the provider is never asked).
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.oidc = Some(OidcConfig {
            issuer: "https://idp.example.org".to_owned(),
            client_id: "deskgate".to_owned(),
            client_secret: "unused".to_owned(),
            claim: IdentityClaim::Email,
            scopes: None,
            provider_name: "Example IdP".to_owned(),
        });
    })
    .await;
    let chromedriver = Chromedriver::start().await;
    let base = s.base.replace("127.0.0.1", "localhost");
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.browser(&profile).await;

    // Sign in: the token field, Enter submits.
    driver
        .goto(format!("{base}/console/sign-in"))
        .await
        .unwrap();
    assert!(
        driver
            .find(By::Css("a[href='/console/sign-in/oidc']"))
            .await
            .is_ok()
    );
    walk_page(&driver, "sign-in").await;
    tab_to(&driver, "#token").await;
    type_text(&driver, &s.token(AGENT)).await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "header .who", "Sign out").await;

    // The skip link leads past the navigation into the page's content.
    tab_to(&driver, "a.skip").await;
    press(&driver, Key::Enter).await;
    let step = tab(&driver, None).await;
    assert_eq!(step.in_main, Some(true), "{step:?}");

    // To the new-case form through the navigation.
    driver.refresh().await.unwrap();
    tab_to(&driver, "nav a[href='/console/cases/new']").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "h1", "Open a recovery case").await;
    walk_page(&driver, "new case").await;

    // Search, pick the subject, choose the action by typing, submit with Enter.
    driver.refresh().await.unwrap();
    tab_to(&driver, "#q").await;
    type_text(&driver, "alice").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "label[for='subject-u-alice']", "Alice Jensen").await;
    walk_page(&driver, "new case with search results").await;
    tab_to(&driver, "input[name='subject']").await;
    press(&driver, Key::Space).await;
    tab_to(&driver, "#action").await;
    type_text(&driver, "mfa").await;
    tab_to(&driver, "#caller_number").await;
    type_text(&driver, "+1 555 010 0142").await;
    tab_to(&driver, "#ticket").await;
    type_text(&driver, "INC-7").await;
    tab_to(
        &driver,
        "form[action='/console/cases'] button[type='submit']",
    )
    .await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#case-state", "open").await;
    let action: String = driver
        .execute("return document.querySelector('h1').innerText", Vec::new())
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(action.contains("MFA reset for Alice Jensen"), "{action}");

    // The case page: every control reachable, named and visibly focused.
    walk_page(&driver, "case").await;

    // Start a code to the phone with Space, enter it, Enter checks it.
    driver.refresh().await.unwrap();
    tab_to(&driver, "#start-sms_code").await;
    press(&driver, Key::Space).await;
    wait_for(&driver, ".notice", "Verification started").await;
    // The page follows the agent: the field to type the code in has the focus.
    let focused: String = driver
        .execute("return document.activeElement.name || ''", Vec::new())
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert_eq!(focused, "code");
    wait_for(&driver, "#what-now", "Please read me the code").await;
    let code = s.last_message("verification_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    walk_page(&driver, "case with a code to enter").await;
    tab_to(&driver, "form.code input[name='code']").await;
    type_text(&driver, &code).await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, ".notice", "Code accepted").await;

    // Deny the case: open the disclosure with Enter, choose with Space, confirm with Enter.
    tab_to(&driver, "details.end summary").await;
    press(&driver, Key::Enter).await;
    tab_to(&driver, "#outcome-deny").await;
    press(&driver, Key::Space).await;
    tab_to(&driver, "#end-reason").await;
    type_text(&driver, "caller could not confirm the ticket").await;
    tab_to(&driver, "details.end button[type='submit']").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#case-state", "denied").await;
    driver.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_uses_their_own_page_with_the_keyboard_only() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
    })
    .await;
    let base = s.service.config().public_url.clone();
    let pass = deskgate_app::secrets::random_token();
    let now = s.service.now();
    s.service
        .store()
        .commit(deskgate_store::Change {
            credentials: vec![deskgate_store::Credential {
                subject_id: "u-alice".to_owned(),
                kind: "temporary_access_pass".to_owned(),
                hash: deskgate_app::secrets::token_hash(&pass),
                created_at: now,
                expires_at: Some(now + chrono::Duration::hours(1)),
                used_at: None,
            }],
            ..deskgate_store::Change::default()
        })
        .await
        .unwrap();
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.browser(&profile).await;
    browser::add_virtual_authenticator(&driver).await;

    // The pass page, by keyboard: both fields, Enter creates the passkey.
    driver.goto(format!("{base}/tap")).await.unwrap();
    walk_page(&driver, "pass enrolment").await;
    tab_to(&driver, "#subject").await;
    type_text(&driver, "u-alice").await;
    tab_to(&driver, "#pass").await;
    type_text(&driver, &pass).await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#passkey-status", "passkey is enrolled").await;

    // The own page: sign in by name and Enter, then every control of the account.
    driver.goto(format!("{base}/me")).await.unwrap();
    walk_page(&driver, "own page sign-in").await;
    tab_to(&driver, "#me-name").await;
    type_text(&driver, "u-alice").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "header .who", "Sign out").await;
    walk_page(&driver, "own page").await;
    tab_to(&driver, "#new-codes").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "h1", "Your new recovery codes").await;
    tab_to(&driver, "#download-codes").await;
    tab_to(&driver, "a[href='/me']").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#recovery-codes", "10 unused").await;
    driver.quit().await.unwrap();
    s.finish().await;
}

/// The newest code sent to `to`.
fn code_to(s: &TestServer, to: &str) -> String {
    s.outbox()
        .iter()
        .rev()
        .find(|m| m["kind"] == "verification_code" && m["to"] == to)
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Self-service, keyboard only: Dave resets his password with an email code and an SMS code;
/// Priya, an administrator, is pointed to the help desk and learns nothing about her account.
/// Prints the friction figures the README states: form submissions and the time it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_recovers_on_their_own_with_the_keyboard_only() {
    let s = TestServer::start(Backend::Sqlite).await;
    let base = s.base.replace("127.0.0.1", "localhost");
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    let email = dave
        .contact(deskgate_core::ContactKind::Email)
        .unwrap()
        .value
        .clone();
    let phone = dave
        .contact(deskgate_core::ContactKind::Phone)
        .unwrap()
        .value
        .clone();
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.browser(&profile).await;
    let began = std::time::Instant::now();
    let mut submits = 0;

    driver.goto(format!("{base}/recover")).await.unwrap();
    walk_page(&driver, "recover").await;
    browser::shoot(&driver, "recover-start").await;
    tab_to(&driver, "#recover-name").await;
    type_text(&driver, "u-dave").await;
    tab_to(&driver, "#action-password_reset").await;
    press(&driver, Key::Space).await;
    tab_to(&driver, "#recover-start-button").await;
    press(&driver, Key::Enter).await;
    submits += 1;
    wait_for(&driver, "h1", "confirm it is you").await;
    walk_page(&driver, "recover steps").await;

    for (method, to) in [("email_code", &email), ("sms_code", &phone)] {
        tab_to(&driver, &format!("#send-{method}")).await;
        press(&driver, Key::Enter).await;
        submits += 1;
        wait_for(&driver, "#notice", "a code is on its way").await;
        if method == "email_code" {
            browser::shoot(&driver, "recover-steps").await;
        }
        tab_to(&driver, &format!("#code-{method}")).await;
        type_text(&driver, &code_to(&s, to)).await;
        press(&driver, Key::Enter).await;
        submits += 1;
        if method == "email_code" {
            wait_for(&driver, "#notice", "That matched").await;
        }
    }
    wait_for(&driver, "h1", "Done").await;
    browser::shoot(&driver, "recover-done").await;
    let took = began.elapsed();
    eprintln!(
        "self-service password reset: {submits} form submissions, {} page loads, {:.1} s in the \
         browser (plus reading two codes)",
        submits + 1,
        took.as_secs_f64()
    );
    assert_eq!(submits, 5);

    // Alice lost her devices: an MFA reset with a saved recovery code and an SMS code.
    let saved = s.recovery_codes("alice.jensen@example.org");
    let began = std::time::Instant::now();
    driver.goto(format!("{base}/recover")).await.unwrap();
    tab_to(&driver, "#recover-name").await;
    type_text(&driver, "u-alice").await;
    // Tab enters the radio group at its first choice; an arrow moves to (and picks) the next.
    tab_to(&driver, "#action-password_reset").await;
    press(&driver, Key::Down).await;
    tab_to(&driver, "#recover-start-button").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "h1", "confirm it is you").await;
    tab_to(&driver, "#code-recovery_code").await;
    type_text(&driver, &saved[0]).await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#notice", "That matched").await;
    tab_to(&driver, "#send-sms_code").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#notice", "a code is on its way").await;
    tab_to(&driver, "#code-sms_code").await;
    type_text(&driver, &code_to(&s, "+1 555 010 0142")).await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "h1", "Done").await;
    eprintln!(
        "self-service MFA reset: 4 form submissions, {:.1} s in the browser",
        began.elapsed().as_secs_f64()
    );
    let alice = s.service.store().subject("u-alice").await.unwrap().unwrap();
    assert!(
        alice.authenticators.is_empty(),
        "{:?}",
        alice.authenticators
    );

    // An administrator's attempt looks like anyone's and ends at the help desk.
    driver.goto(format!("{base}/recover")).await.unwrap();
    tab_to(&driver, "#recover-name").await;
    type_text(&driver, "u-priya").await;
    tab_to(&driver, "#action-password_reset").await;
    press(&driver, Key::Space).await;
    tab_to(&driver, "#recover-start-button").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "h1", "confirm it is you").await;
    tab_to(&driver, "#code-recovery_code").await;
    type_text(&driver, "AAAA-BBBB-CCCC-DDDD").await;
    press(&driver, Key::Enter).await;
    wait_for(&driver, "#notice", "did not match").await;
    wait_for(&driver, "main", "call the help desk").await;
    browser::shoot(&driver, "recover-refused").await;
    driver.quit().await.unwrap();
    s.finish().await;
}

async fn wait_for(driver: &WebDriver, css: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(element) = driver.find(By::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if text.to_lowercase().contains(&want.to_lowercase()) {
                return;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = driver.source().await.unwrap_or_default();
    panic!("{css} never showed {want:?}; last {last:?}; page:\n{page}");
}
