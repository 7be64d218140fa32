//! The audit log's Merkle tree over *stored hashes*, in the layout of Go's `sumdb/tlog`.
//!
//! The log persists, append-only, every hash of every complete subtree: leaf `n` adds
//! `1 + trailing_ones(n)` hashes, about `2n` in total. A hash's position in that sequence is its
//! *stored-hash index*. From those rows the log can compute any tree root and any inclusion or
//! consistency proof by reading at most `O(log n)` rows, and nothing stored ever changes.
//!
//! The arithmetic is `tlog_tiles`' (a port of Go's `tlog`); this module puts it behind our own
//! [`HashReader`], our [`Hash`], input checks and error types, so that a storage failure or a
//! misbehaving reader surfaces as a [`TreeError`] instead of a panic inside the dependency.
//!
//! # Appending inside a database transaction
//!
//! The caller (the store crate) is async, these functions are not. For each computation there is
//! a `*_reads` function returning exactly the stored-hash indexes it will read, so the caller can:
//!
//! 1. `let need = append_reads(n)?;` and load those rows into a `HashMap<u64, Hash>`;
//! 2. `let new = stored_hashes_for_append(n, &canonical_bytes, &map)?;`
//! 3. insert `new[i]` at stored-hash index `stored_hash_count(n)? + i`, in the same transaction as
//!    entry `n` itself.
//!
//! [`tree_root_reads`], [`inclusion_proof_reads`] and [`consistency_proof_reads`] do the same for
//! reading. The `*_reads` functions run the very computation they describe against a recording
//! reader, so the list cannot drift from what the computation really reads.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use crate::hash::{EMPTY_ROOT, Hash};

/// Largest tree size (number of entries) these functions accept.
///
/// Stored-hash indexes are below `2 * size`; keeping sizes below 2^62 keeps every index
/// computation in the dependency far from `u64` overflow, which would panic there.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// No valid proof for a tree of at most 2^64 leaves is longer than this; refusing longer ones
/// first keeps verification of hostile input cheap.
const MAX_PROOF_LEN: usize = 128;

/// Why a [`HashReader`] could not return the hashes asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashReadError {
    /// No hash is stored at this index (the tree is smaller than the request assumes, or the
    /// caller did not pre-load a row the `*_reads` function listed).
    #[error("no stored hash at index {index}")]
    Missing {
        /// The stored-hash index that was asked for.
        index: u64,
    },
    /// The backing storage failed.
    #[error("hash storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Read access to the stored hashes, implemented by whatever holds them (a database table, a
/// pre-loaded map, a [`crate::MemoryLog`]).
pub trait HashReader {
    /// Returns the hashes at `indexes`, in the same order and the same number.
    ///
    /// # Errors
    /// [`HashReadError`] when a hash is missing or the storage fails.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReadError>;
}

impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReadError> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or(HashReadError::Missing { index })
            })
            .collect()
    }
}

impl<S: std::hash::BuildHasher> HashReader for HashMap<u64, Hash, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReadError> {
        indexes
            .iter()
            .map(|index| {
                self.get(index)
                    .copied()
                    .ok_or(HashReadError::Missing { index: *index })
            })
            .collect()
    }
}

impl HashReader for BTreeMap<u64, Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReadError> {
        indexes
            .iter()
            .map(|index| {
                self.get(index)
                    .copied()
                    .ok_or(HashReadError::Missing { index: *index })
            })
            .collect()
    }
}

/// Why a tree computation (append, root, proof) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The [`HashReader`] failed.
    #[error(transparent)]
    Read(#[from] HashReadError),
    /// The [`HashReader`] broke its contract.
    #[error("hash reader returned {returned} hashes for {requested} indexes")]
    WrongHashCount {
        /// Number of indexes asked for.
        requested: usize,
        /// Number of hashes returned.
        returned: usize,
    },
    /// An inclusion proof was asked for an entry outside the tree.
    #[error("entry {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Entry index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof needs `1 <= old <= new`.
    #[error("no consistency proof from size {old} to size {new}")]
    InvalidSizes {
        /// Older tree size.
        old: u64,
        /// Newer tree size.
        new: u64,
    },
    /// A tree size larger than the log it is asked of.
    #[error("tree size {size} is beyond the log's {log_size} entries")]
    BeyondLog {
        /// Requested size.
        size: u64,
        /// Entries in the log.
        log_size: u64,
    },
    /// The size exceeds [`MAX_TREE_SIZE`].
    #[error("tree size {size} exceeds the supported maximum")]
    TooLarge {
        /// The offending size.
        size: u64,
    },
    /// `tlog_tiles` reported an error that none of our own checks anticipated.
    #[error("tree computation failed")]
    Tlog(#[source] tlog_tiles::Error),
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof does not lead from the given leaf or old root to the given root.
    #[error("proof does not match the root")]
    Mismatch,
    /// An inclusion proof for an entry outside the tree.
    #[error("entry {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Entry index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof needs `1 <= old <= new`.
    #[error("no consistency proof from size {old} to size {new}")]
    InvalidSizes {
        /// Older tree size.
        old: u64,
        /// Newer tree size.
        new: u64,
    },
    /// Longer than any valid proof can be.
    #[error("proof has {len} hashes, more than any valid proof")]
    TooLong {
        /// Number of hashes in the proof.
        len: usize,
    },
}

/// Number of stored hashes of a tree with `size` entries; also the stored-hash index at which
/// the hashes returned by [`stored_hashes_for_append`] for entry `size` start.
///
/// # Errors
/// [`TreeError::TooLarge`] above [`MAX_TREE_SIZE`].
pub fn stored_hash_count(size: u64) -> Result<u64, TreeError> {
    check_size(size)?;
    Ok(tlog_tiles::stored_hash_count(size))
}

/// The stored hashes to persist when appending entry `n` (the tree grows from `n` to `n + 1`):
/// its leaf hash followed by the hashes of the subtrees it completes. Write `result[i]` at
/// stored-hash index `stored_hash_count(n) + i`.
///
/// Reads exactly the indexes of [`append_reads`]`(n)`, so an async caller can do, inside the
/// transaction that inserts entry `n`:
///
/// 1. `let need = append_reads(n)?;` and load those rows into a `HashMap<u64, Hash>`;
/// 2. `let new = stored_hashes_for_append(n, &canonical_bytes, &map)?;`
/// 3. insert `new[i]` at stored-hash index `stored_hash_count(n)? + i`.
///
/// # Errors
/// [`TreeError`] when `n` is too large or `reader` fails.
pub fn stored_hashes_for_append<R: HashReader + ?Sized>(
    n: u64,
    entry_bytes: &[u8],
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_append(n)?;
    let adapter = Adapter::new(reader);
    let hashes =
        tlog_tiles::stored_hashes(n, entry_bytes, &adapter).map_err(|e| adapter.fail(e))?;
    Ok(hashes.into_iter().map(Hash::from).collect())
}

/// The stored-hash indexes [`stored_hashes_for_append`]`(n, ..)` reads, sorted.
///
/// # Errors
/// [`TreeError::TooLarge`] when `n` is too large.
pub fn append_reads(n: u64) -> Result<Vec<u64>, TreeError> {
    check_append(n)?;
    let probe = Probe::default();
    tlog_tiles::stored_hashes(n, b"", &probe).map_err(TreeError::Tlog)?;
    Ok(probe.into_indexes())
}

/// Root hash of the first `size` entries ([`EMPTY_ROOT`] for 0).
///
/// # Errors
/// [`TreeError`] when `size` is too large or `reader` fails.
pub fn tree_root<R: HashReader + ?Sized>(size: u64, reader: &R) -> Result<Hash, TreeError> {
    check_size(size)?;
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    let adapter = Adapter::new(reader);
    let root = tlog_tiles::tree_hash(size, &adapter).map_err(|e| adapter.fail(e))?;
    Ok(root.into())
}

/// The stored-hash indexes [`tree_root`]`(size, ..)` reads, sorted.
///
/// # Errors
/// [`TreeError::TooLarge`] when `size` is too large.
pub fn tree_root_reads(size: u64) -> Result<Vec<u64>, TreeError> {
    check_size(size)?;
    let probe = Probe::default();
    tlog_tiles::tree_hash(size, &probe).map_err(TreeError::Tlog)?;
    Ok(probe.into_indexes())
}

/// RFC 9162 inclusion proof (audit path) of entry `index` in the tree of `size` entries.
///
/// # Errors
/// [`TreeError`] when `index >= size`, `size` is too large, or `reader` fails.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_inclusion(index, size)?;
    let adapter = Adapter::new(reader);
    let proof = tlog_tiles::prove_record(size, index, &adapter).map_err(|e| adapter.fail(e))?;
    Ok(proof.into_iter().map(Hash::from).collect())
}

/// The stored-hash indexes [`inclusion_proof`]`(index, size, ..)` reads, sorted.
///
/// # Errors
/// [`TreeError`] when `index >= size` or `size` is too large.
pub fn inclusion_proof_reads(index: u64, size: u64) -> Result<Vec<u64>, TreeError> {
    check_inclusion(index, size)?;
    let probe = Probe::default();
    tlog_tiles::prove_record(size, index, &probe).map_err(TreeError::Tlog)?;
    Ok(probe.into_indexes())
}

/// RFC 9162 consistency proof that the tree of `new` entries extends the tree of `old` entries.
///
/// # Errors
/// [`TreeError`] unless `1 <= old <= new <= MAX_TREE_SIZE`, or when `reader` fails.
pub fn consistency_proof<R: HashReader + ?Sized>(
    old: u64,
    new: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_consistency(old, new)?;
    let adapter = Adapter::new(reader);
    let proof = tlog_tiles::prove_tree(new, old, &adapter).map_err(|e| adapter.fail(e))?;
    Ok(proof.into_iter().map(Hash::from).collect())
}

/// The stored-hash indexes [`consistency_proof`]`(old, new, ..)` reads, sorted.
///
/// # Errors
/// [`TreeError`] unless `1 <= old <= new <= MAX_TREE_SIZE`.
pub fn consistency_proof_reads(old: u64, new: u64) -> Result<Vec<u64>, TreeError> {
    check_consistency(old, new)?;
    let probe = Probe::default();
    tlog_tiles::prove_tree(new, old, &probe).map_err(TreeError::Tlog)?;
    Ok(probe.into_indexes())
}

/// Checks that `proof` shows the entry with `leaf_hash` at `index` in the tree of `size` entries
/// whose root is `root`.
///
/// # Errors
/// [`ProofError`] when it does not.
pub fn verify_inclusion(
    leaf_hash: Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let proof = to_tlog_proof(proof)?;
    tlog_tiles::check_record(&proof, size, root.into(), index, leaf_hash.into())
        .map_err(|_| ProofError::Mismatch)
}

/// Checks that `proof` shows the tree of `new_size` entries with `new_root` extends the tree of
/// `old_size` entries with `old_root` (RFC 9162 §2.1.4; `old_size` must be at least 1).
///
/// # Errors
/// [`ProofError`] when it does not.
pub fn verify_consistency(
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::InvalidSizes {
            old: old_size,
            new: new_size,
        });
    }
    let proof = to_tlog_proof(proof)?;
    tlog_tiles::check_tree(&proof, new_size, new_root.into(), old_size, old_root.into())
        .map_err(|_| ProofError::Mismatch)
}

fn to_tlog_proof(proof: &[Hash]) -> Result<Vec<tlog_tiles::Hash>, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLong { len: proof.len() });
    }
    Ok(proof.iter().copied().map(Into::into).collect())
}

fn check_size(size: u64) -> Result<(), TreeError> {
    if size > MAX_TREE_SIZE {
        return Err(TreeError::TooLarge { size });
    }
    Ok(())
}

fn check_append(n: u64) -> Result<(), TreeError> {
    check_size(n.saturating_add(1))
}

fn check_inclusion(index: u64, size: u64) -> Result<(), TreeError> {
    check_size(size)?;
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    Ok(())
}

fn check_consistency(old: u64, new: u64) -> Result<(), TreeError> {
    check_size(new)?;
    if old == 0 || old > new {
        return Err(TreeError::InvalidSizes { old, new });
    }
    Ok(())
}

/// Presents a [`HashReader`] to `tlog_tiles`. `tlog_tiles` panics when a reader returns the
/// wrong number of hashes and has no error variant for storage failures, so the adapter checks
/// the count itself and parks our precise error while handing `tlog_tiles` a placeholder.
struct Adapter<'a, R: ?Sized> {
    reader: &'a R,
    failure: Cell<Option<TreeError>>,
}

impl<'a, R: HashReader + ?Sized> Adapter<'a, R> {
    fn new(reader: &'a R) -> Self {
        Self {
            reader,
            failure: Cell::new(None),
        }
    }

    /// The parked error if the reader failed, else `tlog_tiles`' own.
    fn fail(&self, error: tlog_tiles::Error) -> TreeError {
        self.failure.take().unwrap_or(TreeError::Tlog(error))
    }
}

impl<R: HashReader + ?Sized> tlog_tiles::HashReader for Adapter<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        let failure = match self.reader.read_hashes(indexes) {
            Ok(hashes) if hashes.len() == indexes.len() => {
                return Ok(hashes.into_iter().map(Into::into).collect());
            }
            Ok(hashes) => TreeError::WrongHashCount {
                requested: indexes.len(),
                returned: hashes.len(),
            },
            Err(error) => TreeError::Read(error),
        };
        self.failure.set(Some(failure));
        Err(tlog_tiles::Error::IndexesNotInTree)
    }
}

/// Records the indexes a computation asks for and answers with placeholder hashes; the
/// resulting hashes are discarded, only the list of reads is kept.
#[derive(Default)]
struct Probe {
    requested: Cell<Vec<u64>>,
}

impl Probe {
    fn into_indexes(self) -> Vec<u64> {
        let mut indexes = self.requested.into_inner();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }
}

impl tlog_tiles::HashReader for Probe {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        let mut requested = self.requested.take();
        requested.extend_from_slice(indexes);
        self.requested.set(requested);
        Ok(vec![tlog_tiles::Hash::default(); indexes.len()])
    }
}
