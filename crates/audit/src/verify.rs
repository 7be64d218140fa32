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
//!
//! # Speed
//!
//! Checking an entry (is it canonical, does it carry its position) and hashing it are
//! independent per entry and cost far more than folding the leaf hashes into the root, so
//! [`LogVerifier::push_lines`] does them for a block of lines on all cores and only the fold in
//! order. An entry is checked by a byte scanner that does not allocate (module `scan`); only
//! what it cannot decide goes through [`AuditEntry::from_canonical`], which also says what is
//! wrong. Errors stay those of entry-by-entry verification: the check of each unit of lines
//! stops at its first bad entry, and the fold stops at the first error in stream order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::checkpoint::{Checkpoint, CheckpointError, verify_checkpoint};
use crate::compact::RootBuilder;
use crate::entry::{AuditEntry, EntryError};
use crate::hash::{Hash, leaf_hash};
use crate::scan::{canonical_entry_len, is_canonical_entry};

/// Bytes of lines that a thread checks at a time (about 150 typical entries): small enough
/// that threads finish a block together, large enough that taking the next unit is noise.
const UNIT_BYTES: usize = 64 * 1024;

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
    /// Threads [`Self::push_lines`] may start besides the caller's: looked up once, because
    /// the lookup reads cgroup files.
    helpers: usize,
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
            helpers: thread::available_parallelism().map_or(0, |cores| cores.get() - 1),
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
        let leaf = check_entry(entry_bytes, self.builder.size())?;
        self.builder.push_leaf_hash(leaf);
        self.check_previous()
    }

    /// Checks and hashes a block of lines of the export on all available cores, with the same
    /// outcome as a [`push`](Self::push) of each line in turn.
    ///
    /// `block` holds whole lines, each ended by `\n` except perhaps the last one of the export;
    /// a `\r` before a `\n` is dropped, as [`std::io::BufRead::lines`] does. The leaf hash of
    /// every entry accepted is appended to `leaves`, in order: on an error, those of the
    /// entries before the bad one, so that a caller can still check them against hashes it
    /// has on record.
    ///
    /// # Errors
    /// The first [`VerifyError`] in stream order, as `push` would have returned it; the entries
    /// before it are pushed.
    pub fn push_lines(&mut self, block: &[u8], leaves: &mut Vec<Hash>) -> Result<(), VerifyError> {
        self.push_lines_on(block, leaves, self.helpers, UNIT_BYTES)
    }

    /// [`push_lines`](Self::push_lines) with up to `helpers` threads besides this one, sharing
    /// the work in units of about `unit_bytes`.
    fn push_lines_on(
        &mut self,
        block: &[u8],
        leaves: &mut Vec<Hash>,
        helpers: usize,
        unit_bytes: usize,
    ) -> Result<(), VerifyError> {
        let units = split_units(block, unit_bytes, self.builder.size());
        // Folding in order is what makes the first error in stream order win, including an
        // inconsistency with the previous checkpoint that an earlier entry completes.
        for unit in check_units(&units, helpers) {
            for leaf in unit.leaves {
                self.builder.push_leaf_hash(leaf);
                self.check_previous()?;
                leaves.push(leaf);
            }
            if let Some(error) = unit.error {
                return Err(error);
            }
        }
        Ok(())
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

/// Checks one line of the export as the entry at `index` and returns its leaf hash.
fn check_entry(entry_bytes: &[u8], index: u64) -> Result<Hash, VerifyError> {
    if !is_canonical_entry(entry_bytes, index) {
        // The scanner only decides the common case; the full parse settles the rest and names
        // what is wrong.
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
    }
    Ok(leaf_hash(entry_bytes))
}

/// Whole lines of a block, and the position of the first.
struct Unit<'a> {
    lines: &'a [u8],
    first: u64,
}

/// The leaf hashes of a unit's entries up to its first bad one, and the error for that one.
struct CheckedUnit {
    leaves: Vec<Hash>,
    error: Option<VerifyError>,
}

fn check_unit(unit: &Unit<'_>) -> CheckedUnit {
    let mut leaves = Vec::with_capacity(unit.lines.len() / 256);
    let mut rest = unit.lines;
    for index in unit.first.. {
        if rest.is_empty() {
            break;
        }
        // A canonical entry followed by a line end is the line: no search for the newline.
        // Anything else is checked again by `check_entry`, which names the error.
        let fast = canonical_entry_len(rest, index).and_then(|len| split_line_at(rest, len));
        let (line, tail) = fast.unwrap_or_else(|| split_line(rest));
        let checked = match fast {
            Some(_) => Ok(leaf_hash(line)),
            None => check_entry(line, index),
        };
        match checked {
            Ok(leaf) => leaves.push(leaf),
            Err(error) => {
                return CheckedUnit {
                    leaves,
                    error: Some(error),
                };
            }
        }
        rest = tail;
    }
    CheckedUnit {
        leaves,
        error: None,
    }
}

/// Splits a block into units of whole lines of at least `unit_bytes` (but the last), numbered
/// from `first`. Counting lines is a fraction of checking them, and knowing each unit's
/// position up front lets any thread check any unit.
fn split_units(block: &[u8], unit_bytes: usize, mut first: u64) -> Vec<Unit<'_>> {
    let mut units = Vec::with_capacity(block.len() / unit_bytes.max(1) + 1);
    let mut rest = block;
    while !rest.is_empty() {
        let from = unit_bytes.saturating_sub(1).min(rest.len());
        let end = rest
            .get(from..)
            .and_then(|tail| tail.iter().position(|&byte| byte == b'\n'))
            .map_or(rest.len(), |newline| from + newline + 1);
        let (lines, tail) = rest.split_at(end);
        units.push(Unit { lines, first });
        first += line_count(lines) as u64;
        rest = tail;
    }
    units
}

/// Checks every unit, on this thread and up to `helpers` others, and returns the results in
/// unit order. Threads take the next unchecked unit until none is left, so a helper that the
/// scheduler starts late (the machine may be busy) delays the block by one unit at most.
fn check_units(units: &[Unit<'_>], helpers: usize) -> Vec<CheckedUnit> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut checked = Vec::new();
        while let Some(unit) = units.get(next.fetch_add(1, Ordering::Relaxed)) {
            checked.push((unit.first, check_unit(unit)));
        }
        checked
    };
    let helpers = helpers.min(units.len().saturating_sub(1));
    let mut checked = thread::scope(|scope| {
        let handles: Vec<_> = (0..helpers).map(|_| scope.spawn(work)).collect();
        let mut checked = work();
        for handle in handles {
            // A worker only panics on a bug; carry its panic over rather than hide it.
            checked.extend(
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        checked
    });
    // Units hold at least one line each, so their first positions are distinct.
    checked.sort_unstable_by_key(|&(first, _)| first);
    checked.into_iter().map(|(_, unit)| unit).collect()
}

/// The first line of a non-empty block, as [`LogVerifier::push_lines`] defines lines, and the
/// rest of the block.
fn split_line(block: &[u8]) -> (&[u8], &[u8]) {
    let Some(end) = block.iter().position(|&byte| byte == b'\n') else {
        return (block, &[]);
    };
    let (line, tail) = block.split_at(end);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (line, tail.get(1..).unwrap_or_default())
}

/// The first `len` bytes of a block as its first line and the rest after the line end, if a
/// line end (`\n`, `\r\n` or the end of the block) follows them.
fn split_line_at(block: &[u8], len: usize) -> Option<(&[u8], &[u8])> {
    let (line, after) = block.split_at_checked(len)?;
    let tail = match after {
        [] => after,
        [b'\n', tail @ ..] | [b'\r', b'\n', tail @ ..] => tail,
        _ => return None,
    };
    Some((line, tail))
}

/// The number of lines in a block, counted faster than by finding each line.
fn line_count(block: &[u8]) -> usize {
    // Summed per chunk in a byte: counting into a `usize` makes the compiler widen every
    // comparison result to 64 bits, which made this a fifth of all the work. 255 ones still
    // fit in a byte.
    let newlines: usize = block
        .chunks(255)
        .map(|chunk| {
            let ones = chunk.iter().map(|&byte| u8::from(byte == b'\n'));
            usize::from(ones.fold(0u8, u8::wrapping_add))
        })
        .sum();
    newlines + usize::from(block.last().is_some_and(|&byte| byte != b'\n'))
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

    /// Entry by entry: the leaf hashes of the entries accepted, and the outcome.
    fn by_entry(
        f: &Fixture,
        lines: &[Vec<u8>],
        previous: Option<&Checkpoint>,
    ) -> (Vec<Hash>, Result<VerifiedLog, VerifyError>) {
        let mut verifier =
            LogVerifier::new(&f.checkpoint, f.signer.verifier_key_string(), previous).unwrap();
        let mut leaves = Vec::new();
        for line in lines {
            if let Err(error) = verifier.push(line) {
                return (leaves, Err(error));
            }
            leaves.push(leaf_hash(line));
        }
        (leaves, verifier.finish())
    }

    /// The same lines as one block, in units of `unit_bytes` on `helpers` extra threads.
    fn by_block(
        f: &Fixture,
        block: &[u8],
        previous: Option<&Checkpoint>,
        helpers: usize,
        unit_bytes: usize,
    ) -> (Vec<Hash>, Result<VerifiedLog, VerifyError>) {
        let mut verifier =
            LogVerifier::new(&f.checkpoint, f.signer.verifier_key_string(), previous).unwrap();
        let mut leaves = Vec::new();
        let result = verifier
            .push_lines_on(block, &mut leaves, helpers, unit_bytes)
            .and_then(|()| verifier.finish());
        (leaves, result)
    }

    /// Asserts that every way of splitting the block has the entry-by-entry outcome, and
    /// returns that outcome.
    fn same_as_by_entry(
        f: &Fixture,
        lines: &[Vec<u8>],
        previous: Option<&Checkpoint>,
    ) -> Result<VerifiedLog, VerifyError> {
        let block: Vec<u8> = lines
            .iter()
            .flat_map(|line| [&line[..], b"\n"].concat())
            .collect();
        let (expected_leaves, expected) = by_entry(f, lines, previous);
        for helpers in [0, 1, 3] {
            for unit_bytes in [1, 700, 2000, usize::MAX] {
                let (leaves, result) = by_block(f, &block, previous, helpers, unit_bytes);
                assert_eq!(
                    leaves, expected_leaves,
                    "{helpers} helpers, units of {unit_bytes}"
                );
                assert_eq!(
                    format!("{result:?}"),
                    format!("{expected:?}"),
                    "{helpers} helpers, units of {unit_bytes}"
                );
            }
        }
        expected
    }

    #[test]
    fn blocks_verify_like_entry_by_entry() {
        let f = fixture();
        assert!(same_as_by_entry(&f, &f.lines, None).is_ok());
        let previous = f.previous(4);
        assert!(same_as_by_entry(&f, &f.lines, Some(&previous)).is_ok());
    }

    #[test]
    fn blocks_report_the_first_bad_entry_in_stream_order() {
        let f = fixture();
        // With units of one line, entry 3 and entry 7 are checked by different threads, and
        // the later one may well be found first.
        let mut lines = f.lines.clone();
        // Space after the brace: one line still, but not canonical.
        lines[3].insert(1, b' ');
        lines[7] = b"{\"index\":7".to_vec();
        assert!(matches!(
            same_as_by_entry(&f, &lines, None),
            Err(VerifyError::NonCanonicalEntry { index: 3 })
        ));
        let mut lines = f.lines.clone();
        lines[8] = Vec::new();
        lines.remove(6);
        assert!(matches!(
            same_as_by_entry(&f, &lines, None),
            Err(VerifyError::IndexMismatch { index: 6, found: 7 })
        ));
        let mut lines = f.lines.clone();
        lines.truncate(9);
        assert!(matches!(
            same_as_by_entry(&f, &lines, None),
            Err(VerifyError::SizeMismatch { entries: 9, .. })
        ));
        let mut lines = f.lines.clone();
        lines[9] = canonical_bytes(&entry(9, "edited"));
        assert!(matches!(
            same_as_by_entry(&f, &lines, None),
            Err(VerifyError::RootMismatch { .. })
        ));
    }

    #[test]
    fn blocks_report_an_inconsistent_prefix_before_a_later_bad_entry() {
        let f = fixture();
        let previous = f.previous(4);
        let mut lines = f.lines.clone();
        lines[2] = canonical_bytes(&entry(2, "rewritten"));
        lines[6] = b"not json".to_vec();
        assert!(matches!(
            same_as_by_entry(&f, &lines, Some(&previous)),
            Err(VerifyError::InconsistentWithPrevious { previous_size: 4 })
        ));
        // A bad entry inside the previous checkpoint's range comes first.
        lines[1] = b"not json".to_vec();
        assert!(matches!(
            same_as_by_entry(&f, &lines, Some(&previous)),
            Err(VerifyError::MalformedEntry { index: 1, .. })
        ));
    }

    #[test]
    fn entries_the_scanner_leaves_to_the_parser_still_verify_in_blocks() {
        let signer = CheckpointSigner::generate(ORIGIN).unwrap();
        let mut entries: Vec<AuditEntry> = (0..6).map(|i| entry(i, "ok")).collect();
        entries[2].details = json!({ "key\nwith newline": [1.5, -0.25, 1e100] });
        let lines = lines(&entries);
        let checkpoint = checkpoint_of(&signer, &lines);
        let f = Fixture {
            signer,
            entries,
            lines,
            checkpoint,
        };
        assert!(same_as_by_entry(&f, &f.lines, None).is_ok());
    }

    #[test]
    fn block_lines_are_those_of_buf_read_lines() {
        let f = fixture();
        // CRLF line ends and a last line without one verify as the plain lines would.
        let mut block = Vec::new();
        for line in &f.lines {
            block.extend_from_slice(line);
            block.extend_from_slice(b"\r\n");
        }
        block.truncate(block.len() - 2);
        for unit_bytes in [1, usize::MAX] {
            let (leaves, result) = by_block(&f, &block, None, 1, unit_bytes);
            assert!(result.is_ok(), "{result:?}");
            assert_eq!(leaves.len(), 10);
        }
        // A `\r` not followed by `\n` stays part of the line, as does an empty line.
        let mut with_cr = block.clone();
        with_cr.push(b'\r');
        let (_, result) = by_block(&f, &with_cr, None, 0, usize::MAX);
        assert!(matches!(
            result,
            Err(VerifyError::NonCanonicalEntry { index: 9 })
        ));
        let (_, result) = by_block(&f, b"\n", None, 0, usize::MAX);
        assert!(matches!(
            result,
            Err(VerifyError::MalformedEntry { index: 0, .. })
        ));
        let (leaves, result) = by_block(&f, b"", None, 0, usize::MAX);
        assert!(leaves.is_empty());
        assert!(matches!(
            result,
            Err(VerifyError::SizeMismatch { entries: 0, .. })
        ));
        for text in ["a\r\nb\n\nc\r", "\n", "", "x", "\r\n\r\n"] {
            let expected: Vec<String> = std::io::BufRead::lines(text.as_bytes())
                .map(Result::unwrap)
                .collect();
            let mut rest = text.as_bytes();
            let mut found = Vec::new();
            while !rest.is_empty() {
                let (line, tail) = split_line(rest);
                found.push(String::from_utf8(line.to_vec()).unwrap());
                rest = tail;
            }
            assert_eq!(found, expected, "{text:?}");
            assert_eq!(line_count(text.as_bytes()), expected.len(), "{text:?}");
        }
    }

    #[test]
    fn streaming_blocks_continue_where_the_last_one_ended() {
        let f = fixture();
        let mut verifier =
            LogVerifier::new(&f.checkpoint, f.signer.verifier_key_string(), None).unwrap();
        let mut leaves = Vec::new();
        verifier.push(&f.lines[0]).unwrap();
        for chunk in f.lines[1..].chunks(4) {
            let block: Vec<u8> = chunk
                .iter()
                .flat_map(|l| [&l[..], b"\n"].concat())
                .collect();
            verifier.push_lines(&block, &mut leaves).unwrap();
        }
        assert_eq!(leaves.len(), 9);
        assert_eq!(verifier.finish().unwrap().checkpoint.size, 10);
    }
}
