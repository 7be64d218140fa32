//! Single-use secrets and send limits under concurrency (issue #11, findings 5 and 13), on both
//! databases: a recovery code, a TOTP time step and a temporary access pass each pass once however
//! many requests race for them, a used code never comes back, and concurrent sends to one contact
//! (codes, links, pushes) never exceed the per-contact limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;
#[path = "support/idv_vendor.rs"]
mod idv_vendor;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{Backend, TestServer};
use deskgate_store::{Change, Credential};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENTS: [&str; 2] = ["sam.rivera", "jordan.blake"];
/// The default per-contact send limit (three in ten minutes).
const SEND_LIMIT: usize = 3;

fn code_of(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// Opens `n` cases about `subject`, alternating agents; one the policy escalates (several cases
/// about one person raise risk) is taken over by a security officer. Returns (case id, who works it).
async fn open_cases(
    s: &TestServer,
    subject: &str,
    action: &str,
    n: usize,
) -> Vec<(String, String)> {
    let mut cases = Vec::new();
    for i in 0..n {
        let agent = AGENTS[i % AGENTS.len()];
        let case = s.open_case(agent, subject, action).await;
        let id = case["id"].as_str().unwrap().to_owned();
        if case["state"] == "escalated" {
            let (status, body) = s
                .post(
                    &format!("/api/v1/cases/{id}/resume"),
                    Some(&s.token("riley.chen")),
                    Value::Null,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            cases.push((id, "riley.chen".to_owned()));
        } else {
            cases.push((id, agent.to_owned()));
        }
    }
    cases
}

/// Starts a verification that sends nothing on each case; returns (case id, worker, verification id).
async fn start_on_each(
    s: &TestServer,
    cases: &[(String, String)],
    method: &str,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (id, worker) in cases {
        let (vid, _) = s.start_method(worker, id, method).await;
        out.push((id.clone(), worker.clone(), vid));
    }
    out
}

/// Answers `answers[i]` on `targets[i]`, all at once; returns each (status, body).
async fn answer_all(
    s: &Arc<TestServer>,
    targets: Vec<(String, String, String)>,
    answers: Vec<String>,
) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = targets
        .into_iter()
        .zip(answers)
        .map(|((id, worker, vid), code)| {
            let s = s.clone();
            tokio::spawn(async move { s.answer(&worker, &id, &vid, &code).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Starts `method` on each case, all at once; returns each (status, body).
async fn start_all(
    s: &Arc<TestServer>,
    cases: Vec<(String, String)>,
    method: &str,
) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = cases
        .into_iter()
        .map(|(id, worker)| {
            let s = s.clone();
            let method = method.to_owned();
            tokio::spawn(async move {
                s.post(
                    &format!("/api/v1/cases/{id}/verifications"),
                    Some(&s.token(&worker)),
                    json!({ "method": method }),
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn passed_events(s: &TestServer, method: &str) -> usize {
    let size = s.service.store().audit_size().await.unwrap();
    s.service
        .store()
        .audit_entries(0, size)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry().unwrap())
        .filter(|e| e["event"] == "verification.passed" && e["details"]["method"] == method)
        .count()
}

async fn finish(s: Arc<TestServer>) {
    s.assert_audit_chain_intact().await;
    if let Ok(s) = Arc::try_unwrap(s) {
        s.finish().await;
    }
}

/// Whether `code` is still accepted for `subject`, tried on a fresh case.
async fn recovery_code_works(s: &TestServer, subject: &str, code: &str) -> bool {
    let (id, worker) = open_cases(s, subject, "password_reset", 1).await.remove(0);
    let (vid, _) = s.start_method(&worker, &id, "recovery_code").await;
    let (status, body) = s.answer(&worker, &id, &vid, code).await;
    match status {
        StatusCode::OK => true,
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_eq!(code_of(&body), "wrong_code", "{body}");
            false
        }
        other => panic!("unexpected {other}: {body}"),
    }
}

async fn finding_5_recovery_code_single_use_under_50_way_concurrency(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let saved = s.recovery_codes("dave.whitfield@example.org");
    let cases = open_cases(&s, "u-dave", "password_reset", 10).await;
    let started = start_on_each(&s, &cases, "recovery_code").await;
    // 50 requests, five on each of ten cases, all reading back the same saved code.
    let targets: Vec<_> = (0..50)
        .map(|i| started[i % started.len()].clone())
        .collect();
    let answers = vec![saved[0].clone(); 50];
    let results = answer_all(&s, targets, answers).await;
    let ok = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    for (status, body) in &results {
        if *status != StatusCode::OK {
            assert!(
                matches!(
                    (status.as_u16(), code_of(body)),
                    (409, "conflict" | "verification_used" | "illegal_transition")
                        | (422, "wrong_code")
                ),
                "{status}: {body}"
            );
        }
    }
    assert_eq!(
        ok, 1,
        "one recovery code passes one verification: {results:?}"
    );
    assert_eq!(passed_events(&s, "recovery_code").await, 1);
    assert!(!recovery_code_works(&s, "u-dave", &saved[0]).await);
    assert!(
        recovery_code_works(&s, "u-dave", &saved[1]).await,
        "the other codes still work"
    );
    finish(s).await;
}

async fn finding_5_a_used_recovery_code_stays_used_when_others_are_used_concurrently(
    backend: Backend,
) {
    let s = Arc::new(TestServer::start(backend).await);
    let saved = s.recovery_codes("dave.whitfield@example.org");
    let cases = open_cases(&s, "u-dave", "password_reset", 8).await;
    let started = start_on_each(&s, &cases, "recovery_code").await;
    // Eight different codes of one subject, each on its own case, at once.
    let results = answer_all(&s, started, saved[..8].to_vec()).await;
    for (status, body) in &results {
        assert_eq!(
            *status,
            StatusCode::OK,
            "distinct codes do not contend: {body}"
        );
    }
    // Every one of them is spent: none came back through another case's write.
    for code in &saved[..8] {
        assert!(
            !recovery_code_works(&s, "u-dave", code).await,
            "a used code came back"
        );
    }
    assert!(recovery_code_works(&s, "u-dave", &saved[8]).await);
    finish(s).await;
}

async fn finding_5_new_recovery_codes_invalidate_every_old_one(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let old = s.recovery_codes("dave.whitfield@example.org");
    let new = s
        .service
        .issue_recovery_codes(
            "u-dave",
            &deskgate_store::system_actor(),
            &deskgate_app::service::Provenance::held("u-dave", "test enrolment"),
        )
        .await
        .unwrap();
    assert_ne!(old, new);
    assert!(!recovery_code_works(&s, "u-dave", &old[0]).await);
    assert!(recovery_code_works(&s, "u-dave", &new[0]).await);
    finish(s).await;
}

async fn finding_5_totp_step_passes_once_across_cases_under_50_way_concurrency(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let cases = open_cases(&s, "u-dave", "password_reset", 25).await;
    let started = start_on_each(&s, &cases, "totp").await;
    let code = s.service.current_totp("u-dave").await.unwrap();
    let targets: Vec<_> = (0..50)
        .map(|i| started[i % started.len()].clone())
        .collect();
    let results = answer_all(&s, targets, vec![code; 50]).await;
    let ok = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    for (status, body) in &results {
        if *status != StatusCode::OK {
            assert!(
                matches!(
                    (status.as_u16(), code_of(body)),
                    (409, "conflict" | "verification_used" | "illegal_transition")
                        | (422, "wrong_code")
                ),
                "{status}: {body}"
            );
        }
    }
    assert_eq!(ok, 1, "one time step passes one verification: {results:?}");
    assert_eq!(passed_events(&s, "totp").await, 1);
    finish(s).await;
}

async fn finding_5_temporary_access_pass_redeemed_once_under_50_way_concurrency(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
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
                expires_at: Some(now + Duration::hours(1)),
                used_at: None,
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    let notices_before = s
        .outbox()
        .iter()
        .filter(|m| m["kind"] == "authenticator_notice")
        .count();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            let pass = pass.clone();
            tokio::spawn(async move {
                s.post(
                    "/api/v1/tap/redeem",
                    None,
                    json!({ "subject": "u-alice", "pass": pass, "authenticator": "totp" }),
                )
                .await
            })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok.push(body);
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(code_of(&body), "pass_refused");
        }
    }
    assert_eq!(ok.len(), 1, "one pass enrols one authenticator: {ok:?}");
    let events = s.events_since(0).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "temporary_access_pass.redeemed")
            .count(),
        1
    );
    // Alice has an email and a phone of record: one enrolment, one notice to each.
    let notices = s
        .outbox()
        .iter()
        .filter(|m| m["kind"] == "authenticator_notice")
        .count();
    assert_eq!(notices - notices_before, 2);
    let tap = s
        .service
        .store()
        .credential("u-alice", "temporary_access_pass")
        .await
        .unwrap()
        .unwrap();
    assert!(tap.used_at.is_some());
    finish(s).await;
}

/// Verification codes the outbox holds for `to`.
fn codes_to(s: &TestServer, to: &str) -> usize {
    s.outbox()
        .iter()
        .filter(|m| m["kind"] == "verification_code" && m["to"] == to)
        .count()
}

async fn finding_5_concurrent_sends_to_one_phone_deliver_at_most_the_limit(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let cases = open_cases(&s, "u-dave", "password_reset", 12).await;
    let results = start_all(&s, cases, "sms_code").await;
    let created = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::CREATED)
        .count();
    for (status, body) in &results {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(code_of(body), "too_many_sends");
        }
    }
    let delivered = codes_to(&s, "+1 555 010 0112");
    assert_eq!(delivered, SEND_LIMIT, "{results:?}");
    assert_eq!(created, SEND_LIMIT);
    finish(s).await;
}

async fn finding_5_push_fatigue_limit_holds_under_concurrency(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let cases = open_cases(&s, "u-bob", "password_reset", 12).await;
    let results = start_all(&s, cases, "push").await;
    let created = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::CREATED)
        .count();
    for (status, body) in &results {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(code_of(body), "push_limit");
        }
    }
    assert_eq!(created, SEND_LIMIT, "{results:?}");
    let started = s
        .events_since(0)
        .await
        .into_iter()
        .filter(|e| e == "verification.started")
        .count();
    assert_eq!(started, SEND_LIMIT);
    finish(s).await;
}

async fn finding_13_attestation_links_count_toward_the_send_limit(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    // Alice's and Dave's manager is Bob: every attestation link goes to Bob's mailbox.
    let cases = open_cases(&s, "u-dave", "password_reset", 2).await;
    for (id, worker) in &cases {
        s.request_attestation(worker, id).await;
    }
    let alice = open_cases(&s, "u-alice", "password_reset", 1).await;
    let (alice_case, alice_worker) = &alice[0];
    s.request_attestation(alice_worker, alice_case).await;
    let before = s.snapshot(Some(alice_case), "u-alice").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{alice_case}/verifications"),
            Some(&s.token(alice_worker)),
            json!({ "method": "manager_attestation" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code_of(&body), "too_many_sends");
    assert_eq!(s.snapshot(Some(alice_case), "u-alice").await, before);
    // The limit is Bob's mailbox's, whatever the message: a code to it is refused as well.
    let bob = open_cases(&s, "u-bob", "password_reset", 1).await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{}/verifications", bob[0].0),
            Some(&s.token(&bob[0].1)),
            json!({ "method": "email_code" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let links = s
        .outbox()
        .iter()
        .filter(|m| m["to"] == "bob.kramer@example.org")
        .filter(|m| m["kind"] == "attestation_link" || m["kind"] == "verification_code")
        .count();
    assert_eq!(links, SEND_LIMIT);
    finish(s).await;
}

async fn finding_13_identity_proofing_links_count_toward_the_send_limit(backend: Backend) {
    let vendor = idv_vendor::Vendor::start().await;
    let s = Arc::new(TestServer::start_with(backend, |c| vendor.configure(c, false, true)).await);
    let cases = open_cases(&s, "u-dave", "password_reset", 2).await;
    let results = start_all(&s, cases.clone(), "id_proofing").await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    s.send_code(&cases[0].1, &cases[0].0, "email_code").await;
    let (id, worker) = &cases[1];
    let before = s.snapshot(Some(id), "u-dave").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(worker)),
            json!({ "method": "id_proofing" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code_of(&body), "too_many_sends");
    assert_eq!(s.snapshot(Some(id), "u-dave").await, before);
    let to_dave = s
        .outbox()
        .iter()
        .filter(|m| m["to"] == "dave.whitfield@example.org")
        .filter(|m| m["kind"] == "idv_link" || m["kind"] == "verification_code")
        .count();
    assert_eq!(to_dave, SEND_LIMIT);
    finish(s).await;
}

on_both_backends!(
    finding_5_recovery_code_single_use_under_50_way_concurrency,
    finding_5_a_used_recovery_code_stays_used_when_others_are_used_concurrently,
    finding_5_new_recovery_codes_invalidate_every_old_one,
    finding_5_totp_step_passes_once_across_cases_under_50_way_concurrency,
    finding_5_temporary_access_pass_redeemed_once_under_50_way_concurrency,
    finding_5_concurrent_sends_to_one_phone_deliver_at_most_the_limit,
    finding_5_push_fatigue_limit_holds_under_concurrency,
    finding_13_attestation_links_count_toward_the_send_limit,
    finding_13_identity_proofing_links_count_toward_the_send_limit,
);
