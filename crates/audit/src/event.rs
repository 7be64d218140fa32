//! Typed audit events: one [`AuditEvent`] variant per event name Deskgate writes, each carrying
//! its details as a typed struct that serializes to exactly the JSON the log has always held.
//!
//! The log stores an event as a name (`"verification.passed"`) and a JSON object of details.
//! Writers build an [`AuditEvent`], the only thing the store's `NewAuditEntry` accepts, which
//! stores its [`name`](AuditEvent::name) and [`details`](AuditEvent::details); readers (the
//! OCSF mapping, the CLI) turn a stored pair back into one with [`AuditEvent::parse`] and match
//! on variants and typed fields instead of strings. Adding an event is a variant below and its
//! details type in one of this module's files.
//!
//! # Faithful to the bytes already hashed
//!
//! Entries already in a log are leaves of a signed Merkle tree, so the types here describe the
//! JSON as it was written, quirks included, rather than an idealised schema:
//!
//! - Keys are the ones each emission site wrote. An `Option` that a site wrote as `null` is
//!   always present (a missing key is a parse error, see `nullable`); a key a site inserts only
//!   sometimes is skipped when `None`.
//! - Where one event name was written with different shapes at different sites, its details
//!   are an untagged enum with one variant per shape (for example [`VerificationPassed`]), each
//!   documented with the site that writes it.
//! - Every struct denies unknown fields, and [`AuditEvent::parse`] re-serializes what it parsed
//!   and refuses details that would not come back identical. A parsed event therefore stands for
//!   exactly the details it was read from.
//! - Vocabulary values (action, tier, method, independence class, case state, role...) are kept
//!   as the strings `deskgate-core` writes: this crate depends on none of Deskgate's own, and a
//!   log must keep parsing when that vocabulary grows.
//!
//! Numbers keep their JSON type: counts are unsigned integers, timestamps written through
//! chrono's serde are [`DateTime<Utc>`](chrono::DateTime) (which round-trips their text), and
//! the one timestamp a site wrote as text of another format is a `String`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::entry::AuditEntry;

mod cases;
mod execution;
mod records;
mod staff;
mod subject;
mod verification;

pub use cases::*;
pub use execution::*;
pub use records::*;
pub use staff::*;
pub use subject::*;
pub use verification::*;

/// Deserializes an `Option` field that every site writes, as `null` when `None`. Unlike serde's
/// default for `Option`, a missing key is an error, so details that omit the key (another
/// event's shape) do not parse as this one.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Why stored details are not a known audit event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// No event of this name is written by Deskgate.
    #[error("unknown audit event {name:?}")]
    UnknownEvent {
        /// The name as stored.
        name: String,
    },
    /// The details do not have the shape of the event.
    #[error("details of {name} do not have its shape")]
    Details {
        /// The event name.
        name: &'static str,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
    /// The details parse, but the typed event would not write them back identically (an
    /// explicit `null` where the event omits the key, for example): they were not written by
    /// Deskgate as this event.
    #[error("details of {name} would not be written back identically")]
    NotFaithful {
        /// The event name.
        name: &'static str,
    },
}

fn to_details<T: Serialize>(details: &T) -> Value {
    // Every details type is a struct (or an untagged enum of structs) of strings, numbers,
    // booleans, timestamps, sequences and string-keyed maps: serializing it to a `Value` cannot
    // fail. The tests serialize every variant.
    serde_json::to_value(details).unwrap_or(Value::Null)
}

fn from_details<T: for<'de> Deserialize<'de>>(
    name: &'static str,
    details: &Value,
) -> Result<T, EventError> {
    T::deserialize(details).map_err(|source| EventError::Details { name, source })
}

macro_rules! audit_events {
    ($($(#[$doc:meta])* $variant:ident($details:ty) = $name:literal,)+) => {
        /// An audit event: its name and its typed details. See the [module documentation](self).
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum AuditEvent {
            $($(#[$doc])* $variant($details),)+
        }

        impl AuditEvent {
            /// Every event name, in the order of the variants.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The event name the log stores, e.g. `"verification.passed"`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            /// The details as the log stores them.
            pub fn details(&self) -> Value {
                match self {
                    $(Self::$variant(details) => to_details(details),)+
                }
            }

            fn parse_shape(name: &str, details: &Value) -> Result<Self, EventError> {
                match name {
                    $($name => from_details($name, details).map(Self::$variant),)+
                    _ => Err(EventError::UnknownEvent { name: name.to_owned() }),
                }
            }
        }
    };
}

audit_events! {
    /// A staff approval (or a break-glass officer's own approval) was recorded.
    ApprovalRecorded(ApprovalRecorded) = "approval.recorded",
    /// An approval or break-glass was refused, by the core or the bundle.
    ApprovalRefused(ApprovalRefused) = "approval.refused",
    /// A sign-in code went to the attesting manager's own phone.
    AttestationCodeSent(AttestationCodeSent) = "attestation.code_sent",
    /// The manager confirmed the request.
    AttestationConfirmed(AttestationDecided) = "attestation.confirmed",
    /// Too many wrong sign-in codes: the attestation is locked.
    AttestationLocked(AttestationSignIn) = "attestation.locked",
    /// The manager rejected the request.
    AttestationRejected(AttestationDecided) = "attestation.rejected",
    /// The manager did not recognise the request at all; the security contacts were alerted.
    AttestationUnrecognised(AttestationUnrecognised) = "attestation.unrecognised",
    /// A wrong sign-in code on an attestation link.
    AttestationSignInFailed(AttestationSignInFailed) = "attestation.sign_in_failed",
    /// The manager signed in to the attestation link.
    AttestationSignedIn(AttestationSignIn) = "attestation.signed_in",
    /// An authenticator app was enrolled for a subject.
    AuthenticatorEnrolled(AuthenticatorEnrolled) = "authenticator.enrolled",
    /// A security officer switched a case to the break-glass requirements.
    BreakGlassOpened(BreakGlassOpened) = "break_glass.opened",
    /// The case met its requirements.
    CaseApproved(CaseApproved) = "case.approved",
    /// The case was cancelled by staff.
    CaseCancelled(CaseCancelled) = "case.cancelled",
    /// The case was denied.
    CaseDenied(CaseDenied) = "case.denied",
    /// The bundle escalated the case to a security officer at execution.
    CaseEscalated(PolicyVerdict) = "case.escalated",
    /// Failed verifications reached the bundle's limit: risk raised, escalated, denial proposed.
    CaseEscalatedAfterFailures(EscalatedAfterFailures) = "case.escalated_after_failures",
    /// A case was opened.
    CaseOpened(CaseOpened) = "case.opened",
    /// Opening a case was refused.
    CaseRefused(CaseRefused) = "case.refused",
    /// A security officer took over an escalated case.
    CaseResumed(CaseResumed) = "case.resumed",
    /// Messages sent after an execution were not delivered.
    DeliveryFailed(DeliveryFailed) = "delivery.failed",
    /// Subjects were imported into the built-in directory.
    DirectoryImported(DirectoryImported) = "directory.imported",
    /// The demo directory was seeded.
    DirectorySeeded(DirectorySeeded) = "directory.seeded",
    /// A subject was synced from the connected directory.
    DirectorySynced(DirectorySynced) = "directory.synced",
    /// An execution lost mid-call was ended by staff.
    ExecutionAbandoned(ExecutionAbandoned) = "execution.abandoned",
    /// The connector failed to perform the action.
    ExecutionFailed(ExecutionFailed) = "execution.failed",
    /// The action was performed.
    ExecutionPerformed(ExecutionPerformed) = "execution.performed",
    /// The bundle denied the execution.
    ExecutionRefused(PolicyVerdict) = "execution.refused",
    /// A connector execution began (the grant is consumed).
    ExecutionStarted(ExecutionStarted) = "execution.started",
    /// The grant was consumed.
    GrantConsumed(GrantConsumed) = "grant.consumed",
    /// The grant expired before it was used.
    GrantExpired(GrantExpired) = "grant.expired",
    /// A grant was minted for the agent.
    GrantMinted(GrantMinted) = "grant.minted",
    /// The identity-verification vendor reported an inquiry not decided yet.
    IdvPending(IdvResult) = "idv.pending",
    /// A policy bundle reload was refused; the running bundle stays.
    PolicyReloadRefused(PolicyReloadRefused) = "policy.reload_refused",
    /// The policy bundle was reloaded.
    PolicyReloaded(PolicyReloaded) = "policy.reloaded",
    /// New recovery codes were issued to a subject.
    RecoveryCodesIssued(RecoveryCodesIssued) = "recovery_codes.issued",
    /// An approved identity document did not match the subject's identity of record.
    SecurityIdvIdentityMismatch(IdvIdentityMismatch) = "security.idv_identity_mismatch",
    /// "This was not me": the subject was locked and flagged.
    SecurityNotMeReported(NotMeReported) = "security.not_me_reported",
    /// The owner retrieved a rotated service secret.
    ServiceSecretRetrieved(ServiceSecretRetrieved) = "service_secret.retrieved",
    /// A staff member was disabled.
    StaffDisabled(StaffRef) = "staff.disabled",
    /// A staff member was enabled again.
    StaffEnabled(StaffRef) = "staff.enabled",
    /// A staff member registered a console passkey.
    StaffPasskeyRegistered(StaffPasskeyRegistered) = "staff.passkey_registered",
    /// A staff member signed in with single sign-on (OpenID Connect).
    StaffSignIn(StaffSignIn) = "staff.sign_in",
    /// A refused sign-in, audited one by one.
    StaffSignInFailed(StaffSignInFailed) = "staff.sign_in_failed",
    /// Refused sign-ins of one address and window that were only counted.
    StaffSignInFailures(StaffSignInFailures) = "staff.sign_in_failures",
    /// A staff member signed in with a console passkey.
    StaffSignedIn(StaffSignedIn) = "staff.signed_in",
    /// A staff member's single sign-on identity was set or removed.
    StaffSsoIdentitySet(StaffSsoIdentitySet) = "staff.sso_identity_set",
    /// An API token was created for a staff member.
    StaffTokenCreated(StaffTokenCreated) = "staff.token_created",
    /// One API token was revoked.
    StaffTokenRevoked(StaffTokenRevoked) = "staff.token_revoked",
    /// Every token of a staff member was revoked.
    StaffTokensRevoked(StaffTokensRevoked) = "staff.tokens_revoked",
    /// A subject removed one of their devices (authenticator app, push) on their own page.
    SubjectDeviceRemoved(SubjectDeviceRemoved) = "subject.device_removed",
    /// A subject renamed one of their devices on their own page.
    SubjectDeviceRenamed(SubjectDeviceRenamed) = "subject.device_renamed",
    /// A subject added a passkey on their own page.
    SubjectPasskeyAdded(SubjectPasskeyAdded) = "subject.passkey_added",
    /// A subject removed one of their passkeys on their own page.
    SubjectPasskeyRemoved(SubjectPasskeyRemoved) = "subject.passkey_removed",
    /// A subject renamed one of their passkeys on their own page.
    SubjectPasskeyRenamed(SubjectPasskeyRenamed) = "subject.passkey_renamed",
    /// A refused sign-in to a subject's own page, audited one by one.
    SubjectSignInFailed(SubjectSignInFailed) = "subject.sign_in_failed",
    /// A subject signed in to their own page.
    SubjectSignedIn(SubjectSignedIn) = "subject.signed_in",
    /// A subject signed in to their own page through the organisation's OpenID provider.
    SubjectSignedInWithProvider(SubjectSignedInWithProvider) = "subject.signed_in_with_provider",
    /// A subject signed out of their own page.
    SubjectSignedOut(SubjectSignedOut) = "subject.signed_out",
    /// A temporary access pass was redeemed to enrol an authenticator.
    TemporaryAccessPassRedeemed(TemporaryAccessPassRedeemed) = "temporary_access_pass.redeemed",
    /// A verification expired before it was answered.
    VerificationExpired(VerificationExpired) = "verification.expired",
    /// A verification failed.
    VerificationFailed(VerificationFailed) = "verification.failed",
    /// Too many wrong answers: the verification is locked.
    VerificationLocked(CodeVerification) = "verification.locked",
    /// A verification passed.
    VerificationPassed(VerificationPassed) = "verification.passed",
    /// A verification was started.
    VerificationStarted(VerificationStarted) = "verification.started",
}

impl AuditEvent {
    /// Reads stored details as the event `name`: the inverse of [`AuditEvent::name`] and
    /// [`AuditEvent::details`]. Succeeds only when the typed event writes `details` back
    /// identically, so nothing in the stored details is lost or reinterpreted.
    ///
    /// # Errors
    /// [`EventError::UnknownEvent`] for a name Deskgate does not write,
    /// [`EventError::Details`] for details of another shape, and [`EventError::NotFaithful`]
    /// for details that parse but would not be written back the same.
    pub fn parse(name: &str, details: &Value) -> Result<Self, EventError> {
        let event = Self::parse_shape(name, details)?;
        if event.details() != *details {
            return Err(EventError::NotFaithful { name: event.name() });
        }
        Ok(event)
    }

    /// The event of a stored entry: [`AuditEvent::parse`] of its name and details.
    ///
    /// # Errors
    /// As [`AuditEvent::parse`].
    pub fn of_entry(entry: &AuditEntry) -> Result<Self, EventError> {
        Self::parse(&entry.event, &entry.details)
    }

    /// The name and details to store, for writers that keep them apart.
    pub fn into_parts(self) -> (&'static str, Value) {
        let details = self.details();
        (self.name(), details)
    }
}

#[cfg(test)]
mod tests;
