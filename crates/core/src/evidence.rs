//! Verification methods, the independence class each belongs to, and the life of one
//! verification attempt. The class names what an attacker must control to forge the evidence;
//! requirements count classes, never methods, so two codes to the same phone count once.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api_ids;
use crate::directory::ContactKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Passkey,
    Push,
    Totp,
    SmsCode,
    VoiceCode,
    Callback,
    EmailCode,
    ManagerAttestation,
    IdProofing,
    RecoveryCode,
    Knowledge,
}
api_ids!(Method { Passkey => "passkey", Push => "push", Totp => "totp", SmsCode => "sms_code",
    VoiceCode => "voice_code", Callback => "callback", EmailCode => "email_code",
    ManagerAttestation => "manager_attestation", IdProofing => "id_proofing",
    RecoveryCode => "recovery_code", Knowledge => "knowledge" });

impl Method {
    pub fn class(self) -> IndependenceClass {
        match self {
            Self::Passkey | Self::Push | Self::Totp => IndependenceClass::DeviceOfRecord,
            Self::SmsCode | Self::VoiceCode | Self::Callback => IndependenceClass::PhoneOfRecord,
            Self::EmailCode => IndependenceClass::EmailOfRecord,
            Self::ManagerAttestation => IndependenceClass::Manager,
            Self::IdProofing => IndependenceClass::GovernmentId,
            Self::RecoveryCode => IndependenceClass::RecoveryCode,
            Self::Knowledge => IndependenceClass::Knowledge,
        }
    }

    /// The contact of record a method sends to, if it sends to one.
    pub fn contact_kind(self) -> Option<ContactKind> {
        match self {
            Self::SmsCode | Self::VoiceCode | Self::Callback => Some(ContactKind::Phone),
            Self::EmailCode => Some(ContactKind::Email),
            _ => None,
        }
    }

    /// Methods completed by reading back a one-time code Deskgate sent.
    pub fn is_code(self) -> bool {
        matches!(self, Self::SmsCode | Self::VoiceCode | Self::EmailCode)
    }

    /// Methods completed by the caller reading out a secret: a sent code, a saved one, or the
    /// code their enrolled authenticator app shows.
    pub fn is_answered(self) -> bool {
        self.is_code() || matches!(self, Self::RecoveryCode | Self::Totp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndependenceClass {
    DeviceOfRecord,
    PhoneOfRecord,
    EmailOfRecord,
    Manager,
    GovernmentId,
    RecoveryCode,
    Knowledge,
}
api_ids!(IndependenceClass { DeviceOfRecord => "device_of_record",
    PhoneOfRecord => "phone_of_record", EmailOfRecord => "email_of_record", Manager => "manager",
    GovernmentId => "government_id", RecoveryCode => "recovery_code", Knowledge => "knowledge" });

impl IndependenceClass {
    /// Knowledge about a person is what impersonators research first: recorded, never counted.
    pub fn counts(self) -> bool {
        self != Self::Knowledge
    }
}

/// A channel a piece of evidence depends on: what an attacker must hold to produce it. Each
/// verification family names the channels of its evidence (a code depends on the phone or
/// mailbox it went to; a passkey on the device and the mailbox that carried its link).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EvidenceChannel {
    /// A phone of record (a SIM swap or port-out takes it), shown masked.
    Phone(String),
    /// A mailbox of record, shown masked.
    Mailbox(String),
    /// An enrolled authenticator of this kind.
    Device(crate::directory::AuthenticatorKind),
    /// Another person (a manager or owner) and their own sign-in channels, by subject id.
    Person(String),
    /// A government identity document, checked by the proofing vendor.
    Document,
    /// The subject's saved recovery codes.
    RecoveryCodes,
}

impl std::fmt::Display for EvidenceChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Phone(masked) => write!(f, "phone:{masked}"),
            Self::Mailbox(masked) => write!(f, "mailbox:{masked}"),
            Self::Device(kind) => write!(f, "device:{kind}"),
            Self::Person(id) => write!(f, "person:{id}"),
            Self::Document => f.write_str("document"),
            Self::RecoveryCodes => f.write_str("recovery_codes"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    Pending,
    Passed,
    /// Too many wrong answers; the verification can never pass.
    Locked,
    Expired,
    /// The person asked (a manager) said this request is not genuine.
    Rejected,
}
api_ids!(VerificationState { Pending => "pending", Passed => "passed", Locked => "locked",
    Expired => "expired", Rejected => "rejected" });

/// One verification attempt of a case: a code sent, a link mailed, a device challenged.
/// Secrets are never held here in clear: `secret_hash` is a keyed hash computed by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub id: String,
    pub method: Method,
    pub state: VerificationState,
    /// Masked destination, for display (`+1 *** *** 42`).
    pub destination: Option<String>,
    /// Who must answer: the subject, or for an attestation the manager / owner's subject id.
    pub respondent: String,
    /// When the contact the method used was last changed, for the freshness rule.
    pub contact_changed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// For an attestation: how the manager (or owner) proved who they are before seeing the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respondent_check: Option<RespondentCheck>,
    /// What an attacker must control to pass it ([`crate::takeover`]), fixed when it starts.
    /// Empty only for a verification recorded before units existed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub units: BTreeSet<String>,
}

/// The step-up a manager (or owner) passes before an attestation link shows the case: the link
/// reached their mailbox, and a mailbox can be taken over, so they also prove control of a second
/// factor of their own. Secrets are held only as keyed hashes computed by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RespondentCheck {
    /// Keyed hash of the one-time code sent to the respondent's own phone of record; cleared once
    /// it has been used, and replaced when a new one is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_expires_at: Option<DateTime<Utc>>,
    /// Where the code went, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Codes sent for this link; bounded, so the link cannot be used to flood a phone.
    #[serde(default)]
    pub codes_sent: u32,
    /// Wrong answers, across every code sent for this link.
    #[serde(default)]
    pub failures: u32,
    /// How the respondent authenticated, once they have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_at: Option<DateTime<Utc>>,
}

impl Verification {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// What happened to one answer to a pending verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Passed,
    Failed { attempts_left: u32 },
    Locked,
}

/// A passed verification as the requirement rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub verification_id: String,
    pub method: Method,
    pub class: IndependenceClass,
    pub passed_at: DateTime<Utc>,
    pub contact_changed_at: Option<DateTime<Utc>>,
    /// The takeover units of the verification it comes from.
    pub units: BTreeSet<String>,
}

impl From<&Verification> for Option<Evidence> {
    fn from(v: &Verification) -> Self {
        (v.state == VerificationState::Passed).then(|| Evidence {
            verification_id: v.id.clone(),
            method: v.method,
            class: v.method.class(),
            passed_at: v.completed_at.unwrap_or(v.started_at),
            contact_changed_at: v.contact_changed_at,
            units: v.units.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiId;

    #[test]
    fn knowledge_never_counts_and_every_other_class_does() {
        for class in IndependenceClass::all() {
            assert_eq!(
                class.counts(),
                *class != IndependenceClass::Knowledge,
                "{class}"
            );
        }
    }

    #[test]
    fn phone_methods_share_one_class() {
        assert_eq!(Method::SmsCode.class(), Method::VoiceCode.class());
        assert_eq!(Method::SmsCode.class(), Method::Callback.class());
        assert_ne!(Method::SmsCode.class(), Method::EmailCode.class());
    }
}
