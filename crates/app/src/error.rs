//! The one error type of the use cases. A failure says what kind of refusal it is (forbidden, not
//! found, invalid, policy denied, conflict...) with a stable machine code, a message for people
//! and, where useful, machine-readable details. It knows nothing of transports: the HTTP server
//! maps kinds to status codes in one place (`deskgate_server::error`), the CLI matches kinds.

use deskgate_core::{CaseError, PolicyPin, VerificationState};
use deskgate_store::StoreError;
use serde_json::{Value, json};

/// What went wrong, in words the caller can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Stable machine code, e.g. `verification_locked`.
    pub code: &'static str,
    /// For people; never carries a secret.
    pub message: String,
    /// Extra machine-readable facts (attempts left, missing requirements, policy ids).
    pub details: Option<Value>,
}

/// Why a use case refused or failed. Every variant leaves the state unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No valid credential (token, session, link sign-in) was presented.
    #[error("{}", .0.message)]
    Unauthenticated(Problem),
    /// Authenticated, but this person may not do this (role, own case, same person).
    #[error("{}", .0.message)]
    Forbidden(Problem),
    /// The policy bundle refused the request; carries the deciding policies.
    #[error("{}", .problem.message)]
    PolicyDenied {
        problem: Problem,
        /// Boxed: the decision is large and rare, and every result carries the error's size.
        pin: Option<Box<PolicyPin>>,
    },
    /// The named thing does not exist (or is not visible to the caller).
    #[error("{}", .0.message)]
    NotFound(Problem),
    /// The thing existed once and is gone for good (a spent or withdrawn link).
    #[error("{}", .0.message)]
    Gone(Problem),
    /// Well-formed input that fails validation (a field out of range, a wrong method...).
    #[error("{}", .0.message)]
    Invalid(Problem),
    /// Input that cannot be read at all (not JSON, a token in the wrong place).
    #[error("{}", .0.message)]
    Malformed(Problem),
    /// The body is larger than the configured limit.
    #[error("{}", .0.message)]
    TooLarge(Problem),
    /// The body is not of a media type the endpoint reads.
    #[error("{}", .0.message)]
    UnsupportedMediaType(Problem),
    /// The case's requirements are not met yet; details say which are missing.
    #[error("{}", .0.message)]
    RequirementsNotMet(Problem),
    /// The request conflicts with the current state (spent, locked, already approved, racing).
    #[error("{}", .0.message)]
    Conflict(Problem),
    /// Too many attempts or sends in the window.
    #[error("{}", .0.message)]
    RateLimited(Problem),
    /// A peer we depend on (a delivery channel, a directory, a vendor) failed the request.
    #[error("{}", .0.message)]
    UpstreamFailed(Problem),
    /// A component we need is down (database, audit log); nothing was changed.
    #[error("{}", .0.message)]
    Unavailable(Problem),
    /// A fault on our side; nothing was changed.
    #[error("{}", .0.message)]
    Internal(Problem),
}

/// The result of a use case.
pub type AppResult<T> = Result<T, AppError>;

fn problem(code: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        code,
        message: message.into(),
        details: None,
    }
}

/// The problem every kind carries, by reference or by mutable reference.
macro_rules! each_problem {
    ($error:expr) => {
        match $error {
            Self::PolicyDenied { problem, .. } => problem,
            Self::Unauthenticated(p)
            | Self::Forbidden(p)
            | Self::NotFound(p)
            | Self::Gone(p)
            | Self::Invalid(p)
            | Self::Malformed(p)
            | Self::TooLarge(p)
            | Self::UnsupportedMediaType(p)
            | Self::RequirementsNotMet(p)
            | Self::Conflict(p)
            | Self::RateLimited(p)
            | Self::UpstreamFailed(p)
            | Self::Unavailable(p)
            | Self::Internal(p) => p,
        }
    };
}

impl AppError {
    pub fn unauthenticated() -> Self {
        Self::unauthenticated_as("unauthenticated", "a valid bearer token is required")
    }
    pub fn unauthenticated_as(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated(problem(code, message))
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::forbidden_as("forbidden", message)
    }
    pub fn forbidden_as(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden(problem(code, message))
    }
    /// A policy refusal with the decision that made it.
    pub fn policy_denied(pin: PolicyPin) -> Self {
        let message = format!("the policy refuses this: {}", pin.reasons.join("; "));
        let details = json!({
            "reasons": pin.reasons, "policy_ids": pin.policy_ids, "bundle_digest": pin.bundle_digest,
        });
        Self::PolicyDenied {
            problem: Problem {
                code: "policy_denied",
                message,
                details: Some(details),
            },
            pin: Some(Box::new(pin)),
        }
    }
    /// A policy refusal without a decision (the policy could not be evaluated: fail closed).
    pub fn policy_unevaluated(message: impl Into<String>) -> Self {
        Self::PolicyDenied {
            problem: problem("policy_denied", message),
            pin: None,
        }
    }
    pub fn not_found(what: &str) -> Self {
        Self::not_found_as("not_found", format!("{what} not found"))
    }
    pub fn not_found_as(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound(problem(code, message))
    }
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::Gone(problem(code, message))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::invalid_as("invalid_request", message)
    }
    pub fn invalid_as(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(problem(code, message))
    }
    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self::Malformed(problem(code, message))
    }
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::TooLarge(problem(code, message))
    }
    pub fn unsupported_media_type(code: &'static str, message: impl Into<String>) -> Self {
        Self::UnsupportedMediaType(problem(code, message))
    }
    pub fn requirements_not_met(message: impl Into<String>, missing: Value) -> Self {
        Self::RequirementsNotMet(problem("requirements_not_met", message)).with_details(missing)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict(problem(code, message))
    }
    pub fn rate_limited(code: &'static str, message: impl Into<String>) -> Self {
        Self::RateLimited(problem(code, message))
    }
    pub fn upstream_failed(code: &'static str, message: impl Into<String>) -> Self {
        Self::UpstreamFailed(problem(code, message))
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unavailable(problem(code, message))
    }
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::Internal(problem(code, message))
    }

    /// The code, message and details, whatever the kind.
    pub fn problem(&self) -> &Problem {
        each_problem!(self)
    }

    fn problem_mut(&mut self) -> &mut Problem {
        each_problem!(self)
    }

    pub fn code(&self) -> &'static str {
        self.problem().code
    }
    pub fn message(&self) -> &str {
        &self.problem().message
    }
    pub fn details(&self) -> Option<&Value> {
        self.problem().details.as_ref()
    }

    /// Adds machine-readable details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.problem_mut().details = Some(details);
        self
    }
}

impl From<CaseError> for AppError {
    fn from(e: CaseError) -> Self {
        let message = e.to_string();
        match e {
            CaseError::SelfService | CaseError::OwnManager => {
                Self::forbidden_as("self_service_forbidden", message)
            }
            CaseError::NotRespondent => Self::forbidden_as("not_the_manager", message),
            CaseError::NoLinkedPerson => Self::forbidden_as("no_linked_person", message),
            CaseError::WorkedTheCase | CaseError::AlreadyContributed => {
                Self::forbidden_as("same_person", message)
            }
            CaseError::NotGrantHolder => Self::forbidden_as("not_grant_holder", message),
            CaseError::SubjectNotRecoverable(_) => {
                Self::invalid_as("subject_not_recoverable", message)
            }
            CaseError::MissingNewContact(_) | CaseError::UnexpectedNewContact => {
                Self::invalid(message)
            }
            CaseError::WrongMethod(_) => Self::invalid_as("wrong_method", message),
            CaseError::UnknownVerification(_) => Self::not_found("verification"),
            CaseError::RequirementsNotMet(progress) => {
                Self::requirements_not_met(message, json!(progress))
            }
            CaseError::VerificationNotPending(state) => {
                let code = match state {
                    VerificationState::Passed => "verification_used",
                    VerificationState::Locked => "verification_locked",
                    VerificationState::Expired => "verification_expired",
                    _ => "verification_closed",
                };
                Self::conflict(code, message)
            }
            CaseError::GrantConsumed => Self::conflict("grant_consumed", message),
            CaseError::ExecutionInFlight => Self::conflict("execution_in_flight", message),
            CaseError::MethodExhausted(_) => Self::conflict("method_exhausted", message),
            CaseError::GrantExpired => Self::conflict("grant_expired", message),
            CaseError::CoolingOff(until) => {
                Self::conflict("cooling_off", message).with_details(json!({ "until": until }))
            }
            CaseError::AlreadyApproved => Self::conflict("already_approved", message),
            CaseError::NotLive(_) | CaseError::IllegalTransition { .. } => {
                Self::conflict("illegal_transition", message)
            }
            CaseError::RespondentNotAuthenticated => {
                Self::unauthenticated_as("manager_sign_in_required", message)
            }
            CaseError::RespondentAlreadyAuthenticated => {
                Self::conflict("already_signed_in", message)
            }
            CaseError::NoRespondentChallenge | CaseError::RespondentChallengeExpired => {
                Self::conflict("sign_in_code_expired", message)
            }
            CaseError::TooManyRespondentCodes(_) => {
                metrics::counter!("deskgate_rate_limit_refusals_total", "limit" => "manager_sign_in_codes").increment(1);
                Self::rate_limited("too_many_sends", message)
            }
            _ => Self::conflict("illegal_transition", message),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::conflict("conflict", m),
            StoreError::NotFound(m) => Self::not_found_as("not_found", m),
            StoreError::LimitReached { .. } => Self::rate_limited("too_many_sends", e.to_string()),
            StoreError::AuditUnavailable(_) => {
                tracing::error!(error = %e, "audit append failed; change rolled back");
                Self::unavailable(
                    "audit_unavailable",
                    "the audit log could not be written, so nothing was changed",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::unavailable(
                    "store_unavailable",
                    "the database is unavailable, so nothing was changed",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_survive_on_every_kind_and_policy_denial_keeps_its_pin() {
        let e = AppError::conflict("x", "m").with_details(json!({"a": 1}));
        assert_eq!(e.details(), Some(&json!({"a": 1})));
        let denied = AppError::policy_denied(PolicyPin {
            stage: "open".into(),
            outcome: "deny".into(),
            reasons: vec!["r".into()],
            policy_ids: vec!["p1".into()],
            bundle_digest: "d".into(),
            at: chrono::DateTime::UNIX_EPOCH,
        });
        assert_eq!(denied.code(), "policy_denied");
        assert_eq!(denied.message(), "the policy refuses this: r");
        let ids = match &denied {
            AppError::PolicyDenied { pin: Some(pin), .. } => pin.policy_ids.clone(),
            _ => vec![],
        };
        assert_eq!(ids, vec!["p1".to_owned()]);
        assert_eq!(
            denied.details().map(|d| d["bundle_digest"].clone()),
            Some(json!("d"))
        );
    }

    #[test]
    fn case_errors_keep_their_kind_and_code() {
        let e = AppError::from(CaseError::GrantConsumed);
        assert!(matches!(e, AppError::Conflict(_)));
        assert_eq!(e.code(), "grant_consumed");
    }
}
