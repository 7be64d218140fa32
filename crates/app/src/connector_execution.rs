//! Executing a granted action through the configured connector (LDAP / Active Directory), with
//! Deskgate's own service credentials.
//!
//! The data flow is the design's: the grant's consumption and an `execution.started` entry are
//! committed first (if that commit fails nothing happens), then the connector acts, then its
//! result comes back as a new commit: `execution.performed` with the case `executed`, or
//! `execution.failed` with the case `failed` (see [`deskgate_core::Case::fail_execution`] for
//! why a failure ends the case). Secrets the connector generates are handed over exactly as the
//! built-in path does: a new password to a trusted contact of record, a rotated service
//! credential through a sealed single-retrieval link; the agent sees neither. Notices and
//! probation follow only a successful execution.
//!
//! Factors (passkeys, TOTP, push devices) live in Deskgate's store, not in the directory, so an
//! MFA reset or factor re-bind removes them and issues the temporary access pass as the
//! built-in path does.

use chrono::{DateTime, Duration, Utc};
use deskgate_connectors::{Connector, ConnectorError, GeneratedSecret};
use deskgate_core::{Action, Case, Contact, ContactKind, PolicyPin, Staff, Subject, SubjectStatus};
use deskgate_store::{CaseWrite, Change, Credential, LinkToken, StoredCase, system_actor};
use serde_json::{Value, json};

use crate::delivery::{Message, Secret};
use crate::directory;
use crate::error::AppError;
use crate::secrets;
use crate::service::{SECRET_PICKUP, Service, actor};
use crate::views::ExecutionView;

type AppResult<T> = Result<T, AppError>;

/// What the action needs, settled before the grant is consumed so that a case that cannot be
/// carried out is refused with its grant intact.
enum Plan {
    PasswordReset {
        to: Contact,
    },
    Unlock,
    ContactChange {
        kind: ContactKind,
        value: String,
    },
    RotateServiceCredential {
        owner: Box<Subject>,
    },
    /// Factors are Deskgate's: the built-in directory's result, computed up front (it is pure).
    Factors(Box<directory::Execution>),
}

/// What the connector did.
struct Performed {
    secret: Option<GeneratedSecret>,
    details: Value,
}

fn refused(message: impl Into<String>) -> AppError {
    AppError::invalid_as("execution_refused", message)
}

fn server_error(code: &'static str, message: &str) -> AppError {
    AppError::internal(code, message)
}

impl Service {
    /// Performs the approved case's action through `connector`. Called by
    /// [`Service::execute`] once Cedar allowed it; `stored` is the case before its grant is
    /// consumed, `subject` the subject as just synced from the directory.
    pub(crate) async fn execute_through_connector(
        &self,
        connector: &dyn Connector,
        caller: &Staff,
        stored: &StoredCase,
        subject: Subject,
        pin: PolicyPin,
        now: DateTime<Utc>,
    ) -> AppResult<ExecutionView> {
        let plan = self.plan(&stored.case, &subject, now).await?;
        let who = actor(caller);
        let mut case = stored.case.clone();
        let grant = case.begin_execution(&caller.id, now)?;
        case.record_decision(pin.clone());
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                audit: vec![
                    Self::on_evidence(
                        self.entry_untyped(
                            &who,
                            Some(&case.id),
                            "grant.consumed",
                            json!({
                                "grant_id": grant.id, "agent_id": grant.agent_id,
                                "subject_id": grant.subject_id, "tier": case.subject_tier,
                                "action": grant.action,
                            }),
                        ),
                        &case,
                    ),
                    self.pinned(
                        self.entry_untyped(
                            &system_actor(),
                            Some(&case.id),
                            "execution.started",
                            json!({
                                "connector": connector.name(), "action": case.action,
                                "subject_id": case.subject_id,
                            }),
                        ),
                        &pin,
                    ),
                ],
                ..Change::default()
            })
            .await?;
        let version = stored.version + 1;

        // The first call confirms the subject where the directory keeps it, right before acting:
        // every execution touches the directory, even one whose action (a factor reset) lives in
        // Deskgate's store, so none runs on a stale view while the directory is down.
        let outcome = match connector.lookup(&subject.id).await {
            Ok(entry) => perform(connector, &case, &subject, &plan)
                .await
                .map(|p| (entry.backend_id, p)),
            Err(e) => Err(e),
        };
        let (backend_id, performed) = match outcome {
            Ok(done) => done,
            Err(error) => {
                return Err(self
                    .record_failure(connector, &who, case, version, &error, now)
                    .await);
            }
        };
        let sessions = match connector.revoke_sessions(&subject.id).await {
            Ok(()) => json!("revoked"),
            Err(ConnectorError::Unsupported { .. }) => json!("not supported by this connector"),
            // The action itself happened; the record says the sessions may live on.
            Err(e) => json!(format!("not revoked: {e}")),
        };
        self.record_success(
            connector,
            &who,
            case,
            version,
            subject,
            plan,
            performed,
            Outcome {
                backend_id,
                sessions,
                grant_id: grant.id,
                pin,
                now,
            },
        )
        .await
    }

    /// Checks that the action can be carried out and gathers what it needs.
    async fn plan(&self, case: &Case, subject: &Subject, now: DateTime<Utc>) -> AppResult<Plan> {
        let freshness = case.requirements.freshness();
        Ok(match case.action {
            Action::PasswordReset => {
                let to = subject.secret_destination(freshness, now).ok_or_else(|| {
                    refused(
                        "the subject has no trusted contact of record to receive a temporary \
                             password",
                    )
                })?;
                Plan::PasswordReset { to: to.clone() }
            }
            Action::AccountUnlock => Plan::Unlock,
            Action::EmailChange | Action::PhoneChange => {
                let kind = case
                    .action
                    .changed_contact_kind()
                    .unwrap_or(ContactKind::Email);
                let value = case
                    .new_contact
                    .clone()
                    .ok_or_else(|| refused("the case holds no new contact"))?;
                Plan::ContactChange { kind, value }
            }
            Action::ServiceCredentialRotate => {
                // A rotated service secret goes to the owner who asked and was verified.
                let owner = match &case.requester {
                    Some(id) if subject.is_non_human() && subject.owners.contains(id) => {
                        self.store.subject(id).await?
                    }
                    _ => None,
                }
                .filter(|o| o.service_secret_destination(freshness, now).is_some())
                .ok_or_else(|| {
                    refused("the subject has no trusted contact of record to receive a service credential")
                })?;
                Plan::RotateServiceCredential {
                    owner: Box::new(owner),
                }
            }
            Action::MfaReset | Action::FactorRebind => {
                let tap_ttl = Duration::minutes(case.requirements.tap_minutes);
                let execution = directory::execute(case, subject, None, tap_ttl, now)
                    .map_err(|e| refused(e.to_string()))?;
                Plan::Factors(Box::new(execution))
            }
        })
    }

    /// Ends the case `failed` and records why; returns the error for the caller.
    async fn record_failure(
        &self,
        connector: &dyn Connector,
        who: &deskgate_store::Actor,
        mut case: Case,
        version: i64,
        error: &ConnectorError,
        now: DateTime<Utc>,
    ) -> AppError {
        let reason = format!("the {} connector failed: {error}", connector.name());
        tracing::warn!(case = %case.id, action = %case.action, error = %error, "execution failed");
        if let Err(e) = case.fail_execution(reason.clone(), now) {
            return e.into();
        }
        let committed = self
            .store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: version,
                }),
                audit: vec![self.entry_untyped(
                    &system_actor(),
                    Some(&case.id),
                    "execution.failed",
                    json!({
                        "connector": connector.name(), "action": case.action,
                        "subject_id": case.subject_id, "error": error.to_string(),
                        "agent_id": who.id,
                    }),
                )],
                ..Change::default()
            })
            .await;
        if let Err(e) = committed {
            // The grant is spent and the case stays in flight; it can only be ended now.
            tracing::error!(case = %case.id, error = %e, "the failed execution could not be recorded");
            return e.into();
        }
        AppError::upstream_failed(
            "execution_failed",
            format!(
                "{reason}. The grant is spent and the case is failed; open a new case to try again."
            ),
        )
        .with_details(json!({ "case_id": case.id, "case_state": case.state }))
    }

    /// Commits the successful execution (case executed, subject, credentials, links,
    /// `execution.performed`), then delivers the secret and the notices.
    #[allow(clippy::too_many_arguments)]
    async fn record_success(
        &self,
        connector: &dyn Connector,
        who: &deskgate_store::Actor,
        mut case: Case,
        version: i64,
        subject: Subject,
        plan: Plan,
        performed: Performed,
        outcome: Outcome,
    ) -> AppResult<ExecutionView> {
        let now = outcome.now;
        let mut next = subject.clone();
        let mut credentials: Vec<Credential> = Vec::new();
        let mut secret_message = None;
        let mut pickup = None;
        match plan {
            Plan::PasswordReset { to } => {
                if let Some(secret) = &performed.secret {
                    secret_message = Some(password_message(&case, &to, secret));
                }
            }
            Plan::Unlock => next.status = SubjectStatus::Active,
            Plan::ContactChange { kind, value } => replace_contact(&mut next, kind, value, now),
            Plan::RotateServiceCredential { owner } => {
                if let Some(secret) = &performed.secret {
                    let (credential, link, message) =
                        self.pickup(&case, &owner, secret.expose(), now)?;
                    credentials.push(credential);
                    pickup = Some((link, message));
                }
            }
            Plan::Factors(execution) => {
                next = execution.subject;
                credentials = execution.credentials;
                secret_message = execution.secret_message;
            }
        }
        drop(performed.secret);
        // Further high-risk changes escalate while the subject is on probation.
        next.probation_until = Some(now + Duration::hours(case.requirements.probation_hours));
        case.complete_execution(now)?;

        let manager = match &subject.manager {
            Some(m) => self.store.subject(m).await?,
            None => None,
        };
        let (not_me_url, not_me_link) = self.not_me_link(&case, &subject.id, now);
        let notices =
            directory::notices(&case, &subject, &next, manager.as_ref(), &not_me_url, now);
        let performed_entry = self.pinned(
            Self::on_evidence(
                self.entry_untyped(
                    &system_actor(),
                    Some(&case.id),
                    "execution.performed",
                    json!({
                        "connector": connector.name(),
                        "backend_id": outcome.backend_id,
                        "action": case.action,
                        "subject_id": case.subject_id,
                        "tier": case.subject_tier,
                        "agent_id": who.id,
                        "result": performed.details,
                        "sessions": outcome.sessions,
                        "notices": notices.iter().map(|n| json!({"channel": n.channel, "subject_id": n.subject_id})).collect::<Vec<_>>(),
                    }),
                ),
                &case,
            ),
            &outcome.pin,
        );
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: version,
                }),
                subjects: vec![next],
                credentials,
                new_links: std::iter::once(not_me_link)
                    .chain(pickup.as_ref().map(|(link, _)| link.clone()))
                    .collect(),
                audit: vec![performed_entry],
                ..Change::default()
            })
            .await?;
        tracing::info!(case = %case.id, action = %case.action, connector = connector.name(), "recovery executed");

        let pickup_notice = pickup.map(|(_, m)| m);
        let messages = secret_message
            .iter()
            .chain(pickup_notice.iter())
            .chain(notices.iter());
        let failures = self.deliver_after_execution(&case.id, messages).await?;
        Ok(ExecutionView {
            case: self.view(&case).await?,
            grant_id: outcome.grant_id,
            result: performed.details,
            notices_sent: notices.len(),
            delivery_failures: failures,
        })
    }

    /// Seals a rotated service secret for one retrieval by `owner` and builds the link message;
    /// the secret never travels in a message. Both execution paths hand secrets over this way.
    pub(crate) fn pickup(
        &self,
        case: &Case,
        owner: &Subject,
        secret: &str,
        now: DateTime<Utc>,
    ) -> AppResult<(Credential, LinkToken, Message)> {
        let token = secrets::random_token();
        let expires_at = now + Duration::minutes(15);
        let sealed = self
            .sealer
            .seal(
                &format!("{}/{SECRET_PICKUP}", case.subject_id),
                secret.as_bytes(),
            )
            .map_err(|_| server_error("seal_failed", "sealing failed"))?;
        let credential = Credential {
            subject_id: case.subject_id.clone(),
            kind: SECRET_PICKUP.to_owned(),
            hash: sealed,
            created_at: now,
            expires_at: Some(expires_at),
            used_at: None,
        };
        let email = owner
            .contact(ContactKind::Email)
            .map(|c| c.value.clone())
            .unwrap_or_default();
        let url = format!(
            "{}/retrieve/{token}",
            self.config.public_url.trim_end_matches('/')
        );
        let link = LinkToken {
            token_hash: secrets::token_hash(&token),
            kind: "secret_retrieval".to_owned(),
            case_id: case.id.clone(),
            verification_id: String::new(),
            respondent: owner.id.clone(),
            created_at: now,
            expires_at,
            used_at: None,
        };
        let message = Message {
            to: email,
            channel: "email".to_owned(),
            kind: "secret_retrieval_link".to_owned(),
            subject_id: owner.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "The credential of {} was rotated (case {}). Retrieve the new secret once, \
                 within 15 minutes, at {url} and put it straight into the secret store.",
                case.subject_id, case.id
            ),
            secret: Some(Secret::Link(url)),
        };
        Ok((credential, link, message))
    }
}

/// Facts of a successful call that go into the record.
struct Outcome {
    backend_id: String,
    sessions: Value,
    grant_id: String,
    pin: PolicyPin,
    now: DateTime<Utc>,
}

/// Calls the connector for the planned action.
async fn perform(
    connector: &dyn Connector,
    case: &Case,
    subject: &Subject,
    plan: &Plan,
) -> Result<Performed, ConnectorError> {
    let id = subject.id.as_str();
    Ok(match plan {
        Plan::PasswordReset { to } => {
            let secret = connector.reset_password(id).await?;
            Performed {
                secret: Some(secret),
                details: json!({
                    "credential": "password", "must_change": true, "delivered_to": to.masked(),
                }),
            }
        }
        Plan::Unlock => {
            connector.unlock(id).await?;
            Performed {
                secret: None,
                details: json!({
                    "was_locked": subject.status == SubjectStatus::Locked,
                    "status": SubjectStatus::Active,
                }),
            }
        }
        Plan::ContactChange { kind, value } => {
            connector.change_contact(id, *kind, value).await?;
            let old = subject.contact(*kind).map(Contact::masked);
            let mut after = subject.clone();
            replace_contact(&mut after, *kind, value.clone(), case.updated_at);
            let new = after.contact(*kind).map(Contact::masked);
            Performed {
                secret: None,
                details: json!({ "contact": kind, "old": old, "new": new }),
            }
        }
        Plan::RotateServiceCredential { owner } => {
            let secret = connector.rotate_service_credential(id).await?;
            let to = owner.contact(ContactKind::Email).map(Contact::masked);
            Performed {
                secret: Some(secret),
                details: json!({
                    "credential": "service_secret", "delivered_to_owner": owner.id,
                    "delivered_to": to,
                }),
            }
        }
        Plan::Factors(execution) => Performed {
            secret: None,
            details: execution.details.clone(),
        },
    })
}

/// The temporary password's message to the trusted contact, worded as the built-in path's.
fn password_message(case: &Case, to: &Contact, secret: &GeneratedSecret) -> Message {
    Message {
        to: to.value.clone(),
        channel: match to.kind {
            ContactKind::Phone => "sms",
            ContactKind::Email => "email",
        }
        .to_owned(),
        kind: "temporary_password".to_owned(),
        subject_id: case.subject_id.clone(),
        case_id: Some(case.id.clone()),
        body: format!(
            "Your password was reset by the help desk (case {}). Your temporary password is {}. \
             You must change it at next sign-in.",
            case.id,
            secret.expose()
        ),
        secret: Some(Secret::Password(secret.expose().to_owned())),
    }
}

/// Replaces the first contact of `kind` (the one the directory's change replaced) with the new,
/// unverified value; other contacts of that kind (a desk phone) stay.
fn replace_contact(subject: &mut Subject, kind: ContactKind, value: String, now: DateTime<Utc>) {
    let new = Contact {
        kind,
        value,
        verified_at: None,
        changed_at: now,
    };
    match subject.contacts.iter_mut().find(|c| c.kind == kind) {
        Some(c) => *c = new,
        None => subject.contacts.push(new),
    }
}
