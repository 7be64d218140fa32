//! Subject sync from the connected directory. With a connector configured, the directory is the
//! system of record for a subject's existence, status, groups (and so its tier, through the
//! connector's group map), display name, manager and contacts; Deskgate keeps what only it knows
//! (enrolled authenticators, probation, security flags, owners, hire date, history of contacts).
//!
//! The subject is looked up when a case is opened and again right before execution, and merged
//! into the stored subject. A contact whose value differs from the stored one is recorded as
//! changed now: whoever redirected it in the directory left exactly the trace the freshness rule
//! looks for, so it stops counting as evidence and raises the risk for the freshness window. The
//! directory, as system of record, vouches for the value (it is marked verified at that moment),
//! so once the window has passed without complaint the contact carries codes again; were it left
//! unverified, every routine HR update would silence a contact for good. A subject the directory
//! does not hold is refused, and an unreachable directory refuses too (fail closed).
//!
//! While security has a subject flagged (as "this was not me" does, along with locking it), a
//! lock in Deskgate survives a directory that still says active: the directory may make the
//! status stricter, never lift Deskgate's hold.

use chrono::{DateTime, Utc};
use deskgate_audit::AuditEvent;
use deskgate_audit::event::{self, ContactChange, FromTo, ManagerChange, SubjectChanges};
use deskgate_connectors::{Connector, ConnectorError, DirectoryEntry};
use deskgate_core::{Contact, ContactKind, Subject, SubjectStatus};
use deskgate_store::{CaseWrite, Change, StoredCase, system_actor};

use crate::audit_events::ids;
use crate::error::AppError;
use crate::service::Service;

type AppResult<T> = Result<T, AppError>;

/// A stored subject merged with its directory entry, and what the merge changed.
#[derive(Debug, Clone)]
pub struct Merged {
    pub subject: Subject,
    /// The subject was not in the store before.
    pub created: bool,
    /// What changed, for the audit entry, field by field; contacts masked.
    pub changes: SubjectChanges,
    /// Kinds of contact whose value of record changed (or appeared).
    pub changed_contacts: Vec<ContactKind>,
}

impl Merged {
    pub fn changed(&self) -> bool {
        self.created || self.changes != SubjectChanges::default()
    }
}

/// Whether two values name the same contact: phones by their digits, emails case-insensitively.
fn same_contact(kind: ContactKind, a: &str, b: &str) -> bool {
    match kind {
        ContactKind::Phone => {
            let digits = |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
            digits(a) == digits(b)
        }
        ContactKind::Email => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

/// `from` and `to`, when they differ.
fn change<T: PartialEq>(from: T, to: T) -> Option<FromTo<T>> {
    (from != to).then_some(FromTo { from, to })
}

/// Merges `entry` into `stored` (or creates the subject) at `now`.
pub fn merge(stored: Option<&Subject>, entry: &DirectoryEntry, now: DateTime<Utc>) -> Merged {
    let mut subject = stored.cloned().unwrap_or_else(|| Subject {
        id: entry.subject_id.clone(),
        display_name: entry.display_name.clone(),
        tier: entry.tier,
        status: entry.status,
        manager: None,
        owners: Vec::new(),
        groups: Vec::new(),
        contacts: Vec::new(),
        authenticators: Vec::new(),
        flagged: false,
        hired_at: None,
        utc_offset_minutes: None,
        probation_until: None,
        identity: None,
    });
    let mut changes = SubjectChanges {
        display_name: change(subject.display_name.clone(), entry.display_name.clone()),
        tier: change(subject.tier.to_string(), entry.tier.to_string()),
        ..SubjectChanges::default()
    };
    if !(subject.flagged
        && subject.status == SubjectStatus::Locked
        && entry.status == SubjectStatus::Active)
    {
        changes.status = change(subject.status.to_string(), entry.status.to_string());
    }
    let mut groups = entry.groups.clone();
    groups.sort();
    let mut before = subject.groups.clone();
    before.sort();
    changes.groups = change(before, groups.clone());
    // A directory without a manager attribute leaves Deskgate's own record of the manager.
    if let Some(manager) = &entry.manager {
        if subject.manager.as_ref() != Some(manager) {
            changes.manager = Some(ManagerChange {
                from: subject.manager.clone(),
                to: manager.clone(),
            });
        }
        subject.manager = Some(manager.clone());
    }
    subject.display_name = entry.display_name.clone();
    subject.tier = entry.tier;
    let locked_by_deskgate = subject.flagged && subject.status == SubjectStatus::Locked;
    if !(locked_by_deskgate && entry.status == SubjectStatus::Active) {
        subject.status = entry.status;
    }
    subject.groups = groups;

    // Contacts follow the directory's order (so the first phone is the one a phone change
    // replaces); a value Deskgate already holds keeps its history, any other value is new now.
    let mut contacts = Vec::new();
    let mut contact_changes = Vec::new();
    let mut changed_contacts = Vec::new();
    for c in &entry.contacts {
        let known = subject
            .contacts
            .iter()
            .find(|s| s.kind == c.kind && same_contact(c.kind, &s.value, &c.value));
        let contact = match known {
            Some(k) => Contact {
                value: c.value.clone(),
                ..k.clone()
            },
            None => {
                let new = Contact {
                    kind: c.kind,
                    value: c.value.clone(),
                    verified_at: Some(now),
                    changed_at: now,
                };
                contact_changes.push(ContactChange {
                    kind: c.kind.to_string(),
                    change: "new".to_owned(),
                    value: new.masked(),
                });
                if !changed_contacts.contains(&c.kind) {
                    changed_contacts.push(c.kind);
                }
                new
            }
        };
        contacts.push(contact);
    }
    for old in &subject.contacts {
        if !contacts
            .iter()
            .any(|c| c.kind == old.kind && same_contact(old.kind, &c.value, &old.value))
        {
            contact_changes.push(ContactChange {
                kind: old.kind.to_string(),
                change: "removed".to_owned(),
                value: old.masked(),
            });
            if !changed_contacts.contains(&old.kind) {
                changed_contacts.push(old.kind);
            }
        }
    }
    if !contact_changes.is_empty() {
        changes.contacts = Some(contact_changes);
    }
    subject.contacts = contacts;
    Merged {
        subject,
        created: stored.is_none(),
        changes,
        changed_contacts,
    }
}

/// What a sync of `merged` from `entry` changed, as `directory.synced` records it.
fn synced(
    connector: &dyn Connector,
    merged: &Merged,
    entry: &DirectoryEntry,
) -> event::DirectorySynced {
    event::DirectorySynced {
        subject_id: merged.subject.id.clone(),
        connector: connector.name().to_owned(),
        backend_id: entry.backend_id.clone(),
        created: merged.created,
        changes: merged.changes.clone(),
        evidence_withdrawn_for: None,
        case_state: None,
    }
}

/// A lookup failure as the caller sees it: a missing subject is refused, anything else means
/// the system of record cannot be consulted, so nothing proceeds.
fn lookup_error(subject_id: &str, error: ConnectorError) -> AppError {
    match error {
        ConnectorError::NotFound { .. } => AppError::invalid_as(
            "unknown_subject",
            format!("no subject {subject_id} in the directory, the system of record"),
        ),
        ConnectorError::InvalidSubjectId { .. } | ConnectorError::Ambiguous { .. } => {
            AppError::invalid_as("unknown_subject", error.to_string())
        }
        other => {
            tracing::warn!(subject = subject_id, error = %other, "directory lookup failed");
            AppError::unavailable(
                "directory_unavailable",
                format!("the directory could not be consulted, so nothing was done: {other}"),
            )
        }
    }
}

impl Service {
    /// Looks `subject_id` up in the directory and merges it with the stored subject.
    async fn merged_from(
        &self,
        connector: &dyn Connector,
        subject_id: &str,
    ) -> AppResult<(Merged, DirectoryEntry)> {
        let entry = connector
            .lookup(subject_id)
            .await
            .map_err(|e| lookup_error(subject_id, e))?;
        let stored = self.store.subject(subject_id).await?;
        Ok((merge(stored.as_ref(), &entry, self.now()), entry))
    }

    /// The `directory.synced` entry of `merged`, by the system.
    fn synced_entry(
        &self,
        case_id: Option<&str>,
        synced: event::DirectorySynced,
    ) -> deskgate_store::NewAuditEntry {
        self.entry(
            &system_actor(),
            case_id,
            AuditEvent::DirectorySynced(synced),
        )
    }

    /// The subject a new case is about. With the built-in directory, the stored subject; with a
    /// connector, the directory's view merged into the store (committed with a
    /// `directory.synced` entry when it changed something).
    pub async fn subject_for_new_case(&self, subject_id: &str) -> AppResult<Subject> {
        let Some(connector) = self.connector.clone() else {
            return self.store.subject(subject_id).await?.ok_or_else(|| {
                AppError::invalid_as("unknown_subject", format!("no subject {subject_id}"))
            });
        };
        let (merged, entry) = self.merged_from(connector.as_ref(), subject_id).await?;
        if merged.changed() {
            let audit = self.synced_entry(None, synced(connector.as_ref(), &merged, &entry));
            self.store
                .commit(Change {
                    subjects: vec![merged.subject.clone()],
                    audit: vec![audit],
                    ..Change::default()
                })
                .await?;
        }
        Ok(merged.subject)
    }

    /// Right before execution: syncs the case's subject from the directory. A contact that
    /// changed there takes back the case's evidence gathered through it (the core decides
    /// whether the case is still approved), in the same commit as the subject and the
    /// `directory.synced` entry. Returns the case as stored afterwards. Without a connector, or
    /// when the directory cannot be reached (the execution's own first call to it then fails
    /// and is recorded), the case is returned as it was. A subject the directory no longer
    /// holds is refused with the grant intact.
    pub async fn sync_before_execution(&self, stored: StoredCase) -> AppResult<StoredCase> {
        let Some(connector) = self.connector.clone() else {
            return Ok(stored);
        };
        let subject_id = stored.case.subject_id.clone();
        let entry = match connector.lookup(&subject_id).await {
            Ok(entry) => entry,
            Err(
                e @ (ConnectorError::NotFound { .. }
                | ConnectorError::InvalidSubjectId { .. }
                | ConnectorError::Ambiguous { .. }),
            ) => return Err(lookup_error(&subject_id, e)),
            // An unreachable directory is not a refusal here: execution itself starts by
            // calling the directory, after the grant is consumed, and records the failure there.
            Err(e) => {
                tracing::warn!(subject = %subject_id, error = %e, "directory sync before execution failed");
                return Ok(stored);
            }
        };
        let stored_subject = self.store.subject(&subject_id).await?;
        let merged = merge(stored_subject.as_ref(), &entry, self.now());
        if !merged.changed() {
            return Ok(stored);
        }
        let now = self.now();
        let mut case = stored.case.clone();
        let before = case.state;
        let mut touched = false;
        for kind in &merged.changed_contacts {
            touched |= case.contact_changed(*kind, now);
        }
        let mut details = synced(connector.as_ref(), &merged, &entry);
        if touched {
            details.evidence_withdrawn_for = Some(ids(&merged.changed_contacts));
            details.case_state = Some(FromTo {
                from: before.to_string(),
                to: case.state.to_string(),
            });
        }
        let audit = self.synced_entry(Some(&stored.case.id), details);
        self.store
            .commit(Change {
                case: touched.then(|| CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                subjects: vec![merged.subject],
                audit: vec![audit],
                ..Change::default()
            })
            .await?;
        Ok(StoredCase {
            case,
            version: stored.version + i64::from(touched),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Duration;
    use deskgate_connectors::DirectoryContact;
    use deskgate_core::{Authenticator, AuthenticatorKind, SubjectStatus, Tier};
    use serde_json::{Map, Value};

    /// What the merge changed, as the audit entry's `changes` holds it.
    fn changes(merged: &Merged) -> Map<String, Value> {
        serde_json::to_value(&merged.changes)
            .unwrap()
            .as_object()
            .unwrap()
            .clone()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn stored() -> Subject {
        let long_ago = now() - Duration::days(700);
        Subject {
            id: "u-dave".into(),
            display_name: "Dave W".into(),
            tier: Tier::Standard,
            status: SubjectStatus::Locked,
            manager: Some("u-bob".into()),
            owners: vec!["u-x".into()],
            groups: vec!["sales".into()],
            contacts: vec![
                Contact {
                    kind: ContactKind::Email,
                    value: "dave@example.org".into(),
                    verified_at: Some(long_ago),
                    changed_at: long_ago,
                },
                Contact {
                    kind: ContactKind::Phone,
                    value: "+1 555 010 0112".into(),
                    verified_at: Some(long_ago),
                    changed_at: long_ago,
                },
            ],
            authenticators: vec![Authenticator {
                id: "pk".into(),
                kind: AuthenticatorKind::Passkey,
                label: "Laptop".into(),
                enrolled_at: long_ago,
            }],
            flagged: true,
            hired_at: Some(long_ago),
            utc_offset_minutes: Some(60),
            probation_until: Some(now() + Duration::hours(3)),
            identity: None,
        }
    }

    fn entry(phone: &str) -> DirectoryEntry {
        DirectoryEntry {
            subject_id: "u-dave".into(),
            backend_id: "uid=u-dave,ou=people,dc=example,dc=org".into(),
            display_name: "Dave Whitfield".into(),
            tier: Tier::Privileged,
            status: SubjectStatus::Active,
            groups: vec!["it-admins".into(), "sales".into()],
            contacts: vec![
                DirectoryContact {
                    kind: ContactKind::Email,
                    value: "Dave@Example.org".into(),
                },
                DirectoryContact {
                    kind: ContactKind::Phone,
                    value: phone.into(),
                },
            ],
            manager: None,
        }
    }

    #[test]
    fn the_directory_decides_tier_status_name_and_groups() {
        let mut unflagged = stored();
        unflagged.flagged = false;
        let merged = merge(Some(&unflagged), &entry("+15550100112"), now());
        let s = &merged.subject;
        assert_eq!(s.tier, Tier::Privileged);
        assert_eq!(s.status, SubjectStatus::Active);
        assert_eq!(s.display_name, "Dave Whitfield");
        assert_eq!(s.groups, ["it-admins", "sales"]);
        for field in ["tier", "status", "display_name", "groups"] {
            assert!(changes(&merged).contains_key(field), "{field}");
        }
        assert!(!merged.created);
    }

    #[test]
    fn deskgate_only_data_stays() {
        let merged = merge(Some(&stored()), &entry("+1 555 010 0112"), now());
        let (s, before) = (&merged.subject, stored());
        assert_eq!(s.authenticators, before.authenticators);
        assert_eq!(s.probation_until, before.probation_until);
        assert!(s.flagged);
        assert_eq!(s.owners, before.owners);
        assert_eq!(s.hired_at, before.hired_at);
        assert_eq!(
            s.manager.as_deref(),
            Some("u-bob"),
            "no manager in the entry"
        );
    }

    #[test]
    fn the_same_contact_written_differently_keeps_its_history() {
        let merged = merge(Some(&stored()), &entry("+15550100112"), now());
        assert!(merged.changed_contacts.is_empty());
        assert!(!changes(&merged).contains_key("contacts"));
        let phone = merged.subject.contact(ContactKind::Phone).unwrap();
        assert_eq!(phone.changed_at, now() - Duration::days(700));
        assert!(phone.verified_at.is_some());
    }

    #[test]
    fn a_contact_changed_in_the_directory_is_new_now() {
        let merged = merge(Some(&stored()), &entry("+1 555 999 0000"), now());
        assert_eq!(merged.changed_contacts, [ContactKind::Phone]);
        let phone = merged.subject.contact(ContactKind::Phone).unwrap();
        assert_eq!(phone.value, "+1 555 999 0000");
        assert_eq!(phone.changed_at, now());
        assert_eq!(phone.verified_at, Some(now()));
        // Inside the freshness window it cannot carry a code; after it, it can.
        let window = Duration::days(14);
        assert!(phone.changed_within(window, now() + Duration::days(13)));
        assert!(!phone.changed_within(window, now() + Duration::days(15)));
        let audit = changes(&merged)["contacts"].to_string();
        assert!(
            !audit.contains("999 0000") && !audit.contains("010 0112"),
            "{audit}"
        );
        // The email was untouched.
        let email = merged.subject.contact(ContactKind::Email).unwrap();
        assert!(email.verified_at.is_some());
    }

    #[test]
    fn a_subject_first_seen_is_created_with_every_contact_new() {
        let merged = merge(None, &entry("+1 555 010 0112"), now());
        assert!(merged.created && merged.changed());
        assert!(merged.subject.authenticators.is_empty());
        assert!(
            merged
                .subject
                .contacts
                .iter()
                .all(|c| c.changed_at == now())
        );
    }

    #[test]
    fn a_lock_deskgate_placed_after_this_was_not_me_survives_an_active_directory_entry() {
        let mut flagged = stored();
        flagged.flagged = true;
        flagged.status = SubjectStatus::Locked;
        let merged = merge(Some(&flagged), &entry("+1 555 010 0112"), now());
        assert_eq!(merged.subject.status, SubjectStatus::Locked);
        assert!(!changes(&merged).contains_key("status"));
        // A directory that disables the account still wins: it is stricter.
        let mut disabled = entry("+1 555 010 0112");
        disabled.status = SubjectStatus::Disabled;
        let merged = merge(Some(&flagged), &disabled, now());
        assert_eq!(merged.subject.status, SubjectStatus::Disabled);
        // Without Deskgate's flag, the directory's word on status is final.
        let mut unflagged = flagged.clone();
        unflagged.flagged = false;
        let merged = merge(Some(&unflagged), &entry("+1 555 010 0112"), now());
        assert_eq!(merged.subject.status, SubjectStatus::Active);
    }

    #[test]
    fn an_unchanged_entry_changes_nothing() {
        let first = merge(Some(&stored()), &entry("+1 555 010 0112"), now());
        let again = merge(Some(&first.subject), &entry("+1 555 010 0112"), now());
        assert!(!again.changed(), "{:?}", again.changes);
        assert_eq!(again.subject, first.subject);
    }
}
