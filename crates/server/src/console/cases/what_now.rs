//! "What now": for every state a case can be in, one panel at the top of the case page with where
//! the case stands, the line to say to the caller, and the one next action, which always works
//! for the person looking. Nothing on the page offers what the state refuses.

use chrono::{DateTime, Utc};
use deskgate_app::labels::{Label, in_sentence};
use deskgate_app::views::{CaseView, VerificationView};
use deskgate_core::{CaseState, Method, Role, VerificationState};

use super::super::at;

/// The one next action on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// A control further down this page: the step's buttons, the code field, the deny form.
    Jump { href: String, label: String },
    /// A form button of its own.
    Post { action: String, label: String },
    /// Another page.
    Link { href: String, label: String },
    /// Someone else acts; the page refreshes itself when they have.
    Wait,
}

impl Next {
    /// `(kind, target, label)` for the template: kind is `jump`, `post`, `link` or `wait`.
    pub(super) fn parts(&self) -> (&'static str, &str, &str) {
        match self {
            Self::Jump { href, label } => ("jump", href, label),
            Self::Post { action, label } => ("post", action, label),
            Self::Link { href, label } => ("link", href, label),
            Self::Wait => ("wait", "", ""),
        }
    }
}

/// The panel's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WhatNow {
    /// Where the case stands, in one line.
    pub headline: String,
    /// What to say to the caller now.
    pub say: Option<String>,
    /// What to do, in one instruction.
    pub todo: String,
    pub next: Next,
    /// `go` (you act), `wait` (someone else acts), `stop` (ended badly), `done`.
    pub tone: &'static str,
}

/// Where the case stands for the viewer.
pub(super) struct Seen<'a> {
    pub case: &'a CaseView,
    pub viewer: Role,
    /// The end of a cooling-off delay, when the grant has one.
    pub not_before: Option<DateTime<Utc>>,
    /// The first playbook step with buttons, as numbered on the page.
    pub first_step_with_methods: Option<u32>,
    /// The viewer may give an approval the case still needs.
    pub can_approve: bool,
    pub now: DateTime<Utc>,
}

fn panel(
    tone: &'static str,
    headline: String,
    say: Option<&str>,
    todo: String,
    next: Next,
) -> WhatNow {
    WhatNow {
        headline,
        say: say.map(str::to_owned),
        todo,
        next,
        tone,
    }
}

fn to_queue() -> Next {
    Next::Link {
        href: "/console".to_owned(),
        label: "Back to my queue".to_owned(),
    }
}

fn new_case_for(case: &CaseView) -> Next {
    Next::Link {
        href: format!("/console/cases/new?q={}", case.subject.id),
        label: format!("Open a new case for {}", case.subject.name),
    }
}

impl Seen<'_> {
    pub(super) fn what_now(&self) -> WhatNow {
        let case = self.case;
        match case.state {
            CaseState::Executed => panel(
                "done",
                format!("Done: the {} was carried out", in_sentence(&case.action)),
                Some("It is done. The next steps went to your contacts of record; I cannot see or read them to you."),
                "Nothing more to do on this case.".to_owned(),
                to_queue(),
            ),
            CaseState::Denied => panel(
                "stop",
                "Denied".to_owned(),
                Some("I cannot complete this request. If you need help, contact your manager or IT security through a channel you already know."),
                "Nothing more to do. Do not open a new case for the same caller without a new reason.".to_owned(),
                to_queue(),
            ),
            CaseState::Cancelled | CaseState::Closed | CaseState::Expired => panel(
                "done",
                format!("{}: nothing was changed", case.state.label()),
                None,
                "Nothing more to do on this case.".to_owned(),
                to_queue(),
            ),
            CaseState::Failed => panel(
                "stop",
                "The directory did not confirm the change".to_owned(),
                Some("The change could not be confirmed. We need to verify you again before we try once more."),
                "The grant is spent and nothing is confirmed: a new attempt is a new case with fresh evidence.".to_owned(),
                new_case_for(case),
            ),
            CaseState::Escalated => self.escalated(),
            CaseState::Approved => self.approved(),
            CaseState::Open | CaseState::Verifying => self.verifying(),
        }
    }

    fn escalated(&self) -> WhatNow {
        let case = self.case;
        let since = at(case.updated_at);
        let why = case.outcome_reason.clone().unwrap_or_default();
        let failures = case
            .risk
            .reasons
            .iter()
            .any(|r| r.code == "failed_verifications");
        let say = "A colleague needs to review this before I can continue. We will contact you on your contact of record; please do not call back with new details.";
        if self.viewer == Role::SecurityOfficer {
            return panel(
                "go",
                format!("Escalated to security officers since {since}"),
                None,
                format!("Why: {why}. Take it over to verify further, or deny it below."),
                Next::Post {
                    action: format!("/console/cases/{}/resume", case.id),
                    label: "Take over and resume".to_owned(),
                },
            );
        }
        if failures {
            return panel(
                "stop",
                "Too many failed verifications: a security officer decides".to_owned(),
                Some(say),
                format!("{why}. Propose a denial: deny the case below, with what you heard."),
                Next::Jump {
                    href: "#end-case".to_owned(),
                    label: "Deny the case".to_owned(),
                },
            );
        }
        panel(
            "wait",
            format!("Waiting for a security officer since {since}"),
            Some(say),
            format!("Why: {why}. Nothing to do until an officer takes it over or denies it."),
            Next::Wait,
        )
    }

    fn approved(&self) -> WhatNow {
        let case = self.case;
        let Some(grant) = &case.grant else {
            return panel(
                "wait",
                "Approved".to_owned(),
                None,
                "Waiting for the grant.".to_owned(),
                Next::Wait,
            );
        };
        if grant.consumed_at.is_some() {
            return panel(
                "wait",
                "Deskgate is carrying out the change".to_owned(),
                Some("The change is being made now; you will be told on your contacts of record."),
                "Wait for the directory's answer; this page refreshes by itself.".to_owned(),
                Next::Wait,
            );
        }
        if grant.expires_at <= self.now {
            return panel(
                "stop",
                format!("The grant expired unused at {}: nothing was changed", at(grant.expires_at)),
                Some("This request timed out before it was completed; we need to verify you again."),
                "A grant is used once, within minutes. Start again with a new case and fresh evidence.".to_owned(),
                new_case_for(case),
            );
        }
        if let Some(from) = self.not_before.filter(|from| self.now < *from) {
            let window = (grant.expires_at - from).num_minutes();
            return panel(
                "wait",
                format!("Cooling off: execution opens at {}", at(from)),
                Some(
                    "For your protection the change takes effect after a short delay; you will be notified on your contacts of record.",
                ),
                format!(
                    "Execution is possible from {} until {} ({window} min). This page shows the button when the window opens, and the case moves to the top of your queue.",
                    at(from),
                    at(grant.expires_at)
                ),
                Next::Wait,
            );
        }
        panel(
            "go",
            format!("Approved: execute before {}", at(grant.expires_at)),
            Some("You will receive the next steps on your contact of record."),
            "Press execute: Deskgate makes the change itself and sends the result to the contacts of record.".to_owned(),
            Next::Post {
                action: format!("/console/cases/{}/execute", case.id),
                label: "Execute the recovery".to_owned(),
            },
        )
    }

    fn verifying(&self) -> WhatNow {
        let case = self.case;
        // A code the caller reads out comes first: the agent acts on it, the rest is waiting.
        let pending = |answered: bool| {
            case.verifications.iter().rev().find(|v| {
                v.state == VerificationState::Pending
                    && v.expires_at > self.now
                    && v.method.is_answered() == answered
            })
        };
        if let Some(v) = pending(true).or_else(|| pending(false)) {
            return self.pending(v);
        }
        if let Some(approval) = self.approval() {
            return approval;
        }
        let last_failed = case.verifications.last().filter(|v| {
            matches!(
                v.state,
                VerificationState::Locked
                    | VerificationState::Rejected
                    | VerificationState::Expired
            )
        });
        let headline = match last_failed {
            Some(v) => format!(
                "{} {}: use another way",
                v.method.label(),
                match v.state {
                    VerificationState::Locked => "used up its tries",
                    VerificationState::Rejected => "failed",
                    _ => "expired",
                }
            ),
            None if case.verifications.is_empty() => "Verify the caller".to_owned(),
            None => "Verify with one more independent way".to_owned(),
        };
        match self.first_step_with_methods {
            Some(step) => panel(
                "go",
                headline,
                None,
                format!("Follow step {step}: choose one of its ways and read its script to the caller."),
                Next::Jump {
                    href: format!("#step-{step}"),
                    label: format!("Go to step {step}"),
                },
            ),
            None => panel(
                "stop",
                headline,
                Some("I cannot verify this request with what we have on record."),
                "No way left that this subject can use: deny the case, or a security officer can open break-glass.".to_owned(),
                Next::Jump {
                    href: "#end-case".to_owned(),
                    label: "Deny the case".to_owned(),
                },
            ),
        }
    }

    /// The approver's own decision, or the wait for an approver once the evidence is complete.
    fn approval(&self) -> Option<WhatNow> {
        let case = self.case;
        if self.can_approve {
            return Some(panel(
                "go",
                "Your approval is needed".to_owned(),
                None,
                "Check the evidence below, then approve or reject with your reason: your decision is bound to what the case holds now.".to_owned(),
                Next::Jump {
                    href: "#approve".to_owned(),
                    label: "Approve or reject".to_owned(),
                },
            ));
        }
        if !case.progress.approvals_missing.is_empty()
            && case.progress.classes_short == 0
            && case.progress.missing_any_of.is_empty()
        {
            let roles: Vec<String> = case
                .progress
                .approvals_missing
                .iter()
                .map(in_sentence)
                .collect();
            return Some(panel(
                "wait",
                format!("Waiting for approval by a {} since {}", roles.join(" and a "), at(case.updated_at)),
                Some("A second person must approve this; it usually takes a few minutes. Please stay on the line or we will call you back on your number of record."),
                "The evidence is complete. The approver sees this case in their approvals; this page refreshes when they decide.".to_owned(),
                Next::Wait,
            ));
        }
        None
    }

    fn pending(&self, v: &VerificationView) -> WhatNow {
        let to = v.destination.clone().unwrap_or_default();
        let until = at(v.expires_at);
        let wait = |headline: String, say: &str, todo: String| {
            panel("wait", headline, Some(say), todo, Next::Wait)
        };
        match v.method {
            m if m.is_answered() => {
                let say = match m {
                    Method::RecoveryCode => "Please read me one of the recovery codes you saved when you enrolled.".to_owned(),
                    Method::Totp => "Please open your authenticator app and read me the six-digit code for this account.".to_owned(),
                    _ => format!("Please read me the code we just sent to {to}."),
                };
                WhatNow {
                    headline: format!("Waiting for the code: {}", m.label()),
                    say: Some(say),
                    todo: format!(
                        "Type what the caller reads out; {} tries left, valid until {until}.",
                        v.attempts_left
                    ),
                    next: Next::Jump {
                        href: format!("#code-{}", v.id),
                        label: "Type the code".to_owned(),
                    },
                    tone: "go",
                }
            }
            Method::Push => wait(
                "Waiting for the caller's phone".to_owned(),
                "Please open the prompt on your enrolled phone, approve it, and pick the number I read to you.",
                format!(
                    "The push went to {to}. Valid until {until}; this page refreshes when it is answered."
                ),
            ),
            Method::Callback => wait(
                "Deskgate is calling the phone of record".to_owned(),
                "We are calling you now on the number we have on record. Key in the code I read to you.",
                format!(
                    "Read the code shown below, once. Valid until {until}; this page refreshes when the code is keyed in."
                ),
            ),
            Method::ManagerAttestation => wait(
                format!("Waiting for the manager since {}", at(v.started_at)),
                "We are waiting for your manager to confirm; I cannot speed this up.",
                format!(
                    "The manager has a link valid until {until}. Never accept a confirmation by phone or chat."
                ),
            ),
            Method::Passkey => wait(
                "Waiting for the caller's passkey".to_owned(),
                "Please open the link we sent to your email of record and confirm with your passkey.",
                format!("Valid until {until}; this page refreshes when it is done."),
            ),
            Method::IdProofing => wait(
                "Waiting for the photo ID check".to_owned(),
                "Please open the link we sent and follow the photo ID check; it takes a few minutes.",
                format!("The vendor reports back; valid until {until}."),
            ),
            _ => wait(
                format!("Waiting: {}", v.method.label()),
                "Please complete the check we sent you.",
                format!("Valid until {until}."),
            ),
        }
    }
}
