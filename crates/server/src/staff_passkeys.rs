//! Console passkeys for staff: a signed-in staff member registers passkeys, then signs in with
//! one (username first: the name picks whose passkeys the challenge allows). The passkeys are
//! stored under the staff member's directory person (kind `staff_passkeys`), apart from that
//! person's own subject passkeys, so a help-desk verification never accepts a console passkey
//! and the other way round.

use axum::http::StatusCode;
use deskgate_core::Staff;
use deskgate_store::{Actor, Change};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::passkeys::{PasskeyPurpose, STAFF_PASSKEYS, StoredPasskey};
use crate::secrets;
use crate::service::Service;

type ApiResult<T> = Result<T, ApiError>;

/// At most this many console passkeys per staff member.
const MAX_STAFF_PASSKEYS: usize = 10;

/// The one answer for every failed passkey sign-in: it does not say whether the name exists.
fn sign_in_refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "passkey_sign_in_refused",
        "passkey sign-in failed: check the name, or use a passkey registered for it",
    )
}

fn not_linked() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
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
    pub async fn staff_passkey_list(&self, staff: &Staff) -> ApiResult<Vec<StoredPasskey>> {
        match &staff.subject_id {
            Some(owner) => self.stored_passkeys(owner, STAFF_PASSKEYS).await,
            None => Ok(Vec::new()),
        }
    }

    /// Starts registering a console passkey for the signed-in `staff`.
    pub async fn staff_passkey_registration_options(&self, staff: &Staff) -> ApiResult<Value> {
        let owner = staff.subject_id.as_deref().ok_or_else(not_linked)?;
        if self.stored_passkeys(owner, STAFF_PASSKEYS).await?.len() >= MAX_STAFF_PASSKEYS {
            return Err(ApiError::invalid(format!(
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
    ) -> ApiResult<String> {
        let owner = staff.subject_id.as_deref().ok_or_else(not_linked)?;
        let label = label.trim();
        let label = if label.is_empty() { "Passkey" } else { label };
        if label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(ApiError::invalid(
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
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_registered",
                "this passkey is already registered",
            ));
        }
        let id = format!(
            "staff-passkey-{}",
            &hex::encode(Sha256::digest(passkey.cred_id().as_slice()))[..16]
        );
        list.push(StoredPasskey {
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
                    "staff.passkey_registered",
                    json!({ "staff_id": staff.id, "passkey_id": id, "label": label }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(id)
    }

    /// The challenge for signing in as `name`, with a ceremony token for the browser. An unknown
    /// name, or one without console passkeys, gets the same refusal.
    pub async fn staff_passkey_sign_in_options(&self, name: &str) -> ApiResult<Value> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(sign_in_refused());
        }
        let staff = self
            .store
            .staff_by_name(name)
            .await?
            .ok_or_else(sign_in_refused)?;
        let owner = staff.subject_id.as_deref().ok_or_else(sign_in_refused)?;
        let token = secrets::random_token();
        let options = self
            .passkey_options_for(
                owner,
                PasskeyPurpose::StaffSignIn,
                &secrets::token_hash(&token),
                None,
            )
            .await
            .map_err(|e| {
                if e.status == StatusCode::UNPROCESSABLE_ENTITY {
                    sign_in_refused()
                } else {
                    e
                }
            })?;
        Ok(json!({ "ceremony": token, "options": options }))
    }

    /// Checks the sign-in assertion; success answers the staff member for a new console session.
    /// Both outcomes are audited.
    pub async fn finish_staff_passkey_sign_in(
        &self,
        name: &str,
        ceremony_token: &str,
        credential: &Value,
    ) -> ApiResult<Staff> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 128
            || ceremony_token.is_empty()
            || ceremony_token.len() > 128
        {
            return Err(sign_in_refused());
        }
        let staff = self
            .store
            .staff_by_name(name)
            .await?
            .ok_or_else(sign_in_refused)?;
        let owner = staff.subject_id.clone().ok_or_else(sign_in_refused)?;
        let check = self
            .verify_passkey_assertion(
                &owner,
                PasskeyPurpose::StaffSignIn,
                &secrets::token_hash(ceremony_token),
                credential,
            )
            .await
            .map_err(|_| sign_in_refused())?;
        let (event, details) = match &check.outcome {
            Ok(id) => (
                "staff.signed_in",
                json!({ "staff_id": staff.id, "method": "passkey", "passkey_id": id }),
            ),
            Err(why) => (
                "staff.sign_in_failed",
                json!({ "staff_id": staff.id, "method": "passkey", "reason": why }),
            ),
        };
        self.store
            .commit(Change {
                credentials: check.credentials,
                consume_credentials: vec![check.consume],
                audit: vec![self.entry(&staff_actor(&staff, "passkey"), None, event, details)],
                ..Change::default()
            })
            .await
            .map_err(|e| match e {
                deskgate_store::StoreError::Conflict(_) => sign_in_refused(),
                other => other.into(),
            })?;
        match check.outcome {
            Ok(_) => Ok(staff),
            Err(_) => Err(sign_in_refused()),
        }
    }
}
