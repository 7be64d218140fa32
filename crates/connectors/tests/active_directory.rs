//! The LDAP connector in Active Directory mode, byte-checked against an in-process LDAP server
//! built on `ldap3_proto`. The fake speaks real LDAP over TCP, answers binds, searches and
//! modifies from a fixed directory, and records every request, so the tests can assert exactly
//! what Deskgate puts on the wire: the `unicodePwd` bytes, the replace operations, `pwdLastSet`,
//! `lockoutTime`, and the filters built from subject ids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deskgate_connectors::{
    BindPassword, Connector, ConnectorError, DirectoryMode, LdapConfig, LdapConnector, TlsMode,
};
use deskgate_core::{SubjectStatus, Tier};
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapFilter, LdapModify, LdapModifyRequest, LdapModifyType,
    LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchResultEntry,
    LdapSearchScope,
};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const BASE: &str = "DC=corp,DC=example,DC=org";
const GROUPS: &str = "OU=Groups,DC=corp,DC=example,DC=org";
const SERVICE_DN: &str = "CN=deskgate,OU=Services,DC=corp,DC=example,DC=org";
const SERVICE_PW: &str = "deskgate-service-secret";
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

fn user_dn(name: &str) -> String {
    format!("CN={name},OU=Users,{BASE}")
}

fn attr(name: &str, values: &[&str]) -> LdapPartialAttribute {
    LdapPartialAttribute {
        atype: name.to_owned(),
        vals: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
    }
}

/// The users the fake knows, by sAMAccountName.
fn users() -> Vec<(&'static str, LdapSearchResultEntry)> {
    let entry = |name: &str, attributes: Vec<LdapPartialAttribute>| LdapSearchResultEntry {
        dn: user_dn(name),
        attributes,
    };
    vec![
        (
            "dana",
            entry(
                "Dana Diaz",
                vec![
                    attr("sAMAccountName", &["dana"]),
                    attr("displayName", &["Dana Diaz"]),
                    attr("mail", &["dana@corp.example.org"]),
                    attr("userAccountControl", &["512"]),
                    attr("lockoutTime", &["0"]),
                ],
            ),
        ),
        (
            "erin",
            entry(
                "Erin Eze",
                vec![
                    attr("sAMAccountName", &["erin"]),
                    // 514 = NORMAL_ACCOUNT | ACCOUNTDISABLE
                    attr("userAccountControl", &["514"]),
                ],
            ),
        ),
        (
            "frank",
            entry(
                "Frank Fox",
                vec![
                    attr("sAMAccountName", &["frank"]),
                    attr("userAccountControl", &["512"]),
                    attr("lockoutTime", &["133500000000000000"]),
                ],
            ),
        ),
    ]
}

/// Every request the fake received, in order.
type Log = Arc<Mutex<Vec<LdapOp>>>;

async fn start_fake() -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let recorded = log.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(
                Framed::new(stream, LdapCodec::default()),
                recorded.clone(),
            ));
        }
    });
    (url, log)
}

fn done(code: LdapResultCode) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

async fn serve(mut framed: Framed<tokio::net::TcpStream, LdapCodec>, log: Log) {
    while let Some(Ok(LdapMsg { msgid, op, .. })) = framed.next().await {
        log.lock().unwrap().push(op.clone());
        let replies = match op {
            LdapOp::BindRequest(bind) => {
                let ok = bind.dn == SERVICE_DN
                    && matches!(&bind.cred, LdapBindCred::Simple(pw) if pw == SERVICE_PW);
                let code = if ok {
                    LdapResultCode::Success
                } else {
                    LdapResultCode::InvalidCredentials
                };
                vec![LdapOp::BindResponse(LdapBindResponse {
                    res: done(code),
                    saslcreds: None,
                })]
            }
            LdapOp::SearchRequest(search) => {
                let mut replies: Vec<LdapOp> = search_entries(&search.filter, &search.base)
                    .into_iter()
                    .map(LdapOp::SearchResultEntry)
                    .collect();
                replies.push(LdapOp::SearchResultDone(done(LdapResultCode::Success)));
                replies
            }
            LdapOp::ModifyRequest(_) => vec![LdapOp::ModifyResponse(done(LdapResultCode::Success))],
            LdapOp::UnbindRequest => return,
            other => panic!("the fake does not expect {other:?}"),
        };
        for reply in replies {
            framed.send(LdapMsg::new(msgid, reply)).await.unwrap();
        }
    }
}

/// Answers the two searches the connector makes: the subject by `sAMAccountName`, and its
/// groups by an in-chain `member` match.
fn search_entries(filter: &LdapFilter, base: &str) -> Vec<LdapSearchResultEntry> {
    if let LdapFilter::Extensible(rule) = filter {
        assert_eq!(base, GROUPS);
        if rule.match_value == user_dn("Dana Diaz") {
            return vec![
                LdapSearchResultEntry {
                    dn: format!("CN=Domain Admins,{GROUPS}"),
                    attributes: vec![attr("cn", &["Domain Admins"])],
                },
                LdapSearchResultEntry {
                    dn: format!("CN=All Staff,{GROUPS}"),
                    attributes: vec![attr("cn", &["All Staff"])],
                },
            ];
        }
        return Vec::new();
    }
    assert_eq!(base, BASE);
    let name = subject_value(filter).expect("a sAMAccountName equality in the filter");
    users()
        .into_iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, e)| e)
        .collect()
}

/// The value the filter compares `sAMAccountName` with, as it arrived on the wire.
fn subject_value(filter: &LdapFilter) -> Option<String> {
    match filter {
        LdapFilter::Equality(attribute, value) if attribute == "sAMAccountName" => {
            Some(value.clone())
        }
        LdapFilter::And(parts) => parts.iter().find_map(subject_value),
        _ => None,
    }
}

fn ad_config(url: &str) -> LdapConfig {
    LdapConfig {
        url: url.to_owned(),
        tls: TlsMode::None,
        mode: DirectoryMode::ActiveDirectory,
        bind_dn: SERVICE_DN.to_owned(),
        bind_password: BindPassword::new(SERVICE_PW),
        base_dn: BASE.to_owned(),
        user_filter: "(&(objectCategory=person)(objectClass=user))".to_owned(),
        subject_attribute: "sAMAccountName".to_owned(),
        group_base_dn: GROUPS.to_owned(),
        group_member_attribute: "member".to_owned(),
        group_name_attribute: "cn".to_owned(),
        group_tiers: BTreeMap::from([("domain admins".to_owned(), Tier::Privileged)]),
        default_tier: Tier::Standard,
        phone_attribute: "mobile".to_owned(),
        timeout_secs: 5,
    }
}

fn connector(url: &str) -> LdapConnector {
    LdapConnector::new(ad_config(url)).unwrap()
}

fn modifies(log: &Log) -> Vec<LdapModifyRequest> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|op| match op {
            LdapOp::ModifyRequest(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn replace(attribute: &str, value: &[u8]) -> (LdapModifyType, String, Vec<Vec<u8>>) {
    (
        LdapModifyType::Replace,
        attribute.to_owned(),
        vec![value.to_vec()],
    )
}

fn changes(request: &LdapModifyRequest) -> Vec<(LdapModifyType, String, Vec<Vec<u8>>)> {
    request
        .changes
        .iter()
        .map(
            |LdapModify {
                 operation,
                 modification,
             }| {
                (
                    operation.clone(),
                    modification.atype.clone(),
                    modification.vals.clone(),
                )
            },
        )
        .collect()
}

#[tokio::test]
async fn reset_replaces_unicode_pwd_with_the_quoted_utf16le_password_and_zeroes_pwd_last_set() {
    let (url, log) = start_fake().await;

    let secret = connector(&url).reset_password("dana").await.unwrap();

    // Built by hand, not with the connector's encoder, so that a wrong encoder fails the test.
    let mut expected = vec![b'"', 0];
    for unit in secret.expose().encode_utf16() {
        expected.extend(unit.to_le_bytes());
    }
    expected.extend([b'"', 0]);
    assert_eq!(expected.len(), 2 * (secret.expose().chars().count() + 2));

    let sent = modifies(&log);
    assert_eq!(sent.len(), 1, "one atomic Modify request: {sent:?}");
    assert_eq!(sent[0].dn, user_dn("Dana Diaz"));
    assert_eq!(
        changes(&sent[0]),
        [
            replace("unicodePwd", &expected),
            replace("pwdLastSet", b"0")
        ]
    );
    let first = log.lock().unwrap()[0].clone();
    assert!(
        matches!(&first, LdapOp::BindRequest(b) if b.dn == SERVICE_DN),
        "binds as the service account first: {first:?}"
    );
}

#[tokio::test]
async fn rotating_a_service_credential_replaces_only_unicode_pwd() {
    let (url, log) = start_fake().await;

    let secret = connector(&url)
        .rotate_service_credential("dana")
        .await
        .unwrap();

    let quoted: Vec<u8> = format!("\"{}\"", secret.expose())
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let sent = modifies(&log);
    assert_eq!(sent.len(), 1);
    assert_eq!(changes(&sent[0]), [replace("unicodePwd", &quoted)]);
}

#[tokio::test]
async fn unlock_sets_lockout_time_to_zero() {
    let (url, log) = start_fake().await;

    connector(&url).unlock("frank").await.unwrap();

    let sent = modifies(&log);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].dn, user_dn("Frank Fox"));
    assert_eq!(changes(&sent[0]), [replace("lockoutTime", b"0")]);
}

#[tokio::test]
async fn lookup_reads_status_and_maps_nested_groups_to_tiers() {
    let (url, log) = start_fake().await;
    let connector = connector(&url);

    let dana = connector.lookup("dana").await.unwrap();
    assert_eq!(dana.status, SubjectStatus::Active);
    assert_eq!(dana.groups, ["All Staff", "Domain Admins"]);
    assert_eq!(dana.tier, Tier::Privileged);
    assert_eq!(dana.display_name, "Dana Diaz");
    let group_search = log
        .lock()
        .unwrap()
        .iter()
        .find_map(|op| match op {
            LdapOp::SearchRequest(s) if s.base == GROUPS => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(group_search.scope, LdapSearchScope::Subtree);
    match group_search.filter {
        LdapFilter::Extensible(rule) => {
            assert_eq!(rule.matching_rule.as_deref(), Some(IN_CHAIN));
            assert_eq!(rule.type_.as_deref(), Some("member"));
            assert_eq!(rule.match_value, user_dn("Dana Diaz"));
        }
        other => panic!("expected an in-chain member filter, got {other:?}"),
    }

    let erin = connector.lookup("erin").await.unwrap();
    assert_eq!(erin.status, SubjectStatus::Disabled);
    assert_eq!(erin.tier, Tier::Standard);
    assert_eq!(
        erin.display_name, "erin",
        "no displayName or cn: the subject id"
    );
    let frank = connector.lookup("frank").await.unwrap();
    assert_eq!(frank.status, SubjectStatus::Locked);
}

#[tokio::test]
async fn filter_metacharacters_reach_the_server_as_a_literal_value() {
    let (url, log) = start_fake().await;
    let injected = "dana)(sAMAccountName=*";

    let result = connector(&url).reset_password(injected).await;

    assert!(
        matches!(&result, Err(ConnectorError::NotFound { subject_id }) if subject_id == injected),
        "{result:?}"
    );
    let filters: Vec<LdapFilter> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|op| match op {
            LdapOp::SearchRequest(s) => Some(s.filter.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(filters.len(), 1);
    assert_eq!(subject_value(&filters[0]).as_deref(), Some(injected));
    assert!(modifies(&log).is_empty(), "nothing was modified");
}

#[tokio::test]
async fn a_refused_service_bind_stops_before_any_search() {
    let (url, log) = start_fake().await;
    let connector = LdapConnector::new(LdapConfig {
        bind_password: BindPassword::new("wrong"),
        ..ad_config(&url)
    })
    .unwrap();

    let result = connector.unlock("frank").await;

    assert!(
        matches!(
            result,
            Err(ConnectorError::ServiceBindFailed { code: 49, .. })
        ),
        "{result:?}"
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|op| matches!(op, LdapOp::BindRequest(_) | LdapOp::UnbindRequest)),
        "no search or modify after a refused bind"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    // Accepts connections and holds them open without ever replying.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let connector = LdapConnector::new(LdapConfig {
        timeout_secs: 1,
        ..ad_config(&url)
    })
    .unwrap();

    let started = std::time::Instant::now();
    let result = connector.unlock("frank").await;

    assert!(
        matches!(result, Err(ConnectorError::Timeout { after, .. }) if after.as_secs() == 1),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
