//! What evidence a case needs before a grant may be minted, and how collected evidence is counted
//! against it. The simple rules here stand until the policy bundle supplies requirements.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::case::{Approval, ApproverRole, Decision};
use crate::directory::{Action, Tier};
use crate::evidence::{Evidence, IndependenceClass};
use crate::takeover;

/// The bar a case must clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Minimum number of distinct counted independence classes.
    pub min_classes: u32,
    /// Each inner set must be hit by at least one counted class.
    pub required_any_of: Vec<BTreeSet<IndependenceClass>>,
    /// Evidence through a contact changed less than this many days ago does not count.
    pub contact_freshness_days: i64,
    /// Lifetime of the grant minted when the case is approved.
    pub grant_minutes: i64,
    /// Staff approvals needed besides the evidence (a role listed twice needs two people).
    #[serde(default)]
    pub approvals: Vec<ApproverRole>,
    /// Delay between the requirements being met and the grant becoming usable.
    #[serde(default)]
    pub cooling_off_minutes: i64,
    /// Lifetime of a temporary access pass issued by this case.
    #[serde(default = "default_tap_minutes")]
    pub tap_minutes: i64,
    /// How long the subject stays on probation after execution.
    #[serde(default = "default_probation_hours")]
    pub probation_hours: i64,
}

fn default_tap_minutes() -> i64 {
    60
}

fn default_probation_hours() -> i64 {
    72
}

impl Requirements {
    /// The foundation's fixed rules: one class for a standard password reset or unlock;
    /// otherwise two distinct classes, one of them the manager (or a second owner).
    pub fn simple_rules(tier: Tier, action: Action) -> Self {
        let light = matches!(tier, Tier::Standard | Tier::Sensitive)
            && matches!(action, Action::PasswordReset | Action::AccountUnlock);
        let (min_classes, required_any_of) = if light {
            (1, Vec::new())
        } else {
            (2, vec![BTreeSet::from([IndependenceClass::Manager])])
        };
        Self {
            min_classes,
            required_any_of,
            contact_freshness_days: 14,
            grant_minutes: 10,
            approvals: Vec::new(),
            cooling_off_minutes: 0,
            tap_minutes: default_tap_minutes(),
            probation_hours: default_probation_hours(),
        }
    }

    pub fn freshness(&self) -> Duration {
        Duration::days(self.contact_freshness_days)
    }

    /// Why this piece of evidence does not count, or `None` when it does.
    pub fn discount_reason(&self, e: &Evidence, now: DateTime<Utc>) -> Option<String> {
        if !e.class.counts() {
            return Some(format!(
                "{} is recorded but never counts: answers about a person can be researched",
                e.class
            ));
        }
        match e.contact_changed_at {
            Some(changed) if now - changed < self.freshness() => Some(format!(
                "the contact used was changed {} day(s) ago, inside the {}-day freshness window",
                (now - changed).num_days(),
                self.contact_freshness_days
            )),
            _ => None,
        }
    }

    /// Staff approvals still missing: each confirmed approval fills one listed role, and one
    /// person's approval never counts twice (persons, not accounts, are compared). Manager attestations are evidence, not approvals.
    pub fn missing_approvals(&self, approvals: &[Approval]) -> Vec<ApproverRole> {
        let mut used: Vec<&str> = Vec::new();
        let mut missing = Vec::new();
        for role in &self.approvals {
            let found = approvals.iter().find(|a| {
                a.role == *role
                    && a.decision == Decision::Confirm
                    && !a.person_id.is_empty()
                    && !used.contains(&a.person_id.as_str())
            });
            match found {
                Some(a) => used.push(&a.person_id),
                None => missing.push(*role),
            }
        }
        missing
    }

    /// Counts `evidence` and `approvals` at `now`: each class at most once, stale contacts and
    /// knowledge never, each approver once.
    pub fn evaluate(
        &self,
        evidence: &[Evidence],
        approvals: &[Approval],
        now: DateTime<Utc>,
    ) -> Progress {
        let counting: Vec<&Evidence> = evidence
            .iter()
            .filter(|e| self.discount_reason(e, now).is_none())
            .collect();
        // Independence is computed from takeover units: one takeover never yields two classes.
        let selection = takeover::select(&counting, &self.required_any_of);
        let counted: BTreeSet<IndependenceClass> = selection.counted.keys().copied().collect();
        let missing_any_of: Vec<BTreeSet<IndependenceClass>> = self
            .required_any_of
            .iter()
            .filter(|set| set.is_disjoint(&counted))
            .cloned()
            .collect();
        let count = u32::try_from(counted.len()).unwrap_or(u32::MAX);
        let classes_short = self.min_classes.saturating_sub(count);
        let approvals_missing = self.missing_approvals(approvals);
        Progress {
            met: classes_short == 0 && missing_any_of.is_empty() && approvals_missing.is_empty(),
            counted_classes: counted,
            classes_short,
            missing_any_of,
            approvals_missing,
            not_independent: selection.not_independent,
        }
    }
}

/// How far collected evidence goes toward the requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub met: bool,
    pub counted_classes: BTreeSet<IndependenceClass>,
    /// Distinct classes still to collect.
    pub classes_short: u32,
    /// Required class sets not yet hit.
    pub missing_any_of: Vec<BTreeSet<IndependenceClass>>,
    /// Staff approvals not yet given.
    pub approvals_missing: Vec<ApproverRole>,
    /// Verification id -> why its evidence does not count as a class of its own (it shares a
    /// takeover unit with, or is of the same class as, evidence that counts).
    #[serde(default)]
    pub not_independent: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Method;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn ev(method: Method, changed_days_ago: Option<i64>) -> Evidence {
        Evidence {
            verification_id: format!("v-{method}"),
            method,
            class: method.class(),
            passed_at: now(),
            contact_changed_at: changed_days_ago.map(|d| now() - Duration::days(d)),
            units: BTreeSet::from([format!("unit-of-{method}")]),
        }
    }

    #[test]
    fn standard_password_reset_needs_one_class() {
        let r = Requirements::simple_rules(Tier::Standard, Action::PasswordReset);
        assert!(!r.evaluate(&[], &[], now()).met);
        assert!(
            r.evaluate(&[ev(Method::EmailCode, Some(400))], &[], now())
                .met
        );
    }

    #[test]
    fn mfa_reset_needs_manager_among_two_classes() {
        let r = Requirements::simple_rules(Tier::Standard, Action::MfaReset);
        let two_without_manager = [
            ev(Method::EmailCode, Some(400)),
            ev(Method::SmsCode, Some(400)),
        ];
        let p = r.evaluate(&two_without_manager, &[], now());
        assert!(!p.met);
        assert_eq!(p.classes_short, 0);
        assert_eq!(p.missing_any_of.len(), 1);
        let with_manager = [
            ev(Method::SmsCode, Some(400)),
            ev(Method::ManagerAttestation, None),
        ];
        assert!(r.evaluate(&with_manager, &[], now()).met);
    }

    #[test]
    fn privileged_password_reset_is_not_light() {
        let r = Requirements::simple_rules(Tier::Privileged, Action::PasswordReset);
        assert_eq!(r.min_classes, 2);
    }

    #[test]
    fn two_methods_of_one_class_count_once() {
        let r = Requirements::simple_rules(Tier::Standard, Action::MfaReset);
        let p = r.evaluate(
            &[ev(Method::SmsCode, None), ev(Method::VoiceCode, None)],
            &[],
            now(),
        );
        assert_eq!(p.counted_classes.len(), 1);
        assert_eq!(p.classes_short, 1);
    }

    #[test]
    fn contact_changed_within_window_does_not_count() {
        let r = Requirements::simple_rules(Tier::Standard, Action::PasswordReset);
        let stale = ev(Method::SmsCode, Some(3));
        assert!(r.discount_reason(&stale, now()).is_some());
        assert!(!r.evaluate(&[stale], &[], now()).met);
    }

    fn approval(id: &str, role: ApproverRole) -> Approval {
        Approval {
            approver_id: id.to_owned(),
            person_id: id.to_owned(),
            role,
            decision: Decision::Confirm,
            case_digest: String::new(),
            at: now(),
        }
    }

    #[test]
    fn one_person_never_fills_two_approvals() {
        let r = Requirements {
            approvals: vec![ApproverRole::SecurityOfficer, ApproverRole::SecurityOfficer],
            ..Requirements::simple_rules(Tier::Standard, Action::PasswordReset)
        };
        let same = [
            approval("s1", ApproverRole::SecurityOfficer),
            approval("s1", ApproverRole::SecurityOfficer),
        ];
        assert_eq!(
            r.missing_approvals(&same),
            vec![ApproverRole::SecurityOfficer]
        );
        let two = [
            approval("s1", ApproverRole::SecurityOfficer),
            approval("s2", ApproverRole::SecurityOfficer),
        ];
        assert!(r.missing_approvals(&two).is_empty());
        let e = [ev(Method::EmailCode, Some(400))];
        assert!(!r.evaluate(&e, &same, now()).met);
        assert!(r.evaluate(&e, &two, now()).met);
    }

    #[test]
    fn knowledge_never_counts() {
        let r = Requirements::simple_rules(Tier::Standard, Action::PasswordReset);
        assert!(!r.evaluate(&[ev(Method::Knowledge, None)], &[], now()).met);
    }
}
