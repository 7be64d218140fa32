//! The plan of one execution, settled from the case before its grant is consumed: what happens
//! and where any secret it generates goes. Pure: the caller loads the subject and, for a service
//! credential, the owner who asked; nothing here reads the store, the clock or a directory.

use chrono::{DateTime, Duration, Utc};
use deskgate_connectors::Operation;
use deskgate_core::{Action, Case, Contact, Subject};

/// What one execution does, and where its secret goes. A case that cannot be planned (the secret
/// would have nowhere safe to go) is refused with its grant intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionPlan {
    /// What happens.
    pub step: Step,
    /// Where the secret the step generates goes.
    pub secret_to: SecretRoute,
}

/// What happens to the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A generated password the subject must change at next sign-in.
    ResetPassword,
    /// Every enrolled authenticator removed (they live in Deskgate's store, whatever the
    /// directory) and a temporary access pass of `pass_lifetime` issued to enrol a new one.
    ResetFactors { pass_lifetime: Duration },
    /// The lockout cleared.
    Unlock,
    /// The contact of record of `kind` replaced with `value`, unverified until it proves itself.
    ChangeContact {
        kind: deskgate_core::ContactKind,
        value: String,
    },
    /// A non-human identity's credential replaced with a generated one.
    RotateServiceCredential,
}

/// Where a generated secret goes. Never the agent, never a message the agent can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRoute {
    /// In a message to the subject's trusted contact of record (email first, else phone).
    TrustedContact(Contact),
    /// Sealed for a single retrieval, through a link mailed to the verified owner who asked, at
    /// `to`, their trusted email of record. The secret itself never travels in a message.
    SealedPickup { owner: Box<Subject>, to: Contact },
    /// The step generates no secret.
    Nowhere,
}

/// Why a case cannot be carried out as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanRefusal {
    /// The generated secret (`what`) would have nowhere safe to go.
    #[error("the subject has no trusted contact of record to receive {0}")]
    NoTrustedContact(&'static str),
    /// A contact change whose case names no new contact (the core refuses to open one).
    #[error("the case holds no new contact")]
    NoNewContact,
}

impl ExecutionPlan {
    /// Plans `case.action` on `subject` at `now`. `requester` is the subject the case's requester
    /// names (loaded by the caller); it receives a rotated service credential only when it is an
    /// owner of the non-human subject, and only at its trusted email of record.
    ///
    /// # Errors
    /// [`PlanRefusal`] when the secret would have nowhere safe to go.
    pub fn for_case(
        case: &Case,
        subject: &Subject,
        requester: Option<&Subject>,
        now: DateTime<Utc>,
    ) -> Result<Self, PlanRefusal> {
        let freshness = case.requirements.freshness();
        let trusted = |what| {
            subject
                .secret_destination(freshness, now)
                .map(|to| SecretRoute::TrustedContact(to.clone()))
                .ok_or(PlanRefusal::NoTrustedContact(what))
        };
        let (step, secret_to) = match case.action {
            Action::PasswordReset => (Step::ResetPassword, trusted("a temporary password")?),
            Action::MfaReset | Action::FactorRebind => (
                Step::ResetFactors {
                    pass_lifetime: Duration::minutes(case.requirements.tap_minutes),
                },
                trusted("a temporary access pass")?,
            ),
            Action::AccountUnlock => (Step::Unlock, SecretRoute::Nowhere),
            Action::EmailChange | Action::PhoneChange => {
                let kind = case
                    .action
                    .changed_contact_kind()
                    .unwrap_or(deskgate_core::ContactKind::Email);
                let value = case.new_contact.clone().ok_or(PlanRefusal::NoNewContact)?;
                (Step::ChangeContact { kind, value }, SecretRoute::Nowhere)
            }
            Action::ServiceCredentialRotate => (
                Step::RotateServiceCredential,
                owner_pickup(case, subject, requester, freshness, now)?,
            ),
        };
        Ok(Self { step, secret_to })
    }
}

/// A rotated service secret goes to the owner who asked and was verified: the case's requester,
/// an owner of the non-human subject, at their trusted email (no fallback to a phone).
fn owner_pickup(
    case: &Case,
    subject: &Subject,
    requester: Option<&Subject>,
    freshness: Duration,
    now: DateTime<Utc>,
) -> Result<SecretRoute, PlanRefusal> {
    requester
        .filter(|owner| {
            case.requester.as_deref() == Some(owner.id.as_str())
                && subject.is_non_human()
                && subject.owners.contains(&owner.id)
        })
        .and_then(|owner| {
            owner
                .service_secret_destination(freshness, now)
                .map(|to| SecretRoute::SealedPickup {
                    owner: Box::new(owner.clone()),
                    to: to.clone(),
                })
        })
        .ok_or(PlanRefusal::NoTrustedContact("a service credential"))
}

/// The connector operations carrying out `action` takes: the lookup that confirms the subject
/// right before acting, and the change itself. Factors live in Deskgate's store, so a factor
/// reset asks the directory for the lookup only. Revoking sessions is best effort and never
/// required.
pub fn required_operations(action: Action) -> &'static [Operation] {
    match action {
        Action::PasswordReset => &[Operation::Lookup, Operation::ResetPassword],
        Action::MfaReset | Action::FactorRebind => &[Operation::Lookup],
        Action::AccountUnlock => &[Operation::Lookup, Operation::Unlock],
        Action::EmailChange | Action::PhoneChange => &[Operation::Lookup, Operation::ChangeContact],
        Action::ServiceCredentialRotate => &[Operation::Lookup, Operation::RotateServiceCredential],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
