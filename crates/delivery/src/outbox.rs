//! The demo's delivery: an append-only JSON-lines outbox a human or a test reads, and the
//! fail-closed stand-in used when nothing is configured.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::{Delivery, DeliveryError, Message, Secret};

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
        // One writer at a time, so concurrent sends never interleave within a line.
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
