//! Identity proofing through a vendor webhook (Standard Webhooks signatures): only a signed,
//! fresh, first delivery of an approved inquiry with document, selfie and liveness counts as
//! `government_id`; everything else changes nothing or fails the verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;
#[path = "support/idv_vendor.rs"]
mod idv_vendor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, TestServer};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

const KEY: [u8; 24] = *b"deskgate-test-idv-secret";

/// A server whose generic vendor creates inquiries at `vendor`.
async fn server(backend: Backend, vendor: &idv_vendor::Vendor) -> TestServer {
    TestServer::start_with(backend, |c| vendor.configure(c, false, true)).await
}

/// Posts a Standard Webhooks delivery signed with `key`, timestamped `age` seconds ago.
async fn deliver(
    s: &TestServer,
    id: &str,
    body: &Value,
    key: &[u8],
    age: i64,
) -> (StatusCode, Value) {
    let body = body.to_string();
    let ts = (chrono::Utc::now().timestamp() - age).to_string();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let resp = s
        .client
        .post(format!("{}/api/v1/webhooks/idv/standard-webhooks", s.base))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts)
        .header("webhook-signature", format!("v1,{sig}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn result(inquiry: &str, reference: &str, status: &str, liveness: bool) -> Value {
    json!({
        "type": "idv.result",
        "timestamp": "2026-11-26T10:00:00Z",
        "data": {
            "inquiry_id": inquiry, "reference_id": reference, "status": status,
            "checks": {"document": true, "selfie": true, "liveness": liveness},
            "matches": {"name_first": true, "name_last": true},
        },
    })
}

async fn approved_id_proofing_counts_once(backend: Backend) {
    let vendor = idv_vendor::Vendor::start().await;
    let s = server(backend, &vendor).await;
    let case = s.open_case("sam.rivera", "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let (vid, code) = s.send_code("sam.rivera", id, "sms_code").await;
    assert_eq!(
        s.answer("sam.rivera", id, &vid, &code).await.0,
        StatusCode::OK
    );
    let (pid, _) = s.start_method("sam.rivera", id, "id_proofing").await;
    let link = s.last_message("idv_link");
    assert_eq!(link["to"], "alice.jensen@example.org");
    let reference = format!("{id}/{pid}");
    let created = vendor.last();
    assert_eq!(created.body["reference_id"], reference);
    assert_eq!(link["link"], created.link);

    // Forged, stale and pending deliveries change nothing.
    let before = s.snapshot(Some(id), "u-alice").await;
    let approved = result(&created.inquiry_id, &reference, "approved", true);
    let (status, _) = deliver(&s, "msg_forged", &approved, b"not-the-secret-at-all-000", 0).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = deliver(&s, "msg_stale", &approved, &KEY, 301).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "stale_delivery");
    assert_eq!(s.snapshot(Some(id), "u-alice").await, before);

    let (status, body) = deliver(&s, "msg_1", &approved, &KEY, 2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], true);
    assert_eq!(
        body["case_state"], "approved",
        "phone of record + government ID"
    );
    // The same delivery again is a replay.
    let (status, body) = deliver(&s, "msg_1", &approved, &KEY, 1).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "replayed");
    let events = s.events_since(0).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "verification.passed")
            .count(),
        2
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn approval_without_liveness_does_not_count(backend: Backend) {
    let vendor = idv_vendor::Vendor::start().await;
    let s = server(backend, &vendor).await;
    let case = s.open_case("sam.rivera", "u-dave", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let (pid, _) = s.start_method("sam.rivera", id, "id_proofing").await;
    let (status, body) = deliver(
        &s,
        "msg_2",
        &result(
            &vendor.last().inquiry_id,
            &format!("{id}/{pid}"),
            "approved",
            false,
        ),
        &KEY,
        0,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted"], false);
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token("sam.rivera")))
        .await;
    assert_eq!(case["verifications"][0]["state"], "rejected");
    assert_eq!(case["progress"]["counted_classes"], json!([]));
    // An unknown reference or vendor is refused.
    let (status, _) = deliver(
        &s,
        "msg_3",
        &result("inq_1", "c-nope/v-nope", "approved", true),
        &KEY,
        0,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = s
        .client
        .post(format!("{}/api/v1/webhooks/idv/acme", s.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    s.finish().await;
}

on_both_backends!(
    approved_id_proofing_counts_once,
    approval_without_liveness_does_not_count
);
