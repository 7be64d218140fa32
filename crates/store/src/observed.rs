//! What a commit tells the operators, as Prometheus series (through the `metrics` facade; the
//! server installs the recorder). Counted here, after the commit, because only then did the
//! event happen: a change rolled back opened no case and passed no verification.
//!
//! Labels come from closed vocabularies only (event names, actions, tiers, methods, outcomes):
//! never a case id, a subject id or anything a caller typed, so no series is per person and a
//! value outside the vocabulary is counted as `other`.

use std::time::Instant;

use deskgate_audit::AuditEvent;
use deskgate_core::{Action, ApiId, Case, Method, Tier};
use metrics::{counter, histogram};

use crate::{CaseWrite, Change, StoreError};

/// One series a committed audit entry moves, besides `deskgate_audit_events_total`.
enum Series {
    CaseOpened(&'static str, &'static str, &'static str),
    CaseEnded(&'static str, &'static str, &'static str),
    Verification(&'static str, &'static str),
    NotMe,
}

/// What a change will count once committed, read before the change is handed to its backend.
pub(crate) struct Observed {
    started: Instant,
    appends: bool,
    events: Vec<(&'static str, Option<Series>)>,
}

pub(crate) fn observe(change: &Change) -> Observed {
    let case = change.case.as_ref().map(|w| match w {
        CaseWrite::Insert(case) | CaseWrite::Update { case, .. } => case,
    });
    Observed {
        started: Instant::now(),
        appends: !change.audit.is_empty(),
        events: change
            .audit
            .iter()
            .map(|e| (e.event.name(), series(&e.event, case)))
            .collect(),
    }
}

impl Observed {
    pub(crate) fn record<T>(self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) if self.appends => histogram!("deskgate_audit_append_duration_seconds")
                .record(self.started.elapsed().as_secs_f64()),
            Ok(_) => {}
            Err(StoreError::AuditUnavailable(_)) => {
                counter!("deskgate_audit_append_failures_total").increment(1);
            }
            Err(StoreError::LimitReached { .. }) => {
                counter!("deskgate_rate_limit_refusals_total", "limit" => "sends_per_destination")
                    .increment(1);
            }
            Err(_) => {}
        }
        if result.is_err() {
            return;
        }
        for (event, series) in self.events {
            counter!("deskgate_audit_events_total", "event" => event).increment(1);
            match series {
                Some(Series::CaseOpened(action, tier, outcome)) => counter!(
                    "deskgate_cases_opened_total",
                    "action" => action, "tier" => tier, "outcome" => outcome
                )
                .increment(1),
                Some(Series::CaseEnded(action, tier, outcome)) => counter!(
                    "deskgate_cases_ended_total",
                    "action" => action, "tier" => tier, "outcome" => outcome
                )
                .increment(1),
                Some(Series::Verification(method, outcome)) => counter!(
                    "deskgate_verifications_total", "method" => method, "outcome" => outcome
                )
                .increment(1),
                Some(Series::NotMe) => counter!("deskgate_not_me_reports_total").increment(1),
                None => {}
            }
        }
    }
}

fn series(event: &AuditEvent, case: Option<&Case>) -> Option<Series> {
    let ended = |outcome| {
        let (action, tier) = case.map_or(("other", "other"), |c| {
            (c.action.api_id(), c.subject_tier.api_id())
        });
        Some(Series::CaseEnded(action, tier, outcome))
    };
    let verification = |outcome| {
        let details = event.details();
        let method = details["method"].as_str().and_then(Method::from_api_id);
        Some(Series::Verification(
            method.map_or("other", |m| m.api_id()),
            outcome,
        ))
    };
    match event {
        AuditEvent::CaseOpened(d) => Some(opened(&d.action, &d.tier, "opened")),
        AuditEvent::CaseRefused(d) => Some(opened(&d.action, &d.tier, "refused")),
        AuditEvent::CaseDenied(_) => ended("denied"),
        AuditEvent::CaseCancelled(_) => ended("cancelled"),
        AuditEvent::ExecutionPerformed(_) => ended("executed"),
        AuditEvent::ExecutionFailed(_) => ended("failed"),
        AuditEvent::ExecutionAbandoned(_) => ended("abandoned"),
        AuditEvent::VerificationPassed(_) => verification("passed"),
        AuditEvent::VerificationFailed(_) => verification("failed"),
        AuditEvent::VerificationLocked(_) => verification("locked"),
        AuditEvent::VerificationExpired(_) => verification("expired"),
        AuditEvent::SecurityNotMeReported(_) => Some(Series::NotMe),
        _ => None,
    }
}

fn opened(action: &str, tier: &str, outcome: &'static str) -> Series {
    Series::CaseOpened(
        Action::from_api_id(action).map_or("other", |a| a.api_id()),
        Tier::from_api_id(tier).map_or("other", |t| t.api_id()),
        outcome,
    )
}
