//! ChannelRouter, Config/build, the outbox and the serde rules of Message.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deskgate_delivery::{
    Channel, ChannelRouter, Config, ConfigError, Delivery, DeliveryError, Message, build,
};

use crate::support::{ACCOUNT_SID, AUTH_TOKEN, Answer, CODE, code_message, free_port, replay};

/// Remembers the channels of the messages it was given.
#[derive(Default)]
struct Recorder {
    channels: Mutex<Vec<String>>,
}

#[async_trait]
impl Delivery for Recorder {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        self.channels.lock().unwrap().push(message.channel.clone());
        Ok(())
    }
}

#[tokio::test]
async fn the_router_sends_each_channel_to_its_adapter_and_nothing_else() {
    let email = Arc::new(Recorder::default());
    let phone = Arc::new(Recorder::default());
    let router = ChannelRouter::new()
        .route(Channel::Email, email.clone())
        .route(Channel::Sms, phone.clone());

    router
        .send(&code_message("email", "a@example.org"))
        .await
        .unwrap();
    router
        .send(&code_message("sms", "+15558675310"))
        .await
        .unwrap();
    for channel in ["voice", "fax", "EMAIL", ""] {
        let error = router
            .send(&code_message(channel, "+15558675310"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, DeliveryError::NoAdapter { channel: c } if c == channel),
            "{channel}: {error:?}"
        );
    }
    assert_eq!(*email.channels.lock().unwrap(), ["email"]);
    assert_eq!(*phone.channels.lock().unwrap(), ["sms"]);
}

fn config_from(json: serde_json::Value) -> Config {
    serde_json::from_value(json).unwrap()
}

#[tokio::test]
async fn the_outbox_configuration_writes_every_channel_with_its_secret_to_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let delivery = build(
        &config_from(serde_json::json!({"outbox_file": true})),
        dir.path(),
    )
    .unwrap();
    delivery
        .send(&code_message("sms", "+15558675310"))
        .await
        .unwrap();
    delivery
        .send(&code_message("voice", "+15558675310"))
        .await
        .unwrap();

    let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["channel"], "sms");
    assert_eq!(lines[0]["to"], "+15558675310");
    assert_eq!(
        lines[0]["code"], CODE,
        "the demo reads the code from the outbox"
    );
    assert_eq!(lines[1]["channel"], "voice");
}

#[tokio::test]
async fn nothing_configured_refuses_every_send() {
    let dir = tempfile::tempdir().unwrap();
    let delivery = build(&Config::default(), dir.path()).unwrap();
    let error = delivery
        .send(&code_message("email", "a@example.org"))
        .await
        .unwrap_err();
    assert!(matches!(error, DeliveryError::Failed(_)), "{error:?}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn the_outbox_cannot_hide_real_channels() {
    let config = config_from(serde_json::json!({
        "outbox_file": true,
        "smtp": {"host": "relay.example.org", "from": "deskgate@example.org"}
    }));
    assert!(matches!(
        build(&config, std::path::Path::new(".")).err(),
        Some(ConfigError::OutboxWithChannels)
    ));
}

#[test]
fn unknown_configuration_keys_are_refused() {
    assert!(serde_json::from_value::<Config>(serde_json::json!({"outbox": true})).is_err());
    assert!(
        serde_json::from_value::<Config>(serde_json::json!({
            "smtp": {"host": "relay.example.org", "from": "deskgate@example.org", "pass": "x"}
        }))
        .is_err()
    );
}

#[tokio::test]
async fn built_channels_reach_smtp_and_twilio_and_the_rest_fails_closed() {
    crate::support::install_crypto();
    let api = replay(Answer::json(
        201,
        r#"{"sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued"}"#,
    ))
    .await;
    let config = config_from(serde_json::json!({
        // Nothing listens here: an email must come back as the SMTP server being unreachable.
        "smtp": {"host": "127.0.0.1", "port": free_port(), "tls": "none",
                 "from": "deskgate@example.org", "timeout_secs": 5},
        "twilio": {"base_url": api.base_url, "account_sid": ACCOUNT_SID,
                   "auth_token": AUTH_TOKEN, "from": "+15017122661"}
    }));
    let dir = tempfile::tempdir().unwrap();
    let delivery = build(&config, dir.path()).unwrap();

    let email = delivery
        .send(&code_message("email", "a@example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            email,
            DeliveryError::Unreachable {
                provider: "SMTP server",
                ..
            }
        ),
        "{email:?}"
    );
    delivery
        .send(&code_message("sms", "+15558675310"))
        .await
        .unwrap();
    delivery
        .send(&code_message("voice", "+15558675310"))
        .await
        .unwrap();
    let paths: Vec<String> = api.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"),
            format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"),
        ]
    );
    let fax = delivery
        .send(&code_message("fax", "+15558675310"))
        .await
        .unwrap_err();
    assert!(matches!(fax, DeliveryError::NoAdapter { .. }), "{fax:?}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no outbox"
    );
}

#[tokio::test]
async fn only_email_configured_leaves_phone_channels_closed() {
    let config = config_from(serde_json::json!({
        "smtp": {"host": "127.0.0.1", "port": free_port(), "tls": "none",
                 "from": "deskgate@example.org"}
    }));
    let delivery = build(&config, std::path::Path::new(".")).unwrap();
    for channel in ["sms", "voice"] {
        let error = delivery
            .send(&code_message(channel, "+15558675310"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DeliveryError::NoAdapter { .. }),
            "{error:?}"
        );
    }
}

#[test]
fn a_message_never_serializes_its_secret() {
    let json = serde_json::to_string(&Message {
        body: "see the secret field".to_owned(),
        ..code_message("sms", "+15558675310")
    })
    .unwrap();
    assert!(!json.contains(CODE), "{json}");
    assert!(!json.contains("secret\":"), "{json}");
}
