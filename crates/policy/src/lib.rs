//! Deskgate policy bundles: the two policy layers of DESIGN.md, loaded from a directory a
//! security team versions and tests like code.
//!
//! - `bundle`: loading and strict validation of a bundle, its digest, the compiled-in default.
//! - `playbook`: tier x action x risk level -> requirements and scripted steps (first layer).
//! - `decide`: one decision: risk + playbook + Cedar (the final gate), with escalation.
//! - `risk`: the risk engine with the bundle's thresholds.
//! - `analyze`: the attack paths of a bundle and its gates (`policy analyze`).
//! - `testing`: the bundle's table-driven cases (`policy test`), `explain` and `diff`.

pub mod analyze;
pub mod bundle;
pub mod decide;
pub mod error;
pub mod playbook;
pub mod risk;
mod slice;
mod source;
pub mod testing;

pub use analyze::{
    Analysis, Capabilities, Capability, Cell, Gate, Gates, PathChange, Violation, path_changes,
};
pub use bundle::{Bundle, PolicyInfo};
pub use decide::{
    ApprovalInput, Decision, DecisionRequest, EvidenceInput, LayerCheck, Outcome, StaffInfo, Stage,
    SubjectInfo,
};
pub use error::{BundleError, DecisionError, Problem, ProblemKind};
pub use playbook::{PlaybookProgress, PlaybookRequirements, Playbooks, ResolvedPlaybook, Step};
pub use risk::{RiskSignals, RiskThresholds, assess};
pub use testing::{CaseChange, CaseResult, TestCase, TestReport, diff, run_cases, run_tests};
