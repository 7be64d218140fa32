//! Refusals of the application service, worded for the terminal.

use deskgate_app::AppError;

/// How the command words a refusal of the application: by its kind, never by reading its text.
pub(crate) fn refusal(e: AppError) -> String {
    let message = e.message();
    match &e {
        AppError::NotFound(_) => format!("not found: {message}"),
        AppError::Unauthenticated(_) | AppError::Forbidden(_) => format!("refused: {message}"),
        AppError::PolicyDenied { pin: Some(pin), .. } => format!(
            "{message} (policies {}; bundle {})",
            pin.policy_ids.join(", "),
            pin.bundle_digest
        ),
        AppError::PolicyDenied { pin: None, .. } => format!("refused by policy: {message}"),
        AppError::Invalid(_) | AppError::Malformed(_) | AppError::RequirementsNotMet(_) => {
            format!("invalid: {message}")
        }
        AppError::Conflict(_) | AppError::Gone(_) => format!("{message} ({})", e.code()),
        AppError::RateLimited(_) => format!("too many attempts, try later: {message}"),
        AppError::UpstreamFailed(_) | AppError::Unavailable(_) => {
            format!("unavailable, nothing was changed: {message}")
        }
        _ => message.to_owned(),
    }
}
