//! Shared test helpers: messages carrying a code, the secret-leak check, and the Twilio replay
//! server.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use deskgate_delivery::{DeliveryError, Message, Secret};

pub(crate) const CODE: &str = "482913";
pub(crate) const BODY: &str = "Your Deskgate verification code is 482913. The help desk will ask you to \
                        read it back. It expires in 10 minutes. If you did not call the help \
                        desk, do not share it.";

/// reqwest is built with `rustls-no-provider`; the server installs ring at start-up, tests here.
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn code_message(channel: &str, to: &str) -> Message {
    Message {
        to: to.to_owned(),
        channel: channel.to_owned(),
        kind: "verification_code".to_owned(),
        subject_id: "alice".to_owned(),
        case_id: Some("case-1".to_owned()),
        body: BODY.to_owned(),
        secret: Some(Secret::Code(CODE.to_owned())),
    }
}

/// Errors are logged and shown to agents: neither the code nor the body may appear in them.
pub(crate) fn assert_clean(error: &DeliveryError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(
            !text.contains(CODE),
            "the code leaked into the error: {text}"
        );
        assert!(
            !text.contains("verification code is"),
            "the body leaked: {text}"
        );
    }
}

/// A free port on 127.0.0.1 (nothing listens on it once this returns).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub(crate) const AUTH_TOKEN: &str = "test-auth-token";
/// `Basic base64("AC0123456789abcdef0123456789abcdef:test-auth-token")`, computed outside Rust.
pub(crate) const BASIC_AUTH: &str =
    "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0ZXN0LWF1dGgtdG9rZW4=";

/// One request as the replay server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) form: Vec<(String, String)>,
}

impl Recorded {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the replay server answers to a correctly authenticated request.
#[derive(Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
    /// A `Retry-After` header, as Twilio sends with 429.
    pub(crate) retry_after: Option<&'static str>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_owned(),
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, seconds: &'static str) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// Twilio's answer to wrong credentials, as documented for error 20003
/// (https://www.twilio.com/docs/api/errors/20003; exception format from
/// https://www.twilio.com/docs/usage/twilios-response): HTTP 401 with the exception JSON.
const AUTH_ERROR: &str = r#"{"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authentication Error - invalid username", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#;

pub(crate) struct Replay {
    pub(crate) base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Replay {
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The one request the test expects to have been made.
    pub(crate) fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one request: {requests:?}"
        );
        requests.into_iter().next().unwrap()
    }
}

/// An HTTP server on 127.0.0.1:0 standing in for api.twilio.com: it records every request,
/// answers 401/20003 when the basic-auth header is not [`BASIC_AUTH`] (as Twilio does), and
/// otherwise gives `answer`.
pub(crate) async fn replay(answer: Answer) -> Replay {
    replay_sequence(vec![answer]).await
}

/// Like [`replay`], answering the n-th authorized request with `answers[n]`, and every later one
/// with the last.
pub(crate) async fn replay_sequence(answers: Vec<Answer>) -> Replay {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let answered = Arc::new(Mutex::new(0usize));
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = Arc::clone(&seen);
            let answer = {
                let mut n = answered.lock().unwrap();
                let answer = answers[(*n).min(answers.len() - 1)].clone();
                *n += 1;
                answer
            };
            async move {
                let text = |name| {
                    headers
                        .get(name)
                        .and_then(|v: &header::HeaderValue| v.to_str().ok())
                        .map(str::to_owned)
                };
                let recorded = Recorded {
                    method,
                    path: uri.path().to_owned(),
                    authorization: text(header::AUTHORIZATION),
                    content_type: text(header::CONTENT_TYPE),
                    form: url::form_urlencoded::parse(&body).into_owned().collect(),
                };
                let authorized = recorded.authorization.as_deref() == Some(BASIC_AUTH);
                seen.lock().unwrap().push(recorded);
                let (status, content_type, body) = if authorized {
                    (answer.status, answer.content_type, answer.body)
                } else {
                    (401, "application/json", AUTH_ERROR.to_owned())
                };
                let mut response: Response = (
                    StatusCode::from_u16(status).unwrap(),
                    [(header::CONTENT_TYPE, content_type)],
                    body,
                )
                    .into_response();
                if let Some(seconds) = answer.retry_after.filter(|_| authorized) {
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        header::HeaderValue::from_static(seconds),
                    );
                }
                response
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Replay { base_url, requests }
}
