//! `deskgate serve` with `connector = "ldap"`: the TOML table and the password variable reach the
//! connector, a bad table stops the start with a message naming the key, and a served case takes
//! its subject from a real slapd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use deskgate_testkit::{SERVICE_DN, SERVICE_PW, SUFFIX, Slapd};
use support::{deskgate, free_port, stderr, stdout};

const SEED: &str = r#"dn: uid=u-nora,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: u-nora
cn: Nora Quist
sn: Quist
mail: nora@example.org
userPassword: nora-pass

dn: cn=idp-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: idp-admins
member: uid=u-nora,ou=people,dc=example,dc=org
"#;

/// A configuration file for `serve` with `connector = "ldap"` and `ldap_table` (TOML lines).
fn config(dir: &Path, port: u16, ldap_table: Option<&str>) -> std::path::PathBuf {
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
         data_dir = {:?}\nconnector = \"ldap\"\n",
        dir.join("data").display().to_string()
    );
    if let Some(table) = ldap_table {
        text.push_str("\n[connectors.ldap]\n");
        text.push_str(table);
        text.push_str("\n[connectors.ldap.group_tiers]\nidp-admins = \"privileged\"\n");
    }
    let path = dir.join("deskgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn table(url: &str, with_password: bool) -> String {
    let mut t = format!(
        "url = \"{url}\"\ntls = \"none\"\nmode = \"openldap\"\nbind_dn = \"{SERVICE_DN}\"\n\
         base_dn = \"{SUFFIX}\"\nuser_filter = \"(objectClass=inetOrgPerson)\"\n\
         subject_attribute = \"uid\"\ngroup_base_dn = \"ou=groups,{SUFFIX}\"\n"
    );
    if with_password {
        t.push_str(&format!("bind_password = \"{SERVICE_PW}\"\n"));
    }
    t
}

fn serve(config: &Path, password_env: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskgate"));
    cmd.arg("serve")
        .arg("--config")
        .arg(config)
        .env("DESKGATE_LOG", "info")
        .env_remove("DESKGATE_LDAP_BIND_PASSWORD");
    if let Some(p) = password_env {
        cmd.env("DESKGATE_LDAP_BIND_PASSWORD", p);
    }
    cmd
}

fn refused(out: &Output, says: &str) {
    assert!(!out.status.success(), "serve should refuse to start");
    let err = stderr(out);
    assert!(err.contains(says), "{err}");
    assert!(!err.contains(SERVICE_PW), "{err}");
}

#[test]
fn serve_refuses_to_start_with_a_missing_or_invalid_ldap_table() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();

    let out = serve(&config(dir.path(), port, None), None)
        .output()
        .unwrap();
    refused(&out, "connector = \"ldap\" needs a [connectors.ldap] table");

    let local = table("ldap://127.0.0.1:9", false);
    let out = serve(&config(dir.path(), port, Some(&local)), None)
        .output()
        .unwrap();
    refused(&out, "DESKGATE_LDAP_BIND_PASSWORD");

    // With the password from the variable, validation goes on to the transport.
    let remote = table("ldap://dc1.example.org", false);
    let out = serve(&config(dir.path(), port, Some(&remote)), Some(SERVICE_PW))
        .output()
        .unwrap();
    refused(&out, "plain ldap://");

    let typo = format!("{}bse_dn = \"x\"\n", table("ldap://127.0.0.1:9", true));
    let out = serve(&config(dir.path(), port, Some(&typo)), None)
        .output()
        .unwrap();
    refused(&out, "bse_dn");
    assert!(
        !dir.path().join("data").join("deskgate.db").exists(),
        "nothing was created"
    );
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[tokio::test]
async fn a_served_case_takes_its_subject_and_tier_from_the_directory() {
    let slapd = Slapd::start(SEED).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The agent is a person of the directory too: staff who work cases are linked to themselves.
    let agent = dir.path().join("agent.jsonl");
    std::fs::write(
        &agent,
        r#"{"id":"u-agent-a","display_name":"Agent A","tier":"standard","status":"active","manager":null,"owners":[],"groups":["helpdesk"],"contacts":[],"authenticators":[],"flagged":false,"hired_at":null}"#,
    )
    .unwrap();
    let o = deskgate(
        &data,
        &["admin", "import-subjects", agent.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = deskgate(
        &data,
        &[
            "admin",
            "staff",
            "add",
            "--id",
            "st-a",
            "--name",
            "agent.a",
            "--role",
            "agent",
            "--subject",
            "u-agent-a",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = deskgate(&data, &["admin", "token", "create", "--staff", "agent.a"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = stdout(&o).trim().to_owned();

    let port = free_port();
    let path = config(dir.path(), port, Some(&table(slapd.url(), false)));
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = serve(&path, Some(SERVICE_PW))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "serve did not start:\n{}",
                std::fs::read_to_string(dir.path().join("serve.log")).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Nora exists only in the directory; the case brings her in with her directory tier.
    let body = curl(&[
        "-s",
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"subject":"u-nora","action":"password_reset","channel":"phone"}"#,
        &format!("http://127.0.0.1:{port}/api/v1/cases"),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    let case: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(case["tier"], "privileged", "{case}");
    // Deskgate has no history of a contact it sees for the first time: it is new, so it is no
    // evidence yet and the risk says so (import-subjects carries history over).
    assert!(
        case["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "contact_changed_recently"),
        "{case}"
    );
    assert_eq!(case["subject"]["name"], "Nora Quist", "{case}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(!log.contains(SERVICE_PW), "the bind password was logged");
}
