//! Every refusal the foundation promises, on both databases: the right status and error code, and
//! the case, the directory and the audit trail unchanged except for the entry the failure is due.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use chrono::Duration;
use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";

fn code_of(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// A different valid code than `code`.
fn wrong(code: &str) -> String {
    let n: u64 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Dave's password reset, approved on an email code and an SMS code (two classes since issue 13).
async fn approved_password_reset(s: &TestServer) -> String {
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let body = s.pass_password_reset(AGENT, &id).await;
    assert_eq!(body["state"], "approved");
    id
}

async fn wrong_code(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-dave", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "email_code").await;
    let before = s.snapshot(Some(&id), "u-dave").await;
    let (status, body) = s.answer(AGENT, &id, &vid, &wrong(&code)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code_of(&body), "wrong_code");
    assert_eq!(body["error"]["details"]["attempts_left"], 4);
    let after = s.snapshot(Some(&id), "u-dave").await;
    assert_eq!(after.subject, before.subject);
    assert_eq!(after.audit_size, before.audit_size + 1);
    assert_eq!(
        s.events_since(before.audit_size).await,
        ["verification.failed"]
    );
    let case = after.case.unwrap();
    assert_eq!(case["state"], "verifying");
    assert_eq!(case["verifications"][0]["attempts"], 1);
    assert_eq!(case["verifications"][0]["state"], "pending");
    // The right code still works afterwards.
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn five_wrong_codes_lock(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-dave", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "email_code").await;
    for left in (0..5).rev() {
        let (status, body) = s.answer(AGENT, &id, &vid, &wrong(&code)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["attempts_left"], left);
    }
    // Five failures on one case also escalate it (tests/failed_verifications.rs).
    let events = s.events_since(0).await;
    assert_eq!(
        events[events.len() - 2..],
        ["verification.locked", "case.escalated_after_failures"]
    );
    let before = s.snapshot(Some(&id), "u-dave").await;
    let (status, body) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "illegal_transition");
    assert_eq!(
        s.snapshot(Some(&id), "u-dave").await,
        before,
        "a locked code never passes"
    );
    s.finish().await;
}

async fn replayed_code(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);
    let before = s.snapshot(Some(&id), "u-alice").await;
    let (status, body) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "verification_used");
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    // A second code to the same phone adds no class.
    let (vid2, code2) = s.send_code(AGENT, &id, "voice_code").await;
    let (status, body) = s.answer(AGENT, &id, &vid2, &code2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["progress"]["counted_classes"],
        json!(["phone_of_record"])
    );
    assert_eq!(body["state"], "verifying");
    s.finish().await;
}

async fn expired_code(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    s.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let before = s.snapshot(Some(&id), "u-alice").await;
    let (status, body) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "verification_expired");
    let after = s.snapshot(Some(&id), "u-alice").await;
    assert_eq!(after.subject, before.subject);
    assert_eq!(
        s.events_since(before.audit_size).await,
        ["verification.expired"]
    );
    assert_eq!(after.case.unwrap()["verifications"][0]["state"], "expired");
    let (status, _) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::CONFLICT);
    s.finish().await;
}

async fn execute_before_requirements_met(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);
    let before = s.snapshot(Some(&id), "u-alice").await;
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code_of(&body), "requirements_not_met");
    assert_eq!(
        body["error"]["details"]["missing_any_of"],
        json!([["device_of_record", "government_id", "recovery_code"]]),
        "an MFA reset needs a factor an attacker is unlikely to hold"
    );
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    s.finish().await;
}

async fn grant_reused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = approved_password_reset(&s).await;
    assert_eq!(s.execute(AGENT, &id).await.0, StatusCode::OK);
    let before = s.snapshot(Some(&id), "u-dave").await;
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "grant_consumed");
    assert_eq!(s.snapshot(Some(&id), "u-dave").await, before);
    s.finish().await;
}

async fn grant_expires(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = approved_password_reset(&s).await;
    s.clock
        .advance(Duration::minutes(15) + Duration::seconds(1));
    let before = s.snapshot(Some(&id), "u-dave").await;
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "grant_expired");
    let after = s.snapshot(Some(&id), "u-dave").await;
    assert_eq!(after.subject, before.subject, "nothing executed");
    assert_eq!(after.case.unwrap()["state"], "expired");
    assert_eq!(s.events_since(before.audit_size).await, ["grant.expired"]);
    s.finish().await;
}

async fn another_agent_cannot_execute(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = approved_password_reset(&s).await;
    let before = s.snapshot(Some(&id), "u-dave").await;
    let (status, body) = s.execute("jordan.blake", &id).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code_of(&body), "forbidden");
    // A supervisor oversees the case but the grant names the agent.
    let (status, body) = s.execute("morgan.lee", &id).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code_of(&body), "not_grant_holder");
    assert_eq!(s.snapshot(Some(&id), "u-dave").await, before);
    s.finish().await;
}

async fn attestation_link_reused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = s.request_attestation(AGENT, &id).await;
    assert_eq!(s.attest(&link, None, "confirm").await.0, StatusCode::OK);
    let before = s.snapshot(Some(&id), "u-alice").await;
    for decision in ["confirm", "reject"] {
        let (status, body) = s.attest(&link, None, decision).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(code_of(&body), "link_used");
    }
    let (status, _) = s.get(&link.replace(&s.base, ""), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    s.finish().await;
}

async fn attestation_by_someone_other_than_the_manager(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = s.request_attestation(AGENT, &id).await;
    let session = s.attestation_sign_in(&link).await.unwrap();
    let before = s.snapshot(Some(&id), "u-alice").await;
    for who in [AGENT, "morgan.lee", "riley.chen"] {
        let (status, body) = s
            .attest_with_session(&link, Some(&s.token(who)), Some(&session), "confirm")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
        assert_eq!(code_of(&body), "not_the_manager");
    }
    let (status, body) = s
        .attest_with_session(&link, Some("not-a-token"), Some(&session), "confirm")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "unauthenticated");
    let (status, _) = s
        .attest(&format!("{}/attest/forged-token", s.base), None, "confirm")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    // The manager's own rejection denies the case.
    let (status, body) = s
        .attest_with_session(&link, None, Some(&session), "reject")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["case_state"], "denied");
    s.finish().await;
}

async fn agent_cannot_open_case_about_themselves_or_their_manager(backend: Backend) {
    let s = TestServer::start(backend).await;
    let before = s.snapshot(None, "u-sam").await;
    for subject in ["u-sam", "u-pat"] {
        let (status, body) = s
            .post(
                "/api/v1/cases",
                Some(&s.token(AGENT)),
                json!({"subject": subject, "action": "mfa_reset", "channel": "phone"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{subject}");
        assert_eq!(code_of(&body), "self_service_forbidden");
    }
    // Nothing changed but the record of the two refusals (issue #11, finding 11).
    let after = s.snapshot(None, "u-sam").await;
    assert_eq!(after.subject, before.subject);
    assert_eq!(after.outbox_len, before.outbox_len);
    assert_eq!(
        s.events_since(before.audit_size).await,
        ["case.refused", "case.refused"]
    );
    let (_, list) = s.get("/api/v1/cases", Some(&s.token("morgan.lee"))).await;
    assert_eq!(list["cases"], json!([]));
    s.finish().await;
}

async fn tokens_without_the_role(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = approved_password_reset(&s).await;
    let before = s.snapshot(Some(&id), "u-dave").await;
    let open = json!({"subject": "u-carol", "action": "password_reset", "channel": "phone"});
    for who in ["avery.stone", "quinn.adams"] {
        let (status, body) = s
            .post("/api/v1/cases", Some(&s.token(who)), open.clone())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} opens");
        assert_eq!(code_of(&body), "forbidden");
        let (status, _) = s.execute(who, &id).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} executes");
        let (status, _) = s.get("/api/v1/subjects?q=alice", Some(&s.token(who))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} searches");
    }
    let (status, _) = s
        .get(
            &format!("/api/v1/cases/{id}"),
            Some(&s.token("quinn.adams")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins do not read cases");
    let (status, _) = s
        .get(
            &format!("/api/v1/cases/{id}"),
            Some(&s.token("avery.stone")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "auditors read cases");
    let (status, _) = s
        .get(
            &format!("/api/v1/cases/{id}"),
            Some(&s.token("jordan.blake")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "agents read only their own cases"
    );
    // No token, a wrong token.
    let resp = s
        .client
        .post(format!("{}/api/v1/cases", s.base))
        .json(&open)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
    let (status, body) = s.post("/api/v1/cases", Some("wrong"), open.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "unauthenticated");
    assert_eq!(s.snapshot(Some(&id), "u-dave").await, before);
    s.finish().await;
}

async fn unknown_and_terminated_subjects(backend: Backend) {
    let s = TestServer::start(backend).await;
    let before = s.snapshot(None, "u-hank").await;
    let cases = [
        (
            "u-nobody",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_subject",
        ),
        (
            "u-hank",
            StatusCode::UNPROCESSABLE_ENTITY,
            "subject_not_recoverable",
        ),
    ];
    for (subject, status_want, code_want) in cases {
        let (status, body) = s
            .post(
                "/api/v1/cases",
                Some(&s.token(AGENT)),
                json!({"subject": subject, "action": "password_reset", "channel": "phone"}),
            )
            .await;
        assert_eq!(status, status_want, "{subject}");
        assert_eq!(code_of(&body), code_want);
    }
    // An unknown subject is refused before any decision; the terminated one is on the record.
    let after = s.snapshot(None, "u-hank").await;
    assert_eq!(after.subject, before.subject);
    assert_eq!(after.outbox_len, before.outbox_len);
    assert_eq!(s.events_since(before.audit_size).await, ["case.refused"]);
    s.finish().await;
}

async fn bad_input_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = s.snapshot(Some(&id), "u-alice").await;
    let t = s.token(AGENT);
    let verifications = format!("/api/v1/cases/{id}/verifications");
    let big = format!(
        "{{\"method\":\"sms_code\",\"x\":\"{}\"}}",
        "a".repeat(200_000)
    );
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("/api/v1/cases", b"{\"subject\": \"u-alice\",".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        (&verifications, b"not json".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("/api/v1/cases", br#"{"subject":"u-alice","action":"mfa_reset","channel":"phone","admin":true}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (&verifications, br#"{"method":"sms_code","to":"+1 555 666 7777"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ("/api/v1/cases", br#"{"subject":"u-alice","action":"steal","channel":"phone"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ("/api/v1/cases", br#"{"subject":"u-alice","action":"mfa_reset","channel":"phone","caller_number":"call me"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ("/api/v1/cases", br#"{"subject":"u-alice","action":"email_change","channel":"phone","new_contact":"nope"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (&verifications, big.into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        (&verifications, br#"{"method":"knowledge"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "method_never_counts"),
    ];
    for (path, body, want_status, want_code) in cases {
        if want_status == StatusCode::PAYLOAD_TOO_LARGE {
            // The server refuses as soon as it sees the declared length and may close the
            // connection while the client still writes the body; the client then sees a broken
            // pipe instead of the 413. Either way nothing was read or changed (the snapshot below).
            // Its own client, so the connection the server closes is never reused by the next
            // request (which would then fail with a broken pipe of its own).
            let sent = reqwest::Client::new()
                .post(format!("{}{path}", s.base))
                .bearer_auth(&t)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(resp) => {
                    assert_eq!(resp.status(), want_status, "{path}");
                    let resp: Value = resp.json().await.unwrap();
                    assert_eq!(code_of(&resp), want_code, "{path}");
                }
                Err(e) => assert!(e.is_request(), "{path}: {e}"),
            }
            continue;
        }
        let (status, resp) = s.post_raw(path, Some(&t), body).await;
        assert_eq!(status, want_status, "{path}: {resp}");
        assert_eq!(code_of(&resp), want_code, "{path}");
    }
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/deny"),
            Some(&t),
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code_of(&body), "invalid_request");
    let (status, _) = s.get("/api/v1/cases?state=bogus", Some(&t)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s.get("/api/v1/cases/c-missing", Some(&t)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    s.finish().await;
}

async fn recently_changed_phone_cannot_carry_a_code(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-frank", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let reasons: Vec<&str> = case["risk"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"contact_changed_recently"), "{reasons:?}");
    let offered: Vec<&str> = case["playbook"][0]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        !offered.contains(&"sms_code"),
        "a fresh phone is not offered: {offered:?}"
    );
    let before = s.snapshot(Some(id), "u-frank").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({"method": "sms_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code_of(&body), "contact_not_trusted");
    assert_eq!(
        s.snapshot(Some(id), "u-frank").await,
        before,
        "no code sent to a phone changed 3 days ago"
    );
    s.finish().await;
}

async fn deny_and_cancel_end_the_case(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.open_case(AGENT, "u-dave", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.open_case(AGENT, "u-carol", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{a}/deny"),
            Some(&s.token("riley.chen")),
            json!({"reason": "caller could not answer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "denied");
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{b}/cancel"),
            Some(&s.token(AGENT)),
            json!({"reason": "caller hung up"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "cancelled");
    let before = s.snapshot(Some(&a), "u-dave").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{a}/verifications"),
            Some(&s.token(AGENT)),
            json!({"method": "email_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "illegal_transition");
    assert_eq!(s.snapshot(Some(&a), "u-dave").await, before);
    let (_, list) = s
        .get(
            "/api/v1/cases?state=denied&mine=true",
            Some(&s.token(AGENT)),
        )
        .await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    let (_, audit) = s
        .get(
            &format!("/api/v1/cases/{a}/audit"),
            Some(&s.token("avery.stone")),
        )
        .await;
    let events: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["case.opened", "case.denied"]);
    s.finish().await;
}

async fn subject_search_masks_contacts(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (status, body) = s
        .get("/api/v1/subjects?q=ALICE", Some(&s.token(AGENT)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let found = body["subjects"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], "u-alice");
    assert_eq!(found[0]["manager"], "u-bob");
    let text = body.to_string();
    assert!(text.contains("+1 *** *** 42"));
    assert!(
        !text.contains("555 010 0142") && !text.contains("alice.jensen@"),
        "{text}"
    );
    let (_, by_email) = s
        .get(
            "/api/v1/subjects?q=priya.natarajan@example",
            Some(&s.token(AGENT)),
        )
        .await;
    assert_eq!(by_email["subjects"][0]["tier"], "privileged");
    let (_, wildcard) = s
        .get("/api/v1/subjects?q=%25%25", Some(&s.token(AGENT)))
        .await;
    assert_eq!(
        wildcard["subjects"],
        json!([]),
        "LIKE wildcards are literal"
    );
    let (status, _) = s.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    s.finish().await;
}

async fn at_most_three_codes_per_contact_in_ten_minutes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.open_case(AGENT, "u-dave", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s
        .open_case("jordan.blake", "u-dave", "password_reset")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        s.send_code(AGENT, &a, "email_code").await;
    }
    // The limit is per contact, across cases and agents.
    s.send_code("jordan.blake", &b, "email_code").await;
    let before = s.snapshot(Some(&b), "u-dave").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{b}/verifications"),
            Some(&s.token("jordan.blake")),
            json!({"method": "email_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code_of(&body), "too_many_sends");
    assert_eq!(
        s.snapshot(Some(&b), "u-dave").await,
        before,
        "nothing sent, nothing recorded"
    );
    // Another contact of record is not affected, and the window passes.
    s.send_code("jordan.blake", &b, "sms_code").await;
    s.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    s.send_code("jordan.blake", &b, "email_code").await;
    s.finish().await;
}

async fn a_browser_following_the_link_gets_the_page(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = s.request_attestation(AGENT, &id).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(&link)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let token = link.rsplit_once("/attest/").unwrap().1;
    assert_eq!(
        resp.headers()["location"],
        format!("/console/attest/{token}").as_str()
    );
    // Something that cannot be a token we sent never reaches a Location header.
    let resp = no_redirects
        .get(format!("{}/attest/bad%0d%0aSet-Cookie:x=1", s.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    s.finish().await;
}

on_both_backends!(
    a_browser_following_the_link_gets_the_page,
    at_most_three_codes_per_contact_in_ten_minutes,
    wrong_code,
    five_wrong_codes_lock,
    replayed_code,
    expired_code,
    execute_before_requirements_met,
    grant_reused,
    grant_expires,
    another_agent_cannot_execute,
    attestation_link_reused,
    attestation_by_someone_other_than_the_manager,
    agent_cannot_open_case_about_themselves_or_their_manager,
    tokens_without_the_role,
    unknown_and_terminated_subjects,
    bad_input_changes_nothing,
    recently_changed_phone_cannot_carry_a_code,
    deny_and_cancel_end_the_case,
    subject_search_masks_contacts,
);
