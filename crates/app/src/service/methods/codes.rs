//! One-time codes sent to a contact of record (SMS, voice, email) and read back by the caller.

use super::*;

pub(crate) struct Codes;

impl VerificationFamily for Codes {
    const METHODS: &'static [Method] = &[Method::SmsCode, Method::VoiceCode, Method::EmailCode];
    const ANSWERED: Answered = Answered::ReadBack;

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_code(start).await
    }

    async fn check(
        svc: &Service,
        _case: &Case,
        verification: &Verification,
        answer: &str,
    ) -> AppResult<Checked> {
        Ok(Checked::matched(
            verification
                .secret_hash
                .as_deref()
                .is_some_and(|h| svc.codes.matches(&verification.id, answer, h)),
        ))
    }

    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
        let to = verification.destination.clone().unwrap_or_default();
        match verification.method.contact_kind() {
            Some(ContactKind::Email) => vec![EvidenceChannel::Mailbox(to)],
            _ => vec![EvidenceChannel::Phone(to)],
        }
    }
}

impl Service {
    /// Sends a code to the subject's trusted contact of record for the method; the send counts
    /// toward the contact's send limit and happens before the case records the verification.
    async fn start_code(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let now = self.now();
        let mut case = start.stored.case.clone();
        let kind = start.method.contact_kind().ok_or_else(|| {
            AppError::internal(
                "method_without_contact",
                format!("{} sends to no contact of record", start.method),
            )
        })?;
        let contact = self.trusted_contact_for_code(&case, &start.subject, kind, now)?;
        let code = CodeHasher::generate_code(self.config.codes.digits);
        let ttl = if kind == ContactKind::Email {
            self.config.codes.email_ttl_minutes
        } else {
            self.config.codes.phone_ttl_minutes
        };
        let channel = match start.method {
            Method::VoiceCode => "voice",
            Method::SmsCode => "sms",
            _ => "email",
        };
        let vid = start.vid.clone();
        let mut v = pending(
            &start,
            &start.subject.id,
            self.config.codes.max_attempts,
            now + Duration::minutes(ttl),
            now,
        );
        v.destination = Some(contact.masked());
        v.contact_changed_at = Some(contact.changed_at);
        v.secret_hash = Some(self.codes.hash(&vid, &code));
        v.units = self.contact_units(&start.subject, &contact).await?;
        let message = Message {
            to: contact.value.clone(),
            channel: channel.to_owned(),
            kind: "verification_code".to_owned(),
            subject_id: start.subject.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "Your Deskgate verification code is {code}. The help desk will ask you to read \
                 it back. It expires in {ttl} minutes. If you did not call the help desk, do \
                 not share it."
            ),
            secret: Some(Secret::Code(code)),
        };
        let started = sent(&v, &contact);
        case.start_verification(v, now)?;
        self.send_within_limit(&contact, &message, "message", now)
            .await?;
        let audit = vec![self.started(start.caller, &case, started)];
        self.store
            .commit(updating(&case, start.stored.version, audit))
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    /// The subject's contact of `kind`, refused unless it is verified and settled.
    fn trusted_contact_for_code(
        &self,
        case: &Case,
        subject: &Subject,
        kind: ContactKind,
        now: DateTime<Utc>,
    ) -> AppResult<Contact> {
        let contact = subject.contact(kind).ok_or_else(|| {
            AppError::invalid_as(
                "no_contact_of_record",
                format!("the subject has no {kind} of record"),
            )
        })?;
        if subject
            .trusted_contact(kind, case.requirements.freshness(), now)
            .is_none()
        {
            let why = if contact.verified_at.is_none() {
                "was never verified".to_owned()
            } else {
                format!(
                    "was changed {} day(s) ago, inside the {}-day freshness window",
                    (now - contact.changed_at).num_days(),
                    case.requirements.contact_freshness_days
                )
            };
            return Err(AppError::invalid_as(
                "contact_not_trusted",
                format!("the {kind} of record {why}; it cannot carry a verification"),
            ));
        }
        Ok(contact.clone())
    }
}

/// `verification.started` for a verification sent to `contact` (which its destination shows
/// masked).
pub(super) fn sent(v: &Verification, contact: &Contact) -> event::VerificationStarted {
    event::VerificationStarted::Sent(event::SentVerification {
        verification_id: v.id.clone(),
        method: v.method.to_string(),
        class: v.method.class().to_string(),
        destination: contact.masked(),
        respondent: v.respondent.clone(),
        expires_at: v.expires_at,
    })
}
