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

    /// Enrols an authenticator app for the subject and returns its `otpauth://` URI, shown once to
    /// whoever enrols it (standing in for the enrolment QR code); the seed is sealed in the store
    /// and never sent. `provenance` says where it was shown. The email of record is told, without
    /// the seed.
    pub async fn enroll_totp(
        &self,
        subject_id: &str,
        by: &Actor,
        provenance: &Provenance,
    ) -> AppResult<String> {
        let mut subject = self.required_subject(subject_id).await?;
        let email = subject
            .contact(ContactKind::Email)
            .cloned()
            .ok_or_else(|| {
                AppError::invalid_as("no_contact_of_record", "the subject has no email of record")
            })?;
        let now = self.now();
        let (uri, sealed) = self.bind_new_app(&mut subject, now)?;
        let record = TotpRecord {
            sealed,
            last_step: None,
            provenance: Some(provenance.clone()),
        };
        let enrolled = AuditEvent::AuthenticatorEnrolled(event::AuthenticatorEnrolled {
            subject_id: subject.id.clone(),
            kind: AuthenticatorKind::Totp.to_string(),
            notified: email.masked(),
        });
        self.store
            .commit(Change {
                subjects: vec![subject.clone()],
                credentials: vec![Self::totp_credential(&subject.id, &record, now)],
                audit: vec![self.entry(by, None, enrolled)],
                ..Change::default()
            })
            .await?;
        let notices = crate::notices::notice_to_every_contact(
            &subject,
            "authenticator_notice",
            "An authenticator app was enrolled on your account. If this was not you, contact \
             the security team.",
        );
        for n in &notices {
            if let Err(e) = self.delivery.send(n).await {
                tracing::warn!(error = %e, "authenticator notice not delivered");
            }
        }
        Ok(uri)
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
    pub(crate) async fn recovery_hashes(&self, subject_id: &str) -> AppResult<Vec<String>> {
        Ok(self.store.recovery_codes(subject_id).await?)
    }

    /// When the subject's recovery codes were issued and where they were shown, if they were.
    pub(crate) async fn recovery_codes_issued(
        &self,
        subject_id: &str,
    ) -> AppResult<Option<(DateTime<Utc>, String)>> {
        Ok(self
            .store
            .credential(subject_id, RECOVERY_PROVENANCE)
            .await?
            .and_then(|c| {
                let p: Provenance = serde_json::from_str(&c.hash).ok()?;
                Some((c.created_at, p.shown_in))
            }))
    }

    /// Issues ten new recovery codes (replacing any old ones, used or not) and returns them, to be
    /// shown once to the subject: they are never sent, and only their keyed hashes are kept, with
    /// `provenance` (where they were shown), which every recovery-code verification depends on.
    pub async fn issue_recovery_codes(
        &self,
        subject_id: &str,
        by: &Actor,
        provenance: &Provenance,
    ) -> AppResult<Vec<String>> {
        let subject = self.required_subject(subject_id).await?;
        let issued = self.new_recovery_codes(&subject.id, by, provenance, self.now());
        self.store
            .commit(Change {
                recovery_codes: vec![issued.hashes],
                credentials: vec![issued.provenance],
                audit: vec![issued.entry],
                ..Change::default()
            })
            .await?;
        Ok(issued.codes)
    }

    /// Ten new recovery codes for `subject_id` and what a commit stores of them: their keyed
    /// hashes (replacing every earlier code), their provenance and `recovery_codes.issued`.
    pub(crate) fn new_recovery_codes(
        &self,
        subject_id: &str,
        by: &Actor,
        provenance: &Provenance,
        now: DateTime<Utc>,
    ) -> IssuedCodes {
        let codes: Vec<String> = (0..10).map(|_| new_recovery_code()).collect();
        let context = format!("recovery:{subject_id}");
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| normalise_recovery_code(c))
            .map(|c| self.codes.hash(&context, &c))
            .collect();
        let issued = AuditEvent::RecoveryCodesIssued(event::RecoveryCodesIssued::Shown(
            event::RecoveryCodesShown {
                subject_id: subject_id.to_owned(),
                count: hashes.len() as u64,
                shown_in: provenance.shown_in.clone(),
                depends_on: provenance.units.iter().cloned().collect(),
            },
        ));
        IssuedCodes {
            codes,
            hashes: deskgate_store::RecoveryCodes {
                subject_id: subject_id.to_owned(),
                hashes,
                issued_at: now,
            },
            provenance: deskgate_store::Credential {
                subject_id: subject_id.to_owned(),
                kind: RECOVERY_PROVENANCE.to_owned(),
                hash: serde_json::to_string(provenance).unwrap_or_default(),
                created_at: now,
                expires_at: None,
                used_at: None,
            },
            entry: self.entry(by, None, issued),
        }
    }

    /// What the subject's recovery codes depend on. Codes issued before provenance was kept
    /// were mailed to the email of record: they depend on that mailbox.
    pub(crate) async fn recovery_provenance(&self, subject: &Subject) -> AppResult<Provenance> {
        let stored = self
            .store
            .credential(&subject.id, RECOVERY_PROVENANCE)
            .await?
            .and_then(|c| serde_json::from_str::<Provenance>(&c.hash).ok());
        Ok(stored.unwrap_or_else(|| Provenance::mailed(self, subject)))
    }

    /// Where the subject's temporary access pass went, kept beside it: what it enrols depends
    /// on that contact.
    pub(crate) fn pass_provenance_record(
        &self,
        subject_id: &str,
        to: &deskgate_core::Contact,
        now: DateTime<Utc>,
    ) -> deskgate_store::Credential {
        let provenance = Provenance {
            shown_in: format!(
                "enrolled with a temporary access pass sent to {}",
                to.masked()
            ),
            units: [methods::contact_unit(self, to)].into(),
        };
        deskgate_store::Credential {
            subject_id: subject_id.to_owned(),
            kind: PASS_PROVENANCE.to_owned(),
            hash: serde_json::to_string(&provenance).unwrap_or_default(),
            created_at: now,
            expires_at: None,
            used_at: None,
        }
    }

    /// What an enrolment with the subject's temporary access pass depends on.
    pub(crate) async fn pass_provenance(&self, subject: &Subject) -> AppResult<Provenance> {
        let stored = self
            .store
            .credential(&subject.id, PASS_PROVENANCE)
            .await?
            .and_then(|c| serde_json::from_str::<Provenance>(&c.hash).ok());
        Ok(stored.unwrap_or_else(|| Provenance::any_contact(self, subject)))
    }

    /// What a device the identity provider enrolled (a push device: Deskgate has no enrolment
    /// path of its own for one) depends on besides itself. An identity provider lets a temporary
    /// access pass enrol any factor, and what the pass enrolled can enrol more; so a device
    /// enrolled at or after the moment the subject's latest pass was handed over depends on where
    /// that pass went. One enrolled before it depends on itself alone.
    pub(crate) async fn enrolled_since_pass_units(
        &self,
        subject_id: &str,
        enrolled_at: DateTime<Utc>,
    ) -> AppResult<std::collections::BTreeSet<String>> {
        Ok(self
            .store
            .credential(subject_id, PASS_PROVENANCE)
            .await?
            .filter(|pass| enrolled_at >= pass.created_at)
            .and_then(|pass| serde_json::from_str::<Provenance>(&pass.hash).ok())
            .map(|p| p.units)
            .unwrap_or_default())
    }

    /// What evidence through `contact` depends on: the contact itself and, when a case put it on
    /// record, whatever that case's evidence depended on (who could change it could hold it).
    pub(crate) async fn contact_units(
        &self,
        subject: &Subject,
        contact: &deskgate_core::Contact,
    ) -> AppResult<std::collections::BTreeSet<String>> {
        let unit = methods::contact_unit(self, contact);
        let mut units = self
            .contact_provenance(&subject.id)
            .await?
            .remove(&unit)
            .map(|p| p.units)
            .unwrap_or_default();
        units.insert(unit);
        Ok(units)
    }

    /// Per contact unit, how a case put that contact on record.
    async fn contact_provenance(
        &self,
        subject_id: &str,
    ) -> AppResult<std::collections::BTreeMap<String, Provenance>> {
        Ok(self
            .store
            .credential(subject_id, CONTACT_PROVENANCE)
            .await?
            .and_then(|c| serde_json::from_str(&c.hash).ok())
            .unwrap_or_default())
    }

    /// The record that `case`, which changes a contact of `after`, put the new contact there on
    /// the strength of its counted evidence: later evidence through that contact depends on the
    /// same units. `None` for a case that changes no contact.
    pub(crate) async fn contact_provenance_record(
        &self,
        case: &Case,
        after: &Subject,
        now: DateTime<Utc>,
    ) -> AppResult<Option<deskgate_store::Credential>> {
        let Some(value) = case.new_contact.as_deref() else {
            return Ok(None);
        };
        let Some(contact) = after.contacts.iter().find(|c| c.value == value) else {
            return Ok(None);
        };
        let evidence = case.evidence();
        let counting: Vec<&deskgate_core::Evidence> = evidence
            .iter()
            .filter(|e| case.requirements.discount_reason(e, now).is_none())
            .collect();
        let selection =
            deskgate_core::takeover::select(&counting, &case.requirements.required_any_of);
        let units = counting
            .iter()
            .filter(|e| selection.counted.values().any(|v| v == &e.verification_id))
            .flat_map(|e| e.units.iter().cloned())
            .collect();
        let mut map = self.contact_provenance(&after.id).await?;
        map.insert(
            methods::contact_unit(self, contact),
            Provenance {
                shown_in: format!("put on record by case {}", case.id),
                units,
            },
        );
        Ok(Some(deskgate_store::Credential {
            subject_id: after.id.clone(),
            kind: CONTACT_PROVENANCE.to_owned(),
            hash: serde_json::to_string(&map).unwrap_or_default(),
            created_at: now,
            expires_at: None,
            used_at: None,
        }))
    }

    /// What the subject's authenticator app depends on: its seed's provenance (seeds enrolled
    /// before provenance was kept were mailed to the email of record).
    pub(crate) async fn totp_provenance(&self, subject: &Subject) -> AppResult<Provenance> {
        Ok(self
            .totp_record(subject)
            .await?
            .and_then(|r| r.provenance)
            .unwrap_or_else(|| Provenance::mailed(self, subject)))
    }
}

/// New recovery codes in clear, to show once, and what a commit stores of them.
pub(crate) struct IssuedCodes {
    pub codes: Vec<String>,
    pub hashes: deskgate_store::RecoveryCodes,
    pub provenance: deskgate_store::Credential,
    pub entry: NewAuditEntry,
}

/// The credential kind holding where the subject's current recovery codes were shown.
const RECOVERY_PROVENANCE: &str = "recovery_codes_provenance";

/// The credential kind holding, per contact a case changed, what that change depended on.
const CONTACT_PROVENANCE: &str = "contact_provenance";

/// The credential kind holding where the subject's temporary access pass was sent.
const PASS_PROVENANCE: &str = "temporary_access_pass_provenance";

/// One recovery code: 16 base32 characters (80 bits) in groups of four.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let raw: Vec<u8> = (0..16)
        .map(|_| ALPHABET[rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..ALPHABET.len())])
        .collect();
    raw.chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

impl Provenance {
    /// Held offline by the subject since an enrolment (the demo's people, say).
    pub fn held(subject_id: &str, shown_in: &str) -> Self {
        Self {
            shown_in: shown_in.to_owned(),
            units: [deskgate_core::takeover::held(subject_id)].into(),
        }
    }

    /// Enrolled with a temporary access pass whose destination was not kept (passes issued
    /// before it was): it went to one contact of record, so the enrolment depends on each.
    pub(crate) fn any_contact(svc: &Service, subject: &Subject) -> Self {
        Self {
            shown_in: "enrolled with a temporary access pass sent to a contact of record"
                .to_owned(),
            units: subject
                .contacts
                .iter()
                .map(|c| methods::contact_unit(svc, c))
                .collect(),
        }
    }

    /// Mailed to the subject's email of record.
    pub(crate) fn mailed(svc: &Service, subject: &Subject) -> Self {
        Self {
            shown_in: "mailed to the email of record".to_owned(),
            units: [methods::mailbox_of_record(svc, subject)].into(),
        }
    }
}
