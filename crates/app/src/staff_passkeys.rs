//! Console passkeys for staff: a signed-in staff member registers passkeys, then signs in with
//! one (username first: the name picks whose passkeys the challenge allows). The passkeys are
//! stored under the staff member's directory person (kind `staff_passkeys`), apart from that
//! person's own subject passkeys, so a help-desk verification never accepts a console passkey
//! and the other way round.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use deskgate_audit::{AuditEvent, event};
use deskgate_core::{Method, Staff};
use deskgate_store::{Actor, Change};
use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webauthn_rs::DEFAULT_AUTHENTICATOR_TIMEOUT;
use webauthn_rs::prelude::Url;

use crate::error::AppError;
use crate::passkeys::{PasskeyPurpose, STAFF_PASSKEYS, StoredPasskey};
use crate::secrets;
use crate::service::Service;

type AppResult<T> = Result<T, AppError>;

/// At most this many console passkeys per staff member.
const MAX_STAFF_PASSKEYS: usize = 10;
/// How long the browser has between asking for the challenge and answering it.
const CEREMONY_MINUTES: i64 = 5;
/// What a sealed sign-in ceremony is bound to, so no other sealed value can pass for one.
const CEREMONY_SEAL: &str = "deskgate/staff_passkey_sign_in";
/// Sealed ceremonies are padded to this many bytes (or a multiple, for a state that does not
/// fit), so their size tells neither a real challenge from a decoy nor how many passkeys allow it.
const CEREMONY_SIZE: usize = 16 * 1024;
/// The largest ceremony a browser may send back.
const MAX_CEREMONY_CHARS: usize = 64 * 1024;

/// A passkey sign-in between its two halves, sealed and held by the browser.
#[derive(Serialize, Deserialize)]
struct SignInCeremony {
    /// The name the challenge was made for.
    name: String,
    /// The webauthn-rs challenge state; `None` for a decoy, which no assertion passes.
    state: Option<Value>,
    /// Random: its hash marks the ceremony spent once it signed someone in.
    id: String,
    expires_at: DateTime<Utc>,
}

/// How a passkey sign-in ended.
pub enum PasskeySignIn {
    SignedIn(Staff),
    /// Refused, with a short reason for the audit log (never shown: every refusal looks alike).
    Refused {
        reason: &'static str,
    },
}

fn internal(why: &str) -> AppError {
    AppError::internal("internal", format!("passkey sign-in: {why}"))
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

    /// The challenge for signing in as `name`, with the ceremony the browser sends back. Every
    /// name gets an answer of the same shape and size: a staff member with console passkeys gets
    /// a real challenge; any other name a decoy whose credential ids are derived from the name
    /// with a server secret (the same ones each time) and that no assertion can pass, so the
    /// answer does not tell who exists or has passkeys. Nothing is stored: the ceremony is sealed
    /// and held by the browser, so one browser's start never replaces another's.
    pub async fn staff_passkey_sign_in_options(&self, name: &str) -> AppResult<Value> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(sign_in_refused());
        }
        let webauthn = self.webauthn()?;
        let mut keys = Vec::new();
        if let Some(staff) = self.store.staff_by_name(name).await?
            && let Some(owner) = staff.subject_id.as_deref()
        {
            keys = self.stored_passkeys(owner, STAFF_PASSKEYS).await?;
        }
        let (mut options, state) = if keys.is_empty() {
            let ids = self.decoy_credential_ids(name);
            (self.decoy_options(ids)?, None)
        } else {
            let passkeys: Vec<_> = keys.into_iter().map(|p| p.passkey).collect();
            let (options, state) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|_| internal("the passkey challenge could not be made"))?;
            (
                serde_json::to_value(options).map_err(|_| internal("unreadable challenge"))?,
                Some(serde_json::to_value(state).map_err(|_| internal("unreadable challenge"))?),
            )
        };
        // Transports are hints the browser does without; a decoy could not know them.
        if let Some(allowed) = options
            .pointer_mut("/publicKey/allowCredentials")
            .and_then(Value::as_array_mut)
        {
            for credential in allowed {
                if let Some(c) = credential.as_object_mut() {
                    c.remove("transports");
                }
            }
        }
        let ceremony = self.seal_ceremony(&SignInCeremony {
            name: name.to_owned(),
            state,
            id: secrets::random_token(),
            expires_at: self.now() + Duration::minutes(CEREMONY_MINUTES),
        })?;
        Ok(json!({ "ceremony": ceremony, "options": options }))
    }

    /// Credential ids for a name without console passkeys: derived from the name with the
    /// server's code key, so the same name always shows the same ones, in the numbers (mostly
    /// one, sometimes two or three) and the lengths real authenticators have.
    fn decoy_credential_ids(&self, name: &str) -> Vec<Vec<u8>> {
        /// Credential id lengths: Android, Apple, password managers, Windows Hello, YubiKey.
        const LENGTHS: [usize; 5] = [65, 20, 16, 32, 64];
        let derive = |label: &str| {
            hex::decode(
                self.codes
                    .hash("deskgate/staff_passkey_decoys", &format!("{label}\0{name}")),
            )
            .unwrap_or_default()
        };
        let seed = derive("count");
        let count = match seed.first().copied().unwrap_or_default() {
            0..=214 => 1,
            215..=250 => 2,
            _ => 3,
        };
        (0..count)
            .map(|i| {
                let pick = seed.get(1 + i).copied().unwrap_or_default();
                let len = LENGTHS[usize::from(pick) % LENGTHS.len()];
                let mut id: Vec<u8> = (0..3)
                    .flat_map(|block| derive(&format!("id{i}/{block}")))
                    .collect();
                id.truncate(len);
                id
            })
            .collect()
    }

    /// Options shaped exactly as webauthn-rs shapes a real passkey challenge.
    fn decoy_options(&self, ids: Vec<Vec<u8>>) -> AppResult<Value> {
        let rp_id = Url::parse(self.config.public_url.trim_end_matches('/'))
            .ok()
            .and_then(|u| u.domain().map(str::to_owned))
            .ok_or_else(|| internal("no relying party id"))?;
        let mut challenge = [0u8; 32];
        OsRng.fill(&mut challenge);
        let allowed: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(id) }))
            .collect();
        Ok(json!({
            "publicKey": {
                "challenge": URL_SAFE_NO_PAD.encode(challenge),
                "timeout": DEFAULT_AUTHENTICATOR_TIMEOUT.as_millis() as u64,
                "rpId": rp_id,
                "allowCredentials": allowed,
                "userVerification": "required",
            }
        }))
    }

    /// Seals a ceremony, padded to [`CEREMONY_SIZE`].
    fn seal_ceremony(&self, ceremony: &SignInCeremony) -> AppResult<String> {
        let mut plain = serde_json::to_vec(ceremony).map_err(|_| internal("unsealable"))?;
        let target = plain.len().div_ceil(CEREMONY_SIZE).max(1) * CEREMONY_SIZE;
        // JSON ignores trailing whitespace.
        plain.resize(target, b' ');
        self.sealer
            .seal(CEREMONY_SEAL, &plain)
            .map_err(|_| internal("unsealable"))
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
        if name.is_empty() || name.len() > 128 || ceremony_token.len() > MAX_CEREMONY_CHARS {
            return refused("malformed");
        }
        let Some(ceremony) = self
            .sealer
            .open(CEREMONY_SEAL, ceremony_token)
            .ok()
            .and_then(|plain| serde_json::from_slice::<SignInCeremony>(&plain).ok())
        else {
            return refused("no_ceremony");
        };
        if ceremony.expires_at <= self.now() {
            return refused("ceremony_expired");
        }
        if ceremony.name != name {
            return refused("ceremony_for_another_name");
        }
        let Some(state) = ceremony.state else {
            return refused("no_passkey");
        };
        let state = serde_json::from_value(state).map_err(|_| internal("unreadable ceremony"))?;
        let Some(staff) = self.store.staff_by_name(name).await? else {
            return refused("unknown_staff");
        };
        let Some(owner) = staff.subject_id.clone() else {
            return refused("no_passkey");
        };
        let (outcome, credentials) = self
            .check_passkey_assertion(&owner, PasskeyPurpose::StaffSignIn, &state, credential)
            .await?;
        let passkey_id = match outcome {
            Ok(id) => id,
            Err(why) => {
                tracing::info!(staff_id = %staff.id, why, "passkey sign-in refused");
                return refused("assertion_refused");
            }
        };
        let now = self.now();
        let committed = self
            .store
            .commit(Change {
                credentials,
                spent_sign_ins: vec![(secrets::token_hash(&ceremony.id), now, ceremony.expires_at)],
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
        let actor = Actor {
            id: "anonymous".to_owned(),
            role: "unauthenticated".to_owned(),
            auth: "passkey".to_owned(),
        };
        let entry = self.entry(
            &actor,
            None,
            AuditEvent::StaffSignInFailed(event::StaffSignInFailed::Passkey(
                event::PasskeySignInFailed {
                    method: Method::Passkey.to_string(),
                    reason: reason.to_owned(),
                    staff_id,
                },
            )),
        );
        if let Err(e) = self
            .store
            .commit(Change {
                audit: vec![entry],
                ..Change::default()
            })
            .await
        {
            tracing::error!(error = %e, "refused passkey sign-in not audited");
        }
    }
}
