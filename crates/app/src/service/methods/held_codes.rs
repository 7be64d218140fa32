//! Codes the caller already holds: the one their enrolled authenticator app shows (TOTP), or a
//! saved recovery code. Nothing is sent; the caller reads the code back. Each is single use even
//! under concurrency: the store spends it in the commit that records the answer.

use super::*;

pub(crate) struct HeldCodes;

impl VerificationFamily for HeldCodes {
    const METHODS: &'static [Method] = &[Method::Totp, Method::RecoveryCode];
    const ANSWERED: Answered = Answered::ReadBack;

    async fn offers(
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        let facts = match method {
            Method::RecoveryCode => OfferFacts {
                has_recovery_codes: !svc.recovery_hashes(&subject.id).await?.is_empty(),
                ..OfferFacts::default()
            },
            _ => OfferFacts {
                has_totp_seed: svc.totp_record(subject).await?.is_some(),
                ..OfferFacts::default()
            },
        };
        Ok(offered_with(svc, method, &facts, subject, case))
    }

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_held_code(start).await
    }

    fn read_answer(method: Method, answer: &str) -> AppResult<String> {
        if method != Method::RecoveryCode {
            if !(6..=12).contains(&answer.len()) || !answer.chars().all(|c| c.is_ascii_digit()) {
                return Err(AppError::invalid("code must be 6 to 12 digits"));
            }
            return Ok(answer.to_owned());
        }
        normalise_recovery_code(answer).ok_or_else(|| {
            AppError::invalid("a recovery code is 16 letters and digits, like ABCD-EFGH-JKLM-NPQR")
        })
    }

    async fn check(
        svc: &Service,
        case: &Case,
        verification: &Verification,
        answer: &str,
    ) -> AppResult<Checked> {
        if verification.method == Method::RecoveryCode {
            svc.check_recovery_code(verification, answer).await
        } else {
            svc.check_totp(case, verification, answer).await
        }
    }

    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
        if verification.method == Method::RecoveryCode {
            vec![EvidenceChannel::RecoveryCodes]
        } else {
            vec![EvidenceChannel::Device(AuthenticatorKind::Totp)]
        }
    }
}

impl Service {
    /// Records a pending TOTP or recovery-code verification; nothing is sent.
    async fn start_held_code(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let subject = &start.subject;
        if start.method == Method::RecoveryCode
            && self.recovery_hashes(&subject.id).await?.is_empty()
        {
            return Err(AppError::invalid_as(
                "no_recovery_codes",
                "the subject has no unused recovery codes",
            ));
        }
        if start.method == Method::Totp && self.totp_record(subject).await?.is_none() {
            return Err(AppError::invalid_as(
                "no_authenticator",
                "the subject has no enrolled authenticator app",
            ));
        }
        let now = self.now();
        let mut case = start.stored.case.clone();
        let mut v = pending(
            &start,
            &subject.id,
            self.config.codes.max_attempts,
            now + Duration::minutes(self.config.codes.phone_ttl_minutes),
            now,
        );
        v.units = self.held_units(subject, start.method).await?;
        case.start_verification(v, now)?;
        let started = self.started(
            start.caller,
            &case,
            event::VerificationStarted::Unsent(code_verification(&start.vid, start.method)),
        );
        self.store
            .commit(updating(&case, start.stored.version, vec![started]))
            .await?;
        Ok((start.vid, self.view(&case).await?))
    }

    /// Checks a recovery code against every unused code of the respondent (each compare in
    /// constant time); a match is spent in the answer's commit only if it is still unused, so
    /// two cases racing for one code pass once.
    async fn check_recovery_code(
        &self,
        verification: &Verification,
        answer: &str,
    ) -> AppResult<Checked> {
        let hashes = self.recovery_hashes(&verification.respondent).await?;
        let context = format!("recovery:{}", verification.respondent);
        let mut hit = None;
        for h in &hashes {
            if self.codes.matches(&context, answer, h) {
                hit = Some(h.clone());
            }
        }
        Ok(match hit {
            Some(h) => Checked {
                matched: true,
                spend_recovery_codes: vec![(verification.respondent.clone(), h, self.now())],
                ..Checked::default()
            },
            None => Checked::default(),
        })
    }

    /// Checks a TOTP code from an authenticator bound before the freshness window; the step counts
    /// only if the stored record is still the one read, so one step passes once. A code of a
    /// step already used (a replay, or an older code) fails.
    async fn check_totp(
        &self,
        case: &Case,
        verification: &Verification,
        answer: &str,
    ) -> AppResult<Checked> {
        let now = self.now();
        // The person verified: the subject, or the owner who asked for a service account.
        let subject = self.required_subject(&verification.respondent).await?;
        let settled = subject.has_settled_authenticator(
            AuthenticatorKind::Totp,
            case.requirements.freshness(),
            now,
        );
        let Some((record, stored)) = self.totp_stored(&subject).await?.filter(|_| settled) else {
            return Ok(Checked::default());
        };
        let secret = self.totp_secret(&subject.id, &record)?;
        let unix = u64::try_from(now.timestamp()).unwrap_or(0);
        let Ok(step) = crate::totp::verify(&secret, answer, unix, record.last_step) else {
            return Ok(Checked::default());
        };
        let next = TotpRecord {
            last_step: Some(step),
            ..record
        };
        Ok(Checked {
            matched: true,
            swap_credentials: vec![deskgate_store::CredentialSwap {
                expected_hash: stored,
                credential: Self::totp_credential(&subject.id, &next, now),
            }],
            ..Checked::default()
        })
    }
}

impl Service {
    /// What an attacker needs to answer with a held code: recovery codes depend on where they
    /// were shown (codes issued before that was kept were mailed, so on the mailbox of record);
    /// an authenticator app on its device and on where its seed was shown.
    async fn held_units(&self, subject: &Subject, method: Method) -> AppResult<BTreeSet<String>> {
        if method == Method::RecoveryCode {
            return Ok(self.recovery_provenance(subject).await?.units);
        }
        let apps = subject
            .authenticators
            .iter()
            .filter(|a| a.kind == AuthenticatorKind::Totp)
            .map(|a| takeover::device(&a.id));
        let seed = self.totp_provenance(subject).await?.units;
        Ok(units(apps.chain(seed)))
    }
}
