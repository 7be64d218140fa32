//! Identity proofing: an inquiry created at the vendor with the subject's identity of record, and
//! the vendor's signed result.

use super::*;
use deskgate_core::Contact;

/// Identity proofing at a vendor, bound to the subject's identity of record.
pub(crate) struct IdProofing;

impl VerificationFamily for IdProofing {
    const METHODS: &'static [Method] = &[Method::IdProofing];
    const ANSWERED: Answered = Answered::Vendor;

    async fn offers(
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        let facts = OfferFacts {
            idv_vendor: crate::idv_inquiry::creating_vendor(&svc.config.idv.vendors).is_some(),
            identity_matchable: crate::idv::ExpectedIdentity::of(
                subject.identity.as_ref(),
                &svc.config.idv.match_fields,
            )
            .is_ok(),
            ..OfferFacts::default()
        };
        Ok(offered_with(svc, method, &facts, subject, case))
    }

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_id_proofing(start).await
    }

    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
        vec![
            EvidenceChannel::Document,
            EvidenceChannel::Mailbox(verification.destination.clone().unwrap_or_default()),
        ]
    }
}

impl Service {
    /// Creates an inquiry at the identity-verification vendor, bound to the subject's identity of
    /// record, and sends the subject (at the email of record) the vendor's link; the vendor's
    /// signed webhook completes the verification later, for this inquiry only.
    async fn start_id_proofing(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let Start {
            caller,
            stored,
            subject,
            vid,
            ..
        } = start;
        let now = self.now();
        let mut case = stored.case.clone();
        let (vendor, vendor_config) =
            crate::idv_inquiry::creating_vendor(&self.config.idv.vendors).ok_or_else(|| {
                AppError::invalid_as("method_not_available",
                    "no identity-verification vendor is configured to create inquiries (api_url, api_key)",
                )
            })?;
        let expected = self.expected_identity(&subject)?;
        let fresh = case.requirements.freshness();
        let email = subject
            .trusted_contact(ContactKind::Email, fresh, now)
            .ok_or_else(|| {
                AppError::invalid_as(
                    "contact_not_trusted",
                    "the email of record is missing, unverified or recently changed",
                )
            })?;
        // Nothing is asked of the vendor for a case that cannot take the verification.
        case.ensure_verifiable()?;
        let reference = format!("{}/{vid}", case.id);
        let inquiry = crate::idv_inquiry::create(vendor, vendor_config, &reference, &expected)
            .await
            .map_err(|e| {
                tracing::warn!(vendor = vendor.as_str(), error = %e, "inquiry not created");
                AppError::upstream_failed("idv_unavailable",
                    "the identity-verification vendor did not create the inquiry; nothing was recorded, try again",
                )
            })?;
        // Only a result for this inquiry can complete the verification.
        let secret_hash = self.codes.hash(&vid, &inquiry.inquiry_id);
        let v = self.pending_id_proofing(&vid, email, &subject, secret_hash, now);
        case.start_verification(v, now)?;
        let message = proofing_link(email, &subject, &case, inquiry.link);
        self.send_within_limit(email, &message, "message", now)
            .await?;
        let started = self.started(
            caller,
            &case,
            event::VerificationStarted::IdProofing(event::IdProofingStarted {
                verification_id: vid.clone(),
                method: Method::IdProofing.to_string(),
                class: Method::IdProofing.class().to_string(),
                destination: email.masked(),
                vendor: vendor.as_str().to_owned(),
                inquiry_id: inquiry.inquiry_id,
                match_fields: expected
                    .field_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            }),
        );
        self.store
            .commit(updating(&case, stored.version, vec![started]))
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    /// The identity of record a vendor's result must match, in the fields this deployment
    /// matches on.
    fn expected_identity(&self, subject: &Subject) -> AppResult<crate::idv::ExpectedIdentity> {
        crate::idv::ExpectedIdentity::of(subject.identity.as_ref(), &self.config.idv.match_fields)
            .map_err(|e| {
                AppError::invalid_as(
                    "no_identity_of_record",
                    format!("identity proofing cannot be bound to this subject: {e}"),
                )
            })
    }

    /// The pending verification: one try, for the inquiry whose hash it holds.
    fn pending_id_proofing(
        &self,
        vid: &str,
        email: &Contact,
        subject: &Subject,
        secret_hash: String,
        now: DateTime<Utc>,
    ) -> Verification {
        Verification {
            id: vid.to_owned(),
            method: Method::IdProofing,
            state: VerificationState::Pending,
            destination: Some(email.masked()),
            respondent: subject.id.clone(),
            contact_changed_at: None,
            secret_hash: Some(secret_hash),
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now + Duration::minutes(self.config.idv.ttl_minutes),
            completed_at: None,
            respondent_check: None,
            units: units([takeover::DOCUMENT.to_owned()]),
        }
    }

    /// An identity-verification vendor's signed result. Only an approved inquiry with document,
    /// selfie and liveness checks, for the inquiry Deskgate created, whose document the vendor
    /// matched to the subject's identity of record, counts as `government_id`; a delivery is
    /// processed once.
    pub async fn idv_webhook(
        &self,
        vendor: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> AppResult<Value> {
        let now = self.now();
        let (kind, delivery) = self.verified_delivery(vendor, headers, body, now)?;
        let who = Actor {
            id: kind.as_str().to_owned(),
            role: "idv_vendor".to_owned(),
            auth: "webhook_signature".to_owned(),
        };
        // Checked here for a clear answer; the unique key in the commit settles races.
        if self
            .store
            .webhook_seen(kind.as_str(), &delivery.delivery_id)
            .await?
        {
            return Err(replay_error(deskgate_store::StoreError::Conflict(
                String::new(),
            )));
        }
        let seen = vec![(kind.as_str().to_owned(), delivery.delivery_id.clone(), now)];
        let Some(result) = delivery.result else {
            self.store
                .commit(Change {
                    webhook_deliveries: seen,
                    ..Change::default()
                })
                .await
                .map_err(replay_error)?;
            return Ok(
                json!({ "accepted": true, "counted": false, "reason": "no inquiry result in this event" }),
            );
        };
        let reference = result.reference_id.clone().unwrap_or_default();
        let (case_id, vid) = reference
            .split_once('/')
            .ok_or_else(|| AppError::not_found("verification for this inquiry"))?;
        let stored = self.load_case(case_id).await?;
        let mut case = stored.case.clone();
        let respondent = self.bound_respondent(&case, vid, &result.inquiry_id)?;
        let subject = self.required_subject(&respondent).await?;
        let unmatched = self.unmatched_fields(&subject, &result);
        let outcome = Outcome::of(&result, unmatched);
        let before = case.state;
        if outcome.final_answer {
            case.complete_external(vid, outcome.counted, now)?;
        }
        let mut audit = self.result_entries(&who, &case, &subject, vid, &result, &outcome);
        audit.extend(self.approval_entries(&who, before, &case));
        audit.extend(self.end_self_service_on_failed_proofing(&mut case, &outcome, now)?);
        let escalated = if !outcome.final_answer || outcome.counted {
            None
        } else {
            self.escalate_after_failures(&who, &mut case)
        };
        audit.extend(escalated.as_ref().map(|e| e.entry.clone()));
        self.store
            .commit(Change {
                case: outcome.final_answer.then(|| CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                webhook_deliveries: seen,
                audit,
                ..Change::default()
            })
            .await
            .map_err(replay_error)?;
        self.alert_failures(&case, &escalated).await;
        if outcome.mismatch {
            self.alert_identity_mismatch(&case, &subject, &outcome.unmatched)
                .await;
        }
        Ok(json!({
            "accepted": true, "counted": outcome.counted,
            "identity_matched": outcome.unmatched.is_empty(), "case_state": case.state,
        }))
    }

    /// On the self-service page nobody looks at a document that failed: whoever holds the
    /// mailbox could try one forged document after another. A failed check there denies the
    /// case in the same commit, so the attempt is over and the help desk must check it.
    fn end_self_service_on_failed_proofing(
        &self,
        case: &mut Case,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> AppResult<Option<NewAuditEntry>> {
        if case.channel != Channel::SelfService
            || !outcome.final_answer
            || outcome.counted
            || !case.state.is_live()
        {
            return Ok(None);
        }
        let reason = "a photo ID check did not pass on the self-service page; the help desk must \
                      check it";
        case.deny(reason.to_owned(), now)?;
        Ok(Some(self.entry(
            &actor(&crate::self_service::desk()),
            Some(&case.id),
            AuditEvent::CaseDenied(event::CaseDenied {
                reason: Some(reason.to_owned()),
            }),
        )))
    }

    /// The entries a vendor's result writes: pending, passed or failed (with the evidence when it
    /// counts), and the security entry when an approved document is not the subject's.
    fn result_entries(
        &self,
        who: &Actor,
        case: &Case,
        subject: &Subject,
        vid: &str,
        result: &crate::idv::IdvResult,
        outcome: &Outcome,
    ) -> Vec<NewAuditEntry> {
        let unmatched_fields: Vec<String> =
            outcome.unmatched.iter().map(|f| (*f).to_owned()).collect();
        let reported = event::IdvResult {
            verification_id: vid.to_owned(),
            inquiry_id: result.inquiry_id.clone(),
            status: format!("{:?}", result.status).to_lowercase(),
            checks: event::IdvChecks {
                document: result.checks.document,
                selfie: result.checks.selfie,
                liveness: result.checks.liveness,
            },
            identity_matched: outcome.unmatched.is_empty(),
            unmatched_fields: unmatched_fields.clone(),
        };
        let answer = if !outcome.final_answer {
            AuditEvent::IdvPending(reported)
        } else if outcome.counted {
            AuditEvent::VerificationPassed(event::VerificationPassed::IdProofing(reported))
        } else {
            AuditEvent::VerificationFailed(event::VerificationFailed::IdProofing(reported))
        };
        let mut entry = self.entry(who, Some(&case.id), answer);
        if outcome.counted {
            entry = Self::on_evidence(entry, case);
        }
        let mut audit = vec![entry];
        if outcome.mismatch {
            audit.push(self.entry(
                who,
                Some(&case.id),
                AuditEvent::SecurityIdvIdentityMismatch(event::IdvIdentityMismatch {
                    verification_id: vid.to_owned(),
                    subject_id: subject.id.clone(),
                    unmatched_fields,
                    alerted: self.config.security_contacts.len() as u64,
                }),
            ));
        }
        audit
    }

    /// The delivery, if it is signed by the configured vendor and fresh.
    fn verified_delivery(
        &self,
        vendor: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> AppResult<(crate::idv::Vendor, crate::idv::VerifiedDelivery)> {
        use crate::idv::{IdvError, Vendor, WebhookVerifier};
        let unknown = || AppError::not_found("identity-verification vendor");
        let kind = Vendor::from_path_segment(vendor).map_err(|_| unknown())?;
        let secret = self.config.idv.vendors.get(vendor).ok_or_else(unknown)?;
        let verifier = WebhookVerifier::new(kind, &secret.secret).map_err(|_| {
            tracing::error!(vendor, "the configured webhook secret is malformed");
            AppError::unavailable("idv_misconfigured", "the vendor is misconfigured")
        })?;
        let delivery = verifier.verify(headers, body, now).map_err(|e| match e {
            IdvError::Stale { .. } | IdvError::FromTheFuture { .. } => AppError::malformed(
                "stale_delivery",
                "the delivery's timestamp is outside the 5-minute window",
            ),
            IdvError::MalformedBody(m) => AppError::malformed("malformed_body", m),
            _ => AppError::unauthenticated_as(
                "bad_signature",
                "the delivery is not signed by the configured vendor",
            ),
        })?;
        Ok((kind, delivery))
    }

    /// The person the identity-proofing verification `vid` asked for. The verification is bound
    /// to the inquiry Deskgate created: a result for any other inquiry naming the same reference
    /// matches nothing.
    fn bound_respondent(&self, case: &Case, vid: &str, inquiry_id: &str) -> AppResult<String> {
        match case.verification(vid) {
            Some(v)
                if v.method == Method::IdProofing
                    && v.secret_hash
                        .as_deref()
                        .is_some_and(|hash| self.codes.matches(vid, inquiry_id, hash)) =>
            {
                Ok(v.respondent.clone())
            }
            _ => Err(AppError::not_found("verification for this inquiry")),
        }
    }

    /// The fields of the subject's identity of record the vendor did not match. Without an
    /// identity of record nothing can match: the result fails closed.
    fn unmatched_fields(
        &self,
        subject: &Subject,
        result: &crate::idv::IdvResult,
    ) -> Vec<&'static str> {
        match crate::idv::ExpectedIdentity::of(
            subject.identity.as_ref(),
            &self.config.idv.match_fields,
        ) {
            Ok(expected) => result
                .unmatched_fields(&expected)
                .into_iter()
                .map(crate::idv::IdentityField::as_str)
                .collect(),
            Err(_) => vec!["identity_of_record"],
        }
    }

    /// Tells every security contact that a document not matching the subject was presented.
    async fn alert_identity_mismatch(&self, case: &Case, subject: &Subject, unmatched: &[&str]) {
        let body = format!(
            "Identity proofing in case {} [{}] ({} for {}) was completed with a document that does \
             not match the subject's identity of record ({}). The verification failed; treat the \
             request as a takeover attempt.",
            case.reference(),
            case.id,
            crate::labels::in_sentence(&case.action),
            subject.id,
            unmatched.join(", ")
        );
        self.alert_security("idv_mismatch_alert", &subject.id, &case.id, body)
            .await;
    }
}

/// What a vendor's result means for the case.
struct Outcome {
    /// Fields of the identity of record the vendor did not match.
    unmatched: Vec<&'static str>,
    /// Approved or declined: the vendor has decided (anything else is still pending).
    final_answer: bool,
    /// It counts as `government_id`: approved with every check, and the subject's identity.
    counted: bool,
    /// An approved document that is not the subject's: an attempt to take the account over
    /// with someone else's identity. It fails and the security team hears of it.
    mismatch: bool,
}

impl Outcome {
    fn of(result: &crate::idv::IdvResult, unmatched: Vec<&'static str>) -> Self {
        use crate::idv::IdvStatus;
        let matched = unmatched.is_empty();
        Self {
            final_answer: matches!(result.status, IdvStatus::Approved | IdvStatus::Declined),
            counted: result.counts_as_government_id() && matched,
            mismatch: result.status == IdvStatus::Approved && !matched,
            unmatched,
        }
    }
}

/// The message that carries the vendor's link to the email of record.
fn proofing_link(email: &Contact, subject: &Subject, case: &Case, url: String) -> Message {
    Message {
        to: email.value.clone(),
        channel: "email".to_owned(),
        kind: "idv_link".to_owned(),
        subject_id: subject.id.clone(),
        case_id: Some(case.id.clone()),
        body: format!(
            "The help desk asks you to prove your identity with a government ID and a selfie. \
             Open {url} on your own device; the link is for you alone."
        ),
        secret: Some(Secret::Link(url)),
    }
}
