//! Verifications: which methods are offered, starting one (codes, links, devices), and checking an
//! answer read back by the caller.

use deskgate_core::offer::{self, OfferFacts};
use deskgate_core::vouching::{self, VoucherRefusal};

use super::*;

impl Service {
    /// The manager or owner who vouches for `case` about `subject`, chosen and checked for
    /// independence by [`vouching`]: not the subject, the requester, anyone who worked the case or
    /// `agent` (the caller's own identity), and sharing no phone or email of record with the subject
    /// or the requester. Also returns the requester as the directory knows them.
    pub(super) async fn independent_voucher(
        &self,
        case: &Case,
        subject: &Subject,
        agent: Option<&str>,
    ) -> AppResult<(Subject, Option<Subject>)> {
        let voucher_id = vouching::voucher_id(case, subject, agent).map_err(voucher_refused)?;
        let voucher = self.subject_or(voucher_id, "no_manager").await?;
        let requester = self.requester_of(case, subject).await?;
        vouching::independent(case, subject, &voucher, requester.as_ref(), agent)
            .map_err(voucher_refused)?;
        Ok((voucher, requester))
    }

    /// The person who asked for `case`, when that is not the subject.
    pub(super) async fn requester_of(
        &self,
        case: &Case,
        subject: &Subject,
    ) -> AppResult<Option<Subject>> {
        Ok(match case.requester.as_deref() {
            Some(id) if id != subject.id => self.store.subject(id).await?,
            _ => None,
        })
    }

    /// Methods the agent can use for this subject now, in the order the playbook offers them:
    /// this loads what the store and configuration say, [`offer::offered_methods`] decides.
    pub async fn offered_methods(&self, subject: &Subject, case: &Case) -> AppResult<Vec<Method>> {
        let facts = OfferFacts {
            has_recovery_codes: !self.recovery_hashes(&subject.id).await?.is_empty(),
            has_totp_seed: self.totp_record(subject).await?.is_some(),
            has_usable_passkey: !self.usable_passkeys(subject).await?.is_empty(),
            telephony: self.config.telephony.is_some(),
            idv_vendor: crate::idv_inquiry::creating_vendor(&self.config.idv.vendors).is_some(),
            identity_matchable: crate::idv::ExpectedIdentity::of(
                subject.identity.as_ref(),
                &self.config.idv.match_fields,
            )
            .is_ok(),
            independent_voucher: self.independent_voucher(case, subject, None).await.is_ok(),
        };
        let fresh = case.requirements.freshness();
        Ok(offer::offered_methods(
            &RUNNABLE,
            &facts,
            subject,
            fresh,
            self.now(),
        ))
    }

    /// Starts a verification; for codes and links the message is delivered before the case
    /// records it, so a failed delivery leaves the case unchanged and the agent can retry.
    pub async fn start_verification(
        &self,
        caller: &Staff,
        case_id: &str,
        method: Method,
    ) -> AppResult<(String, CaseView)> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let cap = self.config.max_verifications_per_case;
        if stored.case.verifications.len() >= usize::try_from(cap).unwrap_or(usize::MAX) {
            return Err(AppError::rate_limited(
                "too_many_verifications",
                format!(
                    "this case has already started {cap} verifications, the most one case may; \
                     deny or cancel it, or escalate it to a security officer"
                ),
            ));
        }
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        if method == Method::Knowledge {
            return Err(AppError::invalid_as(
                "method_never_counts",
                "knowledge questions never count toward verification: answers about a person can be researched",
            ));
        }
        if !RUNNABLE.contains(&method) {
            return Err(AppError::invalid_as(
                "method_not_available",
                format!("{method} is not available in this deployment yet"),
            ));
        }
        let subject = self.required_subject(&case.subject_id).await?;
        // A service account has no person to verify: its registered owner who asked is verified
        // instead, through their own contacts and devices. The second owner vouches by link.
        let subject = if subject.is_non_human() && method != Method::ManagerAttestation {
            let requester = case
                .requester
                .as_ref()
                .filter(|r| subject.owners.contains(r))
                .ok_or_else(|| {
                    AppError::invalid_as("requester_not_owner",
                        "a service account is recovered for a registered owner: open the case with requester set to one",
                    )
                })?;
            self.subject_or(requester, "requester_not_owner").await?
        } else {
            subject
        };
        let now = self.now();
        let fresh = case.requirements.freshness();
        if let Some(kind) = device_kind(method)
            && subject.authenticators.iter().any(|a| a.kind == kind)
            && !subject.has_settled_authenticator(kind, fresh, now)
        {
            return Err(AppError::invalid_as(
                "authenticator_too_new",
                format!(
                    "every {kind} on record was bound less than {} day(s) ago; a factor bound inside \
                     the freshness window may be an attacker's own, so it is not a device of record yet",
                    case.requirements.contact_freshness_days
                ),
            ));
        }
        // The methods below load the case from `stored`: hand them the one that records who works it.
        let stored = StoredCase {
            case: case.clone(),
            version: stored.version,
        };
        let vid = format!("v-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        if method == Method::IdProofing {
            return self.start_id_proofing(caller, stored, subject, vid).await;
        }
        if method == Method::Push {
            return self.start_push(caller, stored, subject, vid).await;
        }
        if method == Method::Passkey {
            return self.start_passkey(caller, stored, subject, vid).await;
        }
        if method == Method::Callback {
            return self.start_callback(caller, stored, subject, vid).await;
        }
        if matches!(method, Method::RecoveryCode | Method::Totp) {
            // Nothing is sent: the caller reads a saved code, or the one their app shows.
            if method == Method::RecoveryCode && self.recovery_hashes(&subject.id).await?.is_empty()
            {
                return Err(AppError::invalid_as(
                    "no_recovery_codes",
                    "the subject has no unused recovery codes",
                ));
            }
            if method == Method::Totp && self.totp_record(&subject).await?.is_none() {
                return Err(AppError::invalid_as(
                    "no_authenticator",
                    "the subject has no enrolled authenticator app",
                ));
            }
            let v = Verification {
                id: vid.clone(),
                method,
                state: VerificationState::Pending,
                destination: None,
                respondent: subject.id.clone(),
                contact_changed_at: None,
                secret_hash: None,
                attempts: 0,
                max_attempts: self.config.codes.max_attempts,
                started_at: now,
                expires_at: now + Duration::minutes(self.config.codes.phone_ttl_minutes),
                completed_at: None,
                respondent_check: None,
            };
            case.start_verification(v, now)?;
            let started = self.started(
                caller,
                &case,
                event::VerificationStarted::Unsent(code_verification(&vid, method)),
            );
            self.store
                .commit(updating(&case, stored.version, vec![started]))
                .await?;
            return Ok((vid, self.view(&case).await?));
        }
        // Codes and links alike count toward the destination's send limit.
        let (verification, message, link, destination) = if let Some(kind) = method.contact_kind() {
            let contact = subject.contact(kind).ok_or_else(|| {
                AppError::invalid_as(
                    "no_contact_of_record",
                    format!("the subject has no {kind} of record"),
                )
            })?;
            if subject.trusted_contact(kind, fresh, now).is_none() {
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
            let code = CodeHasher::generate_code(self.config.codes.digits);
            let ttl = if kind == ContactKind::Email {
                self.config.codes.email_ttl_minutes
            } else {
                self.config.codes.phone_ttl_minutes
            };
            let channel = match method {
                Method::VoiceCode => "voice",
                Method::SmsCode => "sms",
                _ => "email",
            };
            let v = Verification {
                id: vid.clone(),
                method,
                state: VerificationState::Pending,
                destination: Some(contact.masked()),
                respondent: subject.id.clone(),
                contact_changed_at: Some(contact.changed_at),
                secret_hash: Some(self.codes.hash(&vid, &code)),
                attempts: 0,
                max_attempts: self.config.codes.max_attempts,
                started_at: now,
                expires_at: now + Duration::minutes(ttl),
                completed_at: None,
                respondent_check: None,
            };
            let message = Message {
                to: contact.value.clone(),
                channel: channel.to_owned(),
                kind: "verification_code".to_owned(),
                subject_id: subject.id.clone(),
                case_id: Some(case.id.clone()),
                body: format!(
                    "Your Deskgate verification code is {code}. The help desk will ask you to read \
                     it back. It expires in {ttl} minutes. If you did not call the help desk, do \
                     not share it."
                ),
                secret: Some(Secret::Code(code)),
            };
            (v, message, None, contact.clone())
        } else {
            let agent = caller.subject_id.as_deref();
            let (voucher, requester) = self.independent_voucher(&case, &subject, agent).await?;
            let contact =
                vouching::may_be_asked(&case, &subject, &voucher, requester.as_ref(), agent, now)
                    .map_err(voucher_refused)?
                    .email;
            let token = secrets::random_token();
            let expires_at = now + Duration::minutes(self.config.attestation_ttl_minutes);
            let url = format!(
                "{}/attest/{token}",
                self.config.public_url.trim_end_matches('/')
            );
            let v = Verification {
                id: vid.clone(),
                method,
                state: VerificationState::Pending,
                destination: Some(contact.masked()),
                respondent: voucher.id.clone(),
                contact_changed_at: None,
                secret_hash: None,
                attempts: 0,
                max_attempts: self.config.codes.max_attempts,
                started_at: now,
                expires_at,
                completed_at: None,
                respondent_check: None,
            };
            let link = LinkToken {
                token_hash: secrets::token_hash(&token),
                kind: "attestation".to_owned(),
                case_id: case.id.clone(),
                verification_id: vid.clone(),
                respondent: voucher.id.clone(),
                created_at: now,
                expires_at,
                used_at: None,
            };
            let message = Message {
                to: contact.value.clone(),
                channel: "email".to_owned(),
                kind: "attestation_link".to_owned(),
                subject_id: voucher.id.clone(),
                case_id: Some(case.id.clone()),
                body: format!(
                    "The help desk asks you to confirm that {} requested a {} (case {}). Open \
                     {url} only if you have spoken to them yourself. If you know nothing about \
                     this, reject it.",
                    subject.display_name, case.action, case.id
                ),
                secret: Some(Secret::Link(url)),
            };
            (v, message, Some(link), contact.clone())
        };
        // `destination` is the contact that `verification.destination` shows masked.
        let started = event::VerificationStarted::Sent(event::SentVerification {
            verification_id: vid.clone(),
            method: method.to_string(),
            class: method.class().to_string(),
            destination: destination.masked(),
            respondent: verification.respondent.clone(),
            expires_at: verification.expires_at,
        });
        case.start_verification(verification, now)?;
        self.send_within_limit(&destination, &message, "message", now)
            .await?;
        let audit = vec![self.started(caller, &case, started)];
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                new_links: link.into_iter().collect(),
                audit,
                ..Change::default()
            })
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    /// Checks a code read back by the caller.
    pub async fn answer_code(
        &self,
        caller: &Staff,
        case_id: &str,
        vid: &str,
        code: &str,
    ) -> AppResult<CaseView> {
        let stored = self.load_case(case_id).await?;
        Self::ensure_can_work(caller, &stored.case)?;
        let mut case = stored.case.clone();
        case.record_participant(caller.subject_id.as_deref())?;
        let now = self.now();
        let verification = case
            .verification(vid)
            .ok_or_else(|| AppError::not_found("verification"))?
            .clone();
        let code = code.trim();
        let recovery = verification.method == Method::RecoveryCode;
        let recovery_code = if recovery {
            Some(normalise_recovery_code(code).ok_or_else(|| {
                AppError::invalid(
                    "a recovery code is 16 letters and digits, like ABCD-EFGH-JKLM-NPQR",
                )
            })?)
        } else {
            if !(6..=12).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_digit()) {
                return Err(AppError::invalid("code must be 6 to 12 digits"));
            }
            None
        };
        let who = actor(caller);
        if case.expire_verification(vid, now) {
            self.store
                .commit(Change {
                    case: Some(CaseWrite::Update {
                        case: case.clone(),
                        expected_version: stored.version,
                    }),
                    audit: vec![self.entry(
                        &who,
                        Some(&case.id),
                        AuditEvent::VerificationExpired(event::VerificationExpired {
                            verification_id: vid.to_owned(),
                            method: verification.method.to_string(),
                        }),
                    )],
                    ..Change::default()
                })
                .await?;
            return Err(AppError::conflict(
                "verification_expired",
                "the code expired; start a new verification",
            ));
        }
        // A recovery code is checked against every unused code (each compare in constant time)
        // and, when it matches, spent in the same commit only if it is still unused: single use
        // even when two cases race for it. Likewise a TOTP step counts only if the stored record
        // is still the one read, so one step passes once.
        let mut spend_recovery_codes = Vec::new();
        let mut swap_credentials = Vec::new();
        let matched = match &recovery_code {
            Some(answer) => {
                let hashes = self.recovery_hashes(&verification.respondent).await?;
                let context = format!("recovery:{}", verification.respondent);
                let mut hit = None;
                for h in &hashes {
                    if self.codes.matches(&context, answer, h) {
                        hit = Some(h.clone());
                    }
                }
                let matched = hit.is_some();
                if let Some(h) = hit {
                    spend_recovery_codes.push((verification.respondent.clone(), h, now));
                }
                matched
            }
            None if verification.method == Method::Totp => {
                // The person verified: the subject, or the owner who asked for a service account.
                let subject = self.required_subject(&verification.respondent).await?;
                let settled = subject.has_settled_authenticator(
                    AuthenticatorKind::Totp,
                    case.requirements.freshness(),
                    now,
                );
                match self.totp_stored(&subject).await?.filter(|_| settled) {
                    Some((record, stored)) => {
                        let secret = self.totp_secret(&subject.id, &record)?;
                        let unix = u64::try_from(now.timestamp()).unwrap_or(0);
                        // A code of a step already used (a replay, or an older code) fails.
                        match crate::totp::verify(&secret, code, unix, record.last_step) {
                            Ok(step) => {
                                let next = TotpRecord {
                                    sealed: record.sealed,
                                    last_step: Some(step),
                                };
                                swap_credentials.push(deskgate_store::CredentialSwap {
                                    expected_hash: stored,
                                    credential: Self::totp_credential(&subject.id, &next, now),
                                });
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    None => false,
                }
            }
            None => verification
                .secret_hash
                .as_deref()
                .is_some_and(|h| self.codes.matches(vid, code, h)),
        };
        let before = case.state;
        let outcome = case.answer_code(vid, matched, now)?;
        let answered = code_verification(vid, verification.method);
        let answer = match outcome {
            AttemptOutcome::Passed => {
                AuditEvent::VerificationPassed(event::VerificationPassed::Code(answered))
            }
            AttemptOutcome::Failed { attempts_left } => AuditEvent::VerificationFailed(
                event::VerificationFailed::WrongCode(event::WrongCode {
                    verification_id: vid.to_owned(),
                    method: verification.method.to_string(),
                    attempts_left,
                }),
            ),
            AttemptOutcome::Locked => AuditEvent::VerificationLocked(answered),
        };
        let mut first = self.entry(&who, Some(&case.id), answer);
        if outcome == AttemptOutcome::Passed {
            // This verification's own evidence digest: the last one the case holds.
            first.evidence_digests = Self::evidence_digests(&case)
                .into_iter()
                .zip(case.evidence())
                .filter(|(_, e)| e.verification_id == vid)
                .map(|(d, _)| d)
                .collect();
        }
        let mut audit = vec![first];
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                spend_recovery_codes,
                swap_credentials,
                audit,
                ..Change::default()
            })
            .await?;
        match outcome {
            AttemptOutcome::Passed => self.view(&case).await,
            AttemptOutcome::Failed { attempts_left } => Err(AppError::invalid_as(
                "wrong_code",
                format!("the code is wrong; {attempts_left} attempt(s) left"),
            )
            .with_details(json!({ "attempts_left": attempts_left, "locked": false }))),
            AttemptOutcome::Locked => Err(AppError::invalid_as(
                "wrong_code",
                "the code is wrong; the verification is now locked",
            )
            .with_details(json!({ "attempts_left": 0, "locked": true }))),
        }
    }
}

/// A refusal to let a person vouch, as the agent starting an attestation sees it.
fn voucher_refused(refusal: VoucherRefusal) -> AppError {
    let (code, message) = match refusal {
        VoucherRefusal::NoVoucher
        | VoucherRefusal::NotManagerOrOwner
        | VoucherRefusal::IsSubject
        | VoucherRefusal::IsRequester
        | VoucherRefusal::WorkedTheCase => (
            "no_manager",
            "the subject has no manager or owner who can vouch for this request".to_owned(),
        ),
        VoucherRefusal::SharesContact => (
            "voucher_not_independent",
            "the manager or owner who would vouch shares a phone or email of record with the \
             subject or the requester, so they are not an independent person; use another \
             verification"
                .to_owned(),
        ),
        VoucherRefusal::OnProbation => (
            "manager_unavailable",
            "the manager is on probation after a recent recovery and cannot attest".to_owned(),
        ),
        VoucherRefusal::NotActive(status) => (
            "manager_unavailable",
            format!("the manager is {status} and cannot attest"),
        ),
        VoucherRefusal::NoTrustedEmail => (
            "manager_contact_not_trusted",
            "the manager's email of record is missing, unverified or recently changed".to_owned(),
        ),
        VoucherRefusal::NoTrustedPhone => (
            "manager_cannot_authenticate",
            "the manager has no verified phone of record unchanged for the freshness window to \
             receive a sign-in code on; use another verification"
                .to_owned(),
        ),
    };
    AppError::invalid_as(code, message)
}
