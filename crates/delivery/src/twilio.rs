//! SMS and voice calls through Twilio's REST API (2010-04-01 Messages and Calls resources), or
//! any service that speaks the same wire format at another base URL.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::{Channel, ConfigError, Delivery, DeliveryError, Message, Secret};

const PROVIDER: &str = "Twilio";

/// `[delivery.twilio]`: account credentials and senders.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// `https://api.twilio.com` unless a compatible service or a test double is used; plain
    /// `http` is accepted only for loopback addresses, since every request carries the token.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// `AC...`; also the HTTP basic-auth user name.
    pub account_sid: String,
    pub auth_token: String,
    /// Caller ID for calls, and the SMS sender when no messaging service is set (E.164).
    #[serde(default)]
    pub from: Option<String>,
    /// `MG...`: send SMS through a messaging service (sender pool) instead of `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Bound on one API request, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// On 429 (Twilio error 20429) the request was not accepted, so it is safe to send again:
    /// Deskgate waits as long as `Retry-After` asks, up to this many seconds, and tries at most
    /// twice more. A longer wait is not made: the agent is on the phone and gets the error.
    #[serde(default = "default_max_retry_wait_secs")]
    pub max_retry_wait_secs: u64,
}

fn default_max_retry_wait_secs() -> u64 {
    5
}

fn default_base_url() -> String {
    "https://api.twilio.com".to_owned()
}

fn default_timeout_secs() -> u64 {
    10
}

// Written by hand so that the auth token never reaches a log through `{:?}`.
impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_retry_wait_secs", &self.max_retry_wait_secs)
            .finish()
    }
}

/// Sends `sms` messages (Messages resource) and `voice` messages (Calls resource, inline TwiML
/// that reads the code digit by digit); refuses every other channel.
pub struct TwilioDelivery {
    client: reqwest::Client,
    messages_url: Url,
    calls_url: Url,
    account_sid: String,
    auth_token: String,
    /// The form field naming the SMS sender and its value: a messaging service wins over `from`.
    sms_sender: (&'static str, String),
    /// Caller ID; calls cannot go out through a messaging service.
    voice_from: Option<String>,
    timeout: Duration,
    max_retry_wait: Duration,
}

/// Retries after a 429; only a refusal is retried, never a timeout, which may have sent.
const MAX_RETRIES: u32 = 2;

impl TwilioDelivery {
    /// Checks the configuration and builds the HTTP client. reqwest is built without a rustls
    /// crypto provider, so the process must have installed one (ring) before this is called.
    pub fn new(config: &TwilioConfig) -> Result<Self, ConfigError> {
        // The SID becomes a path segment: anything but letters and digits could reach another
        // resource.
        if config.account_sid.is_empty()
            || !config
                .account_sid
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return Err(ConfigError::TwilioAccountSid);
        }
        let sms_sender = match (&config.messaging_service_sid, &config.from) {
            (Some(service), _) => ("MessagingServiceSid", service.clone()),
            (None, Some(from)) => ("From", from.clone()),
            (None, None) => return Err(ConfigError::TwilioNoSender),
        };
        let base = parse_base_url(&config.base_url)?;
        let endpoint = |resource: &str| {
            base.join(&format!(
                "2010-04-01/Accounts/{}/{resource}.json",
                config.account_sid
            ))
            .map_err(|e| ConfigError::TwilioBaseUrl {
                reason: e.to_string(),
            })
        };
        let messages_url = endpoint("Messages")?;
        let calls_url = endpoint("Calls")?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(ConfigError::NoCryptoProvider);
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // The API never redirects; following one would replay the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            client,
            messages_url,
            calls_url,
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            sms_sender,
            voice_from: config.from.clone(),
            timeout,
            max_retry_wait: Duration::from_secs(config.max_retry_wait_secs),
        })
    }

    /// POSTs `form`, sending again after a 429 when `Retry-After` asks for a short wait.
    async fn post(&self, url: &Url, form: &[(&str, &str)]) -> Result<Resource, DeliveryError> {
        let mut retries = 0;
        loop {
            match self.exchange(url, form).await {
                Err(Throttled { error, wait }) if retries < MAX_RETRIES => match wait {
                    Some(wait) if wait <= self.max_retry_wait => {
                        retries += 1;
                        tracing::info!(
                            provider = PROVIDER,
                            wait_ms = wait.as_millis() as u64,
                            retries,
                            "throttled; sending again"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    _ => return Err(error),
                },
                Err(Throttled { error, .. }) => return Err(error),
                Ok(resource) => return Ok(resource),
            }
        }
    }

    /// One request. An error carries the wait a 429 asked for (`Retry-After` in seconds,
    /// or one second when the header is missing).
    async fn exchange(&self, url: &Url, form: &[(&str, &str)]) -> Result<Resource, Throttled> {
        let failed = |error, wait| Throttled { error, wait };
        let response = self
            .client
            .post(url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|e| failed(self.transport_error(&e), None))?;
        let status = response.status();
        let wait = (status == reqwest::StatusCode::TOO_MANY_REQUESTS).then(|| {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs)
        });
        let bytes = response
            .bytes()
            .await
            .map_err(|e| failed(self.transport_error(&e), None))?;
        if status.is_success() {
            serde_json::from_slice::<Resource>(&bytes).map_err(|_| {
                failed(
                    DeliveryError::UnexpectedResponse {
                        provider: PROVIDER,
                        status: status.as_u16(),
                        reason: "the body is not the documented resource JSON".to_owned(),
                    },
                    None,
                )
            })
        } else {
            Err(failed(api_error(status.as_u16(), &bytes), wait))
        }
    }

    /// Describes a failed exchange by kind and cause. The URL is left out: it is ours, and the
    /// operator already knows it.
    fn transport_error(&self, e: &reqwest::Error) -> DeliveryError {
        let reason = if e.is_timeout() {
            format!("no answer within {} s", self.timeout.as_secs())
        } else {
            let mut reason = String::from(if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            });
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                reason.push_str(": ");
                reason.push_str(&cause.to_string());
                source = cause.source();
            }
            reason
        };
        DeliveryError::Unreachable {
            provider: PROVIDER,
            reason,
        }
    }
}

impl TwilioDelivery {
    /// Places a call to `to` from the configured caller ID that runs `twiml` (Calls resource,
    /// `Twiml` parameter), and returns the new call's SID. Used for callbacks whose TwiML
    /// gathers digits; the number is never logged.
    pub async fn place_call(&self, to: &str, twiml: &str) -> Result<String, DeliveryError> {
        let from = self
            .voice_from
            .as_deref()
            .ok_or_else(|| DeliveryError::InvalidMessage {
                channel: "voice",
                reason: "twilio.from is not configured (calls need a caller ID)".to_owned(),
            })?;
        let form = [("To", to), ("From", from), ("Twiml", twiml)];
        let created = self.post(&self.calls_url, &form).await?;
        tracing::info!(
            sid = %created.sid,
            status = created.status.as_deref().unwrap_or(""),
            "callback handed to Twilio"
        );
        Ok(created.sid)
    }
}

/// A failed request and, for a 429, how long the API asked us to wait.
struct Throttled {
    error: DeliveryError,
    wait: Option<Duration>,
}

fn parse_base_url(text: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::TwilioBaseUrl { reason };
    // A trailing slash makes `join` append to the base path instead of replacing its last
    // segment, so a base with a path prefix (a proxy) keeps it.
    let mut base = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    match base.scheme() {
        "https" => Ok(base),
        "http" if is_loopback(&base) => Ok(base),
        "http" => Err(invalid(
            "plain http is only allowed for loopback addresses; use https".to_owned(),
        )),
        other => Err(invalid(format!("unsupported scheme {other:?}"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The part of a created Message or Call resource we look at (the 201 body carries many more
/// fields; see the resource documentation).
#[derive(Deserialize)]
struct Resource {
    sid: String,
    status: Option<String>,
}

/// Twilio's documented error body: `{"code", "message", "more_info", "status"}`.
#[derive(Deserialize)]
struct ApiError {
    code: Option<u32>,
    message: String,
    more_info: Option<String>,
}

/// Maps an error status and body to an error. A body that is not Twilio's error JSON is not
/// quoted: it is unknown text from an unknown hop.
fn api_error(status: u16, body: &[u8]) -> DeliveryError {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(error) => DeliveryError::Twilio {
            status,
            code: error.code,
            message: error.message,
            more_info: error.more_info,
        },
        Err(_) => DeliveryError::UnexpectedResponse {
            provider: PROVIDER,
            status,
            reason: "the error body is not Twilio's error JSON".to_owned(),
        },
    }
}

/// Inline TwiML for a call that reads the message out. A code is spelled digit by digit
/// ("1, 2, 3") so that text-to-speech does not read it as one number. Links, passwords and
/// passes are refused: they cannot be dictated reliably and belong in a written channel.
fn voice_twiml(message: &Message) -> Result<String, DeliveryError> {
    let text = match &message.secret {
        None => message.body.clone(),
        Some(Secret::Code(code)) if !code.is_empty() => {
            let spelled: Vec<String> = code.chars().map(String::from).collect();
            message.body.replace(code.as_str(), &spelled.join(", "))
        }
        Some(Secret::Code(_)) => message.body.clone(),
        Some(Secret::Link(_) | Secret::Password(_) | Secret::Pass(_)) => {
            return Err(DeliveryError::InvalidMessage {
                channel: "voice",
                reason: "a call can only read out a one-time code; send links, passwords and \
                         passes by sms or email"
                    .to_owned(),
            });
        }
    };
    Ok(format!(
        "<Response><Say>{}</Say></Response>",
        xml_escape(&text)
    ))
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[async_trait]
impl Delivery for TwilioDelivery {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let channel = Channel::parse(&message.channel);
        let created = match channel {
            Some(Channel::Sms) => {
                let (field, sender) = &self.sms_sender;
                let form = [
                    ("To", message.to.as_str()),
                    (field, sender.as_str()),
                    ("Body", &message.body),
                ];
                self.post(&self.messages_url, &form).await?
            }
            Some(Channel::Voice) => {
                let from =
                    self.voice_from
                        .as_deref()
                        .ok_or_else(|| DeliveryError::InvalidMessage {
                            channel: "voice",
                            reason: "twilio.from is not configured (calls need a caller ID)"
                                .to_owned(),
                        })?;
                let twiml = voice_twiml(message)?;
                let form = [
                    ("To", message.to.as_str()),
                    ("From", from),
                    ("Twiml", &twiml),
                ];
                self.post(&self.calls_url, &form).await?
            }
            _ => {
                return Err(DeliveryError::UnsupportedChannel {
                    adapter: PROVIDER,
                    channel: message.channel.clone(),
                });
            }
        };
        tracing::info!(
            channel = %message.channel,
            kind = %message.kind,
            sid = %created.sid,
            status = created.status.as_deref().unwrap_or(""),
            "handed to Twilio"
        );
        Ok(())
    }
}
