//! Offline verification of an exported log: one canonical entry per line, a signed checkpoint,
//! the trusted verifier key, and optionally a checkpoint the auditor trusted earlier.
//!
//! # What can be located, and what cannot
//!
//! The export carries nothing but the entries. A checkpoint commits only to the root of the
//! whole tree, so an edit that keeps an entry well-formed (a changed detail, a re-signed but
//! altered history) shows up only as a root mismatch: without per-entry commitments no verifier
//! can say *which* entry changed. What the verifier does locate, by index, is everything
//! structural: an entry that does not parse or is not canonical, and an entry whose `index`
//! field is not its position (a deletion, duplication or reordering), plus a count that differs
//! from the checkpoint size (truncation or extra entries).
//!
//! A previously trusted checkpoint narrows content edits: the root of the first
//! `previous.size` entries is recomputed on the way and must equal the previous root. If it does
//! not, history the auditor had already seen was rewritten
//! ([`VerifyError::InconsistentWithPrevious`]); if it does but the final root does not, the edit
//! lies in the entries after it ([`VerifyError::RootMismatch::verified_prefix`]). Comparing
//! roots of the recomputed prefix is equivalent to checking a consistency proof, and needs none
//! because every entry is at hand.
//!
//! The stream is processed in one pass with O(log n) memory ([`RootBuilder`]), so the caller
//! can verify a file of millions of lines without loading it.

use crate::checkpoint::{Checkpoint, CheckpointError, verify_checkpoint};
use crate::compact::RootBuilder;
use crate::entry::{AuditEntry, EntryError};
use crate::hash::{Hash, leaf_hash};

/// Why an exported log does not verify. Entry positions count from 0.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The checkpoint itself does not verify under the trusted key.
    #[error("checkpoint rejected")]
    Checkpoint(#[from] CheckpointError),
    /// The previous checkpoint belongs to another log.
    #[error("previous checkpoint is for log {found:?}, not {expected:?}")]
    PreviousOriginMismatch {
        /// Origin of the checkpoint being verified.
        expected: String,
        /// Origin of the previous checkpoint.
        found: String,
    },
    /// The log is smaller than a size the auditor already saw: it was truncated or forked.
    #[error("checkpoint size {size} is smaller than the previous checkpoint's {previous_size}")]
    ShrunkSincePrevious {
        /// Size of the previous checkpoint.
        previous_size: u64,
        /// Size of the checkpoint being verified.
        size: u64,
    },
    /// The line at `index` does not parse as an audit entry or has an invalid field.
    #[error("entry {index} is malformed")]
    MalformedEntry {
        /// Position of the line.
        index: u64,
        /// What is wrong with it.
        #[source]
        source: EntryError,
    },
    /// The line at `index` is a valid entry but not in canonical form.
    #[error("entry {index} is not in canonical form")]
    NonCanonicalEntry {
        /// Position of the line.
        index: u64,
    },
    /// The entry at position `index` says it is entry `found`: an entry before it was deleted
    /// or duplicated, or entries were reordered.
    #[error("entry at position {index} has index {found}")]
    IndexMismatch {
        /// Position of the line.
        index: u64,
        /// Its `index` field.
        found: u64,
    },
    /// The export has a different number of entries than the checkpoint (truncated or extended).
    #[error("export has {entries} entries, checkpoint says {checkpoint_size}")]
    SizeMismatch {
        /// Size in the checkpoint.
        checkpoint_size: u64,
        /// Entries in the export.
        entries: u64,
    },
    /// The first `previous_size` entries do not hash to the previous checkpoint's root: history
    /// the auditor had already seen was changed.
    #[error("the first {previous_size} entries do not match the previous checkpoint")]
    InconsistentWithPrevious {
        /// Size of the previous checkpoint.
        previous_size: u64,
    },
    /// The entries are well-formed and complete but do not hash to the checkpoint root: some
    /// entry at or after `verified_prefix` was altered.
    #[error("root mismatch: an entry at or after index {verified_prefix} was altered")]
    RootMismatch {
        /// Entries before this index are proven intact by the previous checkpoint (0 without one).
        verified_prefix: u64,
        /// Root in the checkpoint.
        expected: Hash,
        /// Root of the exported entries.
        computed: Hash,
    },
}

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedLog {
    /// The verified checkpoint; the export holds exactly its `size` entries.
    pub checkpoint: Checkpoint,
    /// Size of the previous checkpoint the log was shown consistent with, if one was given.
    pub consistent_with: Option<u64>,
}

/// Verifies a whole export in one call; see the module documentation for what it checks.
///
/// `entries` yields the lines of the export without their line terminators. The `previous`
/// checkpoint must already be trusted (for example returned earlier by [`verify_checkpoint`]).
///
/// # Errors
/// The first [`VerifyError`] found, in stream order.
pub fn verify_log<I>(
    entries: I,
    checkpoint: &str,
    verifier_key: &str,
    previous: Option<&Checkpoint>,
) -> Result<VerifiedLog, VerifyError>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut verifier = LogVerifier::new(checkpoint, verifier_key, previous)?;
    for entry in entries {
        verifier.push(entry.as_ref())?;
    }
    verifier.finish()
}

/// The streaming form of [`verify_log`], for callers that read the export themselves (and so
/// can report I/O errors and progress).
#[derive(Debug, Clone)]
pub struct LogVerifier {
    checkpoint: Checkpoint,
    previous: Option<Checkpoint>,
    builder: RootBuilder,
}

impl LogVerifier {
    /// Verifies the checkpoint and prepares to receive entries.
    ///
    /// # Errors
    /// [`VerifyError::Checkpoint`], or a previous checkpoint that does not fit this one.
    pub fn new(
        checkpoint: &str,
        verifier_key: &str,
        previous: Option<&Checkpoint>,
    ) -> Result<Self, VerifyError> {
        let checkpoint = verify_checkpoint(checkpoint, verifier_key)?;
        if let Some(previous) = previous {
            if previous.origin != checkpoint.origin {
                return Err(VerifyError::PreviousOriginMismatch {
                    expected: checkpoint.origin,
                    found: previous.origin.clone(),
                });
            }
            if previous.size > checkpoint.size {
                return Err(VerifyError::ShrunkSincePrevious {
                    previous_size: previous.size,
                    size: checkpoint.size,
                });
            }
        }
        let verifier = Self {
            checkpoint,
            previous: previous.cloned(),
            builder: RootBuilder::new(),
        };
        verifier.check_previous()?;
        Ok(verifier)
    }

    /// Checks and hashes the next line of the export.
    ///
    /// # Errors
    /// A [`VerifyError`] naming this entry's position, or [`VerifyError::InconsistentWithPrevious`]
    /// when this entry completes the previous checkpoint's tree.
    pub fn push(&mut self, entry_bytes: &[u8]) -> Result<(), VerifyError> {
        let index = self.builder.size();
        let entry = AuditEntry::from_canonical(entry_bytes).map_err(|source| match source {
            EntryError::NotCanonical => VerifyError::NonCanonicalEntry { index },
            source => VerifyError::MalformedEntry { index, source },
        })?;
        if entry.index != index {
            return Err(VerifyError::IndexMismatch {
                index,
                found: entry.index,
            });
        }
        self.builder.push_leaf_hash(leaf_hash(entry_bytes));
        self.check_previous()
    }

    /// Checks the count and the root once all entries are pushed.
    ///
    /// # Errors
    /// [`VerifyError::SizeMismatch`] or [`VerifyError::RootMismatch`].
    pub fn finish(self) -> Result<VerifiedLog, VerifyError> {
        let entries = self.builder.size();
        if entries != self.checkpoint.size {
            return Err(VerifyError::SizeMismatch {
                checkpoint_size: self.checkpoint.size,
                entries,
            });
        }
        let computed = self.builder.root();
        let consistent_with = self.previous.map(|previous| previous.size);
        if computed != self.checkpoint.root {
            return Err(VerifyError::RootMismatch {
                verified_prefix: consistent_with.unwrap_or(0),
                expected: self.checkpoint.root,
                computed,
            });
        }
        Ok(VerifiedLog {
            checkpoint: self.checkpoint,
            consistent_with,
        })
    }

    fn check_previous(&self) -> Result<(), VerifyError> {
        match &self.previous {
            Some(previous)
                if previous.size == self.builder.size() && previous.root != self.builder.root() =>
            {
                Err(VerifyError::InconsistentWithPrevious {
                    previous_size: previous.size,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::checkpoint::CheckpointSigner;
    use crate::entry::{Actor, canonical_bytes};

    const ORIGIN: &str = "deskgate.example/audit";

    fn entry(index: u64, note: &str) -> AuditEntry {
        AuditEntry {
            index,
            time: format!("2026-11-26T09:30:{:02}.000Z", index % 60),
            actor: Actor {
                id: "agent-1".to_owned(),
                role: "agent".to_owned(),
                auth: "passkey".to_owned(),
            },
            case_id: Some(format!("case-{}", index / 3)),
            event: "case.step".to_owned(),
            details: json!({ "note": note, "step": index }),
            policy_digest: None,
            evidence_digests: vec![],
        }
    }

    fn lines(entries: &[AuditEntry]) -> Vec<Vec<u8>> {
        entries.iter().map(canonical_bytes).collect()
    }

    fn checkpoint_of(signer: &CheckpointSigner, lines: &[Vec<u8>]) -> String {
        let mut builder = RootBuilder::new();
        for line in lines {
            builder.push_entry(line);
        }
        signer.sign(builder.size(), builder.root()).unwrap()
    }

    struct Fixture {
        signer: CheckpointSigner,
        entries: Vec<AuditEntry>,
        lines: Vec<Vec<u8>>,
        checkpoint: String,
    }

    fn fixture() -> Fixture {
        let signer = CheckpointSigner::generate(ORIGIN).unwrap();
        let entries: Vec<AuditEntry> = (0..10).map(|i| entry(i, "ok")).collect();
        let lines = lines(&entries);
        let checkpoint = checkpoint_of(&signer, &lines);
        Fixture {
            signer,
            entries,
            lines,
            checkpoint,
        }
    }

    impl Fixture {
        fn verify(&self, lines: &[Vec<u8>]) -> Result<VerifiedLog, VerifyError> {
            verify_log(
                lines,
                &self.checkpoint,
                self.signer.verifier_key_string(),
                None,
            )
        }

        fn previous(&self, size: usize) -> Checkpoint {
            let note = checkpoint_of(&self.signer, &self.lines[..size]);
            verify_checkpoint(&note, self.signer.verifier_key_string()).unwrap()
        }
    }

    #[test]
    fn intact_log_verifies() {
        let f = fixture();
        let verified = f.verify(&f.lines).unwrap();
        assert_eq!(verified.checkpoint.size, 10);
        assert_eq!(verified.consistent_with, None);
    }

    #[test]
    fn intact_log_verifies_against_previous_checkpoint() {
        let f = fixture();
        for size in [0, 4, 10] {
            let previous = f.previous(size);
            let verified = verify_log(
                &f.lines,
                &f.checkpoint,
                f.signer.verifier_key_string(),
                Some(&previous),
            )
            .unwrap();
            assert_eq!(verified.consistent_with, Some(size as u64));
        }
    }

    #[test]
    fn empty_log_verifies_against_size_zero_checkpoint() {
        let f = fixture();
        let checkpoint = checkpoint_of(&f.signer, &[]);
        let verified = verify_log(
            Vec::<Vec<u8>>::new(),
            &checkpoint,
            f.signer.verifier_key_string(),
            None,
        )
        .unwrap();
        assert_eq!(verified.checkpoint.size, 0);
    }

    #[test]
    fn edited_entry_is_root_mismatch() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines[5] = canonical_bytes(&entry(5, "edited"));
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::RootMismatch {
                verified_prefix: 0,
                ..
            })
        ));
    }

    #[test]
    fn edit_after_previous_checkpoint_names_verified_prefix() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines[7] = canonical_bytes(&entry(7, "edited"));
        let previous = f.previous(4);
        let result = verify_log(
            &lines,
            &f.checkpoint,
            f.signer.verifier_key_string(),
            Some(&previous),
        );
        assert!(matches!(
            result,
            Err(VerifyError::RootMismatch {
                verified_prefix: 4,
                ..
            })
        ));
    }

    #[test]
    fn history_rewritten_and_resigned_is_inconsistent_with_previous() {
        let f = fixture();
        let previous = f.previous(4);
        let mut lines = f.lines.clone();
        lines[2] = canonical_bytes(&entry(2, "rewritten"));
        // Whoever rewrote history also holds the key and signs a matching checkpoint.
        let resigned = checkpoint_of(&f.signer, &lines);
        assert!(verify_log(&lines, &resigned, f.signer.verifier_key_string(), None).is_ok());
        assert!(matches!(
            verify_log(
                &lines,
                &resigned,
                f.signer.verifier_key_string(),
                Some(&previous)
            ),
            Err(VerifyError::InconsistentWithPrevious { previous_size: 4 })
        ));
    }

    #[test]
    fn previous_checkpoint_larger_than_current_is_rejected() {
        let f = fixture();
        let short = checkpoint_of(&f.signer, &f.lines[..6]);
        let previous = f.previous(8);
        assert!(matches!(
            verify_log(
                &f.lines[..6],
                &short,
                f.signer.verifier_key_string(),
                Some(&previous)
            ),
            Err(VerifyError::ShrunkSincePrevious {
                previous_size: 8,
                size: 6
            })
        ));
    }

    #[test]
    fn previous_checkpoint_of_another_log_is_rejected() {
        let f = fixture();
        let mut previous = f.previous(4);
        previous.origin = "other.example/audit".to_owned();
        assert!(matches!(
            verify_log(
                &f.lines,
                &f.checkpoint,
                f.signer.verifier_key_string(),
                Some(&previous)
            ),
            Err(VerifyError::PreviousOriginMismatch { .. })
        ));
    }

    #[test]
    fn deleted_entry_is_index_mismatch_at_its_position() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines.remove(3);
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::IndexMismatch { index: 3, found: 4 })
        ));
    }

    #[test]
    fn reordered_entries_are_index_mismatch_at_first_swap() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines.swap(6, 8);
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::IndexMismatch { index: 6, found: 8 })
        ));
    }

    #[test]
    fn duplicated_entry_is_index_mismatch() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines.insert(5, f.lines[4].clone());
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::IndexMismatch { index: 5, found: 4 })
        ));
    }

    #[test]
    fn truncated_log_is_size_mismatch() {
        let f = fixture();
        assert!(matches!(
            f.verify(&f.lines[..9]),
            Err(VerifyError::SizeMismatch {
                checkpoint_size: 10,
                entries: 9
            })
        ));
    }

    #[test]
    fn extra_entries_are_size_mismatch() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines.push(canonical_bytes(&entry(10, "appended")));
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::SizeMismatch {
                checkpoint_size: 10,
                entries: 11
            })
        ));
    }

    #[test]
    fn non_canonical_entry_is_reported_with_its_index() {
        let f = fixture();
        let mut lines = f.lines.clone();
        let pretty = serde_json::to_vec_pretty(&f.entries[2]).unwrap();
        lines[2] = pretty;
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::NonCanonicalEntry { index: 2 })
        ));
    }

    #[test]
    fn unparsable_entry_is_reported_with_its_index() {
        let f = fixture();
        let mut lines = f.lines.clone();
        lines[1] = b"{\"index\":1".to_vec();
        assert!(matches!(
            f.verify(&lines),
            Err(VerifyError::MalformedEntry {
                index: 1,
                source: EntryError::Parse(_)
            })
        ));
    }

    #[test]
    fn altered_checkpoint_signature_is_rejected_before_entries() {
        let f = fixture();
        let (body, line) = f.checkpoint.split_once("\n\n").unwrap();
        let (prefix, signature) = line.rsplit_once(' ').unwrap();
        let mut signature = signature.to_owned().into_bytes();
        // Change one base64 character inside the Ed25519 signature (after the 4-byte key id).
        signature[20] = if signature[20] == b'A' { b'B' } else { b'A' };
        let tampered = format!(
            "{body}\n\n{prefix} {}",
            String::from_utf8(signature).unwrap()
        );
        assert!(matches!(
            verify_log(&f.lines, &tampered, f.signer.verifier_key_string(), None),
            Err(VerifyError::Checkpoint(
                CheckpointError::BadSignature { .. }
            ))
        ));
    }

    #[test]
    fn streaming_verifier_stops_at_first_bad_entry() {
        let f = fixture();
        let mut verifier =
            LogVerifier::new(&f.checkpoint, f.signer.verifier_key_string(), None).unwrap();
        for line in &f.lines[..3] {
            verifier.push(line).unwrap();
        }
        assert!(matches!(
            verifier.push(&f.lines[4]),
            Err(VerifyError::IndexMismatch { index: 3, found: 4 })
        ));
    }
}
