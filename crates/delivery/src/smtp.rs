//! Email through an SMTP relay with `lettre`: STARTTLS (the default), implicit TLS, or plain
//! SMTP for a relay on the same host or network segment.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::{Channel, ConfigError, Delivery, DeliveryError, Message};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; the send fails if the server does not offer it
    /// (never a silent downgrade). Default port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS). Default port 465.
    Tls,
    /// No encryption at all: only for a relay on localhost or a trusted local segment (a
    /// sidecar MTA, a test sink). Messages carry codes and links, so never use it across a
    /// network you do not control; credentials are refused in this mode. Default port 25.
    None,
}

/// `[delivery.smtp]`: where and how to hand email over.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Defaults to 587, 465 or 25 depending on `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, `address@example.org` or `Name <address@example.org>`.
    pub from: String,
    /// Bound on one whole send (connect, TLS, AUTH, transaction), in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    10
}

// Written by hand so that the password never reaches a log through `{:?}`.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// Sends `email` messages as `text/plain` through one relay; refuses every other channel.
pub struct SmtpDelivery {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl SmtpDelivery {
    /// Checks the configuration and prepares the connection pool. Must run inside a Tokio
    /// runtime: the pool spawns a task that closes idle connections.
    pub fn new(config: &SmtpConfig) -> Result<Self, ConfigError> {
        // lettre panics when the pool is built outside a runtime; say so instead.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| ConfigError::SmtpFrom {
                reason: e.to_string(),
            })?;
        let credentials = match (&config.username, &config.password) {
            (None, None) => None,
            (Some(user), Some(pass)) => Some(Credentials::new(user.clone(), pass.clone())),
            _ => return Err(ConfigError::SmtpIncompleteCredentials),
        };
        if credentials.is_some() && config.tls == SmtpTls::None {
            return Err(ConfigError::SmtpCredentialsWithoutTls);
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let relay_error = |e: lettre::transport::smtp::Error| ConfigError::SmtpHost {
            reason: e.to_string(),
        };
        let (builder, default_port) = match config.tls {
            SmtpTls::Starttls => (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(relay_error)?,
                587,
            ),
            SmtpTls::Tls => (
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(relay_error)?,
                465,
            ),
            SmtpTls::None => (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
                25,
            ),
        };
        let mut builder = builder
            .port(config.port.unwrap_or(default_port))
            .timeout(Some(timeout));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        Ok(Self {
            transport: builder.build(),
            from,
            timeout,
        })
    }
}

/// The subject line for a message kind. It names what the message is and never carries the
/// secret: subjects show up in notification previews and mail logs.
fn subject_for(kind: &str) -> &'static str {
    match kind {
        "verification_code" => "Your help desk verification code",
        "attestation_link" => "Please confirm a help desk request",
        "temporary_password" => "Your temporary password",
        "temporary_access_pass" => "Your temporary access pass",
        "service_credential" => "A service credential was rotated",
        "recovery_notice" => "A change was made to your account",
        _ => "A message from the help desk",
    }
}

fn invalid(reason: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::InvalidMessage {
        channel: "email",
        reason: reason.to_string(),
    }
}

/// Sorts lettre's errors into "could not talk to the server" (retry later), "the server said
/// no" and the rest. lettre's texts hold the server's reply and I/O causes, not message data.
fn smtp_error(e: lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() || e.is_transient() {
        DeliveryError::SmtpRejected {
            permanent: e.is_permanent(),
            reason: e.to_string(),
        }
    } else if e.is_client() || e.is_response() {
        DeliveryError::Smtp {
            reason: e.to_string(),
        }
    } else {
        DeliveryError::Unreachable {
            provider: "SMTP server",
            reason: e.to_string(),
        }
    }
}

#[async_trait]
impl Delivery for SmtpDelivery {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        if Channel::parse(&message.channel) != Some(Channel::Email) {
            return Err(DeliveryError::UnsupportedChannel {
                adapter: "SMTP",
                channel: message.channel.clone(),
            });
        }
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                invalid(format_args!("recipient address: {e}"))
            })?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject_for(&message.kind))
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(invalid)?;
        let response = tokio::time::timeout(self.timeout, self.transport.send(email))
            .await
            .map_err(|_| DeliveryError::Unreachable {
                provider: "SMTP server",
                reason: format!("no answer within {} s", self.timeout.as_secs()),
            })?
            .map_err(smtp_error)?;
        tracing::debug!(
            kind = %message.kind,
            smtp_reply = %response.code(),
            "email handed to the SMTP relay"
        );
        Ok(())
    }
}
