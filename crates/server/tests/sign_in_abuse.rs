//! Anonymous abuse of the console's sign-in routes (issue #11, findings 9 and 12): what an
//! unauthenticated client can do to other people's sign-in. Each test plays the attacker from its
//! own loopback address (127.0.0.2 and up) and a staff member from 127.0.0.1, against a real server
//! and, for single sign-on, the real npm oidc-provider of tests/fixtures/oidc.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use deskgate_app::sso::{CALLBACK_PATH, IdentityClaim};
use deskgate_store::Actor;
use deskgate_testkit::on_both_backends;
use deskgate_testkit::server::{Backend, TestServer};
use deskgate_testkit::web::{
    Browser, OidcProvider, client_from, free_port, oidc_config, server_with_provider,
    session_cookie,
};
use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

const AGENT: &str = "sam.rivera";
/// A staff member without console passkeys.
const NO_PASSKEYS: &str = "jordan.blake";
fn admin() -> Actor {
    Actor {
        id: "test-admin".to_owned(),
        role: "admin".to_owned(),
        auth: "test".to_owned(),
    }
}

/// Audit entries appended after index `from`.
async fn entries_since(s: &TestServer, from: u64) -> Vec<Value> {
    let store = &s.service.store();
    let size = store.audit_size().await.unwrap();
    store
        .audit_entries(from, size)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry().unwrap())
        .collect()
}

/// A server with `[oidc]` at a real provider; `adjust` may change the rest of the configuration.
async fn with_provider(
    backend: Backend,
    adjust: impl Fn(&mut deskgate_app::Config) + Clone + Send + 'static,
) -> (TestServer, OidcProvider) {
    server_with_provider(backend, IdentityClaim::Email, adjust).await
}

/// Limits so generous that the per-address limiter never answers: what is left to stop an
/// attacker is the design of the sign-in state itself.
fn no_rate_limit(c: &mut deskgate_app::Config) {
    c.sign_in.burst = 1_000_000;
    c.sign_in.per_minute = 1_000_000;
}

/// Finding 9: ten thousand anonymous starts of single sign-on once filled an in-memory table of
/// pending attempts, and every real sign-in was refused for ten minutes. The attempt now lives
/// sealed in the browser's own cookie, so there is no shared table to fill.
async fn finding_9_ten_thousand_anonymous_oidc_starts_do_not_lock_staff_out(backend: Backend) {
    let (s, _provider) = with_provider(backend, no_rate_limit).await;
    s.service
        .set_staff_sso_identity(AGENT, Some("sam@example.org"), &admin())
        .await
        .unwrap();
    let attacker = client_from("127.0.0.2");
    let start = format!("{}/console/sign-in/oidc", s.base);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for _ in 0..(10_000 / 50) {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..50 {
            batch.spawn(attacker.get(&start).send());
        }
        while let Some(resp) = batch.join_next().await {
            *statuses
                .entry(resp.unwrap().unwrap().status().as_u16())
                .or_default() += 1;
        }
    }
    assert_eq!(statuses.get(&303), Some(&10_000), "{statuses:?}");

    let mut staff = Browser::from_address("127.0.0.1");
    let done = staff.sign_in_through_provider(&s.base, "sam").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(session_cookie(&done).is_some(), "{:?}", done.set_cookies);
    s.finish().await;
}

/// Finding 9: each anonymous callback once added an audit entry, so anyone could grow the log
/// without limit. Past a few detailed entries per address, refusals are counted and one summary
/// entry per address and window carries the count.
async fn finding_9_anonymous_oidc_callbacks_do_not_add_one_audit_entry_each(backend: Backend) {
    // No provider is needed: these callbacks are refused before Deskgate would call it.
    let s = TestServer::start_with(backend, |c| {
        c.oidc = Some(oidc_config(free_port(), "unused", IdentityClaim::Email));
        no_rate_limit(c);
        c.sign_in.failure_window_seconds = 2;
    })
    .await;
    let from = s.service.store().audit_size().await.unwrap();
    let attacker = client_from("127.0.0.3");
    for i in 0..200 {
        let resp = attacker
            .get(format!("{}{CALLBACK_PATH}?state=forged-{i}&code=x", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let during = entries_since(&s, from).await;
    assert!(during.len() <= 3, "{} entries: {during:?}", during.len());

    // Once the window is over, one summary entry counts the rest.
    let mut summary = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        summary = entries_since(&s, from)
            .await
            .into_iter()
            .find(|e| e["event"] == "staff.sign_in_failures");
        if summary.is_some() {
            break;
        }
    }
    let summary = summary.expect("a summary of the refused sign-ins");
    let individual = entries_since(&s, from)
        .await
        .iter()
        .filter(|e| e["event"] == "staff.sign_in_failed")
        .count() as u64;
    assert_eq!(
        summary["details"]["count"].as_u64().unwrap() + individual,
        200,
        "{summary}"
    );
    assert_eq!(summary["details"]["address"], "127.0.0.3");
    assert_eq!(
        summary["details"]["reasons"]["no_attempt_cookie"],
        200 - individual
    );
    let all = entries_since(&s, from).await;
    assert!(all.len() <= 4, "{} entries: {all:?}", all.len());
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

/// A server whose public URL names `localhost` (WebAuthn refuses an IP address as RP id), with
/// one console passkey registered for [`AGENT`].
async fn passkey_server(
    backend: Backend,
    adjust: impl FnOnce(&mut deskgate_app::Config),
) -> (TestServer, SoftPasskey) {
    let s = TestServer::start_with(backend, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
        adjust(c);
    })
    .await;
    let mut device = SoftPasskey::new(true);
    let staff = s
        .service
        .store()
        .staff_by_name(AGENT)
        .await
        .unwrap()
        .unwrap();
    let started = s
        .service
        .staff_passkey_registration_options(&staff)
        .await
        .unwrap();
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = device
        .do_registration(Url::parse(&s.service.config().public_url).unwrap(), options)
        .unwrap();
    s.service
        .finish_staff_passkey_registration(
            &staff,
            started["ceremony"].as_str().unwrap(),
            &serde_json::to_value(&credential).unwrap(),
            "Key",
        )
        .await
        .unwrap();
    (s, device)
}

async fn passkey_options(
    s: &TestServer,
    client: &reqwest::Client,
    name: &str,
) -> (StatusCode, Value) {
    let resp = client
        .post(format!("{}/console/sign-in/passkey/options", s.base))
        .form(&[("name", name)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Finding 9: the challenge of a passkey sign-in was kept per staff member, so anyone who named
/// them replaced it and their real sign-in failed. Each start now has its own ceremony.
async fn finding_9_a_pending_passkey_challenge_cannot_be_replaced_by_another_client(
    backend: Backend,
) {
    let (s, mut device) = passkey_server(backend, |_| {}).await;
    let staff = client_from("127.0.0.1");
    let (status, started) = passkey_options(&s, &staff, AGENT).await;
    assert_eq!(status, StatusCode::OK, "{started}");

    // Someone else asks for Sam's challenge again and again while Sam touches the key.
    let attacker = client_from("127.0.0.4");
    for _ in 0..5 {
        let (status, _) = passkey_options(&s, &attacker, AGENT).await;
        assert_eq!(status, StatusCode::OK);
    }

    let request: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let assertion = device
        .do_authentication(Url::parse(&s.service.config().public_url).unwrap(), request)
        .unwrap();
    let resp = staff
        .post(format!("{}/console/sign-in/passkey", s.base))
        .form(&[
            ("name", AGENT),
            ("ceremony", started["ceremony"].as_str().unwrap()),
            ("credential", &serde_json::to_string(&assertion).unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/console");
    s.finish().await;
}

/// The JSON's structure without its values: what an observer compares across names.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

/// Finding 9: the start of a passkey sign-in answered a challenge only for staff members with
/// passkeys, so anyone could learn who has them (and who exists). Every name now gets an answer
/// of the same shape and size.
async fn finding_9_passkey_sign_in_start_does_not_reveal_who_has_passkeys(backend: Backend) {
    let (s, _device) = passkey_server(backend, |_| {}).await;
    let attacker = client_from("127.0.0.5");
    let (with_status, with) = passkey_options(&s, &attacker, AGENT).await;
    assert_eq!(with_status, StatusCode::OK, "{with}");
    for name in [NO_PASSKEYS, "nobody.here"] {
        let (status, without) = passkey_options(&s, &attacker, name).await;
        assert_eq!(status, with_status, "{name}: {without}");
        assert_eq!(shape(&without), shape(&with), "{name}: {without} vs {with}");
        assert_eq!(
            without["ceremony"].as_str().unwrap().len(),
            with["ceremony"].as_str().unwrap().len(),
            "{name}: the ceremony's size tells"
        );
        let allowed = without["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap();
        assert!(!allowed.is_empty(), "{name}: {without}");
        // The same name gets the same credential ids each time, as a real one would.
        let (_, again) = passkey_options(&s, &attacker, name).await;
        assert_eq!(
            again["options"]["publicKey"]["allowCredentials"],
            without["options"]["publicKey"]["allowCredentials"]
        );
    }
    s.finish().await;
}

/// Finding 9: passkey sign-in answers a signed-in console only for the right passkey; a made-up
/// assertion for a name is refused like any other failure, without an audit entry each.
async fn finding_9_anonymous_passkey_failures_are_audited_in_aggregate(backend: Backend) {
    let (s, _device) = passkey_server(backend, no_rate_limit).await;
    let from = s.service.store().audit_size().await.unwrap();
    let attacker = client_from("127.0.0.6");
    for name in [AGENT, NO_PASSKEYS, "nobody.here"] {
        for _ in 0..20 {
            let (status, started) = passkey_options(&s, &attacker, name).await;
            assert_eq!(status, StatusCode::OK);
            let resp = attacker
                .post(format!("{}/console/sign-in/passkey", s.base))
                .form(&[
                    ("name", name),
                    ("ceremony", started["ceremony"].as_str().unwrap()),
                    ("credential", "{}"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let added = entries_since(&s, from).await;
    assert!(added.len() <= 3, "{} entries: {added:?}", added.len());
    assert!(added.iter().all(|e| e["event"] != "staff.signed_in"));
    s.finish().await;
}

/// Finding 9: the public sign-in routes answer 429 with `Retry-After` to an address that sends
/// too many requests; another address is not affected.
async fn finding_9_sign_in_routes_answer_429_with_retry_after_per_address(backend: Backend) {
    let s = TestServer::start(backend).await;
    let attacker = client_from("127.0.0.7");
    let mut limited = None;
    for i in 0..200 {
        let resp = attacker
            .post(format!("{}/console/sign-in", s.base))
            .form(&[("token", format!("guess-{i}"))])
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, resp));
            break;
        }
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let (after, resp) = limited.expect("no 429 after 200 sign-in attempts from one address");
    assert!(after >= 5, "limited after only {after} attempts");
    let retry: u64 = resp.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "Retry-After: {retry}");
    // The other public sign-in routes share the address's allowance.
    let (status, _) = passkey_options(&s, &attacker, AGENT).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // A staff member elsewhere signs in as usual.
    let staff = client_from("127.0.0.1");
    let resp = staff
        .post(format!("{}/console/sign-in", s.base))
        .form(&[("token", s.token(AGENT))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    s.finish().await;
}

on_both_backends!(
    finding_9_ten_thousand_anonymous_oidc_starts_do_not_lock_staff_out,
    finding_9_anonymous_oidc_callbacks_do_not_add_one_audit_entry_each,
    finding_9_a_pending_passkey_challenge_cannot_be_replaced_by_another_client,
    finding_9_passkey_sign_in_start_does_not_reveal_who_has_passkeys,
    finding_9_anonymous_passkey_failures_are_audited_in_aggregate,
    finding_9_sign_in_routes_answer_429_with_retry_after_per_address,
);

/// Finding 12: one-click demo sign-in is not a configuration key: `deskgate serve` cannot turn it
/// on from its TOML file or a `DESKGATE_*` variable; only `deskgate demo` sets it, in code.
#[test]
fn finding_12_demo_sign_in_is_not_a_configuration_key() {
    let refused = serde_json::from_value::<deskgate_app::Config>(json!({ "demo_sign_in": true }));
    assert!(
        refused.is_err(),
        "demo_sign_in was accepted from configuration"
    );
    let known = serde_json::to_value(deskgate_app::Config::default()).unwrap();
    assert!(known.get("demo_sign_in").is_none(), "{known}");
}
