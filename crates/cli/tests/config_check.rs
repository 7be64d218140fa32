//! `deskgate config check --config FILE`: the effective configuration with its secrets masked,
//! every problem named, and the exit status a deployment script can act on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use deskgate_testkit::database::{Backend, FreshDatabase};
use support::{DESKGATE, stderr, stdout};

const PACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default");

/// Secrets the configurations below carry; none may be printed.
const SECRETS: [&str; 4] = [
    "pg-secret-pw",
    "oidc-client-secret-value",
    "whsec-idv-secret",
    "persona-api-key-value",
];

fn config_check(dir: &Path, toml: &str) -> Output {
    let file = dir.join("deskgate.toml");
    std::fs::write(&file, toml).unwrap();
    Command::new(DESKGATE)
        .args(["config", "check", "--config"])
        .arg(&file)
        .env("DESKGATE_LOG", "warn")
        .output()
        .unwrap()
}

/// A full configuration over `database` with a secret in every place one can sit; `top` adds
/// top-level keys.
fn configuration(dir: &Path, database: &str, top: &str) -> String {
    format!(
        r#"
data_dir = "{data}"
database = "{database}"
public_url = "https://deskgate.example.org"
{top}

[delivery]
outbox_file = true

[oidc]
issuer = "https://id.example.org"
client_id = "deskgate"
client_secret = "oidc-client-secret-value"

[idv.vendors.persona]
secret = "whsec-idv-secret"
api_url = "https://withpersona.com/api/v1"
api_key = "persona-api-key-value"
inquiry_template_id = "itmpl_1"
"#,
        data = dir.join("data").display(),
    )
}

fn assert_no_secret(o: &Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }
}

#[tokio::test]
async fn a_good_configuration_passes_and_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = FreshDatabase::create(Backend::Postgres, dir.path(), "unused.db").await;
    // The test server trusts local connections, so the password is never needed, only masked.
    let url = db.url.replacen(
        "postgres://postgres@",
        "postgres://postgres:pg-secret-pw@",
        1,
    );
    assert_ne!(url, db.url, "the URL must carry a password: {}", db.url);
    let o = config_check(dir.path(), &configuration(dir.path(), &url, ""));
    db.drop_now().await;
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("configuration OK"), "{out}");
    assert!(out.contains("postgres://postgres:********@"), "{out}");
    assert!(out.contains("client_secret = \"********\""), "{out}");
    // Keys a first start creates are named, not counted as problems.
    assert!(out.contains("code.key does not exist yet"), "{out}");
    assert_no_secret(&o);
}

#[test]
fn an_unreachable_database_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://deskgate:pg-secret-pw@127.0.0.1:1/deskgate";
    let o = config_check(dir.path(), &configuration(dir.path(), url, ""));
    assert!(!o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("problem: database postgres://deskgate:********@127.0.0.1:1/deskgate"),
        "{out}"
    );
    assert!(stderr(&o).contains("1 problem(s)"), "{}", stderr(&o));
    assert_no_secret(&o);
}

#[test]
fn a_bad_policy_bundle_and_a_corrupt_key_fail_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("bundle");
    deskgate_testkit::bundle::copy_dir(Path::new(PACK), &broken);
    let playbooks = broken.join("playbooks.toml");
    let text = std::fs::read_to_string(&playbooks).unwrap();
    let edited = text.replacen("\"recovery_code\"]", "\"horoscope\"]", 1);
    assert_ne!(edited, text, "the edit must change the pack");
    std::fs::write(&playbooks, edited).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/code.key"), b"too short").unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("data/deskgate.db").display());
    let top = format!("policy_dir = \"{}\"", broken.display());
    let toml = configuration(dir.path(), &sqlite, &top);
    let o = config_check(dir.path(), &toml);
    assert!(!o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("problem: policy bundle:"), "{out}");
    assert!(out.contains("playbooks.toml"), "{out}");
    assert!(out.contains("code.key"), "{out}");
    assert!(out.contains("32 bytes"), "{out}");
    assert!(stderr(&o).contains("2 problem(s)"), "{}", stderr(&o));
    assert_no_secret(&o);
}

#[test]
fn an_ldap_connector_that_cannot_bind_fails_its_start_up_check() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("data/deskgate.db").display());
    let toml = configuration(dir.path(), &sqlite, "connector = \"ldap\"")
        + r#"
[connectors.ldap]
url = "ldap://127.0.0.1:1"
tls = "none"
mode = "openldap"
bind_dn = "cn=deskgate,dc=example,dc=org"
bind_password = "pg-secret-pw"
base_dn = "dc=example,dc=org"
subject_attribute = "uid"
group_base_dn = "ou=groups,dc=example,dc=org"
timeout_secs = 2
"#;
    let o = config_check(dir.path(), &toml);
    assert!(!o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("problem: connector openldap:"), "{out}");
    assert!(out.contains("bind_password = \"********\""), "{out}");
    assert_no_secret(&o);
}

#[test]
fn a_missing_configuration_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(DESKGATE)
        .args(["config", "check", "--config"])
        .arg(dir.path().join("absent.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}
