//! Details of case events: opening, refusal, approvals, break-glass, escalation and the end of a
//! case.

use serde::{Deserialize, Serialize};

/// The requirements a case must meet, as `deskgate_core::Requirements` serializes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Minimum number of distinct counted independence classes.
    pub min_classes: u32,
    /// Each inner list (a set, sorted) must be hit by at least one counted class.
    pub required_any_of: Vec<Vec<String>>,
    /// Evidence through a contact changed less than this many days ago does not count.
    pub contact_freshness_days: i64,
    /// Lifetime of the grant minted when the case is approved.
    pub grant_minutes: i64,
    /// Staff approvals needed besides the evidence (approver roles, a role twice needs two).
    pub approvals: Vec<String>,
    /// Delay between the requirements being met and the grant becoming usable.
    pub cooling_off_minutes: i64,
    /// Lifetime of a temporary access pass issued by the case.
    pub tap_minutes: i64,
    /// How long the subject stays on probation after execution.
    pub probation_hours: i64,
}

/// `case.opened` (`service/cases.rs`, `open_case`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseOpened {
    pub subject_id: String,
    /// The subject's tier (`standard`, `privileged`, `service`...).
    pub tier: String,
    /// The recovery action asked for (`password_reset`, `mfa_reset`...).
    pub action: String,
    /// How the request came in (`phone`, `ticket`...).
    pub channel: String,
    /// The help-desk ticket, `null` when none was given.
    #[serde(deserialize_with = "super::nullable")]
    pub ticket: Option<String>,
    /// The risk level (`low`, `elevated`, `high`, `critical`).
    pub risk: String,
    /// Codes of the reasons that raised the risk.
    pub risk_reasons: Vec<String>,
    pub requirements: Requirements,
    /// The case state right after opening (`open`, or `escalated` by the bundle).
    pub state: String,
    /// The policies that decided.
    pub policy_ids: Vec<String>,
    /// The playbook rows applied (`default` and the matching rows' names).
    pub playbook_rows: Vec<String>,
}

/// `case.refused` (`service/cases.rs`, `open_case`): the bundle or the core refused to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRefused {
    pub subject_id: String,
    pub action: String,
    pub tier: String,
    /// Why: the core's refusal first, then the bundle's reasons when the bundle denied.
    pub reasons: Vec<String>,
    /// The deciding policies when the bundle denied, else empty.
    pub policy_ids: Vec<String>,
}

/// `case.cancelled` (`service/cases.rs`, `end_case`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseCancelled {
    /// The staff member's stated reason.
    pub reason: String,
}

/// `case.denied`: by staff (`service/cases.rs`, `end_case`), by a rejecting approval or
/// attestation (`service/approvals.rs`, `service/attestation.rs`), or on the security team's
/// behalf after "this was not me" (`service/links.rs`, `deny_for_security`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDenied {
    /// The reason. The approval and attestation sites write the case's outcome reason, an
    /// `Option` written as `null` when absent; the other sites always write a string.
    #[serde(deserialize_with = "super::nullable")]
    pub reason: Option<String>,
}

/// `case.resumed` (`service/cases.rs`, `resume`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResumed {
    /// The staff id of the agent who had the case.
    pub previous_agent: String,
    /// The case's outcome reason before it was resumed (why it was escalated), or `null`.
    #[serde(deserialize_with = "super::nullable")]
    pub reason: Option<String>,
}

/// `case.escalated_after_failures` (`service/failures.rs`): wrong answers and rejected checks on
/// the case reached a multiple of the bundle's limit; the risk went up one level and a security
/// officer now decides, with a denial proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalatedAfterFailures {
    /// Wrong answers and rejected checks on the case so far, every method together.
    pub failures: u64,
    /// The bundle's `failed_verifications.escalate_after`.
    pub limit: u64,
    pub risk_before: String,
    pub risk_after: String,
    /// Methods whose tries are used up on the case.
    pub exhausted_methods: Vec<String>,
    /// How many security contacts were alerted.
    pub alerted: u64,
}

/// A refusal or escalation by the bundle: `case.escalated` and `execution.refused`
/// (`service/execution.rs`, `execute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVerdict {
    pub reasons: Vec<String>,
    pub policy_ids: Vec<String>,
}

/// `case.approved` (`service.rs`, `approval_entries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseApproved {
    /// The independence classes counted, sorted.
    pub counted_classes: Vec<String>,
}

/// `approval.recorded` (`service/approvals.rs`, `approve` and `break_glass`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRecorded {
    /// The approver role (`supervisor`, `security_officer`, `owner`).
    pub role: String,
    /// `confirm` or `reject`.
    pub decision: String,
    pub reason: String,
    /// The case's approval digest the approval is bound to.
    pub case_digest: String,
}

/// `approval.refused` (`service/approvals.rs`, `refuse_approval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRefused {
    /// The role the approval was attempted in.
    pub role: String,
    /// Why it was refused (the core's error, or the bundle's reasons joined with `; `).
    pub reason: String,
    /// The deciding policies when the bundle refused, else empty.
    pub policy_ids: Vec<String>,
}

/// `break_glass.opened` (`service/approvals.rs`, `break_glass`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassOpened {
    pub reason: String,
    /// The break-glass requirements now in force.
    pub requirements: Requirements,
    /// The playbook rows of the break-glass resolution.
    pub playbook_rows: Vec<String>,
}
