//! Service credential rotation: the owner who asks is verified through their own devices, a
//! second owner approves by link, and the new secret is handed over once through a short-lived
//! retrieval link; it never appears in the case, the audit log or any message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

const AGENT: &str = "sam.rivera";

async fn rotation_for_a_verified_owner_with_a_second_owners_approval(backend: Backend) {
    let s = TestServer::start(backend).await;
    let open = |requester: Option<&str>| {
        let mut body = json!({"subject": "svc-payroll", "action": "service_credential_rotate", "channel": "ticket"});
        if let Some(r) = requester {
            body["requester"] = json!(r);
        }
        body
    };
    // Without a registered owner as requester nothing can be verified.
    let (status, case) = s
        .post("/api/v1/cases", Some(&s.token(AGENT)), open(None))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let (status, body) = s
        .post(
            &format!(
                "/api/v1/cases/{}/verifications",
                case["id"].as_str().unwrap()
            ),
            Some(&s.token(AGENT)),
            json!({"method": "totp"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "requester_not_owner");
    let first = case["id"].as_str().unwrap();
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{first}/cancel"),
            Some(&s.token(AGENT)),
            json!({"reason": "reopened with the requester"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, case) = s
        .post("/api/v1/cases", Some(&s.token(AGENT)), open(Some("u-erin")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    // Erin proves herself with her own authenticator app.
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-erin").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &tid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["state"], "verifying",
        "the second owner has not approved yet"
    );
    // Carol, the other owner, approves from the link.
    let link = s.request_attestation(AGENT, id).await;
    assert_eq!(
        s.last_message("attestation_link")["to"],
        "carol.diaz@example.org"
    );
    let (status, body) = s.attest(&link, None, "confirm").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case_state"], "approved");

    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let handover = s.last_message("secret_retrieval_link");
    assert_eq!(handover["to"], "erin.walsh@example.org");
    let url = handover["link"].as_str().unwrap().to_owned();
    // Opening the link shows a button; only the POST hands the secret over, once.
    let page = s.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let first = s.post_link(&url, "").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let secret = first.json::<serde_json::Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 40);
    let again = s.post_link(&url, "").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // The secret is nowhere but in that one answer.
    let size = s.service.store().audit_size().await.unwrap();
    for r in s.service.store().audit_entries(0, size).await.unwrap() {
        assert!(
            !r.body.contains(&secret),
            "entry {} holds the secret",
            r.index
        );
    }
    for m in s.outbox() {
        assert!(
            !m.to_string().contains(&secret),
            "a message holds the secret: {m}"
        );
    }
    let (_, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert!(!view.to_string().contains(&secret));
    assert!(
        s.events_since(0)
            .await
            .contains(&"service_secret.retrieved".to_owned())
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn an_expired_retrieval_link_hands_nothing_over(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, case) = s
        .post("/api/v1/cases", Some(&s.token(AGENT)), json!({"subject": "svc-payroll", "action": "service_credential_rotate", "channel": "ticket", "requester": "u-erin"}))
        .await;
    let id = case["id"].as_str().unwrap();
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-erin").await.unwrap();
    assert_eq!(s.answer(AGENT, id, &tid, &code).await.0, StatusCode::OK);
    let link = s.request_attestation(AGENT, id).await;
    assert_eq!(s.attest(&link, None, "confirm").await.0, StatusCode::OK);
    assert_eq!(s.execute(AGENT, id).await.0, StatusCode::OK);
    let url = s.last_message("secret_retrieval_link")["link"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(chrono::Duration::minutes(16));
    let late = s.post_link(&url, "").send().await.unwrap();
    assert_eq!(late.status(), StatusCode::CONFLICT);
    s.finish().await;
}

/// A push for a service account goes to the owner who asked, and only that owner's device answers.
async fn the_requesting_owner_answers_a_push_on_their_own_device(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            json!({"subject": "svc-payroll", "action": "service_credential_rotate",
                   "channel": "ticket", "requester": "u-erin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    let (vid, body) = s.start_method(AGENT, id, "push").await;
    let v = body["case"]["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == vid)
        .unwrap()
        .clone();
    let number = v["destination"]
        .as_str()
        .unwrap()
        .split("number ")
        .nth(1)
        .unwrap()
        .chars()
        .take(2)
        .collect::<String>();
    // The other owner's device, and the service account itself, have nothing to answer.
    for other in ["u-carol", "svc-payroll"] {
        let err = s
            .service
            .push_response(other, true, Some(&number))
            .await
            .unwrap_err();
        assert_eq!(
            deskgate_server::error::status(&err).as_u16(),
            StatusCode::NOT_FOUND.as_u16(),
            "{other}"
        );
    }
    let answer = s
        .service
        .push_response("u-erin", true, Some(&number))
        .await
        .unwrap();
    assert_eq!(answer["case_id"], id);
    assert_eq!(answer["counted"], true);
    let (_, now) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    let passed = now["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == vid)
        .unwrap();
    assert_eq!(passed["state"], "passed", "{now}");
    s.finish().await;
}

on_both_backends!(
    the_requesting_owner_answers_a_push_on_their_own_device,
    rotation_for_a_verified_owner_with_a_second_owners_approval,
    an_expired_retrieval_link_hands_nothing_over,
);
