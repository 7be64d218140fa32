//! Repeated failed verifications over HTTP: five wrong codes lock the SMS code for good on the
//! case (no new code goes out, so no five fresh guesses), escalate the case to a security officer
//! with its risk raised, alert the security contacts and put it on the record; the officer can
//! resume with another method or deny.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

const AGENT: &str = "sam.rivera";
const OFFICER: &str = "riley.chen";
const SOC: &str = "soc@example.org";

async fn five_wrong_codes_lock_the_method_and_escalate_the_case(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.security_contacts = vec![SOC.to_owned()]).await;
    let case = s.open_case(AGENT, "u-dave", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let risk_before = case["risk"]["level"].as_str().unwrap().to_owned();
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let (status, body) = s.answer(AGENT, id, &vid, wrong).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["details"]["attempts_left"], left);
        assert_eq!(body["error"]["details"]["escalated"], false);
    }
    let audit_before = s.service.store().audit_size().await.unwrap();
    let (status, body) = s.answer(AGENT, id, &vid, wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["locked"], true);
    assert_eq!(body["error"]["details"]["escalated"], true, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("propose a denial"),
        "{body}"
    );
    assert_eq!(
        s.events_since(audit_before).await,
        ["verification.locked", "case.escalated_after_failures"]
    );
    let alert = s.last_message("failed_verifications_alert");
    assert_eq!(alert["to"], SOC);
    assert_eq!(alert["case_id"], id);

    let (_, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(view["state"], "escalated");
    assert_ne!(view["risk"]["level"], risk_before, "the risk is raised");
    assert!(
        view["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "failed_verifications"),
        "{view}"
    );

    // The agent can send nothing more; the officer resumes and the SMS code stays used up:
    // refused before any code leaves.
    let sent_before = s.outbox().len();
    let start = format!("/api/v1/cases/{id}/verifications");
    let (status, _) = s
        .post(
            &start,
            Some(&s.token(AGENT)),
            json!({"method": "email_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/resume"),
            Some(&s.token(OFFICER)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post(
            &start,
            Some(&s.token(OFFICER)),
            json!({"method": "sms_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "method_exhausted");
    assert_eq!(s.outbox().len(), sent_before, "no code went out");
    // Another method still works for the officer.
    let (status, body) = s
        .post(
            &start,
            Some(&s.token(OFFICER)),
            json!({"method": "email_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn wrong_codes_on_superseded_codes_still_add_up(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    // Four wrong answers, a fresh code, one more wrong answer: five on the case.
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        s.answer(AGENT, id, &vid, wrong).await;
    }
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (_, body) = s.answer(AGENT, id, &vid, wrong).await;
    assert_eq!(body["error"]["details"]["escalated"], true, "{body}");
    s.finish().await;
}

on_both_backends!(
    five_wrong_codes_lock_the_method_and_escalate_the_case,
    wrong_codes_on_superseded_codes_still_add_up,
);
