//! Issue #11, findings 4 and 14: what a "this was not me" report must shut, an execution that a
//! cancel or deny races, vouchers who share a contact with the person they vouch for, the cap on
//! verifications per case, and link tokens kept out of URL paths after the first GET.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use deskgate_app::connector_setup::ConnectorKind;
use deskgate_core::ContactKind;
use deskgate_store::Change;
use deskgate_testkit::{SERVICE_DN, SERVICE_PW, SUFFIX, Slapd};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";

/// Runs Alice's MFA reset to execution (SMS code, Bob's attestation, a saved recovery code) and
/// returns the case id.
async fn executed_mfa_reset(s: &TestServer) -> String {
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);
    let link = s.request_attestation(AGENT, &id).await;
    let (status, body) = s.attest(&link, None, "confirm").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let saved = s.recovery_codes("alice.jensen@example.org");
    let (rid, _) = s.start_method(AGENT, &id, "recovery_code").await;
    let (status, body) = s.answer(AGENT, &id, &rid, &saved[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// The not-me link of the newest recovery notice sent to `to`.
fn not_me_link(s: &TestServer, to: &str) -> String {
    s.outbox()
        .into_iter()
        .rev()
        .find(|m| m["kind"] == "recovery_notice" && m["to"] == to)
        .unwrap_or_else(|| panic!("no recovery notice to {to}"))["link"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn report_not_me(s: &TestServer, link: &str) {
    let resp = s.post_link(link, "").send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
}

async fn finding_4_not_me_spends_the_temporary_access_pass_and_the_subjects_links(
    backend: Backend,
) {
    let s = TestServer::start(backend).await;
    // A second live case about Alice, with an attestation link out to Bob.
    let other = s
        .open_case("jordan.blake", "u-alice", "password_reset")
        .await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let other_link = s.request_attestation("jordan.blake", &other_id).await;

    executed_mfa_reset(&s).await;
    let pass = s.last_message("temporary_access_pass")["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    report_not_me(&s, &not_me_link(&s, "alice.jensen@example.org")).await;

    // The pass enrols nothing, by either authenticator.
    for authenticator in ["totp", "passkey"] {
        let (status, body) = s
            .post(
                "/api/v1/tap/redeem",
                None,
                json!({"subject": "u-alice", "pass": pass, "authenticator": authenticator}),
            )
            .await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "{authenticator}: {status} {body}"
        );
    }
    assert!(
        s.service.current_totp("u-alice").await.is_err(),
        "no app enrolled"
    );
    let tap = s
        .service
        .store()
        .credential("u-alice", "temporary_access_pass")
        .await
        .unwrap()
        .unwrap();
    assert!(tap.used_at.is_some(), "the pass is spent");

    // The other case's link is dead and the case is over, with the reason on record.
    let (status, body) = s.attestation_sign_in(&other_link).await.unwrap_err();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "link_used");
    let (_, view) = s
        .get(
            &format!("/api/v1/cases/{other_id}"),
            Some(&s.token("jordan.blake")),
        )
        .await;
    assert_eq!(view["state"], "denied", "{view}");
    assert!(
        view["outcome_reason"]
            .as_str()
            .unwrap()
            .contains("not theirs"),
        "{view}"
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn finding_4_not_me_spends_the_service_secret_retrieval(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, case) = s
        .post("/api/v1/cases", Some(&s.token(AGENT)), json!({"subject": "svc-payroll", "action": "service_credential_rotate", "channel": "ticket", "requester": "u-erin"}))
        .await;
    let id = case["id"].as_str().unwrap();
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-erin").await.unwrap();
    assert_eq!(s.answer(AGENT, id, &tid, &code).await.0, StatusCode::OK);
    let link = s.request_attestation(AGENT, id).await;
    assert_eq!(s.attest(&link, None, "confirm").await.0, StatusCode::OK);
    assert_eq!(s.execute(AGENT, id).await.0, StatusCode::OK);
    let url = s.last_message("secret_retrieval_link")["link"]
        .as_str()
        .unwrap()
        .to_owned();

    report_not_me(&s, &not_me_link(&s, "svc-payroll@service.example.org")).await;

    let resp = s.post_link(&url, "").send().await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("secret\""), "{body}");
    let pickup = s
        .service
        .store()
        .credential("svc-payroll", "service_secret_pickup")
        .await
        .unwrap()
        .unwrap();
    assert!(pickup.used_at.is_some());
    assert!(pickup.hash.is_empty(), "the sealed secret is destroyed");
    assert!(
        !s.events_since(0)
            .await
            .contains(&"service_secret.retrieved".to_owned())
    );
    s.finish().await;
}

/// A subject the security team holds (flagged) gets nothing through a subject-facing entry
/// point, and the refusal changes nothing.
async fn finding_4_a_flagged_subject_redeems_no_pass(backend: Backend) {
    let s = TestServer::start(backend).await;
    executed_mfa_reset(&s).await;
    let pass = s.last_message("temporary_access_pass")["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut alice = s.service.store().subject("u-alice").await.unwrap().unwrap();
    alice.flagged = true;
    s.service
        .store()
        .commit(Change {
            subjects: vec![alice],
            ..Change::default()
        })
        .await
        .unwrap();
    let before = s.snapshot(None, "u-alice").await;
    for authenticator in ["totp", "passkey"] {
        let (status, body) = s
            .post(
                "/api/v1/tap/redeem",
                None,
                json!({"subject": "u-alice", "pass": pass, "authenticator": authenticator}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "subject_on_hold", "{body}");
    }
    assert_eq!(s.snapshot(None, "u-alice").await, before);
    let tap = s
        .service
        .store()
        .credential("u-alice", "temporary_access_pass")
        .await
        .unwrap()
        .unwrap();
    assert!(tap.used_at.is_none());
    s.finish().await;
}

// --- finding 14: vouchers -------------------------------------------------------------------

/// Gives `who` the contact value `value` of `kind` (first of that kind), keeping its history.
async fn set_contact(s: &TestServer, who: &str, kind: ContactKind, value: &str) {
    let mut subject = s.service.store().subject(who).await.unwrap().unwrap();
    let contact = subject
        .contacts
        .iter_mut()
        .find(|c| c.kind == kind)
        .unwrap();
    contact.value = value.to_owned();
    s.service
        .store()
        .commit(Change {
            subjects: vec![subject],
            ..Change::default()
        })
        .await
        .unwrap();
}

fn offers(view: &Value, method: &str) -> bool {
    view["playbook"].as_array().unwrap().iter().any(|step| {
        step["methods"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == method))
    })
}

async fn finding_14_a_manager_sharing_the_subjects_phone_cannot_vouch(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    assert!(offers(&case, "manager_attestation"), "{case}");
    // Bob, Alice's manager, now has Alice's own mobile as his phone of record (written with
    // spacing of its own).
    set_contact(&s, "u-bob", ContactKind::Phone, "+15550100142").await;
    let before = s.snapshot(Some(id), "u-alice").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({"method": "manager_attestation"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "voucher_not_independent", "{body}");
    assert_eq!(s.snapshot(Some(id), "u-alice").await, before);
    let (_, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert!(!offers(&view, "manager_attestation"), "{view}");
    s.finish().await;
}

async fn finding_14_a_second_owner_sharing_the_requesters_email_cannot_vouch(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, case) = s
        .post("/api/v1/cases", Some(&s.token(AGENT)), json!({"subject": "svc-payroll", "action": "service_credential_rotate", "channel": "ticket", "requester": "u-erin"}))
        .await;
    let id = case["id"].as_str().unwrap();
    // Carol, the second owner, has Erin's mailbox as her email of record.
    set_contact(&s, "u-carol", ContactKind::Email, "Erin.Walsh@example.org").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({"method": "manager_attestation"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "voucher_not_independent", "{body}");
    assert!(
        !s.outbox().iter().any(|m| m["kind"] == "attestation_link"),
        "no link was sent"
    );
    s.finish().await;
}

// --- finding 14: verifications per case ------------------------------------------------------

async fn finding_14_verifications_per_case_are_capped(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    for _ in 0..20 {
        s.start_method(AGENT, id, "recovery_code").await;
    }
    let before = s.snapshot(Some(id), "u-alice").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({"method": "recovery_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_verifications", "{body}");
    assert_eq!(s.snapshot(Some(id), "u-alice").await, before);
    s.finish().await;
}

// --- finding 14: link tokens leave the URL after the first GET ---------------------------------

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn finding_14_link_tokens_are_refused_in_post_paths(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let link = s.request_attestation(AGENT, id).await;
    let token = link.rsplit_once('/').unwrap().1.to_owned();
    let before = s.snapshot(Some(id), "u-alice").await;
    // Every POST that carries the token in its path is refused before anything is looked up.
    for path in [
        format!("/attest/{token}"),
        format!("/attest/{token}/code"),
        format!("/attest/{token}/sign-in"),
        format!("/console/attest/{token}"),
        format!("/console/attest/{token}/code"),
        format!("/console/attest/{token}/sign-in"),
    ] {
        let (status, body) = s
            .send(
                s.client
                    .post(format!("{}{path}", s.base))
                    .json(&json!({"code": "123456", "decision": "confirm"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "token_in_path", "{path}: {body}");
    }
    assert_eq!(
        s.snapshot(Some(id), "u-alice").await,
        before,
        "nothing sent or changed"
    );

    // The manager's browser: the first GET moves the token into an HttpOnly cookie scoped to
    // the attestation pages and lands on a token-free URL; nothing after it names the token.
    let first = no_redirects()
        .get(format!("{}/console/attest/{token}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["location"], "/console/attest");
    assert_eq!(first.headers()["referrer-policy"], "no-referrer");
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Path=/console/attest", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let jar = cookie.split(';').next().unwrap().to_owned();
    let page = s
        .client
        .get(format!("{}/console/attest", s.base))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/console/attest/code\""), "{html}");
    assert!(!html.contains(&token), "the page does not repeat the token");
    // The sign-in continues on token-free URLs with the cookie alone.
    let sent = s
        .client
        .post(format!("{}/console/attest/code", s.base))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    assert_eq!(
        s.last_message("attestation_sign_in_code")["to"],
        "+1 555 010 0110"
    );
    s.finish().await;
}

async fn finding_14_the_not_me_page_posts_its_token_in_the_body(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    s.pass_password_reset(AGENT, id).await;
    assert_eq!(s.execute(AGENT, id).await.0, StatusCode::OK);
    let link = not_me_link(&s, "dave.whitfield@example.org");
    let token = link.rsplit_once('/').unwrap().1.to_owned();

    let (status, body) = s.send(s.client.post(&link)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "token_in_path");
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert!(!dave.flagged, "a refused report changes nothing");

    let page = s.client.get(&link).send().await.unwrap();
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/not-me\">"),
        "{html}"
    );
    // The browser's form post: the token in the body, the URL without it.
    let resp = s
        .client
        .post(format!("{}/not-me", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert!(dave.flagged);
    s.finish().await;
}

// --- finding 14: a cancel or deny racing the connector call ----------------------------------

const SEED: &str = r#"dn: uid=u-dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: u-dave
cn: Dave Whitfield
sn: Whitfield
mail: dave.whitfield@example.org
mobile: +1 555 010 0112
userPassword: dave-old-pass

dn: cn=sales,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: sales
member: uid=u-dave,ou=people,dc=example,dc=org
"#;

/// A TCP relay between Deskgate and slapd that, while holding, stops each LDAP modify or
/// extended request (what a password reset sends) before it reaches the server: the connector
/// call is then in flight for as long as the test likes.
struct HoldingRelay {
    url: String,
    holding: tokio::sync::watch::Sender<bool>,
    held: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<()>>,
}

/// The protocol-op tag of the first complete LDAP message in `buf`, and the message's length.
fn ldap_message(buf: &[u8]) -> Option<(u8, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, header) = if buf[1] < 0x80 {
        (usize::from(buf[1]), 2)
    } else {
        let n = usize::from(buf[1] & 0x7f);
        if buf.len() < 2 + n {
            return None;
        }
        let len = buf[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let total = header + len;
    if buf.len() < total {
        return None;
    }
    // messageID INTEGER (short form), then the protocol op.
    let id_len = usize::from(buf[header + 1]);
    Some((buf[header + 2 + id_len], total))
}

impl HoldingRelay {
    async fn start(upstream: &str) -> std::sync::Arc<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = upstream.trim_start_matches("ldap://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ldap://{}", listener.local_addr().unwrap());
        let (holding, watch) = tokio::sync::watch::channel(false);
        let (reached, held) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut watch = watch.clone();
                let reached = reached.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = client_read.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some((op, total)) = ldap_message(&buf) {
                            // 0x66 ModifyRequest, 0x77 ExtendedRequest (password modify).
                            if (op == 0x66 || op == 0x77) && *watch.borrow() {
                                let _ = reached.send(());
                                let _ = watch.wait_for(|h| !*h).await;
                            }
                            let message: Vec<u8> = buf.drain(..total).collect();
                            if server_write.write_all(&message).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        std::sync::Arc::new(Self {
            url,
            holding,
            held: tokio::sync::Mutex::new(held),
        })
    }

    fn hold(&self, on: bool) {
        self.holding.send_replace(on);
    }

    /// Waits until a write is being held.
    async fn wait_held(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.held.lock().await.recv(),
        )
        .await
        .expect("the connector never sent its change")
        .unwrap();
    }
}

async fn ldap_server(backend: Backend, relay_url: &str) -> TestServer {
    let url = relay_url.to_owned();
    TestServer::start_with(backend, |c| {
        c.connector = ConnectorKind::Ldap;
        c.connectors.ldap = Some(json!({
            "url": url, "tls": "none", "mode": "openldap",
            "bind_dn": SERVICE_DN, "bind_password": SERVICE_PW,
            "base_dn": SUFFIX, "user_filter": "(objectClass=inetOrgPerson)",
            "subject_attribute": "uid", "group_base_dn": format!("ou=groups,{SUFFIX}"),
            "group_tiers": {}, "default_tier": "standard", "phone_attribute": "mobile",
            "timeout_secs": 10,
        }));
    })
    .await
}

/// While the connector resets Dave's password, the agent cancels and a security officer denies:
/// both are refused and change nothing, and once the directory answers the execution is
/// recorded whole: the case executed, `execution.performed`, the notices and probation.
async fn finding_14_cancel_or_deny_during_the_connector_call_keeps_the_outcome(backend: Backend) {
    let slapd = Slapd::start(SEED).await;
    let relay = HoldingRelay::start(slapd.url()).await;
    let s = std::sync::Arc::new(ldap_server(backend, &relay.url).await);
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let body = s.pass_password_reset(AGENT, &id).await;
    assert_eq!(body["state"], "approved", "{body}");

    relay.hold(true);
    let execution = {
        let (s, id) = (s.clone(), id.clone());
        tokio::spawn(async move { s.execute(AGENT, &id).await })
    };
    relay.wait_held().await;
    let in_flight = s.snapshot(Some(&id), "u-dave").await;
    for (who, path) in [(AGENT, "cancel"), ("riley.chen", "deny")] {
        let (status, body) = s
            .post(
                &format!("/api/v1/cases/{id}/{path}"),
                Some(&s.token(who)),
                json!({"reason": "the caller hung up"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {body}");
        assert_eq!(body["error"]["code"], "execution_in_flight", "{body}");
    }
    assert_eq!(s.snapshot(Some(&id), "u-dave").await, in_flight);
    relay.hold(false);

    let (status, body) = execution.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["state"], "executed");
    let events = s.events_since(0).await;
    assert!(
        events.contains(&"execution.performed".to_owned()),
        "{events:?}"
    );
    assert!(!events.contains(&"case.cancelled".to_owned()), "{events:?}");
    assert!(!events.contains(&"case.denied".to_owned()), "{events:?}");
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert!(dave.probation_until.is_some(), "probation landed");
    assert!(
        s.outbox()
            .iter()
            .any(|m| m["kind"] == "recovery_notice" && m["to"] == "dave.whitfield@example.org")
    );
    let password = s.last_message("temporary_password")["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        slapd
            .bind_rc(&deskgate_testkit::people("u-dave"), &password)
            .await,
        0
    );
    s.assert_audit_chain_intact().await;
    drop(slapd);
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        s.finish().await;
    }
}

/// A connector call that never answered (the process died mid-call) does not hang the case for
/// ever: once it is long past, a cancel ends the case `failed`, never executed.
async fn finding_14_an_execution_lost_mid_call_is_failed_not_cancelled(backend: Backend) {
    let slapd = Slapd::start(SEED).await;
    let relay = HoldingRelay::start(slapd.url()).await;
    let s = std::sync::Arc::new(ldap_server(backend, &relay.url).await);
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    s.pass_password_reset(AGENT, &id).await;
    relay.hold(true);
    let execution = {
        let (s, id) = (s.clone(), id.clone());
        tokio::spawn(async move { s.execute(AGENT, &id).await })
    };
    relay.wait_held().await;
    s.clock.advance(chrono::Duration::minutes(16));
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/cancel"),
            Some(&s.token(AGENT)),
            json!({"reason": "the execution never answered"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "failed", "{body}");
    assert!(body["executed_at"].is_null());
    assert!(
        s.events_since(0)
            .await
            .contains(&"execution.abandoned".to_owned())
    );
    relay.hold(false);
    // The late answer cannot turn the failed case into an executed one.
    let (status, body) = execution.await.unwrap();
    assert_ne!(status, StatusCode::OK, "{body}");
    let (_, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(view["state"], "failed", "{view}");
    drop(slapd);
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        s.finish().await;
    }
}

on_both_backends!(
    finding_14_link_tokens_are_refused_in_post_paths,
    finding_14_the_not_me_page_posts_its_token_in_the_body,
    finding_14_cancel_or_deny_during_the_connector_call_keeps_the_outcome,
    finding_14_an_execution_lost_mid_call_is_failed_not_cancelled,
    finding_4_not_me_spends_the_temporary_access_pass_and_the_subjects_links,
    finding_4_not_me_spends_the_service_secret_retrieval,
    finding_4_a_flagged_subject_redeems_no_pass,
    finding_14_a_manager_sharing_the_subjects_phone_cannot_vouch,
    finding_14_a_second_owner_sharing_the_requesters_email_cannot_vouch,
    finding_14_verifications_per_case_are_capped,
);
