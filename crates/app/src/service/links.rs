//! Links and passes handed to a subject or an owner: the service-secret pickup, the temporary
//! access pass, and "this was not me".

use super::*;

impl Service {
    pub(crate) async fn live_link(&self, token: &str) -> AppResult<LinkToken> {
        if token.is_empty() || token.len() > 128 {
            return Err(AppError::not_found("link"));
        }
        let link = self
            .store
            .link(&secrets::token_hash(token))
            .await?
            .ok_or_else(|| AppError::not_found("link"))?;
        if link.used_at.is_some() {
            return Err(AppError::conflict(
                "link_used",
                "this link was already used",
            ));
        }
        if self.now() >= link.expires_at {
            return Err(AppError::conflict("link_expired", "this link has expired"));
        }
        Ok(link)
    }

    /// Hands over a rotated service secret once: the link is used and the sealed copy destroyed
    /// in the same commit, so a second retrieval finds nothing.
    pub async fn retrieve_secret(&self, token: &str) -> AppResult<Value> {
        let link = self.check_retrieval(token).await?;
        let stored = self.load_case(&link.case_id).await?;
        let subject_id = stored.case.subject_id.clone();
        let now = self.now();
        let credential = self
            .store
            .credential(&subject_id, SECRET_PICKUP)
            .await?
            .filter(|c| c.used_at.is_none() && c.expires_at.is_some_and(|e| now < e))
            .ok_or_else(|| {
                AppError::conflict(
                    "link_used",
                    "the secret was already retrieved or has expired",
                )
            })?;
        let secret = self
            .sealer
            .open(&format!("{subject_id}/{SECRET_PICKUP}"), &credential.hash)
            .map_err(|_| {
                AppError::internal("corrupt_credential", "the sealed secret cannot be read")
            })?;
        let secret = String::from_utf8(secret).map_err(|_| {
            AppError::internal("corrupt_credential", "the sealed secret cannot be read")
        })?;
        self.store
            .commit(Change {
                use_links: vec![(link.token_hash.clone(), now)],
                credentials: vec![deskgate_store::Credential {
                    hash: String::new(),
                    used_at: Some(now),
                    ..credential
                }],
                audit: vec![self.entry(
                    &Actor {
                        id: link.respondent.clone(),
                        role: "owner".to_owned(),
                        auth: "retrieval_link".to_owned(),
                    },
                    Some(&link.case_id),
                    AuditEvent::ServiceSecretRetrieved(event::ServiceSecretRetrieved {
                        subject_id: subject_id.clone(),
                        by: link.respondent.clone(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(json!({ "subject_id": subject_id, "secret": secret }))
    }

    /// The live retrieval link behind `token`; neither the service account nor the owner it
    /// was sent to may be held by the security team.
    pub async fn check_retrieval(&self, token: &str) -> AppResult<LinkToken> {
        let link = self.live_link(token).await?;
        if link.kind != "secret_retrieval" {
            return Err(AppError::not_found("link"));
        }
        let stored = self.load_case(&link.case_id).await?;
        for id in [&stored.case.subject_id, &link.respondent] {
            let held = self.required_subject(id).await?;
            ensure_not_on_hold(&held, true)?;
        }
        Ok(link)
    }

    /// The subject's temporary access pass, if `pass` is it (compared in constant time), unused
    /// and unexpired; any other answer is the same refusal.
    async fn presented_pass(
        &self,
        subject_id: &str,
        pass: &str,
        now: DateTime<Utc>,
    ) -> AppResult<deskgate_store::Credential> {
        if subject_id.len() > 128 || pass.is_empty() || pass.len() > 128 {
            return Err(pass_refused());
        }
        let credential = self
            .store
            .credential(subject_id, "temporary_access_pass")
            .await?
            .ok_or_else(pass_refused)?;
        let presented = secrets::token_hash(pass);
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), credential.hash.as_bytes()).into();
        if !matches
            || credential.used_at.is_some()
            || credential.expires_at.is_none_or(|e| now >= e)
        {
            return Err(pass_refused());
        }
        Ok(credential)
    }

    /// Redeems a temporary access pass, once, before it expires, to enrol a new authenticator
    /// app; the answer carries its `otpauth://` URI. The pass does nothing else: it opens no
    /// case, changes no contact and signs in nowhere.
    pub async fn redeem_pass(&self, subject_id: &str, pass: &str) -> AppResult<Value> {
        let refused = pass_refused;
        let now = self.now();
        let credential = self.presented_pass(subject_id, pass, now).await?;
        let mut subject = self.required_subject(subject_id).await?;
        ensure_not_on_hold(&subject, true)?;
        let (uri, sealed) = self.bind_new_app(&mut subject, now)?;
        let pass_provenance = self.pass_provenance(&subject).await?;
        let notices = crate::notices::notice_to_every_contact(
            &subject,
            "authenticator_notice",
            "A temporary access pass was used to enrol a new authenticator app on your \
                       account. If this was not you, contact the security team at once.",
        );
        // The pass is spent only if it is still the unused one just checked: of racing
        // redemptions, one enrols an app and the others are refused.
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                swap_credentials: vec![deskgate_store::CredentialSwap {
                    expected_hash: credential.hash.clone(),
                    credential: deskgate_store::Credential {
                        used_at: Some(now),
                        ..credential
                    },
                }],
                credentials: vec![Self::totp_credential(
                    &subject.id,
                    &TotpRecord {
                        sealed,
                        last_step: None,
                        provenance: Some(pass_provenance),
                    },
                    now,
                )],
                audit: vec![self.entry(
                    &Actor {
                        id: subject.id.clone(),
                        role: "subject".to_owned(),
                        auth: "temporary_access_pass".to_owned(),
                    },
                    None,
                    AuditEvent::TemporaryAccessPassRedeemed(
                        event::TemporaryAccessPassRedeemed::Totp(event::PassRedeemedForApp {
                            subject_id: subject.id.clone(),
                            enrolled: AuthenticatorKind::Totp.to_string(),
                        }),
                    ),
                )],
                ..Change::default()
            })
            .await
            .map_err(|e| match e {
                deskgate_store::StoreError::Conflict(_) => refused(),
                other => other.into(),
            })?;
        // Binding a new authenticator is announced on every contact of record.
        for n in &notices {
            if let Err(e) = self.delivery.send(n).await {
                tracing::warn!(error = %e, "authenticator notice not delivered");
            }
        }
        Ok(json!({ "subject_id": subject.id, "otpauth_uri": uri }))
    }

    /// The live "not me" link behind `token`.
    pub async fn check_not_me(&self, token: &str) -> AppResult<LinkToken> {
        let link = self.live_link(token).await?;
        if link.kind != "not_me" {
            return Err(AppError::not_found("link"));
        }
        Ok(link)
    }

    /// "This was not me": someone at a contact of record says a recovery was not theirs. The
    /// account is locked and flagged at once (further requests are critical risk) and the security
    /// team is alerted; the link works once. In the same commit everything still outstanding that
    /// acts on the subject is spent: every unused link of the subject's cases or sent to the
    /// subject, the temporary access pass (and a passkey enrolment it started) and a sealed
    /// service secret waiting for pickup. The subject's live cases are then denied.
    pub async fn report_not_me(&self, token: &str) -> AppResult<Value> {
        let link = self.check_not_me(token).await?;
        let actor = Actor {
            id: link.respondent.clone(),
            role: "contact_of_record".to_owned(),
            auth: "not_me_link".to_owned(),
        };
        self.lock_for_not_me(
            &link.respondent,
            &link.case_id,
            &actor,
            Some(link.token_hash.clone()),
        )
        .await
    }

    /// Locks and flags `subject_id` after a "this was not me" about `case_id`, by `actor`
    /// (through `link`, spent in the same commit, when a link carried it); see
    /// [`Self::report_not_me`].
    pub(crate) async fn lock_for_not_me(
        &self,
        subject_id: &str,
        case_id: &str,
        actor: &Actor,
        link: Option<String>,
    ) -> AppResult<Value> {
        let now = self.now();
        let mut subject = self.required_subject(subject_id).await?;
        subject.flagged = true;
        if subject.status == SubjectStatus::Active {
            subject.status = SubjectStatus::Locked;
        }
        let alerts = self.not_me_alerts(&subject.id, case_id);
        let spent_credentials = vec![
            "temporary_access_pass".to_owned(),
            crate::passkeys::PasskeyPurpose::Enrol.kind(),
            SECRET_PICKUP.to_owned(),
            crate::my_account::SESSION.to_owned(),
        ];
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                use_links: link.map(|hash| vec![(hash, now)]).unwrap_or_default(),
                revoke_handovers: vec![deskgate_store::HandoverRevocation {
                    subject_id: subject.id.clone(),
                    credential_kinds: spent_credentials.clone(),
                    at: now,
                }],
                audit: vec![self.entry(
                    actor,
                    Some(case_id),
                    AuditEvent::SecurityNotMeReported(event::NotMeReported {
                        subject_id: subject.id.clone(),
                        locked: true,
                        flagged: true,
                        spent: event::SpentHandovers {
                            links: "all unused".to_owned(),
                            credentials: spent_credentials,
                        },
                    }),
                )],
                ..Change::default()
            })
            .await?;
        self.deny_live_cases(&subject.id, case_id).await;
        for alert in &alerts {
            if let Err(e) = self.delivery.send(alert).await {
                tracing::error!(error = %e, "security alert not delivered");
            }
        }
        Ok(json!({ "locked": true, "case_id": case_id,
                   "message": "The account is locked and the security team was alerted." }))
    }

    fn not_me_alerts(&self, subject_id: &str, case_id: &str) -> Vec<Message> {
        self.config
            .security_contacts
            .iter()
            .map(|to| Message {
                to: to.clone(),
                channel: "email".to_owned(),
                kind: "security_alert".to_owned(),
                subject_id: subject_id.to_owned(),
                case_id: Some(case_id.to_owned()),
                body: format!(
                    "A contact of record of {subject_id} reports that the recovery in case \
                     {case_id} was not theirs. The account is locked and flagged."
                ),
                secret: None,
            })
            .collect()
    }

    /// Denies every live case about `subject_id` after a "this was not me" report: their grants
    /// are withdrawn and their pending verifications closed. A case whose connector call is in
    /// flight is left to record its outcome (the subject is flagged, so nothing further runs).
    /// Best effort after the report's own commit: a case that cannot be ended is logged.
    pub(super) async fn deny_live_cases(&self, subject_id: &str, reported_case: &str) {
        let reason = format!(
            "a contact of record reported the recovery in case {reported_case} as not theirs; \
             the account is locked and flagged"
        );
        for state in [
            CaseState::Open,
            CaseState::Verifying,
            CaseState::Approved,
            CaseState::Escalated,
        ] {
            let filter = CaseFilter {
                state: Some(state),
                subject_id: Some(subject_id.to_owned()),
                limit: 1000,
                ..CaseFilter::default()
            };
            let cases = match self.store.list_cases(&filter).await {
                Ok(cases) => cases,
                Err(e) => {
                    tracing::error!(subject = %subject_id, error = %e, "live cases not listed after a not-me report");
                    continue;
                }
            };
            for case in cases {
                if let Err(e) = self.deny_for_security(&case.id, &reason).await {
                    tracing::error!(case = %case.id, error = %e.message(), "case not denied after a not-me report");
                }
            }
        }
    }

    /// Denies one case on the security team's behalf; a concurrent change is retried.
    pub(super) async fn deny_for_security(&self, case_id: &str, reason: &str) -> AppResult<()> {
        let mut tries = 0;
        loop {
            let stored = self.load_case(case_id).await?;
            if !stored.case.state.is_live() || stored.case.execution_in_flight() {
                return Ok(());
            }
            let mut case = stored.case.clone();
            let now = self.now();
            case.deny(reason.to_owned(), now)?;
            let committed = self
                .store
                .commit(Change {
                    case: Some(CaseWrite::Update {
                        case,
                        expected_version: stored.version,
                    }),
                    audit: vec![self.entry(
                        &system_actor(),
                        Some(case_id),
                        AuditEvent::CaseDenied(event::CaseDenied {
                            reason: Some(reason.to_owned()),
                        }),
                    )],
                    ..Change::default()
                })
                .await;
            match committed {
                Ok(_) => return Ok(()),
                Err(deskgate_store::StoreError::Conflict(_)) if tries < 3 => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The one refusal of a pass that is wrong, used or expired.
fn pass_refused() -> AppError {
    AppError::unauthenticated_as("pass_refused", "the pass is wrong, used or expired")
}
