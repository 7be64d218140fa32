//! Audit entries as the store appends them: canonical JSON (keys sorted, UTC times), RFC 9162 leaf
//! hashes, and a hash chain over the leaves so that an edit, deletion or reordering shows.
//! The tamper-evident Merkle log with signed checkpoints builds on these same leaf bytes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use deskgate_audit::Actor;
use deskgate_audit::AuditEvent;

/// The actor for events Deskgate itself causes (grants minted, executions, seeding).
pub fn system_actor() -> Actor {
    Actor {
        id: "deskgate".to_owned(),
        role: "system".to_owned(),
        auth: "system".to_owned(),
    }
}

/// An entry before the store gives it an index. Its name and details come only from a typed
/// [`AuditEvent`], so no hand-built event name or JSON reaches the log. The event's details must
/// never hold a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub time: DateTime<Utc>,
    pub actor: Actor,
    pub case_id: Option<String>,
    /// What happened: the entry's event name and details.
    pub event: AuditEvent,
    /// Digest of the policy bundle that decided, when a decision was made.
    pub policy_digest: Option<String>,
    /// Digests of the evidence the event relied on.
    pub evidence_digests: Vec<String>,
}

impl NewAuditEntry {
    pub fn new(
        time: DateTime<Utc>,
        actor: Actor,
        case_id: Option<&str>,
        event: AuditEvent,
    ) -> Self {
        Self {
            time,
            actor,
            case_id: case_id.map(str::to_owned),
            event,
            policy_digest: None,
            evidence_digests: Vec::new(),
        }
    }
}

/// An appended entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub index: u64,
    /// The canonical JSON the hashes cover.
    pub body: String,
    pub leaf_hash: String,
    pub chain_hash: String,
}

impl AuditRecord {
    pub fn entry(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
    }
}

/// The canonical bytes of entry `index`, exactly as the audit crate defines them, so an export
/// verifies offline byte for byte.
pub(crate) fn canonical_body(index: u64, e: &NewAuditEntry) -> String {
    let entry = deskgate_audit::AuditEntry {
        index,
        time: deskgate_audit::audit_time(e.time),
        actor: e.actor.clone(),
        case_id: e.case_id.clone(),
        event: e.event.name().to_owned(),
        details: e.event.details(),
        policy_digest: e.policy_digest.clone(),
        evidence_digests: e.evidence_digests.clone(),
    };
    // canonical_bytes writes JSON from Rust strings: always UTF-8.
    String::from_utf8_lossy(&deskgate_audit::canonical_bytes(&entry)).into_owned()
}

/// RFC 9162 leaf hash of an entry body.
pub(crate) fn leaf_hash(body: &[u8]) -> [u8; 32] {
    deskgate_audit::leaf_hash(body).0
}

pub(crate) fn chain(prev: &[u8; 32], leaf: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(leaf);
    h.finalize().into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("entry at position {position} has index {found}")]
    IndexOutOfPlace { position: u64, found: u64 },
    #[error("entry {0}: leaf hash does not match its body")]
    LeafMismatch(u64),
    #[error("entry {0}: chain hash does not follow from the previous entry")]
    ChainMismatch(u64),
    #[error("entry {0}: stored hash is not hex")]
    BadHex(u64),
}

/// Recomputes leaf and chain hashes from the first entry; names the first bad index.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), ChainError> {
    let mut prev = [0u8; 32];
    for (position, r) in (0u64..).zip(records) {
        if r.index != position {
            return Err(ChainError::IndexOutOfPlace {
                position,
                found: r.index,
            });
        }
        let leaf = leaf_hash(r.body.as_bytes());
        if hex::encode(leaf) != r.leaf_hash {
            return Err(ChainError::LeafMismatch(r.index));
        }
        let next = chain(&prev, &leaf);
        if hex::encode(next) != r.chain_hash {
            return Err(ChainError::ChainMismatch(r.index));
        }
        prev = next;
    }
    Ok(())
}

pub(crate) fn parse_hash(index: u64, text: &str) -> Result<[u8; 32], ChainError> {
    let bytes = hex::decode(text).map_err(|_| ChainError::BadHex(index))?;
    bytes.try_into().map_err(|_| ChainError::BadHex(index))
}
