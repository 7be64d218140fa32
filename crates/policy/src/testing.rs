//! `policy test`, `explain` and `diff`: the bundle's table-driven cases (`tests/*.toml`) run
//! against both layers; a case fails when its outcome, risk, remaining steps or deciding
//! policies differ from what it expects, or when the playbook and Cedar disagree on it.

use std::collections::BTreeSet;
use std::fmt;

use deskgate_core::{
    Action, ApiId, ApproverRole, IndependenceClass, Method, RiskLevel, Role, SubjectStatus, Tier,
};
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::decide::{
    ApprovalInput, Decision, DecisionRequest, EvidenceInput, Outcome, StaffInfo, Stage, SubjectInfo,
};
use crate::error::{DecisionError, Problem, ProblemKind};
use crate::playbook::{StepKind, toml_problem};
use crate::risk::RiskSignals;
use crate::source::line_of;

const PRINCIPAL: &str = "staff-principal";
const OTHER_AGENT: &str = "staff-agent";
const SUBJECT: &str = "subject-1";
const PRINCIPAL_SUBJECT: &str = "subject-principal";
const PRINCIPAL_MANAGER: &str = "subject-principal-manager";

/// How the principal of a test case relates to the subject and the case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Relation {
    #[default]
    None,
    /// The principal is the subject.
    #[serde(rename = "self")]
    Itself,
    /// The subject is the principal's manager.
    OwnManager,
    /// At stage approve: the approver is the agent who opened the case.
    OpenedCase,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum EvidenceSpec {
    Name(String),
    Detail {
        method: String,
        #[serde(default)]
        contact_age_days: Option<u32>,
        #[serde(default)]
        caller_supplied: bool,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ApprovalSpec {
    Role(ApproverRole),
    Detail {
        role: ApproverRole,
        approver: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    outcome: Outcome,
    risk: Option<RiskLevel>,
    remaining: Option<Vec<String>>,
    policies: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    tier: Tier,
    #[serde(default = "active")]
    status: SubjectStatus,
    action: Action,
    #[serde(default)]
    stage: Stage,
    #[serde(default = "agent")]
    role: Role,
    #[serde(default)]
    relation: Relation,
    #[serde(default)]
    on_probation: bool,
    #[serde(default)]
    break_glass: bool,
    #[serde(default)]
    requester_is_owner: bool,
    /// How the request came in; a help-desk call when omitted.
    #[serde(default)]
    channel: deskgate_core::Channel,
    #[serde(default)]
    evidence: Vec<EvidenceSpec>,
    #[serde(default)]
    approvals: Vec<ApprovalSpec>,
    #[serde(default)]
    waited_minutes: u32,
    #[serde(default)]
    signals: RiskSignals,
    expect: ExpectFile,
}

fn active() -> SubjectStatus {
    SubjectStatus::Active
}

fn agent() -> Role {
    Role::Agent
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    case: Vec<toml::Spanned<CaseFile>>,
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub outcome: Outcome,
    pub risk: Option<RiskLevel>,
    /// Codes of the steps still required before execution (`execute` itself excluded).
    pub remaining: Option<BTreeSet<String>>,
    /// Policy ids that must be among the deciding ones.
    pub policies: Vec<String>,
}

/// One table-driven case from `tests/*.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestCase {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub request: DecisionRequest,
    pub expect: Expectation,
}

fn evidence_class(name: &str) -> Option<IndependenceClass> {
    Method::from_api_id(name)
        .map(Method::class)
        .or_else(|| IndependenceClass::from_api_id(name))
}

fn build_case(file: &str, line: usize, c: CaseFile) -> Result<TestCase, Problem> {
    let evidence = case_evidence(file, line, &c)?;
    let approvals = case_approvals(&c);
    let request = DecisionRequest {
        stage: c.stage,
        principal: case_principal(&c),
        case_agent_id: case_agent(&c).to_owned(),
        subject: case_subject(&c),
        action: c.action,
        signals: c.signals,
        evidence,
        approvals,
        waited_minutes: c.waited_minutes,
        break_glass: c.break_glass,
        requester_is_owner: c.requester_is_owner,
        channel: c.channel,
    };
    Ok(TestCase {
        name: c.name,
        file: file.to_owned(),
        line,
        request,
        expect: Expectation {
            outcome: c.expect.outcome,
            risk: c.expect.risk,
            remaining: c.expect.remaining.map(|r| r.into_iter().collect()),
            policies: c.expect.policies.unwrap_or_default(),
        },
    })
}

/// The case's evidence; a name that is neither a method nor a class fails the case.
fn case_evidence(file: &str, line: usize, c: &CaseFile) -> Result<Vec<EvidenceInput>, Problem> {
    let mut evidence = Vec::new();
    for spec in &c.evidence {
        let (name, contact_age_days, caller_supplied) = match spec {
            EvidenceSpec::Name(n) => (n.as_str(), None, false),
            EvidenceSpec::Detail {
                method,
                contact_age_days,
                caller_supplied,
            } => (method.as_str(), *contact_age_days, *caller_supplied),
        };
        let class = evidence_class(name).ok_or_else(|| Problem {
            kind: ProblemKind::Toml,
            file: file.to_owned(),
            line: Some(line),
            message: format!(
                "case {:?}: {name:?} is neither a verification method nor an independence class",
                c.name
            ),
        })?;
        evidence.push(EvidenceInput {
            class,
            contact_age_days,
            caller_supplied,
        });
    }
    Ok(evidence)
}

/// The case's approvals: a bare role gets its own approver, `approver = "agent"` names the
/// case's agent.
fn case_approvals(c: &CaseFile) -> Vec<ApprovalInput> {
    c.approvals
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            ApprovalSpec::Role(role) => ApprovalInput {
                approver_id: format!("approver-{}", i + 1),
                role: *role,
            },
            ApprovalSpec::Detail { role, approver } => ApprovalInput {
                approver_id: if approver == "agent" {
                    case_agent(c).to_owned()
                } else {
                    approver.clone()
                },
                role: *role,
            },
        })
        .collect()
}

/// The principal every case shares, but for its role.
fn case_principal(c: &CaseFile) -> StaffInfo {
    StaffInfo {
        id: PRINCIPAL.to_owned(),
        role: c.role,
        team: "service-desk".to_owned(),
        region: "emea".to_owned(),
        shift: "day".to_owned(),
        subject_id: Some(PRINCIPAL_SUBJECT.to_owned()),
        manager_id: Some(PRINCIPAL_MANAGER.to_owned()),
    }
}

/// The case's subject: the principal, the principal's manager, or someone else.
fn case_subject(c: &CaseFile) -> SubjectInfo {
    let subject_id = match c.relation {
        Relation::Itself => PRINCIPAL_SUBJECT,
        Relation::OwnManager => PRINCIPAL_MANAGER,
        Relation::None | Relation::OpenedCase => SUBJECT,
    };
    SubjectInfo {
        id: subject_id.to_owned(),
        tier: c.tier,
        status: c.status,
        groups: vec![format!("tier-{}", c.tier)],
        on_probation: c.on_probation,
    }
}

/// At stage approve the principal is an approver, and the case was opened by someone else
/// unless the case says the approver opened it; otherwise the principal is the case's agent.
fn case_agent(c: &CaseFile) -> &'static str {
    if c.stage == Stage::Approve && c.relation != Relation::OpenedCase {
        OTHER_AGENT
    } else {
        PRINCIPAL
    }
}

/// Parses one `tests/*.toml` file.
pub(crate) fn parse_cases(file: &str, text: &str) -> Result<Vec<TestCase>, Vec<Problem>> {
    let parsed: CasesFile = toml::from_str(text).map_err(|e| vec![toml_problem(file, text, &e)])?;
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    for spanned in parsed.case {
        let line = line_of(text, spanned.span().start);
        match build_case(file, line, spanned.into_inner()) {
            Ok(c) => cases.push(c),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub file: String,
    pub line: usize,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    pub outcome: Option<Outcome>,
    pub policy_ids: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The result of `run_tests`. Its `Display` lists the failures and ends with
/// `N passed, N failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReport {
    pub bundle_digest: String,
    pub results: Vec<CaseResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    pub fn all_passed(&self) -> bool {
        self.failed() == 0
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.results.iter().filter(|r| !r.passed()) {
            writeln!(f, "FAIL {}:{}: {}", r.file, r.line, r.name)?;
            for failure in &r.failures {
                writeln!(f, "    {failure}")?;
            }
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

fn check_case(bundle: &Bundle, case: &TestCase) -> CaseResult {
    let mut failures = Vec::new();
    let decision = match bundle.evaluate(&case.request) {
        Ok(d) => Some(d),
        Err(e) => {
            failures.push(format!("decision failed: {e}"));
            None
        }
    };
    if let Some(d) = &decision {
        let e = &case.expect;
        if d.outcome != e.outcome {
            failures.push(format!(
                "expected {}, got {} ({}; policies: [{}])",
                e.outcome,
                d.outcome,
                d.reasons.join("; "),
                d.policy_ids.join(", ")
            ));
        }
        if let Some(risk) = e.risk
            && risk != d.risk.level
        {
            failures.push(format!("expected risk {risk}, got {}", d.risk.level));
        }
        if let Some(want) = &e.remaining {
            let got = remaining_codes(d);
            if &got != want {
                failures.push(format!(
                    "expected remaining steps [{}], got [{}]",
                    join(want),
                    join(&got)
                ));
            }
        }
        for id in &e.policies {
            if !d.policy_ids.contains(id) {
                failures.push(format!(
                    "expected policy {id:?} among the deciding policies [{}]",
                    d.policy_ids.join(", ")
                ));
            }
        }
    }
    match bundle.layers_agree(&case.request) {
        Ok(check) if !check.agree() => failures.push(format!(
            "the layers disagree at stage execute: the playbook calls the case {} but Cedar's \
             permits {}",
            if check.playbook_complete {
                "complete"
            } else {
                "incomplete"
            },
            if check.cedar_permits {
                "permit it"
            } else {
                "deny it"
            }
        )),
        Ok(_) => {}
        Err(e) => failures.push(format!("layer check failed: {e}")),
    }
    CaseResult {
        name: case.name.clone(),
        file: case.file.clone(),
        line: case.line,
        failures,
        outcome: decision.as_ref().map(|d| d.outcome),
        policy_ids: decision.map(|d| d.policy_ids).unwrap_or_default(),
    }
}

fn remaining_codes(d: &Decision) -> BTreeSet<String> {
    d.progress
        .steps
        .iter()
        .filter(|s| s.kind != StepKind::Execute)
        .map(|s| s.code.clone())
        .collect()
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Runs the bundle's own test cases.
pub fn run_tests(bundle: &Bundle) -> TestReport {
    run_cases(bundle, bundle.test_cases())
}

/// Runs `cases` against `bundle`.
pub fn run_cases(bundle: &Bundle, cases: &[TestCase]) -> TestReport {
    TestReport {
        bundle_digest: bundle.digest().to_owned(),
        results: cases.iter().map(|c| check_case(bundle, c)).collect(),
    }
}

/// A test case whose outcome differs between two bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseChange {
    pub name: String,
    pub old: Outcome,
    pub new: Outcome,
    pub old_policy_ids: Vec<String>,
    pub new_policy_ids: Vec<String>,
}

/// Runs the test cases of both bundles (the new bundle's definition wins for a name both have)
/// through both, and returns every case whose outcome changes. A decision that cannot be
/// computed counts as `deny`, as it would in service.
pub fn diff(old: &Bundle, new: &Bundle) -> Vec<CaseChange> {
    let mut names = BTreeSet::new();
    let cases = new
        .test_cases()
        .iter()
        .chain(old.test_cases())
        .filter(|c| names.insert(c.name.clone()));
    let outcome = |b: &Bundle, c: &TestCase| match b.evaluate(&c.request) {
        Ok(d) => (d.outcome, d.policy_ids),
        Err(_) => (Outcome::Deny, Vec::new()),
    };
    cases
        .filter_map(|c| {
            let (o, old_ids) = outcome(old, c);
            let (n, new_ids) = outcome(new, c);
            (o != n).then(|| CaseChange {
                name: c.name.clone(),
                old: o,
                new: n,
                old_policy_ids: old_ids,
                new_policy_ids: new_ids,
            })
        })
        .collect()
}

impl Bundle {
    /// Explains what an agent faces for `action` on a subject of `tier` and `status` with
    /// `evidence` collected: the risk, the playbook rows and steps, and Cedar's verdict at
    /// stage execute for an agent with no signals or approvals.
    pub fn explain(
        &self,
        tier: Tier,
        status: SubjectStatus,
        action: Action,
        evidence: &[IndependenceClass],
    ) -> Result<String, DecisionError> {
        let mut req = crate::decide::probe_request(action);
        req.stage = Stage::Execute;
        req.subject.tier = tier;
        req.subject.status = status;
        req.evidence = evidence
            .iter()
            .copied()
            .map(EvidenceInput::from_class)
            .collect();
        self.explain_request(&req)
    }

    /// Explains the decision on a full request.
    pub fn explain_request(&self, req: &DecisionRequest) -> Result<String, DecisionError> {
        use std::fmt::Write as _;
        let d = self.evaluate(req)?;
        let r = &d.playbook.requirements;
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "{} on a {}-tier subject ({}), stage {}",
            req.action,
            req.subject.tier,
            req.subject.status,
            d.stage.api_id()
        );
        let _ = writeln!(out, "bundle {}", d.bundle_digest);
        let _ = writeln!(out, "\nrisk: {}", d.risk.level);
        for reason in &d.risk.reasons {
            let _ = writeln!(out, "  - {}", reason.text);
        }
        let _ = writeln!(out, "\nplaybook (rows: {})", d.playbook.rows.join(" > "));
        let _ = writeln!(out, "  distinct classes: {}", r.min_classes);
        for set in &r.required_any_of {
            let names: Vec<&str> = set.iter().map(ApiId::api_id).collect();
            let _ = writeln!(out, "  one of: {}", names.join(", "));
        }
        if !r.approvals.is_empty() {
            let names: Vec<&str> = r
                .approvals
                .iter()
                .map(|a| crate::playbook::approver_role_id(*a))
                .collect();
            let _ = writeln!(out, "  approvals: {}", names.join(", "));
        }
        let _ = writeln!(
            out,
            "  cooling-off {} min, grant {} min, temporary access pass {} min, probation {} h",
            r.cooling_off_minutes,
            r.grant_minutes,
            r.temporary_access_pass_minutes,
            r.probation_hours
        );
        let counted: Vec<&str> = d.counted_classes.iter().map(ApiId::api_id).collect();
        let _ = writeln!(out, "\nevidence counted: [{}]", counted.join(", "));
        for why in &d.discounted {
            let _ = writeln!(out, "  not counted: {why}");
        }
        let _ = writeln!(out, "\nsteps:");
        let _ = writeln!(out, "  0. {}", render_open(&r.script.open, req.action));
        for (i, step) in d.progress.steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}\n     {}", i + 1, step.title, step.script);
        }
        let _ = writeln!(out, "\ndecision: {}", d.outcome);
        for reason in &d.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
        if !d.policy_ids.is_empty() {
            let _ = writeln!(out, "  policies: {}", d.policy_ids.join(", "));
        }
        Ok(out)
    }
}

fn render_open(script: &str, action: Action) -> String {
    script.replace("{action}", &action.to_string().replace('_', " "))
}
