//! Streaming root computation: the RFC 9162 root of N leaf hashes in O(N) time and O(log N)
//! memory, for verifying exports of millions of entries without storing their hashes.
//!
//! Hand-written: `tlog_tiles` only computes roots from a [`crate::HashReader`] over all stored
//! hashes (about 2N of them in memory) and has no compact range. The state is the list of roots
//! of the perfect subtrees that the binary decomposition of N splits the tree into ("peaks");
//! RFC 9162 splits a tree at the largest power of two below its size, which is exactly that
//! decomposition, so folding the peaks right to left gives the RFC root. The tests check it
//! against the published vectors and against [`crate::tree_root`].

use crate::hash::{EMPTY_ROOT, Hash, leaf_hash, node_hash};

/// Computes the root of a stream of leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootBuilder {
    size: u64,
    /// Roots of complete subtrees, largest (leftmost) first; one per set bit of `size`.
    peaks: Vec<Hash>,
}

impl RootBuilder {
    /// An empty builder (root [`EMPTY_ROOT`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next entry by its canonical bytes.
    pub fn push_entry(&mut self, entry_bytes: &[u8]) {
        self.push_leaf_hash(leaf_hash(entry_bytes));
    }

    /// Adds the next leaf by its leaf hash.
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        let mut hash = leaf;
        // Each trailing one bit of the old size is a peak of the same height as the subtree
        // being built: merge them, as a binary counter carries.
        let mut carry = self.size;
        while carry & 1 == 1
            && let Some(left) = self.peaks.pop()
        {
            hash = node_hash(left, hash);
            carry >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// Root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        self.peaks
            .iter()
            .rev()
            .copied()
            .reduce(|right, left| node_hash(left, right))
            .unwrap_or(EMPTY_ROOT)
    }
}
