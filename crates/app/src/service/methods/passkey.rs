//! Passkey verification: a single-use link to the subject's trusted email of record opens a page
//! where the subject's browser proves possession of an enrolled passkey (WebAuthn, see
//! [`crate::passkeys`]), bound before the freshness window.

use crate::passkeys::PasskeyPurpose;
use deskgate_core::Contact;

use super::*;

/// The link kind of a passkey verification.
const LINK_KIND: &str = "passkey";

pub(crate) struct PasskeyLink;

impl VerificationFamily for PasskeyLink {
    const METHODS: &'static [Method] = &[Method::Passkey];
    const ANSWERED: Answered = Answered::Link;

    async fn offers(
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        let facts = OfferFacts {
            has_usable_passkey: !svc.usable_passkeys(subject).await?.is_empty(),
            ..OfferFacts::default()
        };
        Ok(offered_with(svc, method, &facts, subject, case))
    }

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_passkey(start).await
    }

    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
        vec![
            EvidenceChannel::Device(AuthenticatorKind::Passkey),
            EvidenceChannel::Mailbox(verification.destination.clone().unwrap_or_default()),
        ]
    }
}

impl Service {
    /// Starts a passkey verification: a single-use link to the subject's trusted email of record
    /// (never a contact the caller gives) opens a page where the subject's browser proves
    /// possession of an enrolled passkey.
    async fn start_passkey(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let Start {
            caller,
            stored,
            subject,
            vid,
            ..
        } = start;
        let now = self.now();
        let mut case = stored.case.clone();
        let depends_on = self.usable_passkey_units(&subject).await?;
        let fresh = case.requirements.freshness();
        let email = subject.trusted_contact(ContactKind::Email, fresh, now).ok_or_else(|| {
            AppError::invalid_as("contact_not_trusted",
                "the email of record is missing, unverified or recently changed; it cannot carry a passkey link",
            )
        })?;
        // On the self-service page the page itself carries the ceremony: nothing is mailed, and
        // the link's token never leaves the server (the page's handlers derive it from the id).
        let on_page = caller.id == crate::self_service::DESK_ID;
        let token = if on_page {
            self.on_page_passkey_token(&vid)
        } else {
            secrets::random_token()
        };
        let expires_at = now + Duration::minutes(self.config.codes.email_ttl_minutes);
        let url = format!(
            "{}/passkey/{token}",
            self.config.public_url.trim_end_matches('/')
        );
        let mut v = pending_passkey(&vid, email, &subject, now, expires_at);
        v.units = depends_on;
        if on_page {
            v.destination = Some("the self-service page".to_owned());
        }
        case.start_verification(v, now)?;
        let link = passkey_link_token(&token, &case.id, &vid, &subject.id, now, expires_at);
        if !on_page {
            let message = passkey_link(email, &subject, &case, url);
            // The same per-contact send limit as codes: a flood of links is itself an attack.
            self.send_within_limit(email, &message, "message", now)
                .await?;
        }
        let started = self.started(
            caller,
            &case,
            event::VerificationStarted::Sent(event::SentVerification {
                verification_id: vid.clone(),
                method: Method::Passkey.to_string(),
                class: Method::Passkey.class().to_string(),
                destination: v_destination(on_page, email),
                respondent: subject.id.clone(),
                expires_at,
            }),
        );
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                new_links: vec![link],
                audit: vec![started],
                ..Change::default()
            })
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    /// What a passkey verification depends on, refusing a subject with no usable passkey.
    async fn usable_passkey_units(&self, subject: &Subject) -> AppResult<BTreeSet<String>> {
        self.webauthn()?;
        let passkeys = self.usable_passkeys(subject).await?;
        if passkeys.is_empty() {
            return Err(AppError::invalid_as(
                "no_passkey",
                "the subject has no enrolled passkey",
            ));
        }
        Ok(self.passkey_units(subject, &passkeys))
    }

    /// The link token of a passkey verification started on the self-service page: derived from
    /// its id with the server's code key, known only to the server.
    pub(crate) fn on_page_passkey_token(&self, vid: &str) -> String {
        self.codes.hash("deskgate/self_service_passkey", vid)
    }

    /// The live passkey link behind `token`.
    async fn passkey_link(&self, token: &str) -> AppResult<LinkToken> {
        let link = self.live_link(token).await?;
        if link.kind != LINK_KIND {
            return Err(AppError::not_found("link"));
        }
        let subject = self
            .store
            .subject(&link.respondent)
            .await?
            .ok_or_else(|| AppError::not_found("subject"))?;
        ensure_not_on_hold(&subject, false)?;
        Ok(link)
    }

    /// What the page behind a passkey link shows: who is asked, about which case, until when.
    pub async fn passkey_link_view(&self, token: &str) -> AppResult<Value> {
        let link = self.passkey_link(token).await?;
        let subject = self
            .store
            .subject(&link.respondent)
            .await?
            .ok_or_else(|| AppError::not_found("subject"))?;
        Ok(json!({
            "case_id": link.case_id, "name": subject.display_name, "expires_at": link.expires_at,
        }))
    }

    /// The challenge for the page behind a passkey link, bound to the link.
    pub async fn passkey_link_options(&self, token: &str) -> AppResult<Value> {
        let link = self.passkey_link(token).await?;
        let stored = self.load_case(&link.case_id).await?;
        let pending = stored
            .case
            .verification(&link.verification_id)
            .is_some_and(|v| v.state == VerificationState::Pending && !v.is_expired(self.now()));
        if !pending {
            return Err(AppError::conflict(
                "verification_closed",
                "this verification is no longer pending",
            ));
        }
        self.passkey_options_for(
            &link.respondent,
            PasskeyPurpose::Verify,
            &link.token_hash,
            Some(link.expires_at),
        )
        .await
    }

    /// The subject's browser answers the challenge. Success passes the verification (it counts
    /// `device_of_record`); any other answer fails it. The link works once either way.
    pub async fn passkey_link_answer(&self, token: &str, assertion: &Value) -> AppResult<Value> {
        let link = self.passkey_link(token).await?;
        let check = self
            .verify_passkey_assertion(
                &link.respondent,
                PasskeyPurpose::Verify,
                &link.token_hash,
                assertion,
            )
            .await?;
        let stored = self.load_case(&link.case_id).await?;
        let mut case = stored.case.clone();
        let now = self.now();
        let vid = link.verification_id.clone();
        // Only a passkey bound before the freshness window is a device of record.
        let passed = match &check.outcome {
            Ok(id) => {
                self.passkey_settled(&link.respondent, id, &case, now)
                    .await?
            }
            Err(_) => false,
        };
        let before = case.state;
        case.complete_external(&vid, passed, now)?;
        let who = Actor {
            id: link.respondent.clone(),
            role: "subject".to_owned(),
            auth: "passkey_link".to_owned(),
        };
        let answer = passkey_answer(&vid, &check.outcome, passed);
        let mut entry = self.entry(&who, Some(&case.id), answer);
        if passed {
            entry = Self::on_evidence(entry, &case);
        }
        let mut audit = vec![entry];
        audit.extend(self.approval_entries(&who, before, &case));
        let escalated = if passed {
            None
        } else {
            self.escalate_after_failures(&who, &mut case)
        };
        audit.extend(escalated.as_ref().map(|e| e.entry.clone()));
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                use_links: vec![(link.token_hash.clone(), now)],
                credentials: check.credentials,
                consume_credentials: vec![check.consume],
                audit,
                ..Change::default()
            })
            .await?;
        self.alert_failures(&case, &escalated).await;
        match check.outcome {
            Ok(_) => Ok(json!({
                "passed": true, "case_id": case.id,
                "message": "Thank you: your passkey confirmed it is you. Tell the help desk you are done.",
            })),
            Err(why) => Err(AppError::invalid_as(
                "passkey_refused",
                format!("the passkey was not accepted: {why}"),
            )),
        }
    }
}

impl Service {
    /// What a passkey verification depends on: any of the subject's passkeys may answer, so each
    /// of them, and how each was enrolled (before that was kept: with a pass to some contact).
    fn passkey_units(
        &self,
        subject: &Subject,
        passkeys: &[crate::passkeys::StoredPasskey],
    ) -> BTreeSet<String> {
        let mut units = BTreeSet::new();
        for p in passkeys {
            units.insert(takeover::device(&p.authenticator_id));
            let enrolled = match &p.provenance {
                Some(provenance) => provenance.clone(),
                None => Provenance::any_contact(self, subject),
            };
            units.extend(enrolled.units);
        }
        units
    }

    /// Whether the respondent's authenticator `id` was bound before the case's freshness window.
    async fn passkey_settled(
        &self,
        respondent: &str,
        id: &str,
        case: &Case,
        now: DateTime<Utc>,
    ) -> AppResult<bool> {
        let respondent = self.store.subject(respondent).await?;
        let fresh = case.requirements.freshness();
        Ok(respondent.as_ref().is_some_and(|s| {
            s.authenticators.iter().any(|a| {
                a.id == id && deskgate_core::directory::authenticator_settled(a, fresh, now)
            })
        }))
    }
}

/// The audit event of an answer to a passkey link. A valid assertion from a passkey bound too
/// recently fails with the keys of a pass.
fn passkey_answer(vid: &str, outcome: &Result<String, String>, passed: bool) -> AuditEvent {
    match outcome {
        Ok(authenticator) => {
            let answered = event::PasskeyAnswered {
                verification_id: vid.to_owned(),
                method: Method::Passkey.to_string(),
                class: Method::Passkey.class().to_string(),
                authenticator_id: authenticator.clone(),
            };
            if passed {
                AuditEvent::VerificationPassed(event::VerificationPassed::Passkey(answered))
            } else {
                AuditEvent::VerificationFailed(event::VerificationFailed::PasskeyNotSettled(
                    answered,
                ))
            }
        }
        Err(why) => AuditEvent::VerificationFailed(event::VerificationFailed::PasskeyRefused(
            event::PasskeyRefused {
                verification_id: vid.to_owned(),
                method: Method::Passkey.to_string(),
                reason: why.clone(),
            },
        )),
    }
}

/// The pending passkey verification: one try, by the link sent to the email of record.
fn pending_passkey(
    vid: &str,
    email: &Contact,
    subject: &Subject,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Verification {
    Verification {
        id: vid.to_owned(),
        method: Method::Passkey,
        state: VerificationState::Pending,
        destination: Some(email.masked()),
        respondent: subject.id.clone(),
        contact_changed_at: Some(email.changed_at),
        secret_hash: None,
        attempts: 0,
        max_attempts: 1,
        started_at: now,
        expires_at,
        completed_at: None,
        respondent_check: None,
        units: BTreeSet::new(),
    }
}

/// The stored link of a passkey verification (only the token's hash is kept).
fn passkey_link_token(
    token: &str,
    case_id: &str,
    vid: &str,
    respondent: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> LinkToken {
    LinkToken {
        token_hash: secrets::token_hash(token),
        kind: LINK_KIND.to_owned(),
        case_id: case_id.to_owned(),
        verification_id: vid.to_owned(),
        respondent: respondent.to_owned(),
        created_at: now,
        expires_at,
        used_at: None,
    }
}

/// Where a passkey verification's ceremony happens, as the log names it.
fn v_destination(on_page: bool, email: &Contact) -> String {
    if on_page {
        "the self-service page".to_owned()
    } else {
        email.masked()
    }
}

/// The message that carries the passkey link to the email of record.
fn passkey_link(email: &Contact, subject: &Subject, case: &Case, url: String) -> Message {
    Message {
        to: email.value.clone(),
        channel: "email".to_owned(),
        kind: "passkey_link".to_owned(),
        subject_id: subject.id.clone(),
        case_id: Some(case.id.clone()),
        body: format!(
            "The help desk asks you to confirm it is you with your passkey (case {}). Open \
             {url} on your own device and use your passkey. If you did not call the help \
             desk, do not open it.",
            case.id
        ),
        secret: Some(Secret::Link(url)),
    }
}
