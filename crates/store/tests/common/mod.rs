//! What the store's own tests share: a fresh database per test on either backend (a SQLite file
//! in a temporary directory, or a new PostgreSQL database dropped at the end), and small fixtures
//! built through the public API only.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use deskgate_audit::{AuditEvent, event::DirectoryImported};
use deskgate_core::{
    Action, Case, Channel, NewCase, Requirements, RiskAssessment, RiskLevel, Role, Staff, Subject,
    SubjectStatus, Tier,
};
use deskgate_store::{
    AuditRecord, CaseWrite, Change, LinkToken, NewAuditEntry, Store, system_actor,
};

pub use deskgate_testkit::database::Backend;
use deskgate_testkit::database::FreshDatabase;
pub use deskgate_testkit::on_both_backends;

/// A fresh, empty database (no schema yet) that the test owns.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    database: FreshDatabase,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = FreshDatabase::create(backend, dir.path(), "store.db").await;
        Self {
            backend,
            url: database.url.clone(),
            dir,
            database,
        }
    }

    /// Opens (and so migrates) the store, as one Deskgate instance does at start.
    pub async fn open(&self) -> Arc<dyn Store> {
        deskgate_store::open(&self.url).await.unwrap()
    }

    /// Drops the PostgreSQL database; the temporary directory goes with `self`.
    pub async fn finish(self) {
        self.database.drop_now().await;
    }
}

pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

pub fn subject(id: &str) -> Subject {
    Subject {
        id: id.to_owned(),
        display_name: format!("Person {id}"),
        tier: Tier::Standard,
        status: SubjectStatus::Active,
        manager: None,
        owners: Vec::new(),
        groups: Vec::new(),
        contacts: Vec::new(),
        authenticators: Vec::new(),
        flagged: false,
        hired_at: None,
        utc_offset_minutes: None,
        probation_until: None,
        identity: None,
    }
}

pub fn agent() -> Staff {
    Staff {
        id: "staff-agent".to_owned(),
        name: "agent".to_owned(),
        role: Role::Agent,
        subject_id: Some("agent-person".to_owned()),
        team: String::new(),
        region: String::new(),
        shift: String::new(),
    }
}

/// An open case about `subject`, opened by [`agent`].
pub fn open_case(id: &str, subject: &Subject) -> Case {
    Case::open(
        NewCase {
            id: id.to_owned(),
            subject,
            agent: &agent(),
            agent_manager: None,
            action: Action::PasswordReset,
            channel: Channel::Phone,
            caller_number: None,
            ticket: None,
            note: None,
            new_contact: None,
            requester: None,
            risk: RiskAssessment {
                level: RiskLevel::Low,
                reasons: Vec::new(),
            },
            requirements: Requirements::simple_rules(Tier::Standard, Action::PasswordReset),
        },
        at(0),
    )
    .unwrap()
}

/// An audit entry the test can find again by `marker`. Entries are built only from typed
/// events, so this is a `directory.imported` whose details carry the marker (as its one subject
/// id) and `n` (as its count); [`markers`] reads the markers back.
pub fn entry(case_id: Option<&str>, marker: &str, n: u64) -> NewAuditEntry {
    NewAuditEntry::new(
        at(1),
        system_actor(),
        case_id,
        AuditEvent::DirectoryImported(DirectoryImported {
            count: n,
            subject_ids: vec![marker.to_owned()],
        }),
    )
}

/// Commits the subject and a new case about it; returns the case as stored (version 1).
pub async fn insert_case(store: &dyn Store, case_id: &str, subject_id: &str) -> Case {
    let s = subject(subject_id);
    let case = open_case(case_id, &s);
    store
        .commit(Change {
            subjects: vec![s],
            case: Some(CaseWrite::Insert(case.clone())),
            audit: vec![entry(Some(case_id), "case.opened", 0)],
            ..Change::default()
        })
        .await
        .unwrap();
    assert_eq!(store.case(case_id).await.unwrap().unwrap().version, 1);
    case
}

pub fn link(token_hash: &str, case_id: &str) -> LinkToken {
    LinkToken {
        token_hash: token_hash.to_owned(),
        kind: "manager_attestation".to_owned(),
        case_id: case_id.to_owned(),
        verification_id: "v-1".to_owned(),
        respondent: "manager-person".to_owned(),
        created_at: at(1),
        expires_at: at(60),
        used_at: None,
    }
}

/// The whole log, checked: indexes 0..n without gap or repeat, every leaf and chain hash
/// recomputed, and the Merkle root the store's stored hashes give equal to the root recomputed
/// from the entry bodies alone.
pub async fn verified_log(store: &dyn Store) -> Vec<AuditRecord> {
    let size = store.audit_size().await.unwrap();
    let records = store.audit_entries(0, size).await.unwrap();
    assert_eq!(
        records.len() as u64,
        size,
        "the log holds fewer entries than its size"
    );
    deskgate_store::verify_chain(&records).unwrap();
    let mut from_bodies = deskgate_audit::RootBuilder::new();
    for r in &records {
        from_bodies.push_entry(r.body.as_bytes());
    }
    let reads = deskgate_audit::tree_root_reads(size).unwrap();
    let hashes = store.audit_hashes(&reads).await.unwrap();
    let stored: std::collections::BTreeMap<u64, deskgate_audit::Hash> =
        reads.into_iter().zip(hashes).collect();
    let from_store = deskgate_audit::tree_root(size, &stored).unwrap();
    assert_eq!(
        from_store,
        from_bodies.root(),
        "the stored Merkle tree disagrees with the entries"
    );
    records
}

/// The markers of the log's entries (see [`entry`]), in order.
pub fn markers(records: &[AuditRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r.entry().unwrap()["details"]["subject_ids"][0]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}
