//! Signing in to the own page through the organisation's OpenID provider, with the staff single
//! sign-on machinery ([`crate::sso`]): the provider's verified identity (the configured claim)
//! names the subject by id or email of record. Such a session sees the account and can report
//! "this was not me"; it cannot add, replace or remove a way to sign in (a passkey can), because
//! the provider session is exactly what a talked-into reset hands an attacker.

use deskgate_audit::{AuditEvent, event};
use deskgate_store::Change;

use super::{AppResult, MySignIn, may_sign_in, session_cookie, subject_actor};
use crate::service::Service;
use crate::sso::{METHOD, VerifiedIdentity};

impl Service {
    /// Opens an own-page session for the subject the provider vouched for, replacing any
    /// earlier one; refused (and audited) when no active subject has that identity.
    pub async fn my_sign_in_through_provider(&self, who: &VerifiedIdentity) -> AppResult<MySignIn> {
        let subject = match self.subject_named(&who.identity).await? {
            Some(subject) if may_sign_in(&subject) => subject,
            found => {
                let reason = if found.is_some() {
                    "account_on_hold"
                } else {
                    "unknown_identity"
                };
                self.audit_sign_in_refusal(AuditEvent::SubjectSignInFailed(
                    event::SubjectSignInFailed {
                        method: METHOD.to_owned(),
                        reason: reason.to_owned(),
                        subject_id: found.map(|s| s.id),
                    },
                ))
                .await;
                return Ok(MySignIn::Refused { reason });
            }
        };
        let now = self.now();
        let token = crate::secrets::random_token();
        let credential = self.session_credential(&subject.id, &token, None, now)?;
        self.store
            .commit(Change {
                credentials: vec![credential],
                audit: vec![self.entry(
                    &subject_actor(&subject.id, METHOD),
                    None,
                    AuditEvent::SubjectSignedInWithProvider(event::SubjectSignedInWithProvider {
                        subject_id: subject.id.clone(),
                        issuer: who.issuer.clone(),
                        provider_subject: who.subject.clone(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(MySignIn::SignedIn {
            cookie: session_cookie(&subject.id, &token),
        })
    }
}
