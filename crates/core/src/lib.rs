//! Deskgate's domain core: the vocabulary of DESIGN.md as plain data plus the rules that decide
//! what may happen to a recovery case. Nothing here performs I/O, reads the clock or talks to a
//! database: callers pass `now` and the facts they loaded, and get back a decision or an error value.

pub mod case;
pub mod directory;
pub mod evidence;
pub mod import;
pub mod labels;
pub mod offer;
pub mod playbook;
pub mod requirements;
pub mod risk;
pub mod takeover;
pub mod vouching;

pub use case::{
    Approval, ApproverRole, Case, CaseError, CaseState, Channel, Decision, FailureEscalation,
    Grant, NewCase, PolicyPin, REFERENCE_PREFIX, reference_number,
};
pub use directory::{
    Action, Authenticator, AuthenticatorKind, Contact, ContactKind, IdentityOfRecord, Role, Staff,
    Subject, SubjectStatus, Tier,
};
pub use evidence::{
    AttemptOutcome, Evidence, EvidenceChannel, IndependenceClass, Method, RespondentCheck,
    Verification, VerificationState,
};
pub use import::{ImportLineError, parse_subject_lines};
pub use playbook::{PlaybookStep, StepKind};
pub use requirements::{Progress, Requirements};
pub use risk::{RiskAssessment, RiskLevel, RiskReason, Signals};

/// Parses the API id of a vocabulary word (`"password_reset"`, `"phone"`, ...).
pub trait ApiId: Sized {
    /// The stable identifier used in the API, the store and the audit log.
    fn api_id(&self) -> &'static str;
    /// Every value, in declaration order.
    fn all() -> &'static [Self];
    /// The value whose API id is `id`.
    fn from_api_id(id: &str) -> Option<Self>
    where
        Self: Copy + 'static,
    {
        Self::all().iter().copied().find(|v| v.api_id() == id)
    }
}

macro_rules! api_ids {
    ($ty:ty { $($variant:ident => $id:literal),+ $(,)? }) => {
        impl $crate::ApiId for $ty {
            fn api_id(&self) -> &'static str {
                match self { $(Self::$variant => $id),+ }
            }
            fn all() -> &'static [Self] {
                &[$(Self::$variant),+]
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::ApiId::api_id(self))
            }
        }
    };
}
pub(crate) use api_ids;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The API id of every vocabulary word is also its serde form. Audit details written with
    /// the id (`action.to_string()`) are therefore the bytes written when the value itself was
    /// serialized, as entries were before typed audit events.
    fn api_id_is_serde_form<T: ApiId + Copy + std::fmt::Display + serde::Serialize + 'static>() {
        for v in T::all() {
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(v.api_id().to_owned())
            );
            assert_eq!(v.to_string(), v.api_id());
        }
    }

    #[test]
    fn every_api_id_is_the_serde_form() {
        api_id_is_serde_form::<Channel>();
        api_id_is_serde_form::<CaseState>();
        api_id_is_serde_form::<Decision>();
        api_id_is_serde_form::<ApproverRole>();
        api_id_is_serde_form::<Tier>();
        api_id_is_serde_form::<Action>();
        api_id_is_serde_form::<SubjectStatus>();
        api_id_is_serde_form::<ContactKind>();
        api_id_is_serde_form::<AuthenticatorKind>();
        api_id_is_serde_form::<Role>();
        api_id_is_serde_form::<RiskLevel>();
        api_id_is_serde_form::<Method>();
        api_id_is_serde_form::<IndependenceClass>();
        api_id_is_serde_form::<VerificationState>();
    }
}
