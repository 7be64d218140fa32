//! Push verification: a number-matched challenge to the subject's enrolled device, and the device's
//! answer.

use super::*;

/// Push with number matching to the subject's enrolled device.
pub(crate) struct Push;

impl VerificationFamily for Push {
    const METHODS: &'static [Method] = &[Method::Push];
    const ANSWERED: Answered = Answered::Device;

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_push(start).await
    }

    fn depends_on(_verification: &Verification) -> Vec<EvidenceChannel> {
        vec![EvidenceChannel::Device(AuthenticatorKind::Push)]
    }
}

impl Service {
    /// Sends a push challenge to the subject's enrolled device. The agent reads the number shown
    /// on the case to the caller, who must enter it on the device: approving blindly is not
    /// possible. Pushes are limited per subject so that a flood cannot wear the person down.
    async fn start_push(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let Start {
            caller,
            stored,
            subject,
            vid,
            ..
        } = start;
        let now = self.now();
        let mut case = stored.case.clone();
        let device = subject
            .authenticators
            .iter()
            .find(|a| a.kind == AuthenticatorKind::Push)
            .ok_or_else(|| {
                AppError::invalid_as(
                    "no_authenticator",
                    "the subject has no enrolled push device",
                )
            })?;
        // Counted in the same commit that records the push, so racing requests cannot overshoot.
        let slot = deskgate_store::SendSlot {
            contact_hash: self.codes.hash("push", &subject.id),
            at: now,
            since: now - Duration::minutes(self.config.codes.send_window_minutes),
            limit: self.config.codes.max_sends_per_contact,
        };
        let mut depends_on = self
            .enrolled_since_pass_units(&subject.id, device.enrolled_at)
            .await?;
        depends_on.insert(takeover::device(&device.id));
        let number = rand::Rng::gen_range(&mut rand::rngs::OsRng, 10..100u32).to_string();
        let v = Verification {
            id: vid.clone(),
            method: Method::Push,
            state: VerificationState::Pending,
            destination: Some(format!(
                "{}: read out the number {number}; the caller must enter it on the device",
                device.label
            )),
            respondent: subject.id.clone(),
            contact_changed_at: None,
            secret_hash: Some(self.codes.hash(&vid, &number)),
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now + Duration::minutes(5),
            completed_at: None,
            respondent_check: None,
            units: depends_on,
        };
        case.start_verification(v, now)?;
        let started = self.started(
            caller,
            &case,
            event::VerificationStarted::Push(event::PushStarted {
                verification_id: vid.clone(),
                method: Method::Push.to_string(),
                class: Method::Push.class().to_string(),
                device: device.id.clone(),
            }),
        );
        self.store
            .commit(Change {
                send_slots: vec![slot],
                ..updating(&case, stored.version, vec![started])
            })
            .await
            .map_err(|e| match e {
                deskgate_store::StoreError::LimitReached { sent } => AppError::rate_limited("push_limit",
                    format!(
                        "{sent} pushes went to this device in the last {} minutes; no more (push fatigue defence)",
                        self.config.codes.send_window_minutes
                    ),
                ),
                other => other.into(),
            })?;
        Ok((vid, self.view(&case).await?))
    }

    /// The subject's device answers the newest pending push: approve with the number the agent
    /// read out, or deny. A wrong number fails the verification.
    pub async fn push_response(
        &self,
        subject_id: &str,
        approve: bool,
        number: Option<&str>,
    ) -> AppResult<Value> {
        let now = self.now();
        let (case_id, vid) = self.newest_pending_push(subject_id, now).await?;
        let stored = self.load_case(&case_id).await?;
        let mut case = stored.case.clone();
        let hash = case
            .verification(&vid)
            .and_then(|v| v.secret_hash.clone())
            .unwrap_or_default();
        let matched = approve && number.is_some_and(|n| self.codes.matches(&vid, n, &hash));
        let before = case.state;
        case.complete_external(&vid, matched, now)?;
        let who = Actor {
            id: subject_id.to_owned(),
            role: "subject".to_owned(),
            auth: "enrolled_device".to_owned(),
        };
        let answer = push_answer(&vid, approve, matched);
        let mut entry = self.entry(&who, Some(&case.id), answer);
        if matched {
            entry = Self::on_evidence(entry, &case);
        }
        let mut audit = vec![entry];
        audit.extend(self.approval_entries(&who, before, &case));
        let escalated = if matched {
            None
        } else {
            self.escalate_after_failures(&who, &mut case)
        };
        audit.extend(escalated.as_ref().map(|e| e.entry.clone()));
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        self.alert_failures(&case, &escalated).await;
        Ok(json!({ "case_id": case.id, "counted": matched, "case_state": case.state }))
    }

    /// The newest pending, unexpired push addressed to `subject_id`: its case and verification.
    async fn newest_pending_push(
        &self,
        subject_id: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(String, String)> {
        // The push went to whoever must answer it: the subject, or for a service account the
        // owner who asked. So look at the subject's own cases and at every case in verification
        // (a bounded set: cases in verification live minutes), keeping those addressed to them.
        let mut cases = self
            .store
            .list_cases(&CaseFilter {
                state: Some(CaseState::Verifying),
                subject_id: Some(subject_id.to_owned()),
                limit: 50,
                ..CaseFilter::default()
            })
            .await?;
        cases.extend(
            self.store
                .list_cases(&CaseFilter {
                    state: Some(CaseState::Verifying),
                    limit: 1000,
                    ..CaseFilter::default()
                })
                .await?,
        );
        cases
            .iter()
            .flat_map(|c| c.verifications.iter().map(move |v| (c, v)))
            .filter(|(_, v)| {
                v.method == Method::Push
                    && v.respondent == subject_id
                    && v.state == VerificationState::Pending
                    && !v.is_expired(now)
            })
            .max_by_key(|(_, v)| v.started_at)
            .map(|(c, v)| (c.id.clone(), v.id.clone()))
            .ok_or_else(|| AppError::not_found("pending push for this device"))
    }
}

/// The audit event of a device's answer to a push.
fn push_answer(vid: &str, approve: bool, matched: bool) -> AuditEvent {
    let outcome = |reason: &str| event::PushOutcome {
        verification_id: vid.to_owned(),
        method: Method::Push.to_string(),
        outcome: reason.to_owned(),
    };
    match (approve, matched) {
        (_, true) => AuditEvent::VerificationPassed(event::VerificationPassed::Push(outcome(
            "approved with the matching number",
        ))),
        (true, false) => AuditEvent::VerificationFailed(event::VerificationFailed::Push(outcome(
            "approved with a wrong number",
        ))),
        (false, _) => AuditEvent::VerificationFailed(event::VerificationFailed::Push(outcome(
            "denied on the device",
        ))),
    }
}
