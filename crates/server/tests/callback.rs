//! Finding 8 of issue #11: a callback is evidence only on the telephony provider's word. Deskgate
//! places the call to the phone of record through Twilio's Calls API with TwiML that gathers
//! digits; the agent reads a one-time code to the caller; only Twilio's signed Gather webhook
//! carrying that code passes the verification. The agent's own account is refused, and the
//! number of record is masked in every view and audit entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, TestServer};
use deskgate_app::delivery::TwilioConfig;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::Sha1;

const AGENT: &str = "sam.rivera";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "test-twilio-auth-token";
const FROM: &str = "+15017122661";
/// Dave's phone of record in the demo, and the digits of it that must never be shown.
const NUMBER_OF_RECORD: &str = "+1 555 010 0112";
const CALLER_NUMBER: &str = "+1 555 999 1234";

/// One Calls API request as the replay server saw it.
#[derive(Debug, Clone)]
struct PlacedCall {
    account: String,
    authorization: Option<String>,
    form: Vec<(String, String)>,
}

impl PlacedCall {
    fn field(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in the call request"))
    }

    /// The Gather's action URL from the TwiML.
    fn action(&self) -> String {
        let twiml = self.field("Twiml");
        let start = twiml.find("action=\"").unwrap() + "action=\"".len();
        let end = start + twiml[start..].find('"').unwrap();
        twiml[start..end].replace("&amp;", "&")
    }
}

type Calls = Arc<Mutex<Vec<PlacedCall>>>;

/// Answers `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` like the "Create a Call" example
/// of Twilio's Call resource page: HTTP 201 with the queued call.
async fn create_call(
    State(calls): State<Calls>,
    Path(account): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> impl IntoResponse {
    let to = form
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    calls.lock().unwrap().push(PlacedCall {
        account: account.trim_end_matches(".json").to_owned(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        form,
    });
    (
        AxumStatus::CREATED,
        axum::Json(json!({
            "account_sid": ACCOUNT_SID,
            "annotation": null,
            "answered_by": null,
            "api_version": "2010-04-01",
            "caller_name": null,
            "date_created": "Tue, 31 Aug 2010 20:36:28 +0000",
            "date_updated": "Tue, 31 Aug 2010 20:36:44 +0000",
            "direction": "outbound-api",
            "duration": null,
            "end_time": null,
            "forwarded_from": null,
            "from": FROM,
            "from_formatted": "(501) 712-2661",
            "group_sid": null,
            "parent_call_sid": null,
            "phone_number_sid": "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "price": null,
            "price_unit": "USD",
            "sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "start_time": null,
            "status": "queued",
            "to": to,
            "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json",
        })),
    )
}

async fn twilio() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(create_call),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, calls)
}

async fn server(backend: Backend, twilio_base: &str) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.telephony = Some(TwilioConfig {
            base_url: twilio_base.to_owned(),
            account_sid: ACCOUNT_SID.to_owned(),
            auth_token: AUTH_TOKEN.to_owned(),
            from: Some(FROM.to_owned()),
            messaging_service_sid: None,
            timeout_secs: 5,
            max_retry_wait_secs: 0,
        });
    })
    .await
}

/// Twilio's signature: base64(HMAC-SHA1(token, url + each param name and value, by name)).
fn sign(token: &str, url: &str, params: &[(&str, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in &sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The form Twilio posts to a Gather's action when the callee keys in `digits`.
fn gather_params(digits: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ApiVersion", "2010-04-01".to_owned()),
        ("CallSid", "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()),
        ("CallStatus", "in-progress".to_owned()),
        ("Called", NUMBER_OF_RECORD.to_owned()),
        ("Caller", FROM.to_owned()),
        ("Digits", digits.to_owned()),
        ("Direction", "outbound-api".to_owned()),
        ("FinishedOnKey", String::new()),
        ("From", FROM.to_owned()),
        ("To", NUMBER_OF_RECORD.to_owned()),
    ]
}

async fn gather(
    s: &TestServer,
    url: &str,
    params: &[(&'static str, String)],
    signature: &str,
) -> (StatusCode, String) {
    let resp = s
        .client
        .post(url)
        .header("x-twilio-signature", signature)
        .form(params)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Opens a password reset for Dave from a caller number that is not his, and starts a
/// callback. Returns (case id, verification id, code shown to the agent, the call placed).
async fn start(s: &TestServer, calls: &Calls) -> (String, String, String, PlacedCall) {
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            json!({"subject": "u-dave", "action": "password_reset", "channel": "phone",
                   "caller_number": CALLER_NUMBER}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap().to_owned();
    let (vid, body) = s.start_method(AGENT, &id, "callback").await;
    let code = body["verification"]["read_out"]
        .as_str()
        .expect("the agent is shown a code to read out")
        .to_owned();
    assert_eq!(code.len(), 6);
    let call = calls
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("no call placed");
    (id, vid, code, call)
}

fn assert_masked(text: &str) {
    for full in [NUMBER_OF_RECORD, "555 010 0112", "5550100112", "0100112"] {
        assert!(
            !text.contains(full),
            "the number of record is shown: {text}"
        );
    }
}

async fn finding_8_callback_passes_only_on_a_signed_gather_with_the_code(backend: Backend) {
    let (twilio_base, calls) = twilio().await;
    let s = server(backend, &twilio_base).await;
    let (id, vid, code, call) = start(&s, &calls).await;
    // Deskgate placed the call, to the number of record, never the caller's.
    assert_eq!(call.account, ACCOUNT_SID);
    assert_eq!(
        call.authorization.as_deref(),
        Some(
            format!(
                "Basic {}",
                STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
            )
            .as_str()
        )
    );
    assert_eq!(call.field("To"), NUMBER_OF_RECORD);
    assert_eq!(call.field("From"), FROM);
    let twiml = call.field("Twiml");
    assert!(
        twiml.contains("<Gather") && twiml.contains("numDigits=\"6\""),
        "{twiml}"
    );
    assert!(!twiml.contains(&code), "the call must not say the code");
    let action = call.action();
    assert_eq!(
        action,
        format!("{}/api/v1/webhooks/telephony/gather/{id}/{vid}", s.base)
    );

    // The agent's word does not pass it: the old outcome endpoint refuses, and the agent cannot
    // type the code they were shown into the code field either.
    let before = s.snapshot(Some(&id), "u-dave").await;
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications/{vid}/callback"),
            Some(&s.token(AGENT)),
            json!({"reached": true, "confirmed": "yes"}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "callback_outcome_not_accepted");
    let (status, _) = s.answer(AGENT, &id, &vid, &code).await;
    assert!(status.is_client_error(), "{status}");
    // A forged signature, or a signature over other parameters, changes nothing.
    let params = gather_params(&code);
    let forged = sign("not-the-auth-token", &action, &params);
    assert_eq!(
        gather(&s, &action, &params, &forged).await.0,
        StatusCode::UNAUTHORIZED
    );
    let other = sign(AUTH_TOKEN, &action, &gather_params("000000"));
    assert_eq!(
        gather(&s, &action, &params, &other).await.0,
        StatusCode::UNAUTHORIZED
    );
    let unsigned = s.client.post(&action).form(&params).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.snapshot(Some(&id), "u-dave").await, before);

    // Twilio reports the code keyed in on the phone of record: the callback passes.
    let signature = sign(AUTH_TOKEN, &action, &params);
    let (status, twiml) = gather(&s, &action, &params, &signature).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    assert!(twiml.starts_with("<Response>"), "{twiml}");
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["verifications"][0]["state"], "passed", "{case}");
    assert_eq!(
        case["progress"]["counted_classes"],
        json!(["phone_of_record"])
    );
    // One class never resets a password (issue 13): a code to the email of record completes it.
    assert_eq!(case["state"], "verifying", "{case}");
    let (evid, ecode) = s.send_code(AGENT, &id, "email_code").await;
    let (status, body) = s.answer(AGENT, &id, &evid, &ecode).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["state"], "approved", "{case}");
    let mut counted: Vec<&str> = case["progress"]["counted_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    counted.sort_unstable();
    assert_eq!(counted, ["email_of_record", "phone_of_record"]);
    // Once only.
    let (status, _) = gather(&s, &action, &params, &signature).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // No view, audit entry or stored case holds the number or the code.
    assert_masked(&case.to_string());
    assert!(!case.to_string().contains(&code));
    assert!(case["verifications"][0].get("read_out").is_none());
    let (_, audit) = s
        .get(
            &format!("/api/v1/cases/{id}/audit"),
            Some(&s.token("avery.stone")),
        )
        .await;
    assert_masked(&audit.to_string());
    let store = &s.service.store();
    let size = store.audit_size().await.unwrap();
    for record in store.audit_entries(0, size).await.unwrap() {
        assert_masked(&record.body);
        assert!(!record.body.contains(&code), "{}", record.body);
    }
    let stored = serde_json::to_string(&store.case(&id).await.unwrap().unwrap().case).unwrap();
    assert_masked(&stored);
    assert!(!stored.contains(&code));
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn finding_8_wrong_digits_fail_the_callback(backend: Backend) {
    let (twilio_base, calls) = twilio().await;
    let s = server(backend, &twilio_base).await;
    let (id, vid, code, call) = start(&s, &calls).await;
    let wrong = if code == "123456" { "654321" } else { "123456" };
    let action = call.action();
    let params = gather_params(wrong);
    let (status, twiml) = gather(&s, &action, &params, &sign(AUTH_TOKEN, &action, &params)).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["state"], "verifying");
    assert_eq!(case["verifications"][0]["id"], vid);
    assert_eq!(case["verifications"][0]["state"], "rejected");
    // The right digits afterwards change nothing: the callback is spent.
    let params = gather_params(&code);
    let (status, _) = gather(&s, &action, &params, &sign(AUTH_TOKEN, &action, &params)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    s.finish().await;
}

async fn finding_8_no_callback_without_a_telephony_provider(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let offered: Vec<Value> = case["playbook"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|step| step["methods"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(offered.contains(&json!("sms_code")), "{offered:?}");
    assert!(!offered.contains(&json!("callback")), "{offered:?}");
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({"method": "callback"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "method_not_available");
    s.finish().await;
}

/// The agent's console: starting a callback shows the code once; the case page offers no field
/// to type it into; the code from the page, keyed in on the call, passes the callback.
async fn finding_8_console_shows_the_code_once_and_no_code_field(backend: Backend) {
    let (twilio_base, calls) = twilio().await;
    let s = server(backend, &twilio_base).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/console/sign-in", s.base))
        .form(&[("token", s.token(AGENT))])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let resp = client
        .post(format!("{}/console/cases/{id}/verifications", s.base))
        .header("cookie", &cookie)
        .form(&[("method", "callback")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Read this code to the caller"), "{page}");
    let needle = "<strong class=\"read-out\">";
    let start = page.find(needle).unwrap() + needle.len();
    let code: String = page[start..start + 6].to_owned();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
    assert_masked(&page);
    let call = calls.lock().unwrap().last().cloned().unwrap();
    let action = call.action();
    let vid = action.rsplit('/').next().unwrap().to_owned();
    // Reloading the case page: the code is gone and there is no field to type it into.
    let page = client
        .get(format!("{}/console/cases/{id}", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&code));
    assert!(!page.contains(&format!("/verifications/{vid}\"")), "{page}");
    assert_masked(&page);
    let params = gather_params(&code);
    let (status, _) = gather(&s, &action, &params, &sign(AUTH_TOKEN, &action, &params)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["verifications"][0]["state"], "passed", "{case}");
    assert_eq!(
        case["progress"]["counted_classes"],
        json!(["phone_of_record"])
    );
    // A password reset needs a second class since issue 13: the email of record gives it.
    assert_eq!(case["state"], "verifying", "{case}");
    let (evid, ecode) = s.send_code(AGENT, id, "email_code").await;
    let (status, body) = s.answer(AGENT, id, &evid, &ecode).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    s.finish().await;
}

on_both_backends!(
    finding_8_console_shows_the_code_once_and_no_code_field,
    finding_8_callback_passes_only_on_a_signed_gather_with_the_code,
    finding_8_wrong_digits_fail_the_callback,
    finding_8_no_callback_without_a_telephony_provider
);
