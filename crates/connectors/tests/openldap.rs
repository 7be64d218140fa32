//! The LDAP connector in OpenLDAP mode against a real `slapd` with the ppolicy overlay.
//!
//! Each test starts its own slapd (about 0.1 s) from a generated slapd.conf and seed LDIF in a
//! temp dir, on a free loopback port, and stops it by PID when the test ends, so lockout state
//! never leaks between tests. Deskgate binds as a dedicated service account with `manage` rights,
//! not as the rootdn, because the rootdn bypasses ppolicy and would hide what a real deployment
//! meets. When slapd is missing the tests fail and say how to install it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deskgate_connectors::{
    BindPassword, Connector, ConnectorError, DirectoryContact, DirectoryMode, LdapConfig,
    LdapConnector, Operation, TlsMode,
};
use deskgate_core::{ContactKind, SubjectStatus, Tier};
use ldap3::{Ldap, LdapConnAsync, Mod, Scope, SearchEntry};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "root-secret";
const SERVICE_DN: &str = "cn=deskgate,ou=services,dc=example,dc=org";
const SERVICE_PW: &str = "deskgate-service-secret";
const INVALID_CREDENTIALS: u32 = 49;
const INSUFFICIENT_ACCESS: u32 = 50;

fn people(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

const SEED: &str = r#"dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=policies,dc=example,dc=org
objectClass: organizationalUnit
ou: policies

dn: ou=services,dc=example,dc=org
objectClass: organizationalUnit
ou: services

dn: cn=default,ou=policies,dc=example,dc=org
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 5
pwdLockoutDuration: 0
pwdMustChange: TRUE

dn: cn=deskgate,ou=services,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: deskgate
userPassword: deskgate-service-secret

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Archer
sn: Archer
displayName: Alice Archer
mail: alice@example.org
mobile: +1 555 010 0142
telephoneNumber: +1 555 010 0100
manager: uid=carol,ou=people,dc=example,dc=org
userPassword: alice-old-pass

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Baker
sn: Baker
mail: bob@example.org
userPassword: bob-pass

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol Chen
sn: Chen
userPassword: carol-pass

dn: uid=svc-backup,ou=services,dc=example,dc=org
objectClass: inetOrgPerson
uid: svc-backup
cn: backup service
sn: backup
userPassword: svc-old-pass

dn: cn=staff,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,dc=example,dc=org
member: uid=bob,ou=people,dc=example,dc=org

dn: cn=it-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: it-admins
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=executives,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: executives
member: uid=carol,ou=people,dc=example,dc=org
"#;

/// Finds an OpenLDAP server tool, or fails the test with the install command.
fn tool(name: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(name);
    if sbin.is_file() {
        return sbin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed, so the OpenLDAP connector tests cannot run. Run the \
                 README's test command (./scripts/test.sh), which installs it, or install it \
                 yourself: DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils"
            )
        })
}

/// A private slapd. Fields drop in order: the process is killed before its directory goes.
struct Slapd {
    _process: KillOnDrop,
    url: String,
    _dir: tempfile::TempDir,
}

/// A child process killed by PID when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Slapd {
    async fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb.la
moduleload ppolicy.la
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {d}/data
access to attrs=userPassword
  by dn.exact="{SERVICE_DN}" manage
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="{SERVICE_DN}" manage
  by users read
  by * none
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{SUFFIX}"
ppolicy_hash_cleartext
ppolicy_use_lockout
"#
        );
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let seed_path = dir.path().join("seed.ldif");
        std::fs::write(&seed_path, SEED).unwrap();
        run(Command::new(tool("slaptest"))
            .arg("-u")
            .arg("-f")
            .arg(&conf_path));
        run(Command::new(tool("slapadd"))
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&seed_path));

        // The free port is found by binding port 0 and releasing it; another process could take it
        // before slapd does, so a failed start is retried on a new port.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let url = format!("ldap://127.0.0.1:{port}");
            let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
            // `-d stats` keeps slapd in the foreground (so the PID is ours to kill) and writes
            // its errors to the log; `-d 0` would hide fatal ones.
            let mut process = KillOnDrop(
                Command::new(tool("slapd"))
                    .args(["-d", "stats", "-f"])
                    .arg(&conf_path)
                    .arg("-h")
                    .arg(format!("{url}/"))
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap(),
            );
            if wait_ready(&mut process, &url).await {
                return Slapd {
                    _process: process,
                    url,
                    _dir: dir,
                };
            }
        }
        panic!("slapd did not start; log:\n{}", read_log(&dir));
    }

    fn config(&self) -> LdapConfig {
        LdapConfig {
            url: self.url.clone(),
            group_tiers: BTreeMap::from([
                ("staff".to_owned(), Tier::Standard),
                ("IT-Admins".to_owned(), Tier::Privileged),
                (format!("cn=executives,ou=groups,{SUFFIX}"), Tier::Executive),
            ]),
            default_tier: Tier::Sensitive,
            ..offline_config()
        }
    }

    fn connector(&self) -> LdapConnector {
        LdapConnector::new(self.config()).unwrap()
    }

    /// The result code of a simple bind as `dn` with `password`.
    async fn bind_rc(&self, dn: &str, password: &str) -> u32 {
        let mut ldap = self.session().await;
        let rc = ldap.simple_bind(dn, password).await.unwrap().rc;
        let _ = ldap.unbind().await;
        rc
    }

    async fn session(&self) -> Ldap {
        let (conn, ldap) = LdapConnAsync::new(&self.url).await.unwrap();
        ldap3::drive!(conn);
        ldap
    }

    /// Reads operational attributes of `dn` as the rootdn.
    async fn read(&self, dn: &str, attrs: &[&str]) -> SearchEntry {
        let mut ldap = self.session().await;
        ldap.simple_bind(ROOT_DN, ROOT_PW)
            .await
            .unwrap()
            .success()
            .unwrap();
        let (mut entries, _) = ldap
            .search(dn, Scope::Base, "(objectClass=*)", attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
        let _ = ldap.unbind().await;
        SearchEntry::construct(entries.remove(0))
    }
}

/// Waits until slapd answers a bind; false when it exited (port taken) or never answered.
async fn wait_ready(process: &mut KillOnDrop, url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if process.0.try_wait().unwrap().is_some() {
            return false;
        }
        if let Ok((conn, mut ldap)) = LdapConnAsync::new(url).await {
            ldap3::drive!(conn);
            if let Ok(result) = ldap.simple_bind(ROOT_DN, ROOT_PW).await {
                let _ = ldap.unbind().await;
                return result.rc == 0;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("slapd.log")).unwrap_or_default()
}

#[tokio::test]
async fn reset_sets_a_generated_password_the_old_one_fails_and_a_change_is_forced() {
    let slapd = Slapd::start().await;
    let alice = people("alice");
    assert_eq!(slapd.bind_rc(&alice, "alice-old-pass").await, 0);

    let secret = slapd.connector().reset_password("alice").await.unwrap();

    assert_ne!(secret.expose(), "alice-old-pass");
    assert_eq!(slapd.bind_rc(&alice, secret.expose()).await, 0);
    assert_eq!(
        slapd.bind_rc(&alice, "alice-old-pass").await,
        INVALID_CREDENTIALS
    );
    let entry = slapd.read(&alice, &["pwdReset"]).await;
    assert_eq!(entry.attrs.get("pwdReset"), Some(&vec!["TRUE".to_owned()]));
    // ppolicy enforces the flag: with it set, the subject may bind but do nothing else.
    let mut ldap = slapd.session().await;
    ldap.simple_bind(&alice, secret.expose())
        .await
        .unwrap()
        .success()
        .unwrap();
    let search = ldap
        .search(SUFFIX, Scope::Base, "(objectClass=*)", vec!["dc"])
        .await
        .unwrap();
    assert_eq!(search.1.rc, INSUFFICIENT_ACCESS, "{:?}", search.1);
}

#[tokio::test]
async fn unlock_after_too_many_wrong_passwords_lets_the_account_bind() {
    let slapd = Slapd::start().await;
    let bob = people("bob");
    for _ in 0..5 {
        assert_eq!(slapd.bind_rc(&bob, "wrong").await, INVALID_CREDENTIALS);
    }
    assert_eq!(
        slapd.bind_rc(&bob, "bob-pass").await,
        INVALID_CREDENTIALS,
        "ppolicy should have locked bob"
    );
    let connector = slapd.connector();
    assert_eq!(
        connector.lookup("bob").await.unwrap().status,
        SubjectStatus::Locked
    );

    connector.unlock("bob").await.unwrap();

    assert_eq!(
        connector.lookup("bob").await.unwrap().status,
        SubjectStatus::Active
    );
    // The failure count went with the lock: a sixth wrong password (before any successful bind
    // could reset the count) does not relock.
    assert_eq!(slapd.bind_rc(&bob, "wrong").await, INVALID_CREDENTIALS);
    assert_eq!(slapd.bind_rc(&bob, "bob-pass").await, 0);
    // Unlocking an account that is not locked is a no-op, not an error.
    connector.unlock("bob").await.unwrap();
}

#[tokio::test]
async fn unlock_clears_an_administrative_lock() {
    let slapd = Slapd::start().await;
    let carol = people("carol");
    let mut ldap = slapd.session().await;
    ldap.simple_bind(ROOT_DN, ROOT_PW)
        .await
        .unwrap()
        .success()
        .unwrap();
    // 000001010000Z is ppolicy's "locked until an administrator unlocks it".
    ldap.modify(
        &carol,
        vec![Mod::Replace(
            "pwdAccountLockedTime",
            HashSet::from(["000001010000Z"]),
        )],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    assert_eq!(
        slapd.bind_rc(&carol, "carol-pass").await,
        INVALID_CREDENTIALS
    );

    slapd.connector().unlock("carol").await.unwrap();

    assert_eq!(slapd.bind_rc(&carol, "carol-pass").await, 0);
}

#[tokio::test]
async fn lookup_maps_groups_to_the_highest_tier_and_reads_contacts_and_manager() {
    let slapd = Slapd::start().await;
    let connector = slapd.connector();

    let alice = connector.lookup("alice").await.unwrap();
    assert_eq!(alice.backend_id, people("alice"));
    assert_eq!(alice.display_name, "Alice Archer");
    assert_eq!(alice.groups, ["it-admins", "staff"]);
    assert_eq!(alice.tier, Tier::Privileged, "matched case-insensitively");
    assert_eq!(alice.status, SubjectStatus::Active);
    assert_eq!(alice.manager.as_deref(), Some("carol"));
    assert_eq!(
        alice.contacts,
        [
            DirectoryContact {
                kind: ContactKind::Email,
                value: "alice@example.org".to_owned()
            },
            DirectoryContact {
                kind: ContactKind::Phone,
                value: "+1 555 010 0142".to_owned()
            },
            DirectoryContact {
                kind: ContactKind::Phone,
                value: "+1 555 010 0100".to_owned()
            },
        ]
    );

    let carol = connector.lookup("carol").await.unwrap();
    assert_eq!(carol.tier, Tier::Executive, "matched by group DN");
    assert_eq!(carol.display_name, "Carol Chen", "falls back to cn");
    assert_eq!(carol.manager, None);

    let service = connector.lookup("svc-backup").await.unwrap();
    assert!(service.groups.is_empty());
    assert_eq!(service.tier, Tier::Sensitive, "the configured default tier");
}

#[tokio::test]
async fn an_unknown_subject_is_not_found() {
    let slapd = Slapd::start().await;
    let connector = slapd.connector();
    for call in [
        connector.lookup("mallory").await.err(),
        connector.unlock("mallory").await.err(),
        connector.reset_password("mallory").await.err(),
    ] {
        assert!(
            matches!(&call, Some(ConnectorError::NotFound { subject_id }) if subject_id == "mallory"),
            "{call:?}"
        );
    }
}

#[tokio::test]
async fn filter_metacharacters_in_the_subject_id_match_nothing() {
    let slapd = Slapd::start().await;
    let connector = slapd.connector();
    // Unescaped, "*" would match every entry (Ambiguous), "al*" would find alice, and the
    // others would rewrite the filter to match alice or everyone.
    for injected in [
        "*",
        "al*",
        "alice)(uid=*",
        "*)(|(uid=*",
        "alice)(|(objectClass=*)",
        "\\2a",
    ] {
        let result = connector.lookup(injected).await;
        assert!(
            matches!(result, Err(ConnectorError::NotFound { .. })),
            "{injected:?}: {result:?}"
        );
        let reset = connector.reset_password(injected).await;
        assert!(
            matches!(reset, Err(ConnectorError::NotFound { .. })),
            "{injected:?}: {reset:?}"
        );
    }
    // Nobody's password changed along the way.
    assert_eq!(slapd.bind_rc(&people("alice"), "alice-old-pass").await, 0);
    assert_eq!(slapd.bind_rc(&people("bob"), "bob-pass").await, 0);
}

#[tokio::test]
async fn change_contact_replaces_the_email_and_phone_of_record() {
    let slapd = Slapd::start().await;
    let connector = slapd.connector();
    connector
        .change_contact("bob", ContactKind::Email, "bob.baker@example.org")
        .await
        .unwrap();
    connector
        .change_contact("bob", ContactKind::Phone, "+44 20 7946 0000")
        .await
        .unwrap();
    let bob = slapd.read(&people("bob"), &["mail", "mobile"]).await;
    assert_eq!(
        bob.attrs.get("mail"),
        Some(&vec!["bob.baker@example.org".to_owned()])
    );
    assert_eq!(
        bob.attrs.get("mobile"),
        Some(&vec!["+44 20 7946 0000".to_owned()])
    );
    let refused = connector
        .change_contact("bob", ContactKind::Email, "not-an-address")
        .await;
    assert!(matches!(
        refused,
        Err(ConnectorError::InvalidContact { .. })
    ));
}

#[tokio::test]
async fn rotating_a_service_credential_does_not_force_a_change() {
    let slapd = Slapd::start().await;
    let dn = format!("uid=svc-backup,ou=services,{SUFFIX}");

    let secret = slapd
        .connector()
        .rotate_service_credential("svc-backup")
        .await
        .unwrap();

    assert_eq!(slapd.bind_rc(&dn, secret.expose()).await, 0);
    assert_eq!(
        slapd.bind_rc(&dn, "svc-old-pass").await,
        INVALID_CREDENTIALS
    );
    let entry = slapd.read(&dn, &["pwdReset"]).await;
    assert_eq!(entry.attrs.get("pwdReset"), None, "{:?}", entry.attrs);
}

#[tokio::test]
async fn a_wrong_service_password_is_reported_as_such() {
    let slapd = Slapd::start().await;
    let mut config = slapd.config();
    config.bind_password = BindPassword::new("not-the-service-password");
    let result = LdapConnector::new(config).unwrap().lookup("alice").await;
    match result {
        Err(error @ ConnectorError::ServiceBindFailed { code, .. }) => {
            assert_eq!(code, INVALID_CREDENTIALS);
            assert!(!error.to_string().contains("not-the-service-password"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn operations_ldap_cannot_do_are_unsupported_and_not_advertised() {
    // No server: unsupported calls must fail before any network traffic.
    let connector = LdapConnector::new(offline_config()).unwrap();
    let supported = connector.supported_operations();
    let unsupported = [
        (
            Operation::RemoveFactors,
            connector.remove_factors("alice").await.err(),
        ),
        (
            Operation::IssueTemporaryAccessPass,
            connector
                .issue_temporary_access_pass("alice", chrono::Duration::minutes(60))
                .await
                .err(),
        ),
        (
            Operation::RevokeSessions,
            connector.revoke_sessions("alice").await.err(),
        ),
    ];
    for (operation, error) in unsupported {
        assert!(!supported.contains(&operation));
        assert!(
            matches!(
                error,
                Some(ConnectorError::Unsupported { operation: o, connector: "openldap", .. }) if o == operation
            ),
            "{operation}: {error:?}"
        );
    }
    assert_eq!(supported.len() + 3, Operation::ALL.len());
    assert_eq!(connector.name(), "openldap");
    let _: &dyn Connector = &connector;
}

/// The test configuration, pointing at no server (port 9, discard) for calls that never
/// connect.
fn offline_config() -> LdapConfig {
    LdapConfig {
        url: "ldap://127.0.0.1:9".to_owned(),
        // Loopback only; the config tests check that anything else needs TLS.
        tls: TlsMode::None,
        mode: DirectoryMode::Openldap,
        bind_dn: SERVICE_DN.to_owned(),
        bind_password: BindPassword::new(SERVICE_PW),
        base_dn: SUFFIX.to_owned(),
        user_filter: "(objectClass=inetOrgPerson)".to_owned(),
        subject_attribute: "uid".to_owned(),
        group_base_dn: format!("ou=groups,{SUFFIX}"),
        group_member_attribute: "member".to_owned(),
        group_name_attribute: "cn".to_owned(),
        group_tiers: BTreeMap::new(),
        default_tier: Tier::Standard,
        phone_attribute: "mobile".to_owned(),
        timeout_secs: 10,
    }
}
