//! Server configuration: what `deskgate serve --config` reads from TOML and `DESKGATE_*`
//! variables. Defaults are the safe values from the standards digest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use deskgate_core::Tier;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// The base URL people reach Deskgate at; links in messages start with it.
    pub public_url: String,
    /// `sqlite://PATH` or `postgres://...`; empty means `sqlite://DATA_DIR/deskgate.db`.
    pub database: String,
    /// Where the SQLite database, keys and the demo outbox live.
    pub data_dir: PathBuf,
    /// How codes, links and notices leave Deskgate: the demo outbox file, SMTP, an SMS/voice
    /// provider. With nothing configured every send fails, so nothing proceeds unsent.
    pub delivery: deskgate_delivery::Config,
    pub codes: CodeConfig,
    /// Directory group -> tier. A subject in several mapped groups gets the highest tier.
    pub tier_groups: BTreeMap<String, Tier>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a manager's attestation link stays valid.
    pub attestation_ttl_minutes: i64,
    /// Verifications one case may start; past it the case is denied or escalated, not retried.
    pub max_verifications_per_case: u32,
    /// Lifetime of a new integration API token, in days (1 to 366).
    pub api_token_days: i64,
    /// Where security alerts go ("this was not me", break-glass).
    pub security_contacts: Vec<String>,
    /// Offer one-click console sign-in as any staff member. Only `deskgate demo` sets it, in
    /// code: it is no configuration key, so no file or `DESKGATE_*` variable can turn it on
    /// under `deskgate serve` (a file naming it is refused as an unknown key).
    #[serde(skip)]
    pub demo_sign_in: bool,
    /// Identity-verification vendors whose signed webhooks count as `government_id`.
    pub idv: IdvConfig,
    /// The telephony provider (Twilio's Calls API and signed webhooks) that places callbacks to
    /// the phone of record; without it the callback method is not offered.
    pub telephony: Option<deskgate_delivery::TwilioConfig>,
    /// A policy bundle directory replacing the default pack compiled into the binary.
    pub policy_dir: Option<PathBuf>,
    /// The audit log's origin line and checkpoint key name (no spaces or `+`).
    pub audit_origin: String,
    /// How often a checkpoint is cut while entries arrive.
    pub checkpoint_interval_seconds: u64,
    /// Which connector performs granted actions: `builtin` or `ldap`.
    pub connector: crate::connector_setup::ConnectorKind,
    /// Connector settings: `[connectors.ldap]`, read when `connector = "ldap"`.
    pub connectors: crate::connector_setup::ConnectorsConfig,
    /// Console sign-in for staff through an OpenID Connect provider.
    pub oidc: Option<crate::sso::OidcConfig>,
    /// Limits on the public sign-in routes, per client address.
    pub sign_in: SignInLimits,
    /// Who may scrape `/metrics`: `allow` (addresses, loopback by default) and `token_file`.
    pub metrics: crate::telemetry::MetricsConfig,
}

/// The `[sign_in]` table: how much one client address may ask of the public console sign-in
/// routes (token, passkey and single sign-on), and how its refusals are audited.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInLimits {
    /// Requests one address may make at once before it must wait.
    pub burst: u32,
    /// Requests one address regains per minute.
    pub per_minute: u32,
    /// Refusals are audited one by one up to a few per address in this window, then counted
    /// into one `staff.sign_in_failures` entry per address and window.
    pub failure_window_seconds: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client. Empty: the peer address is the
    /// client, and a header is never believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            burst: 20,
            per_minute: 10,
            failure_window_seconds: 300,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    pub digits: u32,
    pub phone_ttl_minutes: i64,
    pub email_ttl_minutes: i64,
    pub max_attempts: u32,
    /// At most this many codes to one contact of record per `send_window_minutes`.
    pub max_sends_per_contact: u32,
    pub send_window_minutes: i64,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            digits: 6,
            phone_ttl_minutes: 10,
            email_ttl_minutes: 30,
            max_attempts: 5,
            max_sends_per_contact: 3,
            send_window_minutes: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdvConfig {
    /// Path segment (`persona`, `standard-webhooks`) -> webhook secret and inquiry API.
    pub vendors: BTreeMap<String, IdvVendor>,
    /// The identity fields a document must match for a result to count. Both names are
    /// required; `birthdate` is expected when the subject record has one.
    pub match_fields: Vec<crate::idv::IdentityField>,
    /// How long a pending identity verification waits for the vendor.
    pub ttl_minutes: i64,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdvVendor {
    /// The webhook secret.
    pub secret: String,
    /// The vendor's API: Persona's `https://withpersona.com/api/v1`, or for the generic vendor
    /// the URL inquiries are created at. Deskgate creates each inquiry there with the subject's
    /// expected identity; a vendor without it cannot start identity proofing. Plain `http` only
    /// for loopback addresses.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Bearer key for `api_url`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Persona: the inquiry template (`itmpl_...`) to create inquiries from.
    #[serde(default)]
    pub inquiry_template_id: Option<String>,
}

impl std::fmt::Debug for IdvVendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdvVendor")
            .field("secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("inquiry_template_id", &self.inquiry_template_id)
            .finish()
    }
}

impl Default for IdvConfig {
    fn default() -> Self {
        Self {
            vendors: BTreeMap::new(),
            match_fields: crate::idv::default_match_fields(),
            ttl_minutes: 24 * 60,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            database: String::new(),
            data_dir: PathBuf::from("deskgate-data"),
            delivery: deskgate_delivery::Config::default(),
            codes: CodeConfig::default(),
            tier_groups: default_tier_groups(),
            max_body_bytes: 64 * 1024,
            attestation_ttl_minutes: 240,
            max_verifications_per_case: 20,
            api_token_days: 90,
            policy_dir: None,
            demo_sign_in: false,
            security_contacts: Vec::new(),
            idv: IdvConfig::default(),
            telephony: None,
            audit_origin: "deskgate.example/audit".to_owned(),
            checkpoint_interval_seconds: 5,
            connector: Default::default(),
            connectors: Default::default(),
            oidc: None,
            sign_in: SignInLimits::default(),
            metrics: crate::telemetry::MetricsConfig::default(),
        }
    }
}

fn default_tier_groups() -> BTreeMap<String, Tier> {
    BTreeMap::from([
        ("executives".to_owned(), Tier::Executive),
        ("idp-admins".to_owned(), Tier::Privileged),
        ("it-admins".to_owned(), Tier::Privileged),
        ("incident-response".to_owned(), Tier::Security),
        ("finance".to_owned(), Tier::Sensitive),
        ("service-accounts".to_owned(), Tier::Service),
    ])
}

impl Config {
    /// The database URL, defaulting to the embedded SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data_dir.join("deskgate.db").display())
        } else {
            self.database.clone()
        }
    }

    /// The tier a set of directory groups maps to: the highest mapped one, else `standard`.
    pub fn tier_for_groups(&self, groups: &[String]) -> Tier {
        groups
            .iter()
            .filter_map(|g| self.tier_groups.get(g).copied())
            .max_by_key(|t| tier_rank(*t))
            .unwrap_or(Tier::Standard)
    }
}

/// Precedence when a subject sits in several mapped groups.
fn tier_rank(t: Tier) -> u8 {
    match t {
        Tier::Standard => 0,
        Tier::Sensitive => 1,
        Tier::Service => 2,
        Tier::Privileged => 3,
        Tier::Executive => 4,
        Tier::Security => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_mapped_group_decides_the_tier() {
        let c = Config::default();
        let groups = vec!["finance".to_owned(), "idp-admins".to_owned()];
        assert_eq!(c.tier_for_groups(&groups), Tier::Privileged);
        assert_eq!(c.tier_for_groups(&["staff".to_owned()]), Tier::Standard);
    }
}
