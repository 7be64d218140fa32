//! Passkeys end to end over HTTP against a real server, with webauthn-authenticator-rs's software
//! passkey (`softpasskey`) playing the subject's authenticator: enrolment with a temporary access
//! pass, the passkey verification link, and what is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use chrono::Duration;
use common::{Backend, TestServer};
use deskgate_store::{Change, Credential};
use reqwest::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const AGENT: &str = "sam.rivera";

/// A server whose public URL names `localhost`: WebAuthn refuses an IP address as RP id.
async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
    })
    .await
}

fn origin(s: &TestServer) -> Url {
    Url::parse(&s.service.config().public_url).unwrap()
}

/// The path of an absolute link Deskgate sent, to call on the test server's address.
fn path_of(link: &str) -> String {
    let after_scheme = link.split_once("://").unwrap().1;
    format!("/{}", after_scheme.split_once('/').unwrap().1)
}

/// Issues a temporary access pass for `subject` as an MFA reset would (only its hash is stored).
async fn issue_pass(s: &TestServer, subject: &str) -> String {
    deskgate_testkit::passkeys::issue_pass(s, subject).await
}

/// Redeems a pass and registers `authenticator`'s new passkey with it.
async fn enrol(s: &TestServer, subject: &str, authenticator: &mut SoftPasskey) -> Value {
    let pass = issue_pass(s, subject).await;
    let done = deskgate_testkit::passkeys::enrol_with_pass(s, subject, &pass, authenticator).await;
    // A passkey bound minutes ago is no device of record (issue #11, finding 10): these tests
    // use it as the one the subject has had for weeks.
    s.clock.advance(Duration::days(15));
    done
}

/// Starts the passkey method on a case and answers the link's path.
async fn start_passkey(s: &TestServer, case_id: &str) -> String {
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{case_id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "passkey" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    path_of(s.last_message("passkey_link")["link"].as_str().unwrap())
}

/// The link's token; after the link's first GET it travels in the `X-Link-Token` header.
fn token_of(link: &str) -> &str {
    link.rsplit_once('/').unwrap().1
}

async fn options(s: &TestServer, link: &str) -> (StatusCode, Value) {
    s.send(
        s.client
            .get(format!("{}/passkey/options", s.base))
            .header("x-link-token", token_of(link)),
    )
    .await
}

async fn post_answer(s: &TestServer, link: &str, body: Value) -> (StatusCode, Value) {
    s.send(
        s.client
            .post(format!("{}/passkey/answer", s.base))
            .header("x-link-token", token_of(link))
            .json(&body),
    )
    .await
}

/// Signs the link's challenge with `authenticator` and posts the assertion.
async fn answer(
    s: &TestServer,
    link: &str,
    authenticator: &mut SoftPasskey,
) -> (StatusCode, Value) {
    let (status, challenge) = options(s, link).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    let challenge: RequestChallengeResponse = serde_json::from_value(challenge).unwrap();
    let assertion = authenticator
        .do_authentication(origin(s), challenge)
        .unwrap();
    post_answer(s, link, json!({ "credential": assertion })).await
}

async fn case_of(s: &TestServer, id: &str) -> Value {
    let (status, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(status, StatusCode::OK, "{case}");
    case
}

fn passkey_verification(case: &Value) -> Value {
    case["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|v| v["method"] == "passkey")
        .cloned()
        .unwrap()
}

async fn enrolled_passkey_verifies_the_subject_as_device_of_record(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    let done = enrol(&s, "u-alice", &mut device).await;
    assert_eq!(done["enrolled"], "passkey");
    let subject = s.service.store().subject("u-alice").await.unwrap().unwrap();
    assert!(
        subject
            .authenticators
            .iter()
            .any(|a| a.id == done["authenticator_id"].as_str().unwrap()),
        "the passkey is the subject's authenticator of record"
    );

    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    assert!(
        case["playbook"].to_string().contains("\"passkey\""),
        "the playbook offers the passkey: {}",
        case["playbook"]
    );
    let link = start_passkey(&s, id).await;
    let sent = s.last_message("passkey_link");
    assert_eq!(
        sent["to"], "alice.jensen@example.org",
        "the trusted email of record"
    );

    // The link's first GET moves its token into a cookie and the browser to a token-free page.
    let first = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{link}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["location"], "/passkey/verify");
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/passkey"),
        "{cookie}"
    );
    // The page runs under the console's strict CSP and loads the vendored script only.
    let page = s
        .client
        .get(format!("{}/passkey/verify", s.base))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("/passkey/static/passkey.js"), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    let (status, body) = answer(&s, &link, &mut device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["passed"], true);
    let case = case_of(&s, id).await;
    let v = passkey_verification(&case);
    assert_eq!(v["state"], "passed", "{v}");
    assert_eq!(v["class"], "device_of_record");
    assert_eq!(v["counts"], true);
    assert!(
        case["progress"]["counted_classes"]
            .as_array()
            .unwrap()
            .contains(&json!("device_of_record")),
        "{}",
        case["progress"]
    );

    // The link worked once: replaying it, or asking it for a new challenge, is refused.
    let (status, body) = post_answer(&s, &link, json!({ "credential": {} })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "link_used");
    let (status, _) = options(&s, &link).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let events = s.events_since(0).await;
    for e in ["verification.started", "verification.passed"] {
        assert!(events.contains(&e.to_owned()), "{e} in {events:?}");
    }
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn another_subjects_passkey_fails_the_verification(backend: Backend) {
    let s = server(backend).await;
    let mut alice_device = SoftPasskey::new(true);
    let mut dave_device = SoftPasskey::new(true);
    enrol(&s, "u-alice", &mut alice_device).await;
    enrol(&s, "u-dave", &mut dave_device).await;

    let alice_case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let alice_link = start_passkey(&s, alice_case["id"].as_str().unwrap()).await;
    let dave_case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let dave_link = start_passkey(&s, dave_case["id"].as_str().unwrap()).await;

    // Dave's passkey signs Alice's challenge (his credential put in its allow list).
    let (_, dave_options) = options(&s, &dave_link).await;
    let (_, mut alice_options) = options(&s, &alice_link).await;
    alice_options["publicKey"]["allowCredentials"] =
        dave_options["publicKey"]["allowCredentials"].clone();
    let challenge: RequestChallengeResponse = serde_json::from_value(alice_options).unwrap();
    let assertion = dave_device
        .do_authentication(origin(&s), challenge)
        .unwrap();
    let before = s.service.store().audit_size().await.unwrap();
    let (status, body) = post_answer(&s, &alice_link, json!({ "credential": assertion })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "passkey_refused");
    let case = case_of(&s, alice_case["id"].as_str().unwrap()).await;
    let v = passkey_verification(&case);
    assert_eq!(v["state"], "rejected", "{v}");
    assert_eq!(v["counts"], false);
    assert!(
        !case["progress"]["counted_classes"]
            .as_array()
            .unwrap()
            .contains(&json!("device_of_record"))
    );
    assert_eq!(s.events_since(before).await, vec!["verification.failed"]);
    let size = s.service.store().audit_size().await.unwrap();
    let failed = s.service.store().audit_entries(before, size).await.unwrap()[0]
        .entry()
        .unwrap();
    assert_eq!(
        failed["details"]["reason"], "the assertion did not verify",
        "{failed}"
    );
    // The failed link is spent too: Alice's own passkey cannot use it afterwards.
    let (status, _) = options(&s, &alice_link).await;
    assert_eq!(status, StatusCode::CONFLICT);
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn expired_link_is_refused(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, "u-alice", &mut device).await;
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let link = start_passkey(&s, case["id"].as_str().unwrap()).await;
    let (status, challenge) = options(&s, &link).await;
    assert_eq!(status, StatusCode::OK);
    let challenge: RequestChallengeResponse = serde_json::from_value(challenge).unwrap();
    let assertion = device.do_authentication(origin(&s), challenge).unwrap();
    s.clock.advance(Duration::minutes(31));
    let (status, body) = post_answer(&s, &link, json!({ "credential": assertion })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "link_expired");
    let (status, _) = s.get(&link, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let v = passkey_verification(&case_of(&s, case["id"].as_str().unwrap()).await);
    assert_ne!(v["state"], "passed");
    s.finish().await;
}

async fn passkey_method_is_refused_without_an_enrolled_passkey(backend: Backend) {
    let s = server(backend).await;
    // Alice's demo record lists a passkey authenticator, but no passkey was ever registered.
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    assert!(!case["playbook"].to_string().contains("\"passkey\""));
    let before = s.snapshot(Some(id), "u-alice").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "passkey" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "no_passkey");
    assert_eq!(
        s.snapshot(Some(id), "u-alice").await,
        before,
        "nothing changed"
    );
    s.finish().await;
}

async fn pass_enrols_one_passkey_once(backend: Backend) {
    let s = server(backend).await;
    let pass = issue_pass(&s, "u-dave").await;
    // The pass is Dave's alone.
    let (status, _) = s
        .post(
            "/api/v1/tap/redeem",
            None,
            json!({ "subject": "u-alice", "pass": pass }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, started) = s
        .post(
            "/api/v1/tap/redeem",
            None,
            json!({ "subject": "u-dave", "pass": pass }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut device = SoftPasskey::new(true);
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = device.do_registration(origin(&s), options).unwrap();
    // A wrong ceremony token registers nothing.
    let (status, _) = s
        .post(
            "/api/v1/tap/passkey",
            None,
            json!({ "subject": "u-dave", "ceremony": "not-the-token", "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let finish =
        json!({ "subject": "u-dave", "ceremony": started["ceremony"], "credential": credential });
    let (status, done) = s.post("/api/v1/tap/passkey", None, finish.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        done["recovery_codes"],
        json!([]),
        "Dave's saved codes are kept: new ones would depend on the pass's contact"
    );
    // Used once: neither the pass nor the ceremony works again.
    let (status, _) = s.post("/api/v1/tap/passkey", None, finish).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .post(
            "/api/v1/tap/redeem",
            None,
            json!({ "subject": "u-dave", "pass": pass }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        s.outbox()
            .iter()
            .any(|m| m["kind"] == "authenticator_notice" && m["subject_id"] == "u-dave"),
        "every contact of record is told"
    );
    let events = s.events_since(0).await;
    assert!(events.contains(&"temporary_access_pass.redeemed".to_owned()));
    // The new passkey is not a device of record while it is fresh...
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let (status, body) = s
        .post(
            &format!(
                "/api/v1/cases/{}/verifications",
                case["id"].as_str().unwrap()
            ),
            Some(&s.token(AGENT)),
            json!({ "method": "passkey" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "authenticator_too_new");
    // ...and works for a verification once it has settled.
    s.clock.advance(Duration::days(15));
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let link = start_passkey(&s, case["id"].as_str().unwrap()).await;
    let (status, body) = answer(&s, &link, &mut device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn passkey_whose_counter_goes_backwards_is_refused_as_a_possible_clone(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, "u-alice", &mut device).await;
    // The server has seen a higher counter than this authenticator will send.
    let mut stored = s
        .service
        .stored_passkeys("u-alice", deskgate_app::passkeys::SUBJECT_PASSKEYS)
        .await
        .unwrap();
    stored[0].sign_count = 1000;
    let now = s.service.now();
    s.service
        .store()
        .commit(Change {
            credentials: vec![Credential {
                subject_id: "u-alice".to_owned(),
                kind: deskgate_app::passkeys::SUBJECT_PASSKEYS.to_owned(),
                hash: serde_json::to_string(&stored).unwrap(),
                created_at: now,
                expires_at: None,
                used_at: None,
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let link = start_passkey(&s, case["id"].as_str().unwrap()).await;
    let (status, body) = answer(&s, &link, &mut device).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("counter"),
        "{body}"
    );
    let v = passkey_verification(&case_of(&s, case["id"].as_str().unwrap()).await);
    assert_eq!(v["state"], "rejected");
    s.finish().await;
}

async fn passkeys_need_a_domain_name_in_public_url(backend: Backend) {
    // The default test server's public URL is http://127.0.0.1:PORT.
    let s = TestServer::start(backend).await;
    let pass = issue_pass(&s, "u-dave").await;
    let (status, body) = s
        .post(
            "/api/v1/tap/redeem",
            None,
            json!({ "subject": "u-dave", "pass": pass }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "passkeys_unavailable");
    // Nothing was spent: the pass still enrols an authenticator app.
    let (status, body) = s
        .post(
            "/api/v1/tap/redeem",
            None,
            json!({ "subject": "u-dave", "pass": pass, "authenticator": "totp" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.finish().await;
}

/// A client that keeps redirects visible, for console sign-in.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie_of(resp: &reqwest::Response) -> String {
    resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Signs in with a passkey as `name`; answers the response of the final form post.
async fn passkey_sign_in(
    s: &TestServer,
    name: &str,
    device: &mut SoftPasskey,
) -> Result<reqwest::Response, (StatusCode, String)> {
    let client = plain_client();
    let resp = client
        .post(format!("{}/console/sign-in/passkey/options", s.base))
        .form(&[("name", name)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    if status != StatusCode::OK {
        return Err((status, body.to_string()));
    }
    let challenge: RequestChallengeResponse =
        serde_json::from_value(body["options"].clone()).unwrap();
    let assertion = device
        .do_authentication(origin(s), challenge)
        .map_err(|e| (StatusCode::IM_A_TEAPOT, format!("{e:?}")))?;
    let resp = client
        .post(format!("{}/console/sign-in/passkey", s.base))
        .form(&[
            ("name", name),
            ("ceremony", body["ceremony"].as_str().unwrap()),
            ("credential", &assertion_json(&assertion)),
        ])
        .send()
        .await
        .unwrap();
    Ok(resp)
}

fn assertion_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

async fn staff_registers_a_passkey_then_signs_in_with_it(backend: Backend) {
    let s = server(backend).await;
    let client = plain_client();
    let resp = client
        .post(format!("{}/console/sign-in", s.base))
        .form(&[("token", s.token(AGENT))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_of(&resp);

    // The account page offers to add one; there is none yet.
    let page = client
        .get(format!("{}/console/account", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("no console passkeys"), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    let resp = client
        .post(format!("{}/console/account/passkeys/options", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let started: Value = resp.json().await.unwrap();
    let mut device = SoftPasskey::new(true);
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = device.do_registration(origin(&s), options).unwrap();
    let resp = client
        .post(format!("{}/console/account/passkeys", s.base))
        .header("cookie", &cookie)
        .form(&[
            ("ceremony", started["ceremony"].as_str().unwrap()),
            ("credential", &assertion_json(&credential)),
            ("label", "Work laptop"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Passkey added") && html.contains("Work laptop"),
        "{html}"
    );

    // A fresh browser signs in with the passkey alone and reaches the console.
    let resp = passkey_sign_in(&s, AGENT, &mut device).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/console");
    let session = cookie_of(&resp);
    assert!(session.starts_with("deskgate_console="));
    let queue = client
        .get(format!("{}/console", s.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), StatusCode::OK);
    assert!(queue.text().await.unwrap().contains(AGENT));

    // The passkey is Sam's alone: another name, or an unknown one, gets a challenge that Sam's
    // passkey cannot answer (it allows none of Sam's credentials), and Sam's answer to Sam's own
    // challenge, sent under another name, is refused the same way for both.
    let client = plain_client();
    let start = |name: &'static str| {
        let client = client.clone();
        let base = s.base.clone();
        async move {
            let resp = client
                .post(format!("{base}/console/sign-in/passkey/options"))
                .form(&[("name", name)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()
        }
    };
    let mine = start(AGENT).await;
    let request: RequestChallengeResponse =
        serde_json::from_value(mine["options"].clone()).unwrap();
    let assertion = device.do_authentication(origin(&s), request).unwrap();
    let mut refusals = Vec::new();
    for name in ["jordan.blake", "nobody.here"] {
        let theirs = start(name).await;
        let request: RequestChallengeResponse =
            serde_json::from_value(theirs["options"].clone()).unwrap();
        assert!(
            device.do_authentication(origin(&s), request).is_err(),
            "{name}"
        );
        let resp = client
            .post(format!("{}/console/sign-in/passkey", s.base))
            .form(&[
                ("name", name),
                ("ceremony", theirs["ceremony"].as_str().unwrap()),
                ("credential", &assertion_json(&assertion)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(resp.headers().get("set-cookie").is_none());
        refusals.push(resp.text().await.unwrap());
    }
    assert_eq!(refusals[0], refusals[1]);
    let events = s.events_since(0).await;
    assert!(events.contains(&"staff.passkey_registered".to_owned()));
    assert!(events.contains(&"staff.signed_in".to_owned()));
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn staff_sign_in_challenge_works_once(backend: Backend) {
    let s = server(backend).await;
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
    let credential = device.do_registration(origin(&s), options).unwrap();
    s.service
        .finish_staff_passkey_registration(
            &staff,
            started["ceremony"].as_str().unwrap(),
            &serde_json::to_value(&credential).unwrap(),
            "Key",
        )
        .await
        .unwrap();
    let challenge = s
        .service
        .staff_passkey_sign_in_options(AGENT)
        .await
        .unwrap();
    let request: RequestChallengeResponse =
        serde_json::from_value(challenge["options"].clone()).unwrap();
    let assertion =
        serde_json::to_value(device.do_authentication(origin(&s), request).unwrap()).unwrap();
    let ceremony = challenge["ceremony"].as_str().unwrap();
    let signed_in = s
        .service
        .finish_staff_passkey_sign_in(AGENT, ceremony, &assertion)
        .await
        .unwrap();
    assert_eq!(signed_in.name, AGENT);
    let replay = s
        .service
        .finish_staff_passkey_sign_in(AGENT, ceremony, &assertion)
        .await
        .unwrap_err();
    assert_eq!(
        deskgate_server::error::status(&replay).as_u16(),
        StatusCode::UNAUTHORIZED.as_u16()
    );
    s.finish().await;
}

/// A passkey and the authenticator app are both the enrolled device: together they are one class,
/// not the two an MFA reset needs.
async fn a_passkey_and_the_app_count_once_as_the_device_of_record(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, "u-alice", &mut device).await;
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    assert_eq!(case["requirements"]["min_classes"], 2);
    let link = start_passkey(&s, id).await;
    let (status, body) = answer(&s, &link, &mut device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-alice").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &tid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "verifying", "one class, counted once");
    let case = case_of(&s, id).await;
    assert_eq!(
        case["progress"]["counted_classes"],
        json!(["device_of_record"]),
        "{}",
        case["progress"]
    );
    s.finish().await;
}

/// The link goes only to an email of record that is not freshly changed: an attacker who has
/// just redirected the mailbox gets nothing.
async fn a_freshly_changed_email_cannot_carry_the_passkey_link(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, "u-alice", &mut device).await;
    let mut alice = s.service.store().subject("u-alice").await.unwrap().unwrap();
    let now = s.service.now();
    for c in alice
        .contacts
        .iter_mut()
        .filter(|c| c.kind == deskgate_core::ContactKind::Email)
    {
        c.value = "alice.new@example.net".into();
        c.changed_at = now - Duration::days(2);
    }
    s.service
        .store()
        .commit(Change {
            subjects: vec![alice],
            ..Change::default()
        })
        .await
        .unwrap();
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let before = s.snapshot(Some(id), "u-alice").await;
    let sent = s.outbox().len();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "passkey" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "contact_not_trusted");
    assert_eq!(s.outbox().len(), sent, "nothing sent");
    assert_eq!(s.snapshot(Some(id), "u-alice").await, before);
    s.finish().await;
}

/// When the mail relay is down the link is not recorded: the case is unchanged and the agent can
/// try again.
async fn a_passkey_link_that_cannot_be_delivered_changes_nothing(backend: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = TestServer::start_with(backend, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
        c.delivery = deskgate_app::delivery::Config {
            outbox_file: false,
            smtp: Some(deskgate_app::delivery::SmtpConfig {
                host: "127.0.0.1".to_owned(),
                port: Some(port),
                tls: deskgate_app::delivery::SmtpTls::None,
                username: None,
                password: None,
                from: "deskgate@example.org".to_owned(),
                timeout_secs: 5,
            }),
            twilio: None,
        };
    })
    .await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, "u-alice", &mut device).await;
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let before = s.snapshot(Some(id), "u-alice").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "passkey" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "delivery_failed");
    assert_eq!(s.snapshot(Some(id), "u-alice").await, before);
    s.finish().await;
}

/// After a pass enrols a passkey, someone without an unused recovery code is shown ten new ones,
/// once, in the answer: never sent, and depending on the contacts the pass may have gone to,
/// not on anything held offline.
async fn a_pass_enrolment_shows_new_recovery_codes_once_to_someone_without_any(backend: Backend) {
    let s = server(backend).await;
    let now = s.service.now();
    s.service
        .store()
        .commit(Change {
            recovery_codes: vec![deskgate_store::RecoveryCodes {
                subject_id: "u-dave".to_owned(),
                hashes: Vec::new(),
                issued_at: now,
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    let mut device = SoftPasskey::new(true);
    let done = enrol(&s, "u-dave", &mut device).await;
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{done}");
    let outbox = serde_json::to_string(&s.outbox()).unwrap();
    assert!(
        codes.iter().all(|c| !outbox.contains(c.as_str())),
        "recovery codes are never sent"
    );
    let events = s.events_since(0).await;
    assert!(events.contains(&"recovery_codes.issued".to_owned()));

    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (rid, _) = s.start_method(AGENT, id, "recovery_code").await;
    let (status, body) = s.answer(AGENT, id, &rid, &codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let verification = body["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == rid.as_str())
        .unwrap();
    let units: Vec<&str> = verification["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(units.iter().any(|u| u.starts_with("mailbox:")), "{units:?}");
    assert!(units.iter().all(|u| !u.starts_with("held:")), "{units:?}");
}

on_both_backends!(
    a_pass_enrolment_shows_new_recovery_codes_once_to_someone_without_any,
    a_passkey_and_the_app_count_once_as_the_device_of_record,
    a_freshly_changed_email_cannot_carry_the_passkey_link,
    a_passkey_link_that_cannot_be_delivered_changes_nothing,
    enrolled_passkey_verifies_the_subject_as_device_of_record,
    another_subjects_passkey_fails_the_verification,
    expired_link_is_refused,
    passkey_method_is_refused_without_an_enrolled_passkey,
    pass_enrols_one_passkey_once,
    staff_registers_a_passkey_then_signs_in_with_it,
    staff_sign_in_challenge_works_once,
    passkey_whose_counter_goes_backwards_is_refused_as_a_possible_clone,
    passkeys_need_a_domain_name_in_public_url,
);
