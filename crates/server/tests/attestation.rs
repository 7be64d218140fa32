//! The manager's attestation link: before it shows anything about the case, the manager proves
//! who they are with a code sent to their own phone of record, and only that sign-in lets them
//! decide. On both databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use chrono::Duration;
use common::{Backend, TestServer};
use deskgate_core::ContactKind;
use deskgate_store::Change;
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";

fn code_of(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// An MFA reset of Alice with the attestation link sent to her manager Bob.
async fn awaiting_bob(s: &TestServer) -> (String, String) {
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = s.request_attestation(AGENT, &id).await;
    (id, link)
}

async fn post_code(s: &TestServer, link: &str, code: &str) -> (StatusCode, Value) {
    s.send(s.post_link(link, "/sign-in").json(&json!({ "code": code })))
        .await
}

async fn the_link_alone_shows_nothing_and_decides_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, link) = awaiting_bob(&s).await;
    let before = s.snapshot(Some(&id), "u-alice").await;
    let (status, body) = s.send(s.client.get(&link)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "manager_sign_in_required");
    // Where the code would go, masked; nothing about the person or the request.
    assert_eq!(body["error"]["details"]["code_goes_to"], "+1 *** *** 10");
    for leak in ["Alice", "u-alice", "mfa_reset", AGENT] {
        assert!(!body.to_string().contains(leak), "{leak} in {body}");
    }
    for session in [None, Some("made-up-session")] {
        let (status, body) = s.attest_with_session(&link, None, session, "confirm").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(code_of(&body), "manager_sign_in_required");
    }
    // Even Bob's own staff credentials are not a substitute for the sign-in... he has none, but
    // a valid staff token of someone else is refused as not the manager.
    let (status, body) = s
        .attest_with_session(&link, Some(&s.token("morgan.lee")), None, "confirm")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code_of(&body), "not_the_manager");
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    s.finish().await;
}

async fn the_decision_records_the_sign_in_and_the_session_dies_with_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, link) = awaiting_bob(&s).await;
    let from = s.service.store().audit_size().await.unwrap();
    let session = s.attestation_sign_in(&link).await.unwrap();
    let (status, body) = s
        .attest_with_session(&link, None, Some(&session), "confirm")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = s.events_since(from).await;
    assert_eq!(
        events,
        [
            "attestation.code_sent",
            "attestation.signed_in",
            "attestation.confirmed"
        ]
    );
    // The session was single use, like the link.
    let (status, body) = s
        .attest_with_session(&link, None, Some(&session), "reject")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&body), "link_used");
    let case = s.service.store().case(&id).await.unwrap().unwrap().case;
    let check = case
        .verifications
        .iter()
        .find_map(|v| v.respondent_check.clone())
        .unwrap();
    assert!(check.passed_at.is_some());
    assert_eq!(check.code_hash, None, "a used code is forgotten");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn wrong_sign_in_codes_lock_the_attestation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, link) = awaiting_bob(&s).await;
    let (status, _) = s.send(s.post_link(&link, "/code")).await;
    assert_eq!(status, StatusCode::OK);
    let code = s.last_message("attestation_sign_in_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = format!("{:06}", (code.parse::<u64>().unwrap() + 1) % 1_000_000);
    for left in (1..5).rev() {
        let (status, body) = post_code(&s, &link, &wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(code_of(&body), "wrong_code");
        assert_eq!(body["error"]["details"]["attempts_left"], left);
    }
    let (status, body) = post_code(&s, &link, &wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code_of(&body), "verification_locked");
    // The right code is useless now, and the attestation cannot count.
    let (status, _) = post_code(&s, &link, &code).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let attestation = view["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["method"] == "manager_attestation")
        .unwrap();
    assert_eq!(attestation["state"], "locked");
    assert!(
        s.events_since(0)
            .await
            .contains(&"attestation.locked".to_owned())
    );
    s.finish().await;
}

async fn sign_in_codes_expire_and_are_bounded_per_link(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, link) = awaiting_bob(&s).await;
    let (status, _) = s.send(s.post_link(&link, "/code")).await;
    assert_eq!(status, StatusCode::OK);
    let code = s.last_message("attestation_sign_in_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(Duration::minutes(11));
    let (status, body) = post_code(&s, &link, &code).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code_of(&body), "sign_in_code_expired");
    for _ in 0..2 {
        let (status, body) = s.send(s.post_link(&link, "/code")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = s.send(s.post_link(&link, "/code")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // The newest code still signs in.
    let code = s.last_message("attestation_sign_in_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = post_code(&s, &link, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["session"].as_str().unwrap().len() >= 32);
    s.finish().await;
}

async fn a_session_works_only_for_its_own_link(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, first) = awaiting_bob(&s).await;
    let session = s.attestation_sign_in(&first).await.unwrap();
    let id = s
        .open_case("jordan.blake", "u-alice", "password_reset")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = s.request_attestation("jordan.blake", &id).await;
    let (status, body) = s
        .attest_with_session(&second, None, Some(&session), "confirm")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code_of(&body), "manager_sign_in_required");
    s.finish().await;
}

async fn a_manager_whose_phone_changed_recently_cannot_sign_in(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, link) = awaiting_bob(&s).await;
    // Bob's phone of record is replaced after the link went out (a SIM swap, say).
    let mut bob = s.service.store().subject("u-bob").await.unwrap().unwrap();
    let now = s.service.now();
    for c in bob
        .contacts
        .iter_mut()
        .filter(|c| c.kind == ContactKind::Phone)
    {
        c.value = "+1 555 999 0000".into();
        c.changed_at = now;
    }
    s.service
        .store()
        .commit(Change {
            subjects: vec![bob],
            ..Change::default()
        })
        .await
        .unwrap();
    let before = s.snapshot(Some(&id), "u-alice").await;
    let sent = s.outbox().len();
    let (status, body) = s.send(s.post_link(&link, "/code")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code_of(&body), "manager_cannot_authenticate");
    assert_eq!(s.outbox().len(), sent, "nothing sent to the new number");
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);
    // And a new attestation cannot even be started toward him.
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "manager_attestation" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code_of(&body), "manager_cannot_authenticate");
    s.finish().await;
}

on_both_backends!(
    the_link_alone_shows_nothing_and_decides_nothing,
    the_decision_records_the_sign_in_and_the_session_dies_with_it,
    wrong_sign_in_codes_lock_the_attestation,
    sign_in_codes_expire_and_are_bounded_per_link,
    a_session_works_only_for_its_own_link,
    a_manager_whose_phone_changed_recently_cannot_sign_in,
);
