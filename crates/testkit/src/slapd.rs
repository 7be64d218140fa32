//! A private OpenLDAP server for the directory connector's tests.
//!
//! [`Slapd`] is a private OpenLDAP server with the ppolicy overlay: each test starts its own
//! (about 0.1 s) from a generated slapd.conf and seed LDIF in a temp dir, on a free loopback
//! port, and it is stopped by PID when dropped, so lockout state never leaks between tests.
//! Deskgate binds as a dedicated service account with `manage` rights ([`SERVICE_DN`]), not as
//! the rootdn, because the rootdn bypasses ppolicy and would hide what a real deployment meets.
//! When slapd is missing the fixture fails the test and says how to install it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use ldap3;
use ldap3::{Ldap, LdapConnAsync, Mod, Scope, SearchEntry};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PW: &str = "root-secret";
/// Deskgate's own service account in the fixture directory.
pub const SERVICE_DN: &str = "cn=deskgate,ou=services,dc=example,dc=org";
pub const SERVICE_PW: &str = "deskgate-service-secret";
/// The fixture's password policy locks an account after this many wrong passwords.
pub const MAX_FAILURES: usize = 5;
/// RFC 4511 result codes the tests check.
pub const INVALID_CREDENTIALS: u32 = 49;
pub const INSUFFICIENT_ACCESS: u32 = 50;

/// The DN of `uid` under `ou=people`.
pub fn people(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

/// The skeleton every fixture directory starts with: the suffix, `ou=people`, `ou=groups`,
/// `ou=policies` (with the default ppolicy: lockout after five failures until an administrator
/// unlocks, change forced after an admin reset), `ou=services` and Deskgate's service account.
/// Tests add their people and groups after it.
pub const BASE_LDIF: &str = r#"dn: dc=example,dc=org
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
                "`{name}` is not installed, so the OpenLDAP tests cannot run. Run the README's \
                 test command (./scripts/test.sh), which installs it, or install it yourself: \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils"
            )
        })
}

/// A private slapd. Fields drop in order: the process is killed before its directory goes.
pub struct Slapd {
    process: Option<KillOnDrop>,
    url: String,
    dir: tempfile::TempDir,
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
    /// Starts a server holding [`BASE_LDIF`] followed by `entries` (LDIF, blank-line separated).
    pub async fn start(entries: &str) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, slapd_conf(&dir.path().display().to_string())).unwrap();
        let seed_path = dir.path().join("seed.ldif");
        std::fs::write(
            &seed_path,
            format!("{BASE_LDIF}\n{}\n", entries.trim_matches('\n')),
        )
        .unwrap();
        run(Command::new(tool("slaptest"))
            .arg("-u")
            .arg("-f")
            .arg(&conf_path));
        run(Command::new(tool("slapadd"))
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&seed_path));

        // The free port is found by binding port 0 and releasing it; another process could take
        // it before slapd does, so a failed start is retried on a new port.
        for _ in 0..3 {
            let url = format!("ldap://127.0.0.1:{}", free_port());
            let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
            let mut process = spawn_slapd(&conf_path, &url, log);
            if wait_ready(&mut process, &url).await {
                return Slapd {
                    process: Some(process),
                    url,
                    dir,
                };
            }
        }
        panic!("slapd did not start; log:\n{}", read_log(&dir));
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the server now (a directory outage); the data directory stays until drop.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// The result code of a simple bind as `dn` with `password`.
    pub async fn bind_rc(&self, dn: &str, password: &str) -> u32 {
        let mut ldap = self.session().await;
        let rc = ldap.simple_bind(dn, password).await.unwrap().rc;
        let _ = ldap.unbind().await;
        rc
    }

    /// Locks `dn` the way an attacker or a forgetful user does: wrong passwords until ppolicy
    /// locks the account.
    pub async fn lock_with_wrong_passwords(&self, dn: &str) {
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                self.bind_rc(dn, "wrong-password").await,
                INVALID_CREDENTIALS
            );
        }
    }

    /// An unbound connection.
    pub async fn session(&self) -> Ldap {
        let (conn, ldap) = LdapConnAsync::new(&self.url).await.unwrap();
        ldap3::drive!(conn);
        ldap
    }

    async fn root_session(&self) -> Ldap {
        let mut ldap = self.session().await;
        ldap.simple_bind(ROOT_DN, ROOT_PW)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }

    /// Reads attributes (operational ones too, when named) of `dn` as the rootdn.
    pub async fn read(&self, dn: &str, attrs: &[&str]) -> SearchEntry {
        let mut ldap = self.root_session().await;
        let (mut entries, _) = ldap
            .search(dn, Scope::Base, "(objectClass=*)", attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
        let _ = ldap.unbind().await;
        SearchEntry::construct(entries.remove(0))
    }

    /// Replaces `attribute` of `dn` with `values` as the rootdn (an administrator editing the
    /// directory behind Deskgate's back).
    pub async fn replace(&self, dn: &str, attribute: &str, values: &[&str]) {
        let mut ldap = self.root_session().await;
        ldap.modify(
            dn,
            vec![Mod::Replace(
                attribute,
                values.iter().copied().collect::<HashSet<&str>>(),
            )],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = ldap.unbind().await;
    }

    /// Deletes the entry `dn` as the rootdn.
    pub async fn delete(&self, dn: &str) {
        let mut ldap = self.root_session().await;
        ldap.delete(dn).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
    }
}

/// The slapd.conf of a fixture in directory `d`: one mdb database under [`SUFFIX`], the
/// service account's `manage` rights, and the ppolicy overlay with lockout.
fn slapd_conf(d: &str) -> String {
    format!(
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
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts slapd on `url` with its errors going to `log`.
fn spawn_slapd(conf_path: &Path, url: &str, log: std::fs::File) -> KillOnDrop {
    // `-d stats` keeps slapd in the foreground (so the PID is ours to kill) and writes its
    // errors to the log; `-d 0` would hide fatal ones.
    KillOnDrop(
        Command::new(tool("slapd"))
            .args(["-d", "stats", "-f"])
            .arg(conf_path)
            .arg("-h")
            .arg(format!("{url}/"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
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
