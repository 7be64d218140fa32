//! `deskgate config check`: the configuration as the server would run it, with every secret
//! masked, and every problem a start would meet or that would fail later: a database that does not
//! answer, key files that cannot be read, a connector whose directory refuses Deskgate, a policy
//! bundle that does not load, a metrics token file that is missing. It runs the same checks as
//! [`crate::build`], step by step, so that one problem does not hide the next, and it creates
//! nothing: keys and a SQLite file that do not exist yet are reported as what the first start
//! will create.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::{Config, StartError, audit_log, connector_setup, delivery, policy_gate, secrets};

/// How long the database gets to answer.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(15);

/// What stands in for a secret in the printed configuration.
pub const MASK: &str = "********";

/// The outcome: the effective configuration, masked, what is wrong and what the first start
/// would do.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub effective: Value,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl CheckReport {
    fn problem(&mut self, text: impl AsRef<str>) {
        self.problems.push(mask_text(text.as_ref()));
    }
}

/// Checks `config`; `env` reads the environment (the LDAP bind password may come from there).
/// Needs a Tokio runtime and the rustls crypto provider, like [`crate::build`].
pub async fn check(config: &Config, env: impl Fn(&str) -> Option<String>) -> CheckReport {
    let mut report = CheckReport {
        effective: masked(config),
        ..CheckReport::default()
    };
    connector(config, env, &mut report).await;
    if let Some(oidc) = &config.oidc
        && let Err(e) = oidc.validate()
    {
        report.problem(StartError::from(e).to_string());
    }
    if let Err(e) = crate::telemetry::MetricsAccess::from_config(&config.metrics) {
        report.problem(e.to_string());
    }
    if let Err(e) = delivery::build(&config.delivery, &config.data_dir) {
        report.problem(StartError::from(e).to_string());
    }
    if let Err(e) = crate::check_telephony(config) {
        report.problem(format!("telephony: {e}"));
    }
    if let Err(e) = policy_gate::load(config.policy_dir.as_deref()) {
        report.problem(StartError::from(e).to_string());
    }
    let entries = database(config, &mut report).await;
    keys(config, entries, &mut report);
    report
}

/// The connector's configuration, then its own start-up check against the directory.
async fn connector(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
    report: &mut CheckReport,
) {
    match connector_setup::build(config, env) {
        Err(e) => report.problem(StartError::from(e).to_string()),
        Ok(None) => {}
        Ok(Some(connector)) => {
            if let Err(e) = connector.check().await {
                report.problem(format!("connector {}: {e}", connector.name()));
            }
        }
    }
}

/// Opens the database (bringing its schema up to date, as a start would) and answers how many
/// audit entries it holds; a SQLite file that does not exist yet is left uncreated.
async fn database(config: &Config, report: &mut CheckReport) -> Option<u64> {
    let url = config.database_url();
    if let Some(path) = sqlite_path(&url)
        && !path.exists()
    {
        report.notes.push(format!(
            "database {} does not exist yet; the first start creates it",
            path.display()
        ));
        return Some(0);
    }
    let opened = tokio::time::timeout(DATABASE_TIMEOUT, deskgate_store::open(&url)).await;
    let store = match opened {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            report.problem(format!("database {}: {e}", mask_text(&url)));
            return None;
        }
        Err(_) => {
            report.problem(format!(
                "database {}: no answer within {} seconds",
                mask_text(&url),
                DATABASE_TIMEOUT.as_secs()
            ));
            return None;
        }
    };
    match store.audit_size().await {
        Ok(size) => Some(size),
        Err(e) => {
            report.problem(format!("database: cannot read the audit log: {e}"));
            None
        }
    }
}

fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// The three keys of the data directory, read with the loaders a start uses. A missing key is
/// what a first start creates, unless the log already holds entries: then the key that signed,
/// hashed or sealed them is lost.
fn keys(config: &Config, entries: Option<u64>, report: &mut CheckReport) {
    let dir = &config.data_dir;
    if dir.exists() && !dir.is_dir() {
        report.problem(format!("data_dir {} is not a directory", dir.display()));
        return;
    }
    for name in ["code.key", "sealing.key", "audit.key"] {
        let path = dir.join(name);
        if !path.exists() {
            match entries {
                Some(n) if n > 0 => report.problem(format!(
                    "{} is missing, but the database holds {n} audit entries: codes, sealed \
                     secrets or checkpoints made with the old key cannot be checked; restore it",
                    path.display()
                )),
                _ => report.notes.push(format!(
                    "{} does not exist yet; the first start creates it",
                    path.display()
                )),
            }
            continue;
        }
        if let Err(e) = std::fs::read(&path) {
            report.problem(format!("{} cannot be read: {e}", path.display()));
            continue;
        }
        let loaded = match name {
            "audit.key" => audit_log::load_or_create_signer(&path, &config.audit_origin)
                .map(drop)
                .map_err(|e| e.to_string()),
            _ => secrets::CodeHasher::load_or_create(&path)
                .map(drop)
                .map_err(|e| format!("{}: {e}", path.display())),
        };
        if let Err(e) = loaded {
            report.problem(format!("key file {e}"));
        }
    }
}

/// The configuration as JSON with every secret masked: values of keys naming a secret
/// (`*secret`, `*password`, `*token`, `*_key`, ...) and passwords inside URLs. The LDAP table
/// and the OpenID client secret, which the configuration never serialises, are shown masked too.
pub fn masked(config: &Config) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let (Some(ldap), Some(connectors)) = (
        config.connectors.ldap.clone(),
        value.get_mut("connectors").and_then(Value::as_object_mut),
    ) {
        connectors.insert("ldap".to_owned(), ldap);
    }
    // Never serialised either; shown masked so that the reader sees it is set.
    if let (Some(oidc), Some(shown)) = (
        &config.oidc,
        value.get_mut("oidc").and_then(Value::as_object_mut),
    ) && !oidc.client_secret.is_empty()
    {
        shown.insert("client_secret".to_owned(), Value::String(MASK.to_owned()));
    }
    mask_value(&mut value);
    value
}

fn mask_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && !v.is_null() {
                    *v = Value::String(MASK.to_owned());
                } else {
                    mask_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        Value::String(text) => *text = mask_text(text),
        _ => {}
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "api_key", "_key"]
        .iter()
        .any(|end| key.ends_with(end))
        || key == "key"
}

/// `text` with the password of every URL in it (`scheme://user:PASSWORD@host`) and every
/// `password=` query value masked.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                out.push_str(user);
                if userinfo.contains(':') {
                    out.push(':');
                    out.push_str(MASK);
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    mask_query_passwords(&out)
}

fn mask_query_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find("password=") {
        let (head, tail) = rest.split_at(at + "password=".len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(MASK);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_and_queries_are_masked() {
        assert_eq!(
            mask_text("postgres://deskgate:s3cret@db:5432/dg"),
            "postgres://deskgate:********@db:5432/dg"
        );
        assert_eq!(
            mask_text("postgres://deskgate@db/dg"),
            "postgres://deskgate@db/dg"
        );
        assert_eq!(
            mask_text("postgres://db/dg?user=a&password=hunter2&sslmode=require"),
            "postgres://db/dg?user=a&password=********&sslmode=require"
        );
        assert_eq!(
            mask_text("error at ldaps://cn=x:pw@dc1 and ldap://dc2"),
            "error at ldaps://cn=x:********@dc1 and ldap://dc2"
        );
    }

    #[test]
    fn secret_keys_are_masked_wherever_they_sit() {
        let mut config = Config {
            database: "postgres://u:dbpass@h/d".to_owned(),
            ..Config::default()
        };
        config.idv.vendors.insert(
            "persona".to_owned(),
            crate::config::IdvVendor {
                secret: "whsec".to_owned(),
                api_key: Some("apikey".to_owned()),
                ..Default::default()
            },
        );
        config.connectors.ldap =
            Some(serde_json::json!({ "bind_password": "ldappass", "url": "ldap://x" }));
        let shown = masked(&config).to_string();
        for secret in ["dbpass", "whsec", "apikey", "ldappass"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(shown.contains("ldap://x"), "{shown}");
        assert!(shown.contains("api_token_days"), "{shown}");
    }
}
