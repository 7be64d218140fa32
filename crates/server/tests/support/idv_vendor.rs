//! An identity-verification vendor's inquiry API on a random port, answering in the vendor's
//! documented shapes, and signed result deliveries for the webhook endpoint.
//!
//! - Persona "Create an Inquiry" (`POST /api/v1/inquiries`, Bearer key, JSON:API body with
//!   `data.attributes.inquiry-template-id`, `reference-id`, `fields`): answers the new inquiry
//!   (`data.type` "inquiry", `data.id` "inq_...", status "created") and, since
//!   `meta.auto-create-one-time-link` was asked for, `meta.one-time-link` and
//!   `meta.one-time-link-short`.
//! - The generic vendor: `POST /generic/inquiries` `{reference_id, expected}` answers
//!   `{inquiry_id, url}`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use deskgate_app::config::{Config, IdvVendor};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const STANDARD_KEY: [u8; 24] = *b"deskgate-test-idv-secret";
pub const PERSONA_SECRET: &str = "wbhsec_test_deskgate_0123456789";
pub const API_KEY: &str = "persona_sandbox_test_key";
pub const TEMPLATE: &str = "itmpl_JAZjHuAT738Q63BdgCuEJQre";

/// One inquiry-creation request as the vendor received it.
#[derive(Debug, Clone)]
pub struct Created {
    pub path: String,
    pub authorization: Option<String>,
    pub persona_version: Option<String>,
    pub body: Value,
    pub inquiry_id: String,
    pub link: String,
}

#[derive(Clone, Default)]
pub struct Vendor {
    pub base: String,
    created: Arc<Mutex<Vec<Created>>>,
}

impl Vendor {
    pub async fn start() -> Self {
        let created: Arc<Mutex<Vec<Created>>> = Arc::default();
        let app = Router::new()
            .route("/api/v1/inquiries", post(persona_create))
            .route("/generic/inquiries", post(generic_create))
            .with_state(created.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, created }
    }

    /// Configures both vendors against this server.
    pub fn configure(&self, c: &mut Config, with_persona: bool, with_generic: bool) {
        if with_persona {
            c.idv.vendors.insert(
                "persona".to_owned(),
                IdvVendor {
                    secret: PERSONA_SECRET.to_owned(),
                    api_url: Some(format!("{}/api/v1", self.base)),
                    api_key: Some(API_KEY.to_owned()),
                    inquiry_template_id: Some(TEMPLATE.to_owned()),
                },
            );
        }
        c.idv.vendors.insert(
            "standard-webhooks".to_owned(),
            IdvVendor {
                secret: format!("whsec_{}", STANDARD.encode(STANDARD_KEY)),
                api_url: with_generic.then(|| format!("{}/generic/inquiries", self.base)),
                api_key: with_generic.then(|| API_KEY.to_owned()),
                inquiry_template_id: None,
            },
        );
    }

    pub fn created(&self) -> Vec<Created> {
        self.created.lock().unwrap().clone()
    }

    pub fn last(&self) -> Created {
        self.created().pop().expect("no inquiry was created")
    }
}

fn record(
    created: &Mutex<Vec<Created>>,
    path: &str,
    headers: &HeaderMap,
    body: Value,
    link: impl Fn(usize) -> String,
) -> Created {
    let mut all = created.lock().unwrap();
    let n = all.len() + 1;
    let entry = Created {
        path: path.to_owned(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        persona_version: headers
            .get("persona-version")
            .map(|v| v.to_str().unwrap().to_owned()),
        body,
        inquiry_id: format!("inq_{n:024}"),
        link: link(n),
    };
    all.push(entry.clone());
    entry
}

async fn persona_create(
    State(created): State<Arc<Mutex<Vec<Created>>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let entry = record(&created, "/api/v1/inquiries", &headers, body.clone(), |n| {
        format!("https://withpersona.com/verify?code=otl_{n:020}")
    });
    let attributes = &body["data"]["attributes"];
    Json(json!({
        "data": {
            "type": "inquiry",
            "id": entry.inquiry_id,
            "attributes": {
                "status": "created",
                "reference-id": attributes["reference-id"],
                "fields": attributes["fields"],
                "created-at": "2026-11-26T10:00:00.000Z",
            },
            "relationships": {
                "inquiry-template": {"data": {"type": "inquiry-template", "id": attributes["inquiry-template-id"]}},
                "verifications": {"data": []},
            },
        },
        "meta": {
            "one-time-link": entry.link,
            "one-time-link-short": "https://perso.na/abc123",
        },
    }))
}

async fn generic_create(
    State(created): State<Arc<Mutex<Vec<Created>>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let entry = record(&created, "/generic/inquiries", &headers, body, |n| {
        format!("https://idv.example/verify/{n}")
    });
    Json(json!({ "inquiry_id": entry.inquiry_id, "url": entry.link }))
}

/// A Standard Webhooks delivery of the generic result (headers, body).
pub fn standard_delivery(id: &str, body: &Value) -> (Vec<(&'static str, String)>, String) {
    let body = body.to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&STANDARD_KEY).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    (
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts),
            ("webhook-signature", format!("v1,{sig}")),
        ],
        body,
    )
}

/// A Persona delivery (`Persona-Signature: t=..,v1=hex(HMAC-SHA256("{t}.{body}"))`).
pub fn persona_delivery(body: &Value) -> (Vec<(&'static str, String)>, String) {
    let body = body.to_string();
    let ts = chrono::Utc::now().timestamp();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(PERSONA_SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    (
        vec![("persona-signature", format!("t={ts},v1={sig}"))],
        body,
    )
}

/// The generic result payload.
pub fn generic_result(inquiry: &str, reference: &str, status: &str, matches: Value) -> Value {
    json!({
        "type": "idv.result",
        "timestamp": "2026-11-26T10:00:00Z",
        "data": {
            "inquiry_id": inquiry, "reference_id": reference, "status": status,
            "checks": {"document": true, "selfie": true, "liveness": true},
            "matches": matches,
        },
    })
}

/// A Persona `inquiry.approved` event shaped like the example in Persona's Webhooks overview:
/// the inquiry with its verifications in `included`; the government-ID verification carries
/// what it extracted from the document (`name-first`, `name-last`, `birthdate`) and its checks,
/// among them the Inquiry comparison check (`id_inquiry_comparison`).
pub fn persona_approved(
    event_id: &str,
    inquiry: &str,
    reference: &str,
    document: (&str, &str, &str),
    comparison: &str,
) -> Value {
    let (first, last, birthdate) = document;
    json!({"data": {"type": "event", "id": event_id, "attributes": {
        "name": "inquiry.approved",
        "payload": {
            "data": {"type": "inquiry", "id": inquiry,
                "attributes": {"status": "approved", "reference-id": reference,
                    "created-at": "2026-11-26T10:00:00.000Z"},
                "relationships": {"verifications": {"data": [
                    {"id": "ver_gov1", "type": "verification/government-id"},
                    {"id": "ver_self1", "type": "verification/selfie"}]}}},
            "included": [
                {"type": "verification/government-id", "id": "ver_gov1", "attributes": {
                    "status": "passed", "id-class": "dl", "name-first": first, "name-middle": null,
                    "name-last": last, "birthdate": birthdate, "country-code": "US",
                    "checks": [
                        {"name": "id_barcode_detection", "status": "passed", "reasons": [], "requirement": "required", "metadata": {}},
                        {"name": "id_inquiry_comparison", "status": comparison, "reasons": [], "requirement": "not_required", "metadata": {}},
                    ]}},
                {"type": "verification/selfie", "id": "ver_self1", "attributes": {
                    "status": "passed",
                    "checks": [
                        {"name": "selfie_liveness_detection", "status": "passed", "reasons": [], "requirement": "required", "metadata": {}},
                    ]}},
            ],
        },
        "created-at": "2026-11-26T10:00:05.000Z",
    }}})
}
