//! Execution: the grant consumed, the action performed through the directory or a connector, and
//! what follows it.

use super::*;

impl Service {
    /// Consumes the case's grant and performs the action through the configured connector
    /// (the built-in directory unless `connector` says otherwise).
    pub async fn execute(&self, caller: &Staff, case_id: &str) -> AppResult<ExecutionView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let stored = self.sync_before_execution(stored).await?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        let who = actor(caller);
        let grant = match case.execute(&caller.id, now) {
            Ok(g) => g,
            Err(deskgate_core::CaseError::GrantExpired) => {
                let mut expired = stored.case.clone();
                expired.expire("the grant expired before it was used".to_owned(), now)?;
                self.store
                    .commit(Change {
                        case: Some(CaseWrite::Update {
                            case: expired,
                            expected_version: stored.version,
                        }),
                        audit: vec![self.entry_untyped(
                            &who,
                            Some(case_id),
                            "grant.expired",
                            json!({ "grant_id": stored.case.grant.as_ref().map(|g| g.id.clone()) }),
                        )],
                        ..Change::default()
                    })
                    .await?;
                return Err(deskgate_core::CaseError::GrantExpired.into());
            }
            Err(e) => return Err(e.into()),
        };
        let subject = self.required_subject(&case.subject_id).await?;
        // Cedar is the final gate, asked with the evidence actually collected.
        let decision = self
            .decide_on_case(Stage::Execute, caller, &stored.case, &subject)
            .await?;
        let pin = policy_gate::pin(&decision, now);
        if decision.outcome != Outcome::Allow {
            let mut refused = stored.case.clone();
            let escalate = decision.outcome == Outcome::Escalate;
            if escalate {
                refused.escalate(pin.reasons.join("; "), now)?;
            }
            refused.record_decision(pin.clone());
            self.store
                .commit(Change {
                    case: Some(CaseWrite::Update {
                        case: refused,
                        expected_version: stored.version,
                    }),
                    audit: vec![self.pinned(
                        self.entry_untyped(
                            &who,
                            Some(case_id),
                            if escalate {
                                "case.escalated"
                            } else {
                                "execution.refused"
                            },
                            json!({ "reasons": pin.reasons, "policy_ids": pin.policy_ids }),
                        ),
                        &pin,
                    )],
                    ..Change::default()
                })
                .await?;
            return Err(if escalate {
                AppError::conflict(
                    "escalated",
                    format!(
                        "the case was escalated to a security officer: {}",
                        pin.reasons.join("; ")
                    ),
                )
                .with_details(json!({ "reasons": pin.reasons, "policy_ids": pin.policy_ids }))
            } else {
                policy_refusal(&pin)
            });
        }
        if let Some(connector) = self.connector.clone() {
            return self
                .execute_through_connector(connector.as_ref(), caller, &stored, subject, pin, now)
                .await;
        }
        case.record_decision(pin.clone());
        let manager = match &subject.manager {
            Some(m) => self.store.subject(m).await?,
            None => None,
        };
        // A rotated service secret goes to the owner who asked and was verified.
        let owner = match &case.requester {
            Some(id) if subject.is_non_human() && subject.owners.contains(id) => {
                self.store.subject(id).await?
            }
            _ => None,
        };
        let tap_ttl = Duration::minutes(case.requirements.tap_minutes);
        let mut execution = directory::execute(&case, &subject, owner.as_ref(), tap_ttl, now)
            .map_err(|e| AppError::invalid_as("execution_refused", e.to_string()))?;
        // Further high-risk changes escalate while the subject is on probation.
        execution.subject.probation_until =
            Some(now + Duration::hours(case.requirements.probation_hours));
        // A rotated service secret is sealed and handed over once, by a retrieval link to the
        // owner who asked; it never travels in a message.
        let mut pickup_message = None;
        if let Some((secret, owner)) = &execution.pickup {
            let (credential, link, message) = self.pickup(&case, owner, secret, now)?;
            execution.credentials.push(credential);
            pickup_message = Some((link, message));
        }
        let (not_me_url, not_me_link) = self.not_me_link(&case, &subject.id, now);
        let notices = directory::notices(
            &case,
            &subject,
            &execution.subject,
            manager.as_ref(),
            &not_me_url,
            now,
        );
        let audit = vec![
            Self::on_evidence(self.entry_untyped(
                &who,
                Some(&case.id),
                "grant.consumed",
                json!({
                    "grant_id": grant.id, "agent_id": grant.agent_id, "subject_id": grant.subject_id,
                    "tier": case.subject_tier, "action": grant.action,
                }),
            ), &case),
            self.pinned(Self::on_evidence(self.entry_untyped(
                &system_actor(),
                Some(&case.id),
                "execution.performed",
                json!({
                    "connector": "builtin",
                    "action": case.action,
                    "subject_id": case.subject_id,
                    "tier": case.subject_tier,
                    "result": execution.details,
                    "notices": notices.iter().map(|n| json!({"channel": n.channel, "subject_id": n.subject_id})).collect::<Vec<_>>(),
                }),
            ), &case), &pin),
        ];
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                subjects: vec![execution.subject.clone()],
                credentials: execution.credentials.clone(),
                new_links: std::iter::once(not_me_link)
                    .chain(pickup_message.as_ref().map(|(link, _)| link.clone()))
                    .collect(),
                audit,
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, "recovery executed");
        let pickup_notice = pickup_message.map(|(_, m)| m);
        let messages = execution
            .secret_message
            .iter()
            .chain(pickup_notice.iter())
            .chain(notices.iter());
        let failures = self.deliver_after_execution(&case.id, messages).await?;
        Ok(ExecutionView {
            case: self.view(&case).await?,
            grant_id: grant.id,
            result: execution.details,
            notices_sent: notices.len(),
            delivery_failures: failures,
        })
    }

    /// Sends what an execution produced (the secret, the pickup link, the notices), after its
    /// commit. The action has happened, so a failed delivery does not undo it; the audit trail
    /// records who was not told. Returns how many messages failed.
    pub(crate) async fn deliver_after_execution(
        &self,
        case_id: &str,
        messages: impl Iterator<Item = &Message>,
    ) -> AppResult<usize> {
        let mut failures = Vec::new();
        for message in messages {
            if let Err(e) = self.delivery.send(message).await {
                tracing::warn!(case = %case_id, kind = %message.kind, error = %e, "delivery failed after execution");
                failures.push(json!({ "kind": message.kind, "channel": message.channel }));
            }
        }
        if !failures.is_empty() {
            self.store
                .commit(Change {
                    audit: vec![self.entry_untyped(
                        &system_actor(),
                        Some(case_id),
                        "delivery.failed",
                        json!({ "messages": failures }),
                    )],
                    ..Change::default()
                })
                .await?;
        }
        Ok(failures.len())
    }

    /// A deny or cancel of a case whose connector call is in flight. While the call may still
    /// answer it is refused: the outcome, notices and probation land first. A call that has
    /// given no outcome for [`ABANDON_IN_FLIGHT_MINUTES`] (the process died mid-call) is ended
    /// `failed`, the outcome unknown, so the case does not hang forever.
    pub(super) async fn abandon_execution(
        &self,
        caller: &Staff,
        stored: StoredCase,
        consumed_at: DateTime<Utc>,
        reason: &str,
    ) -> AppResult<CaseView> {
        let now = self.now();
        if now < consumed_at + Duration::minutes(ABANDON_IN_FLIGHT_MINUTES) {
            return Err(deskgate_core::CaseError::ExecutionInFlight.into());
        }
        let mut case = stored.case.clone();
        case.fail_execution(
            format!("the connector's outcome was never recorded; ended by staff: {reason}"),
            now,
        )?;
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![self.entry_untyped(
                    &actor(caller),
                    Some(&case.id),
                    "execution.abandoned",
                    json!({ "reason": reason, "grant_consumed_at": consumed_at }),
                )],
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }
}
