//! Playbooks, the first policy layer: `playbooks.toml` maps tier x action x risk level to the
//! requirements the agent must meet (distinct independence classes, classes that must be among
//! them, approvals, waits, lifetimes) and the script to read at each step. This module parses the
//! rows, resolves the requirements for one case, and lists the steps still to do.

use std::collections::BTreeSet;

use deskgate_core::{
    Action, ApproverRole, Channel, IndependenceClass, Requirements, RiskLevel, Tier,
};
use serde::{Deserialize, Serialize};

use crate::error::{Problem, ProblemKind};
use crate::source::line_of;

/// The words the agent uses at each kind of step. Placeholders: `{action}`, `{classes}`,
/// `{count}`, `{role}`, `{minutes}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripts {
    pub open: String,
    pub verify: String,
    pub verify_more: String,
    pub approval: String,
    pub cooling_off: String,
    pub owner: String,
    pub execute: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptsOverride {
    open: Option<String>,
    verify: Option<String>,
    verify_more: Option<String>,
    approval: Option<String>,
    cooling_off: Option<String>,
    owner: Option<String>,
    execute: Option<String>,
}

/// What one case must meet before execution, as resolved from the playbook rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaybookRequirements {
    /// Minimum number of distinct counted independence classes.
    pub min_classes: u32,
    /// Each inner set must be hit by at least one counted class.
    pub required_any_of: Vec<BTreeSet<IndependenceClass>>,
    /// Approvals needed; a role listed twice needs two different people.
    pub approvals: Vec<ApproverRole>,
    /// Wait between the requirements being met and execution.
    pub cooling_off_minutes: u32,
    pub grant_minutes: u32,
    /// Lifetime of the temporary access pass issued where factors were removed; 0 = none.
    pub temporary_access_pass_minutes: u32,
    /// How long the subject stays on probation after execution.
    pub probation_hours: u32,
    /// Only a registered owner of the subject may be the requester (service accounts).
    pub requester_must_be_owner: bool,
    /// From `risk.toml`: evidence through a contact changed more recently does not count.
    pub contact_freshness_days: u32,
    pub script: Scripts,
}

impl PlaybookRequirements {
    /// The requirements in the core's terms: evidence, approvals, waits and lifetimes.
    pub fn to_core_requirements(&self) -> Requirements {
        Requirements {
            min_classes: self.min_classes,
            required_any_of: self.required_any_of.clone(),
            contact_freshness_days: i64::from(self.contact_freshness_days),
            grant_minutes: i64::from(self.grant_minutes),
            approvals: self.approvals.clone(),
            cooling_off_minutes: i64::from(self.cooling_off_minutes),
            tap_minutes: i64::from(self.temporary_access_pass_minutes),
            probation_hours: i64::from(self.probation_hours),
        }
    }

    /// The steps still to do given what was obtained, in the order the agent should do them.
    /// The last step is `execute` and is present only when nothing else remains.
    pub fn progress(&self, action: Action, obtained: &Obtained<'_>) -> PlaybookProgress {
        let mut steps = Vec::new();
        let s = &self.script;
        if self.requester_must_be_owner && !obtained.requester_is_owner {
            steps.push(Step::new(
                StepKind::Owner,
                "owner".to_owned(),
                "Confirm the requester is a registered owner".to_owned(),
                render(&s.owner, action, &[]),
            ));
        }
        let missing: Vec<&BTreeSet<IndependenceClass>> = self
            .required_any_of
            .iter()
            .filter(|set| set.is_disjoint(obtained.classes))
            .collect();
        for set in &missing {
            let names: Vec<&str> = set.iter().map(|c| api(*c)).collect();
            let classes = names.join(" or ");
            steps.push(Step::new(
                StepKind::Verify,
                format!("verify:{}", names.join("|")),
                format!("Required: verify through {classes}"),
                render(&s.verify, action, &[("{classes}", &classes)]),
            ));
        }
        let have = u32::try_from(obtained.classes.len()).unwrap_or(u32::MAX);
        let missing_required = u32::try_from(missing.len()).unwrap_or(u32::MAX);
        let extra = self
            .min_classes
            .saturating_sub(have)
            .saturating_sub(missing_required);
        if extra > 0 {
            steps.push(Step::new(
                StepKind::Verify,
                format!("verify_more:{extra}"),
                format!("Verify through {extra} more independent method(s)"),
                render(&s.verify_more, action, &[("{count}", &extra.to_string())]),
            ));
        }
        let mut needed: Vec<ApproverRole> = Vec::new();
        for role in &self.approvals {
            if !needed.contains(role) {
                needed.push(*role);
            }
        }
        for role in needed {
            let want = self.approvals.iter().filter(|r| **r == role).count();
            let got = obtained.approvals.iter().filter(|r| **r == role).count();
            for _ in got..want {
                let name = approver_role_id(role);
                steps.push(Step::new(
                    StepKind::Approval,
                    format!("approval:{name}"),
                    format!("Obtain the {} approval", name.replace('_', " ")),
                    render(&s.approval, action, &[("{role}", &name.replace('_', " "))]),
                ));
            }
        }
        if self.cooling_off_minutes > 0 && !obtained.cooling_off_elapsed {
            let minutes = self.cooling_off_minutes.to_string();
            steps.push(Step::new(
                StepKind::CoolingOff,
                "cooling_off".to_owned(),
                format!("Wait the {minutes}-minute cooling-off delay"),
                render(&s.cooling_off, action, &[("{minutes}", &minutes)]),
            ));
        }
        let complete = steps.is_empty();
        if complete {
            steps.push(Step::new(
                StepKind::Execute,
                "execute".to_owned(),
                "Execute the recovery".to_owned(),
                render(&s.execute, action, &[]),
            ));
        }
        PlaybookProgress { complete, steps }
    }
}

/// What the case has obtained so far, already filtered: counted classes only (no knowledge, no
/// stale or caller-supplied contact) and approvals that count (one per person, never the agent's).
#[derive(Debug, Clone, Copy)]
pub struct Obtained<'a> {
    pub classes: &'a BTreeSet<IndependenceClass>,
    pub approvals: &'a [ApproverRole],
    pub cooling_off_elapsed: bool,
    pub requester_is_owner: bool,
}

/// The result of `PlaybookRequirements::progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaybookProgress {
    /// Every requirement is met; the only step left is `execute`.
    pub complete: bool,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepKind {
    Owner,
    Verify,
    Approval,
    CoolingOff,
    Execute,
}

/// One scripted step. `code` is stable and is what bundle test cases name
/// (`verify:government_id|device_of_record`, `verify_more:1`, `approval:supervisor`,
/// `cooling_off`, `owner`, `execute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub kind: StepKind,
    pub code: String,
    pub title: String,
    pub script: String,
}

impl Step {
    fn new(kind: StepKind, code: String, title: String, script: String) -> Self {
        Self {
            kind,
            code,
            title,
            script,
        }
    }
}

fn render(template: &str, action: Action, vars: &[(&str, &str)]) -> String {
    let mut out = template.replace("{action}", &action.to_string().replace('_', " "));
    for (k, v) in vars {
        out = out.replace(k, v);
    }
    out
}

fn api(c: IndependenceClass) -> &'static str {
    deskgate_core::ApiId::api_id(&c)
}

/// The id of an approver role in playbooks and in Cedar's `context.approvals`; the core's serde
/// names, which it does not expose as API ids.
pub fn approver_role_id(role: ApproverRole) -> &'static str {
    match role {
        ApproverRole::Manager => "manager",
        ApproverRole::Owner => "owner",
        ApproverRole::Supervisor => "supervisor",
        ApproverRole::SecurityOfficer => "security_officer",
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementsFile {
    min_classes: u32,
    required_any_of: Vec<BTreeSet<IndependenceClass>>,
    approvals: Vec<ApproverRole>,
    cooling_off_minutes: u32,
    grant_minutes: u32,
    temporary_access_pass_minutes: u32,
    probation_hours: u32,
    requester_must_be_owner: bool,
    script: Scripts,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowFile {
    name: String,
    channels: Option<Vec<Channel>>,
    tiers: Option<Vec<Tier>>,
    actions: Option<Vec<Action>>,
    risk_levels: Option<Vec<RiskLevel>>,
    min_classes: Option<u32>,
    required_any_of: Option<Vec<BTreeSet<IndependenceClass>>>,
    approvals: Option<Vec<ApproverRole>>,
    cooling_off_minutes: Option<u32>,
    grant_minutes: Option<u32>,
    temporary_access_pass_minutes: Option<u32>,
    probation_hours: Option<u32>,
    requester_must_be_owner: Option<bool>,
    script: Option<ScriptsOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybooksFile {
    default: toml::Spanned<RequirementsFile>,
    #[serde(default)]
    row: Vec<toml::Spanned<RowFile>>,
    break_glass: toml::Spanned<RequirementsFile>,
}

/// One override row of `playbooks.toml`.
#[derive(Debug, Clone)]
pub struct PlaybookRow {
    pub name: String,
    /// 1-based line of the row in `playbooks.toml`.
    pub line: usize,
    channels: Option<Vec<Channel>>,
    tiers: Option<Vec<Tier>>,
    actions: Option<Vec<Action>>,
    risk_levels: Option<Vec<RiskLevel>>,
    body: RowFile,
}

impl PlaybookRow {
    fn matches(&self, channel: Channel, tier: Tier, action: Action, risk: RiskLevel) -> bool {
        self.channels.as_ref().is_none_or(|c| c.contains(&channel))
            && self.tiers.as_ref().is_none_or(|t| t.contains(&tier))
            && self.actions.as_ref().is_none_or(|a| a.contains(&action))
            && self.risk_levels.as_ref().is_none_or(|r| r.contains(&risk))
    }

    fn apply(&self, to: &mut RequirementsFile) {
        let b = &self.body;
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &b.$f { to.$f = v.clone(); } )* };
        }
        take!(
            min_classes,
            required_any_of,
            approvals,
            cooling_off_minutes,
            grant_minutes,
            temporary_access_pass_minutes,
            probation_hours,
            requester_must_be_owner
        );
        if let Some(s) = &b.script {
            let t = &mut to.script;
            macro_rules! script {
                ($($f:ident),*) => { $( if let Some(v) = &s.$f { t.$f = v.clone(); } )* };
            }
            script!(
                open,
                verify,
                verify_more,
                approval,
                cooling_off,
                owner,
                execute
            );
        }
    }
}

/// The parsed `playbooks.toml`.
#[derive(Debug, Clone)]
pub struct Playbooks {
    default: RequirementsFile,
    rows: Vec<PlaybookRow>,
    break_glass: RequirementsFile,
    contact_freshness_days: u32,
}

/// The requirements for one case and the rows that produced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedPlaybook {
    /// `default`, `break_glass`, or the names of the rows applied in order.
    pub rows: Vec<String>,
    pub requirements: PlaybookRequirements,
}

const FILE: &str = "playbooks.toml";

impl Playbooks {
    /// Parses and checks `playbooks.toml`; `contact_freshness_days` comes from `risk.toml`.
    pub(crate) fn parse(text: &str, contact_freshness_days: u32) -> Result<Self, Vec<Problem>> {
        let file: PlaybooksFile =
            toml::from_str(text).map_err(|e| vec![toml_problem(FILE, text, &e)])?;
        let mut problems = Vec::new();
        let default_line = line_of(text, file.default.span().start);
        let break_line = line_of(text, file.break_glass.span().start);
        check_requirements(
            &file.default.get_ref().into(),
            default_line,
            "default",
            &mut problems,
        );
        check_requirements(
            &file.break_glass.get_ref().into(),
            break_line,
            "break_glass",
            &mut problems,
        );
        let mut rows = Vec::new();
        let mut names = BTreeSet::new();
        for spanned in file.row {
            let line = line_of(text, spanned.span().start);
            let body = spanned.into_inner();
            if !names.insert(body.name.clone()) {
                problems.push(problem(
                    line,
                    format!("row name {:?} is used twice", body.name),
                ));
            }
            check_requirements(&(&body).into(), line, &body.name, &mut problems);
            rows.push(PlaybookRow {
                name: body.name.clone(),
                line,
                channels: body.channels.clone(),
                tiers: body.tiers.clone(),
                actions: body.actions.clone(),
                risk_levels: body.risk_levels.clone(),
                body,
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            default: file.default.into_inner(),
            rows,
            break_glass: file.break_glass.into_inner(),
            contact_freshness_days,
        })
    }

    /// The requirements for `tier` x `action` x `risk` on a help-desk call, or the break-glass
    /// requirements.
    pub fn resolve(
        &self,
        tier: Tier,
        action: Action,
        risk: RiskLevel,
        break_glass: bool,
    ) -> ResolvedPlaybook {
        self.resolve_for(Channel::Phone, tier, action, risk, break_glass)
    }

    /// The requirements for a request that came in on `channel`: rows naming channels apply
    /// only to those.
    pub fn resolve_for(
        &self,
        channel: Channel,
        tier: Tier,
        action: Action,
        risk: RiskLevel,
        break_glass: bool,
    ) -> ResolvedPlaybook {
        let (rows, req) = if break_glass {
            (vec!["break_glass".to_owned()], self.break_glass.clone())
        } else {
            let mut req = self.default.clone();
            let mut rows = vec!["default".to_owned()];
            for row in self
                .rows
                .iter()
                .filter(|r| r.matches(channel, tier, action, risk))
            {
                row.apply(&mut req);
                rows.push(row.name.clone());
            }
            (rows, req)
        };
        ResolvedPlaybook {
            rows,
            requirements: PlaybookRequirements {
                min_classes: req.min_classes,
                required_any_of: req.required_any_of,
                approvals: req.approvals,
                cooling_off_minutes: req.cooling_off_minutes,
                grant_minutes: req.grant_minutes,
                temporary_access_pass_minutes: req.temporary_access_pass_minutes,
                probation_hours: req.probation_hours,
                requester_must_be_owner: req.requester_must_be_owner,
                contact_freshness_days: self.contact_freshness_days,
                script: req.script,
            },
        }
    }

    /// The override rows, in file order.
    pub fn rows(&self) -> &[PlaybookRow] {
        &self.rows
    }
}

/// The fields of a default, break-glass or override row that `check_requirements` looks at.
struct Checked<'a> {
    min_classes: Option<u32>,
    required_any_of: Option<&'a [BTreeSet<IndependenceClass>]>,
    grant_minutes: Option<u32>,
}

impl<'a> From<&'a RequirementsFile> for Checked<'a> {
    fn from(r: &'a RequirementsFile) -> Self {
        Self {
            min_classes: Some(r.min_classes),
            required_any_of: Some(&r.required_any_of),
            grant_minutes: Some(r.grant_minutes),
        }
    }
}

impl<'a> From<&'a RowFile> for Checked<'a> {
    fn from(r: &'a RowFile) -> Self {
        Self {
            min_classes: r.min_classes,
            required_any_of: r.required_any_of.as_deref(),
            grant_minutes: r.grant_minutes,
        }
    }
}

fn check_requirements(r: &Checked<'_>, line: usize, name: &str, problems: &mut Vec<Problem>) {
    let counting = counting_classes();
    if let Some(sets) = r.required_any_of {
        for set in sets {
            if set.is_empty() {
                problems.push(problem(
                    line,
                    format!("{name}: an empty required_any_of set can never be met"),
                ));
            }
            if set.contains(&IndependenceClass::Knowledge) {
                problems.push(problem(
                    line,
                    format!("{name}: required_any_of names knowledge, which never counts"),
                ));
            }
        }
    }
    if let Some(min) = r.min_classes
        && usize::try_from(min).unwrap_or(usize::MAX) > counting
    {
        problems.push(problem(
            line,
            format!("{name}: min_classes {min} exceeds the {counting} classes that count"),
        ));
    }
    if r.grant_minutes == Some(0) {
        problems.push(problem(
            line,
            format!("{name}: grant_minutes must be positive"),
        ));
    }
}

fn counting_classes() -> usize {
    <IndependenceClass as deskgate_core::ApiId>::all()
        .iter()
        .filter(|c| c.counts())
        .count()
}

fn problem(line: usize, message: String) -> Problem {
    Problem {
        kind: ProblemKind::Playbook,
        file: FILE.to_owned(),
        line: Some(line),
        message,
    }
}

/// A TOML parse or shape error as a problem with the line its span starts on.
pub(crate) fn toml_problem(file: &str, text: &str, e: &toml::de::Error) -> Problem {
    Problem {
        kind: ProblemKind::Toml,
        file: file.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().trim().to_owned(),
    }
}
