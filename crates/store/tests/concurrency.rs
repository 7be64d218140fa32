//! Optimistic concurrency, atomicity and single use, as the store itself guarantees them: of two
//! changes racing on one case version, link, recovery code or credential exactly one commits and
//! the other gets a conflict; a change that fails writes nothing, not even its audit entries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::on_both_backends;

use std::sync::Arc;

use common::{Backend, TestDb, at, entry};
use deskgate_store::{
    AuditRecord, CaseWrite, Change, Credential, CredentialSwap, RecoveryCodes, Store, StoreError,
};

/// Runs the changes at once (each on the store given with it) and returns their outcomes in order.
async fn race(changes: Vec<(Arc<dyn Store>, Change)>) -> Vec<Result<Vec<AuditRecord>, StoreError>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(changes.len()));
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|(store, change)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.commit(change).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes
}

/// Exactly one outcome is a success and every other a conflict; returns the winner's position.
fn one_winner(outcomes: &[Result<Vec<AuditRecord>, StoreError>]) -> usize {
    let winners: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].is_ok())
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "expected exactly one commit: {outcomes:?}"
    );
    for (i, o) in outcomes.iter().enumerate() {
        if i != winners[0] {
            assert!(
                matches!(o, Err(StoreError::Conflict(_))),
                "loser {i}: {o:?}"
            );
        }
    }
    winners[0]
}

on_both_backends!(of_two_updates_from_one_version_exactly_one_commits);

async fn of_two_updates_from_one_version_exactly_one_commits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.open().await;
    let b = db.open().await;
    let case = common::insert_case(a.as_ref(), "case-1", "s-1").await;

    // Round 1 on one instance (on SQLite both land in one group commit), round 2 on two.
    for (round, stores) in [(1i64, [&a, &a]), (2, [&a, &b])] {
        let before = a.audit_size().await.unwrap();
        let update = |who: usize| {
            let mut next = case.clone();
            next.note = Some(format!("round {round} by writer {who}"));
            next.updated_at = at(round * 10);
            Change {
                case: Some(CaseWrite::Update {
                    case: next,
                    expected_version: round,
                }),
                audit: vec![entry(
                    Some("case-1"),
                    &format!("case.updated.r{round}.w{who}"),
                    0,
                )],
                ..Change::default()
            }
        };
        let outcomes = race(vec![
            (stores[0].clone(), update(0)),
            (stores[1].clone(), update(1)),
        ])
        .await;
        let winner = one_winner(&outcomes);
        let stored = b.case("case-1").await.unwrap().unwrap();
        assert_eq!(stored.version, round + 1);
        assert_eq!(
            stored.case.note.as_deref(),
            Some(format!("round {round} by writer {winner}").as_str())
        );
        // Only the winner's entry was appended.
        assert_eq!(a.audit_size().await.unwrap(), before + 1);
        let case_events = common::markers(&a.audit_for_case("case-1").await.unwrap());
        assert!(case_events.contains(&format!("case.updated.r{round}.w{winner}")));
        assert!(!case_events.contains(&format!("case.updated.r{round}.w{}", 1 - winner)));
    }
    common::verified_log(a.as_ref()).await;
    drop((a, b));
    db.finish().await;
}

on_both_backends!(a_change_that_fails_late_writes_none_of_its_earlier_parts);

/// The case update, the new subject and the new link come before the used link in the change,
/// so they are written before it fails; all of them, and the audit entries, must roll back.
async fn a_change_that_fails_late_writes_none_of_its_earlier_parts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let case = common::insert_case(store.as_ref(), "case-1", "s-1").await;
    store
        .commit(Change {
            new_links: vec![common::link("used-link", "case-1")],
            audit: vec![entry(Some("case-1"), "link.sent", 0)],
            ..Change::default()
        })
        .await
        .unwrap();
    store
        .commit(Change {
            use_links: vec![("used-link".to_owned(), at(2))],
            audit: vec![entry(Some("case-1"), "link.used", 0)],
            ..Change::default()
        })
        .await
        .unwrap();
    let size = store.audit_size().await.unwrap();

    let change = |links: Vec<(String, chrono::DateTime<chrono::Utc>)>| {
        let mut next = case.clone();
        next.note = Some("changed".to_owned());
        Change {
            case: Some(CaseWrite::Update {
                case: next,
                expected_version: 1,
            }),
            subjects: vec![common::subject("s-new")],
            new_links: vec![common::link("new-link", "case-1")],
            use_links: links,
            credentials: vec![Credential {
                subject_id: "s-1".to_owned(),
                kind: "password".to_owned(),
                hash: "argon2-new".to_owned(),
                created_at: at(3),
                expires_at: None,
                used_at: None,
            }],
            audit: vec![
                entry(Some("case-1"), "case.updated", 0),
                entry(Some("case-1"), "link.used", 1),
            ],
            ..Change::default()
        }
    };
    let refused = store
        .commit(change(vec![("used-link".to_owned(), at(3))]))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let stored = store.case("case-1").await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.case.note, None);
    assert_eq!(store.subject("s-new").await.unwrap(), None);
    assert_eq!(store.link("new-link").await.unwrap(), None);
    assert_eq!(store.credential("s-1", "password").await.unwrap(), None);
    assert_eq!(
        store.link("used-link").await.unwrap().unwrap().used_at,
        Some(at(2))
    );
    assert_eq!(store.audit_size().await.unwrap(), size);

    // The same change without the spent link goes through: it failed for that alone.
    let records = store.commit(change(Vec::new())).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].index, size);
    assert_eq!(store.case("case-1").await.unwrap().unwrap().version, 2);
    assert!(store.subject("s-new").await.unwrap().is_some());
    assert!(store.link("new-link").await.unwrap().is_some());
    common::verified_log(store.as_ref()).await;
    drop(store);
    db.finish().await;
}

on_both_backends!(a_refused_change_among_concurrent_ones_leaves_the_others_whole);

/// On SQLite concurrent changes share one group commit (a savepoint each): the refused one must
/// take nothing of the others with it, and leave no entry of its own.
async fn a_refused_change_among_concurrent_ones_leaves_the_others_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    common::insert_case(store.as_ref(), "case-1", "s-1").await;
    let mut changes = Vec::new();
    for i in 0..16u64 {
        let change = if i == 7 {
            Change {
                subjects: vec![common::subject("s-refused")],
                new_links: vec![common::link("link-refused", "case-1")],
                use_links: vec![("no-such-link".to_owned(), at(2))],
                audit: vec![entry(Some("case-1"), "refused", 0)],
                ..Change::default()
            }
        } else {
            Change {
                new_links: vec![common::link(&format!("link-{i}"), "case-1")],
                audit: vec![entry(Some("case-1"), &format!("good-{i}"), 0)],
                ..Change::default()
            }
        };
        changes.push((store.clone(), change));
    }
    let outcomes = race(changes).await;
    for (i, o) in outcomes.iter().enumerate() {
        if i == 7 {
            assert!(matches!(o, Err(StoreError::Conflict(_))), "{o:?}");
            assert_eq!(store.link("link-refused").await.unwrap(), None);
            assert_eq!(store.subject("s-refused").await.unwrap(), None);
        } else {
            assert_eq!(o.as_ref().unwrap().len(), 1, "change {i}: {o:?}");
            assert!(store.link(&format!("link-{i}")).await.unwrap().is_some());
        }
    }
    let log = common::verified_log(store.as_ref()).await;
    let events = common::markers(&log);
    assert_eq!(events.len(), 1 + 15);
    assert!(!events.iter().any(|e| e == "refused"));
    drop(store);
    db.finish().await;
}

on_both_backends!(a_link_is_used_once);

async fn a_link_is_used_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.open().await;
    let b = db.open().await;
    common::insert_case(a.as_ref(), "case-1", "s-1").await;
    a.commit(Change {
        new_links: vec![
            common::link("link-1", "case-1"),
            common::link("link-2", "case-1"),
        ],
        audit: vec![entry(Some("case-1"), "link.sent", 0)],
        ..Change::default()
    })
    .await
    .unwrap();
    let use_link = |hash: &str, minute: i64| Change {
        use_links: vec![(hash.to_owned(), at(minute))],
        audit: vec![entry(Some("case-1"), "link.used", 0)],
        ..Change::default()
    };

    a.commit(use_link("link-1", 5)).await.unwrap();
    let size = a.audit_size().await.unwrap();
    let again = b.commit(use_link("link-1", 6)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        a.link("link-1").await.unwrap().unwrap().used_at,
        Some(at(5))
    );
    assert_eq!(a.audit_size().await.unwrap(), size);

    // Eight requests at once, from two instances, with one link: one passes.
    let racers = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { &a } else { &b };
            (store.clone(), use_link("link-2", 10 + i))
        })
        .collect();
    let winner = one_winner(&race(racers).await);
    assert_eq!(
        a.link("link-2").await.unwrap().unwrap().used_at,
        Some(at(10 + i64::try_from(winner).unwrap()))
    );
    assert_eq!(a.audit_size().await.unwrap(), size + 1);
    drop((a, b));
    db.finish().await;
}

on_both_backends!(a_recovery_code_is_spent_once_and_replaced_codes_never_pass);

async fn a_recovery_code_is_spent_once_and_replaced_codes_never_pass(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.open().await;
    let b = db.open().await;
    let issue = |hashes: &[&str], minute: i64| Change {
        subjects: vec![common::subject("s-1")],
        recovery_codes: vec![RecoveryCodes {
            subject_id: "s-1".to_owned(),
            hashes: hashes.iter().map(|h| (*h).to_owned()).collect(),
            issued_at: at(minute),
        }],
        audit: vec![entry(None, "recovery_codes.issued", 0)],
        ..Change::default()
    };
    let spend = |hash: &str| Change {
        spend_recovery_codes: vec![("s-1".to_owned(), hash.to_owned(), at(5))],
        audit: vec![entry(None, "recovery_code.used", 0)],
        ..Change::default()
    };
    a.commit(issue(&["c1", "c2", "c3"], 0)).await.unwrap();

    a.commit(spend("c2")).await.unwrap();
    let size = a.audit_size().await.unwrap();
    let again = b.commit(spend("c2")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(a.recovery_codes("s-1").await.unwrap(), vec!["c1", "c3"]);
    assert_eq!(a.audit_size().await.unwrap(), size);

    // Spending two codes in one change, one of them spent: neither is spent.
    let both = Change {
        spend_recovery_codes: vec![
            ("s-1".to_owned(), "c1".to_owned(), at(6)),
            ("s-1".to_owned(), "c2".to_owned(), at(6)),
        ],
        audit: vec![entry(None, "recovery_code.used", 0)],
        ..Change::default()
    };
    assert!(matches!(a.commit(both).await, Err(StoreError::Conflict(_))));
    assert_eq!(a.recovery_codes("s-1").await.unwrap(), vec!["c1", "c3"]);

    // Racing on one code from two instances: one passes.
    let racers = (0..8)
        .map(|i| (if i % 2 == 0 { &a } else { &b }.clone(), spend("c3")))
        .collect();
    one_winner(&race(racers).await);
    assert_eq!(a.recovery_codes("s-1").await.unwrap(), vec!["c1"]);

    // New codes replace every earlier one, used or not.
    a.commit(issue(&["n1", "n2"], 10)).await.unwrap();
    for old in ["c1", "c2", "c3"] {
        let refused = b.commit(spend(old)).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{old}: {refused:?}"
        );
    }
    assert_eq!(a.recovery_codes("s-1").await.unwrap(), vec!["n1", "n2"]);
    // A code is bound to its subject.
    a.commit(Change {
        subjects: vec![common::subject("s-2")],
        ..Change::default()
    })
    .await
    .unwrap();
    let other = a
        .commit(Change {
            spend_recovery_codes: vec![("s-2".to_owned(), "n1".to_owned(), at(11))],
            ..Change::default()
        })
        .await;
    assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
    assert_eq!(a.recovery_codes("s-1").await.unwrap(), vec!["n1", "n2"]);
    drop((a, b));
    db.finish().await;
}

on_both_backends!(a_credential_swap_from_a_stale_hash_conflicts);

async fn a_credential_swap_from_a_stale_hash_conflicts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.open().await;
    let b = db.open().await;
    let credential = |hash: &str, minute: i64| Credential {
        subject_id: "s-1".to_owned(),
        kind: "password".to_owned(),
        hash: hash.to_owned(),
        created_at: at(minute),
        expires_at: None,
        used_at: None,
    };
    let swap = |expected: &str, hash: &str, minute: i64| Change {
        swap_credentials: vec![CredentialSwap {
            expected_hash: expected.to_owned(),
            credential: credential(hash, minute),
        }],
        audit: vec![entry(None, "password.changed", 0)],
        ..Change::default()
    };
    a.commit(Change {
        subjects: vec![common::subject("s-1")],
        credentials: vec![credential("h0", 0)],
        ..Change::default()
    })
    .await
    .unwrap();

    a.commit(swap("h0", "h1", 1)).await.unwrap();
    let size = a.audit_size().await.unwrap();
    let stale = b.commit(swap("h0", "h2", 2)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        a.credential("s-1", "password").await.unwrap(),
        Some(credential("h1", 1))
    );
    assert_eq!(a.audit_size().await.unwrap(), size);

    // Two requests that read the same hash: one swaps.
    let racers = (0..2)
        .map(|i| {
            let store = if i == 0 { &a } else { &b };
            (store.clone(), swap("h1", &format!("h1-{i}"), 3 + i))
        })
        .collect();
    let winner = i64::try_from(one_winner(&race(racers).await)).unwrap();
    let stored = a.credential("s-1", "password").await.unwrap().unwrap();
    assert_eq!(stored, credential(&format!("h1-{winner}"), 3 + winner));

    // A used credential is swapped by no one, even with its current hash.
    a.commit(Change {
        consume_credentials: vec![("s-1".to_owned(), "password".to_owned(), at(8))],
        ..Change::default()
    })
    .await
    .unwrap();
    let again = b
        .commit(Change {
            consume_credentials: vec![("s-1".to_owned(), "password".to_owned(), at(9))],
            ..Change::default()
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let used = b.commit(swap(&stored.hash, "h3", 9)).await;
    assert!(matches!(used, Err(StoreError::Conflict(_))), "{used:?}");
    let kept = a.credential("s-1", "password").await.unwrap().unwrap();
    assert_eq!(
        (kept.hash.as_str(), kept.used_at),
        (stored.hash.as_str(), Some(at(8)))
    );
    drop((a, b));
    db.finish().await;
}
