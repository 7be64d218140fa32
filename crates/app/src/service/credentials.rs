//! Credentials Deskgate keeps for subjects: the authenticator app's sealed seed and the saved
//! recovery codes.

use super::*;

impl Service {
    /// The subject's TOTP record, when an authenticator app is enrolled.
    pub(super) async fn totp_record(&self, subject: &Subject) -> AppResult<Option<TotpRecord>> {
        Ok(self.totp_stored(subject).await?.map(|(record, _)| record))
    }

    /// The subject's TOTP record with its stored text, which a later write must still find
    /// (compare-and-swap) for its step to count.
    pub(super) async fn totp_stored(
        &self,
        subject: &Subject,
    ) -> AppResult<Option<(TotpRecord, String)>> {
        if !subject
            .authenticators
            .iter()
            .any(|a| a.kind == AuthenticatorKind::Totp)
        {
            return Ok(None);
        }
        match self.store.credential(&subject.id, TOTP).await? {
            Some(c) => Ok(serde_json::from_str(&c.hash).ok().map(|r| (r, c.hash))),
            None => Ok(None),
        }
    }

    pub(super) fn totp_credential(
        subject_id: &str,
        record: &TotpRecord,
        now: DateTime<Utc>,
    ) -> deskgate_store::Credential {
        deskgate_store::Credential {
            subject_id: subject_id.to_owned(),
            kind: TOTP.to_owned(),
            hash: serde_json::to_string(record).unwrap_or_default(),
            created_at: now,
            expires_at: None,
            used_at: None,
        }
    }

    pub(super) fn totp_secret(
        &self,
        subject_id: &str,
        record: &TotpRecord,
    ) -> AppResult<crate::totp::TotpSecret> {
        let corrupt = || {
            AppError::internal(
                "corrupt_credential",
                "the stored authenticator seed cannot be read",
            )
        };
        let seed = self
            .sealer
            .open(&format!("{subject_id}/{TOTP}"), &record.sealed)
            .map_err(|_| corrupt())?;
        crate::totp::TotpSecret::from_bytes(seed).map_err(|_| corrupt())
    }

    /// Enrols an authenticator app for the subject: the seed is sealed in the store and sent once
    /// (as an `otpauth://` URI) to the email of record, standing in for the enrolment QR code.
    pub async fn enroll_totp(&self, subject_id: &str, by: &Actor) -> AppResult<()> {
        let mut subject = self.required_subject(subject_id).await?;
        let email = subject
            .contact(ContactKind::Email)
            .cloned()
            .ok_or_else(|| {
                AppError::invalid_as("no_contact_of_record", "the subject has no email of record")
            })?;
        let now = self.now();
        let (uri, sealed) = self.bind_new_app(&mut subject, now)?;
        self.delivery
            .send(&Message {
                to: email.value.clone(),
                channel: "email".to_owned(),
                kind: "totp_enrolment".to_owned(),
                subject_id: subject.id.clone(),
                case_id: None,
                body: "An authenticator app was enrolled on your account. If this was not you, \
                       contact the security team."
                    .to_owned(),
                secret: Some(Secret::Link(uri)),
            })
            .await
            .map_err(|_| {
                AppError::upstream_failed(
                    "delivery_failed",
                    "the enrolment could not be delivered; nothing was changed",
                )
            })?;
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                credentials: vec![Self::totp_credential(
                    &subject.id,
                    &TotpRecord {
                        sealed,
                        last_step: None,
                    },
                    now,
                )],
                audit: vec![self.entry(
                    by,
                    None,
                    AuditEvent::AuthenticatorEnrolled(event::AuthenticatorEnrolled {
                        subject_id: subject.id.clone(),
                        kind: AuthenticatorKind::Totp.to_string(),
                        notified: email.masked(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// Binds a fresh authenticator app to `subject` (replacing an old one): the seed, sealed for
    /// the store, and the `otpauth://` URI that enrols it.
    pub(super) fn bind_new_app(
        &self,
        subject: &mut Subject,
        now: DateTime<Utc>,
    ) -> AppResult<(String, String)> {
        let secret = crate::totp::generate_secret();
        let uri = crate::totp::provisioning_uri(&secret, &subject.id, "Deskgate")
            .map_err(|e| AppError::invalid_as("invalid_request", e.to_string()))?;
        let sealed = self
            .sealer
            .seal(
                &format!("{}/{TOTP}", subject.id),
                &crate::totp::secret_bytes(&secret),
            )
            .map_err(|_| AppError::internal("seal_failed", "sealing failed"))?;
        subject
            .authenticators
            .retain(|a| a.kind != AuthenticatorKind::Totp);
        subject.authenticators.push(deskgate_core::Authenticator {
            id: format!("totp-{}", subject.id),
            kind: AuthenticatorKind::Totp,
            label: "Authenticator app".to_owned(),
            enrolled_at: now,
        });
        Ok((uri, sealed))
    }

    /// The code the subject's enrolled authenticator app shows now (the demo's stand-in device).
    pub async fn current_totp(&self, subject_id: &str) -> AppResult<String> {
        let subject = self.required_subject(subject_id).await?;
        let record = self
            .totp_record(&subject)
            .await?
            .ok_or_else(|| AppError::not_found("enrolled authenticator app"))?;
        let secret = self.totp_secret(&subject.id, &record)?;
        let now = u64::try_from(self.now().timestamp()).unwrap_or(0);
        crate::totp::code_at(&secret, now)
            .map_err(|e| AppError::internal("totp_failed", e.to_string()))
    }

    /// Hashes of the subject's unused recovery codes.
    pub(super) async fn recovery_hashes(&self, subject_id: &str) -> AppResult<Vec<String>> {
        Ok(self.store.recovery_codes(subject_id).await?)
    }

    /// Issues ten new recovery codes (replacing any old ones), stores only their keyed hashes,
    /// and sends them to the subject's email of record, which is also the notice that they
    /// changed.
    pub async fn issue_recovery_codes(&self, subject_id: &str, by: &Actor) -> AppResult<usize> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let subject = self.required_subject(subject_id).await?;
        let email = subject.contact(ContactKind::Email).ok_or_else(|| {
            AppError::invalid_as(
                "no_contact_of_record",
                "the subject has no email of record to receive recovery codes",
            )
        })?;
        let now = self.now();
        let codes: Vec<String> = (0..10)
            .map(|_| {
                let raw: Vec<u8> = (0..16)
                    .map(|_| {
                        ALPHABET[rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..ALPHABET.len())]
                    })
                    .collect();
                raw.chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect();
        let context = format!("recovery:{}", subject.id);
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| normalise_recovery_code(c))
            .map(|c| self.codes.hash(&context, &c))
            .collect();
        self.delivery
            .send(&Message {
                to: email.value.clone(),
                channel: "email".to_owned(),
                kind: "recovery_codes".to_owned(),
                subject_id: subject.id.clone(),
                case_id: None,
                body: format!(
                    "New recovery codes were issued for your account; any earlier ones no longer \
                     work. Keep them somewhere safe, each works once: {}",
                    codes.join(" ")
                ),
                secret: Some(Secret::Code(codes.join(","))),
            })
            .await
            .map_err(|_| {
                AppError::upstream_failed(
                    "delivery_failed",
                    "the recovery codes could not be delivered; nothing was changed",
                )
            })?;
        self.store
            .commit(Change {
                recovery_codes: vec![deskgate_store::RecoveryCodes {
                    subject_id: subject.id.clone(),
                    hashes: hashes.clone(),
                    issued_at: now,
                }],
                audit: vec![self.entry(
                    by,
                    None,
                    AuditEvent::RecoveryCodesIssued(event::RecoveryCodesIssued {
                        subject_id: subject.id.clone(),
                        count: hashes.len() as u64,
                        delivered_to: email.masked(),
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(hashes.len())
    }
}
