//! Handing a generated secret over along the plan's route, the same for every executor: a new
//! password or temporary access pass in a message to the trusted contact of record; a rotated
//! service credential sealed for one retrieval, through a link mailed to the owner who asked.
//! The agent sees none of them.

use chrono::{DateTime, Duration, Utc};
use deskgate_connectors::GeneratedSecret;
use deskgate_core::{Case, Contact, ContactKind, Subject};
use deskgate_store::{Credential, LinkToken};

use super::plan::{ExecutionPlan, SecretRoute, Step};
use crate::delivery::{Message, Secret};
use crate::error::{AppError, AppResult};
use crate::notices::channel_for;
use crate::secrets;
use crate::service::{SECRET_PICKUP, Service};

/// What handing a secret over adds to the record and sends after it.
#[derive(Debug, Default)]
pub(super) struct Handover {
    /// The message carrying the secret, or the retrieval link.
    pub message: Option<Message>,
    /// The sealed secret waiting for its retrieval.
    pub credential: Option<Credential>,
    /// The retrieval link, stored hashed.
    pub link: Option<LinkToken>,
}

impl Service {
    /// Hands `secret` over along `plan`'s route. The secret is dropped (and wiped) here.
    pub(super) fn hand_over(
        &self,
        case: &Case,
        plan: &ExecutionPlan,
        secret: Option<GeneratedSecret>,
        now: DateTime<Utc>,
    ) -> AppResult<Handover> {
        let Some(secret) = secret else {
            return Ok(Handover::default());
        };
        Ok(match (&plan.secret_to, &plan.step) {
            (SecretRoute::TrustedContact(to), Step::ResetFactors { pass_lifetime }) => Handover {
                message: Some(pass_message(case, to, &secret, *pass_lifetime)),
                // Whatever the pass enrols depends on the contact it went to.
                credential: Some(self.pass_provenance_record(&case.subject_id, to, now)),
                ..Handover::default()
            },
            (SecretRoute::TrustedContact(to), _) => Handover {
                message: Some(password_message(case, to, &secret)),
                ..Handover::default()
            },
            (SecretRoute::SealedPickup { owner, .. }, _) => {
                let (credential, link, message) = self.pickup(case, owner, secret.expose(), now)?;
                Handover {
                    message: Some(message),
                    credential: Some(credential),
                    link: Some(link),
                }
            }
            // No step generates a secret without a route for it; one would go nowhere.
            (SecretRoute::Nowhere, _) => Handover::default(),
        })
    }

    /// Seals a rotated service secret for one retrieval by `owner` and builds the link message;
    /// the secret never travels in a message.
    fn pickup(
        &self,
        case: &Case,
        owner: &Subject,
        secret: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(Credential, LinkToken, Message)> {
        let token = secrets::random_token();
        let expires_at = now + Duration::minutes(15);
        let sealed = self
            .sealer
            .seal(
                &format!("{}/{SECRET_PICKUP}", case.subject_id),
                secret.as_bytes(),
            )
            .map_err(|_| AppError::internal("seal_failed", "sealing failed"))?;
        let credential = Credential {
            subject_id: case.subject_id.clone(),
            kind: SECRET_PICKUP.to_owned(),
            hash: sealed,
            created_at: now,
            expires_at: Some(expires_at),
            used_at: None,
        };
        let email = owner
            .contact(ContactKind::Email)
            .map(|c| c.value.clone())
            .unwrap_or_default();
        let url = format!(
            "{}/retrieve/{token}",
            self.config.public_url.trim_end_matches('/')
        );
        let link = LinkToken {
            token_hash: secrets::token_hash(&token),
            kind: "secret_retrieval".to_owned(),
            case_id: case.id.clone(),
            verification_id: String::new(),
            respondent: owner.id.clone(),
            created_at: now,
            expires_at,
            used_at: None,
        };
        let message = Message {
            to: email,
            channel: "email".to_owned(),
            kind: "secret_retrieval_link".to_owned(),
            subject_id: owner.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "The credential of {} was rotated (case {}). Retrieve the new secret once, \
                 within 15 minutes, at {url} and put it straight into the secret store.",
                case.subject_id, case.id
            ),
            secret: Some(Secret::Link(url)),
        };
        Ok((credential, link, message))
    }
}

/// The temporary password's message to the trusted contact.
fn password_message(case: &Case, to: &Contact, secret: &GeneratedSecret) -> Message {
    let password = secret.expose();
    secret_message(
        case,
        to,
        "temporary_password",
        format!(
            "Your password was reset by the help desk (case {}). Your temporary password is \
             {password}. You must change it at next sign-in.",
            case.id
        ),
        Secret::Password(password.to_owned()),
    )
}

/// The temporary access pass's message to the trusted contact.
fn pass_message(
    case: &Case,
    to: &Contact,
    secret: &GeneratedSecret,
    lifetime: Duration,
) -> Message {
    let pass = secret.expose();
    secret_message(
        case,
        to,
        "temporary_access_pass",
        format!(
            "Your sign-in factors were reset by the help desk (case {}). Use this single-use \
             temporary access pass within {} minutes to enrol a new passkey: {pass}",
            case.id,
            lifetime.num_minutes()
        ),
        Secret::Pass(pass.to_owned()),
    )
}

fn secret_message(case: &Case, to: &Contact, kind: &str, body: String, secret: Secret) -> Message {
    Message {
        to: to.value.clone(),
        channel: channel_for(to.kind).to_owned(),
        kind: kind.to_owned(),
        subject_id: case.subject_id.clone(),
        case_id: Some(case.id.clone()),
        body,
        secret: Some(secret),
    }
}
