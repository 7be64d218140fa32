//! Single sign-on for staff through an OpenID Connect provider (Authorization Code flow with
//! PKCE, state and nonce). This module holds the configuration, the relying party (discovery,
//! the per-attempt secrets, the code exchange and ID-token verification by the `openidconnect`
//! crate) and the service methods that map a verified identity to an active staff member and
//! audit every outcome. The console's routes live in `console::oidc`.
//!
//! An attempt's secrets (state, nonce, PKCE verifier) are not kept on the server: they travel
//! sealed (XChaCha20-Poly1305 under the server's sealing key) in the browser's own cookie, so
//! anonymous starts fill no table and cannot crowd out anyone's sign-in, and any replica can
//! finish the attempt. The server only remembers finished attempts until they would have expired
//! ([`Service::spend_sign_in_attempt`]), so each is used once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use deskgate_audit::{AuditEvent, event};
use deskgate_core::Staff;
use deskgate_store::{Actor, Change, StaffAccess, StoreError};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::secrets::Sealer;
use crate::service::Service;

mod http_client;
pub use http_client::{HttpClient, HttpError};

/// The console path the provider sends the browser back to.
pub const CALLBACK_PATH: &str = "/console/oidc/callback";
/// How long a sign-in attempt may take at the provider.
pub const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// The audit `method` of a sign-in through the provider.
pub const METHOD: &str = "oidc";
/// What a sealed attempt is bound to, so no other sealed value can pass for one.
const ATTEMPT_SEAL: &str = "deskgate/oidc_attempt";
/// Provider metadata and keys are fetched again after this long (key rotation).
const METADATA_TTL: Duration = Duration::from_secs(60 * 60);
/// The largest response read from the provider.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The `[oidc]` table: which provider staff sign in with and how a staff member is recognised.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; its `/.well-known/openid-configuration` is read on first use.
    pub issuer: String,
    pub client_id: String,
    /// Also read from `DESKGATE_OIDC__CLIENT_SECRET`. Never logged, never written back.
    #[serde(default, skip_serializing)]
    pub client_secret: String,
    /// The ID-token claim that names the staff member: `email` (only when `email_verified` is
    /// true), `sub` or `preferred_username`.
    #[serde(default)]
    pub claim: IdentityClaim,
    /// Scopes asked for besides `openid`; by default the one the claim needs (`email`, `profile`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Shown on the sign-in button: "Sign in with <provider_name>".
    #[serde(default = "default_provider_name")]
    pub provider_name: String,
}

fn default_provider_name() -> String {
    "single sign-on".to_owned()
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("claim", &self.claim)
            .field("scopes", &self.scopes)
            .field("provider_name", &self.provider_name)
            .finish()
    }
}

/// The ID-token claim naming the staff member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityClaim {
    #[default]
    Email,
    Sub,
    PreferredUsername,
}

impl IdentityClaim {
    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sub => "sub",
            Self::PreferredUsername => "preferred_username",
        }
    }
}

/// Why the `[oidc]` table cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("[oidc] {0}")]
pub struct OidcConfigError(String);

impl OidcConfig {
    /// Checks everything that can be checked without the provider.
    pub fn validate(&self) -> Result<(), OidcConfigError> {
        let bad = |m: &str| Err(OidcConfigError(m.to_owned()));
        let issuer = openidconnect::url::Url::parse(&self.issuer)
            .map_err(|e| OidcConfigError(format!("issuer is not a URL: {e}")))?;
        if !matches!(issuer.scheme(), "https" | "http") {
            return bad("issuer must be an https URL");
        }
        if self.client_id.trim().is_empty() {
            return bad("client_id is required");
        }
        if self.client_secret.is_empty() {
            return bad("client_secret is required (or DESKGATE_OIDC__CLIENT_SECRET)");
        }
        let name = &self.provider_name;
        if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control)
        {
            return bad("provider_name must be 1 to 64 printable characters");
        }
        for s in self.scopes.iter().flatten() {
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            {
                return bad("scopes must be single words");
            }
        }
        Ok(())
    }

    fn scopes(&self) -> Vec<String> {
        self.scopes.clone().unwrap_or_else(|| match self.claim {
            IdentityClaim::Email => vec!["email".to_owned()],
            IdentityClaim::PreferredUsername => vec!["profile".to_owned()],
            IdentityClaim::Sub => Vec::new(),
        })
    }
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// One sign-in attempt as sealed into the browser's cookie until the provider sends the browser
/// back: the state it must come back with, the nonce and the PKCE verifier, for ten minutes.
#[derive(Serialize, Deserialize)]
struct SealedAttempt {
    state: String,
    nonce: String,
    verifier: String,
    expires_at: DateTime<Utc>,
    /// Whom the sign-in is for; sealed, so a response cannot be taken from one to the other.
    #[serde(default)]
    audience: SignInFor,
}

/// Whom a sign-in through the provider is for: a staff member's console, or a subject's own
/// page (`/me`). Both come back to [`CALLBACK_PATH`], the one address the provider knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInFor {
    #[default]
    Console,
    OwnPage,
}

/// An attempt this browser started, opened from its cookie and matched to the response.
pub struct Attempt {
    pub audience: SignInFor,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    /// Hex SHA-256 of the state: what marks the attempt spent.
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// The relying party: the configuration, the provider's metadata once fetched, and the key that
/// seals attempts into browsers' cookies.
pub struct Sso {
    config: OidcConfig,
    redirect: RedirectUrl,
    http: HttpClient,
    provider: tokio::sync::Mutex<Option<(Instant, Arc<Client>)>>,
    sealer: Sealer,
}

/// A refused or failed sign-in: what the person is shown and what the audit entry says.
#[derive(Debug)]
pub struct SsoFailure {
    /// How the refusal is answered: its kind, and the sentence shown on the error page (never
    /// holds a secret); the code is always `sign_in_refused`. Boxed to keep results small.
    pub error: Box<AppError>,
    /// Short machine-readable reason for the audit entry.
    pub reason: &'static str,
    /// The identity the provider vouched for, when it got that far.
    pub identity: Option<String>,
}

impl SsoFailure {
    fn new(
        kind: fn(&'static str, String) -> AppError,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            error: Box::new(kind("sign_in_refused", message.into())),
            reason,
            identity: None,
        }
    }
}

/// An identity the provider vouched for in a verified ID token.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    /// The configured claim's value: what staff members are registered with.
    pub identity: String,
}

fn state_key(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Provider-sent text on an error page: short and printable.
fn tame(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

impl Sso {
    /// The relying party for `config`, sending browsers back to `public_url` + [`CALLBACK_PATH`],
    /// sealing attempts with `sealer`.
    pub fn new(
        config: OidcConfig,
        public_url: &str,
        sealer: Sealer,
    ) -> Result<Self, OidcConfigError> {
        config.validate()?;
        let redirect = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            public_url.trim_end_matches('/')
        ))
        .map_err(|e| OidcConfigError(format!("public_url does not make a callback URL: {e}")))?;
        let http = HttpClient::new()
            .map_err(|e| OidcConfigError(format!("no HTTP client for the provider: {e}")))?;
        Ok(Self {
            config,
            redirect,
            http,
            provider: tokio::sync::Mutex::new(None),
            sealer,
        })
    }

    /// The relying party `[oidc]` configures, if any. The table was validated when the service
    /// was built; should it still be unusable, the sign-in button is not offered.
    pub fn from_config(config: &crate::Config, sealer: &Sealer) -> Option<Arc<Self>> {
        let oidc = config.oidc.clone()?;
        match Self::new(oidc, &config.public_url, sealer.clone()) {
            Ok(sso) => Some(Arc::new(sso)),
            Err(e) => {
                tracing::error!(error = %e, "single sign-on is off");
                None
            }
        }
    }

    pub fn provider_name(&self) -> &str {
        &self.config.provider_name
    }

    /// The provider's client, discovered on first use and again once an hour; a provider that
    /// cannot be reached is a clear error, tried again on the next sign-in.
    async fn client(&self) -> Result<Arc<Client>, SsoFailure> {
        let mut cached = self.provider.lock().await;
        if let Some((at, client)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(client.clone());
        }
        let unreachable = |e: String| {
            tracing::warn!(issuer = %self.config.issuer, error = %e, "OpenID provider discovery failed");
            SsoFailure::new(
                AppError::upstream_failed,
                "provider_unavailable",
                format!(
                    "{} cannot be reached right now ({e}). Try again in a moment, or sign in with a token.",
                    self.config.provider_name
                ),
            )
        };
        let issuer =
            IssuerUrl::new(self.config.issuer.clone()).map_err(|e| unreachable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let client = Arc::new(
            CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(self.config.client_id.clone()),
                Some(ClientSecret::new(self.config.client_secret.clone())),
            )
            .set_redirect_uri(self.redirect.clone()),
        );
        *cached = Some((Instant::now(), client.clone()));
        Ok(client)
    }

    /// Starts an attempt: returns the provider URL to send the browser to and the sealed attempt,
    /// which the caller binds to the browser (a cookie) so only this browser can finish it.
    pub async fn begin(&self) -> Result<(String, String), SsoFailure> {
        self.begin_for(SignInFor::Console).await
    }

    /// [`Self::begin`] for `audience`.
    pub async fn begin_for(&self, audience: SignInFor) -> Result<(String, String), SsoFailure> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.config.scopes().into_iter().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        let sealed = serde_json::to_vec(&SealedAttempt {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            expires_at: Utc::now() + chrono::Duration::seconds(ATTEMPT_TTL.as_secs() as i64),
            audience,
        })
        .ok()
        .and_then(|plain| self.sealer.seal(ATTEMPT_SEAL, &plain).ok())
        .ok_or_else(|| SsoFailure::new(AppError::internal, "internal", "internal error"))?;
        Ok((url.to_string(), sealed))
    }

    /// Opens the attempt sealed in this browser's cookie: only when the state the response
    /// carries is the attempt's own (compared in constant time) and it has not expired. Whether
    /// it was used before is for [`Service::spend_sign_in_attempt`] to say.
    pub fn open_attempt(&self, state: &str, bound: Option<&str>) -> Result<Attempt, SsoFailure> {
        let refused = |reason, message: &str| {
            SsoFailure::new(AppError::malformed, reason, message.to_owned())
        };
        let no_attempt = || {
            refused(
                "no_attempt_cookie",
                "This browser did not start a sign-in, or it took longer than ten minutes. Start again.",
            )
        };
        let bound = bound.filter(|b| b.len() <= 4096).ok_or_else(no_attempt)?;
        let attempt: SealedAttempt = self
            .sealer
            .open(ATTEMPT_SEAL, bound)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(no_attempt)?;
        if state.is_empty() || !bool::from(state.as_bytes().ct_eq(attempt.state.as_bytes())) {
            return Err(refused(
                "state_mismatch",
                "The sign-in response does not belong to the sign-in this browser started. Start again.",
            ));
        }
        if attempt.expires_at <= Utc::now() {
            return Err(refused(
                "attempt_expired",
                "The sign-in took longer than ten minutes. Start again.",
            ));
        }
        Ok(Attempt {
            audience: attempt.audience,
            verifier: PkceCodeVerifier::new(attempt.verifier),
            nonce: Nonce::new(attempt.nonce),
            key: state_key(&attempt.state),
            expires_at: attempt.expires_at,
        })
    }

    /// The authorization code of a callback from the configured provider, or why there is none
    /// (another issuer, an error the provider reports, no code).
    fn callback_code(&self, callback: &Callback) -> Result<String, SsoFailure> {
        if let Some(iss) = &callback.iss
            && iss.trim_end_matches('/') != self.config.issuer.trim_end_matches('/')
        {
            return Err(SsoFailure::new(
                AppError::forbidden_as,
                "issuer_mismatch",
                "The sign-in response comes from another provider than the one configured.",
            ));
        }
        if let Some(error) = &callback.error {
            let description = callback
                .error_description
                .as_deref()
                .map(|d| format!(": {}", tame(d)))
                .unwrap_or_default();
            return Err(SsoFailure::new(
                AppError::forbidden_as,
                "provider_error",
                format!(
                    "{} did not sign you in ({}{description}).",
                    self.config.provider_name,
                    tame(error)
                ),
            ));
        }
        callback
            .code
            .clone()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| {
                SsoFailure::new(
                    AppError::malformed,
                    "no_code",
                    "The provider's response carries no authorization code.",
                )
            })
    }

    /// Finishes an opened (and spent) attempt: refuses a provider error, exchanges the code with
    /// the PKCE verifier and verifies the ID token (signature, issuer, audience, expiry, nonce).
    pub async fn finish(
        &self,
        callback: &Callback,
        pending: Attempt,
    ) -> Result<VerifiedIdentity, SsoFailure> {
        let code = self.callback_code(callback)?;
        let client = self.client().await?;
        let invalid = |reason, e: String| {
            tracing::warn!(reason, error = %e, "OpenID sign-in refused");
            SsoFailure::new(
                AppError::forbidden_as,
                reason,
                format!("{} did not vouch for you: {e}", self.config.provider_name),
            )
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| invalid("provider_misconfigured", e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| match &e {
                RequestTokenError::ServerResponse(r) => invalid(
                    "token_refused",
                    format!("the token request was refused ({})", tame(&r.to_string())),
                ),
                other => invalid("token_request_failed", error_chain(other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| invalid("no_id_token", "no ID token was returned".to_owned()))?;
        let claims = match id_token.claims(&client.id_token_verifier(), &pending.nonce) {
            Ok(claims) => claims,
            Err(e) => {
                // Perhaps the provider rotated its keys: read them again on the next attempt.
                *self.provider.lock().await = None;
                return Err(invalid(
                    "id_token_invalid",
                    format!("the ID token is not valid ({e})"),
                ));
            }
        };
        let identity = match self.config.claim {
            IdentityClaim::Sub => Some(claims.subject().to_string()),
            IdentityClaim::Email => {
                if claims.email_verified() != Some(true) {
                    return Err(invalid(
                        "email_unverified",
                        "the provider has not verified your email address".to_owned(),
                    ));
                }
                claims.email().map(|e| e.to_string())
            }
            IdentityClaim::PreferredUsername => claims.preferred_username().map(|u| u.to_string()),
        }
        .filter(|v| !v.trim().is_empty() && v.len() <= 320)
        .ok_or_else(|| {
            invalid(
                "claim_missing",
                format!("the ID token has no {} claim", self.config.claim.name()),
            )
        })?;
        Ok(VerifiedIdentity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            identity,
        })
    }
}

/// The provider's redirect back: a code and the state, or an error.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The issuer the provider says answered (RFC 9207), checked when present.
    pub iss: Option<String>,
}

/// An error with its causes, for an error page (the provider's errors name no secret).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    tame(&text)
}

fn unauthenticated(identity: Option<&str>) -> Actor {
    Actor {
        id: identity.unwrap_or("unknown").to_owned(),
        role: "unauthenticated".to_owned(),
        auth: METHOD.to_owned(),
    }
}

impl Service {
    /// Marks a sign-in attempt used, once: a second use of the same attempt (a replayed response
    /// with its cookie) is refused before the provider is asked anything.
    pub async fn spend_sign_in_attempt(&self, attempt: &Attempt) -> Result<(), SsoFailure> {
        self.store
            .commit(Change {
                spent_sign_ins: vec![(attempt.key.clone(), self.now(), attempt.expires_at)],
                ..Change::default()
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => SsoFailure::new(
                    AppError::malformed,
                    "state_unknown",
                    "This sign-in response was already used or is unknown. Start again.",
                ),
                other => {
                    tracing::error!(error = %other, "sign-in attempt not recorded; refused");
                    SsoFailure::new(
                        AppError::unavailable,
                        "store_unavailable",
                        "Deskgate cannot record the sign-in right now. Try again in a moment.",
                    )
                }
            })?;
        Ok(())
    }

    /// The active staff member a verified single sign-on identity belongs to. Sign-in succeeds
    /// only once `staff.sign_in` is in the audit log (fail closed); every refusal is audited as
    /// `staff.sign_in_failed`.
    pub async fn sso_sign_in(&self, who: &VerifiedIdentity) -> Result<Staff, SsoFailure> {
        let found = self
            .store
            .staff_by_sso_identity(&who.identity)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "staff lookup failed at sign-in");
                SsoFailure::new(
                    AppError::unavailable,
                    "store_unavailable",
                    "Deskgate cannot check staff members right now. Try again in a moment.",
                )
            })?;
        let refused = |reason, message: &str| SsoFailure {
            identity: Some(who.identity.clone()),
            ..SsoFailure::new(AppError::forbidden_as, reason, message.to_owned())
        };
        let staff = match found {
            None => {
                return Err(refused(
                    "unknown_identity",
                    "You signed in at the provider, but no Deskgate staff member is registered \
                     with that identity. Ask an administrator to register it.",
                ));
            }
            Some(s) if s.disabled_at.is_some() => {
                return Err(refused(
                    "staff_disabled",
                    "Your Deskgate staff access is disabled. Ask an administrator.",
                ));
            }
            Some(s) => s.staff,
        };
        let entry = self.entry(
            &Actor {
                id: staff.id.clone(),
                role: staff.role.to_string(),
                auth: METHOD.to_owned(),
            },
            None,
            AuditEvent::StaffSignIn(event::StaffSignIn {
                method: METHOD.to_owned(),
                staff_id: staff.id.clone(),
                issuer: who.issuer.clone(),
                provider_subject: who.subject.clone(),
            }),
        );
        self.store
            .commit(Change {
                audit: vec![entry],
                ..Change::default()
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "sign-in not audited; refused");
                SsoFailure::new(
                    AppError::unavailable,
                    "audit_unavailable",
                    "The sign-in could not be recorded, so it did not happen. Try again in a moment.",
                )
            })?;
        Ok(staff)
    }

    /// Audits a refused single sign-on attempt. Never fails the response: the refusal stands
    /// whether or not it could be recorded.
    pub async fn audit_sso_refusal(&self, failure: &SsoFailure) {
        let identity = failure.identity.as_deref();
        let staff_id = match identity {
            Some(i) => self
                .store
                .staff_by_sso_identity(i)
                .await
                .ok()
                .flatten()
                .map(|s| s.staff.id),
            None => None,
        };
        let entry = self.entry(
            &unauthenticated(identity),
            None,
            AuditEvent::StaffSignInFailed(event::StaffSignInFailed::Oidc(
                event::OidcSignInFailed {
                    method: METHOD.to_owned(),
                    reason: failure.reason.to_owned(),
                    identity: identity.map(str::to_owned),
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
            tracing::error!(error = %e, "refused sign-in not audited");
        }
    }

    /// Registers (or with `None` removes) the single sign-on identity of a staff member, audited.
    pub async fn set_staff_sso_identity(
        &self,
        staff_name: &str,
        identity: Option<&str>,
        by: &Actor,
    ) -> Result<(), AppError> {
        let identity = identity.map(str::trim).filter(|i| !i.is_empty());
        if let Some(i) = identity
            && (i.len() > 320 || i.chars().any(char::is_control))
        {
            return Err(AppError::invalid(
                "an SSO identity is at most 320 printable characters",
            ));
        }
        let staff = self.staff_named(staff_name).await?;
        self.store
            .commit(Change {
                staff_access: vec![StaffAccess::SsoIdentity {
                    staff_id: staff.id.clone(),
                    identity: identity.map(str::to_owned),
                }],
                audit: vec![self.entry(
                    by,
                    None,
                    AuditEvent::StaffSsoIdentitySet(event::StaffSsoIdentitySet {
                        staff_id: staff.id.clone(),
                        identity: identity.map(str::to_owned),
                    }),
                )],
                ..Change::default()
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => AppError::conflict("conflict", m),
                other => other.into(),
            })?;
        Ok(())
    }

    /// Disables a staff member (every token revoked, no sign-in by any method) or enables them
    /// again, audited.
    pub async fn set_staff_disabled(
        &self,
        staff_name: &str,
        disabled: bool,
        by: &Actor,
    ) -> Result<(), AppError> {
        let staff = self.staff_named(staff_name).await?;
        let named = event::StaffRef {
            staff_id: staff.id.clone(),
        };
        let (access, audited) = if disabled {
            (
                StaffAccess::Disable {
                    staff_id: staff.id.clone(),
                    at: self.now(),
                },
                AuditEvent::StaffDisabled(named),
            )
        } else {
            (
                StaffAccess::Enable {
                    staff_id: staff.id.clone(),
                },
                AuditEvent::StaffEnabled(named),
            )
        };
        self.store
            .commit(Change {
                staff_access: vec![access],
                audit: vec![self.entry(by, None, audited)],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    async fn staff_named(&self, name: &str) -> Result<Staff, AppError> {
        self.store
            .staff_by_name(name)
            .await?
            .ok_or_else(|| AppError::not_found("staff member"))
    }
}
