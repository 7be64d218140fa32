//! End-to-end recoveries over HTTP on both databases: what must happen when everything is right,
//! and that a failing audit append stops everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use argon2::PasswordVerifier;
use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;

const AGENT: &str = "sam.rivera";

async fn password_reset_happy_path(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    assert_eq!(case["state"], "open");
    assert_eq!(case["risk"]["level"], "low");
    assert_eq!(case["playbook"][0]["kind"], "verify");
    let offered = case["playbook"][0]["methods"].as_array().unwrap();
    assert!(
        offered.contains(&serde_json::json!("email_code")),
        "{offered:?}"
    );

    let (vid, code) = s.send_code(AGENT, id, "email_code").await;
    let msg = s.last_message("verification_code");
    assert_eq!(
        msg["to"], "dave.whitfield@example.org",
        "code goes to the email of record"
    );
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["state"], "verifying",
        "one class never resets a password (issue 13)"
    );
    assert!(body["grant"].is_null(), "{body}");

    // The second class, through the other contact of record.
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    assert_eq!(
        s.last_message("verification_code")["to"],
        "+1 555 010 0112",
        "code goes to the phone of record"
    );
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    let mut counted: Vec<&str> = body["progress"]["counted_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    counted.sort_unstable();
    assert_eq!(counted, ["email_of_record", "phone_of_record"]);
    assert!(body["grant"]["expires_at"].is_string());
    assert_eq!(body["playbook"][0]["kind"], "execute");

    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["state"], "executed");
    let text = body.to_string();

    // The temporary password went to the contact of record, matches the stored hash, and was
    // never shown to the agent.
    let delivered = s.last_message("temporary_password");
    assert_eq!(delivered["to"], "dave.whitfield@example.org");
    let password = delivered["password"].as_str().unwrap();
    assert!(!text.contains(password));
    let stored = s
        .service
        .store()
        .credential("u-dave", "password")
        .await
        .unwrap()
        .unwrap();
    let parsed = argon2::PasswordHash::new(&stored.hash).unwrap();
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .unwrap();

    let notices: Vec<Value> = s
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "recovery_notice")
        .collect();
    let to: Vec<&str> = notices.iter().map(|m| m["to"].as_str().unwrap()).collect();
    assert!(to.contains(&"dave.whitfield@example.org"));
    assert!(to.contains(&"+1 555 010 0112"));
    assert!(
        to.contains(&"bob.kramer@example.org"),
        "the manager is told: {to:?}"
    );

    let events = s.events_since(0).await;
    for e in [
        "case.opened",
        "verification.started",
        "verification.passed",
        "case.approved",
        "grant.minted",
        "grant.consumed",
        "execution.performed",
    ] {
        assert!(events.iter().any(|x| x == e), "missing {e} in {events:?}");
    }
    // Entries name the evidence they relied on (by digest) and the bundle that decided.
    let size = s.service.store().audit_size().await.unwrap();
    let entries: Vec<Value> = s
        .service
        .store()
        .audit_entries(0, size)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry().unwrap())
        .collect();
    let find = |event: &str| {
        entries
            .iter()
            .find(|e| e["event"] == event)
            .unwrap()
            .clone()
    };
    // Each pass names its own piece of evidence; the execution names both (two passes now).
    let passed: Vec<Value> = entries
        .iter()
        .filter(|e| e["event"] == "verification.passed")
        .flat_map(|e| {
            let digests = e["evidence_digests"].as_array().unwrap();
            assert_eq!(digests.len(), 1, "{e}");
            digests.clone()
        })
        .collect();
    assert_eq!(passed.len(), 2);
    let executed = find("execution.performed");
    assert_eq!(executed["evidence_digests"], Value::Array(passed));
    assert_eq!(executed["policy_digest"], s.service.bundle().digest());
    assert_eq!(
        find("case.opened")["policy_digest"],
        s.service.bundle().digest()
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn mfa_reset_with_code_and_manager_attestation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    assert_eq!(case["requirements"]["min_classes"], 2);

    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    assert_eq!(s.last_message("verification_code")["to"], "+1 555 010 0142");
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["state"], "verifying",
        "one class is not enough for an MFA reset"
    );

    let link = s.request_attestation(AGENT, id).await;
    assert_eq!(
        s.last_message("attestation_link")["to"],
        "bob.kramer@example.org"
    );
    // The link alone shows nothing: Bob first proves it is him with a code to his own phone.
    let (status, view) = s.get(&link.replace(&s.base, ""), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{view}");
    assert_eq!(view["error"]["code"], "manager_sign_in_required");
    assert!(!view.to_string().contains("Alice"), "{view}");
    let session = s.attestation_sign_in(&link).await.unwrap();
    assert_eq!(
        s.last_message("attestation_sign_in_code")["to"],
        "+1 555 010 0110"
    );
    let (status, view) = s
        .send(
            s.client
                .get(&link)
                .header("x-attestation-session", &session),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["subject"]["name"], "Alice Jensen");
    assert_eq!(view["respondent"]["id"], "u-bob");
    assert_eq!(view["action"], "mfa_reset");

    let (status, body) = s
        .attest_with_session(&link, None, Some(&session), "confirm")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["case_state"], "verifying",
        "phone and manager are two classes, but none an attacker is unlikely to hold"
    );

    // A recovery code Alice saved at enrolment completes the playbook.
    let saved = s.recovery_codes("alice.jensen@example.org");
    let (rid, _) = s.start_method(AGENT, id, "recovery_code").await;
    let (status, body) = s.answer(AGENT, id, &rid, &saved[0].to_lowercase()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(body["decisions"][0]["stage"], "open");
    assert_eq!(
        body["decisions"][0]["bundle_digest"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    let before = s.service.store().subject("u-alice").await.unwrap().unwrap();
    assert!(!before.authenticators.is_empty());
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = s.service.store().subject("u-alice").await.unwrap().unwrap();
    assert!(after.authenticators.is_empty(), "factors removed");
    let pass = s.last_message("temporary_access_pass");
    assert_eq!(pass["to"], "alice.jensen@example.org");
    assert!(!body.to_string().contains(pass["pass"].as_str().unwrap()));
    let tap = s
        .service
        .store()
        .credential("u-alice", "temporary_access_pass")
        .await
        .unwrap()
        .unwrap();
    assert!(tap.expires_at.is_some());
    // The case shows the subject is on probation now.
    assert!(
        body["case"]["subject_probation_until"].is_string(),
        "{}",
        body["case"]
    );
    // The pass enrols a new authenticator app, once; it does nothing for anyone else.
    let pass_value = pass["pass"].as_str().unwrap();
    let redeem = |subject: &str, p: &str| serde_json::json!({"subject": subject, "pass": p, "authenticator": "totp"});
    let (status, _) = s
        .post("/api/v1/tap/redeem", None, redeem("u-bob", pass_value))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, enrolled) = s
        .post("/api/v1/tap/redeem", None, redeem("u-alice", pass_value))
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert!(
        enrolled["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (status, _) = s
        .post("/api/v1/tap/redeem", None, redeem("u-alice", pass_value))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "single use");
    assert!(
        s.outbox()
            .iter()
            .any(|m| m["kind"] == "authenticator_notice" && m["to"] == "+1 555 010 0142")
    );
    assert!(
        s.service.current_totp("u-alice").await.is_ok(),
        "the new app works"
    );
    // The code is used up: the same code fails on a new case.
    let again = s
        .open_case("jordan.blake", "u-alice", "password_reset")
        .await;
    let again_id = again["id"].as_str().unwrap();
    let (rid, _) = s
        .start_method("jordan.blake", again_id, "recovery_code")
        .await;
    let (status, body2) = s.answer("jordan.blake", again_id, &rid, &saved[0]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body2}");
    assert_eq!(body2["error"]["code"], "wrong_code");
    let approvals = body["case"]["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0]["approver_id"], "u-bob");
    assert_eq!(approvals[0]["case_digest"].as_str().unwrap().len(), 64);
    let events = s.events_since(0).await;
    assert!(events.contains(&"attestation.confirmed".to_owned()));
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn failing_audit_append_executes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    s.pass_password_reset(AGENT, id).await;

    // A real database-level failure of the audit insert, inside the same transaction.
    match backend {
        Backend::Sqlite => {
            s.sql(&["CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END"])
                .await
        }
        Backend::Postgres => {
            s.sql(&[
                "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'injected audit failure'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_down()",
            ])
            .await
        }
    }
    let before = s.snapshot(Some(id), "u-dave").await;
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "audit_unavailable");
    assert_eq!(
        s.snapshot(Some(id), "u-dave").await,
        before,
        "nothing changed, nothing sent"
    );
    assert!(
        s.service
            .store()
            .credential("u-dave", "password")
            .await
            .unwrap()
            .is_none()
    );

    // Opening a case is refused the same way: no case without its audit entry.
    let (status, _) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            serde_json::json!({"subject": "u-carol", "action": "password_reset", "channel": "phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (_, list) = s.get("/api/v1/cases", Some(&s.token("morgan.lee"))).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);

    // Once the log is writable again the same grant works.
    match backend {
        Backend::Sqlite => s.sql(&["DROP TRIGGER audit_down"]).await,
        Backend::Postgres => {
            s.sql(&[
                "DROP TRIGGER audit_down ON audit_log",
                "DROP FUNCTION audit_down()",
            ])
            .await
        }
    }
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn fifty_concurrent_executes_consume_the_grant_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    s.pass_password_reset(AGENT, &id).await;
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move { s.execute(AGENT, &id).await }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            let code = body["error"]["code"].as_str().unwrap();
            assert!(code == "conflict" || code == "grant_consumed", "{code}");
        }
    }
    assert_eq!(ok, 1, "exactly one execution");
    let passwords = s
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "temporary_password")
        .count();
    assert_eq!(passwords, 1);
    let events = s.events_since(0).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "execution.performed")
            .count(),
        1
    );
    s.assert_audit_chain_intact().await;
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        s.finish().await;
    }
}

async fn email_change_with_the_enrolled_app_and_the_phone(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            serde_json::json!({"subject": "u-dave", "action": "email_change", "channel": "phone",
                               "new_contact": "dave.w@newmail.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    let offered = case["playbook"][0]["methods"].as_array().unwrap();
    assert!(offered.contains(&serde_json::json!("totp")), "{offered:?}");

    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-dave").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &tid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["progress"]["counted_classes"],
        serde_json::json!(["device_of_record"])
    );
    // The same time step is never accepted twice.
    let (again, _) = s.start_method(AGENT, id, "totp").await;
    let (status, body) = s.answer(AGENT, id, &again, &code).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "wrong_code");

    let (vid, sms) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &vid, &sms).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    let email = dave.contact(deskgate_core::ContactKind::Email).unwrap();
    assert_eq!(email.value, "dave.w@newmail.example");
    assert!(
        email.verified_at.is_none(),
        "unverified until it proves itself"
    );
    // The old address hears about it: a redirected contact cannot hide the change.
    assert!(
        s.outbox()
            .iter()
            .any(|m| m["kind"] == "recovery_notice" && m["to"] == "dave.whitfield@example.org")
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

/// The number the agent reads out, from the push verification's destination text.
fn push_number(case: &Value, vid: &str) -> String {
    let v = case["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == vid)
        .unwrap();
    let text = v["destination"].as_str().unwrap();
    text.split("number ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

async fn push_needs_the_number_the_agent_read_out(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-bob", "factor_rebind").await;
    let id = case["id"].as_str().unwrap();
    let (first, body) = s.start_method(AGENT, id, "push").await;
    let number = push_number(&body["case"], &first);
    assert_eq!(number.len(), 2);
    // Approving blindly, with another number, fails the push.
    let wrong = if number == "10" { "11" } else { "10" };
    let answer = s
        .service
        .push_response("u-bob", true, Some(wrong))
        .await
        .unwrap();
    assert_eq!(answer["counted"], false);
    let (_, case_now) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case_now["verifications"][0]["state"], "rejected");

    let (second, body) = s.start_method(AGENT, id, "push").await;
    let number = push_number(&body["case"], &second);
    let answer = s
        .service
        .push_response("u-bob", true, Some(&number))
        .await
        .unwrap();
    assert_eq!(answer["counted"], true);
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");

    // Fatigue defence: a third push in ten minutes is the last one.
    let other = s.open_case("jordan.blake", "u-bob", "password_reset").await;
    let other_id = other["id"].as_str().unwrap();
    s.start_method("jordan.blake", other_id, "push").await;
    assert_eq!(
        s.service.push_response("u-bob", false, None).await.unwrap()["counted"],
        false
    );
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{other_id}/verifications"),
            Some(&s.token("jordan.blake")),
            serde_json::json!({"method": "push"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "push_limit");
    s.finish().await;
}

async fn this_was_not_me_locks_the_account(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.security_contacts = vec!["soc@example.org".to_owned()]
    })
    .await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    s.pass_password_reset(AGENT, id).await;
    assert_eq!(s.execute(AGENT, id).await.0, StatusCode::OK);
    let notice = s.last_message("recovery_notice");
    let link = notice["link"].as_str().unwrap().to_owned();
    assert!(notice["body"].as_str().unwrap().contains(&link));
    // The link is not an attestation link.
    let token = link.rsplit_once("/not-me/").unwrap().1;
    let (status, _) = s.get(&format!("/attest/{token}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let page = s.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<form method=\"post\" action=\"/not-me\">")
    );

    let resp = s.post_link(&link, "").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert_eq!(dave.status, deskgate_core::SubjectStatus::Locked);
    assert!(dave.flagged);
    assert_eq!(s.last_message("security_alert")["to"], "soc@example.org");
    assert!(
        s.events_since(0)
            .await
            .contains(&"security.not_me_reported".to_owned())
    );
    let again = s.post_link(&link, "").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    // Any further request about Dave is critical.
    let (status, next) = s
        .post("/api/v1/cases", Some(&s.token("jordan.blake")), serde_json::json!({"subject": "u-dave", "action": "account_unlock", "channel": "phone"}))
        .await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::FORBIDDEN,
        "{next}"
    );
    if status == StatusCode::CREATED {
        assert_eq!(next["risk"]["level"], "critical");
    }
    s.finish().await;
}

on_both_backends!(
    this_was_not_me_locks_the_account,
    push_needs_the_number_the_agent_read_out,
    email_change_with_the_enrolled_app_and_the_phone,
    password_reset_happy_path,
    mfa_reset_with_code_and_manager_attestation,
    failing_audit_append_executes_nothing,
    fifty_concurrent_executes_consume_the_grant_once,
);
