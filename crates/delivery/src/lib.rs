//! Out-of-band delivery of codes, links and notices. Every message goes to a contact of record;
//! the caller decides which, never the person on the phone.
//!
//! - [`OutboxFile`] appends messages to a file for the demo and tests, [`Unconfigured`] refuses
//!   everything (module `outbox`);
//! - [`SmtpDelivery`] sends `email` messages through an SMTP relay (module `smtp`);
//! - [`TwilioDelivery`] sends `sms` and `voice` messages through Twilio's REST API or a service
//!   speaking its wire format (module `twilio`);
//! - [`ChannelRouter`] dispatches each message to the adapter for its channel and fails closed
//!   when there is none (module `router`);
//! - [`Config`] and [`build`] turn the `[delivery]` configuration into one [`Delivery`] (module
//!   `config`).
//!
//! The secret a message carries (code, link, password, pass) lives only in [`Message::secret`],
//! which is never serialized by serde, and no adapter puts it, the body or a password into a log
//! line or an error.

mod config;
mod metered;
mod outbox;
mod router;
mod smtp;
mod twilio;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use config::{Config, ConfigError, build};
pub use outbox::{OutboxFile, Unconfigured};
pub use router::ChannelRouter;
pub use smtp::{SmtpConfig, SmtpDelivery, SmtpTls};
pub use twilio::{TwilioConfig, TwilioDelivery};

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

/// The channels a [`Message`] can name in its `channel` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Channel {
    Email,
    Sms,
    Voice,
}

impl Channel {
    /// The channel a message names, or `None` for a name no adapter serves.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            "voice" => Some(Self::Voice),
            _ => None,
        }
    }

    /// The name to put in [`Message::channel`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }
}

/// Why a message was not delivered. None of these carry the message body or its secret, so they
/// can be logged and shown to the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The outbox could not be written, or no channel is configured at all.
    #[error("delivery failed: {0}")]
    Failed(String),
    /// No adapter is configured for the message's channel.
    #[error("no delivery adapter is configured for channel {channel:?}")]
    NoAdapter { channel: String },
    /// The adapter the message reached does not serve its channel.
    #[error("the {adapter} adapter does not send {channel:?} messages")]
    UnsupportedChannel {
        adapter: &'static str,
        channel: String,
    },
    /// The message cannot be sent as it is (bad address, a secret the channel cannot carry, a
    /// sender the configuration lacks). `reason` never quotes the body or the secret.
    #[error("cannot send this {channel} message: {reason}")]
    InvalidMessage {
        channel: &'static str,
        reason: String,
    },
    /// The provider could not be reached or did not answer in time; trying again may work.
    #[error("{provider} is unreachable: {reason}")]
    Unreachable {
        provider: &'static str,
        reason: String,
    },
    /// The SMTP server answered the transaction with an error reply.
    #[error("the SMTP server refused the message ({}): {reason}", if *permanent { "permanent" } else { "transient" })]
    SmtpRejected { permanent: bool, reason: String },
    /// The SMTP conversation failed for another reason (for example STARTTLS is required and the
    /// server does not offer it).
    #[error("SMTP error: {reason}")]
    Smtp { reason: String },
    /// Twilio answered with its documented error body (`code`, `message`, `more_info`, `status`).
    /// `code` is Twilio's error code (<https://www.twilio.com/docs/api/errors>), absent for
    /// plain HTTP errors such as a wrong URL.
    #[error("Twilio refused the request (HTTP {status}{}): {message}", code.map(|c| format!(", error {c}")).unwrap_or_default())]
    Twilio {
        status: u16,
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    /// The provider answered something its documentation does not describe.
    #[error("unexpected response from {provider} (HTTP {status}): {reason}")]
    UnexpectedResponse {
        provider: &'static str,
        status: u16,
        reason: String,
    },
}

#[async_trait]
pub trait Delivery: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError>;
}
