//! The risk engine with the bundle's thresholds: the signals the service loads from the store
//! become a level with reasons. It wraps `deskgate_core::risk::assess` (tier x action base level
//! and the core signals) and adds the signals whose thresholds live in the bundle: velocity per
//! subject / caller number / agent, off-hours, new hires, subject status and probation.

use deskgate_core::risk::{RiskAssessment, RiskLevel, RiskReason, Signals};
use deskgate_core::{Action, ContactKind, SubjectStatus, Tier};
use serde::{Deserialize, Serialize};

/// Thresholds from `risk.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskThresholds {
    /// Evidence through a contact changed less than this many days ago does not count, and the
    /// change itself raises risk.
    pub contact_freshness_days: u32,
    /// Look-back window, in days, for `RiskSignals::recent_recoveries`.
    pub recent_recovery_days: u32,
    /// A person hired less than this many days ago without an enrolled factor is a new hire.
    pub new_hire_days: u32,
    pub velocity: Velocity,
    pub business_hours: BusinessHours,
    /// Wrong answers and rejected checks on one case; absent from an older bundle: the default.
    #[serde(default)]
    pub failed_verifications: FailedVerifications,
}

/// Failed verifications on one case, every method together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedVerifications {
    /// Each time the failures reach a multiple of this, the case's risk goes up one level, it is
    /// escalated to a security officer, a denial is proposed and the security contacts are
    /// alerted. 0 turns escalation off (a method whose tries are used up still cannot restart).
    pub escalate_after: u32,
}

impl Default for FailedVerifications {
    fn default() -> Self {
        Self { escalate_after: 5 }
    }
}

/// Request-rate limits over one window; counts include the current request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Velocity {
    pub window_minutes: u32,
    pub max_per_subject: u32,
    pub max_per_caller_number: u32,
    pub max_per_agent: u32,
}

/// Working hours in the subject's time zone: `[start_hour, end_hour)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub start_hour: u8,
    pub end_hour: u8,
}

impl RiskThresholds {
    /// Problems with values that parse but make no sense, as human-readable messages.
    pub(crate) fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        let h = &self.business_hours;
        if h.start_hour >= h.end_hour || h.end_hour > 24 {
            out.push(format!(
                "business_hours must satisfy start_hour < end_hour <= 24, got {}..{}",
                h.start_hour, h.end_hour
            ));
        }
        if self.velocity.window_minutes == 0 {
            out.push("velocity.window_minutes must be positive".to_owned());
        }
        out
    }

    /// True when `local_hour` falls outside business hours.
    pub fn is_off_hours(&self, local_hour: u8) -> bool {
        local_hour < self.business_hours.start_hour || local_hour >= self.business_hours.end_hour
    }
}

/// A contact of record that changed, and how long ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactChange {
    pub kind: ContactKind,
    pub days_ago: u32,
}

/// Facts about the request context, loaded by the service for the windows in `RiskThresholds`.
/// Subject status and probation come with the subject itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSignals {
    /// Last changes of the contacts of record (any age: the engine applies the window).
    pub contact_changes: Vec<ContactChange>,
    /// Executed recoveries of the subject in the last `recent_recovery_days`.
    pub recent_recoveries: u32,
    /// Other live cases about the subject.
    pub open_cases_for_subject: u32,
    /// Requests in the velocity window, the current one included.
    pub requests_for_subject: u32,
    pub requests_from_caller_number: u32,
    pub requests_by_agent: u32,
    /// The caller's number is not the subject's number of record.
    pub caller_number_differs: bool,
    /// Hour of day (0-23) in the subject's time zone, when known.
    pub subject_local_hour: Option<u8>,
    /// Days since the subject was hired, when known.
    pub days_since_hire: Option<u32>,
    /// The subject has no enrolled authenticator.
    pub no_enrolled_factors: bool,
    /// Set by the security team.
    pub subject_flagged: bool,
}

/// The signals after thresholds are applied: what Cedar's context receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivedSignals {
    pub contact_changed_recently: bool,
    pub off_hours: bool,
    pub new_hire_without_factors: bool,
}

impl RiskSignals {
    /// Applies `thresholds` to the raw facts.
    pub fn derive(&self, thresholds: &RiskThresholds) -> DerivedSignals {
        DerivedSignals {
            contact_changed_recently: self
                .contact_changes
                .iter()
                .any(|c| c.days_ago < thresholds.contact_freshness_days),
            off_hours: self
                .subject_local_hour
                .is_some_and(|h| thresholds.is_off_hours(h)),
            new_hire_without_factors: self.no_enrolled_factors
                && self
                    .days_since_hire
                    .is_some_and(|d| d < thresholds.new_hire_days),
        }
    }

    /// The core's view of these signals, with the freshness window and new-hire rule applied.
    pub fn to_core(&self, thresholds: &RiskThresholds, status: SubjectStatus) -> Signals {
        let derived = self.derive(thresholds);
        Signals {
            recently_changed_contacts: self
                .contact_changes
                .iter()
                .filter(|c| c.days_ago < thresholds.contact_freshness_days)
                .map(|c| (c.kind, i64::from(c.days_ago)))
                .collect(),
            recent_recoveries: self.recent_recoveries,
            open_cases_for_subject: self.open_cases_for_subject,
            caller_number_differs: self.caller_number_differs,
            new_hire_without_factors: derived.new_hire_without_factors,
            subject_flagged: self.subject_flagged,
            subject_status: Some(status),
        }
    }
}

/// The subject facts the risk engine needs beyond the signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskSubject {
    pub tier: Tier,
    pub status: SubjectStatus,
    pub on_probation: bool,
}

// The core keeps its one-step raise private; this is the same ladder.
fn raised(level: RiskLevel) -> RiskLevel {
    match level {
        RiskLevel::Low => RiskLevel::Elevated,
        RiskLevel::Elevated => RiskLevel::High,
        RiskLevel::High | RiskLevel::Critical => RiskLevel::Critical,
    }
}

/// The level and reasons as the bundle's signals raise them one step each.
struct Raising {
    level: RiskLevel,
    reasons: Vec<RiskReason>,
}

impl Raising {
    fn raise(&mut self, code: &str, text: String) {
        self.level = raised(self.level);
        self.reasons.push(RiskReason {
            code: code.to_owned(),
            text,
        });
    }

    /// Request rates over the velocity window, per subject, caller number and agent.
    fn velocity(&mut self, signals: &RiskSignals, v: &Velocity) {
        if signals.requests_for_subject > v.max_per_subject {
            self.raise(
                "velocity_subject",
                format!(
                    "{} requests about this subject in {} minutes (more than {})",
                    signals.requests_for_subject, v.window_minutes, v.max_per_subject
                ),
            );
        }
        if signals.requests_from_caller_number > v.max_per_caller_number {
            self.raise(
                "velocity_caller_number",
                format!(
                    "{} requests from this caller number in {} minutes (more than {})",
                    signals.requests_from_caller_number, v.window_minutes, v.max_per_caller_number
                ),
            );
        }
        if signals.requests_by_agent > v.max_per_agent {
            self.raise(
                "velocity_agent",
                format!(
                    "{} requests handled by this agent in {} minutes (more than {})",
                    signals.requests_by_agent, v.window_minutes, v.max_per_agent
                ),
            );
        }
    }

    /// A request outside business hours in the subject's time zone.
    fn off_hours(&mut self, signals: &RiskSignals, thresholds: &RiskThresholds) {
        if let Some(hour) = signals.subject_local_hour
            && thresholds.is_off_hours(hour)
        {
            self.raise(
                "off_hours",
                format!(
                    "the request comes at {hour}:00 in the subject's time zone, outside {}:00-{}:00",
                    thresholds.business_hours.start_hour, thresholds.business_hours.end_hour
                ),
            );
        }
    }

    /// A subject who is not at work, or on probation after a recent recovery.
    fn subject(&mut self, subject: RiskSubject) {
        if matches!(
            subject.status,
            SubjectStatus::Disabled | SubjectStatus::OnLeave | SubjectStatus::Terminated
        ) {
            self.raise(
                "subject_status",
                format!("the subject's status is {}", subject.status),
            );
        }
        if subject.on_probation {
            self.raise(
                "on_probation",
                "the subject is on probation after a recent recovery".to_owned(),
            );
        }
    }
}

/// Tier x action x signals -> level with reasons, under the bundle's thresholds.
pub fn assess(
    subject: RiskSubject,
    action: Action,
    signals: &RiskSignals,
    thresholds: &RiskThresholds,
) -> RiskAssessment {
    let core = deskgate_core::risk::assess(
        subject.tier,
        action,
        &signals.to_core(thresholds, subject.status),
    );
    let mut r = Raising {
        level: core.level,
        // The core adds a "baseline" reason only when nothing raised the level; re-derive it at
        // the end.
        reasons: core
            .reasons
            .into_iter()
            .filter(|r| r.code != "baseline")
            .collect(),
    };
    r.velocity(signals, &thresholds.velocity);
    r.off_hours(signals, thresholds);
    r.subject(subject);
    let Raising {
        mut level,
        mut reasons,
    } = r;
    if signals.subject_flagged {
        // The core already made it critical; later raises must not hide that.
        level = RiskLevel::Critical;
    }
    if reasons.is_empty() {
        reasons.push(RiskReason {
            code: "baseline".to_owned(),
            text: format!(
                "{action} for a {}-tier subject with no risk signals",
                subject.tier
            ),
        });
    }
    RiskAssessment { level, reasons }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn thresholds() -> RiskThresholds {
        RiskThresholds {
            contact_freshness_days: 14,
            recent_recovery_days: 30,
            new_hire_days: 30,
            velocity: Velocity {
                window_minutes: 60,
                max_per_subject: 2,
                max_per_caller_number: 3,
                max_per_agent: 30,
            },
            business_hours: BusinessHours {
                start_hour: 7,
                end_hour: 19,
            },
            failed_verifications: FailedVerifications::default(),
        }
    }

    fn subject() -> RiskSubject {
        RiskSubject {
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            on_probation: false,
        }
    }

    fn run(signals: &RiskSignals) -> RiskAssessment {
        assess(subject(), Action::PasswordReset, signals, &thresholds())
    }

    fn has(r: &RiskAssessment, code: &str) -> bool {
        r.reasons.iter().any(|x| x.code == code)
    }

    #[test]
    fn no_signals_is_low_with_a_baseline_reason() {
        let r = run(&RiskSignals::default());
        assert_eq!(r.level, RiskLevel::Low);
        assert!(has(&r, "baseline"));
    }

    #[test]
    fn contact_change_inside_window_raises_and_outside_does_not() {
        let fresh = RiskSignals {
            contact_changes: vec![ContactChange {
                kind: ContactKind::Phone,
                days_ago: 13,
            }],
            ..RiskSignals::default()
        };
        let r = run(&fresh);
        assert_eq!(r.level, RiskLevel::Elevated);
        assert!(has(&r, "contact_changed_recently"));
        assert!(fresh.derive(&thresholds()).contact_changed_recently);
        let old = RiskSignals {
            contact_changes: vec![ContactChange {
                kind: ContactKind::Phone,
                days_ago: 14,
            }],
            ..RiskSignals::default()
        };
        assert_eq!(run(&old).level, RiskLevel::Low);
        assert!(!old.derive(&thresholds()).contact_changed_recently);
    }

    #[test]
    fn recent_recovery_raises() {
        let r = run(&RiskSignals {
            recent_recoveries: 1,
            ..RiskSignals::default()
        });
        assert!(has(&r, "recent_recovery"));
        assert_eq!(r.level, RiskLevel::Elevated);
    }

    #[test]
    fn open_case_for_subject_raises() {
        let r = run(&RiskSignals {
            open_cases_for_subject: 1,
            ..RiskSignals::default()
        });
        assert!(has(&r, "open_case_for_subject"));
    }

    #[test]
    fn velocity_per_subject_raises_only_above_the_limit() {
        let at = run(&RiskSignals {
            requests_for_subject: 2,
            ..RiskSignals::default()
        });
        assert_eq!(at.level, RiskLevel::Low);
        let above = run(&RiskSignals {
            requests_for_subject: 3,
            ..RiskSignals::default()
        });
        assert!(has(&above, "velocity_subject"));
        assert_eq!(above.level, RiskLevel::Elevated);
    }

    #[test]
    fn velocity_per_caller_number_raises() {
        let r = run(&RiskSignals {
            requests_from_caller_number: 4,
            ..RiskSignals::default()
        });
        assert!(has(&r, "velocity_caller_number"));
        assert!(!has(
            &run(&RiskSignals {
                requests_from_caller_number: 3,
                ..RiskSignals::default()
            }),
            "velocity_caller_number"
        ));
    }

    #[test]
    fn velocity_per_agent_raises() {
        let r = run(&RiskSignals {
            requests_by_agent: 31,
            ..RiskSignals::default()
        });
        assert!(has(&r, "velocity_agent"));
    }

    #[test]
    fn caller_number_differs_raises() {
        let r = run(&RiskSignals {
            caller_number_differs: true,
            ..RiskSignals::default()
        });
        assert!(has(&r, "caller_number_differs"));
        assert_eq!(r.level, RiskLevel::Elevated);
    }

    #[test]
    fn off_hours_uses_the_business_hours_bounds() {
        let t = thresholds();
        assert!(t.is_off_hours(6));
        assert!(!t.is_off_hours(7));
        assert!(!t.is_off_hours(18));
        assert!(t.is_off_hours(19));
        let r = run(&RiskSignals {
            subject_local_hour: Some(3),
            ..RiskSignals::default()
        });
        assert!(has(&r, "off_hours"));
        assert!(!has(
            &run(&RiskSignals {
                subject_local_hour: Some(10),
                ..RiskSignals::default()
            }),
            "off_hours"
        ));
    }

    #[test]
    fn new_hire_without_factors_needs_both_facts() {
        let new_hire = RiskSignals {
            days_since_hire: Some(5),
            no_enrolled_factors: true,
            ..RiskSignals::default()
        };
        assert!(has(&run(&new_hire), "new_hire_without_factors"));
        let veteran = RiskSignals {
            days_since_hire: Some(400),
            ..new_hire.clone()
        };
        assert!(!has(&run(&veteran), "new_hire_without_factors"));
        let with_factors = RiskSignals {
            no_enrolled_factors: false,
            ..new_hire
        };
        assert!(!has(&run(&with_factors), "new_hire_without_factors"));
    }

    #[test]
    fn flagged_subject_is_critical() {
        let r = run(&RiskSignals {
            subject_flagged: true,
            ..RiskSignals::default()
        });
        assert_eq!(r.level, RiskLevel::Critical);
        assert!(has(&r, "subject_flagged"));
    }

    #[test]
    fn inactive_status_raises() {
        let r = assess(
            RiskSubject {
                status: SubjectStatus::OnLeave,
                ..subject()
            },
            Action::PasswordReset,
            &RiskSignals::default(),
            &thresholds(),
        );
        assert!(has(&r, "subject_status"));
        let locked = assess(
            RiskSubject {
                status: SubjectStatus::Locked,
                ..subject()
            },
            Action::AccountUnlock,
            &RiskSignals::default(),
            &thresholds(),
        );
        assert_eq!(locked.level, RiskLevel::Low);
    }

    #[test]
    fn probation_raises() {
        let r = assess(
            RiskSubject {
                on_probation: true,
                ..subject()
            },
            Action::PasswordReset,
            &RiskSignals::default(),
            &thresholds(),
        );
        assert!(has(&r, "on_probation"));
        assert_eq!(r.level, RiskLevel::Elevated);
    }

    #[test]
    fn high_value_tier_starts_high() {
        let r = assess(
            RiskSubject {
                tier: Tier::Executive,
                ..subject()
            },
            Action::MfaReset,
            &RiskSignals::default(),
            &thresholds(),
        );
        assert_eq!(r.level, RiskLevel::High);
        assert!(!has(&r, "baseline"));
    }
}
