//! Console passkeys for staff: a signed-in staff member registers passkeys, then signs in with
//! one (username first: the name picks whose passkeys the challenge allows). The passkeys are
//! stored under the staff member's directory person (kind `staff_passkeys`), apart from that
//! person's own subject passkeys, so a help-desk verification never accepts a console passkey
//! and the other way round.

use deskgate_audit::{AuditEvent, event};
use deskgate_core::{Method, Staff};
use deskgate_store::{Actor, Change};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::passkey_sign_in::Realm;
use crate::passkeys::{PasskeyPurpose, STAFF_PASSKEYS, StoredPasskey};
use crate::service::Service;

type AppResult<T> = Result<T, AppError>;

/// At most this many console passkeys per staff member.
const MAX_STAFF_PASSKEYS: usize = 10;

/// How a passkey sign-in ended.
pub enum PasskeySignIn {
    SignedIn(Staff),
    /// Refused, with a short reason for the audit log (never shown: every refusal looks alike).
    Refused {
        reason: &'static str,
    },
}

/// The one answer for every failed passkey sign-in: it does not say whether the name exists.
pub fn sign_in_refused() -> AppError {
    AppError::unauthenticated_as(
        "passkey_sign_in_refused",
        "passkey sign-in failed: check the name, or use a passkey registered for it",
    )
}

fn not_linked() -> AppError {
    AppError::invalid_as(
        "not_linked",
        "console passkeys need your staff account linked to a directory person; ask an admin",
    )
}

fn staff_actor(staff: &Staff, auth: &str) -> Actor {
    Actor {
        id: staff.id.clone(),
        role: staff.role.to_string(),
        auth: auth.to_owned(),
    }
}

impl Service {
    /// The console passkeys of `staff`, oldest first.
    pub async fn staff_passkey_list(&self, staff: &Staff) -> AppResult<Vec<StoredPasskey>> {
        match &staff.subject_id {
            Some(owner) => self.stored_passkeys(owner, STAFF_PASSKEYS).await,
            None => Ok(Vec::new()),
        }
    }

    /// Starts registering a console passkey for the signed-in `staff`.
    pub async fn staff_passkey_registration_options(&self, staff: &Staff) -> AppResult<Value> {
        let owner = staff.subject_id.as_deref().ok_or_else(not_linked)?;
        if self.stored_passkeys(owner, STAFF_PASSKEYS).await?.len() >= MAX_STAFF_PASSKEYS {
            return Err(AppError::invalid(format!(
                "at most {MAX_STAFF_PASSKEYS} console passkeys per person"
            )));
        }
        self.passkey_registration_options(
            owner,
            &staff.name,
            &staff.name,
            PasskeyPurpose::StaffRegister,
            None,
        )
        .await
    }

    /// Completes the registration: the passkey joins the staff member's console passkeys, audited.
    pub async fn finish_staff_passkey_registration(
        &self,
        staff: &Staff,
        ceremony_token: &str,
        credential: &Value,
        label: &str,
    ) -> AppResult<String> {
        let owner = staff.subject_id.as_deref().ok_or_else(not_linked)?;
        let label = label.trim();
        let label = if label.is_empty() { "Passkey" } else { label };
        if label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "the label must be at most 64 printable characters",
            ));
        }
        let (passkey, _) = self
            .finish_passkey_registration_for(
                owner,
                PasskeyPurpose::StaffRegister,
                ceremony_token,
                credential,
            )
            .await?;
        let now = self.now();
        let mut list = self.stored_passkeys(owner, STAFF_PASSKEYS).await?;
        if list
            .iter()
            .any(|p| p.passkey.cred_id() == passkey.cred_id())
        {
            return Err(AppError::conflict(
                "already_registered",
                "this passkey is already registered",
            ));
        }
        let id = format!(
            "staff-passkey-{}",
            &hex::encode(Sha256::digest(passkey.cred_id().as_slice()))[..16]
        );
        list.push(StoredPasskey {
            provenance: None,
            authenticator_id: id.clone(),
            label: label.to_owned(),
            passkey,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
        });
        self.store
            .commit(Change {
                credentials: vec![Self::passkeys_credential(
                    owner,
                    STAFF_PASSKEYS,
                    &list,
                    now,
                )?],
                consume_credentials: vec![(
                    owner.to_owned(),
                    PasskeyPurpose::StaffRegister.kind(),
                    now,
                )],
                audit: vec![self.entry(
                    &staff_actor(staff, "console_session"),
                    None,
                    AuditEvent::StaffPasskeyRegistered(event::StaffPasskeyRegistered {
                        staff_id: staff.id.clone(),
                        passkey_id: id.clone(),
                        label: label.to_owned(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(id)
    }

    /// The challenge for signing in as `name` (see [`crate::passkey_sign_in`]): a real one for a
    /// staff member with console passkeys, a decoy of the same shape for any other name.
    pub async fn staff_passkey_sign_in_options(&self, name: &str) -> AppResult<Value> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(sign_in_refused());
        }
        let mut keys = Vec::new();
        if let Some(staff) = self.store.staff_by_name(name).await?
            && let Some(owner) = staff.subject_id.as_deref()
        {
            keys = self.stored_passkeys(owner, STAFF_PASSKEYS).await?;
        }
        self.sign_in_challenge(Realm::Staff, name, keys)
    }

    /// Checks the sign-in assertion against the ceremony the browser holds. Answers the staff
    /// member for a new console session, or why not; only success is audited here (refusals are
    /// audited by the caller, who knows where they come from). A ceremony signs in once.
    pub async fn staff_passkey_sign_in(
        &self,
        name: &str,
        ceremony_token: &str,
        credential: &Value,
    ) -> AppResult<PasskeySignIn> {
        let refused = |reason| Ok(PasskeySignIn::Refused { reason });
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return refused("malformed");
        }
        let ceremony = match self.open_sign_in_ceremony(Realm::Staff, name, ceremony_token)? {
            Ok(ceremony) => ceremony,
            Err(reason) => return refused(reason),
        };
        let Some(staff) = self.store.staff_by_name(name).await? else {
            return refused("unknown_staff");
        };
        let Some(owner) = staff.subject_id.clone() else {
            return refused("no_passkey");
        };
        let (outcome, credentials) = self
            .check_passkey_assertion(
                &owner,
                PasskeyPurpose::StaffSignIn,
                &ceremony.state,
                credential,
            )
            .await?;
        let passkey_id = match outcome {
            Ok(id) => id,
            Err(why) => {
                tracing::info!(staff_id = %staff.id, why, "passkey sign-in refused");
                return refused("assertion_refused");
            }
        };
        let committed = self
            .store
            .commit(Change {
                credentials,
                spent_sign_ins: vec![ceremony.spend],
                audit: vec![self.entry(
                    &staff_actor(&staff, "passkey"),
                    None,
                    AuditEvent::StaffSignedIn(event::StaffSignedIn {
                        staff_id: staff.id.clone(),
                        method: Method::Passkey.to_string(),
                        passkey_id,
                    }),
                )],
                ..Change::default()
            })
            .await;
        match committed {
            Ok(_) => Ok(PasskeySignIn::SignedIn(staff)),
            Err(deskgate_store::StoreError::Conflict(_)) => refused("ceremony_used"),
            Err(other) => Err(other.into()),
        }
    }

    /// [`Self::staff_passkey_sign_in`], with every refusal as the one refusal error.
    pub async fn finish_staff_passkey_sign_in(
        &self,
        name: &str,
        ceremony_token: &str,
        credential: &Value,
    ) -> AppResult<Staff> {
        match self
            .staff_passkey_sign_in(name, ceremony_token, credential)
            .await?
        {
            PasskeySignIn::SignedIn(staff) => Ok(staff),
            PasskeySignIn::Refused { .. } => Err(sign_in_refused()),
        }
    }

    /// Audits one refused passkey sign-in in detail.
    pub async fn audit_passkey_refusal(&self, name: &str, reason: &str) {
        let staff_id = match self.store.staff_by_name(name.trim()).await {
            Ok(found) => found.map(|s| s.id),
            Err(_) => None,
        };
        self.audit_sign_in_refusal(AuditEvent::StaffSignInFailed(
            event::StaffSignInFailed::Passkey(event::PasskeySignInFailed {
                method: Method::Passkey.to_string(),
                reason: reason.to_owned(),
                staff_id,
            }),
        ))
        .await;
    }
}
