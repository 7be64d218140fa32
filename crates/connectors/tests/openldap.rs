//! The LDAP connector in OpenLDAP mode against a real `slapd` with the ppolicy overlay.
//!
//! Each test starts its own slapd from `deskgate-testkit` (a private server per test, stopped when
//! the test ends, so lockout state never leaks between tests), seeded with the people below.
//! Deskgate binds as the fixture's dedicated service account with `manage` rights, not as the
//! rootdn, because the rootdn bypasses ppolicy and would hide what a real deployment meets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use deskgate_connectors::{
    BindPassword, Connector, ConnectorError, DirectoryContact, DirectoryMode, LdapConfig,
    LdapConnector, Operation, TlsMode,
};
use deskgate_core::{ContactKind, SubjectStatus, Tier};
use deskgate_testkit::{
    INSUFFICIENT_ACCESS, INVALID_CREDENTIALS, SERVICE_DN, SERVICE_PW, SUFFIX, Slapd, people,
};
use ldap3::Scope;

/// The people, services and groups these tests act on, after the testkit's skeleton.
const SEED: &str = r#"dn: uid=alice,ou=people,dc=example,dc=org
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

async fn start() -> Slapd {
    Slapd::start(SEED).await
}

fn config(slapd: &Slapd) -> LdapConfig {
    LdapConfig {
        url: slapd.url().to_owned(),
        group_tiers: BTreeMap::from([
            ("staff".to_owned(), Tier::Standard),
            ("IT-Admins".to_owned(), Tier::Privileged),
            (format!("cn=executives,ou=groups,{SUFFIX}"), Tier::Executive),
        ]),
        default_tier: Tier::Sensitive,
        ..offline_config()
    }
}

fn connector(slapd: &Slapd) -> LdapConnector {
    LdapConnector::new(config(slapd)).unwrap()
}

#[tokio::test]
async fn reset_sets_a_generated_password_the_old_one_fails_and_a_change_is_forced() {
    let slapd = start().await;
    let alice = people("alice");
    assert_eq!(slapd.bind_rc(&alice, "alice-old-pass").await, 0);

    let secret = connector(&slapd).reset_password("alice").await.unwrap();

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
    let slapd = start().await;
    let bob = people("bob");
    slapd.lock_with_wrong_passwords(&bob).await;
    assert_eq!(
        slapd.bind_rc(&bob, "bob-pass").await,
        INVALID_CREDENTIALS,
        "ppolicy should have locked bob"
    );
    let connector = connector(&slapd);
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
    let slapd = start().await;
    let carol = people("carol");
    // 000001010000Z is ppolicy's "locked until an administrator unlocks it".
    slapd
        .replace(&carol, "pwdAccountLockedTime", &["000001010000Z"])
        .await;
    assert_eq!(
        slapd.bind_rc(&carol, "carol-pass").await,
        INVALID_CREDENTIALS
    );

    connector(&slapd).unlock("carol").await.unwrap();

    assert_eq!(slapd.bind_rc(&carol, "carol-pass").await, 0);
}

#[tokio::test]
async fn lookup_maps_groups_to_the_highest_tier_and_reads_contacts_and_manager() {
    let slapd = start().await;
    let connector = connector(&slapd);

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
    let slapd = start().await;
    let connector = connector(&slapd);
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
    let slapd = start().await;
    let connector = connector(&slapd);
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
    let slapd = start().await;
    let connector = connector(&slapd);
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
    let slapd = start().await;
    let dn = format!("uid=svc-backup,ou=services,{SUFFIX}");

    let secret = connector(&slapd)
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
    let slapd = start().await;
    let mut config = config(&slapd);
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
