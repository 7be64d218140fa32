//! Contract tests of TwilioDelivery against an in-process server replaying Twilio's documented
//! wire format (support::replay).

use std::time::{Duration, Instant};

use axum::http::Method;
use deskgate_delivery::{
    ConfigError, Delivery, DeliveryError, Message, Secret, TwilioConfig, TwilioDelivery,
};

use crate::support::{
    ACCOUNT_SID, AUTH_TOKEN, Answer, BASIC_AUTH, BODY, assert_clean, code_message, free_port,
    install_crypto, replay, replay_sequence,
};

const FROM: &str = "+15017122661";
const TO: &str = "+15558675310";

/// Shaped after the "Create a Message" example response on Twilio's Message resource page
/// (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
/// HTTP 201 with the new resource, `status` "queued".
const MESSAGE_CREATED: &str = r#"{
  "account_sid": "AC0123456789abcdef0123456789abcdef",
  "api_version": "2010-04-01",
  "body": "Your Deskgate verification code is 482913.",
  "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
  "date_sent": null,
  "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
  "direction": "outbound-api",
  "error_code": null,
  "error_message": null,
  "from": "+15017122661",
  "num_media": "0",
  "num_segments": "1",
  "price": null,
  "price_unit": null,
  "messaging_service_sid": null,
  "sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "status": "queued",
  "subresource_uris": {
    "media": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Media.json"
  },
  "to": "+15558675310",
  "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"
}"#;

/// Shaped after the "Create a Call" example response on Twilio's Call resource page
/// (https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource): HTTP 201,
/// `status` "queued".
const CALL_CREATED: &str = r#"{
  "account_sid": "AC0123456789abcdef0123456789abcdef",
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
  "from": "+15017122661",
  "from_formatted": "(501) 712-2661",
  "group_sid": null,
  "parent_call_sid": null,
  "phone_number_sid": "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "price": null,
  "price_unit": "USD",
  "sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "start_time": null,
  "status": "queued",
  "subresource_uris": {
    "notifications": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Notifications.json",
    "recordings": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Recordings.json"
  },
  "to": "+15558675310",
  "to_formatted": "(555) 867-5310",
  "trunk_sid": null,
  "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json",
  "queue_time": "0"
}"#;

fn config(base_url: &str) -> TwilioConfig {
    TwilioConfig {
        base_url: base_url.to_owned(),
        account_sid: ACCOUNT_SID.to_owned(),
        auth_token: AUTH_TOKEN.to_owned(),
        from: Some(FROM.to_owned()),
        messaging_service_sid: None,
        timeout_secs: 5,
        max_retry_wait_secs: 2,
    }
}

fn twilio(config: &TwilioConfig) -> TwilioDelivery {
    install_crypto();
    TwilioDelivery::new(config).unwrap()
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

#[tokio::test]
async fn sms_posts_the_documented_request_and_accepts_201() {
    let api = replay(Answer::json(201, MESSAGE_CREATED)).await;
    twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap();

    let request = api.only_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, messages_path());
    assert_eq!(request.authorization.as_deref(), Some(BASIC_AUTH));
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let mut fields: Vec<&str> = request.form.iter().map(|(k, _)| k.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["Body", "From", "To"]);
    assert_eq!(request.field("To"), Some(TO));
    assert_eq!(request.field("From"), Some(FROM));
    assert_eq!(request.field("Body"), Some(BODY));
}

#[tokio::test]
async fn sms_goes_through_the_messaging_service_when_one_is_configured() {
    let api = replay(Answer::json(201, MESSAGE_CREATED)).await;
    let mut with_service = config(&api.base_url);
    with_service.messaging_service_sid = Some("MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned());
    twilio(&with_service)
        .send(&code_message("sms", TO))
        .await
        .unwrap();

    let request = api.only_request();
    assert_eq!(
        request.field("MessagingServiceSid"),
        Some("MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert_eq!(request.field("From"), None, "one sender, not two");
}

#[tokio::test]
async fn voice_calls_with_twiml_reading_the_code_digit_by_digit() {
    let api = replay(Answer::json(201, CALL_CREATED)).await;
    let message = Message {
        body: "Deskgate <help desk> & you: your code is 482913.".to_owned(),
        ..code_message("voice", TO)
    };
    twilio(&config(&api.base_url)).send(&message).await.unwrap();

    let request = api.only_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    );
    assert_eq!(request.authorization.as_deref(), Some(BASIC_AUTH));
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.field("To"), Some(TO));
    assert_eq!(request.field("From"), Some(FROM));
    assert_eq!(
        request.field("Twiml"),
        Some(
            "<Response><Say>Deskgate &lt;help desk&gt; &amp; you: your code is \
             4, 8, 2, 9, 1, 3.</Say></Response>"
        )
    );
    assert_eq!(request.field("Body"), None);
}

#[tokio::test]
async fn voice_refuses_links_passwords_and_passes() {
    let api = replay(Answer::json(201, CALL_CREATED)).await;
    let delivery = twilio(&config(&api.base_url));
    for secret in [
        Secret::Link("https://deskgate.example.org/a/xyz".to_owned()),
        Secret::Password("Tr0ub4dor&3".to_owned()),
        Secret::Pass("TAP-123".to_owned()),
    ] {
        let message = Message {
            secret: Some(secret),
            ..code_message("voice", TO)
        };
        let error = delivery.send(&message).await.unwrap_err();
        assert!(
            matches!(
                error,
                DeliveryError::InvalidMessage {
                    channel: "voice",
                    ..
                }
            ),
            "{error:?}"
        );
    }
    assert!(api.requests().is_empty(), "nothing may reach the provider");
}

#[tokio::test]
async fn voice_without_a_caller_id_is_refused_while_sms_still_works() {
    let api = replay(Answer::json(201, MESSAGE_CREATED)).await;
    let mut service_only = config(&api.base_url);
    service_only.from = None;
    service_only.messaging_service_sid = Some("MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned());
    let delivery = twilio(&service_only);
    let error = delivery.send(&code_message("voice", TO)).await.unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::InvalidMessage {
                channel: "voice",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(api.requests().is_empty());
    delivery.send(&code_message("sms", TO)).await.unwrap();
    assert_eq!(api.only_request().path, messages_path());
}

/// Error bodies in Twilio's documented exception format ({code, message, more_info, status};
/// https://www.twilio.com/docs/usage/twilios-response), with the messages of the error
/// dictionary entries https://www.twilio.com/docs/api/errors/21211, /21610 and /20429.
#[tokio::test]
async fn documented_error_responses_become_twilio_errors() {
    let cases = [
        (
            400,
            21211,
            "The 'To' number +15005550001 is not a valid phone number.",
        ),
        (400, 21610, "Attempt to send to unsubscribed recipient"),
        (429, 20429, "Too Many Requests"),
    ];
    for (status, code, text) in cases {
        let body = serde_json::json!({
            "code": code,
            "message": text,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        });
        let api = replay(Answer::json(status, &body.to_string())).await;
        let error = twilio(&config(&api.base_url))
            .send(&code_message("sms", TO))
            .await
            .unwrap_err();
        match &error {
            DeliveryError::Twilio {
                status: s,
                code: c,
                message,
                more_info,
            } => {
                assert_eq!(*s, status);
                assert_eq!(*c, Some(code));
                assert_eq!(message, text);
                assert_eq!(
                    more_info.as_deref(),
                    Some(format!("https://www.twilio.com/docs/errors/{code}").as_str())
                );
            }
            other => panic!("expected a Twilio error, got {other:?}"),
        }
        let shown = error.to_string();
        assert!(shown.contains(&format!("error {code}")), "{shown}");
        assert!(shown.contains(text), "{shown}");
        assert_clean(&error);
    }
}

#[tokio::test]
async fn wrong_credentials_give_the_authentication_error() {
    let api = replay(Answer::json(201, MESSAGE_CREATED)).await;
    let mut wrong = config(&api.base_url);
    wrong.auth_token = "not-the-token".to_owned();
    let error = twilio(&wrong)
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::Twilio {
                status: 401,
                code: Some(20003),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not-the-token"), "{error}");
    assert_clean(&error);
}

#[tokio::test]
async fn an_error_body_that_is_not_twilios_is_reported_without_quoting_it() {
    let api = replay(Answer {
        status: 502,
        content_type: "text/html",
        body: "<html>proxy says: upstream reset</html>".to_owned(),
        retry_after: None,
    })
    .await;
    let error = twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::UnexpectedResponse {
                provider: "Twilio",
                status: 502,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains("upstream"), "{error}");
}

#[tokio::test]
async fn a_success_status_without_the_created_resource_is_not_success() {
    let api = replay(Answer::json(201, "{}")).await;
    let error = twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeliveryError::UnexpectedResponse { status: 201, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_gives_a_clear_error_quickly() {
    let base = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let error = twilio(&config(&base))
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            DeliveryError::Unreachable {
                provider: "Twilio",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("could not connect"), "{error}");
    assert_clean(&error);
}

#[tokio::test]
async fn email_is_refused() {
    let api = replay(Answer::json(201, MESSAGE_CREATED)).await;
    let error = twilio(&config(&api.base_url))
        .send(&code_message("email", "alice@example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryError::UnsupportedChannel { adapter: "Twilio", channel } if channel == "email"),
        "{error:?}"
    );
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    let api = replay(Answer::json(201, MESSAGE_CREATED)).await;
    twilio(&config(&format!("{}/twilio-proxy", api.base_url)))
        .send(&code_message("sms", TO))
        .await
        .unwrap();
    assert_eq!(
        api.only_request().path,
        format!("/twilio-proxy{}", messages_path())
    );
}

#[test]
fn configuration_mistakes_are_refused() {
    install_crypto();
    let refused = |config: TwilioConfig| TwilioDelivery::new(&config).err();

    assert!(TwilioDelivery::new(&config("https://api.twilio.com")).is_ok());
    assert!(matches!(
        refused(config("http://api.example.org")),
        Some(ConfigError::TwilioBaseUrl { .. })
    ));
    assert!(matches!(
        refused(config("ftp://127.0.0.1")),
        Some(ConfigError::TwilioBaseUrl { .. })
    ));
    assert!(matches!(
        refused(TwilioConfig {
            account_sid: "AC01/../../x".to_owned(),
            ..config("https://api.twilio.com")
        }),
        Some(ConfigError::TwilioAccountSid)
    ));
    assert!(matches!(
        refused(TwilioConfig {
            from: None,
            messaging_service_sid: None,
            ..config("https://api.twilio.com")
        }),
        Some(ConfigError::TwilioNoSender)
    ));

    let debug = format!("{:?}", config("https://api.twilio.com"));
    assert!(!debug.contains(AUTH_TOKEN), "{debug}");
    assert!(debug.contains(ACCOUNT_SID), "{debug}");
}

#[test]
fn the_default_base_url_is_twilios() {
    let parsed: TwilioConfig = serde_json::from_value(serde_json::json!({
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from": FROM
    }))
    .unwrap();
    assert_eq!(parsed.base_url, "https://api.twilio.com");
}

/// Twilio's 429 body for error 20429 (https://www.twilio.com/docs/api/errors/20429).
const TOO_MANY: &str = r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#;

/// A 429 was not accepted, so the message is sent again after the short wait Twilio asked for.
#[tokio::test]
async fn a_throttled_send_waits_as_asked_and_is_sent_once() {
    let api = replay_sequence(vec![
        Answer::json(429, TOO_MANY).retry_after("1"),
        Answer::json(201, MESSAGE_CREATED),
    ])
    .await;
    let started = Instant::now();
    twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let requests = api.requests();
    assert_eq!(requests.len(), 2, "one refused request, one accepted");
    assert_eq!(requests[0].form, requests[1].form, "the same message");
}

/// A wait longer than the configured bound is not made: the agent gets the error at once.
#[tokio::test]
async fn a_long_retry_after_is_not_waited_for() {
    let api = replay(Answer::json(429, TOO_MANY).retry_after("120")).await;
    let started = Instant::now();
    let error = twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(error, DeliveryError::Twilio { status: 429, .. }),
        "{error:?}"
    );
    api.only_request();
}

/// Throttling that does not clear gives up after two more tries.
#[tokio::test]
async fn persistent_throttling_gives_up_after_two_retries() {
    let api = replay(Answer::json(429, TOO_MANY).retry_after("0")).await;
    let error = twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::Twilio {
                status: 429,
                code: Some(20429),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(api.requests().len(), 3);
}

/// Other errors are never retried: a 400 stays one request.
#[tokio::test]
async fn other_errors_are_not_retried() {
    let body = r#"{"code": 21211, "message": "The 'To' number is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
    let api = replay(Answer::json(400, body).retry_after("0")).await;
    twilio(&config(&api.base_url))
        .send(&code_message("sms", TO))
        .await
        .unwrap_err();
    api.only_request();
}
