//! Callback verification: the telephony provider calls the number of record and the person who
//! answers keys in the code the agent reads out.

use super::*;
use deskgate_core::Contact;

/// A call placed by the telephony provider to the phone of record.
pub(crate) struct Callback;

impl VerificationFamily for Callback {
    const METHODS: &'static [Method] = &[Method::Callback];
    const ANSWERED: Answered = Answered::PhoneCall;

    async fn offers(
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        let facts = OfferFacts {
            telephony: svc.config.telephony.is_some(),
            ..OfferFacts::default()
        };
        Ok(offered_with(svc, method, &facts, subject, case))
    }

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_callback(start).await
    }

    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
        vec![EvidenceChannel::Phone(
            verification.destination.clone().unwrap_or_default(),
        )]
    }
}

impl Service {
    /// Calls the phone of record back through the telephony provider (never a number the caller
    /// gave). The call asks whoever answers to key in the one-time code the agent now reads to
    /// the caller; the provider's signed Gather webhook brings the digits back
    /// ([`Service::callback_gathered`]). The agent sees the code once, in this answer; only its
    /// hash is kept, and the number is shown masked.
    async fn start_callback(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let Start {
            caller,
            stored,
            subject,
            vid,
            ..
        } = start;
        let now = self.now();
        let mut case = stored.case.clone();
        let telephony = self.config.telephony.as_ref().ok_or_else(|| {
            AppError::invalid_as(
                "method_not_available",
                "no telephony provider is configured to place callbacks",
            )
        })?;
        let fresh = case.requirements.freshness();
        let phone = subject
            .trusted_contact(ContactKind::Phone, fresh, now)
            .ok_or_else(|| {
                AppError::invalid_as(
                    "contact_not_trusted",
                    "the phone of record is missing, unverified or recently changed",
                )
            })?;
        let code = CodeHasher::generate_code(self.config.codes.digits);
        let action = format!(
            "{}/api/v1/webhooks/telephony/gather/{}/{vid}",
            self.config.public_url.trim_end_matches('/'),
            case.id
        );
        let twiml = crate::telephony::gather_twiml(&action, code.len());
        let call_sid = place_call(telephony, &phone.value, &twiml)
            .await
            .map_err(|e| {
                tracing::warn!(case = %case.id, error = %e, "callback not placed");
                AppError::upstream_failed(
                    "delivery_failed",
                    "the callback could not be placed; nothing was recorded, try again",
                )
            })?;
        let secret_hash = self.codes.hash(&vid, &code);
        let ttl = Duration::minutes(self.config.codes.phone_ttl_minutes);
        let mut v = pending_callback(&vid, phone, &subject, secret_hash, now, now + ttl);
        // The phone answers, and the agent's word that it was the right person.
        let mut depends_on = self.contact_units(&subject, phone).await?;
        depends_on.insert(takeover::AGENT.to_owned());
        v.units = depends_on;
        case.start_verification(v, now)?;
        let started = self.started(
            caller,
            &case,
            event::VerificationStarted::Callback(event::CallbackStarted {
                verification_id: vid.clone(),
                method: Method::Callback.to_string(),
                class: Method::Callback.class().to_string(),
                destination: phone.masked(),
                call_sid: call_sid.clone(),
            }),
        );
        self.store
            .commit(updating(&case, stored.version, vec![started]))
            .await?;
        let mut view = self.view(&case).await?;
        if let Some(shown) = view.verifications.iter_mut().find(|v| v.id == vid) {
            shown.read_out = Some(code);
        }
        Ok((vid, view))
    }

    /// The telephony provider's Gather webhook for a callback: `params` are the form fields it
    /// posted to `url` (the action URL of the call's TwiML), `signature` its
    /// `X-Twilio-Signature`. Only a correctly signed request for a pending callback, from the
    /// configured account, whose digits match the code the agent read out (constant time)
    /// passes it; wrong digits fail it. Answers the TwiML the caller hears.
    pub async fn callback_gathered(
        &self,
        case_id: &str,
        vid: &str,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> AppResult<String> {
        let telephony = self
            .config
            .telephony
            .as_ref()
            .ok_or_else(|| AppError::not_found("telephony provider"))?;
        let signed = signature.is_some_and(|header| {
            crate::telephony::signature_matches(&telephony.auth_token, url, params, header)
        });
        let field = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if !signed || field("AccountSid") != Some(telephony.account_sid.as_str()) {
            return Err(AppError::unauthenticated_as(
                "bad_signature",
                "the request is not signed by the configured telephony provider",
            ));
        }
        let stored = self.load_case(case_id).await?;
        let mut case = stored.case.clone();
        let hash = match case.verification(vid) {
            Some(v) if v.method == Method::Callback => v.secret_hash.clone().unwrap_or_default(),
            _ => return Err(AppError::not_found("callback")),
        };
        let now = self.now();
        let digits = field("Digits").unwrap_or_default();
        let matched = !digits.is_empty() && self.codes.matches(vid, digits, &hash);
        let before = case.state;
        case.complete_external(vid, matched, now)?;
        let who = Actor {
            id: "telephony".to_owned(),
            role: "telephony_provider".to_owned(),
            auth: "webhook_signature".to_owned(),
        };
        let gathered = event::CallbackOutcome {
            verification_id: vid.to_owned(),
            method: Method::Callback.to_string(),
            call_sid: field("CallSid").unwrap_or_default().to_owned(),
            outcome: if matched {
                "the code was keyed in on the phone of record"
            } else {
                "wrong or no digits keyed in"
            }
            .to_owned(),
        };
        let mut entry = self.entry(
            &who,
            Some(&case.id),
            if matched {
                AuditEvent::VerificationPassed(event::VerificationPassed::Callback(gathered))
            } else {
                AuditEvent::VerificationFailed(event::VerificationFailed::Callback(gathered))
            },
        );
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
        let words = if matched {
            "Thank you. The code is confirmed. Goodbye."
        } else {
            "That code is not the one the help desk read to you. Goodbye."
        };
        Ok(format!("<Response><Say>{words}</Say></Response>"))
    }
}

/// Places the call through the telephony provider: its call id, or why not (without the number
/// called: Twilio's message can quote it, and the log keeps the codes).
async fn place_call(
    telephony: &deskgate_delivery::TwilioConfig,
    to: &str,
    twiml: &str,
) -> Result<String, String> {
    crate::delivery::TwilioDelivery::new(telephony)
        .map_err(|e| e.to_string())?
        .place_call(to, twiml)
        .await
        .map_err(|e| match e {
            crate::delivery::DeliveryError::Twilio { status, code, .. } => {
                format!("Twilio refused the call (HTTP {status}, error {code:?})")
            }
            other => other.to_string(),
        })
}

/// The pending callback: one try, for the code whose hash it holds, keyed in on the call.
fn pending_callback(
    vid: &str,
    phone: &Contact,
    subject: &Subject,
    secret_hash: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Verification {
    Verification {
        id: vid.to_owned(),
        method: Method::Callback,
        state: VerificationState::Pending,
        destination: Some(phone.masked()),
        respondent: subject.id.clone(),
        contact_changed_at: Some(phone.changed_at),
        secret_hash: Some(secret_hash),
        attempts: 0,
        max_attempts: 1,
        started_at: now,
        expires_at,
        completed_at: None,
        respondent_check: None,
        units: BTreeSet::new(),
    }
}
