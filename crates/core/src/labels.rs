//! The words people read for the domain's ids: one table, so the console, the emails to
//! managers and the reports say the same thing, and no `mfa_reset` or `security_officer` reaches
//! a person. Every match is exhaustive: a new variant does not compile until it has its words.

use crate::case::{ApproverRole, CaseState, Channel, Decision};
use crate::directory::{Action, AuthenticatorKind, ContactKind, Role, SubjectStatus, Tier};
use crate::evidence::{IndependenceClass, Method, VerificationState};
use crate::risk::RiskLevel;

/// A value's words for a person, in sentence case.
pub trait Label {
    fn label(&self) -> &'static str;
}

impl<T: Label> Label for &T {
    fn label(&self) -> &'static str {
        (*self).label()
    }
}

impl Label for Action {
    fn label(&self) -> &'static str {
        match self {
            Self::PasswordReset => "Password reset",
            Self::MfaReset => "MFA reset",
            Self::FactorRebind => "Move a sign-in factor to a new device",
            Self::EmailChange => "Change the email of record",
            Self::PhoneChange => "Change the phone of record",
            Self::AccountUnlock => "Account unlock",
            Self::ServiceCredentialRotate => "Rotate a service account's credential",
        }
    }
}

impl Label for Method {
    fn label(&self) -> &'static str {
        match self {
            Self::Passkey => "Passkey on an enrolled device",
            Self::Push => "Push to the enrolled phone app",
            Self::Totp => "Authenticator app code",
            Self::SmsCode => "Text message code to the phone of record",
            Self::VoiceCode => "Voice call code to the phone of record",
            Self::Callback => "Call back the phone of record",
            Self::EmailCode => "Email code to the address of record",
            Self::ManagerAttestation => "The manager confirms",
            Self::IdProofing => "Photo ID check",
            Self::RecoveryCode => "Saved recovery code",
            Self::Knowledge => "Knowledge questions (never count)",
        }
    }
}

impl Label for IndependenceClass {
    fn label(&self) -> &'static str {
        match self {
            Self::DeviceOfRecord => "Enrolled device",
            Self::PhoneOfRecord => "Phone of record",
            Self::EmailOfRecord => "Email of record",
            Self::Manager => "Manager",
            Self::GovernmentId => "Photo ID",
            Self::RecoveryCode => "Recovery code",
            Self::Knowledge => "Knowledge (never counts)",
        }
    }
}

impl Label for Role {
    fn label(&self) -> &'static str {
        match self {
            Self::Agent => "Agent",
            Self::Supervisor => "Supervisor",
            Self::SecurityOfficer => "Security officer",
            Self::Auditor => "Auditor",
            Self::Admin => "Administrator",
        }
    }
}

impl Label for ApproverRole {
    fn label(&self) -> &'static str {
        match self {
            Self::Manager => "Manager",
            Self::Owner => "Account owner",
            Self::Supervisor => "Supervisor",
            Self::SecurityOfficer => "Security officer",
        }
    }
}

impl Label for Tier {
    fn label(&self) -> &'static str {
        match self {
            Self::Standard => "Standard",
            Self::Sensitive => "Sensitive",
            Self::Privileged => "Administrator",
            Self::Executive => "Executive",
            Self::Security => "Incident responder",
            Self::Service => "Service account",
        }
    }
}

impl Label for CaseState {
    fn label(&self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::Verifying => "Verifying",
            Self::Approved => "Approved",
            Self::Executed => "Executed",
            Self::Closed => "Closed",
            Self::Denied => "Denied",
            Self::Cancelled => "Cancelled",
            Self::Expired => "Expired",
            Self::Escalated => "With a security officer",
            Self::Failed => "Failed at the directory",
        }
    }
}

impl Label for Channel {
    fn label(&self) -> &'static str {
        match self {
            Self::Phone => "Phone call",
            Self::Chat => "Chat",
            Self::Ticket => "Ticket",
            Self::WalkIn => "In person",
            Self::SelfService => "Self-service",
        }
    }
}

impl Label for VerificationState {
    fn label(&self) -> &'static str {
        match self {
            Self::Pending => "Waiting",
            Self::Passed => "Passed",
            Self::Locked => "Locked: too many wrong answers",
            Self::Expired => "Expired",
            Self::Rejected => "Failed",
        }
    }
}

impl Label for SubjectStatus {
    fn label(&self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Locked => "Locked",
            Self::Disabled => "Disabled",
            Self::OnLeave => "On leave",
            Self::Terminated => "Left the organisation",
        }
    }
}

impl Label for RiskLevel {
    fn label(&self) -> &'static str {
        match self {
            Self::Low => "Low",
            Self::Elevated => "Elevated",
            Self::High => "High",
            Self::Critical => "Critical",
        }
    }
}

impl Label for ContactKind {
    fn label(&self) -> &'static str {
        match self {
            Self::Phone => "Phone",
            Self::Email => "Email",
        }
    }
}

impl Label for AuthenticatorKind {
    fn label(&self) -> &'static str {
        match self {
            Self::Passkey => "Passkey",
            Self::Totp => "Authenticator app",
            Self::Push => "Push app",
        }
    }
}

impl Label for Decision {
    fn label(&self) -> &'static str {
        match self {
            Self::Confirm => "Confirmed",
            Self::Reject => "Rejected",
        }
    }
}

/// The label in lower case, for the middle of a sentence ("an MFA reset", "the phone of record").
/// Acronyms keep their capitals.
pub fn in_sentence(value: &impl Label) -> String {
    let label = value.label();
    let mut words = label.split(' ');
    let first = words.next().unwrap_or_default();
    let first = if first.chars().skip(1).any(char::is_uppercase) {
        first.to_owned()
    } else {
        first.to_lowercase()
    };
    std::iter::once(first)
        .chain(words.map(str::to_owned))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiId;

    fn no_id_leaks<T: ApiId + Label + 'static>() {
        for v in T::all() {
            let label = v.label();
            assert!(!label.contains('_'), "{label} reads like an id");
            assert!(
                label.chars().next().is_some_and(char::is_uppercase),
                "{label} starts a sentence"
            );
        }
    }

    #[test]
    fn every_label_reads_as_words() {
        no_id_leaks::<Action>();
        no_id_leaks::<Method>();
        no_id_leaks::<IndependenceClass>();
        no_id_leaks::<Role>();
        no_id_leaks::<ApproverRole>();
        no_id_leaks::<Tier>();
        no_id_leaks::<CaseState>();
        no_id_leaks::<Channel>();
        no_id_leaks::<VerificationState>();
        no_id_leaks::<SubjectStatus>();
        no_id_leaks::<RiskLevel>();
    }

    #[test]
    fn labels_in_a_sentence_keep_acronyms() {
        assert_eq!(in_sentence(&Action::MfaReset), "MFA reset");
        assert_eq!(in_sentence(&Action::PasswordReset), "password reset");
        assert_eq!(in_sentence(&Role::SecurityOfficer), "security officer");
    }
}
