//! The non-audit writes of one change, one step per kind of write, run in a fixed order inside the
//! caller's transaction (a savepoint on SQLite). A step that finds its row changed or already used
//! refuses the whole change (a conflict, a reached send limit, an unknown staff member); the
//! caller rolls back.
//!
//! Single use under concurrency rests on each guarded step being one conditional statement
//! (`... AND used_at IS NULL`) whose affected-row count says who won, and on writers being
//! serialised (see [`ChangeWrites::take_send_slot`]).

use chrono::{DateTime, Utc};
use deskgate_core::{ApiId, Case, ContactKind, Subject};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Postgres, Sqlite, Type};

use super::backend::SqlBackend;
use super::codec::json;
use crate::{
    CaseWrite, Change, Credential, CredentialSwap, HandoverRevocation, LinkToken, RecoveryCodes,
    Result, SendSlot, StaffAccess, StoreError, time_text,
};

fn subject_email(s: &Subject) -> Option<String> {
    s.contact(ContactKind::Email)
        .map(|c| c.value.to_lowercase())
}

impl ChangeWrites for Sqlite {}
impl ChangeWrites for Postgres {}

/// The steps of a change, written once: both backends take these default methods as they are.
pub(super) trait ChangeWrites: SqlBackend
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'q> Self::Arguments<'q>: IntoArguments<'q, Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<&'q str>: Encode<'q, Self>,
    for<'q> String: Encode<'q, Self> + Type<Self>,
    for<'q> Option<String>: Encode<'q, Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self>,
    usize: ColumnIndex<Self::Row>,
{
    /// Every non-audit write of `change`, in this order.
    async fn write_change(tx: &mut Self::Connection, change: &Change) -> Result<()> {
        match &change.case {
            Some(CaseWrite::Insert(case)) => Self::insert_case(tx, case).await?,
            Some(CaseWrite::Update {
                case,
                expected_version,
            }) => Self::update_case(tx, case, *expected_version).await?,
            None => {}
        }
        for s in &change.subjects {
            Self::upsert_subject(tx, s).await?;
        }
        for l in &change.new_links {
            Self::insert_link(tx, l).await?;
        }
        for (hash, at) in &change.use_links {
            Self::use_link(tx, hash, *at).await?;
        }
        for (subject_id, kind, at) in &change.consume_credentials {
            Self::consume_credential(tx, subject_id, kind, *at).await?;
        }
        for r in &change.revoke_handovers {
            Self::revoke_handover(tx, r).await?;
        }
        for swap in &change.swap_credentials {
            Self::swap_credential(tx, swap).await?;
        }
        for (subject_id, hash, at) in &change.spend_recovery_codes {
            Self::spend_recovery_code(tx, subject_id, hash, *at).await?;
        }
        for codes in &change.recovery_codes {
            Self::replace_recovery_codes(tx, codes).await?;
        }
        for slot in &change.send_slots {
            Self::take_send_slot(tx, slot).await?;
        }
        for (vendor, id, at) in &change.webhook_deliveries {
            Self::record_webhook_delivery(tx, vendor, id, *at).await?;
        }
        for (hash, at, expires_at) in &change.spent_sign_ins {
            Self::spend_sign_in(tx, hash, *at, *expires_at).await?;
        }
        for c in &change.credentials {
            Self::upsert_credential(tx, c).await?;
        }
        for access in &change.staff_access {
            Self::change_staff_access(tx, access).await?;
        }
        Ok(())
    }

    async fn insert_case(tx: &mut Self::Connection, case: &Case) -> Result<()> {
        sqlx::query(
            "INSERT INTO cases (id, subject_id, agent_id, state, action, opened_at, \
             updated_at, executed_at, version, doc, caller_number, number) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11)",
        )
        .bind(&case.id)
        .bind(&case.subject_id)
        .bind(&case.agent_id)
        .bind(case.state.api_id())
        .bind(case.action.api_id())
        .bind(time_text(case.opened_at))
        .bind(time_text(case.updated_at))
        .bind(case.executed_at.map(time_text))
        .bind(json(case)?)
        .bind(case.caller_number.as_deref())
        // 0: not numbered (a fixture written straight to the store); NULLs never collide.
        .bind(i64::try_from(case.number).ok().filter(|n| *n > 0))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Optimistic concurrency: the update applies only to the version the caller read.
    async fn update_case(
        tx: &mut Self::Connection,
        case: &Case,
        expected_version: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE cases SET state = $1, updated_at = $2, executed_at = $3, \
             version = version + 1, doc = $4 WHERE id = $5 AND version = $6",
        )
        .bind(case.state.api_id())
        .bind(time_text(case.updated_at))
        .bind(case.executed_at.map(time_text))
        .bind(json(case)?)
        .bind(&case.id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict(format!(
                "case {} changed concurrently",
                case.id
            )));
        }
        Ok(())
    }

    async fn upsert_subject(tx: &mut Self::Connection, s: &Subject) -> Result<()> {
        sqlx::query(
            "INSERT INTO subjects (id, display_name, email, tier, status, doc, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
             display_name = excluded.display_name, email = excluded.email, \
             tier = excluded.tier, status = excluded.status, doc = excluded.doc, \
             updated_at = excluded.updated_at",
        )
        .bind(&s.id)
        .bind(&s.display_name)
        .bind(subject_email(s))
        .bind(s.tier.api_id())
        .bind(s.status.api_id())
        .bind(json(s)?)
        .bind(time_text(Utc::now()))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn insert_link(tx: &mut Self::Connection, l: &LinkToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO link_tokens (token_hash, kind, case_id, verification_id, \
             respondent, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&l.token_hash)
        .bind(&l.kind)
        .bind(&l.case_id)
        .bind(&l.verification_id)
        .bind(&l.respondent)
        .bind(time_text(l.created_at))
        .bind(time_text(l.expires_at))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Single use: of two changes using one link, only the first to write finds it unused.
    async fn use_link(tx: &mut Self::Connection, hash: &str, at: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE link_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(time_text(at))
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict("the link was already used".to_owned()));
        }
        Ok(())
    }

    /// Single use: a credential missing or already used makes the change conflict.
    async fn consume_credential(
        tx: &mut Self::Connection,
        subject_id: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE credentials SET used_at = $1 \
             WHERE subject_id = $2 AND kind = $3 AND used_at IS NULL",
        )
        .bind(time_text(at))
        .bind(subject_id)
        .bind(kind)
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict(
                "the credential was already used".to_owned(),
            ));
        }
        Ok(())
    }

    /// Spends every unused link acting on the subject and destroys its unused credentials of the
    /// given kinds; finding nothing is fine.
    async fn revoke_handover(tx: &mut Self::Connection, r: &HandoverRevocation) -> Result<()> {
        let at = time_text(r.at);
        sqlx::query(
            "UPDATE link_tokens SET used_at = $1 WHERE used_at IS NULL AND \
             (respondent = $2 OR case_id IN (SELECT id FROM cases WHERE subject_id = $2))",
        )
        .bind(&at)
        .bind(&r.subject_id)
        .execute(&mut *tx)
        .await?;
        for kind in &r.credential_kinds {
            sqlx::query(
                "UPDATE credentials SET used_at = $1, hash = '' \
                 WHERE subject_id = $2 AND kind = $3 AND used_at IS NULL",
            )
            .bind(&at)
            .bind(&r.subject_id)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Compare-and-swap: replaces the credential only while it is unused and holds the hash the
    /// caller read.
    async fn swap_credential(tx: &mut Self::Connection, swap: &CredentialSwap) -> Result<()> {
        let c = &swap.credential;
        let done = sqlx::query(
            "UPDATE credentials SET hash = $1, created_at = $2, expires_at = $3, \
             used_at = $4 WHERE subject_id = $5 AND kind = $6 AND hash = $7 \
             AND used_at IS NULL",
        )
        .bind(&c.hash)
        .bind(time_text(c.created_at))
        .bind(c.expires_at.map(time_text))
        .bind(c.used_at.map(time_text))
        .bind(&c.subject_id)
        .bind(&c.kind)
        .bind(&swap.expected_hash)
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict(format!(
                "the {} changed concurrently or was already used",
                c.kind
            )));
        }
        Ok(())
    }

    /// Single use: a code already used or replaced makes the change conflict.
    async fn spend_recovery_code(
        tx: &mut Self::Connection,
        subject_id: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE subject_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(time_text(at))
        .bind(subject_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict(
                "the recovery code was already used".to_owned(),
            ));
        }
        Ok(())
    }

    /// The subject's new codes replace every earlier one, used or not.
    async fn replace_recovery_codes(
        tx: &mut Self::Connection,
        codes: &RecoveryCodes,
    ) -> Result<()> {
        sqlx::query("DELETE FROM recovery_codes WHERE subject_id = $1")
            .bind(&codes.subject_id)
            .execute(&mut *tx)
            .await?;
        for hash in &codes.hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (subject_id, code_hash, issued_at, used_at) \
                 VALUES ($1, $2, $3, NULL)",
            )
            .bind(&codes.subject_id)
            .bind(hash)
            .bind(time_text(codes.issued_at))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Counts the message against its destination's limit, refusing it once the limit is reached.
    ///
    /// Atomic because writers are serialised: SQLite has one writer, and on PostgreSQL every
    /// commit holds the sequencer row and a lock per destination (see
    /// [`postgres_commit`](super::postgres_commit)).
    async fn take_send_slot(tx: &mut Self::Connection, slot: &SendSlot) -> Result<()> {
        let sent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM code_sends WHERE contact_hash = $1 AND sent_at >= $2",
        )
        .bind(&slot.contact_hash)
        .bind(time_text(slot.since))
        .fetch_one(&mut *tx)
        .await?;
        let sent = u32::try_from(sent).unwrap_or(u32::MAX);
        if sent >= slot.limit {
            return Err(StoreError::LimitReached { sent });
        }
        sqlx::query("INSERT INTO code_sends (contact_hash, sent_at) VALUES ($1, $2)")
            .bind(&slot.contact_hash)
            .bind(time_text(slot.at))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// A delivery processed before makes the change conflict.
    async fn record_webhook_delivery(
        tx: &mut Self::Connection,
        vendor: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (vendor, delivery_id, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (vendor, delivery_id) DO NOTHING",
        )
        .bind(vendor)
        .bind(id)
        .bind(time_text(at))
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict(format!(
                "webhook delivery {id} was already processed"
            )));
        }
        Ok(())
    }

    /// Single use of a sign-in attempt; spent attempts already expired are forgotten first.
    async fn spend_sign_in(
        tx: &mut Self::Connection,
        hash: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        // Kept only as long as the attempt itself could live: older ones guard nothing.
        sqlx::query("DELETE FROM sign_in_spent WHERE expires_at < $1")
            .bind(time_text(at))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO sign_in_spent (attempt_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (attempt_hash) DO NOTHING",
        )
        .bind(hash)
        .bind(time_text(expires_at))
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&done) != 1 {
            return Err(StoreError::Conflict(
                "the sign-in attempt was already used".to_owned(),
            ));
        }
        Ok(())
    }

    async fn upsert_credential(tx: &mut Self::Connection, c: &Credential) -> Result<()> {
        sqlx::query(
            "INSERT INTO credentials (subject_id, kind, hash, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_id, kind) DO UPDATE SET \
             hash = excluded.hash, created_at = excluded.created_at, \
             expires_at = excluded.expires_at, used_at = excluded.used_at",
        )
        .bind(&c.subject_id)
        .bind(&c.kind)
        .bind(&c.hash)
        .bind(time_text(c.created_at))
        .bind(c.expires_at.map(time_text))
        .bind(c.used_at.map(time_text))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// An unknown staff id makes the change fail with [`StoreError::NotFound`].
    async fn change_staff_access(tx: &mut Self::Connection, access: &StaffAccess) -> Result<()> {
        let (staff_id, changed) = match access {
            StaffAccess::SsoIdentity { staff_id, identity } => (
                staff_id,
                Self::set_sso_identity(tx, staff_id, identity.as_deref()).await?,
            ),
            StaffAccess::Disable { staff_id, at } => {
                (staff_id, Self::disable_staff(tx, staff_id, *at).await?)
            }
            StaffAccess::Enable { staff_id } => (staff_id, Self::enable_staff(tx, staff_id).await?),
        };
        if changed != 1 {
            return Err(StoreError::NotFound(format!("staff member {staff_id}")));
        }
        Ok(())
    }

    /// Returns how many staff rows changed.
    async fn set_sso_identity(
        tx: &mut Self::Connection,
        staff_id: &str,
        identity: Option<&str>,
    ) -> Result<u64> {
        let done = sqlx::query("UPDATE staff SET sso_identity = $1 WHERE id = $2")
            .bind(identity)
            .bind(staff_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error() {
                Some(d) if d.is_unique_violation() => StoreError::Conflict(
                    "another staff member signs in with that identity".to_owned(),
                ),
                _ => StoreError::from(e),
            })?;
        Ok(Self::rows_affected(&done))
    }

    /// Disables the staff member and revokes every live token they hold; returns how many staff
    /// rows changed.
    async fn disable_staff(
        tx: &mut Self::Connection,
        staff_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let at = time_text(at);
        let done = sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2")
            .bind(&at)
            .bind(staff_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE staff_id = $2 AND revoked_at IS NULL",
        )
        .bind(&at)
        .bind(staff_id)
        .execute(&mut *tx)
        .await?;
        Ok(Self::rows_affected(&done))
    }

    /// Returns how many staff rows changed.
    async fn enable_staff(tx: &mut Self::Connection, staff_id: &str) -> Result<u64> {
        let done = sqlx::query("UPDATE staff SET disabled_at = NULL WHERE id = $1")
            .bind(staff_id)
            .execute(&mut *tx)
            .await?;
        Ok(Self::rows_affected(&done))
    }
}
