//! Which connector performs granted actions, chosen by configuration: `connector = "builtin"`
//! (Deskgate's own directory in its store, the default) or `connector = "ldap"` with a
//! `[connectors.ldap]` table, checked at start-up so that a server never runs with a connector
//! it cannot use.
//!
//! The table is kept raw until start-up and only then read into
//! [`deskgate_connectors::LdapConfig`], so a mistake is reported as a start-up error naming the
//! key. The bind password may come from the file or from [`BIND_PASSWORD_ENV`] (which wins); it
//! appears in no error, log line or serialised configuration.

use std::fmt;
use std::sync::Arc;

use deskgate_connectors::{Connector, LdapConfig, LdapConfigError, LdapConnector};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The environment variable that holds the LDAP service account's password.
pub const BIND_PASSWORD_ENV: &str = "DESKGATE_LDAP_BIND_PASSWORD";

/// The `connector` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// Deskgate's own directory (subjects imported or seeded into the store).
    #[default]
    Builtin,
    /// An OpenLDAP or Active Directory server, configured by `[connectors.ldap]`.
    Ldap,
}

/// The `[connectors.*]` tables.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorsConfig {
    /// `[connectors.ldap]`: the keys of [`LdapConfig`].
    pub ldap: Option<serde_json::Value>,
}

impl fmt::Debug for ConnectorsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The table may hold the bind password.
        f.debug_struct("ConnectorsConfig")
            .field("ldap", &self.ldap.as_ref().map(|_| "<configured>"))
            .finish()
    }
}

impl Serialize for ConnectorsConfig {
    /// Always an empty table: configuration is serialised only as the defaults the loader starts
    /// from, and the LDAP table carries the bind password.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
}

/// Why the configured connector cannot be used. Never carries the bind password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorSetupError {
    #[error("connector = \"ldap\" needs a [connectors.ldap] table")]
    MissingLdapTable,
    #[error("[connectors.ldap] has no bind_password: set it in the file or in {BIND_PASSWORD_ENV}")]
    MissingBindPassword,
    #[error("[connectors.ldap] bind_password must be a string")]
    BindPasswordNotText,
    #[error("[connectors.ldap]: {0}")]
    InvalidTable(String),
    #[error("[connectors.ldap]: {0}")]
    InvalidLdap(#[from] LdapConfigError),
}

/// Reads `[connectors.ldap]`, taking the bind password from `env(BIND_PASSWORD_ENV)` when set.
pub fn ldap_config(
    table: Option<&serde_json::Value>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<LdapConfig, ConnectorSetupError> {
    let mut table = match table {
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(ConnectorSetupError::InvalidTable(
                "must be a table".to_owned(),
            ));
        }
        None => return Err(ConnectorSetupError::MissingLdapTable),
    };
    if let Some(password) = env(BIND_PASSWORD_ENV).filter(|p| !p.is_empty()) {
        table.insert(
            "bind_password".to_owned(),
            serde_json::Value::String(password),
        );
    }
    match table.get("bind_password") {
        None => return Err(ConnectorSetupError::MissingBindPassword),
        // Checked before deserialising, whose type errors would quote the value.
        Some(v) if !v.is_string() => return Err(ConnectorSetupError::BindPasswordNotText),
        Some(_) => {}
    }
    serde_json::from_value(serde_json::Value::Object(table))
        .map_err(|e| ConnectorSetupError::InvalidTable(e.to_string()))
}

/// The connector `config` asks for: `None` for the built-in directory.
pub fn build(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn Connector>>, ConnectorSetupError> {
    match config.connector {
        ConnectorKind::Builtin => {
            if config.connectors.ldap.is_some() {
                tracing::warn!(
                    "[connectors.ldap] is configured but connector = \"builtin\"; it is not used"
                );
            }
            Ok(None)
        }
        ConnectorKind::Ldap => {
            let ldap = LdapConnector::new(ldap_config(config.connectors.ldap.as_ref(), env)?)?;
            tracing::info!(
                connector = ldap.name(),
                "actions execute through the LDAP connector"
            );
            Ok(Some(crate::metered_connector::metered(Arc::new(ldap))))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> serde_json::Value {
        json!({
            "url": "ldap://127.0.0.1:3389", "tls": "none", "mode": "openldap",
            "bind_dn": "cn=deskgate,dc=example,dc=org", "bind_password": "from-the-file",
            "base_dn": "dc=example,dc=org", "subject_attribute": "uid",
            "group_base_dn": "ou=groups,dc=example,dc=org",
            "group_tiers": { "it-admins": "privileged" },
        })
    }

    fn ldap(table: serde_json::Value) -> Config {
        Config {
            connector: ConnectorKind::Ldap,
            connectors: ConnectorsConfig { ldap: Some(table) },
            ..Config::default()
        }
    }

    #[test]
    fn builtin_is_the_default_and_needs_no_table() {
        let config = Config::default();
        assert_eq!(config.connector, ConnectorKind::Builtin);
        assert!(build(&config, |_| None).unwrap().is_none());
    }

    #[test]
    fn a_valid_ldap_table_builds_the_ldap_connector() {
        let connector = build(&ldap(table()), |_| None).unwrap().unwrap();
        assert_eq!(connector.name(), "openldap");
    }

    #[test]
    fn ldap_without_a_table_refuses_to_start() {
        let config = Config {
            connector: ConnectorKind::Ldap,
            ..Config::default()
        };
        assert!(matches!(
            build(&config, |_| None),
            Err(ConnectorSetupError::MissingLdapTable)
        ));
    }

    #[test]
    fn a_table_with_a_missing_or_unknown_key_refuses_to_start_naming_it() {
        let mut t = table();
        t.as_object_mut().unwrap().remove("base_dn");
        let err = build(&ldap(t), |_| None).err().unwrap().to_string();
        assert!(err.contains("base_dn"), "{err}");
        let mut t = table();
        t["bse_dn"] = json!("typo");
        let err = build(&ldap(t), |_| None).err().unwrap().to_string();
        assert!(err.contains("bse_dn"), "{err}");
    }

    #[test]
    fn an_unsafe_transport_refuses_to_start() {
        let mut t = table();
        t["url"] = json!("ldap://dc1.example.org");
        let err = build(&ldap(t), |_| None).err().unwrap();
        assert!(
            matches!(
                err,
                ConnectorSetupError::InvalidLdap(LdapConfigError::PlaintextToNonLoopback { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn the_bind_password_comes_from_the_environment_when_set() {
        let mut t = table();
        t.as_object_mut().unwrap().remove("bind_password");
        assert!(matches!(
            ldap_config(Some(&t), |_| None),
            Err(ConnectorSetupError::MissingBindPassword)
        ));
        let env = |key: &str| (key == BIND_PASSWORD_ENV).then(|| "from-the-env".to_owned());
        assert!(ldap_config(Some(&t), env).is_ok());
        // The variable wins over the file: an unusable value in the file is replaced.
        let mut t = table();
        t["bind_password"] = json!(42);
        assert!(ldap_config(Some(&t), |_| None).is_err());
        let config = ldap_config(Some(&t), env).unwrap();
        assert!(!format!("{config:?}").contains("from-the-env"));
    }

    #[test]
    fn errors_and_debug_never_show_the_bind_password() {
        let mut t = table();
        t["bind_password"] = json!(123_456_789);
        let err = build(&ldap(t), |_| None).err().unwrap().to_string();
        assert!(!err.contains("123456789"), "{err}");
        let mut t = table();
        t["timeout_secs"] = json!("soon");
        let err = build(&ldap(t), |_| None).err().unwrap().to_string();
        assert!(!err.contains("from-the-file"), "{err}");
        let shown = format!("{:?}", ldap(table()));
        assert!(!shown.contains("from-the-file"), "{shown}");
        let serialised = serde_json::to_string(&ldap(table())).unwrap();
        assert!(!serialised.contains("from-the-file"), "{serialised}");
    }
}
