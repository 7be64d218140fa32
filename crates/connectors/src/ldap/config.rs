//! Configuration of the LDAP / Active Directory connector and its validation.
//!
//! Validation is where transport security is enforced: the connector sends passwords, so a
//! plain `ldap://` URL is accepted only with StartTLS, or without TLS when the server is on the
//! loopback interface (tests, a local proxy) and the operator said so with `tls = "none"`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use deskgate_core::Tier;
use serde::Deserialize;

/// Which directory dialect the connector speaks for password, lockout and status attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryMode {
    /// OpenLDAP with the ppolicy overlay: Password Modify, `pwdReset`, `pwdAccountLockedTime`.
    Openldap,
    /// Active Directory: `unicodePwd`, `pwdLastSet`, `lockoutTime`, `userAccountControl`.
    ActiveDirectory,
}

/// How the connection is protected on top of the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// `ldap://` upgraded with StartTLS before binding; with `ldaps://` TLS is already on.
    #[default]
    Starttls,
    /// No TLS at all. Only accepted for a loopback `ldap://` URL.
    None,
}

/// The service account's password, read from configuration. `Debug` is redacted so that a
/// logged config never carries it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct BindPassword(String);

impl BindPassword {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BindPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BindPassword(<redacted>)")
    }
}

/// Configuration of one LDAP or Active Directory connector (one `[connectors.ldap]` table).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]`.
    pub url: String,
    #[serde(default)]
    pub tls: TlsMode,
    pub mode: DirectoryMode,
    /// Deskgate's own service account, the only holder of reset rights.
    pub bind_dn: String,
    pub bind_password: BindPassword,
    /// Where subjects live; searched with subtree scope.
    pub base_dn: String,
    /// Restricts the subject search, e.g. `(objectClass=inetOrgPerson)`. Trusted configuration,
    /// not escaped.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// The attribute holding the subject id: `uid` (OpenLDAP) or `sAMAccountName` (AD).
    pub subject_attribute: String,
    /// Where groups live; searched for entries whose `group_member_attribute` holds the
    /// subject's DN.
    pub group_base_dn: String,
    #[serde(default = "default_member_attribute")]
    pub group_member_attribute: String,
    /// The group attribute reported as the group's name and matched against `group_tiers`.
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    /// Group name (or full group DN), case-insensitive -> tier. A subject in several mapped
    /// groups gets the most dangerous tier.
    #[serde(default)]
    pub group_tiers: BTreeMap<String, Tier>,
    /// The tier of a subject in no mapped group.
    #[serde(default = "default_tier")]
    pub default_tier: Tier,
    /// The attribute replaced by `change_contact(phone, ..)`; read together with
    /// `telephoneNumber` on lookup.
    #[serde(default = "default_phone_attribute")]
    pub phone_attribute: String,
    /// Bound on one whole connector call: connect, StartTLS, bind and the operation.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_user_filter() -> String {
    "(objectClass=*)".to_owned()
}
fn default_member_attribute() -> String {
    "member".to_owned()
}
fn default_group_name_attribute() -> String {
    "cn".to_owned()
}
fn default_tier() -> Tier {
    Tier::Standard
}
fn default_phone_attribute() -> String {
    "mobile".to_owned()
}
fn default_timeout_secs() -> u64 {
    10
}

/// Why an [`LdapConfig`] was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LdapConfigError {
    #[error("url {url:?} is not an LDAP URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("url scheme {scheme:?} is not supported; use ldaps:// or ldap:// with StartTLS")]
    UnsupportedScheme { scheme: String },
    #[error(
        "plain ldap:// to {host:?} without TLS would send passwords in clear; use ldaps:// or \
         StartTLS (tls = \"none\" is only accepted for a loopback host)"
    )]
    PlaintextToNonLoopback { host: String },
    #[error("tls = \"none\" contradicts the ldaps:// url; remove it")]
    TlsNoneWithLdaps,
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("user_filter {filter:?} must be a parenthesised LDAP filter")]
    InvalidUserFilter { filter: String },
    #[error("timeout_secs must be between 1 and 300, got {got}")]
    InvalidTimeout { got: u64 },
}

/// The transport the validated configuration resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transport {
    /// Issue StartTLS before binding.
    pub(crate) starttls: bool,
}

impl LdapConfig {
    /// Checks the configuration and resolves the transport. Called by
    /// [`crate::LdapConnector::new`], so a connector never exists with an unsafe transport.
    pub(crate) fn validate(&self) -> Result<Transport, LdapConfigError> {
        for (field, value) in [
            ("bind_dn", &self.bind_dn),
            ("base_dn", &self.base_dn),
            ("subject_attribute", &self.subject_attribute),
            ("group_base_dn", &self.group_base_dn),
            ("group_member_attribute", &self.group_member_attribute),
            ("group_name_attribute", &self.group_name_attribute),
            ("phone_attribute", &self.phone_attribute),
        ] {
            if value.trim().is_empty() {
                return Err(LdapConfigError::Empty { field });
            }
        }
        if self.bind_password.expose().is_empty() {
            // An empty password turns a simple bind into an unauthenticated one (RFC 4513 5.1.2).
            return Err(LdapConfigError::Empty {
                field: "bind_password",
            });
        }
        let filter = self.user_filter.trim();
        if !(filter.starts_with('(') && filter.ends_with(')')) {
            return Err(LdapConfigError::InvalidUserFilter {
                filter: self.user_filter.clone(),
            });
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(LdapConfigError::InvalidTimeout {
                got: self.timeout_secs,
            });
        }

        let url = url::Url::parse(&self.url).map_err(|e| LdapConfigError::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        match (url.scheme(), self.tls) {
            ("ldaps", TlsMode::Starttls) => Ok(Transport { starttls: false }),
            ("ldaps", TlsMode::None) => Err(LdapConfigError::TlsNoneWithLdaps),
            ("ldap", TlsMode::Starttls) => Ok(Transport { starttls: true }),
            ("ldap", TlsMode::None) => {
                let host = url.host().ok_or_else(|| LdapConfigError::InvalidUrl {
                    url: self.url.clone(),
                    reason: "no host".to_owned(),
                })?;
                let loopback = match host {
                    // `ldap` is not a scheme the URL standard knows, so an IPv4 host arrives as
                    // an opaque name and is parsed here.
                    url::Host::Domain(name) => {
                        name.eq_ignore_ascii_case("localhost")
                            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
                    }
                    url::Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
                    url::Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
                };
                if loopback {
                    Ok(Transport { starttls: false })
                } else {
                    Err(LdapConfigError::PlaintextToNonLoopback {
                        host: host.to_string(),
                    })
                }
            }
            (scheme, _) => Err(LdapConfigError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(url: &str, tls: TlsMode) -> LdapConfig {
        LdapConfig {
            url: url.to_owned(),
            tls,
            mode: DirectoryMode::Openldap,
            bind_dn: "cn=deskgate,dc=example,dc=org".to_owned(),
            bind_password: BindPassword::new("service-secret"),
            base_dn: "dc=example,dc=org".to_owned(),
            user_filter: default_user_filter(),
            subject_attribute: "uid".to_owned(),
            group_base_dn: "ou=groups,dc=example,dc=org".to_owned(),
            group_member_attribute: default_member_attribute(),
            group_name_attribute: default_group_name_attribute(),
            group_tiers: BTreeMap::new(),
            default_tier: Tier::Standard,
            phone_attribute: default_phone_attribute(),
            timeout_secs: 10,
        }
    }

    #[test]
    fn plain_ldap_to_a_remote_host_without_starttls_is_refused() {
        for url in [
            "ldap://dc1.example.org",
            "ldap://10.0.0.5:389",
            "ldap://[2001:db8::1]/",
        ] {
            let err = config(url, TlsMode::None).validate();
            assert!(
                matches!(err, Err(LdapConfigError::PlaintextToNonLoopback { .. })),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn plain_ldap_without_tls_is_accepted_only_on_loopback() {
        for url in [
            "ldap://127.0.0.1:3389",
            "ldap://127.8.0.1",
            "ldap://localhost:389",
            "ldap://[::1]:389",
        ] {
            assert_eq!(
                config(url, TlsMode::None).validate(),
                Ok(Transport { starttls: false }),
                "{url}"
            );
        }
    }

    #[test]
    fn starttls_is_the_default_for_ldap_and_not_used_for_ldaps() {
        let parsed: LdapConfig = serde_json::from_value(serde_json::json!({
            "url": "ldap://dc1.example.org",
            "mode": "active_directory",
            "bind_dn": "CN=deskgate,OU=Services,DC=example,DC=org",
            "bind_password": "service-secret",
            "base_dn": "DC=example,DC=org",
            "subject_attribute": "sAMAccountName",
            "group_base_dn": "DC=example,DC=org",
            "group_tiers": { "Domain Admins": "privileged" },
        }))
        .unwrap();
        assert_eq!(parsed.tls, TlsMode::Starttls);
        assert_eq!(parsed.mode, DirectoryMode::ActiveDirectory);
        assert_eq!(
            parsed.group_tiers.get("Domain Admins"),
            Some(&Tier::Privileged)
        );
        assert_eq!(parsed.validate(), Ok(Transport { starttls: true }));
        assert_eq!(
            config("ldaps://dc1.example.org", TlsMode::Starttls).validate(),
            Ok(Transport { starttls: false })
        );
    }

    #[test]
    fn contradictory_or_unknown_transports_are_refused() {
        assert_eq!(
            config("ldaps://127.0.0.1", TlsMode::None).validate(),
            Err(LdapConfigError::TlsNoneWithLdaps)
        );
        assert_eq!(
            config("ldapi:///var/run/slapd.sock", TlsMode::Starttls).validate(),
            Err(LdapConfigError::UnsupportedScheme {
                scheme: "ldapi".to_owned()
            })
        );
        assert!(matches!(
            config("not a url", TlsMode::Starttls).validate(),
            Err(LdapConfigError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn empty_service_password_and_bad_filter_are_refused() {
        let mut c = config("ldaps://dc1", TlsMode::Starttls);
        c.bind_password = BindPassword::new("");
        assert_eq!(
            c.validate(),
            Err(LdapConfigError::Empty {
                field: "bind_password"
            })
        );
        let mut c = config("ldaps://dc1", TlsMode::Starttls);
        c.user_filter = "objectClass=person".to_owned();
        assert!(matches!(
            c.validate(),
            Err(LdapConfigError::InvalidUserFilter { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_bind_password() {
        let shown = format!("{:?}", config("ldaps://dc1", TlsMode::Starttls));
        assert!(!shown.contains("service-secret"), "{shown}");
        assert!(shown.contains("BindPassword(<redacted>)"));
    }
}
