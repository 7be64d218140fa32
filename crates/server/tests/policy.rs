//! The policy bundle as the final gate over HTTP: guardrails refuse with the policies that
//! decided, probation escalates to a security officer, staff approvals are bound and counted
//! once, every decision is pinned to the bundle digest, and a broken bundle never replaces a
//! working one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";

async fn open(s: &TestServer, who: &str, subject: &str, action: &str) -> (StatusCode, Value) {
    s.post(
        "/api/v1/cases",
        Some(&s.token(who)),
        json!({"subject": subject, "action": action, "channel": "phone"}),
    )
    .await
}

async fn security_tier_is_for_security_officers_only(backend: Backend) {
    let s = TestServer::start(backend).await;
    let before = s.service.store().audit_size().await.unwrap();
    let (status, body) = open(&s, AGENT, "u-hannah", "password_reset").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "policy_denied");
    let ids = body["error"]["details"]["policy_ids"].as_array().unwrap();
    assert!(
        ids.contains(&json!("guardrail-security-tier-officers-only")),
        "{ids:?}"
    );
    let digest = s.service.bundle().digest().to_owned();
    assert_eq!(body["error"]["details"]["bundle_digest"], digest);
    // The refusal is on the record, pinned to the bundle.
    let size = s.service.store().audit_size().await.unwrap();
    assert_eq!(s.events_since(before).await, ["case.refused"]);
    let refused = s
        .service
        .store()
        .audit_entries(size - 1, size)
        .await
        .unwrap();
    assert_eq!(refused[0].entry().unwrap()["policy_digest"], digest);

    let (status, body) = open(&s, "riley.chen", "u-hannah", "password_reset").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["decisions"][0]["outcome"], "allow");
    assert_eq!(body["decisions"][0]["bundle_digest"], digest);
    s.finish().await;
}

async fn privileged_reset_needs_a_supervisor_approval_bound_to_the_case(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (status, case) = open(&s, AGENT, "u-priya", "password_reset").await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    assert_eq!(case["requirements"]["approvals"], json!(["supervisor"]));
    assert_eq!(case["requirements"]["cooling_off_minutes"], 30);
    assert!(
        case["playbook"]
            .as_array()
            .unwrap()
            .iter()
            .any(|st| st["kind"] == "approval")
    );

    // The supervisor's queue shows it; the agent has no queue.
    let (status, queue) = s
        .get("/api/v1/approvals?mine=true", Some(&s.token("morgan.lee")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id)
    );
    let (status, _) = s.get("/api/v1/approvals", Some(&s.token(AGENT))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let path = format!("/api/v1/cases/{id}/approvals");
    let approve = json!({"decision": "confirm", "reason": "called Priya back on her desk phone"});
    // An agent is no approver.
    let (status, _) = s
        .post(&path, Some(&s.token("jordan.blake")), approve.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .post(&path, Some(&s.token("morgan.lee")), approve.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let approval = &body["approvals"][0];
    assert_eq!(approval["role"], "supervisor");
    assert_eq!(approval["case_digest"].as_str().unwrap().len(), 64);
    assert_eq!(body["progress"]["approvals_missing"], json!([]));
    // One person's approval counts once.
    let (status, body) = s
        .post(&path, Some(&s.token("morgan.lee")), approve.clone())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "already_approved");
    let (_, queue) = s
        .get("/api/v1/approvals?mine=true", Some(&s.token("morgan.lee")))
        .await;
    assert!(
        !queue["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id)
    );
    let events = s.events_since(0).await;
    assert!(events.contains(&"approval.recorded".to_owned()));
    // Approval alone is not evidence: nothing can execute yet.
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    s.finish().await;
}

async fn nobody_approves_their_own_case(backend: Backend) {
    let s = TestServer::start(backend).await;
    // A supervisor opens a case; they cannot also approve it.
    let (status, case) = open(&s, "morgan.lee", "u-tomas", "password_reset").await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/approvals"),
            Some(&s.token("morgan.lee")),
            json!({"decision": "confirm", "reason": "mine"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, after) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token("morgan.lee")))
        .await;
    assert_eq!(after["approvals"], json!([]));
    s.finish().await;
}

async fn probation_escalates_to_a_security_officer(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    s.pass_password_reset(AGENT, id).await;
    assert_eq!(s.execute(AGENT, id).await.0, StatusCode::OK);
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert!(
        dave.probation_until.is_some(),
        "the subject is on probation after execution"
    );

    let (status, case) = open(&s, "jordan.blake", "u-dave", "mfa_reset").await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["state"], "escalated");
    assert_eq!(case["decisions"][0]["outcome"], "escalate");
    let id = case["id"].as_str().unwrap();
    // The agent cannot work it; a security officer takes it over.
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token("jordan.blake")),
            json!({"method": "sms_code"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{id}/resume"),
            Some(&s.token("jordan.blake")),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/resume"),
            Some(&s.token("riley.chen")),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "verifying");
    assert_eq!(body["agent_id"], "st-riley");
    s.finish().await;
}

async fn a_broken_bundle_never_replaces_the_running_one(backend: Backend) {
    let bundle_dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default");
    deskgate_testkit::bundle::copy_dir(std::path::Path::new(src), bundle_dir.path());
    let dir = bundle_dir.path().to_path_buf();
    let s = TestServer::start_with(backend, |c| c.policy_dir = Some(dir)).await;
    let old = s.service.bundle().digest().to_owned();
    let admin = s.token("quinn.adams");

    let (status, _) = s
        .post(
            "/api/v1/admin/policy/reload",
            Some(&s.token("morgan.lee")),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let guardrails = bundle_dir.path().join("policies/guardrails.cedar");
    let text = std::fs::read_to_string(&guardrails).unwrap();
    std::fs::write(
        &guardrails,
        format!("{text}\nforbid (principal, action, resource) when {{ nonsense "),
    )
    .unwrap();
    let (status, body) = s
        .post("/api/v1/admin/policy/reload", Some(&admin), Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "policy_invalid");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("guardrails.cedar"),
        "{body}"
    );
    assert_eq!(s.service.bundle().digest(), old, "the running bundle stays");

    // A valid change is taken, and the log names both digests.
    std::fs::write(&guardrails, format!("{text}\n// reviewed\n")).unwrap();
    let (status, body) = s
        .post("/api/v1/admin/policy/reload", Some(&admin), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["old_digest"], old);
    assert_ne!(body["new_digest"], old);
    assert_eq!(
        s.service.bundle().digest(),
        body["new_digest"].as_str().unwrap()
    );
    let events = s.events_since(0).await;
    assert!(
        events.contains(&"policy.reload_refused".to_owned())
            && events.contains(&"policy.reloaded".to_owned())
    );
    s.finish().await;
}

async fn break_glass_needs_two_security_officers_and_a_delay(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.security_contacts = vec!["soc@example.org".to_owned()]
    })
    .await;
    let (status, case) = open(&s, AGENT, "u-priya", "password_reset").await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    let path = format!("/api/v1/cases/{id}/break-glass");
    let why = json!({"reason": "Priya's devices were seized in an incident; no proofing possible tonight"});
    let (status, _) = s.post(&path, Some(&s.token(AGENT)), why.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents cannot break glass");

    let (status, body) = s
        .post(&path, Some(&s.token("riley.chen")), why.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["break_glass"], true);
    assert_eq!(
        body["requirements"]["approvals"],
        json!(["security_officer", "security_officer"])
    );
    assert_eq!(s.last_message("break_glass_alert")["to"], "soc@example.org");
    // One officer alone is refused.
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let approvals = format!("/api/v1/cases/{id}/approvals");
    let ok =
        json!({"decision": "confirm", "reason": "second officer reviewed the incident ticket"});
    let (status, _) = s
        .post(&approvals, Some(&s.token("riley.chen")), ok.clone())
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the same officer twice");
    let (status, body) = s.post(&approvals, Some(&s.token("casey.nguyen")), ok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    // The cooling-off runs before the grant is usable.
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "cooling_off");
    s.clock.advance(chrono::Duration::minutes(16));
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, report) = s
        .get("/api/v1/reports/break-glass", Some(&s.token("avery.stone")))
        .await;
    assert!(
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id)
    );
    let (status, _) = s
        .get("/api/v1/reports/break-glass", Some(&s.token(AGENT)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.finish().await;
}

on_both_backends!(
    break_glass_needs_two_security_officers_and_a_delay,
    security_tier_is_for_security_officers_only,
    privileged_reset_needs_a_supervisor_approval_bound_to_the_case,
    nobody_approves_their_own_case,
    probation_escalates_to_a_security_officer,
    a_broken_bundle_never_replaces_the_running_one,
);
