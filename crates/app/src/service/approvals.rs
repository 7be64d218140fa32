//! Staff approvals and break-glass: each decided by the bundle, bound to the case as it stands,
//! refusals audited.

use super::*;

impl Service {
    /// A staff approval (supervisor, security officer, or an owner of a service account), bound
    /// to the case's approval digest (what is asked and the requirements in force) at this moment.
    pub async fn approve(
        &self,
        caller: &Staff,
        case_id: &str,
        decision: Decision,
        reason: &str,
    ) -> AppResult<CaseView> {
        let reason = checked_reason(reason)?;
        let stored = self.load_case(case_id).await?;
        let subject = self.required_subject(&stored.case.subject_id).await?;
        let role = match caller.role {
            Role::Supervisor => ApproverRole::Supervisor,
            Role::SecurityOfficer => ApproverRole::SecurityOfficer,
            _ if caller
                .subject_id
                .as_ref()
                .is_some_and(|s| subject.owners.contains(s)) =>
            {
                ApproverRole::Owner
            }
            _ => {
                return Err(AppError::forbidden(
                    "only supervisors, security officers and registered owners approve cases",
                ));
            }
        };
        let now = self.now();
        let pin = self
            .approval_permitted(caller, &stored.case, &stored.case, role, &subject)
            .await?;
        let mut case = stored.case.clone();
        let digest = case.approval_digest();
        let before = case.state;
        if let Err(e) = case.approve(
            &caller.id,
            caller.subject_id.as_deref(),
            role,
            decision,
            now,
        ) {
            self.refuse_approval(caller, &stored.case, role, &e.to_string(), None)
                .await?;
            return Err(e.into());
        }
        case.record_decision(pin.clone());
        let who = actor(caller);
        let mut audit = vec![self.pinned(
            Self::on_evidence(
                self.entry(
                    &who,
                    Some(&case.id),
                    AuditEvent::ApprovalRecorded(event::ApprovalRecorded {
                        role: role.to_string(),
                        decision: decision.to_string(),
                        reason: reason.to_owned(),
                        case_digest: digest,
                    }),
                ),
                &case,
            ),
            &pin,
        )];
        if case.state == CaseState::Denied {
            audit.push(self.entry(
                &who,
                Some(&case.id),
                AuditEvent::CaseDenied(event::CaseDenied {
                    reason: case.outcome_reason.clone(),
                }),
            ));
        }
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        self.view(&case).await
    }

    /// Break-glass: a security officer switches a case whose playbook cannot be met to the
    /// break-glass requirements, approving it as the first of two officers. Loud: the security
    /// contacts are alerted, and the case shows in the break-glass report.
    pub async fn break_glass(
        &self,
        caller: &Staff,
        case_id: &str,
        reason: &str,
    ) -> AppResult<CaseView> {
        if caller.role != Role::SecurityOfficer {
            return Err(AppError::forbidden(
                "only a security officer opens break-glass",
            ));
        }
        let reason = checked_reason(reason)?;
        let stored = self.load_case(case_id).await?;
        let subject = self.required_subject(&stored.case.subject_id).await?;
        let mut case = stored.case.clone();
        let now = self.now();
        let (requirements, playbook_rows) = self.break_glass_requirements(&case);
        let role = ApproverRole::SecurityOfficer;
        let opened = case.open_break_glass(requirements, now).and_then(|()| {
            case.approve(
                &caller.id,
                caller.subject_id.as_deref(),
                role,
                Decision::Confirm,
                now,
            )
        });
        if let Err(e) = opened {
            self.refuse_approval(caller, &stored.case, role, &e.to_string(), None)
                .await?;
            return Err(e.into());
        }
        // Opening break-glass is an approval like any other: the bundle's guardrails (own
        // manager, security tier, terminated...) decide on it with the break-glass case.
        let pin = self
            .approval_permitted(caller, &case, &stored.case, role, &subject)
            .await?;
        case.record_decision(pin.clone());
        let digest = case.approval_digest();
        let who = actor(caller);
        let audit = vec![
            self.entry(
                &who,
                Some(&case.id),
                AuditEvent::BreakGlassOpened(event::BreakGlassOpened {
                    reason: reason.to_owned(),
                    requirements: audit_events::requirements(&case.requirements),
                    playbook_rows,
                }),
            ),
            self.pinned(
                Self::on_evidence(
                    self.entry(
                        &who,
                        Some(&case.id),
                        AuditEvent::ApprovalRecorded(event::ApprovalRecorded {
                            role: role.to_string(),
                            decision: Decision::Confirm.to_string(),
                            reason: reason.to_owned(),
                            case_digest: digest,
                        }),
                    ),
                    &case,
                ),
                &pin,
            ),
        ];
        self.store
            .commit(updating(&case, stored.version, audit))
            .await?;
        self.alert_break_glass(caller, &case, reason).await;
        self.view(&case).await
    }

    /// The break-glass playbook's requirements for `case` (keeping the case's contact freshness)
    /// and the playbook rows they come from.
    fn break_glass_requirements(&self, case: &Case) -> (deskgate_core::Requirements, Vec<String>) {
        let resolved = self.bundle().playbooks().resolve_for(
            case.channel,
            case.subject_tier,
            case.action,
            case.risk.level,
            true,
        );
        let mut requirements = resolved.requirements.to_core_requirements();
        requirements.contact_freshness_days = case.requirements.contact_freshness_days;
        (requirements, resolved.rows)
    }

    /// Alerts every security contact that `caller` opened break-glass on `case`. An alert that
    /// cannot be delivered is logged; the case stays opened.
    async fn alert_break_glass(&self, caller: &Staff, case: &Case, reason: &str) {
        let body = format!(
            "Break-glass opened by {} on case {} [{}] ({} for {}): {reason}",
            caller.name,
            case.reference(),
            case.id,
            crate::labels::in_sentence(&case.action),
            case.subject_id
        );
        self.alert_security("break_glass_alert", &case.subject_id, &case.id, body)
            .await;
    }

    /// Asks the bundle whether `caller` may approve `case` (as it would stand after the
    /// approval's own change) in `role`; a refusal is audited against the stored case and returned.
    pub(super) async fn approval_permitted(
        &self,
        caller: &Staff,
        case: &Case,
        stored: &Case,
        role: ApproverRole,
        subject: &Subject,
    ) -> AppResult<PolicyPin> {
        let policy = self
            .decide_on_case(Stage::Approve, caller, case, subject)
            .await?;
        let pin = policy_gate::pin(&policy, self.now());
        if policy.outcome != Outcome::Allow {
            self.refuse_approval(caller, stored, role, &pin.reasons.join("; "), Some(&pin))
                .await?;
            return Err(policy_refusal(&pin));
        }
        Ok(pin)
    }

    /// Writes `approval.refused`: who tried to approve (or open break-glass on) which case in
    /// which role, why it was refused, and the deciding policies when the bundle refused it.
    pub(super) async fn refuse_approval(
        &self,
        caller: &Staff,
        case: &Case,
        role: ApproverRole,
        reason: &str,
        pin: Option<&PolicyPin>,
    ) -> AppResult<()> {
        let entry = self.entry(
            &actor(caller),
            Some(&case.id),
            AuditEvent::ApprovalRefused(event::ApprovalRefused {
                role: role.to_string(),
                reason: reason.to_owned(),
                policy_ids: pin.map(|p| p.policy_ids.clone()).unwrap_or_default(),
            }),
        );
        let entry = match pin {
            Some(p) => self.pinned(entry, p),
            None => entry,
        };
        self.store
            .commit(Change {
                audit: vec![entry],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// Break-glass cases, newest first, for security officers and auditors.
    pub async fn break_glass_report(&self, caller: &Staff) -> AppResult<Vec<CaseSummary>> {
        if !matches!(caller.role, Role::SecurityOfficer | Role::Auditor) {
            return Err(AppError::forbidden(
                "only security officers and auditors read this report",
            ));
        }
        let cases = self
            .store
            .list_cases(&CaseFilter {
                limit: 1000,
                ..CaseFilter::default()
            })
            .await?;
        Ok(cases
            .iter()
            .filter(|c| c.break_glass)
            .map(CaseSummary::from)
            .collect())
    }

    /// Live cases waiting for an approval the caller's role can give.
    pub async fn pending_approvals(&self, caller: &Staff) -> AppResult<Vec<CaseSummary>> {
        let role = match caller.role {
            Role::Supervisor => ApproverRole::Supervisor,
            Role::SecurityOfficer => ApproverRole::SecurityOfficer,
            _ => {
                return Err(AppError::forbidden(
                    "only supervisors and security officers have an approval queue",
                ));
            }
        };
        let mut out = Vec::new();
        for state in [CaseState::Open, CaseState::Verifying] {
            let cases = self
                .store
                .list_cases(&CaseFilter {
                    state: Some(state),
                    limit: 500,
                    ..CaseFilter::default()
                })
                .await?;
            out.extend(
                cases
                    .iter()
                    .filter(|c| c.agent_id != caller.id)
                    .filter(|c| {
                        caller
                            .subject_id
                            .as_deref()
                            .is_some_and(|p| !c.excluded_vouchers().contains(&p))
                    })
                    .filter(|c| {
                        c.requirements
                            .missing_approvals(&c.counted_approvals())
                            .contains(&role)
                    })
                    .map(CaseSummary::from),
            );
        }
        Ok(out)
    }
}
