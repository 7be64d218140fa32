//! The audit sequencer under concurrent writers: two store instances on one database (two pools,
//! as two Deskgate replicas on PostgreSQL, or two processes on one SQLite file), each with several
//! tasks committing at once, never fork the log. Indexes come out 0..n-1 without a gap or a
//! repeat, each change's entries are consecutive, and the chain and Merkle tree verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::on_both_backends;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Backend, TestDb};
use deskgate_store::{AuditRecord, Change, Store};

const TASKS_PER_INSTANCE: u64 = 4;
const COMMITS_PER_TASK: u64 = 50;

/// One writer task: commits of one or two entries, each tagged with who wrote it.
async fn writer(
    store: Arc<dyn Store>,
    instance: u64,
    task: u64,
) -> Vec<(String, Vec<AuditRecord>)> {
    let mut done = Vec::new();
    for i in 0..COMMITS_PER_TASK {
        let tag = format!("i{instance}-t{task}-c{i}");
        let audit = (0..1 + i % 2)
            .map(|part| common::entry(Some(&tag), "sequencer.test", part))
            .collect::<Vec<_>>();
        let records = store
            .commit(Change {
                audit,
                ..Change::default()
            })
            .await
            .unwrap();
        done.push((tag, records));
    }
    done
}

on_both_backends!(two_instances_committing_concurrently_never_fork_the_log);

async fn two_instances_committing_concurrently_never_fork_the_log(backend: Backend) {
    let db = TestDb::new(backend).await;
    let instances = [db.open().await, db.open().await];
    let mut tasks = Vec::new();
    for (instance, store) in (0u64..).zip(&instances) {
        for task in 0..TASKS_PER_INSTANCE {
            tasks.push(tokio::spawn(writer(store.clone(), instance, task)));
        }
    }
    let mut commits = Vec::new();
    for t in tasks {
        commits.extend(t.await.unwrap());
    }
    let per_task_entries = COMMITS_PER_TASK + COMMITS_PER_TASK / 2;
    let expected = 2 * TASKS_PER_INSTANCE * per_task_entries;

    // Both instances see the same log, of exactly the committed size.
    for store in &instances {
        assert_eq!(store.audit_size().await.unwrap(), expected);
    }
    let log = common::verified_log(instances[1].as_ref()).await;
    assert_eq!(log, common::verified_log(instances[0].as_ref()).await);

    // Every index handed out once, and what each commit was told is what the log holds.
    let mut owner: BTreeMap<u64, &str> = BTreeMap::new();
    for (tag, records) in &commits {
        let first = records[0].index;
        for (offset, r) in (0u64..).zip(records) {
            assert_eq!(
                r.index,
                first + offset,
                "{tag}: entries of one change are not consecutive"
            );
            assert!(
                owner.insert(r.index, tag).is_none(),
                "index {} handed out twice",
                r.index
            );
            assert_eq!(
                &log[usize::try_from(r.index).unwrap()],
                r,
                "{tag}: log differs from reply"
            );
            assert_eq!(r.entry().unwrap()["case_id"], tag.as_str());
        }
    }
    assert_eq!(
        owner.keys().copied().collect::<Vec<_>>(),
        (0..expected).collect::<Vec<_>>()
    );
    drop(instances);
    db.finish().await;
}

on_both_backends!(appends_by_one_instance_are_seen_by_the_other_before_it_appends);

/// An instance that appended earlier keeps no stale view of the log: after the other instance
/// appends, its next append continues the same chain and tree (the SQLite writer caches the
/// tree's right edge between group commits; PostgreSQL reads it in the transaction).
async fn appends_by_one_instance_are_seen_by_the_other_before_it_appends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.open().await;
    let b = db.open().await;
    for round in 0u64..12 {
        let (store, other) = if round % 3 == 0 { (&b, &a) } else { (&a, &b) };
        let count = 1 + round % 4;
        let before = other.audit_size().await.unwrap();
        let records = store
            .commit(Change {
                audit: (0..count)
                    .map(|n| common::entry(None, "sequencer.alternate", n))
                    .collect(),
                ..Change::default()
            })
            .await
            .unwrap();
        assert_eq!(records.first().unwrap().index, before);
        assert_eq!(other.audit_size().await.unwrap(), before + count);
    }
    let log = common::verified_log(a.as_ref()).await;
    assert_eq!(
        log.len(),
        (0u64..12).map(|r| 1 + r % 4).sum::<u64>() as usize
    );
    drop((a, b));
    db.finish().await;
}
