//! The built-in directory as a connector: performs a granted recovery action on a subject held in
//! Deskgate's own store. The result is data (new subject state, credential hashes, messages) that
//! the service commits before anything is delivered.

use chrono::{DateTime, Duration, Utc};
use deskgate_core::{Action, Case, Contact, ContactKind, Subject, SubjectStatus};
use deskgate_store::Credential;
use serde_json::json;

use crate::delivery::{Message, Secret};
use crate::secrets;

/// What executing one grant changes.
#[derive(Debug)]
pub struct Execution {
    pub subject: Subject,
    pub credentials: Vec<Credential>,
    /// The message carrying the new secret (password, pass), if the action makes one.
    pub secret_message: Option<Message>,
    /// A rotated service secret, to be handed over once through a retrieval link, never by
    /// message: (the secret, the owner who receives the link).
    pub pickup: Option<(String, Subject)>,
    /// Audit details: what changed, never the secret.
    pub details: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutionError {
    #[error("the subject has no trusted contact of record to receive {0}")]
    NoTrustedContact(&'static str),
    #[error("hashing the new secret failed")]
    Hashing,
}

fn channel_for(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Phone => "sms",
        ContactKind::Email => "email",
    }
}

/// The same notice, carrying no secret, to every contact of record of `subject`.
pub fn notice_to_every_contact(subject: &Subject, kind: &str, body: &str) -> Vec<Message> {
    subject
        .contacts
        .iter()
        .map(|c| Message {
            to: c.value.clone(),
            channel: channel_for(c.kind).to_owned(),
            kind: kind.to_owned(),
            subject_id: subject.id.clone(),
            case_id: None,
            body: body.to_owned(),
            secret: None,
        })
        .collect()
}

/// Performs `case.action` on `subject`. `owner` is the service account owner who receives a
/// rotated service credential.
pub fn execute(
    case: &Case,
    subject: &Subject,
    owner: Option<&Subject>,
    tap_ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Execution, ExecutionError> {
    let freshness = case.requirements.freshness();
    let mut next = subject.clone();
    let mut credentials = Vec::new();
    let mut secret_message = None;
    let mut pickup = None;
    let secret_msg = |to: &Contact, kind: &str, body: String, secret: Secret, sid: &str| Message {
        to: to.value.clone(),
        channel: channel_for(to.kind).to_owned(),
        kind: kind.to_owned(),
        subject_id: sid.to_owned(),
        case_id: Some(case.id.clone()),
        body,
        secret: Some(secret),
    };
    let details = match case.action {
        Action::PasswordReset => {
            let dest = subject
                .secret_destination(freshness, now)
                .ok_or(ExecutionError::NoTrustedContact("a temporary password"))?;
            let password = secrets::generate_password();
            let hash = secrets::hash_password(&password).map_err(|_| ExecutionError::Hashing)?;
            credentials.push(Credential {
                subject_id: subject.id.clone(),
                kind: "password".to_owned(),
                hash,
                created_at: now,
                expires_at: None,
                used_at: None,
            });
            secret_message = Some(secret_msg(
                dest,
                "temporary_password",
                format!(
                    "Your password was reset by the help desk (case {}). Your temporary password \
                     is {password}. You must change it at next sign-in.",
                    case.id
                ),
                Secret::Password(password.clone()),
                &subject.id,
            ));
            json!({ "credential": "password", "must_change": true, "delivered_to": dest.masked() })
        }
        Action::MfaReset | Action::FactorRebind => {
            let dest = subject
                .secret_destination(freshness, now)
                .ok_or(ExecutionError::NoTrustedContact("a temporary access pass"))?;
            let removed: Vec<String> = subject
                .authenticators
                .iter()
                .map(|a| format!("{}:{}", a.kind, a.id))
                .collect();
            next.authenticators.clear();
            let pass = secrets::random_token();
            credentials.push(Credential {
                subject_id: subject.id.clone(),
                kind: "temporary_access_pass".to_owned(),
                hash: secrets::token_hash(&pass),
                created_at: now,
                expires_at: Some(now + tap_ttl),
                used_at: None,
            });
            secret_message = Some(secret_msg(
                dest,
                "temporary_access_pass",
                format!(
                    "Your sign-in factors were reset by the help desk (case {}). Use this \
                     single-use temporary access pass within {} minutes to enrol a new passkey: {pass}",
                    case.id,
                    tap_ttl.num_minutes()
                ),
                Secret::Pass(pass.clone()),
                &subject.id,
            ));
            json!({
                "removed_authenticators": removed,
                "temporary_access_pass_expires_at": (now + tap_ttl).to_rfc3339(),
                "delivered_to": dest.masked(),
            })
        }
        Action::AccountUnlock => {
            let was_locked = subject.status == SubjectStatus::Locked;
            if was_locked {
                next.status = SubjectStatus::Active;
            }
            json!({ "was_locked": was_locked, "status": next.status })
        }
        Action::EmailChange | Action::PhoneChange => {
            let kind = if case.action == Action::EmailChange {
                ContactKind::Email
            } else {
                ContactKind::Phone
            };
            let value = case.new_contact.clone().unwrap_or_default();
            let old = subject.contact(kind).map(Contact::masked);
            next.contacts.retain(|c| c.kind != kind);
            // Unverified until the new contact proves itself; the freshness window keeps it from
            // counting as evidence in the meantime.
            next.contacts.push(Contact {
                kind,
                value,
                verified_at: None,
                changed_at: now,
            });
            let new_masked = next.contact(kind).map(Contact::masked);
            json!({ "contact": kind, "old": old, "new": new_masked })
        }
        Action::ServiceCredentialRotate => {
            let owner = owner.ok_or(ExecutionError::NoTrustedContact("a service credential"))?;
            let dest = owner
                .service_secret_destination(freshness, now)
                .ok_or(ExecutionError::NoTrustedContact("a service credential"))?;
            let secret = secrets::random_token();
            pickup = Some((secret.clone(), owner.clone()));
            credentials.push(Credential {
                subject_id: subject.id.clone(),
                kind: "service_secret".to_owned(),
                hash: secrets::token_hash(&secret),
                created_at: now,
                expires_at: None,
                used_at: None,
            });
            json!({ "credential": "service_secret", "delivered_to_owner": owner.id, "delivered_to": dest.masked() })
        }
    };
    Ok(Execution {
        subject: next,
        credentials,
        secret_message,
        pickup,
        details,
    })
}

/// Notices to every contact of record of the subject (as it was before the change, so a
/// redirected contact cannot hide the change) and to the manager.
pub fn notices(
    case: &Case,
    before: &Subject,
    after: &Subject,
    manager: Option<&Subject>,
    not_me_url: &str,
    now: DateTime<Utc>,
) -> Vec<Message> {
    let mut contacts: Vec<&Contact> = before.contacts.iter().collect();
    for c in &after.contacts {
        if !contacts
            .iter()
            .any(|k| k.kind == c.kind && k.value == c.value)
        {
            contacts.push(c);
        }
    }
    let body = format!(
        "Deskgate performed {} on the account {} at {} (case {}). If this was not you, open \
         {not_me_url} : the account is locked at once and the security team is alerted.",
        case.action,
        before.display_name,
        now.format("%Y-%m-%d %H:%M UTC"),
        case.id
    );
    let mut out: Vec<Message> = contacts
        .into_iter()
        .map(|c| Message {
            to: c.value.clone(),
            channel: channel_for(c.kind).to_owned(),
            kind: "recovery_notice".to_owned(),
            subject_id: before.id.clone(),
            case_id: Some(case.id.clone()),
            body: body.clone(),
            secret: Some(Secret::Link(not_me_url.to_owned())),
        })
        .collect();
    if let Some(m) = manager.and_then(|m| m.contact(ContactKind::Email).map(|c| (m, c))) {
        out.push(Message {
            to: m.1.value.clone(),
            channel: "email".to_owned(),
            kind: "recovery_notice".to_owned(),
            subject_id: m.0.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!("As manager of {}: {body}", before.display_name),
            secret: Some(Secret::Link(not_me_url.to_owned())),
        });
    }
    out
}
