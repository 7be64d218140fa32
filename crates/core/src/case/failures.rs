//! Failed verifications on a case. A method whose tries are used up cannot start again on the
//! case: a new code would hand the caller as many fresh guesses. Wrong answers and rejected
//! checks add up over every method, superseded codes included, and each time they reach a
//! multiple of the bundle's limit the case's risk goes up one level and the case is escalated
//! to a security officer, who resumes or denies it.

use super::*;
use crate::risk::RiskReason;

/// What one escalation for failures did, for the audit entry and the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureEscalation {
    pub failures: u32,
    pub limit: u32,
    pub risk_before: RiskLevel,
    pub risk_after: RiskLevel,
    pub reason: String,
}

impl Case {
    /// Wrong answers and rejected checks on this case, every method together.
    pub fn failures(&self) -> u32 {
        self.verifications
            .iter()
            .map(|v| v.attempts + u32::from(v.state == VerificationState::Rejected))
            .sum()
    }

    /// Methods whose tries are used up on this case.
    pub fn exhausted_methods(&self) -> Vec<Method> {
        let mut out: Vec<Method> = self
            .verifications
            .iter()
            .filter(|v| v.state == VerificationState::Locked)
            .map(|v| v.method)
            .collect();
        out.dedup();
        out
    }

    /// Refuses a method whose tries are used up on this case; asked before anything is sent.
    pub fn ensure_method_has_tries(&self, method: Method) -> Result<(), CaseError> {
        if self
            .verifications
            .iter()
            .any(|v| v.method == method && v.state == VerificationState::Locked)
        {
            return Err(CaseError::MethodExhausted(method));
        }
        Ok(())
    }

    /// Escalates the case when its failures reached the next multiple of `limit` (0: never),
    /// raising its risk one level with the reason. Only a case still in verification escalates.
    pub fn escalate_after_failures(
        &mut self,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Option<FailureEscalation> {
        if limit == 0 || !matches!(self.state, CaseState::Open | CaseState::Verifying) {
            return None;
        }
        let failures = self.failures();
        let due = failures / limit;
        if due <= self.failure_escalations {
            return None;
        }
        let reason = format!(
            "{failures} wrong answers or rejected checks on this case (the limit is {limit}): \
             the caller may be guessing; a security officer decides, and a denial is proposed"
        );
        let risk_before = self.risk.level;
        self.escalate(reason.clone(), now).ok()?;
        self.failure_escalations = due;
        self.risk.level = risk_before.raised();
        self.risk.reasons.retain(|r| r.code != "baseline");
        self.risk.reasons.push(RiskReason {
            code: "failed_verifications".to_owned(),
            text: format!("{failures} wrong answers or rejected checks on this case"),
        });
        Some(FailureEscalation {
            failures,
            limit,
            risk_before,
            risk_after: self.risk.level,
            reason,
        })
    }
}
