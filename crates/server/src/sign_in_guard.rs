//! Guards on the public console sign-in routes against anonymous abuse: a token bucket per client
//! address (answered with 429 and `Retry-After`), and a tally of refused sign-ins that audits only
//! the first few per address and window one by one and the rest as one summary entry, so an
//! anonymous caller can neither lock others out nor grow the audit log at will. Both tables are
//! bounded in size; they live in this process, so each replica limits on its own.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

use deskgate_app::config::SignInLimits;
use deskgate_app::service::FailureSummary;

/// At most this many addresses are tracked at once, in each table.
const MAX_ADDRESSES: usize = 65_536;
/// Refusals audited one by one per address and window; more are only counted.
pub const DETAILED_PER_WINDOW: u32 = 3;
/// Distinct reasons or methods kept in one summary; the rest are counted as `other`.
const MAX_KINDS: usize = 16;

/// The address a client is limited by: the peer, or, behind a configured reverse proxy, the
/// nearest address in `X-Forwarded-For` that is not one of the proxies. IPv6 clients are grouped
/// by /64 (one network, as an attacker usually holds); an unknown peer is `0.0.0.0`.
pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let Some(peer) = peer else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let mut address = canonical(peer.ip());
    if trusted.contains(&address) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted.contains(&canonical(ip)) => continue,
                Ok(ip) => {
                    address = canonical(ip);
                    break;
                }
                // A hop that is no address ends what can be believed.
                Err(_) => break,
            }
        }
    }
    match address {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Refusals from one address in the current window.
struct Tally {
    opened: Instant,
    opened_at: DateTime<Utc>,
    detailed: u32,
    counted: u64,
    reasons: BTreeMap<String, u64>,
    methods: BTreeMap<String, u64>,
}

/// The per-address limiter and the refusal tally of one server.
pub struct SignInGuard {
    burst: f64,
    per_second: f64,
    window: Duration,
    trusted_proxies: Vec<IpAddr>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    tallies: Mutex<HashMap<IpAddr, Tally>>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    let key = if map.len() >= MAX_KINDS && !map.contains_key(key) {
        "other"
    } else {
        key
    };
    *map.entry(key.to_owned()).or_default() += 1;
}

impl SignInGuard {
    pub fn new(limits: &SignInLimits) -> Self {
        Self {
            burst: f64::from(limits.burst.max(1)),
            per_second: f64::from(limits.per_minute.max(1)) / 60.0,
            window: Duration::from_secs(limits.failure_window_seconds.max(1)),
            trusted_proxies: limits.trusted_proxies.clone(),
            buckets: Mutex::new(HashMap::new()),
            tallies: Mutex::new(HashMap::new()),
        }
    }

    pub fn address(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        client_address(peer, headers, &self.trusted_proxies)
    }

    /// How often closed windows should be written out.
    pub fn flush_interval(&self) -> Duration {
        (self.window / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Takes one request from the address's allowance, or answers how long until it has one.
    pub fn admit(&self, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(Duration::from_secs(1));
        };
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&address) {
            let (burst, rate) = (self.burst, self.per_second);
            let full = |b: &Bucket| b.tokens + now.duration_since(b.at).as_secs_f64() * rate;
            buckets.retain(|_, b| full(b) < burst);
            if buckets.len() >= MAX_ADDRESSES {
                // Forget the address that has used least of its allowance: no newcomer is ever
                // refused because the table is full.
                if let Some(fullest) = buckets
                    .iter()
                    .max_by(|a, b| full(a.1).total_cmp(&full(b.1)))
                    .map(|(k, _)| *k)
                {
                    buckets.remove(&fullest);
                }
            }
        }
        let bucket = buckets.entry(address).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.at).as_secs_f64() * self.per_second)
            .min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(Duration::from_secs(wait.ceil().max(1.0) as u64))
        }
    }

    /// Notes one refused sign-in from `address`. Answers whether to audit it one by one (the
    /// first few of a window), and the summaries of windows that have closed meanwhile.
    pub fn note_failure(
        &self,
        address: IpAddr,
        method: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> (bool, Vec<FailureSummary>) {
        let now = Instant::now();
        let Ok(mut tallies) = self.tallies.lock() else {
            return (false, Vec::new());
        };
        let mut closed = self.take_closed(&mut tallies, now, at);
        // A full table counts newcomers together under the unspecified address, never in detail.
        let key = if tallies.len() >= MAX_ADDRESSES && !tallies.contains_key(&address) {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            address
        };
        let tally = tallies.entry(key).or_insert_with(|| Tally {
            opened: now,
            opened_at: at,
            detailed: 0,
            counted: 0,
            reasons: BTreeMap::new(),
            methods: BTreeMap::new(),
        });
        let detailed = key == address && tally.detailed < DETAILED_PER_WINDOW;
        if detailed {
            tally.detailed += 1;
        } else {
            tally.counted += 1;
            bump(&mut tally.reasons, reason);
            bump(&mut tally.methods, method);
        }
        closed.retain(|s| s.count > 0);
        (detailed, closed)
    }

    fn take_closed(
        &self,
        tallies: &mut HashMap<IpAddr, Tally>,
        now: Instant,
        at: DateTime<Utc>,
    ) -> Vec<FailureSummary> {
        let ended: Vec<IpAddr> = tallies
            .iter()
            .filter(|(_, t)| now.duration_since(t.opened) >= self.window)
            .map(|(k, _)| *k)
            .collect();
        ended
            .into_iter()
            .filter_map(|k| tallies.remove(&k).map(|t| (k, t)))
            .filter(|(_, t)| t.counted > 0)
            .map(|(address, t)| FailureSummary {
                address,
                from: t.opened_at,
                to: at,
                count: t.counted,
                reasons: t.reasons,
                methods: t.methods,
            })
            .collect()
    }

    /// Summaries of every window that has closed.
    pub fn closed_windows(&self, at: DateTime<Utc>) -> Vec<FailureSummary> {
        match self.tallies.lock() {
            Ok(mut tallies) => self.take_closed(&mut tallies, Instant::now(), at),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(burst: u32, per_minute: u32) -> SignInLimits {
        SignInLimits {
            burst,
            per_minute,
            ..SignInLimits::default()
        }
    }

    #[test]
    fn an_address_gets_its_burst_then_waits_while_others_do_not() {
        let guard = SignInGuard::new(&limits(3, 6));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(guard.admit(a).is_ok());
        }
        let wait = guard.admit(a).unwrap_err();
        assert!((1..=10).contains(&wait.as_secs()), "{wait:?}");
        assert!(guard.admit(b).is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let from_proxy = Some(SocketAddr::new(proxy, 4000));
        assert_eq!(
            client_address(from_proxy, &headers, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(from_proxy, &headers, &[]), proxy);
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            client_address(Some(SocketAddr::new(v6, 1)), &HeaderMap::new(), &[]),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn refusals_past_the_first_few_are_only_counted() {
        let guard = SignInGuard::new(&SignInLimits {
            failure_window_seconds: 3600,
            ..SignInLimits::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let detailed = (0..10)
            .filter(|_| {
                guard
                    .note_failure(a, "oidc", "state_mismatch", Utc::now())
                    .0
            })
            .count();
        assert_eq!(detailed, DETAILED_PER_WINDOW as usize);
        assert!(
            guard.closed_windows(Utc::now()).is_empty(),
            "window still open"
        );
    }
}
