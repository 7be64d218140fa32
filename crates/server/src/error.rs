//! The one place where errors become HTTP: every [`AppError`] kind has its status here, and the
//! body is `{"error":{"code","message","details"?}}`. Nothing else in the workspace names a status
//! code for an error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskgate_app::AppError;
use serde_json::json;

/// An application error on its way out as an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(pub AppError);

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The HTTP status of each kind of application error.
pub fn status(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) | AppError::PolicyDenied { .. } => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Gone(_) => StatusCode::GONE,
        AppError::Invalid(_) | AppError::RequirementsNotMet(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Malformed(_) => StatusCode::BAD_REQUEST,
        AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::UpstreamFailed(_) => StatusCode::BAD_GATEWAY,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        // A kind added later is a fault until it is mapped here.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        status(&self.0)
    }
}

/// Shorthands for the refusals handlers raise themselves.
impl ApiError {
    pub fn unauthenticated() -> Self {
        Self(AppError::unauthenticated())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self(AppError::forbidden(message))
    }
    pub fn not_found(what: &str) -> Self {
        Self(AppError::not_found(what))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self(AppError::invalid(message))
    }
    pub fn code(&self) -> &'static str {
        self.0.code()
    }
    pub fn message(&self) -> &str {
        self.0.message()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<deskgate_store::StoreError> for ApiError {
    fn from(e: deskgate_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<deskgate_core::CaseError> for ApiError {
    fn from(e: deskgate_core::CaseError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = self.0.problem();
        let mut error = json!({ "code": problem.code, "message": problem.message });
        if let (Some(details), Some(obj)) = (problem.details.clone(), error.as_object_mut()) {
            obj.insert("details".to_owned(), details);
        }
        let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"deskgate\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_kind_keeps_its_status_code_and_details_in_the_body() {
        let e = ApiError(
            AppError::rate_limited("too_many_sends", "slow down")
                .with_details(json!({ "retry_after": 3 })),
        );
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_sends");
        assert_eq!(body["error"]["details"]["retry_after"], 3);
    }

    #[test]
    fn unauthenticated_answers_carry_a_bearer_challenge() {
        let response = ApiError(AppError::unauthenticated()).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
