//! Verifications: which methods are offered, starting one and checking an answer read back by the
//! caller. What every method shares is here; each method's own part is its family's, in
//! [`super::methods`].

use super::methods::{Answered, Checked, Family, OFFER_ORDER, Start};
use super::*;

impl Service {
    /// Methods the agent can use for this subject now, in the order the playbook offers them:
    /// each method's family loads what the store and configuration say, [`deskgate_core::offer`]
    /// decides.
    pub async fn offered_methods(&self, subject: &Subject, case: &Case) -> AppResult<Vec<Method>> {
        let mut offered = Vec::new();
        let exhausted = case.exhausted_methods();
        for method in OFFER_ORDER {
            // A method whose tries are used up on the case is never offered again on it.
            if exhausted.contains(&method) {
                continue;
            }
            let family = Family::of(method)
                .ok_or_else(|| AppError::internal("method_unregistered", method.to_string()))?;
            if family.offers(self, method, subject, case).await? {
                offered.push(method);
            }
        }
        Ok(offered)
    }

    /// Starts a verification. What every method shares is checked here (who may work the case,
    /// the per-case cap, who is verified, a device bound too recently); the method's family
    /// starts it. For codes and links the message is delivered before the case records it, so a
    /// failed delivery leaves the case unchanged and the agent can retry.
    pub async fn start_verification(
        &self,
        caller: &Staff,
        case_id: &str,
        method: Method,
    ) -> AppResult<(String, CaseView)> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        // A case that ended takes no verification (the rest is refused by each family, after
        // its own clearer reasons, and before anything leaves Deskgate).
        if let Err(ended @ deskgate_core::CaseError::NotLive(_)) = stored.case.ensure_verifiable() {
            return Err(ended.into());
        }
        self.ensure_under_verification_cap(&stored.case)?;
        // A method whose tries are used up is refused before a new code could go out.
        stored.case.ensure_method_has_tries(method)?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        if method == Method::Knowledge {
            return Err(AppError::invalid_as(
                "method_never_counts",
                "knowledge questions never count toward verification: answers about a person can be researched",
            ));
        }
        let family = Family::of(method)
            .filter(|_| OFFER_ORDER.contains(&method))
            .ok_or_else(|| {
                AppError::invalid_as(
                    "method_not_available",
                    format!("{method} is not available in this deployment yet"),
                )
            })?;
        let subject = self.required_subject(&case.subject_id).await?;
        let subject = self.verified_person(&case, subject, method).await?;
        self.ensure_device_settled(&case, &subject, method)?;
        // The family loads the case from `stored`: hand it the one that records who works it.
        let stored = StoredCase {
            case,
            version: stored.version,
        };
        let vid = format!("v-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let start = Start {
            caller,
            stored,
            subject,
            vid,
            method,
        };
        family.start(self, start).await
    }

    fn ensure_under_verification_cap(&self, case: &Case) -> AppResult<()> {
        let cap = self.config.max_verifications_per_case;
        if case.verifications.len() >= usize::try_from(cap).unwrap_or(usize::MAX) {
            metrics::counter!("deskgate_rate_limit_refusals_total", "limit" => "verifications_per_case").increment(1);
            return Err(AppError::rate_limited(
                "too_many_verifications",
                format!(
                    "this case has already started {cap} verifications, the most one case may; \
                     deny or cancel it, or escalate it to a security officer"
                ),
            ));
        }
        Ok(())
    }

    /// The person a verification of `method` verifies. A service account has no person to
    /// verify: its registered owner who asked is verified instead, through their own contacts
    /// and devices. The second owner vouches by link.
    async fn verified_person(
        &self,
        case: &Case,
        subject: Subject,
        method: Method,
    ) -> AppResult<Subject> {
        if !subject.is_non_human() || method == Method::ManagerAttestation {
            return Ok(subject);
        }
        let requester = case
            .requester
            .as_ref()
            .filter(|r| subject.owners.contains(r))
            .ok_or_else(|| {
                AppError::invalid_as("requester_not_owner",
                    "a service account is recovered for a registered owner: open the case with requester set to one",
                )
            })?;
        self.subject_or(requester, "requester_not_owner").await
    }

    /// Refuses a device method when every device of its kind on record was bound inside the
    /// freshness window: such a factor may be an attacker's own.
    fn ensure_device_settled(
        &self,
        case: &Case,
        subject: &Subject,
        method: Method,
    ) -> AppResult<()> {
        let now = self.now();
        if let Some(kind) = device_kind(method)
            && subject.authenticators.iter().any(|a| a.kind == kind)
            && !subject.has_settled_authenticator(kind, case.requirements.freshness(), now)
        {
            return Err(AppError::invalid_as(
                "authenticator_too_new",
                format!(
                    "every {kind} on record was bound less than {} day(s) ago; a factor bound inside \
                     the freshness window may be an attacker's own, so it is not a device of record yet",
                    case.requirements.contact_freshness_days
                ),
            ));
        }
        Ok(())
    }

    /// Checks a code read back by the caller.
    pub async fn answer_code(
        &self,
        caller: &Staff,
        case_id: &str,
        vid: &str,
        code: &str,
    ) -> AppResult<CaseView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        let verification = case
            .verification(vid)
            .ok_or_else(|| AppError::not_found("verification"))?
            .clone();
        let family = Family::of(verification.method).ok_or_else(|| {
            AppError::invalid_as("method_never_counts", "this method is never answered")
        })?;
        let code = family.read_answer(verification.method, code.trim())?;
        let who = actor(caller);
        if case.expire_verification(vid, now) {
            return Err(self
                .record_expired(&who, &case, stored.version, &verification)
                .await);
        }
        // Single use even under concurrency: the family's check says what to spend, and the
        // store spends it in the commit below only if it is still unused.
        // Only a family answered by read-back checks a typed answer; for any other the core
        // refuses the answer for its method.
        let checked = if family.answered() == Answered::ReadBack {
            family.check(self, &case, &verification, &code).await?
        } else {
            Checked::default()
        };
        let matched = checked.matched;
        let before = case.state;
        let outcome = case.answer_code(vid, matched, now)?;
        let first = self.answer_entry(&who, &case, &verification, outcome);
        let escalated = if matched {
            None
        } else {
            self.escalate_after_failures(&who, &mut case)
        };
        let mut audit = vec![first];
        audit.extend(self.approval_entries(&who, before, &case));
        audit.extend(escalated.as_ref().map(|e| e.entry.clone()));
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                spend_recovery_codes: checked.spend_recovery_codes,
                swap_credentials: checked.swap_credentials,
                audit,
                ..Change::default()
            })
            .await?;
        self.alert_failures(&case, &escalated).await;
        match outcome {
            AttemptOutcome::Passed => self.view(&case).await,
            refused => Err(wrong_code(refused, escalated.is_some())),
        }
    }

    /// Records that the verification expired before its answer came, and says so.
    async fn record_expired(
        &self,
        who: &Actor,
        case: &Case,
        version: i64,
        verification: &Verification,
    ) -> AppError {
        let expired = AuditEvent::VerificationExpired(event::VerificationExpired {
            verification_id: verification.id.clone(),
            method: verification.method.to_string(),
        });
        let change = updating(
            case,
            version,
            vec![self.entry(who, Some(&case.id), expired)],
        );
        if let Err(e) = self.store.commit(change).await {
            return e.into();
        }
        AppError::conflict(
            "verification_expired",
            "the code expired; start a new verification",
        )
    }

    /// The audit entry of one answer: passed (with this verification's own evidence digest),
    /// failed with the attempts left, or locked.
    fn answer_entry(
        &self,
        who: &Actor,
        case: &Case,
        verification: &Verification,
        outcome: AttemptOutcome,
    ) -> NewAuditEntry {
        let vid = verification.id.as_str();
        let answered = code_verification(vid, verification.method);
        let answer = match outcome {
            AttemptOutcome::Passed => {
                AuditEvent::VerificationPassed(event::VerificationPassed::Code(answered))
            }
            AttemptOutcome::Failed { attempts_left } => AuditEvent::VerificationFailed(
                event::VerificationFailed::WrongCode(event::WrongCode {
                    verification_id: vid.to_owned(),
                    method: verification.method.to_string(),
                    attempts_left,
                }),
            ),
            AttemptOutcome::Locked => AuditEvent::VerificationLocked(answered),
        };
        let mut entry = self.entry(who, Some(&case.id), answer);
        if outcome == AttemptOutcome::Passed {
            // This verification's own evidence digest: the last one the case holds.
            entry.evidence_digests = Self::evidence_digests(case)
                .into_iter()
                .zip(case.evidence())
                .filter(|(_, e)| e.verification_id == vid)
                .map(|(d, _)| d)
                .collect();
        }
        entry
    }
}

/// The refusal of a wrong code: how many attempts are left, or that the verification is locked,
/// and whether the failures escalated the case.
fn wrong_code(outcome: AttemptOutcome, escalated: bool) -> AppError {
    let (left, locked, said) = match outcome {
        AttemptOutcome::Failed { attempts_left } => (
            attempts_left,
            false,
            format!("the code is wrong; {attempts_left} attempt(s) left"),
        ),
        _ => (
            0,
            true,
            "the code is wrong; the verification is now locked and cannot be sent again on this case"
                .to_owned(),
        ),
    };
    let said = if escalated {
        format!(
            "{said}. Too many failed verifications on this case: it is escalated to a security \
             officer and the security team is alerted; propose a denial to the caller"
        )
    } else {
        said
    };
    AppError::invalid_as("wrong_code", said)
        .with_details(json!({ "attempts_left": left, "locked": locked, "escalated": escalated }))
}
