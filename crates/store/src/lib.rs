//! Persistence for Deskgate behind one trait, [`Store`], with one SQL implementation that runs on
//! SQLite (the embedded default) and PostgreSQL. Backend differences live in this crate only.
//!
//! Every state change goes through [`Store::commit`]: the case, the directory, links, credentials
//! and the audit entries describing the change are written in one transaction, or not at all.

mod audit;
mod observed;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deskgate_core::{Case, CaseState, Staff, Subject};
use serde::{Deserialize, Serialize};

pub use audit::{Actor, AuditRecord, ChainError, NewAuditEntry, system_actor, verify_chain};
pub use deskgate_audit::Hash;
pub use sql::SqlStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another writer changed the row first (stale version, link already used, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A [`SendSlot`] found its destination's limit reached; nothing in the change was written.
    #[error("send limit reached: {sent} already sent in the window")]
    LimitReached { sent: u32 },
    /// The audit trail could not be appended; the whole change was rolled back.
    #[error("audit append failed: {0}")]
    AuditUnavailable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
    /// The transaction holding the change could not commit; nothing in it was written.
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("audit log: {0}")]
    Log(#[from] deskgate_audit::TreeError),
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
}

/// A case as stored, with the version used for optimistic concurrency.
#[derive(Debug, Clone)]
pub struct StoredCase {
    pub case: Case,
    pub version: i64,
}

/// How a change writes its case.
#[derive(Debug, Clone)]
pub enum CaseWrite {
    Insert(Case),
    /// Fails with [`StoreError::Conflict`] unless the stored version is still `expected_version`.
    Update {
        case: Case,
        expected_version: i64,
    },
}

/// A single-use link; only the hash of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkToken {
    pub token_hash: String,
    pub kind: String,
    pub case_id: String,
    pub verification_id: String,
    pub respondent: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What the store keeps of an API token: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub token_hash: String,
    pub staff_id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A credential of the built-in directory (password, temporary access pass, service secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub subject_id: String,
    pub kind: String,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
}

/// A compare-and-swap on a credential: `credential` replaces the stored row of its subject and
/// kind only while that row is unused and still holds `expected_hash`; otherwise the whole change
/// fails with [`StoreError::Conflict`], so of two requests that read the same row, one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSwap {
    pub expected_hash: String,
    pub credential: Credential,
}

/// A subject's new recovery codes (hashes only); they replace every earlier code, used or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodes {
    pub subject_id: String,
    pub hashes: Vec<String>,
    pub issued_at: DateTime<Utc>,
}

/// One message to a destination, counted against that destination's limit before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSlot {
    /// Hash of the destination, never the number or address itself.
    pub contact_hash: String,
    pub at: DateTime<Utc>,
    /// Messages sent since then count toward the limit.
    pub since: DateTime<Utc>,
    pub limit: u32,
}

/// Everything one request changes, committed atomically with its audit entries.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub case: Option<CaseWrite>,
    pub subjects: Vec<Subject>,
    pub new_links: Vec<LinkToken>,
    /// Link token hashes to mark used; an already used link makes the change conflict.
    pub use_links: Vec<(String, DateTime<Utc>)>,
    pub credentials: Vec<Credential>,
    pub swap_credentials: Vec<CredentialSwap>,
    pub recovery_codes: Vec<RecoveryCodes>,
    /// Recovery codes to spend: (subject id, code hash, when). One already used or replaced
    /// makes the change conflict, so a code passes once and spending one never revives another.
    pub spend_recovery_codes: Vec<(String, String, DateTime<Utc>)>,
    /// Credentials to mark used, single use: (subject id, kind, when). One already used, or
    /// missing, makes the change conflict, so two racing requests cannot both spend it.
    pub consume_credentials: Vec<(String, String, DateTime<Utc>)>,
    /// Messages to count, each only while fewer than its limit went to its destination in its
    /// window; otherwise the change fails with [`StoreError::LimitReached`]. The count and the
    /// insert are one serialised step, so racing senders cannot overshoot the limit.
    pub send_slots: Vec<SendSlot>,
    /// Outstanding handovers of subjects to spend at once (a "this was not me" report).
    pub revoke_handovers: Vec<HandoverRevocation>,
    /// Webhook deliveries processed: (vendor, delivery id, when); a repeat makes the change conflict.
    pub webhook_deliveries: Vec<(String, String, DateTime<Utc>)>,
    /// Changes to how staff members may sign in.
    pub staff_access: Vec<StaffAccess>,
    /// Sign-in attempts finished: (hash of the attempt, when, when it would have expired). A
    /// second use makes the change conflict; spent attempts already expired are forgotten.
    pub spent_sign_ins: Vec<(String, DateTime<Utc>, DateTime<Utc>)>,
    pub audit: Vec<NewAuditEntry>,
}

/// Spends, at `at`, everything still outstanding that acts on `subject_id`: every unused link of
/// the subject's cases or sent to the subject, and every unused credential of the subject whose
/// kind is in `credential_kinds` (its stored hash or sealed value is destroyed with it). Finding
/// nothing to spend is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverRevocation {
    pub subject_id: String,
    pub credential_kinds: Vec<String>,
    pub at: DateTime<Utc>,
}

/// A change to how a staff member may sign in. An unknown staff id makes the change fail with
/// [`StoreError::NotFound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffAccess {
    /// Sets (or, with `None`, clears) the identity the staff member signs in with through single
    /// sign-on. Identities are unique without regard to case: another staff member's identity makes
    /// the change fail with [`StoreError::Conflict`].
    SsoIdentity {
        staff_id: String,
        identity: Option<String>,
    },
    /// Disables the staff member at `at` and revokes every live token they hold.
    Disable { staff_id: String, at: DateTime<Utc> },
    /// Lets a disabled staff member sign in again (their old tokens stay revoked).
    Enable { staff_id: String },
}

/// A staff member found by single sign-on identity, with whether they are disabled.
#[derive(Debug, Clone)]
pub struct SsoStaff {
    pub staff: Staff,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl Change {
    /// Whether the change writes anything besides audit entries.
    pub fn has_writes(&self) -> bool {
        self.case.is_some()
            || !self.subjects.is_empty()
            || !self.new_links.is_empty()
            || !self.use_links.is_empty()
            || !self.credentials.is_empty()
            || !self.swap_credentials.is_empty()
            || !self.recovery_codes.is_empty()
            || !self.spend_recovery_codes.is_empty()
            || !self.consume_credentials.is_empty()
            || !self.send_slots.is_empty()
            || !self.revoke_handovers.is_empty()
            || !self.webhook_deliveries.is_empty()
            || !self.staff_access.is_empty()
            || !self.spent_sign_ins.is_empty()
    }
}

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub state: Option<CaseState>,
    pub agent_id: Option<String>,
    pub subject_id: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// The backend name, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;

    async fn subject(&self, id: &str) -> Result<Option<Subject>>;
    /// Subjects whose id, name or email contains `query` (case-insensitive).
    async fn search_subjects(&self, query: &str, limit: u32) -> Result<Vec<Subject>>;
    async fn subject_count(&self) -> Result<u64>;

    async fn upsert_staff(&self, staff: &Staff) -> Result<()>;
    async fn staff(&self, id: &str) -> Result<Option<Staff>>;
    async fn staff_by_name(&self, name: &str) -> Result<Option<Staff>>;
    async fn list_staff(&self) -> Result<Vec<Staff>>;
    async fn add_api_token(
        &self,
        token_hash: &str,
        staff_id: &str,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The staff member whose single sign-on identity is `identity` (compared without case).
    async fn staff_by_sso_identity(&self, identity: &str) -> Result<Option<SsoStaff>>;
    /// Each staff member's single sign-on identity and when they were disabled, by staff id.
    async fn staff_access(&self) -> Result<Vec<(String, Option<String>, Option<DateTime<Utc>>)>>;
    /// The staff member a live token (not revoked, not expired at `now`) belongs to; never a
    /// disabled one.
    async fn staff_for_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Staff>>;
    /// Sets an expiry on a token (console sessions).
    async fn expire_token_at(&self, token_hash: &str, at: DateTime<Utc>) -> Result<()>;
    /// Revokes every live token of a staff member (offboarding); returns how many.
    async fn revoke_staff_tokens(&self, staff_id: &str, now: DateTime<Utc>) -> Result<u64>;
    /// Revokes a token; it never authenticates again.
    async fn revoke_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()>;
    /// Every token ever issued, live or not, oldest first: what an administrator reviews.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;

    async fn case(&self, id: &str) -> Result<Option<StoredCase>>;
    /// The next case number (`DG-10427`), from one counter shared by every instance; numbers
    /// of cases never written (a refused open) are skipped, never reused.
    async fn next_case_number(&self) -> Result<u64>;
    /// The id of the case with `number`, if there is one.
    async fn case_id_by_number(&self, number: u64) -> Result<Option<String>>;
    async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<Case>>;
    /// Live cases about a subject, and executions of it since `since`.
    async fn subject_case_counts(
        &self,
        subject_id: &str,
        since: DateTime<Utc>,
    ) -> Result<(u32, u32)>;
    /// Cases opened since `since` about the subject, from the caller number, by the agent.
    async fn velocity_counts(
        &self,
        subject_id: &str,
        caller_number: Option<&str>,
        agent_id: &str,
        since: DateTime<Utc>,
    ) -> Result<(u32, u32, u32)>;
    async fn link(&self, token_hash: &str) -> Result<Option<LinkToken>>;
    /// Whether this webhook delivery was processed already.
    async fn webhook_seen(&self, vendor: &str, delivery_id: &str) -> Result<bool>;
    /// Hashes of the subject's unused recovery codes.
    async fn recovery_codes(&self, subject_id: &str) -> Result<Vec<String>>;
    async fn credential(&self, subject_id: &str, kind: &str) -> Result<Option<Credential>>;

    /// Writes the change and its audit entries in one transaction, returning the entries as
    /// appended. On any error nothing is written.
    async fn commit(&self, change: Change) -> Result<Vec<AuditRecord>>;

    async fn audit_size(&self) -> Result<u64>;
    /// Entries with `start <= index < end`.
    async fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<AuditRecord>>;
    async fn audit_for_case(&self, case_id: &str) -> Result<Vec<AuditRecord>>;
    /// Stored Merkle hashes by stored-hash index, in the order asked.
    async fn audit_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>>;
    async fn save_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<()>;
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>>;
}

/// A signed checkpoint as kept by the store: the note text is what clients verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

/// Opens the store a URL names and brings its schema up to date: `sqlite://PATH` (created when
/// missing, WAL) or `postgres://...`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(SqlStore::open(url).await?))
}

pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
