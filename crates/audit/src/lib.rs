//! Deskgate's tamper-evident audit log, as a pure library: no I/O, no async, no database.
//!
//! Every audit event is an [`AuditEntry`] whose [`canonical_bytes`] are a leaf of an append-only
//! RFC 9162 Merkle tree. The tree is kept as *stored hashes* in the layout of Go's `sumdb/tlog`
//! (see [`stored_hashes_for_append`] for the append protocol); the caller persists them next to
//! the entries, in the same transaction, through whatever storage implements [`HashReader`].
//! Signed checkpoints ([`CheckpointSigner`], [`verify_checkpoint`]) commit to a tree size and
//! root in the C2SP tlog-checkpoint / signed-note formats with Ed25519, and [`verify_log`]
//! checks an exported log against one offline.
//!
//! Hashing, proofs and the note format come from `tlog_tiles` and `signed_note`; what is written
//! by hand here is the streaming [`RootBuilder`] (no crate offers it), the canonical JSON
//! encoding and a scanner that checks it fast when verifying exports (see each module's
//! documentation for why).
//!
//! What an entry records is typed by [`AuditEvent`]: one variant per event name, with details
//! that serialize to exactly the JSON stored (see [`event`]).

mod checkpoint;
mod compact;
mod entry;
pub mod event;
mod hash;
mod memory;
mod ocsf;
mod scan;
mod tree;
mod verify;

#[cfg(test)]
mod tree_tests;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, verify_checkpoint};
pub use compact::RootBuilder;
pub use entry::{Actor, AuditEntry, EntryError, audit_time, canonical_bytes};
pub use event::{AuditEvent, EventError};
pub use hash::{EMPTY_ROOT, Hash, HashParseError, leaf_hash, node_hash};
pub use memory::MemoryLog;
pub use ocsf::{OCSF_VERSION, to_ocsf};
pub use scan::{canonical_entry_len, is_canonical_entry};
pub use tree::{
    HashReadError, HashReader, MAX_TREE_SIZE, ProofError, TreeError, append_reads,
    consistency_proof, consistency_proof_reads, inclusion_proof, inclusion_proof_reads,
    stored_hash_count, stored_hashes_for_append, tree_root, tree_root_reads, verify_consistency,
    verify_inclusion,
};
pub use verify::{LogVerifier, VerifiedLog, VerifyError, verify_log};
