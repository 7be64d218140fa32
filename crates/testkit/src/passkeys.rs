//! A subject's passkey in tests: webauthn-authenticator-rs's software passkey (`softpasskey`)
//! enrolled through the temporary access pass endpoints, as after an MFA reset.

use chrono::Duration;
use deskgate_store::{Change, Credential};
use reqwest::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, Url};

use crate::server::TestServer;

/// The origin the server's passkeys belong to (its public URL).
pub fn origin(s: &TestServer) -> Url {
    Url::parse(&s.service.config().public_url).unwrap()
}

/// Issues a temporary access pass for `subject` as an MFA reset would (only its hash is stored;
/// where it went is not recorded, so what it enrols depends on every contact of record).
pub async fn issue_pass(s: &TestServer, subject: &str) -> String {
    let pass = deskgate_app::secrets::random_token();
    let now = s.service.now();
    s.service
        .store()
        .commit(Change {
            credentials: vec![Credential {
                subject_id: subject.to_owned(),
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
    pass
}

/// Redeems `pass` and registers `device`'s new passkey with it; answers the enrolment's answer.
pub async fn enrol_with_pass(
    s: &TestServer,
    subject: &str,
    pass: &str,
    device: &mut SoftPasskey,
) -> Value {
    let (status, started) = s
        .post(
            "/api/v1/tap/redeem",
            None,
            json!({ "subject": subject, "pass": pass }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = device.do_registration(origin(s), options).unwrap();
    let (status, done) = s
        .post(
            "/api/v1/tap/passkey",
            None,
            json!({ "subject": subject, "ceremony": started["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    done
}
