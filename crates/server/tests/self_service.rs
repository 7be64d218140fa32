//! Self-service recovery (`/recover`) end to end over HTTP on both databases: a person resets
//! their password and their MFA on their own under the same bundle, with the same execution,
//! notices and audit; an unknown account, a privileged one and one over its attempt limit look
//! exactly like a real one and get nothing; a tampered attempt is over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use deskgate_testkit::on_both_backends;
use deskgate_testkit::passkeys;
use deskgate_testkit::server as common;

#[path = "support/idv_vendor.rs"]
mod idv_vendor;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::RequestChallengeResponse;

const DAVE: &str = "u-dave";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One browser's attempt: its cookie.
struct Attempt<'a> {
    s: &'a TestServer,
    cookie: String,
}

async fn start<'a>(s: &'a TestServer, name: &str, action: &str) -> Attempt<'a> {
    let resp = client()
        .post(format!("{}/recover/start", s.base))
        .form(&[("name", name), ("action", action)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/recover/steps");
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("deskgate_recover="), "{cookie}");
    Attempt { s, cookie }
}

impl Attempt<'_> {
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> String {
        let resp = client()
            .post(format!("{}{path}", self.s.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status != StatusCode::SEE_OTHER {
            panic!("{path} {form:?}: {status} {}", resp.text().await.unwrap());
        }
        resp.headers()["location"].to_str().unwrap().to_owned()
    }

    async fn send(&self, method: &str) -> String {
        self.post("/recover/send", &[("method", method)]).await
    }

    async fn answer(&self, method: &str, code: &str) -> String {
        self.post("/recover/answer", &[("method", method), ("code", code)])
            .await
    }

    async fn page(&self) -> (StatusCode, String) {
        let resp = client()
            .get(format!("{}/recover/steps", self.s.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }
}

/// The code in the newest verification code message to `to`.
fn code_to(s: &TestServer, to: &str) -> String {
    s.outbox()
        .iter()
        .rev()
        .find(|m| m["kind"] == "verification_code" && m["to"] == to)
        .unwrap_or_else(|| panic!("no code to {to}"))["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn contacts(s: &TestServer, id: &str) -> (String, String) {
    let subject = s.service.store().subject(id).await.unwrap().unwrap();
    let of = |kind| subject.contact(kind).unwrap().value.clone();
    (
        of(deskgate_core::ContactKind::Email),
        of(deskgate_core::ContactKind::Phone),
    )
}

async fn self_service_cases(s: &TestServer, subject: &str) -> Vec<deskgate_core::Case> {
    s.service
        .store()
        .list_cases(&deskgate_store::CaseFilter {
            subject_id: Some(subject.to_owned()),
            limit: 50,
            ..deskgate_store::CaseFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.channel == deskgate_core::Channel::SelfService)
        .collect()
}

/// The page without what differs by design between two attempts (the expiry minute).
fn shape(page: &str) -> String {
    page.lines()
        .filter(|l| !l.contains("This page works") && !l.contains("until "))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn a_person_resets_their_password_on_their_own(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (email, phone) = contacts(&s, DAVE).await;
    let attempt = start(&s, DAVE, "password_reset").await;
    let (status, page) = attempt.page().await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Reset my password"), "{page}");
    // No vendor can check a photo ID here, so the page does not offer it (to anyone).
    assert!(!page.contains("photo ID"), "{page}");

    assert_eq!(
        attempt.send("email_code").await,
        "/recover/steps?n=sent-email_code"
    );
    assert_eq!(
        attempt.answer("email_code", &code_to(&s, &email)).await,
        "/recover/steps?n=accepted"
    );
    let (_, page) = attempt.page().await;
    assert!(page.contains("id=\"passed\""), "{page}");
    attempt.send("sms_code").await;
    // A wrong code first: not matched, nothing done.
    assert_eq!(
        attempt.answer("sms_code", "000000").await,
        "/recover/steps?n=nomatch"
    );
    attempt.answer("sms_code", &code_to(&s, &phone)).await;

    let (status, page) = attempt.page().await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1>Done</h1>"), "{page}");
    let cases = self_service_cases(&s, DAVE).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].state, deskgate_core::CaseState::Executed);
    assert_eq!(cases[0].agent_id, "self-service");
    let events = s.events_since(0).await;
    for wanted in ["case.opened", "grant.minted", "execution.performed"] {
        assert!(events.contains(&wanted.to_owned()), "{wanted}: {events:?}");
    }
    // The notices of any recovery went out, each with its "this was not me" link.
    assert!(
        s.outbox().iter().any(|m| m["kind"] == "recovery_notice"
            || m["kind"] == "execution_notice"
            || m["body"].as_str().unwrap_or_default().contains("not me")),
        "{:?}",
        s.outbox()
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn an_mfa_reset_on_ones_own_takes_a_recovery_code_and_a_code_of_record(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (email, phone) = contacts(&s, DAVE).await;
    let saved = s.recovery_codes(&email);
    let attempt = start(&s, DAVE, "mfa_reset").await;
    assert_eq!(
        attempt.answer("recovery_code", &saved[0]).await,
        "/recover/steps?n=accepted"
    );
    attempt.send("sms_code").await;
    attempt.answer("sms_code", &code_to(&s, &phone)).await;
    let (_, page) = attempt.page().await;
    assert!(page.contains("<h1>Done</h1>"), "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.authenticators.is_empty(), "{:?}", dave.authenticators);
    assert!(dave.on_probation(s.service.now()));
    // The pass went to a contact of record, never to the page.
    assert!(!page.contains("temporary_access_pass\""));
    assert!(
        s.outbox()
            .iter()
            .any(|m| m["kind"] == "temporary_access_pass"),
        "{:?}",
        s.outbox()
    );
    s.finish().await;
}

async fn unknown_privileged_and_known_accounts_look_the_same(backend: Backend) {
    let s = TestServer::start(backend).await;
    let outbox = s.outbox().len();
    let audit = s.service.store().audit_size().await.unwrap();
    let mut pages = Vec::new();
    let mut sent = Vec::new();
    let mut answered = Vec::new();
    let mut cookie_lengths = Vec::new();
    for name in ["nobody-here", "u-priya"] {
        let attempt = start(&s, name, "password_reset").await;
        cookie_lengths.push(attempt.cookie.len());
        pages.push(shape(&attempt.page().await.1));
        sent.push(attempt.send("email_code").await);
        answered.push(attempt.answer("email_code", "123456").await);
        answered.push(attempt.answer("recovery_code", "ABCD-EFGH-IJKL-MNOP").await);
    }
    // Nothing reached the page's user for either: the administrator alone learns, at their own
    // email of record, that someone asked and that only the help desk can do it.
    let (priya_email, _) = contacts(&s, "u-priya").await;
    let told = s.outbox()[outbox..].to_vec();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["kind"], "self_service_refused");
    assert_eq!(told[0]["to"], priya_email.as_str());
    let events = s.events_since(audit).await;
    assert_eq!(events, vec!["case.refused".to_owned()], "{events:?}");
    assert!(self_service_cases(&s, "u-priya").await.is_empty());

    // A real account's attempt looks the same.
    let real = start(&s, DAVE, "password_reset").await;
    cookie_lengths.push(real.cookie.len());
    pages.push(shape(&real.page().await.1));
    sent.push(real.send("email_code").await);
    answered.push(real.answer("email_code", "123456").await);
    answered.push(real.answer("recovery_code", "ABCD-EFGH-IJKL-MNOP").await);
    assert!(pages.windows(2).all(|w| w[0] == w[1]), "{pages:#?}");
    assert!(sent.windows(2).all(|w| w[0] == w[1]), "{sent:?}");
    assert!(
        answered.iter().all(|a| a == "/recover/steps?n=nomatch"),
        "{answered:?}"
    );
    assert!(
        cookie_lengths.windows(2).all(|w| w[0] == w[1]),
        "{cookie_lengths:?}"
    );
    // The page says who must call the help desk, to everyone.
    let resp = client()
        .get(format!("{}/recover", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Administrator, executive"), "{page}");
    s.finish().await;
}

async fn starting_takes_as_long_for_an_unknown_account_as_for_a_real_one(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mut timings = Vec::new();
    for name in ["nobody-here", "u-alice"] {
        let mut took = Vec::new();
        for _ in 0..3 {
            let at = Instant::now();
            start(&s, name, "account_unlock").await;
            took.push(at.elapsed().as_millis());
        }
        took.sort_unstable();
        timings.push(took[1]);
    }
    // Both are padded to the same floor; only scheduling noise separates them.
    let gap = timings[0].abs_diff(timings[1]);
    assert!(timings.iter().all(|t| *t >= 400), "{timings:?}");
    assert!(gap < 150, "{timings:?}");
    s.finish().await;
}

async fn attempts_per_account_are_limited_and_tampering_ends_one(backend: Backend) {
    let s = TestServer::start(backend).await;
    for _ in 0..4 {
        start(&s, DAVE, "account_unlock").await;
    }
    assert_eq!(self_service_cases(&s, DAVE).await.len(), 3);

    let attempt = start(&s, "u-alice", "account_unlock").await;
    let (name, value) = attempt.cookie.split_once('=').unwrap();
    let mut forged: Vec<char> = value.chars().collect();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged = Attempt {
        s: &s,
        cookie: format!("{name}={}", forged.into_iter().collect::<String>()),
    };
    let (status, page) = forged.page().await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("This attempt is over"), "{page}");
    // Another action is not self-service: refused with the reason, nothing opened.
    let resp = client()
        .post(format!("{}/recover/start", s.base))
        .form(&[("name", DAVE), ("action", "phone_change")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    s.finish().await;
}

/// A server whose public URL names `localhost`: WebAuthn refuses an IP address as RP id.
async fn passkey_server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
    })
    .await
}

/// Enrols `device` for `subject` with the temporary access pass `pass`, then lets weeks pass.
async fn enrol(s: &TestServer, subject: &str, pass: &str, device: &mut SoftPasskey) {
    passkeys::enrol_with_pass(s, subject, pass, device).await;
    s.clock.advance(chrono::Duration::days(15));
}

impl Attempt<'_> {
    async fn passkey_options(&self) -> serde_json::Value {
        let resp = client()
            .post(format!("{}/recover/passkey/options", self.s.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Answers the page's passkey challenge with `device`; `None` when the device finds no
    /// credential the challenge allows.
    async fn use_passkey(&self, device: &mut SoftPasskey) -> Option<String> {
        let options = self.passkey_options().await;
        let challenge: RequestChallengeResponse =
            serde_json::from_value(options["options"].clone()).unwrap();
        let assertion = device
            .do_authentication(passkeys::origin(self.s), challenge)
            .ok()?;
        Some(
            self.post(
                "/recover/passkey",
                &[("credential", &serde_json::to_string(&assertion).unwrap())],
            )
            .await,
        )
    }
}

async fn a_passkey_and_a_code_of_record_reset_a_password_on_ones_own(backend: Backend) {
    let s = passkey_server(backend).await;
    let (email, phone) = contacts(&s, DAVE).await;
    // Dave's MFA was reset at the help desk; the passkey he enrolled with its pass depends on the
    // contact the pass went to, so the second step here goes through the other one.
    let handed = s.executed_mfa_reset("sam.rivera", DAVE, &email).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, handed["pass"].as_str().unwrap(), &mut device).await;
    let (second, second_to) = if handed["to"] == email.as_str() {
        ("sms_code", phone.clone())
    } else {
        ("email_code", email.clone())
    };
    let outbox = s.outbox().len();
    let attempt = start(&s, DAVE, "password_reset").await;
    // A decoy's challenge has the same shape as this real one.
    let decoy = start(&s, "nobody-here", "password_reset").await;
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v["options"]["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    let real_options = attempt.passkey_options().await;
    assert!(
        !real_options["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(keys(&decoy.passkey_options().await), keys(&real_options));
    assert_eq!(
        attempt.use_passkey(&mut device).await.as_deref(),
        Some("/recover/steps?n=accepted")
    );
    // Nothing was mailed for the passkey: the page carried it.
    assert!(
        s.outbox()[outbox..]
            .iter()
            .all(|m| m["kind"] != "passkey_link"),
        "{:?}",
        &s.outbox()[outbox..]
    );
    let (_, page) = attempt.page().await;
    assert!(page.contains("A passkey"), "{page}");
    assert!(!page.contains("id=\"use-passkey\""), "{page}");
    // A code to the contact the pass went to is the same takeover as the passkey: it passes,
    // but the case still waits for an independent step.
    let (same, same_to) = if second == "sms_code" {
        ("email_code", email.clone())
    } else {
        ("sms_code", phone.clone())
    };
    attempt.send(same).await;
    assert_eq!(
        attempt.answer(same, &code_to(&s, &same_to)).await,
        "/recover/steps?n=accepted"
    );
    let (_, page) = attempt.page().await;
    assert!(!page.contains("<h1>Done</h1>"), "{page}");
    attempt.send(second).await;
    attempt.answer(second, &code_to(&s, &second_to)).await;
    let (_, page) = attempt.page().await;
    assert!(page.contains("<h1>Done</h1>"), "{page}");

    // No passkey passes a decoy's challenge.
    let mut stranger = SoftPasskey::new(true);
    assert!(decoy.use_passkey(&mut stranger).await.is_none());
    s.finish().await;
}

async fn a_managers_confirmation_by_link_finishes_a_reset_on_ones_own(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, phone) = contacts(&s, DAVE).await;
    let attempt = start(&s, DAVE, "password_reset").await;
    attempt.send("sms_code").await;
    attempt.answer("sms_code", &code_to(&s, &phone)).await;
    assert_eq!(
        attempt.send("manager_attestation").await,
        "/recover/steps?n=sent-manager_attestation"
    );
    let link = s.last_message("attestation_link")["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, page) = attempt.page().await;
    assert!(!page.contains("<h1>Done</h1>"), "{page}");
    // The manager signs in with a code to their own phone and confirms; the page finishes.
    let (status, body) = s.attest(&link, None, "confirm").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = attempt.page().await;
    assert!(page.contains("<h1>Done</h1>"), "{page}");
    let cases = self_service_cases(&s, DAVE).await;
    assert_eq!(cases[0].state, deskgate_core::CaseState::Executed);
    // A decoy's ask sends nobody anything, and reads the same.
    let before = s.outbox().len();
    let decoy = start(&s, "nobody-here", "password_reset").await;
    assert_eq!(
        decoy.send("manager_attestation").await,
        "/recover/steps?n=sent-manager_attestation"
    );
    assert_eq!(s.outbox().len(), before);
    s.finish().await;
}

async fn a_number_matched_push_and_a_code_reset_a_password_on_ones_own(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (email, _) = contacts(&s, "u-alice").await;
    let attempt = start(&s, "u-alice", "password_reset").await;
    let sent = attempt.send("push").await;
    let number = sent
        .strip_prefix("/recover/steps?n=sent-push&k=")
        .unwrap_or_else(|| panic!("{sent}"))
        .to_owned();
    let (_, page) = attempt
        .s
        .client
        .get(format!("{}{sent}", s.base))
        .header("cookie", &attempt.cookie)
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("Enter the number {number}")),
        "{page}"
    );
    // Approving blindly, or with another number, passes nothing.
    let wrong = if number == "42" { "43" } else { "42" };
    let answer = s.service.push_response("u-alice", true, Some(wrong)).await;
    assert!(answer.is_ok(), "{answer:?}");
    let (_, page) = attempt.page().await;
    assert!(
        !page.contains("A request to your enrolled device</li>"),
        "{page}"
    );
    let number = {
        let sent = attempt.send("push").await;
        sent.rsplit('=').next().unwrap().to_owned()
    };
    s.service
        .push_response("u-alice", true, Some(&number))
        .await
        .unwrap();
    attempt.send("email_code").await;
    attempt.answer("email_code", &code_to(&s, &email)).await;
    let (_, page) = attempt.page().await;
    assert!(page.contains("<h1>Done</h1>"), "{page}");

    // A decoy's push number is the same on every ask, and nothing is pushed.
    let decoy = start(&s, "nobody-here", "password_reset").await;
    assert_eq!(decoy.send("push").await, decoy.send("push").await);
    s.finish().await;
}

async fn an_agent_sends_a_self_service_link_instead_of_working_the_case(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (email, phone) = contacts(&s, DAVE).await;
    let case = s.open_case("sam.rivera", DAVE, "password_reset").await;
    let id = case["id"].as_str().unwrap();
    // Another agent's case is not theirs to move.
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{id}/self-service-link"),
            Some(&s.token("jordan.blake")),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/self-service-link"),
            Some(&s.token("sam.rivera")),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled", "{body}");
    let sent = s.last_message("self_service_link");
    assert_eq!(sent["to"], email.as_str(), "only to the email of record");
    let body = sent["body"].as_str().unwrap();
    let link = &body[body.find("http").unwrap()..];
    assert!(
        link.ends_with("/recover?name=u-dave&action=password_reset"),
        "{link}"
    );
    // The link fills in the form; the person still confirms it is them.
    let path = &link[link.find("/recover").unwrap()..];
    let page = client()
        .get(format!("{}{path}", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"u-dave\""), "{page}");
    assert!(
        page.contains("value=\"password_reset\" id=\"action-password_reset\" required checked"),
        "{page}"
    );
    let attempt = start(&s, DAVE, "password_reset").await;
    attempt.send("email_code").await;
    attempt.answer("email_code", &code_to(&s, &email)).await;
    attempt.send("sms_code").await;
    attempt.answer("sms_code", &code_to(&s, &phone)).await;
    assert!(attempt.page().await.1.contains("<h1>Done</h1>"));
    // A moved case cannot be moved twice.
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{id}/self-service-link"),
            Some(&s.token("sam.rivera")),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    s.finish().await;
}

/// Agent velocity guards against an insider working many accounts; the self-service desk is no
/// person, so its volume never raises the risk of a self-service request (or refuses it).
async fn self_service_volume_is_no_agent_velocity(backend: Backend) {
    let bundle = tempfile::tempdir().unwrap();
    deskgate_testkit::bundle::copy_dir(&deskgate_testkit::bundle::default_pack(), bundle.path());
    let risk = bundle.path().join("risk.toml");
    let text = std::fs::read_to_string(&risk).unwrap();
    std::fs::write(
        &risk,
        text.replace("max_per_agent = 30", "max_per_agent = 1"),
    )
    .unwrap();
    let dir = bundle.path().to_path_buf();
    let s = TestServer::start_with(backend, |c| c.policy_dir = Some(dir)).await;
    for subject in ["u-alice", "u-carol", DAVE] {
        start(&s, subject, "account_unlock").await;
    }
    let dave = self_service_cases(&s, DAVE).await;
    assert_eq!(
        dave.len(),
        1,
        "the third self-service request opened a case"
    );
    assert!(
        dave[0]
            .risk
            .reasons
            .iter()
            .all(|r| r.code != "velocity_agent"),
        "{:?}",
        dave[0].risk
    );
    // The threshold itself is live: a person past it raises the risk.
    for subject in ["u-alice", "u-carol"] {
        s.open_case("sam.rivera", subject, "account_unlock").await;
    }
    let third = s.open_case("sam.rivera", DAVE, "account_unlock").await;
    assert!(
        third["risk"]["reasons"]
            .to_string()
            .contains("velocity_agent"),
        "{third}"
    );
    s.finish().await;
}

/// The vendor's signed result for the newest inquiry, the document matching as `matched` says.
async fn vendor_reports(s: &TestServer, vendor: &idv_vendor::Vendor, id: &str, matched: bool) {
    let created = vendor.last();
    let result = idv_vendor::generic_result(
        &created.inquiry_id,
        created.body["reference_id"].as_str().unwrap(),
        "approved",
        serde_json::json!({"name_first": matched, "name_last": matched}),
    );
    let (headers, body) = idv_vendor::standard_delivery(id, &result);
    let mut req = client()
        .post(format!("{}/api/v1/webhooks/idv/standard-webhooks", s.base))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn a_photo_id_and_a_code_of_record_reset_mfa_on_ones_own(backend: Backend) {
    let vendor = idv_vendor::Vendor::start().await;
    let s = TestServer::start_with(backend, |c| vendor.configure(c, false, true)).await;
    let (email, phone) = contacts(&s, DAVE).await;
    let attempt = start(&s, DAVE, "mfa_reset").await;
    let (_, page) = attempt.page().await;
    assert!(
        page.contains("Email me a link to check my photo ID"),
        "{page}"
    );
    assert_eq!(
        attempt.send("id_proofing").await,
        "/recover/steps?n=sent-id_proofing"
    );
    // The inquiry was created server to server with the identity of record; the link went to
    // the email of record, never to the page.
    let created = vendor.last();
    assert_eq!(created.body["expected"]["name_last"], "Whitfield");
    let link = s.last_message("idv_link");
    assert_eq!(link["to"], email.as_str());
    let (_, page) = attempt.page().await;
    assert!(!page.contains(created.link.as_str()), "{page}");

    vendor_reports(&s, &vendor, "msg_owner", true).await;
    let (_, page) = attempt.page().await;
    assert!(page.contains("Your photo ID matched"), "{page}");
    attempt.send("sms_code").await;
    attempt.answer("sms_code", &code_to(&s, &phone)).await;
    let (_, page) = attempt.page().await;
    assert!(page.contains("<h1>Done</h1>"), "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.authenticators.is_empty(), "{:?}", dave.authenticators);

    // Whoever holds the mailbox shows someone else's genuine document: nobody is there to look,
    // so the attempt is over at once (denied, audited) and no second document can be tried.
    let attempt = start(&s, "u-carol", "password_reset").await;
    attempt.send("id_proofing").await;
    vendor_reports(&s, &vendor, "msg_other", false).await;
    let (_, page) = attempt.page().await;
    assert!(page.contains("This cannot be finished here"), "{page}");
    let case = &self_service_cases(&s, "u-carol").await[0];
    assert_eq!(case.state, deskgate_core::CaseState::Denied);
    let inquiries = vendor.created().len();
    attempt.send("id_proofing").await;
    assert_eq!(vendor.created().len(), inquiries);

    // A decoy's ask creates no inquiry and sends nothing, and reads the same.
    let (inquiries, sent) = (vendor.created().len(), s.outbox().len());
    let decoy = start(&s, "nobody-here", "mfa_reset").await;
    assert_eq!(
        decoy.send("id_proofing").await,
        "/recover/steps?n=sent-id_proofing"
    );
    assert_eq!(
        (vendor.created().len(), s.outbox().len()),
        (inquiries, sent)
    );
    s.finish().await;
}

on_both_backends!(
    a_photo_id_and_a_code_of_record_reset_mfa_on_ones_own,
    self_service_volume_is_no_agent_velocity,
    an_agent_sends_a_self_service_link_instead_of_working_the_case,
    a_number_matched_push_and_a_code_reset_a_password_on_ones_own,
    a_managers_confirmation_by_link_finishes_a_reset_on_ones_own,
    a_passkey_and_a_code_of_record_reset_a_password_on_ones_own,
    a_person_resets_their_password_on_their_own,
    an_mfa_reset_on_ones_own_takes_a_recovery_code_and_a_code_of_record,
    unknown_privileged_and_known_accounts_look_the_same,
    starting_takes_as_long_for_an_unknown_account_as_for_a_real_one,
    attempts_per_account_are_limited_and_tampering_ends_one,
);
