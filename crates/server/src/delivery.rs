//! Out-of-band delivery of codes, links and notices. Every message goes to a contact of record;
//! the caller decides which, never the person on the phone. The demo and tests use an outbox file
//! so that a human or a test can read what would have been sent.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One outgoing message. `secret` holds the code, password, pass or link the message carries;
/// it is never logged or written to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub to: String,
    /// `sms`, `email`, `voice`.
    pub channel: String,
    /// `verification_code`, `attestation_link`, `temporary_password`, `temporary_access_pass`,
    /// `recovery_notice`, ...
    pub kind: String,
    pub subject_id: String,
    pub case_id: Option<String>,
    pub body: String,
    #[serde(skip)]
    pub secret: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Code(String),
    Link(String),
    Password(String),
    Pass(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    #[error("delivery failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait Delivery: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError>;
}

/// Appends each message as one JSON line (`to`, `channel`, `kind`, `body`, and `code`, `link`,
/// `password` or `pass`) to a file: the demo's stand-in for SMS and email.
pub struct OutboxFile {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl OutboxFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait]
impl Delivery for OutboxFile {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let mut line =
            serde_json::to_value(message).map_err(|e| DeliveryError::Failed(e.to_string()))?;
        if let (Some(secret), Some(obj)) = (&message.secret, line.as_object_mut()) {
            let (key, value) = match secret {
                Secret::Code(v) => ("code", v),
                Secret::Link(v) => ("link", v),
                Secret::Password(v) => ("password", v),
                Secret::Pass(v) => ("pass", v),
            };
            obj.insert(key.to_owned(), serde_json::Value::String(value.clone()));
        }
        let mut text = line.to_string();
        text.push('\n');
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(text.as_bytes())?;
            f.sync_data()
        })
        .await
        .map_err(|e| DeliveryError::Failed(e.to_string()))?
        .map_err(|e| DeliveryError::Failed(e.to_string()))
    }
}

/// Used when no channel is configured: every send fails, so nothing proceeds on a message that
/// nobody received.
pub struct Unconfigured;

#[async_trait]
impl Delivery for Unconfigured {
    async fn send(&self, _message: &Message) -> Result<(), DeliveryError> {
        Err(DeliveryError::Failed(
            "no delivery channel is configured (set outbox_file = true or configure a channel)"
                .to_owned(),
        ))
    }
}
