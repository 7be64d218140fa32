//! Who took part in a case and who decides it: the approval digest every decision is bound to,
//! the people who worked the case (none of whom may vouch for or approve it), approvals and
//! break-glass.

use super::*;

impl Case {
    /// A digest of the case as an approver decides on it: what is asked, of whom, by whom, and
    /// the requirements in force. Approvals bound to another digest do not count.
    pub fn approval_digest(&self) -> String {
        #[derive(Serialize)]
        struct Seen<'a> {
            case_id: &'a str,
            subject_id: &'a str,
            subject_tier: Tier,
            action: Action,
            channel: Channel,
            agent_id: &'a str,
            caller_number: &'a Option<String>,
            ticket: &'a Option<String>,
            new_contact: &'a Option<String>,
            requester: &'a Option<String>,
            opened_at: DateTime<Utc>,
            break_glass: bool,
            requirements: &'a Requirements,
        }
        let seen = Seen {
            case_id: &self.id,
            subject_id: &self.subject_id,
            subject_tier: self.subject_tier,
            action: self.action,
            channel: self.channel,
            agent_id: &self.agent_id,
            caller_number: &self.caller_number,
            ticket: &self.ticket,
            new_contact: &self.new_contact,
            requester: &self.requester,
            opened_at: self.opened_at,
            break_glass: self.break_glass,
            requirements: &self.requirements,
        };
        // Serialising plain data with derived impls cannot fail; an empty digest never matches.
        let text = serde_json::to_string(&seen).unwrap_or_default();
        let digest = sha2::Sha256::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Approvals that count now: bound to the case as it stands, given by a known person.
    pub fn counted_approvals(&self) -> Vec<Approval> {
        let digest = self.approval_digest();
        self.approvals
            .iter()
            .filter(|a| a.case_digest == digest && !a.person_id.is_empty())
            .cloned()
            .collect()
    }

    /// The persons who vouched for or approved the case and whose word still stands: the
    /// respondents of passed attestations and the givers of counted approvals.
    pub fn contributors(&self) -> Vec<&str> {
        let digest = self.approval_digest();
        let mut out: Vec<&str> = self
            .verifications
            .iter()
            .filter(|v| {
                v.method == Method::ManagerAttestation && v.state == VerificationState::Passed
            })
            .map(|v| v.respondent.as_str())
            .collect();
        out.extend(
            self.approvals
                .iter()
                .filter(|a| a.case_digest == digest)
                .map(|a| a.person_id.as_str()),
        );
        out
    }

    /// Persons who may not vouch for this case: the subject, everyone who worked it, and everyone
    /// whose word it already holds.
    pub fn excluded_vouchers(&self) -> Vec<&str> {
        let mut out = vec![self.subject_id.as_str()];
        out.extend(self.participants.iter().map(String::as_str));
        out.extend(self.contributors());
        out
    }

    /// Records that the person behind a staff account works the case. A person who already
    /// vouched for or approved it cannot also work it (one person, one role per case).
    pub fn record_participant(&mut self, person: Option<&str>) -> Result<(), CaseError> {
        let person = person
            .filter(|p| !p.is_empty())
            .ok_or(CaseError::NoLinkedPerson)?;
        if person == self.subject_id {
            return Err(CaseError::SelfService);
        }
        if self.contributors().contains(&person) {
            return Err(CaseError::AlreadyContributed);
        }
        if !self.participants.iter().any(|p| p == person) {
            self.participants.push(person.to_owned());
        }
        Ok(())
    }

    /// Refuses a person as voucher or approver when they are the subject, worked the case, or
    /// already gave their word on it.
    pub(super) fn ensure_independent_person(&self, person: &str) -> Result<(), CaseError> {
        if person.is_empty() {
            return Err(CaseError::NoLinkedPerson);
        }
        if person == self.subject_id {
            return Err(CaseError::SelfService);
        }
        if self.participants.iter().any(|p| p == person) {
            return Err(CaseError::WorkedTheCase);
        }
        if self.contributors().contains(&person) {
            return Err(CaseError::AlreadyApproved);
        }
        Ok(())
    }

    /// Records a staff approval (supervisor, security officer, owner), bound to the case's
    /// [`Case::approval_digest`] now. Persons are compared, not accounts: nobody approves a case
    /// about themselves or one they worked, and one person gives their word on a case once
    /// (an attestation and an approval by the same person count once, as neither). A rejection
    /// denies it.
    pub fn approve(
        &mut self,
        approver_id: &str,
        approver_person: Option<&str>,
        role: ApproverRole,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let person = approver_person.unwrap_or_default();
        if approver_id == self.agent_id {
            return Err(CaseError::SelfService);
        }
        self.ensure_independent_person(person)?;
        let case_digest = self.approval_digest();
        match self.state {
            CaseState::Open | CaseState::Verifying | CaseState::Approved => {}
            other if other.is_live() => {
                return Err(CaseError::IllegalTransition {
                    from: other,
                    to: CaseState::Approved,
                });
            }
            other => return Err(CaseError::NotLive(other)),
        }
        if self
            .approvals
            .iter()
            .any(|a| a.approver_id == approver_id && a.case_digest == case_digest)
        {
            return Err(CaseError::AlreadyApproved);
        }
        self.approvals.push(Approval {
            approver_id: approver_id.to_owned(),
            person_id: person.to_owned(),
            role,
            decision,
            case_digest,
            at: now,
        });
        self.updated_at = now;
        if decision == Decision::Reject {
            self.state = CaseState::Denied;
            self.outcome_reason = Some(format!("{approver_id} ({role}) rejected the request"));
            self.grant = None;
            return Ok(());
        }
        if self.state == CaseState::Open {
            self.state = CaseState::Verifying;
        }
        self.refresh(now);
        Ok(())
    }

    /// Switches a live case to the break-glass requirements (two security officers, a
    /// cooling-off). Evidence already collected still counts; approvals start from nothing:
    /// those given before stay on record but were given on other requirements, and an officer's
    /// routine approval must not become half of a break-glass.
    pub fn open_break_glass(
        &mut self,
        requirements: Requirements,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        match self.state {
            CaseState::Open | CaseState::Verifying => {}
            other if other.is_live() => {
                return Err(CaseError::IllegalTransition {
                    from: other,
                    to: CaseState::Verifying,
                });
            }
            other => return Err(CaseError::NotLive(other)),
        }
        if self.break_glass {
            return Err(CaseError::IllegalTransition {
                from: self.state,
                to: self.state,
            });
        }
        self.break_glass = true;
        self.requirements = requirements;
        self.approvals.clear();
        self.state = CaseState::Verifying;
        self.updated_at = now;
        Ok(())
    }

    /// Pins a policy decision to the case.
    pub fn record_decision(&mut self, pin: PolicyPin) {
        self.decisions.push(pin);
    }
}
