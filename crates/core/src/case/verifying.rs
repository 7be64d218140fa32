//! Verification on a case: starting a method, answering a code, completing an outside check, and
//! the manager's attestation (their sign-in challenge and their word). The core counts each
//! evidence class once and refuses what is not pending.

use super::*;

impl Case {
    /// Whether a verification may start now: only while the case is open or verifying. Asked
    /// before anything leaves Deskgate for it (a code, a vendor inquiry), so a case that ended
    /// sends nothing.
    pub fn ensure_verifiable(&self) -> Result<(), CaseError> {
        match self.state {
            CaseState::Open | CaseState::Verifying => Ok(()),
            CaseState::Approved | CaseState::Escalated => Err(CaseError::IllegalTransition {
                from: self.state,
                to: CaseState::Verifying,
            }),
            other => Err(CaseError::NotLive(other)),
        }
    }

    /// Adds a started verification. A newer one of the same method supersedes a pending one,
    /// so only the latest code sent can pass.
    pub fn start_verification(
        &mut self,
        verification: Verification,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        self.ensure_verifiable()?;
        self.ensure_method_has_tries(verification.method)?;
        for v in &mut self.verifications {
            if v.method == verification.method && v.state == VerificationState::Pending {
                v.state = VerificationState::Expired;
                v.completed_at = Some(now);
            }
        }
        self.verifications.push(verification);
        self.state = CaseState::Verifying;
        self.updated_at = now;
        Ok(())
    }

    pub(super) fn pending(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<&mut Verification, CaseError> {
        let state = self.state;
        if state != CaseState::Verifying {
            return Err(if state.is_live() {
                CaseError::IllegalTransition {
                    from: state,
                    to: CaseState::Verifying,
                }
            } else {
                CaseError::NotLive(state)
            });
        }
        let v = self.verification_mut(id)?;
        if v.state != VerificationState::Pending {
            return Err(CaseError::VerificationNotPending(v.state));
        }
        if v.is_expired(now) {
            return Err(CaseError::VerificationNotPending(
                VerificationState::Expired,
            ));
        }
        Ok(v)
    }

    /// Marks a pending verification whose lifetime ran out as expired. Returns whether it did.
    pub fn expire_verification(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        match self.verifications.iter_mut().find(|v| v.id == id) {
            Some(v) if v.state == VerificationState::Pending && v.is_expired(now) => {
                v.state = VerificationState::Expired;
                v.completed_at = Some(now);
                self.updated_at = now;
                true
            }
            _ => false,
        }
    }

    /// Records one answer to a code verification; `matched` is the caller's constant-time
    /// comparison of the answer with the stored hash.
    pub fn answer_code(
        &mut self,
        id: &str,
        matched: bool,
        now: DateTime<Utc>,
    ) -> Result<AttemptOutcome, CaseError> {
        let v = self.pending(id, now)?;
        if !v.method.is_answered() {
            return Err(CaseError::WrongMethod(v.method));
        }
        let outcome = if matched {
            v.state = VerificationState::Passed;
            v.completed_at = Some(now);
            AttemptOutcome::Passed
        } else {
            v.attempts += 1;
            if v.attempts >= v.max_attempts {
                v.state = VerificationState::Locked;
                v.completed_at = Some(now);
                AttemptOutcome::Locked
            } else {
                AttemptOutcome::Failed {
                    attempts_left: v.max_attempts - v.attempts,
                }
            }
        };
        self.updated_at = now;
        self.refresh(now);
        Ok(outcome)
    }

    /// Completes a verification whose answer comes from outside (an identity-verification vendor,
    /// the subject's enrolled device):
    /// passed counts its class, failed closes it without counting.
    pub fn complete_external(
        &mut self,
        id: &str,
        passed: bool,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let v = self.pending(id, now)?;
        if !matches!(
            v.method,
            Method::IdProofing | Method::Push | Method::Callback | Method::Passkey
        ) {
            return Err(CaseError::WrongMethod(v.method));
        }
        v.state = if passed {
            VerificationState::Passed
        } else {
            VerificationState::Rejected
        };
        v.completed_at = Some(now);
        self.updated_at = now;
        self.refresh(now);
        Ok(())
    }

    pub(super) fn pending_attestation(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<&mut Verification, CaseError> {
        let v = self.pending(id, now)?;
        if v.method != Method::ManagerAttestation {
            return Err(CaseError::WrongMethod(v.method));
        }
        Ok(v)
    }

    /// Records a one-time sign-in code sent to the attestation's respondent on a factor of their
    /// own. At most `max_codes` are sent per link.
    pub fn challenge_respondent(
        &mut self,
        id: &str,
        code_hash: String,
        destination: String,
        expires_at: DateTime<Utc>,
        max_codes: u32,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let v = self.pending_attestation(id, now)?;
        let (passed, sent) = v
            .respondent_check
            .as_ref()
            .map_or((false, 0), |c| (c.passed_at.is_some(), c.codes_sent));
        if passed {
            return Err(CaseError::RespondentAlreadyAuthenticated);
        }
        if sent >= max_codes {
            return Err(CaseError::TooManyRespondentCodes(sent));
        }
        let check = v.respondent_check.get_or_insert_with(Default::default);
        check.codes_sent += 1;
        check.code_hash = Some(code_hash);
        check.code_expires_at = Some(expires_at);
        check.destination = Some(destination);
        self.updated_at = now;
        Ok(())
    }

    /// The hash of the respondent's live sign-in code, for the caller's constant-time compare.
    pub fn respondent_code_hash(&self, id: &str) -> Option<&str> {
        self.verification(id)
            .and_then(|v| v.respondent_check.as_ref())
            .and_then(|c| c.code_hash.as_deref())
    }

    /// Records one answer to the respondent's sign-in code; `matched` is the caller's
    /// constant-time comparison. Wrong answers count across codes: at the verification's
    /// attempt limit the attestation locks and can no longer count.
    pub fn authenticate_respondent(
        &mut self,
        id: &str,
        matched: bool,
        now: DateTime<Utc>,
    ) -> Result<AttemptOutcome, CaseError> {
        let v = self.pending_attestation(id, now)?;
        let max = v.max_attempts;
        let check = v
            .respondent_check
            .as_mut()
            .filter(|c| c.code_hash.is_some())
            .ok_or(CaseError::NoRespondentChallenge)?;
        if check.passed_at.is_some() {
            return Err(CaseError::RespondentAlreadyAuthenticated);
        }
        if check.code_expires_at.is_none_or(|at| now >= at) {
            return Err(CaseError::RespondentChallengeExpired);
        }
        let outcome = if matched {
            check.code_hash = None;
            check.code_expires_at = None;
            check.method = Some(Method::SmsCode);
            check.passed_at = Some(now);
            AttemptOutcome::Passed
        } else {
            check.failures += 1;
            if check.failures >= max {
                check.code_hash = None;
                v.state = VerificationState::Locked;
                v.completed_at = Some(now);
                AttemptOutcome::Locked
            } else {
                AttemptOutcome::Failed {
                    attempts_left: max - check.failures,
                }
            }
        };
        self.updated_at = now;
        self.refresh(now);
        Ok(outcome)
    }

    /// Records the manager's (or owner's) attestation, once they have proved who they are. A
    /// rejection denies the case: the person who knows the subject says the request is not
    /// genuine.
    pub fn attest(
        &mut self,
        id: &str,
        approver_id: &str,
        role: ApproverRole,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        self.ensure_independent_person(approver_id)?;
        let case_digest = self.approval_digest();
        let v = self.pending_attestation(id, now)?;
        if v.respondent != approver_id {
            return Err(CaseError::NotRespondent);
        }
        if v.respondent_check
            .as_ref()
            .is_none_or(|c| c.passed_at.is_none())
        {
            return Err(CaseError::RespondentNotAuthenticated);
        }
        v.completed_at = Some(now);
        v.state = match decision {
            Decision::Confirm => VerificationState::Passed,
            Decision::Reject => VerificationState::Rejected,
        };
        self.approvals.push(Approval {
            approver_id: approver_id.to_owned(),
            person_id: approver_id.to_owned(),
            role,
            decision,
            case_digest,
            at: now,
        });
        self.updated_at = now;
        if decision == Decision::Reject {
            self.state = CaseState::Denied;
            self.outcome_reason = Some(format!("{approver_id} rejected the request"));
            self.grant = None;
        } else {
            self.refresh(now);
        }
        Ok(())
    }
}
