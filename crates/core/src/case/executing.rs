//! Execution: the grant minted when requirements are met, its single use, and the in-flight
//! state while a connector acts, which ends only in executed or failed.

use super::*;

impl Case {
    /// Consumes the grant and marks the case executed. The caller performs the action only after
    /// persisting this change, so a grant can never be used twice.
    pub fn execute(&mut self, agent_id: &str, now: DateTime<Utc>) -> Result<Grant, CaseError> {
        let used = self.begin_execution(agent_id, now)?;
        self.state = CaseState::Executed;
        self.executed_at = Some(now);
        Ok(used)
    }

    /// Consumes the grant for an action performed by an external connector, whose outcome is
    /// known only after the call. The case stays `approved` with its grant consumed until
    /// [`Case::complete_execution`] or [`Case::fail_execution`]; the caller persists this change
    /// before calling the connector, so the grant can never be used twice. Nothing but the
    /// connector's outcome ends a case here; one left by a crash mid-call is failed with
    /// [`Case::fail_execution`] (the outcome unknown) and never executed again.
    pub fn begin_execution(
        &mut self,
        agent_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, CaseError> {
        match self.state {
            CaseState::Approved => {}
            CaseState::Open | CaseState::Verifying => {
                return Err(CaseError::RequirementsNotMet(Box::new(self.progress(now))));
            }
            CaseState::Executed | CaseState::Closed => return Err(CaseError::GrantConsumed),
            other => return Err(CaseError::NotLive(other)),
        }
        // The grant was minted on evidence that may since have gone stale; check again.
        let progress = self.progress(now);
        if !progress.met {
            return Err(CaseError::RequirementsNotMet(Box::new(progress)));
        }
        let grant = self
            .grant
            .as_mut()
            .ok_or(CaseError::RequirementsNotMet(Box::new(progress)))?;
        if grant.agent_id != agent_id {
            return Err(CaseError::NotGrantHolder);
        }
        if grant.consumed_at.is_some() {
            return Err(CaseError::GrantConsumed);
        }
        if let Some(from) = grant.not_before
            && now < from
        {
            return Err(CaseError::CoolingOff(from));
        }
        if now >= grant.expires_at {
            return Err(CaseError::GrantExpired);
        }
        grant.consumed_at = Some(now);
        let used = grant.clone();
        self.updated_at = now;
        Ok(used)
    }

    /// True while a consumed grant waits for its connector's answer.
    pub fn execution_in_flight(&self) -> bool {
        self.state == CaseState::Approved
            && self.grant.as_ref().is_some_and(|g| g.consumed_at.is_some())
    }

    pub(super) fn ensure_in_flight(&self, to: CaseState) -> Result<(), CaseError> {
        if self.execution_in_flight() {
            Ok(())
        } else {
            Err(CaseError::IllegalTransition {
                from: self.state,
                to,
            })
        }
    }

    /// The connector performed the action.
    pub fn complete_execution(&mut self, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.ensure_in_flight(CaseState::Executed)?;
        self.state = CaseState::Executed;
        self.executed_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// The connector reported an error. The case ends as `failed`, its grant spent: going back
    /// to `approved` with a new grant would let the same (by now older) evidence drive a second
    /// attempt on a directory that may have applied part of the first one, with nobody deciding
    /// to retry. The agent opens a new case, which verifies afresh and sees this one in the
    /// subject's history.
    pub fn fail_execution(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.ensure_in_flight(CaseState::Failed)?;
        self.state = CaseState::Failed;
        self.outcome_reason = Some(reason);
        self.updated_at = now;
        Ok(())
    }
}
