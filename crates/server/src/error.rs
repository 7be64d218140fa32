//! The one place where errors become HTTP: `{"error":{"code","message"}}` with the fitting status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskgate_core::{CaseError, VerificationState};
use deskgate_store::StoreError;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra machine-readable facts (attempts left, missing requirements).
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let (Some(details), Some(obj)) = (self.details, error.as_object_mut()) {
            obj.insert("details".to_owned(), details);
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"deskgate\""),
            );
        }
        response
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        let message = e.to_string();
        match e {
            CaseError::SelfService | CaseError::OwnManager => {
                Self::new(StatusCode::FORBIDDEN, "self_service_forbidden", message)
            }
            CaseError::NotRespondent => {
                Self::new(StatusCode::FORBIDDEN, "not_the_manager", message)
            }
            CaseError::NoLinkedPerson => {
                Self::new(StatusCode::FORBIDDEN, "no_linked_person", message)
            }
            CaseError::WorkedTheCase | CaseError::AlreadyContributed => {
                Self::new(StatusCode::FORBIDDEN, "same_person", message)
            }
            CaseError::NotGrantHolder => {
                Self::new(StatusCode::FORBIDDEN, "not_grant_holder", message)
            }
            CaseError::SubjectNotRecoverable(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "subject_not_recoverable",
                message,
            ),
            CaseError::MissingNewContact(_) | CaseError::UnexpectedNewContact => {
                Self::invalid(message)
            }
            CaseError::WrongMethod(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "wrong_method", message)
            }
            CaseError::UnknownVerification(_) => Self::not_found("verification"),
            CaseError::RequirementsNotMet(progress) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "requirements_not_met",
                message,
            )
            .with_details(json!(progress)),
            CaseError::VerificationNotPending(state) => {
                let code = match state {
                    VerificationState::Passed => "verification_used",
                    VerificationState::Locked => "verification_locked",
                    VerificationState::Expired => "verification_expired",
                    _ => "verification_closed",
                };
                Self::new(StatusCode::CONFLICT, code, message)
            }
            CaseError::GrantConsumed => Self::new(StatusCode::CONFLICT, "grant_consumed", message),
            CaseError::ExecutionInFlight => {
                Self::new(StatusCode::CONFLICT, "execution_in_flight", message)
            }
            CaseError::GrantExpired => Self::new(StatusCode::CONFLICT, "grant_expired", message),
            CaseError::CoolingOff(until) => Self::new(StatusCode::CONFLICT, "cooling_off", message)
                .with_details(json!({ "until": until })),
            CaseError::AlreadyApproved => {
                Self::new(StatusCode::CONFLICT, "already_approved", message)
            }
            CaseError::NotLive(_) | CaseError::IllegalTransition { .. } => {
                Self::new(StatusCode::CONFLICT, "illegal_transition", message)
            }
            CaseError::RespondentNotAuthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "manager_sign_in_required",
                message,
            ),
            CaseError::RespondentAlreadyAuthenticated => {
                Self::new(StatusCode::CONFLICT, "already_signed_in", message)
            }
            CaseError::NoRespondentChallenge | CaseError::RespondentChallengeExpired => {
                Self::new(StatusCode::CONFLICT, "sign_in_code_expired", message)
            }
            CaseError::TooManyRespondentCodes(_) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_sends", message)
            }
            _ => Self::new(StatusCode::CONFLICT, "illegal_transition", message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "not_found", m),
            StoreError::LimitReached { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sends",
                e.to_string(),
            ),
            StoreError::AuditUnavailable(_) => {
                tracing::error!(error = %e, "audit append failed; change rolled back");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the audit log could not be written, so nothing was changed",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the database is unavailable, so nothing was changed",
                )
            }
        }
    }
}
