//! Identity proofing: an inquiry created at the vendor with the subject's identity of record, and
//! the vendor's signed result.

use super::*;

impl Service {
    /// Creates an inquiry at the identity-verification vendor, bound to the subject's identity of
    /// record, and sends the subject (at the email of record) the vendor's link; the vendor's
    /// signed webhook completes the verification later, for this inquiry only.
    pub(super) async fn start_id_proofing(
        &self,
        caller: &Staff,
        stored: StoredCase,
        subject: Subject,
        vid: String,
    ) -> AppResult<(String, CaseView)> {
        let now = self.now();
        let mut case = stored.case.clone();
        let (vendor, vendor_config) =
            crate::idv_inquiry::creating_vendor(&self.config.idv.vendors).ok_or_else(|| {
                AppError::invalid_as("method_not_available",
                    "no identity-verification vendor is configured to create inquiries (api_url, api_key)",
                )
            })?;
        let expected = crate::idv::ExpectedIdentity::of(
            subject.identity.as_ref(),
            &self.config.idv.match_fields,
        )
        .map_err(|e| {
            AppError::invalid_as(
                "no_identity_of_record",
                format!("identity proofing cannot be bound to this subject: {e}"),
            )
        })?;
        let fresh = case.requirements.freshness();
        let email = subject
            .trusted_contact(ContactKind::Email, fresh, now)
            .ok_or_else(|| {
                AppError::invalid_as(
                    "contact_not_trusted",
                    "the email of record is missing, unverified or recently changed",
                )
            })?;
        let reference = format!("{}/{vid}", case.id);
        let inquiry = crate::idv_inquiry::create(vendor, vendor_config, &reference, &expected)
            .await
            .map_err(|e| {
                tracing::warn!(vendor = vendor.as_str(), error = %e, "inquiry not created");
                AppError::upstream_failed("idv_unavailable",
                    "the identity-verification vendor did not create the inquiry; nothing was recorded, try again",
                )
            })?;
        let v = Verification {
            id: vid.clone(),
            method: Method::IdProofing,
            state: VerificationState::Pending,
            destination: Some(email.masked()),
            respondent: subject.id.clone(),
            contact_changed_at: None,
            // Only a result for this inquiry can complete the verification.
            secret_hash: Some(self.codes.hash(&vid, &inquiry.inquiry_id)),
            attempts: 0,
            max_attempts: 1,
            started_at: now,
            expires_at: now + Duration::minutes(self.config.idv.ttl_minutes),
            completed_at: None,
            respondent_check: None,
        };
        case.start_verification(v, now)?;
        let url = inquiry.link;
        let message = Message {
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
        };
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
        use crate::idv::{IdvError, IdvStatus, Vendor, WebhookVerifier};
        let unknown = || AppError::not_found("identity-verification vendor");
        let kind = Vendor::from_path_segment(vendor).map_err(|_| unknown())?;
        let secret = self.config.idv.vendors.get(vendor).ok_or_else(unknown)?;
        let verifier = WebhookVerifier::new(kind, &secret.secret).map_err(|_| {
            tracing::error!(vendor, "the configured webhook secret is malformed");
            AppError::unavailable("idv_misconfigured", "the vendor is misconfigured")
        })?;
        let now = self.now();
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
        // The verification is bound to the inquiry Deskgate created: a result for any other
        // inquiry naming the same reference matches nothing.
        let respondent = match case.verification(vid) {
            Some(v)
                if v.method == Method::IdProofing
                    && v.secret_hash
                        .as_deref()
                        .is_some_and(|hash| self.codes.matches(vid, &result.inquiry_id, hash)) =>
            {
                v.respondent.clone()
            }
            _ => return Err(AppError::not_found("verification for this inquiry")),
        };
        let subject = self.required_subject(&respondent).await?;
        // Without an identity of record nothing can match: the result fails closed.
        let unmatched: Vec<&'static str> = match crate::idv::ExpectedIdentity::of(
            subject.identity.as_ref(),
            &self.config.idv.match_fields,
        ) {
            Ok(expected) => result
                .unmatched_fields(&expected)
                .into_iter()
                .map(crate::idv::IdentityField::as_str)
                .collect(),
            Err(_) => vec!["identity_of_record"],
        };
        let identity_matched = unmatched.is_empty();
        let unmatched_fields: Vec<String> = unmatched.iter().map(|f| (*f).to_owned()).collect();
        let reported = event::IdvResult {
            verification_id: vid.to_owned(),
            inquiry_id: result.inquiry_id.clone(),
            status: format!("{:?}", result.status).to_lowercase(),
            checks: event::IdvChecks {
                document: result.checks.document,
                selfie: result.checks.selfie,
                liveness: result.checks.liveness,
            },
            identity_matched,
            unmatched_fields: unmatched_fields.clone(),
        };
        let final_answer = matches!(result.status, IdvStatus::Approved | IdvStatus::Declined);
        // An approved document that is not the subject's is an attempt to take the account
        // over with someone else's identity: it fails and the security team hears of it.
        let mismatch = result.status == IdvStatus::Approved && !identity_matched;
        let before = case.state;
        let counted = result.counts_as_government_id() && identity_matched;
        let answer = if !final_answer {
            AuditEvent::IdvPending(reported)
        } else {
            case.complete_external(vid, counted, now)?;
            if counted {
                AuditEvent::VerificationPassed(event::VerificationPassed::IdProofing(reported))
            } else {
                AuditEvent::VerificationFailed(event::VerificationFailed::IdProofing(reported))
            }
        };
        let mut entry = self.entry(&who, Some(&case.id), answer);
        if counted {
            entry = Self::on_evidence(entry, &case);
        }
        let mut audit = vec![entry];
        if mismatch {
            audit.push(self.entry(
                &who,
                Some(&case.id),
                AuditEvent::SecurityIdvIdentityMismatch(event::IdvIdentityMismatch {
                    verification_id: vid.to_owned(),
                    subject_id: subject.id.clone(),
                    unmatched_fields,
                    alerted: self.config.security_contacts.len() as u64,
                }),
            ));
        }
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(Change {
                case: final_answer.then(|| CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                webhook_deliveries: seen,
                audit,
                ..Change::default()
            })
            .await
            .map_err(replay_error)?;
        if mismatch {
            for to in &self.config.security_contacts {
                let alert = Message {
                    to: to.clone(),
                    channel: "email".to_owned(),
                    kind: "idv_mismatch_alert".to_owned(),
                    subject_id: subject.id.clone(),
                    case_id: Some(case.id.clone()),
                    body: format!(
                        "Identity proofing in case {} ({} for {}) was completed with a document that \
                         does not match the subject's identity of record ({}). The verification \
                         failed; treat the request as a takeover attempt.",
                        case.id,
                        case.action,
                        subject.id,
                        unmatched.join(", ")
                    ),
                    secret: None,
                };
                if let Err(e) = self.delivery.send(&alert).await {
                    tracing::error!(error = %e, "identity mismatch alert not delivered");
                }
            }
        }
        Ok(json!({
            "accepted": true, "counted": counted, "identity_matched": identity_matched,
            "case_state": case.state,
        }))
    }
}
