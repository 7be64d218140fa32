//! Cases: opening one (risk, policy, playbook), reading and listing them, ending one, resuming an
//! escalated one, its audit trail.

use super::*;

impl Service {
    pub async fn open_case(&self, caller: &Staff, req: OpenCase) -> AppResult<CaseView> {
        self.check_open_request(caller, &req)?;
        let subject = self.subject_for_new_case(&req.subject).await?;
        let agent_manager = self.own_manager(caller).await?;
        let now = self.now();
        let facts = self
            .store_facts(&subject, req.caller_number.as_deref(), &caller.id, None)
            .await?;
        let requester_is_owner = req
            .requester
            .as_ref()
            .is_some_and(|r| subject.owners.contains(r));
        let decision = self.decide(policy_gate::Ask {
            stage: Stage::Open,
            principal: policy_gate::staff_info(caller, agent_manager.clone()),
            case_agent_id: caller.id.clone(),
            subject: &subject,
            action: req.action,
            signals: policy_gate::signals(&subject, req.caller_number.as_deref(), &facts, now),
            case: None,
            requester_is_owner,
            channel: req.channel,
            now,
        })?;
        let risk = decision.risk.clone();
        let requirements = decision.playbook.requirements.to_core_requirements();
        let opened = Case::open(
            NewCase {
                id: format!("c-{}", uuid::Uuid::new_v4().simple()),
                subject: &subject,
                agent: caller,
                agent_manager: agent_manager.as_deref(),
                action: req.action,
                channel: req.channel,
                caller_number: req.caller_number,
                ticket: req.ticket,
                note: req.note,
                new_contact: req.new_contact,
                requester: req.requester,
                risk,
                requirements,
            },
            now,
        );
        let pin = policy_gate::pin(&decision, now);
        if let Some((reasons, error)) = refusal(&opened, decision.outcome, &pin) {
            let policy_ids = if decision.outcome == Outcome::Deny {
                pin.policy_ids.clone()
            } else {
                Vec::new()
            };
            let refused = event::CaseRefused {
                subject_id: subject.id.clone(),
                action: req.action.to_string(),
                tier: subject.tier.to_string(),
                reasons,
                policy_ids,
            };
            self.record_refusal(caller, refused, &pin).await?;
            return Err(error);
        }
        let mut case = opened?;
        case.number = self.store.next_case_number().await?;
        if decision.outcome == Outcome::Escalate {
            case.escalate(pin.reasons.join("; "), now)?;
        }
        case.record_decision(pin.clone());
        self.store
            .commit(Change {
                audit: vec![self.opened_entry(caller, &case, &pin, &decision.playbook.rows)],
                case: Some(CaseWrite::Insert(case.clone())),
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, tier = %case.subject_tier, "case opened");
        let offered = self.offered_methods(&subject, &case).await?;
        Ok(CaseView::build(&case, &subject, &offered, now))
    }

    /// Who may open a case and what a request must look like, checked before anything is read:
    /// never a case for an action the directory cannot perform.
    fn check_open_request(&self, caller: &Staff, req: &OpenCase) -> AppResult<()> {
        if !caller.role.works_cases() {
            return Err(AppError::forbidden(format!(
                "the {} role cannot open recovery cases",
                caller.role
            )));
        }
        if req.subject.trim().is_empty() || req.subject.len() > 128 {
            return Err(AppError::invalid("subject must be 1 to 128 characters"));
        }
        check_text("ticket", &req.ticket, 64)?;
        check_text("note", &req.note, 2000)?;
        if let Some(n) = &req.caller_number
            && !valid_phone(n)
        {
            return Err(AppError::invalid("caller_number is not a phone number"));
        }
        match (req.action.changed_contact_kind(), &req.new_contact) {
            (Some(ContactKind::Phone), Some(v)) if !valid_phone(v) => {
                return Err(AppError::invalid("new_contact is not a phone number"));
            }
            (Some(ContactKind::Email), Some(v)) if !valid_email(v) => {
                return Err(AppError::invalid("new_contact is not an email address"));
            }
            _ => {}
        }
        self.ensure_action_offered(req.action)
    }

    /// `case.opened`, pinned to the decision, with the risk, requirements and playbook rows.
    fn opened_entry(
        &self,
        caller: &Staff,
        case: &Case,
        pin: &PolicyPin,
        playbook_rows: &[String],
    ) -> NewAuditEntry {
        let case_opened = AuditEvent::CaseOpened(event::CaseOpened {
            subject_id: case.subject_id.clone(),
            tier: case.subject_tier.to_string(),
            action: case.action.to_string(),
            channel: case.channel.to_string(),
            ticket: case.ticket.clone(),
            risk: case.risk.level.to_string(),
            risk_reasons: case.risk.reasons.iter().map(|r| r.code.clone()).collect(),
            requirements: audit_events::requirements(&case.requirements),
            state: case.state.to_string(),
            policy_ids: pin.policy_ids.clone(),
            playbook_rows: playbook_rows.to_vec(),
        });
        self.pinned(self.entry(&actor(caller), Some(&case.id), case_opened), pin)
    }

    /// Writes `case.refused` for a refusal at open, by the bundle or by the core's guardrails.
    async fn record_refusal(
        &self,
        caller: &Staff,
        refused: event::CaseRefused,
        pin: &PolicyPin,
    ) -> AppResult<()> {
        self.store
            .commit(Change {
                audit: vec![self.pinned(
                    self.entry(&actor(caller), None, AuditEvent::CaseRefused(refused)),
                    pin,
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    pub async fn get_case(&self, caller: &Staff, id: &str) -> AppResult<CaseView> {
        let stored = self.load_case(id).await?;
        if !Self::can_view(caller, &stored.case) {
            return Err(AppError::forbidden("you may only see your own cases"));
        }
        self.view(&stored.case).await
    }

    /// The id of the case a person typed as its reference (`DG-10427`), if the caller may see it.
    pub async fn find_case(&self, caller: &Staff, reference: &str) -> AppResult<String> {
        let number = deskgate_core::reference_number(reference).ok_or_else(|| {
            AppError::invalid_as("bad_reference", "a case reference looks like DG-10427")
        })?;
        let id = self
            .store
            .case_id_by_number(number)
            .await?
            .ok_or_else(|| AppError::not_found("case"))?;
        let stored = self.load_case(&id).await?;
        if !Self::can_view(caller, &stored.case) {
            return Err(AppError::forbidden("you may only see your own cases"));
        }
        Ok(id)
    }

    pub async fn list_cases(
        &self,
        caller: &Staff,
        state: Option<CaseState>,
        mine: bool,
    ) -> AppResult<Vec<CaseSummary>> {
        let sees_all = caller.role.oversees_cases() || caller.role == Role::Auditor;
        if !sees_all && caller.role != Role::Agent {
            return Err(AppError::forbidden(format!(
                "the {} role has no case list",
                caller.role
            )));
        }
        let filter = CaseFilter {
            state,
            agent_id: (mine || !sees_all).then(|| caller.id.clone()),
            subject_id: None,
            limit: 200,
        };
        let cases = self.store.list_cases(&filter).await?;
        Ok(cases.iter().map(CaseSummary::from).collect())
    }

    /// Denies or cancels a live case.
    pub async fn end_case(
        &self,
        caller: &Staff,
        case_id: &str,
        deny: bool,
        reason: &str,
    ) -> AppResult<CaseView> {
        let reason = checked_reason(reason)?;
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        if !deny && caller.role == Role::SecurityOfficer && stored.case.agent_id != caller.id {
            return Err(AppError::forbidden(
                "security officers deny cases; only the agent or a supervisor cancels",
            ));
        }
        let mut case = stored.case.clone();
        let now = self.now();
        if let Some(consumed_at) = case.grant.as_ref().and_then(|g| g.consumed_at)
            && case.execution_in_flight()
        {
            return self
                .abandon_execution(caller, stored, consumed_at, reason)
                .await;
        }
        if deny {
            case.deny(reason.to_owned(), now)?;
        } else {
            case.cancel(reason.to_owned(), now)?;
        }
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![self.entry(
                    &actor(caller),
                    Some(&case.id),
                    if deny {
                        AuditEvent::CaseDenied(event::CaseDenied {
                            reason: Some(reason.to_owned()),
                        })
                    } else {
                        AuditEvent::CaseCancelled(event::CaseCancelled {
                            reason: reason.to_owned(),
                        })
                    },
                )],
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// A security officer takes an escalated case back into verification and works it.
    pub async fn resume(&self, caller: &Staff, case_id: &str) -> AppResult<CaseView> {
        if caller.role != Role::SecurityOfficer {
            return Err(AppError::forbidden(
                "only a security officer resumes an escalated case",
            ));
        }
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        case.resume(now)?;
        // The officer now owns the case: the grant, when there is one, names them.
        case.agent_id = caller.id.clone();
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![self.entry(
                    &actor(caller),
                    Some(&case.id),
                    AuditEvent::CaseResumed(event::CaseResumed {
                        previous_agent: stored.case.agent_id.clone(),
                        reason: stored.case.outcome_reason.clone(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// Audit entries of one case, for people who may see the case.
    pub async fn case_audit(&self, caller: &Staff, case_id: &str) -> AppResult<Vec<Value>> {
        let stored = self.load_case(case_id).await?;
        if !Self::can_view(caller, &stored.case) {
            return Err(AppError::forbidden("you may only see your own cases"));
        }
        let records = self.store.audit_for_case(case_id).await?;
        records
            .iter()
            .map(|r| {
                let mut entry = r
                    .entry()
                    .map_err(|e| AppError::internal("corrupt_entry", e.to_string()))?;
                if let Some(o) = entry.as_object_mut() {
                    o.insert("leaf_hash".to_owned(), json!(r.leaf_hash));
                }
                Ok(entry)
            })
            .collect()
    }
}

/// Why a case may not open, if it may not: a refusal by the bundle or by the core's guardrails,
/// with its reasons and, when the bundle refused, the deciding policies' reasons too.
fn refusal(
    opened: &Result<Case, deskgate_core::CaseError>,
    outcome: Outcome,
    pin: &PolicyPin,
) -> Option<(Vec<String>, AppError)> {
    match (opened, outcome) {
        (Err(e), outcome) => {
            let mut reasons = vec![e.to_string()];
            if outcome == Outcome::Deny {
                reasons.extend(pin.reasons.iter().cloned());
            }
            Some((reasons, e.clone().into()))
        }
        (Ok(_), Outcome::Deny) => Some((pin.reasons.clone(), policy_refusal(pin))),
        (Ok(_), _) => None,
    }
}
