//! The scripted steps an agent follows for a case: what to say, what to collect, what is left.
//! The words are fixed so that a caller's pressure cannot talk the agent into a shortcut.

use serde::{Deserialize, Serialize};

use crate::case::{Case, CaseState};
use crate::evidence::{IndependenceClass, Method, VerificationState};
use crate::labels::in_sentence;
use crate::requirements::Progress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Collect evidence with one of `methods`.
    Verify,
    /// Wait for a person who was sent a link.
    AwaitAttestation,
    /// Obtain a staff member's approval in Deskgate.
    Approval,
    /// Press execute; Deskgate performs the action.
    Execute,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookStep {
    pub number: u32,
    pub kind: StepKind,
    pub title: String,
    /// The exact words to read to the caller, or the instruction to the agent.
    pub script: String,
    /// Methods that complete this step, offered in this order.
    pub methods: Vec<Method>,
}

fn method_script(m: Method) -> &'static str {
    match m {
        Method::SmsCode => {
            "Say: \"I am sending a one-time code by text message to the mobile number we have on \
             record. Please read it back to me.\" Never send it to a number the caller gives you."
        }
        Method::VoiceCode => {
            "Say: \"You will receive an automated call on the number we have on record with a \
             one-time code. Please read it back to me.\""
        }
        Method::EmailCode => {
            "Say: \"I am sending a one-time code to the email address we have on record. Please \
             read it back to me.\" Never send it to an address the caller gives you."
        }
        Method::ManagerAttestation => {
            "Say: \"I am asking your manager to confirm this request through a link sent to them. \
             I cannot continue until they do.\" Do not accept a manager's confirmation by phone."
        }
        Method::Callback => {
            "Hang up and call the number of record shown on this case, never a number the caller \
             gives you. Record what the person confirmed."
        }
        Method::Passkey | Method::Push | Method::Totp => {
            "Ask the caller to confirm with the authenticator already enrolled on their account."
        }
        Method::IdProofing => {
            "Send the identity-verification link; the vendor checks a government ID and a selfie."
        }
        Method::RecoveryCode => "Ask the caller to read one of their saved recovery codes.",
        Method::Knowledge => {
            "Knowledge questions may be recorded but never count toward verification."
        }
    }
}

fn class_phrase(classes: &[IndependenceClass]) -> String {
    classes
        .iter()
        .map(in_sentence)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The steps still to do, in order. `offered` lists the methods this deployment can run for this
/// subject (a phone of record exists, a manager exists, ...), in the order they are preferred.
pub fn remaining_steps(
    case: &Case,
    offered: &[Method],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<PlaybookStep> {
    let mut steps = Steps::default();
    if !case.state.is_live() {
        return steps.list;
    }
    if case.state == CaseState::Approved {
        steps.execution(case, now);
        return steps.list;
    }
    let progress = case.progress(now);
    steps.required_evidence(case, offered, &progress);
    steps.further_evidence(offered, &progress);
    steps.approvals(&progress);
    steps.list
}

/// The steps so far, numbered from 1 in the order they are added.
#[derive(Default)]
struct Steps {
    list: Vec<PlaybookStep>,
    number: u32,
}

impl Steps {
    fn push(&mut self, kind: StepKind, title: String, script: String, methods: Vec<Method>) {
        self.number += 1;
        self.list.push(PlaybookStep {
            number: self.number,
            kind,
            title,
            script,
            methods,
        });
    }

    /// An approved case: wait out the cooling-off delay, or execute.
    fn execution(&mut self, case: &Case, now: chrono::DateTime<chrono::Utc>) {
        if let Some(from) = case.grant.as_ref().and_then(|g| g.not_before)
            && now < from
        {
            self.push(
                StepKind::Execute,
                "Wait for the cooling-off delay to end".to_owned(),
                format!(
                    "Execution is possible from {}. Say: \"For your protection the change takes \
                     effect after a short delay; you will be notified on your contacts of record.\"",
                    from.format("%H:%M UTC")
                ),
                Vec::new(),
            );
            return;
        }
        self.push(
            StepKind::Execute,
            "Execute the recovery".to_owned(),
            format!(
                "Requirements are met. Press execute: Deskgate performs the {} itself and sends \
                 the result to the subject's contacts of record. You will not see a password or \
                 pass. Say: \"You will receive the next steps on your contact of record.\"",
                in_sentence(&case.action)
            ),
            Vec::new(),
        );
    }

    /// One step per required class set not yet hit: verify through an offered method of it, or
    /// wait for a manager's attestation already sent.
    fn required_evidence(&mut self, case: &Case, offered: &[Method], progress: &Progress) {
        let pending_attestation = case.verifications.iter().any(|v| {
            v.method == Method::ManagerAttestation && v.state == VerificationState::Pending
        });
        for set in &progress.missing_any_of {
            let classes: Vec<IndependenceClass> = set.iter().copied().collect();
            let methods: Vec<Method> = offered
                .iter()
                .copied()
                .filter(|m| set.contains(&m.class()))
                .collect();
            if classes == [IndependenceClass::Manager] && pending_attestation {
                self.push(
                    StepKind::AwaitAttestation,
                    "Wait for the manager's confirmation".to_owned(),
                    "The manager has been sent a link. Say: \"We are waiting for your manager to \
                     confirm; I cannot speed this up.\" Do not accept a confirmation by phone or chat."
                        .to_owned(),
                    Vec::new(),
                );
                continue;
            }
            let script = methods
                .first()
                .map(|m| method_script(*m).to_owned())
                .unwrap_or_else(|| {
                    "No method of this kind is available for this subject: deny the case or \
                     escalate it to a security officer."
                        .to_owned()
                });
            self.push(
                StepKind::Verify,
                format!("Required: verify through {}", class_phrase(&classes)),
                script,
                methods,
            );
        }
    }

    /// Distinct classes still short after the required ones are covered.
    fn further_evidence(&mut self, offered: &[Method], progress: &Progress) {
        let counted = &progress.counted_classes;
        let required_left = u32::try_from(progress.missing_any_of.len()).unwrap_or(u32::MAX);
        let extra = progress.classes_short.saturating_sub(required_left);
        if extra == 0 {
            return;
        }
        let methods: Vec<Method> = offered
            .iter()
            .copied()
            .filter(|m| m.class().counts() && !counted.contains(&m.class()))
            .filter(|m| {
                !progress
                    .missing_any_of
                    .iter()
                    .any(|s| s.contains(&m.class()))
            })
            .collect();
        let script = methods
            .first()
            .map(|m| method_script(*m).to_owned())
            .unwrap_or_else(|| {
                "No further independent method is available: deny or escalate.".to_owned()
            });
        self.push(
            StepKind::Verify,
            format!(
                "Verify through {extra} more independent method(s), each of a kind not used yet"
            ),
            script,
            methods,
        );
    }

    /// One step per staff approval not yet given.
    fn approvals(&mut self, progress: &Progress) {
        for role in &progress.approvals_missing {
            self.push(
                StepKind::Approval,
                format!("Approval by a {role}"),
                format!(
                    "Request the {role}'s approval in Deskgate. Say: \"This change needs a second \
                     person's sign-off; I cannot speed this up.\""
                ),
                Vec::new(),
            );
        }
    }
}
