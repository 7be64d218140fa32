//! The built-in directory as an executor: the subject lives in Deskgate's own store, so carrying
//! out a plan is pure. The result is data (the subject afterwards, credential hashes, the secret)
//! that the pipeline commits before anything is delivered.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use deskgate_audit::event::{
    ContactChangedResult, ExecutionResult, FactorsRemovedResult, PasswordResetResult,
    ServiceCredentialResult, UnlockResult,
};
use deskgate_connectors::GeneratedSecret;
use deskgate_core::{Action, Contact, ContactKind, Subject, SubjectStatus};
use deskgate_store::Credential;

use super::executor::{Executor, Failure, Performed};
use super::plan::{ExecutionPlan, SecretRoute, Step};
use crate::secrets;

/// Deskgate's own directory: every action, performed on the store.
pub(crate) struct BuiltinDirectory;

#[async_trait]
impl Executor for BuiltinDirectory {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn performs(&self, _action: Action) -> bool {
        true
    }

    fn acts_outside(&self) -> bool {
        false
    }

    async fn perform(
        &self,
        plan: &ExecutionPlan,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<Performed, Failure> {
        perform(plan, subject, now)
    }
}

/// Carries out `plan` on `subject`, held in the store.
fn perform(
    plan: &ExecutionPlan,
    subject: &Subject,
    now: DateTime<Utc>,
) -> Result<Performed, Failure> {
    let mut next = subject.clone();
    let (credentials, secret, result) = match &plan.step {
        Step::ResetPassword => {
            let password = secrets::generate_password();
            let hash = secrets::hash_password(&password)
                .map_err(|_| Failure::Refused("hashing the new secret failed"))?;
            let result = ExecutionResult::PasswordReset(PasswordResetResult {
                credential: "password".to_owned(),
                must_change: true,
                delivered_to: delivered_to(plan),
            });
            let credential = credential(subject, "password", hash, None, now);
            (vec![credential], Some(password), result)
        }
        Step::ResetFactors { pass_lifetime } => {
            return Ok(reset_factors(plan, subject, *pass_lifetime, now));
        }
        Step::Unlock => {
            let was_locked = subject.status == SubjectStatus::Locked;
            if was_locked {
                next.status = SubjectStatus::Active;
            }
            let result = ExecutionResult::Unlock(UnlockResult {
                was_locked,
                status: next.status.to_string(),
            });
            (Vec::new(), None, result)
        }
        Step::ChangeContact { kind, value } => {
            // The built-in directory keeps one contact of each kind: the new one replaces them.
            next.contacts.retain(|c| c.kind != *kind);
            next.contacts.push(unverified(*kind, value, now));
            (Vec::new(), None, contact_changed(subject, &next, *kind))
        }
        Step::RotateServiceCredential => {
            let secret = secrets::random_token();
            let (owner, to) = match &plan.secret_to {
                SecretRoute::SealedPickup { owner, to } => (owner.id.clone(), Some(to.masked())),
                _ => (String::new(), None),
            };
            let result = ExecutionResult::ServiceCredentialRotated(ServiceCredentialResult {
                credential: "service_secret".to_owned(),
                delivered_to_owner: owner,
                delivered_to: to,
            });
            let hash = secrets::token_hash(&secret);
            let credential = credential(subject, "service_secret", hash, None, now);
            (vec![credential], Some(secret), result)
        }
    };
    Ok(Performed {
        subject: next,
        credentials,
        secret: secret.map(GeneratedSecret::from_backend),
        result,
        remote: None,
    })
}

/// Removes every authenticator enrolled in Deskgate's store and issues a temporary access pass
/// of `lifetime` to enrol a new one. Factors are Deskgate's whatever the directory, so a
/// connector execution resets them this way too.
pub(super) fn reset_factors(
    plan: &ExecutionPlan,
    subject: &Subject,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Performed {
    let mut next = subject.clone();
    let removed = subject
        .authenticators
        .iter()
        .map(|a| format!("{}:{}", a.kind, a.id))
        .collect();
    next.authenticators.clear();
    let pass = secrets::random_token();
    let expires_at = now + lifetime;
    let hash = secrets::token_hash(&pass);
    let credential = credential(
        subject,
        "temporary_access_pass",
        hash,
        Some(expires_at),
        now,
    );
    Performed {
        subject: next,
        credentials: vec![credential],
        secret: Some(GeneratedSecret::from_backend(pass)),
        result: ExecutionResult::FactorsRemoved(FactorsRemovedResult {
            removed_authenticators: removed,
            temporary_access_pass_expires_at: expires_at.to_rfc3339(),
            delivered_to: delivered_to(plan),
        }),
        remote: None,
    }
}

/// The trusted contact a secret goes to, masked.
pub(super) fn delivered_to(plan: &ExecutionPlan) -> String {
    match &plan.secret_to {
        SecretRoute::TrustedContact(to) | SecretRoute::SealedPickup { to, .. } => to.masked(),
        SecretRoute::Nowhere => String::new(),
    }
}

/// A new contact of record, unverified until it proves itself; the freshness window keeps it
/// from counting as evidence in the meantime.
pub(super) fn unverified(kind: ContactKind, value: &str, now: DateTime<Utc>) -> Contact {
    Contact {
        kind,
        value: value.to_owned(),
        verified_at: None,
        changed_at: now,
    }
}

/// The record of a contact change: the old and new contact of `kind`, masked.
pub(super) fn contact_changed(
    before: &Subject,
    after: &Subject,
    kind: ContactKind,
) -> ExecutionResult {
    ExecutionResult::ContactChanged(ContactChangedResult {
        contact: kind.to_string(),
        old: before.contact(kind).map(Contact::masked),
        new: after.contact(kind).map(Contact::masked),
    })
}

fn credential(
    subject: &Subject,
    kind: &str,
    hash: String,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Credential {
    Credential {
        subject_id: subject.id.clone(),
        kind: kind.to_owned(),
        hash,
        created_at: now,
        expires_at,
        used_at: None,
    }
}
