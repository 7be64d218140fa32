//! The delivery section of the server configuration and the one place that turns it into a
//! [`Delivery`].

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    Channel, ChannelRouter, Delivery, OutboxFile, SmtpConfig, SmtpDelivery, TwilioConfig,
    TwilioDelivery, Unconfigured,
};

/// Which channels exist and how they are reached. With nothing set every send fails
/// ([`Unconfigured`]), so no step proceeds on a message nobody received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Demo and tests: append every message, on every channel, to `DATA_DIR/outbox.jsonl`
    /// instead of sending it. Cannot be combined with a real channel.
    pub outbox_file: bool,
    /// Email through an SMTP relay.
    pub smtp: Option<SmtpConfig>,
    /// SMS and voice through Twilio.
    pub twilio: Option<TwilioConfig>,
}

/// Why the delivery configuration was refused at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error(
        "delivery: outbox_file sends nothing and would swallow the configured channels; set \
         either outbox_file or smtp/twilio"
    )]
    OutboxWithChannels,
    #[error("delivery.smtp.from is not an email address: {reason}")]
    SmtpFrom { reason: String },
    #[error("delivery.smtp: username and password must be set together")]
    SmtpIncompleteCredentials,
    #[error(
        "delivery.smtp: credentials need tls = \"starttls\" or \"tls\"; with tls = \"none\" they \
         would cross the network in clear"
    )]
    SmtpCredentialsWithoutTls,
    #[error("delivery.smtp.host: {reason}")]
    SmtpHost { reason: String },
    #[error("delivery.twilio.account_sid must be letters and digits (AC...)")]
    TwilioAccountSid,
    #[error("delivery.twilio: set from or messaging_service_sid")]
    TwilioNoSender,
    #[error("delivery.twilio.base_url: {reason}")]
    TwilioBaseUrl { reason: String },
    #[error(
        "no rustls crypto provider is installed; call \
         rustls::crypto::ring::default_provider().install_default() at start-up"
    )]
    NoCryptoProvider,
    #[error("delivery: adapters must be built inside a Tokio runtime")]
    NoRuntime,
    #[error("delivery: cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// Builds the delivery the server uses: the outbox file, a [`ChannelRouter`] over the configured
/// adapters (email -> SMTP, sms and voice -> Twilio), or [`Unconfigured`]. Call it inside the
/// Tokio runtime, after installing the rustls crypto provider (see [`ConfigError`]). Every send
/// is timed and counted (see `metered`).
pub fn build(config: &Config, data_dir: &Path) -> Result<Arc<dyn Delivery>, ConfigError> {
    let adapters = adapters(config, data_dir)?;
    Ok(Arc::new(crate::metered::Metered(adapters)))
}

fn adapters(config: &Config, data_dir: &Path) -> Result<Arc<dyn Delivery>, ConfigError> {
    let has_channels = config.smtp.is_some() || config.twilio.is_some();
    if config.outbox_file {
        if has_channels {
            return Err(ConfigError::OutboxWithChannels);
        }
        return Ok(Arc::new(OutboxFile::new(data_dir.join("outbox.jsonl"))));
    }
    if !has_channels {
        return Ok(Arc::new(Unconfigured));
    }
    let mut router = ChannelRouter::new();
    if let Some(smtp) = &config.smtp {
        router = router.route(Channel::Email, Arc::new(SmtpDelivery::new(smtp)?));
    }
    if let Some(twilio) = &config.twilio {
        let twilio: Arc<dyn Delivery> = Arc::new(TwilioDelivery::new(twilio)?);
        router = router
            .route(Channel::Sms, Arc::clone(&twilio))
            .route(Channel::Voice, twilio);
    }
    Ok(Arc::new(router))
}
