//! Username-first passkey sign-in without an oracle, shared by staff (the console) and subjects
//! (their own page). Every name gets an answer of the same shape and size: a person with passkeys
//! gets a real challenge; any other name a decoy whose credential ids are derived from the name
//! with a server secret (the same ones each time) and that no assertion can pass, so the answer
//! tells neither who exists nor who has passkeys. Nothing is stored between the two halves: the
//! ceremony is sealed (bound to its realm) and held by the browser, so one browser's start never
//! replaces another's; the ceremony's random id is spent by the sign-in that uses it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use webauthn_rs::DEFAULT_AUTHENTICATOR_TIMEOUT;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, Url};

use crate::error::AppError;
use crate::passkeys::StoredPasskey;
use crate::secrets;
use crate::service::Service;

type AppResult<T> = Result<T, AppError>;

/// How long the browser has between asking for the challenge and answering it.
const CEREMONY_MINUTES: i64 = 5;
/// Sealed ceremonies are padded to this many bytes (or a multiple, for a state that does not
/// fit), so their size tells neither a real challenge from a decoy nor how many passkeys allow it.
const CEREMONY_SIZE: usize = 16 * 1024;
/// The largest ceremony a browser may send back.
pub(crate) const MAX_CEREMONY_CHARS: usize = 64 * 1024;

/// Whose sign-in: each realm seals its ceremonies and derives its decoys under its own label, so
/// a ceremony made for one never opens in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Realm {
    /// A staff member signing in to the console with a console passkey.
    Staff,
    /// A subject signing in to their own page with one of their enrolled passkeys.
    Subject,
}

impl Realm {
    fn seal(self) -> &'static str {
        match self {
            Self::Staff => "deskgate/staff_passkey_sign_in",
            Self::Subject => "deskgate/subject_passkey_sign_in",
        }
    }

    fn decoys(self) -> &'static str {
        match self {
            Self::Staff => "deskgate/staff_passkey_decoys",
            Self::Subject => "deskgate/subject_passkey_decoys",
        }
    }
}

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

/// An opened ceremony with a real challenge.
pub(crate) struct OpenCeremony {
    pub(crate) state: PasskeyAuthentication,
    /// What a commit spends so the ceremony signs in once: (hash of its id, now, its expiry).
    pub(crate) spend: (String, DateTime<Utc>, DateTime<Utc>),
}

fn internal(why: &str) -> AppError {
    AppError::internal("internal", format!("passkey sign-in: {why}"))
}

impl Service {
    /// The challenge for signing in as `name` in `realm` against `keys` (the person's passkeys;
    /// none for an unknown name), with the sealed ceremony the browser sends back.
    pub(crate) fn sign_in_challenge(
        &self,
        realm: Realm,
        name: &str,
        keys: Vec<StoredPasskey>,
    ) -> AppResult<Value> {
        let (mut options, state) = if keys.is_empty() {
            let ids = self.decoy_credential_ids(realm, name);
            (self.decoy_options(ids)?, None)
        } else {
            let passkeys: Vec<Passkey> = keys.into_iter().map(|p| p.passkey).collect();
            let (options, state) = self
                .webauthn()?
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
        let ceremony = self.seal_ceremony(
            realm,
            &SignInCeremony {
                name: name.to_owned(),
                state,
                id: secrets::random_token(),
                expires_at: self.now() + Duration::minutes(CEREMONY_MINUTES),
            },
        )?;
        Ok(json!({ "ceremony": ceremony, "options": options }))
    }

    /// Opens the ceremony the browser sent back for `name` in `realm`: answers its challenge, or
    /// a short reason for the audit log (never shown: every refusal looks alike).
    pub(crate) fn open_sign_in_ceremony(
        &self,
        realm: Realm,
        name: &str,
        token: &str,
    ) -> AppResult<Result<OpenCeremony, &'static str>> {
        if token.len() > MAX_CEREMONY_CHARS {
            return Ok(Err("malformed"));
        }
        let Some(ceremony) = self
            .sealer
            .open(realm.seal(), token)
            .ok()
            .and_then(|plain| serde_json::from_slice::<SignInCeremony>(&plain).ok())
        else {
            return Ok(Err("no_ceremony"));
        };
        let now = self.now();
        if ceremony.expires_at <= now {
            return Ok(Err("ceremony_expired"));
        }
        if ceremony.name != name {
            return Ok(Err("ceremony_for_another_name"));
        }
        let Some(state) = ceremony.state else {
            return Ok(Err("no_passkey"));
        };
        let state = serde_json::from_value(state).map_err(|_| internal("unreadable ceremony"))?;
        Ok(Ok(OpenCeremony {
            state,
            spend: (secrets::token_hash(&ceremony.id), now, ceremony.expires_at),
        }))
    }

    /// Audits one refused passkey sign-in (staff or subject) by the anonymous caller; a log that
    /// cannot take it is logged, and the refusal stands either way.
    pub(crate) async fn audit_sign_in_refusal(&self, event: deskgate_audit::AuditEvent) {
        let actor = deskgate_store::Actor {
            id: "anonymous".to_owned(),
            role: "unauthenticated".to_owned(),
            auth: "passkey".to_owned(),
        };
        let entry = self.entry(&actor, None, event);
        if let Err(e) = self
            .store
            .commit(deskgate_store::Change {
                audit: vec![entry],
                ..deskgate_store::Change::default()
            })
            .await
        {
            tracing::error!(error = %e, "refused passkey sign-in not audited");
        }
    }

    /// Credential ids for a name without passkeys: derived from the name with the server's code
    /// key, so the same name always shows the same ones, in the numbers (mostly one, sometimes
    /// two or three) and the lengths real authenticators have.
    fn decoy_credential_ids(&self, realm: Realm, name: &str) -> Vec<Vec<u8>> {
        /// Credential id lengths: Android, Apple, password managers, Windows Hello, YubiKey.
        const LENGTHS: [usize; 5] = [65, 20, 16, 32, 64];
        let derive = |label: &str| {
            hex::decode(self.codes.hash(realm.decoys(), &format!("{label}\0{name}")))
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

    /// Seals a ceremony for `realm`, padded to [`CEREMONY_SIZE`].
    fn seal_ceremony(&self, realm: Realm, ceremony: &SignInCeremony) -> AppResult<String> {
        let mut plain = serde_json::to_vec(ceremony).map_err(|_| internal("unsealable"))?;
        let target = plain.len().div_ceil(CEREMONY_SIZE).max(1) * CEREMONY_SIZE;
        // JSON ignores trailing whitespace.
        plain.resize(target, b' ');
        self.sealer
            .seal(realm.seal(), &plain)
            .map_err(|_| internal("unsealable"))
    }
}
