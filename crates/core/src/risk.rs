//! Risk assessment: tier x action gives a base level, each signal about the request context
//! raises it, and every raise carries a reason a person can read.

use serde::{Deserialize, Serialize};

use crate::api_ids;
use crate::directory::{Action, ContactKind, SubjectStatus, Tier};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Elevated,
    High,
    Critical,
}
api_ids!(RiskLevel { Low => "low", Elevated => "elevated", High => "high", Critical => "critical" });

impl RiskLevel {
    /// One level up; critical stays critical.
    pub fn raised(self) -> Self {
        match self {
            Self::Low => Self::Elevated,
            Self::Elevated => Self::High,
            Self::High | Self::Critical => Self::Critical,
        }
    }
}

/// Facts about the request context, loaded by the caller from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signals {
    /// Contacts of record changed inside the freshness window, with their age in days.
    pub recently_changed_contacts: Vec<(ContactKind, i64)>,
    /// Executed recoveries of this subject in the look-back window.
    pub recent_recoveries: u32,
    /// Other live cases about this subject.
    pub open_cases_for_subject: u32,
    /// The caller gave a number that is not the subject's number of record.
    pub caller_number_differs: bool,
    /// The subject joined recently and has no enrolled authenticator.
    pub new_hire_without_factors: bool,
    pub subject_flagged: bool,
    pub subject_status: Option<SubjectStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReason {
    pub code: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAssessment {
    pub level: RiskLevel,
    pub reasons: Vec<RiskReason>,
}

fn reason(code: &str, text: String) -> RiskReason {
    RiskReason {
        code: code.to_owned(),
        text,
    }
}

/// Tier x action x signals -> level with reasons.
pub fn assess(tier: Tier, action: Action, signals: &Signals) -> RiskAssessment {
    let mut reasons = Vec::new();
    let mut level = if tier.is_high_value() || tier == Tier::Service {
        reasons.push(reason(
            "high_value_tier",
            format!("the subject is in the {tier} tier: a takeover has a large blast radius"),
        ));
        RiskLevel::High
    } else if action.changes_factors_or_contacts() || action == Action::ServiceCredentialRotate {
        reasons.push(reason(
            "factor_or_contact_change",
            format!("{action} hands over or redirects an authentication factor"),
        ));
        RiskLevel::Elevated
    } else if tier == Tier::Sensitive {
        reasons.push(reason(
            "sensitive_tier",
            "the subject is in the sensitive tier".to_owned(),
        ));
        RiskLevel::Elevated
    } else {
        RiskLevel::Low
    };
    for (kind, days) in &signals.recently_changed_contacts {
        level = level.raised();
        reasons.push(reason(
            "contact_changed_recently",
            format!("the {kind} of record was changed {days} day(s) ago: it cannot be trusted yet"),
        ));
    }
    if signals.caller_number_differs {
        level = level.raised();
        reasons.push(reason(
            "caller_number_differs",
            "the caller is not calling from the phone number of record".to_owned(),
        ));
    }
    if signals.open_cases_for_subject > 0 {
        level = level.raised();
        reasons.push(reason(
            "open_case_for_subject",
            format!(
                "{} other open case(s) about this subject",
                signals.open_cases_for_subject
            ),
        ));
    }
    if signals.recent_recoveries > 0 {
        level = level.raised();
        reasons.push(reason(
            "recent_recovery",
            format!(
                "{} recovery(ies) of this subject executed recently",
                signals.recent_recoveries
            ),
        ));
    }
    if signals.new_hire_without_factors {
        level = level.raised();
        reasons.push(reason(
            "new_hire_without_factors",
            "a new hire with no enrolled authenticator: a favourite impersonation target"
                .to_owned(),
        ));
    }
    if signals.subject_flagged {
        level = RiskLevel::Critical;
        reasons.push(reason(
            "subject_flagged",
            "the security team flagged this subject".to_owned(),
        ));
    }
    if level == RiskLevel::Low {
        reasons.push(reason(
            "baseline",
            format!("{action} for a {tier}-tier subject with no risk signals"),
        ));
    }
    RiskAssessment { level, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_password_reset_without_signals_is_low() {
        let r = assess(Tier::Standard, Action::PasswordReset, &Signals::default());
        assert_eq!(r.level, RiskLevel::Low);
        assert_eq!(r.reasons.len(), 1);
    }

    #[test]
    fn executive_mfa_reset_is_high() {
        let r = assess(Tier::Executive, Action::MfaReset, &Signals::default());
        assert_eq!(r.level, RiskLevel::High);
    }

    #[test]
    fn recently_changed_phone_raises_risk_with_reason() {
        let signals = Signals {
            recently_changed_contacts: vec![(ContactKind::Phone, 3)],
            ..Signals::default()
        };
        let r = assess(Tier::Standard, Action::MfaReset, &signals);
        assert_eq!(r.level, RiskLevel::High);
        assert!(
            r.reasons
                .iter()
                .any(|x| x.code == "contact_changed_recently")
        );
    }

    #[test]
    fn flagged_subject_is_critical() {
        let signals = Signals {
            subject_flagged: true,
            ..Signals::default()
        };
        let r = assess(Tier::Standard, Action::AccountUnlock, &signals);
        assert_eq!(r.level, RiskLevel::Critical);
    }

    #[test]
    fn signals_never_raise_past_critical() {
        let signals = Signals {
            recently_changed_contacts: vec![(ContactKind::Phone, 1), (ContactKind::Email, 1)],
            caller_number_differs: true,
            open_cases_for_subject: 2,
            recent_recoveries: 1,
            ..Signals::default()
        };
        let r = assess(Tier::Executive, Action::MfaReset, &signals);
        assert_eq!(r.level, RiskLevel::Critical);
    }
}
