//! Issue #11's findings about who may give their word on a case, on both databases: one person
//! counts once whatever accounts they hold (finding 3), nobody who worked a case vouches for or
//! approves it (finding 6), break-glass starts from no approvals and passes the bundle's
//! guardrails (findings 2 and 7), a factor bound minutes ago is no device of record (finding 10),
//! and refusals at open and at approval leave an audit entry naming why (finding 11).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use chrono::Duration;
use common::{Backend, TestServer};
use deskgate_audit::AuditEvent;
use deskgate_audit::event::{BreakGlassOpened, DirectorySynced, ManagerChange, SubjectChanges};
use deskgate_core::{Role, Staff};
use deskgate_store::{Change, NewAuditEntry, system_actor};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";

/// Rewrites a subject of the demo directory (a manager, a contact) the way a directory sync would.
async fn set_manager(s: &TestServer, subject_id: &str, manager: &str) {
    let mut subject = s
        .service
        .store()
        .subject(subject_id)
        .await
        .unwrap()
        .unwrap();
    let previous = subject.manager.replace(manager.to_owned());
    s.service
        .store()
        .commit(Change {
            subjects: vec![subject],
            audit: vec![NewAuditEntry::new(
                s.service.now(),
                system_actor(),
                None,
                AuditEvent::DirectorySynced(DirectorySynced {
                    subject_id: subject_id.to_owned(),
                    connector: "test".to_owned(),
                    backend_id: subject_id.to_owned(),
                    created: false,
                    changes: SubjectChanges {
                        manager: Some(ManagerChange {
                            from: previous,
                            to: manager.to_owned(),
                        }),
                        ..SubjectChanges::default()
                    },
                    evidence_withdrawn_for: None,
                    case_state: None,
                }),
            )],
            ..Change::default()
        })
        .await
        .unwrap();
}

async fn approve(s: &TestServer, who: &str, id: &str) -> (StatusCode, Value) {
    s.post(
        &format!("/api/v1/cases/{id}/approvals"),
        Some(&s.token(who)),
        json!({"decision": "confirm", "reason": "reviewed the ticket and the evidence"}),
    )
    .await
}

async fn break_glass(s: &TestServer, who: &str, id: &str) -> (StatusCode, Value) {
    s.post(
        &format!("/api/v1/cases/{id}/break-glass"),
        Some(&s.token(who)),
        json!({"reason": "the subject's devices were seized in an incident"}),
    )
    .await
}

/// The `details` of the newest audit entry named `event`.
async fn last_event(s: &TestServer, event: &str) -> Value {
    let store = &s.service.store();
    let size = store.audit_size().await.unwrap();
    store
        .audit_entries(0, size)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|r| r.entry().unwrap())
        .find(|e| e["event"] == event)
        .unwrap_or_else(|| panic!("no {event} entry"))
}

/// A privileged MFA reset (three classes, one of them the manager, and a supervisor's approval)
/// for a subject whose manager is Morgan, who also holds the supervisor account `morgan.lee`.
async fn privileged_case_managed_by_the_supervisor(s: &TestServer) -> String {
    set_manager(s, "u-priya", "u-morgan").await;
    let case = s.open_case(AGENT, "u-priya", "mfa_reset").await;
    assert_eq!(case["requirements"]["approvals"], json!(["supervisor"]));
    let id = case["id"].as_str().unwrap().to_owned();
    let (vid, _) = s.start_method(AGENT, &id, "totp").await;
    let code = s.service.current_totp("u-priya").await.unwrap();
    let (status, body) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    let (status, body) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn finding_3_a_manager_who_is_also_a_supervisor_counts_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = privileged_case_managed_by_the_supervisor(&s).await;
    let link = s.request_attestation(AGENT, &id).await;
    assert_eq!(
        s.last_message("attestation_link")["to"],
        "morgan.lee@example.org"
    );
    let (status, body) = s.attest(&link, None, "confirm").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["case_state"], "verifying",
        "the supervisor approval is missing"
    );
    let before = s.snapshot(Some(&id), "u-priya").await;
    // The same person, through their supervisor account, is refused as the second approver.
    let (status, body) = approve(&s, "morgan.lee", &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_approved");
    let after = s.snapshot(Some(&id), "u-priya").await;
    assert_eq!(after.case, before.case, "the case is unchanged");
    assert_eq!(
        s.events_since(before.audit_size).await,
        ["approval.refused"]
    );
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    s.finish().await;
}

async fn finding_3_a_supervisor_who_approved_cannot_then_attest_as_manager(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = privileged_case_managed_by_the_supervisor(&s).await;
    let (status, body) = approve(&s, "morgan.lee", &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Morgan's word is on the case already: they are no independent voucher.
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "manager_attestation" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "no_manager");
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["state"], "verifying");
    s.finish().await;
}

async fn finding_3_one_person_holds_one_staff_account_and_unlinked_staff_cannot_act(
    backend: Backend,
) {
    let s = TestServer::start(backend).await;
    let second = Staff {
        id: "st-morgan-2".to_owned(),
        name: "morgan.second".to_owned(),
        role: Role::SecurityOfficer,
        subject_id: Some("u-morgan".to_owned()),
        team: "soc".to_owned(),
        region: "us-east".to_owned(),
        shift: "day".to_owned(),
    };
    let refused = s.service.store().upsert_staff(&second).await;
    assert!(
        matches!(refused, Err(deskgate_store::StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert!(
        s.service
            .store()
            .staff("st-morgan-2")
            .await
            .unwrap()
            .is_none()
    );

    let unlinked = Staff {
        id: "st-temp".to_owned(),
        name: "temp.agent".to_owned(),
        role: Role::Supervisor,
        subject_id: None,
        team: "outsourced".to_owned(),
        region: "eu-west".to_owned(),
        shift: "night".to_owned(),
    };
    s.service.store().upsert_staff(&unlinked).await.unwrap();
    let token = s.service.create_token("temp.agent", "test").await.unwrap();
    let before = s.service.store().audit_size().await.unwrap();
    let (status, body) = s
        .post(
            "/api/v1/cases",
            Some(&token),
            json!({"subject": "u-dave", "action": "password_reset", "channel": "phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "no_linked_person");
    assert_eq!(s.events_since(before).await, ["case.refused"]);
    // Nor may they approve or work someone else's case.
    let case = s.open_case(AGENT, "u-priya", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/approvals"),
            Some(&token),
            json!({"decision": "confirm", "reason": "looks fine"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&token),
            json!({ "method": "email_code" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "no_linked_person");
    s.finish().await;
}

async fn finding_6_the_agent_never_vouches_as_manager_on_their_own_case(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Dave reports to Sam, the agent who opens the case.
    set_manager(&s, "u-dave", "u-sam").await;
    let case = s.open_case(AGENT, "u-dave", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let offered = case["playbook"].to_string();
    assert!(
        !offered.contains("manager_attestation"),
        "the attestation is not offered: {offered}"
    );
    let outbox = s.outbox().len();
    // A supervisor starting it sends nothing to the agent either.
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token("morgan.lee")),
            json!({ "method": "manager_attestation" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "no_manager");
    assert_eq!(s.outbox().len(), outbox, "no link went anywhere");
    s.finish().await;
}

async fn finding_6_staff_who_worked_the_case_cannot_approve_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-priya", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    // The supervisor works the case (sends a code), then tries to approve it.
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token("morgan.lee")),
            json!({ "method": "email_code" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = approve(&s, "morgan.lee", id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "same_person");
    assert_eq!(
        last_event(&s, "approval.refused").await["details"]["role"],
        "supervisor"
    );
    s.finish().await;
}

async fn finding_2_break_glass_starts_with_no_approvals(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    // A routine approval by one officer, given before anyone spoke of break-glass...
    let (status, body) = approve(&s, "riley.chen", id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // ...is not half of the break-glass a second officer opens.
    let (status, body) = break_glass(&s, "casey.nguyen", id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "verifying", "{body}");
    assert_eq!(
        body["progress"]["approvals_missing"],
        json!(["security_officer"])
    );
    s.clock.advance(Duration::minutes(20));
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "requirements_not_met");
    // The first officer approving the break-glass itself does count.
    let (status, body) = approve(&s, "riley.chen", id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    s.finish().await;
}

async fn finding_2_an_approval_stops_counting_when_the_requirements_change(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-priya", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let (status, body) = approve(&s, "morgan.lee", &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["progress"]["approvals_missing"], json!([]));
    // The stored case's requirements change under the approval (as break-glass or a new
    // playbook would): the approval was given on other terms and no longer counts.
    let stored = s.service.store().case(&id).await.unwrap().unwrap();
    let mut changed = stored.case.clone();
    changed.requirements.min_classes += 1;
    // Recorded as the event that changes a case's requirements, with the new ones.
    let requirements = serde_json::from_value(json!(changed.requirements)).unwrap();
    s.service
        .store()
        .commit(Change {
            case: Some(deskgate_store::CaseWrite::Update {
                case: changed,
                expected_version: stored.version,
            }),
            audit: vec![NewAuditEntry::new(
                s.service.now(),
                system_actor(),
                Some(&id),
                AuditEvent::BreakGlassOpened(BreakGlassOpened {
                    reason: "test: the requirements changed under the approval".to_owned(),
                    requirements,
                    playbook_rows: Vec::new(),
                }),
            )],
            ..Change::default()
        })
        .await
        .unwrap();
    let (_, body) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(
        body["progress"]["approvals_missing"],
        json!(["supervisor"]),
        "{body}"
    );
    s.finish().await;
}

async fn finding_7_break_glass_passes_the_bundle_guardrails(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Riley, a security officer, reports to Dave.
    set_manager(&s, "u-riley", "u-dave").await;
    let case = s.open_case(AGENT, "u-dave", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let (status, body) = approve(&s, "riley.chen", id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "policy_denied");
    let refused = last_event(&s, "approval.refused").await;
    assert!(
        refused["details"]["policy_ids"]
            .to_string()
            .contains("guardrail-not-own-manager"),
        "{refused}"
    );
    let before = s.snapshot(Some(id), "u-dave").await;
    let (status, body) = break_glass(&s, "riley.chen", id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "policy_denied");
    let after = s.snapshot(Some(id), "u-dave").await;
    assert_eq!(after.case, before.case, "no break-glass was opened");
    assert_eq!(
        after.outbox_len, before.outbox_len,
        "no alert for a refusal"
    );
    assert_eq!(
        s.events_since(before.audit_size).await,
        ["approval.refused"]
    );
    s.finish().await;
}

async fn finding_10_an_authenticator_bound_minutes_ago_is_no_device_of_record(backend: Backend) {
    let s = TestServer::start(backend).await;
    // After a mailbox takeover the attacker binds their own authenticator app...
    s.service
        .enroll_totp(
            "u-dave",
            &system_actor(),
            &deskgate_app::service::Provenance::held("u-dave", "the attacker's own phone"),
        )
        .await
        .unwrap();
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    assert!(
        !case["playbook"].to_string().contains("\"totp\""),
        "a fresh app is not offered: {}",
        case["playbook"]
    );
    // ...and it does not count as a device of record for the next recovery.
    let before = s.snapshot(Some(id), "u-dave").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "totp" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "authenticator_too_new");
    assert_eq!(s.snapshot(Some(id), "u-dave").await, before);
    // Once the freshness window has passed, it is the device of record.
    s.clock.advance(Duration::days(15));
    let (vid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-dave").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["progress"]["counted_classes"],
        json!(["device_of_record"])
    );
    // Since issue 13 a password reset also needs a contact or person of record: a code to the
    // phone of record (not the mailbox the attacker took) completes it with the counted app.
    assert_eq!(body["state"], "verifying", "{body}");
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    s.finish().await;
}

async fn finding_11_refusals_at_open_are_audited_with_their_reason(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Sam opening a case about Sam, about Sam's manager (Pat), about a terminated subject.
    for (subject, code) in [
        ("u-sam", "self_service_forbidden"),
        ("u-pat", "self_service_forbidden"),
        ("u-hank", "subject_not_recoverable"),
    ] {
        let before = s.service.store().audit_size().await.unwrap();
        let (status, body) = s
            .post(
                "/api/v1/cases",
                Some(&s.token(AGENT)),
                json!({"subject": subject, "action": "password_reset", "channel": "phone"}),
            )
            .await;
        assert!(status.is_client_error(), "{subject}: {status} {body}");
        assert!(
            [code, "policy_denied"].contains(&body["error"]["code"].as_str().unwrap()),
            "{subject}: {body}"
        );
        assert_eq!(s.events_since(before).await, ["case.refused"], "{subject}");
        let refused = last_event(&s, "case.refused").await;
        assert_eq!(refused["details"]["subject_id"], subject);
        assert!(
            !refused["details"]["reasons"].as_array().unwrap().is_empty(),
            "{refused}"
        );
    }
    s.finish().await;
}

on_both_backends!(
    finding_3_a_manager_who_is_also_a_supervisor_counts_once,
    finding_3_a_supervisor_who_approved_cannot_then_attest_as_manager,
    finding_3_one_person_holds_one_staff_account_and_unlinked_staff_cannot_act,
    finding_6_the_agent_never_vouches_as_manager_on_their_own_case,
    finding_6_staff_who_worked_the_case_cannot_approve_it,
    finding_2_break_glass_starts_with_no_approvals,
    finding_2_an_approval_stops_counting_when_the_requirements_change,
    finding_7_break_glass_passes_the_bundle_guardrails,
    finding_10_an_authenticator_bound_minutes_ago_is_no_device_of_record,
    finding_11_refusals_at_open_are_audited_with_their_reason,
);
