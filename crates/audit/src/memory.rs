//! An in-memory log: the stored hashes in a `Vec`, for tests and for offline tools that rebuild
//! a log from an export to hand out proofs.

use crate::hash::Hash;
use crate::tree::{self, HashReadError, HashReader, TreeError};

/// A complete stored-hash Merkle log held in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLog {
    stored: Vec<Hash>,
    size: u64,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// All stored hashes, in stored-hash index order (what a database table would hold).
    pub fn stored_hashes(&self) -> &[Hash] {
        &self.stored
    }

    /// Appends one entry (its canonical bytes) and returns its index.
    ///
    /// # Errors
    /// [`TreeError::TooLarge`] when the log is full.
    pub fn append(&mut self, entry_bytes: &[u8]) -> Result<u64, TreeError> {
        let index = self.size;
        let new = tree::stored_hashes_for_append(index, entry_bytes, self)?;
        self.stored.extend(new);
        self.size += 1;
        Ok(index)
    }

    /// Leaf hash of entry `index`, if the log has it.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        if index >= self.size {
            return None;
        }
        let stored = usize::try_from(tlog_tiles::stored_hash_index(0, index)).ok()?;
        self.stored.get(stored).copied()
    }

    /// Root of the whole log.
    ///
    /// # Errors
    /// Only if the stored hashes were corrupted, which this type does not allow.
    pub fn root(&self) -> Result<Hash, TreeError> {
        tree::tree_root(self.size, self)
    }

    /// Root of the first `size` entries.
    ///
    /// # Errors
    /// [`TreeError`] when `size` exceeds the log.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        tree::tree_root(size, self)
    }

    /// Inclusion proof of entry `index` in the tree of the first `size` entries.
    ///
    /// # Errors
    /// [`TreeError`] when `index >= size` or `size` exceeds the log.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        tree::inclusion_proof(index, size, self)
    }

    /// Consistency proof from the first `old` entries to the first `new` entries.
    ///
    /// # Errors
    /// [`TreeError`] unless `1 <= old <= new <= self.size()`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(new)?;
        tree::consistency_proof(old, new, self)
    }

    // A size beyond the log would otherwise fail later with a less telling "missing hash".
    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        if size > self.size {
            return Err(TreeError::BeyondLog {
                size,
                log_size: self.size,
            });
        }
        Ok(())
    }
}

impl HashReader for MemoryLog {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReadError> {
        self.stored.as_slice().read_hashes(indexes)
    }
}
