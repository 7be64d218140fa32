//! Operational metrics: the process-wide Prometheus recorder every crate's `metrics` calls feed,
//! the `[metrics]` configuration, and who may read `/metrics`.
//!
//! The series are emitted where their events happen (the store counts committed cases,
//! verifications and audit appends, delivery and connector calls time themselves, the HTTP
//! layer times each request by its route template); this module only installs the recorder once
//! per process and renders it. Scraping is open to the configured addresses (loopback by default)
//! and, from anywhere, to a bearer token read from `token_file`, compared in constant time.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Latency buckets in seconds, from a fast commit to a slow directory or SMS provider.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Shortest metrics token accepted: a guessable one would open the metrics to anyone.
const MIN_TOKEN_LEN: usize = 16;

/// The `[metrics]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Peer addresses that may scrape without a token (`127.0.0.1/32`, `10.0.0.0/8`, or one
    /// address). The peer is the TCP peer: `X-Forwarded-For` is never believed here.
    pub allow: Vec<AddressRange>,
    /// A file holding a bearer token that opens `/metrics` from any address.
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                AddressRange::single(IpAddr::from([127, 0, 0, 1])),
                AddressRange::single(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
            ],
            token_file: None,
        }
    }
}

/// An address block in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    fn single(address: IpAddr) -> Self {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        Self {
            network: address,
            prefix,
        }
    }

    /// Whether `address` lies in the block (an IPv4-mapped IPv6 peer counts as its IPv4 form).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let ((net, width), (addr, addr_width)) = (bits(self.network), bits(address));
        if width != addr_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || net >> shift == addr >> shift
    }
}

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an address or an address/prefix block");
        let (address, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            width
        } else {
            prefix.parse::<u8>().map_err(|_| bad())?
        };
        if prefix > width {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }
}

impl TryFrom<String> for AddressRange {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<AddressRange> for String {
    fn from(range: AddressRange) -> Self {
        format!("{}/{}", range.network, range.prefix)
    }
}

/// Why the `[metrics]` table cannot be used. Never carries the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsConfigError {
    #[error("metrics.token_file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metrics.token_file {path}: the token must be at least {MIN_TOKEN_LEN} characters")]
    WeakToken { path: PathBuf },
}

/// Who may read `/metrics`, from the configuration. Only the token's digest is kept, and tokens
/// are compared by digest, so the comparison takes the same time whatever the presented length.
pub struct MetricsAccess {
    allow: Vec<AddressRange>,
    token_digest: Option<[u8; 32]>,
}

/// What a scrape request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// A token was presented and is wrong (or no token is configured).
    WrongToken,
    /// Neither an allowed address nor a token: the endpoint does not exist for this client.
    Hidden,
}

impl MetricsAccess {
    /// Reads `token_file` when one is configured.
    pub fn from_config(config: &MetricsConfig) -> Result<Self, MetricsConfigError> {
        let token = config.token_file.as_deref().map(read_token).transpose()?;
        Ok(Self {
            allow: config.allow.clone(),
            token_digest: token.map(|t| Sha256::digest(t.as_bytes()).into()),
        })
    }

    /// `peer` is the TCP peer, `None` when unknown (then only a token admits).
    pub fn admit(&self, peer: Option<IpAddr>, bearer: Option<&str>) -> Admission {
        if peer.is_some_and(|p| self.allow.iter().any(|r| r.contains(p))) {
            return Admission::Admitted;
        }
        match (bearer, &self.token_digest) {
            (None, _) => Admission::Hidden,
            (Some(given), Some(digest))
                if bool::from(
                    Sha256::digest(given.as_bytes())
                        .as_slice()
                        .ct_eq(digest.as_slice()),
                ) =>
            {
                Admission::Admitted
            }
            (Some(_), _) => Admission::WrongToken,
        }
    }
}

/// The token in `path`, surrounding whitespace removed.
pub fn read_token(path: &Path) -> Result<String, MetricsConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| MetricsConfigError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim().to_owned();
    if token.len() < MIN_TOKEN_LEN {
        return Err(MetricsConfigError::WeakToken {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

/// The process's recorder, installed on first use. One per process: every server built in it
/// (tests start several) reports into the same registry.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(BUCKETS);
        // Only fails for an empty bucket list, which BUCKETS is not.
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        describe();
        handle
    })
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "deskgate_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method, route template and status class"
    );
    describe_counter!(
        "deskgate_cases_opened_total",
        "Cases asked for, by action, tier and outcome (opened, refused)"
    );
    describe_counter!(
        "deskgate_cases_ended_total",
        "Cases ended, by action, tier and outcome (executed, failed, denied, cancelled, abandoned)"
    );
    describe_counter!(
        "deskgate_verifications_total",
        "Verification outcomes by method (passed, failed, locked, expired)"
    );
    describe_counter!(
        "deskgate_not_me_reports_total",
        "\"This was not me\" reports received"
    );
    describe_counter!(
        "deskgate_audit_events_total",
        "Audit entries committed, by event name"
    );
    describe_histogram!(
        "deskgate_audit_append_duration_seconds",
        Unit::Seconds,
        "Latency of commits that append audit entries"
    );
    describe_counter!(
        "deskgate_audit_append_failures_total",
        "Changes refused because the audit log could not be written"
    );
    describe_gauge!(
        "deskgate_audit_checkpoint_age_seconds",
        Unit::Seconds,
        "Age of the latest signed checkpoint (-1: none yet)"
    );
    describe_gauge!(
        "deskgate_audit_uncheckpointed_entries",
        "Audit entries the latest checkpoint does not cover yet"
    );
    describe_counter!(
        "deskgate_audit_checkpoint_failures_total",
        "Checkpoints that could not be cut"
    );
    describe_histogram!(
        "deskgate_connector_duration_seconds",
        Unit::Seconds,
        "Connector call latency by connector and operation"
    );
    describe_counter!(
        "deskgate_connector_errors_total",
        "Connector calls that failed"
    );
    describe_histogram!(
        "deskgate_delivery_duration_seconds",
        Unit::Seconds,
        "Delivery latency by channel and message kind"
    );
    describe_counter!(
        "deskgate_delivery_failures_total",
        "Messages that could not be delivered"
    );
    describe_counter!(
        "deskgate_rate_limit_refusals_total",
        "Requests refused by a rate limit, by limit"
    );
}

impl crate::Service {
    /// Who may read `/metrics`.
    pub fn metrics_access(&self) -> &MetricsAccess {
        &self.metrics
    }

    /// The metrics in Prometheus text format. The checkpoint gauges are read now: the age of the
    /// latest signed checkpoint (-1 when there is none) and how many entries it does not cover
    /// yet, so an idle log (nothing to cover) is told apart from a stuck checkpointer.
    pub async fn metrics_text(&self) -> String {
        let handle = recorder();
        let checkpoint = self.store.latest_checkpoint().await;
        let size = self.store.audit_size().await;
        if let (Ok(checkpoint), Ok(size)) = (checkpoint, size) {
            let (age, covered) = checkpoint.map_or((-1.0, 0), |c| {
                let age = (self.now() - c.created_at).num_milliseconds() as f64 / 1000.0;
                (age, c.size)
            });
            metrics::gauge!("deskgate_audit_checkpoint_age_seconds").set(age);
            metrics::gauge!("deskgate_audit_uncheckpointed_entries")
                .set(size.saturating_sub(covered) as f64);
        }
        handle.run_upkeep();
        handle.render()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn address_blocks_contain_what_their_prefix_covers() {
        let block: AddressRange = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!block.contains("::1".parse().unwrap()));
        let everything: AddressRange = "::/0".parse().unwrap();
        assert!(everything.contains("2001:db8::1".parse().unwrap()));
        let one: AddressRange = "127.0.0.1".parse().unwrap();
        assert_eq!(String::from(one), "127.0.0.1/32");
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/x", ""] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_allowed_by_default_and_a_token_opens_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "0123456789abcdef-token\n").unwrap();
        let access = MetricsAccess::from_config(&MetricsConfig {
            token_file: Some(file),
            ..MetricsConfig::default()
        })
        .unwrap();
        let far = Some("203.0.113.9".parse().unwrap());
        assert_eq!(
            access.admit(Some("127.0.0.1".parse().unwrap()), None),
            Admission::Admitted
        );
        assert_eq!(
            access.admit(Some("::1".parse().unwrap()), None),
            Admission::Admitted
        );
        assert_eq!(access.admit(far, None), Admission::Hidden);
        assert_eq!(access.admit(None, None), Admission::Hidden);
        assert_eq!(
            access.admit(far, Some("0123456789abcdef-tokem")),
            Admission::WrongToken
        );
        assert_eq!(
            access.admit(far, Some("0123456789abcdef-token")),
            Admission::Admitted
        );
    }

    #[test]
    fn a_short_or_missing_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "short\n").unwrap();
        let config = MetricsConfig {
            token_file: Some(file.clone()),
            ..MetricsConfig::default()
        };
        assert!(matches!(
            MetricsAccess::from_config(&config),
            Err(MetricsConfigError::WeakToken { .. })
        ));
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(
            MetricsAccess::from_config(&config),
            Err(MetricsConfigError::TokenFile { .. })
        ));
    }
}
