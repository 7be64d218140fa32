//! Notices: messages that tell a subject (and their manager) what happened to their account,
//! sent to every contact of record so that a redirected contact cannot hide the change.

use chrono::{DateTime, Utc};
use deskgate_core::{Case, Contact, ContactKind, Subject};

use crate::delivery::{Message, Secret};

/// The delivery channel of a contact of record.
pub(crate) fn channel_for(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Phone => "sms",
        ContactKind::Email => "email",
    }
}

/// The same notice, carrying no secret, to every contact of record of `subject`.
pub fn notice_to_every_contact(subject: &Subject, kind: &str, body: &str) -> Vec<Message> {
    subject
        .contacts
        .iter()
        .map(|c| Message {
            to: c.value.clone(),
            channel: channel_for(c.kind).to_owned(),
            kind: kind.to_owned(),
            subject_id: subject.id.clone(),
            case_id: None,
            body: body.to_owned(),
            secret: None,
        })
        .collect()
}

/// The notices of an execution, each with the "this was not me" link: to every contact of
/// record of the subject (as it was before the change, and any contact the change added) and to
/// the manager's email.
pub fn after_execution(
    case: &Case,
    before: &Subject,
    after: &Subject,
    manager: Option<&Subject>,
    not_me_url: &str,
    now: DateTime<Utc>,
) -> Vec<Message> {
    let mut contacts: Vec<&Contact> = before.contacts.iter().collect();
    for c in &after.contacts {
        if !contacts
            .iter()
            .any(|k| k.kind == c.kind && k.value == c.value)
        {
            contacts.push(c);
        }
    }
    let body = format!(
        "{} of the account {} was done by Deskgate at {} (case {}). If this was not you, open \
         {not_me_url} : the account is locked at once and the security team is alerted.",
        crate::labels::Label::label(&case.action),
        before.display_name,
        now.format("%Y-%m-%d %H:%M UTC"),
        case.id
    );
    let mut out: Vec<Message> = contacts
        .into_iter()
        .map(|c| Message {
            to: c.value.clone(),
            channel: channel_for(c.kind).to_owned(),
            kind: "recovery_notice".to_owned(),
            subject_id: before.id.clone(),
            case_id: Some(case.id.clone()),
            body: body.clone(),
            secret: Some(Secret::Link(not_me_url.to_owned())),
        })
        .collect();
    if let Some(m) = manager.and_then(|m| m.contact(ContactKind::Email).map(|c| (m, c))) {
        out.push(Message {
            to: m.1.value.clone(),
            channel: "email".to_owned(),
            kind: "recovery_notice".to_owned(),
            subject_id: m.0.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!("As manager of {}: {body}", before.display_name),
            secret: Some(Secret::Link(not_me_url.to_owned())),
        });
    }
    out
}
