//! SmtpDelivery against a real SMTP server (aiosmtpd, see tests/fixtures/smtp_sink.py).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deskgate_delivery::{Delivery, DeliveryError, SmtpConfig, SmtpDelivery, SmtpTls};

use crate::support::{BODY, CODE, assert_clean, code_message, free_port};

/// A running `smtp_sink.py`, killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    /// Starts the sink with `$DESKGATE_PYTHON` (default `python3`) and waits until it accepts
    /// connections. Fails, never skips, when aiosmtpd is missing: a skipped test proves nothing.
    fn start() -> Self {
        let python = std::env::var("DESKGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("received.jsonl");
        let port = free_port();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}; set DESKGATE_PYTHON"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!(
                    "the SMTP sink exited ({status}): {stderr}\nThese tests need aiosmtpd: run \
                     the test command in crates/delivery/README.md (pip install aiosmtpd)"
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP sink did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sink {
            child,
            port,
            file,
            _dir: dir,
        }
    }

    /// Every message received so far, as the sink's JSON lines.
    fn received(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(&self.file) {
            Ok(text) => text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading the sink file: {e}"),
        }
    }
}

fn config(port: u16, tls: SmtpTls) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        tls,
        username: None,
        password: None,
        from: "Deskgate <deskgate@example.org>".to_owned(),
        timeout_secs: 5,
    }
}

/// Splits raw message data into its header block and its body, undoing quoted-printable
/// when the message uses it.
fn parse_email(data: &str) -> (String, String) {
    let (headers, body) = data.split_once("\r\n\r\n").unwrap();
    let qp = headers
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable");
    let body = if qp { decode_qp(body) } else { body.to_owned() };
    (headers.to_owned(), body)
}

fn decode_qp(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn sends_an_email_that_a_real_smtp_server_receives() {
    let sink = Sink::start();
    let smtp = SmtpDelivery::new(&config(sink.port, SmtpTls::None)).unwrap();
    smtp.send(&code_message("email", "alice@example.org"))
        .await
        .unwrap();

    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let mail = &received[0];
    assert_eq!(mail["mail_from"], "deskgate@example.org");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["alice@example.org"]));
    let (headers, body) = parse_email(mail["data"].as_str().unwrap());
    assert!(
        headers.contains("\r\nSubject: Your help desk verification code\r\n")
            || headers.starts_with("Subject: Your help desk verification code\r\n"),
        "{headers}"
    );
    assert!(
        !headers.contains(CODE),
        "the code must not be in a header: {headers}"
    );
    assert!(headers.contains("To: alice@example.org"), "{headers}");
    assert!(headers.contains("Content-Type: text/plain"), "{headers}");
    assert_eq!(body.trim_end(), BODY);
}

#[tokio::test]
async fn a_server_that_is_down_gives_a_clear_error_quickly() {
    // Nothing listens on a port just released.
    let smtp = SmtpDelivery::new(&config(free_port(), SmtpTls::None)).unwrap();
    let started = Instant::now();
    let error = smtp
        .send(&code_message("email", "alice@example.org"))
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
                provider: "SMTP server",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("SMTP server is unreachable"),
        "{error}"
    );
    assert_clean(&error);
}

#[tokio::test]
async fn a_recipient_the_server_refuses_is_a_permanent_rejection() {
    let sink = Sink::start();
    let smtp = SmtpDelivery::new(&config(sink.port, SmtpTls::None)).unwrap();
    let error = smtp
        .send(&code_message("email", "unknown@example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::SmtpRejected {
                permanent: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("550"), "{error}");
    assert_clean(&error);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn starttls_is_required_not_downgraded_when_the_server_lacks_it() {
    // The sink offers no STARTTLS: a relay that strips it must not get the code in clear.
    let sink = Sink::start();
    let smtp = SmtpDelivery::new(&config(sink.port, SmtpTls::Starttls)).unwrap();
    let error = smtp
        .send(&code_message("email", "alice@example.org"))
        .await
        .unwrap_err();
    assert!(matches!(error, DeliveryError::Smtp { .. }), "{error:?}");
    assert!(error.to_string().contains("STARTTLS"), "{error}");
    assert_clean(&error);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn refuses_channels_other_than_email() {
    let sink = Sink::start();
    let smtp = SmtpDelivery::new(&config(sink.port, SmtpTls::None)).unwrap();
    for channel in ["sms", "voice", "fax"] {
        let error = smtp
            .send(&code_message(channel, "alice@example.org"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, DeliveryError::UnsupportedChannel { adapter: "SMTP", channel: c } if c == channel),
            "{error:?}"
        );
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn an_invalid_recipient_is_refused_before_connecting() {
    // Nothing listens on the port: had the adapter tried to connect, this would be Unreachable.
    let smtp = SmtpDelivery::new(&config(free_port(), SmtpTls::None)).unwrap();
    let error = smtp
        .send(&code_message("email", "not an address"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::InvalidMessage {
                channel: "email",
                ..
            }
        ),
        "{error:?}"
    );
    assert_clean(&error);
}

#[tokio::test]
async fn configuration_mistakes_are_refused() {
    use deskgate_delivery::ConfigError;

    let mut bad_from = config(25, SmtpTls::Starttls);
    bad_from.from = "deskgate".to_owned();
    assert!(matches!(
        SmtpDelivery::new(&bad_from),
        Err(ConfigError::SmtpFrom { .. })
    ));

    let mut half = config(25, SmtpTls::Starttls);
    half.username = Some("relay-user".to_owned());
    assert!(matches!(
        SmtpDelivery::new(&half),
        Err(ConfigError::SmtpIncompleteCredentials)
    ));

    let mut clear = config(25, SmtpTls::None);
    clear.username = Some("relay-user".to_owned());
    clear.password = Some("relay-password".to_owned());
    assert!(matches!(
        SmtpDelivery::new(&clear),
        Err(ConfigError::SmtpCredentialsWithoutTls)
    ));

    clear.tls = SmtpTls::Starttls;
    assert!(SmtpDelivery::new(&clear).is_ok());
    let debug = format!("{clear:?}");
    assert!(!debug.contains("relay-password"), "{debug}");
    assert!(debug.contains("relay-user"), "{debug}");
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    use deskgate_delivery::ConfigError;
    assert!(matches!(
        SmtpDelivery::new(&config(25, SmtpTls::None)),
        Err(ConfigError::NoRuntime)
    ));
}

#[test]
fn the_tls_mode_is_read_from_configuration() {
    let parsed: SmtpConfig = serde_json::from_value(serde_json::json!({
        "host": "relay.example.org",
        "tls": "none",
        "from": "deskgate@example.org"
    }))
    .unwrap();
    assert_eq!(parsed.tls, SmtpTls::None);
    let default: SmtpConfig = serde_json::from_value(serde_json::json!({
        "host": "relay.example.org",
        "from": "deskgate@example.org"
    }))
    .unwrap();
    assert_eq!(
        default.tls,
        SmtpTls::Starttls,
        "STARTTLS must be the default"
    );
    let unknown = serde_json::from_value::<SmtpConfig>(serde_json::json!({
        "host": "relay.example.org",
        "from": "deskgate@example.org",
        "tls": "opportunistic"
    }));
    assert!(unknown.is_err());
}
