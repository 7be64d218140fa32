//! Finding 1 of issue #11: identity proofing is bound to the subject. The inquiry is created at
//! the vendor with the subject's identity of record, only a result for that inquiry is read,
//! and it counts only when the vendor matched the document to every configured field; an
//! approved document of someone else fails the verification and alerts the security contacts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;
#[path = "support/idv_vendor.rs"]
mod idv_vendor;

use common::{Backend, TestServer};
use deskgate_core::IdentityOfRecord;
use deskgate_store::Change;
use idv_vendor::{API_KEY, TEMPLATE, Vendor};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";
const SOC: &str = "soc@example.org";

async fn server(backend: Backend, vendor: &Vendor, persona: bool) -> TestServer {
    TestServer::start_with(backend, |c| {
        vendor.configure(c, persona, !persona);
        c.security_contacts = vec![SOC.to_owned()];
    })
    .await
}

async fn post_delivery(
    s: &TestServer,
    vendor: &str,
    (headers, body): (Vec<(&'static str, String)>, String),
) -> (StatusCode, Value) {
    let mut req = s
        .client
        .post(format!("{}/api/v1/webhooks/idv/{vendor}", s.base))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    s.send(req).await
}

/// Opens an MFA reset for `subject`, passes the email of record, starts identity proofing.
/// Returns (case id, verification id).
async fn email_then_proofing(s: &TestServer, subject: &str) -> (String, String) {
    let case = s.open_case(AGENT, subject, "mfa_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "email_code").await;
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);
    let (pid, _) = s.start_method(AGENT, &id, "id_proofing").await;
    (id, pid)
}

async fn case_of(s: &TestServer, id: &str) -> Value {
    s.get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await
        .1
}

async fn set_identity(s: &TestServer, subject: &str, identity: Option<IdentityOfRecord>) {
    let mut record = s.service.store().subject(subject).await.unwrap().unwrap();
    record.identity = identity;
    s.service
        .store()
        .commit(Change {
            subjects: vec![record],
            ..Change::default()
        })
        .await
        .unwrap();
}

async fn finding_1_attackers_own_document_does_not_pass_and_alerts(backend: Backend) {
    let vendor = Vendor::start().await;
    let s = server(backend, &vendor, false).await;
    let (id, pid) = email_then_proofing(&s, "u-alice").await;
    // The vendor was told whom to expect, server to server; the mailbox gets only its link.
    let created = vendor.last();
    assert_eq!(
        created.authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(created.body["reference_id"], format!("{id}/{pid}"));
    assert_eq!(
        created.body["expected"],
        json!({"name_first": "Alice", "name_last": "Jensen"})
    );
    let link = s.last_message("idv_link");
    assert_eq!(link["to"], "alice.jensen@example.org");
    assert_eq!(link["link"], created.link);

    // The attacker completes the inquiry with their own genuine document: approved, every
    // check passed, but the vendor reports the name does not match.
    let result = idv_vendor::generic_result(
        &created.inquiry_id,
        &format!("{id}/{pid}"),
        "approved",
        json!({"name_first": false, "name_last": false}),
    );
    let (status, body) = post_delivery(
        &s,
        "standard-webhooks",
        idv_vendor::standard_delivery("msg_attack", &result),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], false, "{body}");
    assert_eq!(body["identity_matched"], false);
    let case = case_of(&s, &id).await;
    assert_eq!(case["state"], "verifying");
    assert_eq!(case["verifications"][1]["state"], "rejected");
    assert_eq!(
        case["progress"]["counted_classes"],
        json!(["email_of_record"])
    );
    let (status, _) = s.execute(AGENT, &id).await;
    assert_ne!(
        status,
        StatusCode::OK,
        "no grant without the subject's document"
    );
    // Audited, and the security contacts hear of it.
    let events = s.events_since(0).await;
    assert!(events.contains(&"security.idv_identity_mismatch".to_owned()));
    let alert = s.last_message("idv_mismatch_alert");
    assert_eq!(alert["to"], SOC);
    assert!(alert["body"].as_str().unwrap().contains(&id));
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn finding_1_subjects_own_document_passes_persona(backend: Backend) {
    let vendor = Vendor::start().await;
    let s = server(backend, &vendor, true).await;
    set_identity(
        &s,
        "u-alice",
        Some(IdentityOfRecord {
            given_name: "Alice".to_owned(),
            family_name: "Jensen".to_owned(),
            birthdate: Some("1990-04-02".parse().unwrap()),
        }),
    )
    .await;
    let (id, pid) = email_then_proofing(&s, "u-alice").await;
    let created = vendor.last();
    assert_eq!(created.path, "/api/v1/inquiries");
    assert_eq!(created.persona_version.as_deref(), Some("2023-01-05"));
    assert_eq!(
        created.body,
        json!({
            "data": {"attributes": {
                "inquiry-template-id": TEMPLATE,
                "reference-id": format!("{id}/{pid}"),
                "fields": {"name-first": "Alice", "name-last": "Jensen", "birthdate": "1990-04-02"},
            }},
            "meta": {"auto-create-one-time-link": true},
        })
    );
    assert_eq!(s.last_message("idv_link")["link"], created.link);

    // Same name, another birthdate: the document is someone else's.
    let reference = format!("{id}/{pid}");
    let wrong = idv_vendor::persona_approved(
        "evt_wrong_birthdate",
        &created.inquiry_id,
        &reference,
        ("Alice", "Jensen", "1985-11-30"),
        "passed",
    );
    let (status, body) = post_delivery(&s, "persona", idv_vendor::persona_delivery(&wrong)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], false, "{body}");
    assert_eq!(s.last_message("idv_mismatch_alert")["to"], SOC);

    // A second inquiry, completed with Alice's own document.
    let (pid, _) = s.start_method(AGENT, &id, "id_proofing").await;
    let created = vendor.last();
    let right = idv_vendor::persona_approved(
        "evt_right",
        &created.inquiry_id,
        &format!("{id}/{pid}"),
        ("ALICE", "Jensen", "1990-04-02"),
        "passed",
    );
    let (status, body) = post_delivery(&s, "persona", idv_vendor::persona_delivery(&right)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], true, "{body}");
    assert_eq!(body["case_state"], "approved");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn finding_1_missing_match_fields_fail_closed(backend: Backend) {
    let vendor = Vendor::start().await;
    let s = server(backend, &vendor, true).await;
    // Persona approved the document but its Inquiry comparison did not run (no fields to
    // compare): nothing vouches that the document is the subject's.
    let (id, pid) = email_then_proofing(&s, "u-alice").await;
    let created = vendor.last();
    let unchecked = idv_vendor::persona_approved(
        "evt_unchecked",
        &created.inquiry_id,
        &format!("{id}/{pid}"),
        ("Alice", "Jensen", "1990-04-02"),
        "not_applicable",
    );
    let (status, body) =
        post_delivery(&s, "persona", idv_vendor::persona_delivery(&unchecked)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], false, "{body}");

    // A result for another inquiry that names this verification's reference reads nothing.
    let (pid, _) = s.start_method(AGENT, &id, "id_proofing").await;
    let before = s.snapshot(Some(&id), "u-alice").await;
    let foreign = idv_vendor::persona_approved(
        "evt_foreign",
        "inq_created_by_someone_else",
        &format!("{id}/{pid}"),
        ("Alice", "Jensen", "1990-04-02"),
        "passed",
    );
    let (status, _) = post_delivery(&s, "persona", idv_vendor::persona_delivery(&foreign)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(s.snapshot(Some(&id), "u-alice").await, before);

    // The generic vendor's result without `matches` does not count either.
    let s2 = server(backend, &vendor, false).await;
    let (id2, pid2) = email_then_proofing(&s2, "u-alice").await;
    let created = vendor.last();
    let mut result = idv_vendor::generic_result(
        &created.inquiry_id,
        &format!("{id2}/{pid2}"),
        "approved",
        Value::Null,
    );
    result["data"].as_object_mut().unwrap().remove("matches");
    let (status, body) = post_delivery(
        &s2,
        "standard-webhooks",
        idv_vendor::standard_delivery("msg_no_matches", &result),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], false, "{body}");

    // A subject with no identity of record is not offered identity proofing at all.
    set_identity(&s2, "u-dave", None).await;
    let case = s2.open_case(AGENT, "u-dave", "mfa_reset").await;
    let dave = case["id"].as_str().unwrap();
    let (status, body) = s2
        .post(
            &format!("/api/v1/cases/{dave}/verifications"),
            Some(&s2.token(AGENT)),
            json!({"method": "id_proofing"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "no_identity_of_record");
    s.finish().await;
    s2.finish().await;
}

on_both_backends!(
    finding_1_attackers_own_document_does_not_pass_and_alerts,
    finding_1_subjects_own_document_passes_persona,
    finding_1_missing_match_fields_fail_closed
);
