//! Tree, proof and root-builder tests: the published RFC 9162 vectors, exhaustive proofs up to
//! size 8, reader contracts, and property tests over random logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;

use crate::RootBuilder;
use crate::hash::{EMPTY_ROOT, Hash, leaf_hash};
use crate::memory::MemoryLog;
use crate::tree::*;

/// test-vectors.md: leaves and the roots of the first n of them, n = 1..=8.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn leaf(i: usize) -> Vec<u8> {
    hex::decode(LEAVES[i]).unwrap()
}

fn root(size: u64) -> Hash {
    Hash::from_hex(ROOTS[usize::try_from(size).unwrap() - 1]).unwrap()
}

fn vector_log() -> MemoryLog {
    let mut log = MemoryLog::new();
    for i in 0..LEAVES.len() {
        log.append(&leaf(i)).unwrap();
    }
    log
}

/// A map holding only the stored hashes listed, as an async caller would pre-load them.
fn preload(log: &MemoryLog, indexes: &[u64]) -> HashMap<u64, Hash> {
    indexes
        .iter()
        .map(|&i| (i, log.stored_hashes()[usize::try_from(i).unwrap()]))
        .collect()
}

/// Every single-bit change of every byte of every proof hash.
fn tampered(proof: &[Hash]) -> impl Iterator<Item = Vec<Hash>> + '_ {
    (0..proof.len()).flat_map(move |h| {
        (0..32).map(move |b| {
            let mut copy = proof.to_vec();
            copy[h].0[b] ^= 0x01;
            copy
        })
    })
}

#[test]
fn roots_of_first_n_vector_leaves_match() {
    let log = vector_log();
    let mut builder = RootBuilder::new();
    for size in 1..=8 {
        builder.push_entry(&leaf(usize::try_from(size).unwrap() - 1));
        assert_eq!(
            log.root_at(size).unwrap(),
            root(size),
            "memory log, size {size}"
        );
        assert_eq!(builder.root(), root(size), "root builder, size {size}");
        let map = preload(&log, &tree_root_reads(size).unwrap());
        assert_eq!(
            tree_root(size, &map).unwrap(),
            root(size),
            "pre-loaded reads, size {size}"
        );
    }
}

#[test]
fn empty_tree_has_empty_root() {
    assert_eq!(tree_root(0, &MemoryLog::new()).unwrap(), EMPTY_ROOT);
    assert!(tree_root_reads(0).unwrap().is_empty());
    assert_eq!(RootBuilder::new().root(), EMPTY_ROOT);
}

#[test]
fn every_inclusion_proof_up_to_size_8_verifies_and_rejects_tampering() {
    let log = vector_log();
    for size in 1..=8_u64 {
        for index in 0..size {
            let leaf = leaf_hash(&leaf(usize::try_from(index).unwrap()));
            let proof = log.inclusion_proof(index, size).unwrap();
            let map = preload(&log, &inclusion_proof_reads(index, size).unwrap());
            assert_eq!(inclusion_proof(index, size, &map).unwrap(), proof);
            verify_inclusion(leaf, index, size, &proof, root(size)).unwrap();

            for bad in tampered(&proof) {
                assert_eq!(
                    verify_inclusion(leaf, index, size, &bad, root(size)),
                    Err(ProofError::Mismatch)
                );
            }
            let mut longer = proof.clone();
            longer.push(leaf);
            assert!(verify_inclusion(leaf, index, size, &longer, root(size)).is_err());
            if !proof.is_empty() {
                let shorter = &proof[..proof.len() - 1];
                assert!(verify_inclusion(leaf, index, size, shorter, root(size)).is_err());
                assert!(
                    verify_inclusion(leaf, (index + 1) % size, size, &proof, root(size)).is_err()
                );
            }
            assert!(
                verify_inclusion(leaf_hash(b"other"), index, size, &proof, root(size)).is_err()
            );
            let other_root = root(if size == 8 { 7 } else { size + 1 });
            assert!(verify_inclusion(leaf, index, size, &proof, other_root).is_err());
        }
    }
}

#[test]
fn every_consistency_proof_up_to_size_8_verifies_and_rejects_tampering() {
    let log = vector_log();
    for new in 1..=8_u64 {
        for old in 1..=new {
            let proof = log.consistency_proof(old, new).unwrap();
            let map = preload(&log, &consistency_proof_reads(old, new).unwrap());
            assert_eq!(consistency_proof(old, new, &map).unwrap(), proof);
            verify_consistency(old, root(old), new, root(new), &proof).unwrap();

            for bad in tampered(&proof) {
                assert_eq!(
                    verify_consistency(old, root(old), new, root(new), &bad),
                    Err(ProofError::Mismatch)
                );
            }
            if old < new {
                assert!(verify_consistency(old, root(new), new, root(new), &proof).is_err());
                assert!(verify_consistency(old, root(old), new, root(old), &proof).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root(old));
            assert!(verify_consistency(old, root(old), new, root(new), &longer).is_err());
        }
    }
}

#[test]
fn append_with_preloaded_reads_matches_memory_log() {
    let mut log = MemoryLog::new();
    for n in 0..100_u64 {
        let data = format!("entry {n}");
        let map = preload(&log, &append_reads(n).unwrap());
        let new = stored_hashes_for_append(n, data.as_bytes(), &map).unwrap();
        let before = log.stored_hashes().len();
        assert_eq!(
            usize::try_from(stored_hash_count(n).unwrap()).unwrap(),
            before
        );
        log.append(data.as_bytes()).unwrap();
        assert_eq!(&log.stored_hashes()[before..], new.as_slice(), "entry {n}");
        assert_eq!(new[0], leaf_hash(data.as_bytes()));
        assert_eq!(log.leaf_hash(n), Some(new[0]));
    }
    assert_eq!(log.leaf_hash(100), None);
}

#[test]
fn append_reads_are_the_left_siblings_completed_by_the_entry() {
    // Entry 3 completes the subtrees [2,4) and [0,4): it needs node [0,2) (stored index 2) and
    // leaf 2 (stored index 3).
    assert_eq!(append_reads(3).unwrap(), vec![2, 3]);
    assert!(append_reads(0).unwrap().is_empty());
    assert!(append_reads(2).unwrap().is_empty());
}

#[test]
fn missing_stored_hash_is_reported_with_its_index() {
    let log = vector_log();
    let mut map = preload(&log, &tree_root_reads(5).unwrap());
    let dropped = tree_root_reads(5).unwrap()[0];
    map.remove(&dropped);
    assert!(matches!(
        tree_root(5, &map),
        Err(TreeError::Read(HashReadError::Missing { index })) if index == dropped
    ));
}

struct ShortReader;

impl HashReader for ShortReader {
    fn read_hashes(&self, _indexes: &[u64]) -> Result<Vec<Hash>, HashReadError> {
        Ok(vec![])
    }
}

struct FailingReader;

impl HashReader for FailingReader {
    fn read_hashes(&self, _indexes: &[u64]) -> Result<Vec<Hash>, HashReadError> {
        Err(HashReadError::Storage("database unavailable".into()))
    }
}

#[test]
fn reader_returning_too_few_hashes_is_an_error_not_a_panic() {
    assert!(matches!(
        tree_root(5, &ShortReader),
        Err(TreeError::WrongHashCount {
            requested: 2,
            returned: 0
        })
    ));
    assert!(matches!(
        inclusion_proof(0, 5, &ShortReader),
        Err(TreeError::WrongHashCount { .. })
    ));
}

#[test]
fn storage_failure_propagates() {
    assert!(matches!(
        stored_hashes_for_append(3, b"x", &FailingReader),
        Err(TreeError::Read(HashReadError::Storage(_)))
    ));
    assert!(matches!(
        consistency_proof(3, 5, &FailingReader),
        Err(TreeError::Read(HashReadError::Storage(_)))
    ));
}

#[test]
fn out_of_range_inputs_are_rejected() {
    let log = vector_log();
    assert!(matches!(
        inclusion_proof(8, 8, &log),
        Err(TreeError::IndexOutOfRange { index: 8, size: 8 })
    ));
    assert!(matches!(
        consistency_proof(0, 8, &log),
        Err(TreeError::InvalidSizes { old: 0, new: 8 })
    ));
    assert!(matches!(
        consistency_proof(5, 4, &log),
        Err(TreeError::InvalidSizes { old: 5, new: 4 })
    ));
    assert!(matches!(
        tree_root(MAX_TREE_SIZE + 1, &log),
        Err(TreeError::TooLarge { .. })
    ));
    assert!(matches!(
        append_reads(u64::MAX),
        Err(TreeError::TooLarge { .. })
    ));
    assert!(matches!(
        log.root_at(9),
        Err(TreeError::BeyondLog {
            size: 9,
            log_size: 8
        })
    ));
    assert_eq!(
        verify_inclusion(leaf_hash(b""), 1, 1, &[], root(1)),
        Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
    );
    assert_eq!(
        verify_consistency(0, EMPTY_ROOT, 1, root(1), &[]),
        Err(ProofError::InvalidSizes { old: 0, new: 1 })
    );
    assert_eq!(
        verify_consistency(2, root(2), 1, root(1), &[]),
        Err(ProofError::InvalidSizes { old: 2, new: 1 })
    );
    assert_eq!(
        verify_inclusion(
            leaf_hash(b""),
            0,
            u64::MAX,
            &vec![EMPTY_ROOT; 1000],
            root(1)
        ),
        Err(ProofError::TooLong { len: 1000 })
    );
}

#[test]
fn root_builder_matches_stored_tree_for_every_size_to_300() {
    let mut log = MemoryLog::new();
    let mut builder = RootBuilder::new();
    for n in 0..300_u32 {
        let data = n.to_be_bytes();
        log.append(&data).unwrap();
        builder.push_entry(&data);
        assert_eq!(builder.size(), log.size());
        assert_eq!(builder.root(), log.root().unwrap(), "size {}", n + 1);
    }
}

fn flip(proof: &[Hash], choice: (usize, usize, u8)) -> Vec<Hash> {
    let mut copy = proof.to_vec();
    let (h, b, bit) = choice;
    let len = copy.len();
    copy[h % len].0[b % 32] ^= 1 << (bit % 8);
    copy
}

proptest! {
    #[test]
    fn proofs_of_random_logs_verify_and_any_flipped_byte_fails(
        leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..24),
        choice in any::<(usize, usize, u8)>(),
    ) {
        let mut log = MemoryLog::new();
        let mut builder = RootBuilder::new();
        for data in &leaves {
            log.append(data).unwrap();
            builder.push_entry(data);
        }
        let n = log.size();
        let roots: Vec<Hash> = (1..=n).map(|s| log.root_at(s).unwrap()).collect();
        prop_assert_eq!(builder.root(), roots[roots.len() - 1]);
        for size in 1..=n {
            let size_root = roots[usize::try_from(size).unwrap() - 1];
            for index in 0..size {
                let leaf = leaf_hash(&leaves[usize::try_from(index).unwrap()]);
                let proof = log.inclusion_proof(index, size).unwrap();
                prop_assert!(verify_inclusion(leaf, index, size, &proof, size_root).is_ok());
                if !proof.is_empty() {
                    prop_assert!(verify_inclusion(leaf, index, size, &flip(&proof, choice), size_root).is_err());
                }
                let mut bad_root = size_root;
                bad_root.0[choice.1 % 32] ^= 1 << (choice.2 % 8);
                prop_assert!(verify_inclusion(leaf, index, size, &proof, bad_root).is_err());
            }
            for old in 1..=size {
                let old_root = roots[usize::try_from(old).unwrap() - 1];
                let proof = log.consistency_proof(old, size).unwrap();
                prop_assert!(verify_consistency(old, old_root, size, size_root, &proof).is_ok());
                if !proof.is_empty() {
                    prop_assert!(verify_consistency(old, old_root, size, size_root, &flip(&proof, choice)).is_err());
                }
                let mut bad_old = old_root;
                bad_old.0[choice.1 % 32] ^= 1 << (choice.2 % 8);
                prop_assert!(verify_consistency(old, bad_old, size, size_root, &proof).is_err());
            }
        }
    }
}
