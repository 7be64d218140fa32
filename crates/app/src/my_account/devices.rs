//! The subject's other devices on their own page: the authenticator app and push devices.
//! They are listed with when each was bound, and a person can rename one or remove one they no
//! longer have (removal needs no new evidence: it only takes a way in away). Adding happens
//! where the factor lives: the identity provider enrols push devices, and an authenticator app
//! is set up with a temporary access pass.

use deskgate_audit::{AuditEvent, event};
use deskgate_core::{Authenticator, AuthenticatorKind};
use deskgate_store::Change;

use super::{AppResult, MySession, checked_label, subject_actor};
use crate::error::AppError;
use crate::service::Service;

/// One device as the page shows it.
pub struct DeviceView {
    pub id: String,
    /// What it is, in words.
    pub kind: &'static str,
    pub label: String,
    pub enrolled_at: chrono::DateTime<chrono::Utc>,
}

fn kind_words(kind: AuthenticatorKind) -> &'static str {
    match kind {
        AuthenticatorKind::Totp => "Authenticator app",
        AuthenticatorKind::Push => "Push-notification device",
        AuthenticatorKind::Passkey => "Passkey",
    }
}

/// The subject's devices other than passkeys (those have their own list).
pub(super) fn devices(authenticators: &[Authenticator]) -> Vec<DeviceView> {
    authenticators
        .iter()
        .filter(|a| a.kind != AuthenticatorKind::Passkey)
        .map(|a| DeviceView {
            id: a.id.clone(),
            kind: kind_words(a.kind),
            label: a.label.clone(),
            enrolled_at: a.enrolled_at,
        })
        .collect()
}

fn not_a_device() -> AppError {
    AppError::not_found("device")
}

impl Service {
    /// Renames one of the subject's devices.
    pub async fn my_rename_device(
        &self,
        session: &MySession,
        device_id: &str,
        label: &str,
    ) -> AppResult<()> {
        let label = checked_label(label)?;
        let mut subject = self.fresh_subject(session).await?;
        let device = subject
            .authenticators
            .iter_mut()
            .find(|a| a.kind != AuthenticatorKind::Passkey && a.id == device_id)
            .ok_or_else(not_a_device)?;
        device.label = label.clone();
        let renamed = AuditEvent::SubjectDeviceRenamed(event::SubjectDeviceRenamed {
            subject_id: subject.id.clone(),
            device_id: device_id.to_owned(),
            label,
        });
        self.commit_device_change(subject, renamed).await
    }

    /// Removes one of the subject's devices (an authenticator app's sealed seed is never read
    /// again: it counts only while the app is listed, and a new app replaces it); every contact
    /// of record is told. Not while on probation: the recovery that started
    /// it may not have been the person's, and the help desk can do it.
    pub async fn my_remove_device(&self, session: &MySession, device_id: &str) -> AppResult<()> {
        self.may_change_ways_in(session)?;
        let mut subject = self.fresh_subject(session).await?;
        let kind = subject
            .authenticators
            .iter()
            .find(|a| a.kind != AuthenticatorKind::Passkey && a.id == device_id)
            .map(|a| a.kind)
            .ok_or_else(not_a_device)?;
        subject.authenticators.retain(|a| a.id != device_id);
        let removed = AuditEvent::SubjectDeviceRemoved(event::SubjectDeviceRemoved {
            subject_id: subject.id.clone(),
            device_id: device_id.to_owned(),
            kind: kind.to_string(),
        });
        self.commit_device_change(subject.clone(), removed).await?;
        self.tell_every_contact(
            &subject,
            &format!(
                "A device ({}) was removed from your account on your own page. If this was not \
                 you, contact the security team at once.",
                kind_words(kind).to_lowercase()
            ),
        )
        .await;
        Ok(())
    }

    async fn commit_device_change(
        &self,
        subject: deskgate_core::Subject,
        event: AuditEvent,
    ) -> AppResult<()> {
        let audit = vec![self.entry(&subject_actor(&subject.id, "own_page_session"), None, event)];
        self.store
            .commit(Change {
                subjects: vec![subject],
                audit,
                ..Change::default()
            })
            .await?;
        Ok(())
    }
}
