//! Staff members' API tokens: console sessions, integration tokens, listing and revoking them.

use super::*;

impl Service {
    /// Resolves a bearer token to its staff member.
    pub async fn authenticate(&self, token: &str) -> AppResult<Staff> {
        if token.is_empty() || token.len() > 256 {
            return Err(AppError::unauthenticated());
        }
        self.store
            .staff_for_token(&secrets::token_hash(token), self.now())
            .await?
            .ok_or_else(AppError::unauthenticated)
    }

    /// A console session token: like an API token, but it expires after `hours` and is revoked
    /// at sign-out.
    pub async fn create_session_token(&self, staff_name: &str, hours: i64) -> AppResult<String> {
        let token = self.create_token(staff_name, "console").await?;
        self.store
            .expire_token_at(
                &secrets::token_hash(&token),
                self.now() + Duration::hours(hours),
            )
            .await?;
        Ok(token)
    }

    /// Revokes every token of a staff member (offboarding, a lost laptop), audited.
    pub async fn revoke_staff_tokens(&self, staff_name: &str, by: &Actor) -> AppResult<u64> {
        let staff = self
            .store
            .staff_by_name(staff_name)
            .await?
            .ok_or_else(|| AppError::not_found("staff member"))?;
        let now = self.now();
        let revoked = self.store.revoke_staff_tokens(&staff.id, now).await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    by,
                    None,
                    AuditEvent::StaffTokensRevoked(event::StaffTokensRevoked {
                        staff_id: staff.id.clone(),
                        revoked,
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(revoked)
    }

    /// Revokes the token presented (console sign-out); an unknown token changes nothing.
    pub async fn revoke_token(&self, token: &str) -> AppResult<()> {
        if token.is_empty() || token.len() > 256 {
            return Ok(());
        }
        self.store
            .revoke_token(&secrets::token_hash(token), self.now())
            .await?;
        Ok(())
    }

    /// Makes a new API token for a staff member that expires after the configured
    /// `api_token_days`; only its hash is stored.
    pub async fn create_token(&self, staff_name: &str, label: &str) -> AppResult<String> {
        self.create_token_for_days(staff_name, label, self.config.api_token_days)
            .await
    }

    /// Makes a new API token that expires after `days` (1 to 366): integration tokens are
    /// rotated, never kept forever.
    pub async fn create_token_for_days(
        &self,
        staff_name: &str,
        label: &str,
        days: i64,
    ) -> AppResult<String> {
        if !(1..=366).contains(&days) {
            return Err(AppError::invalid(
                "a token lives between 1 and 366 days; rotate it instead of keeping it",
            ));
        }
        if label.is_empty() || label.len() > 64 || label.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "the label must be 1 to 64 printable characters",
            ));
        }
        let staff = self
            .store
            .staff_by_name(staff_name)
            .await?
            .ok_or_else(|| AppError::not_found("staff member"))?;
        let token = secrets::random_token();
        let hash = secrets::token_hash(&token);
        let now = self.now();
        let expires_at = now + Duration::days(days);
        self.store
            .add_api_token(&hash, &staff.id, label, now)
            .await?;
        self.store.expire_token_at(&hash, expires_at).await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    &system_actor(),
                    None,
                    AuditEvent::StaffTokenCreated(event::StaffTokenCreated {
                        staff_id: staff.id.clone(),
                        label: label.to_owned(),
                        token_id: hash[..12].to_owned(),
                        expires_at,
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(token)
    }

    /// Every token issued, with its state at `now`; a token is named by the first 12 hex digits
    /// of its hash, which cannot be turned back into the token.
    pub async fn list_tokens(&self, staff_name: Option<&str>) -> AppResult<Vec<Value>> {
        let staff = match staff_name {
            Some(name) => Some(
                self.store
                    .staff_by_name(name)
                    .await?
                    .ok_or_else(|| AppError::not_found("staff member"))?,
            ),
            None => None,
        };
        let now = self.now();
        Ok(self
            .store
            .list_api_tokens()
            .await?
            .into_iter()
            .filter(|t| staff.as_ref().is_none_or(|s| s.id == t.staff_id))
            .map(|t| {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|at| at <= now) {
                    "expired"
                } else {
                    "live"
                };
                json!({
                    "id": &t.token_hash[..12.min(t.token_hash.len())],
                    "staff_id": t.staff_id, "label": t.label, "state": state,
                    "created_at": t.created_at, "expires_at": t.expires_at,
                    "revoked_at": t.revoked_at,
                })
            })
            .collect())
    }

    /// Revokes the one token whose id (a prefix of its hash, at least 8 hex digits) matches.
    pub async fn revoke_token_by_id(&self, id: &str, by: &Actor) -> AppResult<()> {
        if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::invalid(
                "a token id is at least 8 hex digits, as `admin token list` prints it",
            ));
        }
        let id = id.to_ascii_lowercase();
        let matches: Vec<_> = self
            .store
            .list_api_tokens()
            .await?
            .into_iter()
            .filter(|t| t.token_hash.starts_with(&id))
            .collect();
        let token = match matches.as_slice() {
            [one] => one,
            [] => return Err(AppError::not_found("token")),
            _ => {
                return Err(AppError::invalid(
                    "that id matches several tokens; give more digits",
                ));
            }
        };
        self.store
            .revoke_token(&token.token_hash, self.now())
            .await?;
        self.store
            .commit(Change {
                audit: vec![self.entry(
                    by,
                    None,
                    AuditEvent::StaffTokenRevoked(event::StaffTokenRevoked {
                        staff_id: token.staff_id.clone(),
                        token_id: token.token_hash[..12].to_owned(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }
}
