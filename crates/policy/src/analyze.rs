//! `policy analyze`: the attack paths of a bundle, computed with the real decision engine.
//!
//! For every tier x action x risk level, each set of attacker capabilities (a SIM swap, a mailbox
//! takeover, a stolen device, a colluding supervisor...) produces the evidence and approvals its
//! takeover units allow; the core counts that evidence as the service does (one class per
//! takeover unit, [`deskgate_core::takeover`]) against the cell's playbook, and the bundle decides
//! open, each approval and execute as it would for a live case. The minimal capability sets that
//! reach an executable grant are the cell's attack paths. Gates declared in the bundle's
//! `gates.toml` bound them: a path that breaks a gate fails `policy check` and `policy test`.
//!
//! Every cell is analysed on both channels a case can come from: a call to the help desk (worked
//! by an honest agent, or a supervisor or security officer where only they may) and the
//! self-service page (worked by Deskgate's self-service desk, with only the ways to confirm the
//! page offers: no callback, no voice code, no knowledge questions).
//!
//! The subject modelled is the best-defended ordinary one: every factor enrolled and settled,
//! recovery codes and the app's seed kept offline since enrolment, contacts of record settled, a
//! manager with contacts of their own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use deskgate_core::{
    Action, ApiId, ApproverRole, Channel, Evidence, Method, RiskLevel, Role, SubjectStatus, Tier,
};
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::decide::{
    ApprovalInput, DecisionRequest, EvidenceInput, Outcome, StaffInfo, Stage, SubjectInfo,
};
use crate::error::DecisionError;
use crate::risk::RiskSignals;

mod report;
pub use report::{PathChange, path_changes, render_table};

/// What an attacker may control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// The subject's phone number (SIM swap, port-out).
    SimSwap,
    /// The subject's mailbox.
    Mailbox,
    /// The manager's mailbox and phone.
    ManagerCompromise,
    /// The manager's mailbox only.
    ManagerMailbox,
    /// What can be researched about the subject.
    Knowledge,
    /// The subject's devices and what they keep offline, stolen or coerced.
    Device,
    /// A forged identity document good enough for the proofing vendor.
    ForgedDocument,
    /// A help-desk agent working for the attacker.
    ColludingAgent,
    /// A supervisor working for the attacker.
    ColludingSupervisor,
    /// A security officer working for the attacker.
    ColludingSecurityOfficer,
}

impl Capability {
    pub const ALL: [Self; 10] = [
        Self::SimSwap,
        Self::Mailbox,
        Self::ManagerCompromise,
        Self::ManagerMailbox,
        Self::Knowledge,
        Self::Device,
        Self::ForgedDocument,
        Self::ColludingAgent,
        Self::ColludingSupervisor,
        Self::ColludingSecurityOfficer,
    ];

    pub fn api_id(self) -> &'static str {
        match self {
            Self::SimSwap => "sim_swap",
            Self::Mailbox => "mailbox",
            Self::ManagerCompromise => "manager_compromise",
            Self::ManagerMailbox => "manager_mailbox",
            Self::Knowledge => "knowledge",
            Self::Device => "device",
            Self::ForgedDocument => "forged_document",
            Self::ColludingAgent => "colluding_agent",
            Self::ColludingSupervisor => "colluding_supervisor",
            Self::ColludingSecurityOfficer => "colluding_security_officer",
        }
    }

    /// A takeover from afar: no insider, nothing physical, no forged document.
    pub fn is_remote(self) -> bool {
        matches!(
            self,
            Self::SimSwap
                | Self::Mailbox
                | Self::ManagerCompromise
                | Self::ManagerMailbox
                | Self::Knowledge
        )
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_id())
    }
}

/// A set of capabilities, in a stable order.
pub type Capabilities = BTreeSet<Capability>;

/// What a set of capabilities yields: passed verifications with their takeover units, and the
/// approvals of colluding staff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Produced {
    evidence: Vec<(Method, Vec<&'static str>)>,
    approvals: Vec<ApproverRole>,
}

/// The evidence each capability produces on `channel`, with the units the service records for
/// it.
fn produce_on(channel: Channel, caps: &Capabilities) -> Produced {
    let mut p = produce(caps);
    if channel == Channel::SelfService {
        // The page offers no callback (nobody to call back), no voice code and no questions.
        p.evidence.retain(|(m, _)| {
            !matches!(m, Method::Callback | Method::VoiceCode | Method::Knowledge)
        });
    }
    p
}

/// The evidence each capability produces, with the units the service records for it.
fn produce(caps: &Capabilities) -> Produced {
    let mut p = Produced::default();
    let mut add = |method: Method, units: &[&'static str]| {
        p.evidence.push((method, units.to_vec()));
    };
    for cap in caps {
        match cap {
            Capability::SimSwap => {
                add(Method::SmsCode, &["phone:subject"]);
                add(Method::VoiceCode, &["phone:subject"]);
                add(Method::Callback, &["phone:subject", "agent"]);
            }
            Capability::Mailbox => add(Method::EmailCode, &["mailbox:subject"]),
            Capability::ManagerCompromise => add(
                Method::ManagerAttestation,
                &["manager:manager", "mailbox:manager", "phone:manager"],
            ),
            // The attestation link shows nothing before a code to the manager's own phone.
            Capability::ManagerMailbox | Capability::ColludingAgent => {}
            Capability::Knowledge => add(Method::Knowledge, &["knowledge"]),
            Capability::Device => {
                add(Method::Push, &["device:push"]);
                add(Method::Passkey, &["device:passkey"]);
                add(Method::Totp, &["device:app", "held:subject"]);
                add(Method::RecoveryCode, &["held:subject"]);
            }
            // The vendor's link goes to the mailbox of record.
            Capability::ForgedDocument if caps.contains(&Capability::Mailbox) => {
                add(Method::IdProofing, &["document"]);
            }
            Capability::ForgedDocument => {}
            Capability::ColludingSupervisor => p.approvals.push(ApproverRole::Supervisor),
            Capability::ColludingSecurityOfficer => {
                p.approvals.push(ApproverRole::SecurityOfficer);
            }
        }
    }
    p
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Where the case comes from: a call to the help desk or the self-service page.
    pub channel: Channel,
    pub tier: Tier,
    pub action: Action,
    pub risk: RiskLevel,
    /// The minimal capability sets that reach an executable grant, smallest first.
    pub paths: Vec<Capabilities>,
    /// Why no set reaches it, when none does and the bundle refuses to open the case at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<String>,
}

impl Cell {
    /// The smallest paths: what is cheapest for an attacker.
    pub fn cheapest(&self) -> Vec<&Capabilities> {
        let least = self.paths.iter().map(BTreeSet::len).min().unwrap_or(0);
        self.paths.iter().filter(|p| p.len() == least).collect()
    }
}

/// The whole analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    pub bundle_digest: String,
    pub cells: Vec<Cell>,
    /// Decisions the engine evaluated (opens, approvals, executes).
    pub decisions: u64,
    pub violations: Vec<Violation>,
}

/// A path that breaks a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub gate: String,
    pub channel: Channel,
    pub tier: Tier,
    pub action: Action,
    pub risk: RiskLevel,
    pub path: Capabilities,
    pub why: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path: Vec<&str> = self.path.iter().map(|c| c.api_id()).collect();
        write!(
            f,
            "gate {}: {} {} at {} risk{} is reached with {{{}}}: {}",
            self.gate,
            self.tier,
            self.action,
            self.risk,
            on_channel(self.channel),
            path.join(", "),
            self.why
        )
    }
}

/// Signals tried for each cell, to reach each risk level the bundle can assign it.
fn signal_presets() -> Vec<RiskSignals> {
    let base = RiskSignals::default;
    vec![
        base(),
        RiskSignals {
            caller_number_differs: true,
            ..base()
        },
        RiskSignals {
            subject_local_hour: Some(3),
            caller_number_differs: true,
            ..base()
        },
        RiskSignals {
            requests_for_subject: 3,
            subject_local_hour: Some(3),
            caller_number_differs: true,
            ..base()
        },
        RiskSignals {
            subject_flagged: true,
            requests_for_subject: 3,
            subject_local_hour: Some(3),
            caller_number_differs: true,
            recent_recoveries: 2,
            ..base()
        },
    ]
}

/// " on self-service" for a self-service cell; nothing for a call (the words of old reports).
fn on_channel(channel: Channel) -> &'static str {
    match channel {
        Channel::SelfService => " on self-service",
        _ => "",
    }
}

/// The fixed people of the analysis.
const AGENT: &str = "analysis-agent";
/// Deskgate's self-service desk, as `deskgate_app::self_service::desk()` describes it: an agent
/// that is nobody's colleague or manager.
const DESK: &str = "self-service";
const SUBJECT: &str = "analysis-subject";

fn staff(id: &str, role: Role) -> StaffInfo {
    StaffInfo {
        id: id.to_owned(),
        role,
        team: "service-desk".to_owned(),
        region: "emea".to_owned(),
        shift: "day".to_owned(),
        subject_id: Some(format!("{id}-person")),
        manager_id: Some(format!("{id}-manager")),
    }
}

/// Asks the engine, counting the decisions.
struct Engine<'a> {
    bundle: &'a Bundle,
    decisions: u64,
    now: DateTime<Utc>,
}

impl Engine<'_> {
    fn decide(&mut self, req: &DecisionRequest) -> Result<crate::Decision, DecisionError> {
        self.decisions += 1;
        self.bundle.evaluate(req)
    }

    fn request(
        &self,
        channel: Channel,
        tier: Tier,
        action: Action,
        signals: &RiskSignals,
    ) -> DecisionRequest {
        let (principal, agent) = match channel {
            Channel::SelfService => (
                StaffInfo {
                    id: DESK.to_owned(),
                    role: Role::Agent,
                    team: "self-service".to_owned(),
                    region: String::new(),
                    shift: String::new(),
                    subject_id: Some("deskgate:self-service-desk".to_owned()),
                    manager_id: None,
                },
                DESK,
            ),
            _ => (staff(AGENT, Role::Agent), AGENT),
        };
        DecisionRequest {
            stage: Stage::Open,
            principal,
            case_agent_id: agent.to_owned(),
            subject: SubjectInfo {
                id: SUBJECT.to_owned(),
                tier,
                status: SubjectStatus::Active,
                groups: vec![format!("tier-{tier}")],
                on_probation: false,
            },
            action,
            signals: signals.clone(),
            evidence: Vec::new(),
            approvals: Vec::new(),
            // The attacker waits out any cooling-off.
            waited_minutes: 7 * 24 * 60,
            break_glass: false,
            // A service account is recovered for a registered owner: the attacker poses as one
            // (the capabilities then stand for that owner's phone, mailbox and devices).
            requester_is_owner: tier == Tier::Service,
            channel,
        }
    }

    /// The request that opens the case, worked by the first role the bundle lets open it (an
    /// honest agent, or a security officer where only they work such cases; on self-service
    /// only the desk); `None` when no role may.
    fn opened(
        &mut self,
        channel: Channel,
        tier: Tier,
        action: Action,
        signals: &RiskSignals,
    ) -> Result<Option<(DecisionRequest, crate::Decision)>, DecisionError> {
        let roles: &[Role] = match channel {
            Channel::SelfService => &[Role::Agent],
            _ => &[Role::Agent, Role::Supervisor, Role::SecurityOfficer],
        };
        for role in roles {
            let mut req = self.request(channel, tier, action, signals);
            if channel != Channel::SelfService {
                req.principal = staff(AGENT, *role);
            }
            let decision = self.decide(&req)?;
            if decision.outcome != Outcome::Deny {
                return Ok(Some((req, decision)));
            }
        }
        Ok(None)
    }

    /// Why a cell is closed to every capability set before any evidence: no staff role may open
    /// it, or opening it escalates to a security officer, who decides outside the playbook.
    fn closed(
        channel: Channel,
        opened: Option<&(DecisionRequest, crate::Decision)>,
    ) -> Option<String> {
        match opened {
            None if channel == Channel::SelfService => Some(
                "the bundle refuses it on self-service: the page sends it to the help desk"
                    .to_owned(),
            ),
            None => Some("the bundle refuses to open it for any staff role".to_owned()),
            Some((_, d)) if d.outcome == Outcome::Escalate && channel == Channel::SelfService => {
                Some(
                    "escalated at open: the page cancels it and sends the person to the help desk"
                        .to_owned(),
                )
            }
            Some((_, d)) if d.outcome == Outcome::Escalate => Some(
                "escalated to a security officer at open: no playbook path, a person decides"
                    .to_owned(),
            ),
            Some(_) => None,
        }
    }

    /// Whether what `produced` yields executes the opened case.
    fn executes(
        &mut self,
        opened: &(DecisionRequest, crate::Decision),
        produced: &Produced,
    ) -> Result<bool, DecisionError> {
        let (open, decision) = opened;
        let requirements = decision.playbook.requirements.to_core_requirements();
        let evidence: Vec<Evidence> = produced
            .evidence
            .iter()
            .enumerate()
            .map(|(i, (method, units))| Evidence {
                verification_id: format!("v-{i}"),
                method: *method,
                class: method.class(),
                passed_at: self.now,
                contact_changed_at: None,
                units: units.iter().map(|u| (*u).to_owned()).collect(),
            })
            .collect();
        // The core counts the evidence as it does for a live case: one class per takeover unit.
        let progress = requirements.evaluate(&evidence, &[], self.now);
        if progress.classes_short > 0 || !progress.missing_any_of.is_empty() {
            return Ok(false);
        }
        let counted: Vec<EvidenceInput> = progress
            .counted_classes
            .iter()
            .map(|class| EvidenceInput::from_class(*class))
            .collect();
        let approvals = self.approvals(open, &counted, &produced.approvals)?;
        let Some(approvals) = approvals else {
            return Ok(false);
        };
        let mut execute = open.clone();
        execute.stage = Stage::Execute;
        execute.evidence = counted;
        execute.approvals = approvals;
        Ok(self.decide(&execute)?.outcome == Outcome::Allow)
    }

    /// The colluding staff's approvals, each of which the bundle must let them record.
    fn approvals(
        &mut self,
        open: &DecisionRequest,
        evidence: &[EvidenceInput],
        roles: &[ApproverRole],
    ) -> Result<Option<Vec<ApprovalInput>>, DecisionError> {
        let mut given = Vec::new();
        for role in roles {
            let id = format!("colluding-{role}");
            let staff_role = match role {
                ApproverRole::SecurityOfficer => Role::SecurityOfficer,
                _ => Role::Supervisor,
            };
            let mut approve = open.clone();
            approve.stage = Stage::Approve;
            approve.principal = staff(&id, staff_role);
            approve.evidence = evidence.to_vec();
            approve.approvals = given.clone();
            if self.decide(&approve)?.outcome == Outcome::Deny {
                return Ok(None);
            }
            given.push(ApprovalInput {
                approver_id: id,
                role: *role,
            });
        }
        Ok(Some(given))
    }
}

/// Every subset of the capabilities, smallest first.
fn subsets_by_size() -> Vec<Capabilities> {
    let n = Capability::ALL.len();
    let mut all: Vec<Capabilities> = (0u32..(1 << n))
        .map(|mask| {
            Capability::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, c)| *c)
                .collect()
        })
        .collect();
    all.sort_by_key(BTreeSet::len);
    all
}

/// The minimal capability sets that execute the case `opened` opens. Reaching is monotone (more
/// capabilities never yield less), so supersets of a path are skipped, and sets that yield the
/// same evidence and approvals are decided once.
fn minimal_paths(
    engine: &mut Engine<'_>,
    opened: &(DecisionRequest, crate::Decision),
    subsets: &[Capabilities],
) -> Result<Vec<Capabilities>, DecisionError> {
    let mut paths: Vec<Capabilities> = Vec::new();
    let mut decided: HashMap<Produced, bool> = HashMap::new();
    for caps in subsets {
        if paths.iter().any(|p| p.is_subset(caps)) {
            continue;
        }
        let mut produced = produce_on(opened.0.channel, caps);
        produced.evidence.sort_by_key(|(m, _)| m.api_id());
        produced.approvals.sort_by_key(|r| r.api_id());
        let reached = match decided.get(&produced) {
            Some(r) => *r,
            None => {
                let r = engine.executes(opened, &produced)?;
                decided.insert(produced, r);
                r
            }
        };
        if reached {
            paths.push(caps.clone());
        }
    }
    Ok(paths)
}

impl Bundle {
    /// The attack paths of this bundle for every tier x action x risk level it assigns, and the
    /// paths that break its gates.
    pub fn analyze(&self, now: DateTime<Utc>) -> Result<Analysis, DecisionError> {
        let mut engine = Engine {
            bundle: self,
            decisions: 0,
            now,
        };
        let subsets = subsets_by_size();
        let mut cells = Vec::new();
        for channel in CHANNELS {
            for tier in Tier::all() {
                for action in Action::all() {
                    cells.extend(analyze_cell(
                        &mut engine,
                        channel,
                        *tier,
                        *action,
                        &subsets,
                    )?);
                }
            }
        }
        let violations = self.gates().violations(&cells);
        Ok(Analysis {
            bundle_digest: self.digest().to_owned(),
            cells,
            decisions: engine.decisions,
            violations,
        })
    }
}

impl Bundle {
    /// Refuses this bundle when an attack path breaks one of its gates, naming every such path
    /// (what `policy check`, `policy test` and a reload in service all ask).
    pub fn check_gates(&self, now: DateTime<Utc>) -> Result<(), String> {
        let analysis = self
            .analyze(now)
            .map_err(|e| format!("the attack paths cannot be computed: {e}"))?;
        if analysis.violations.is_empty() {
            return Ok(());
        }
        let broken: Vec<String> = analysis
            .violations
            .iter()
            .map(ToString::to_string)
            .collect();
        Err(format!(
            "{} attack path(s) break the bundle's gates:\n{}",
            broken.len(),
            broken.join("\n")
        ))
    }
}

/// The channels analysed: a call (every agent channel decides alike) and the self-service page.
const CHANNELS: [Channel; 2] = [Channel::Phone, Channel::SelfService];

/// The cells of one channel, tier and action: one per risk level the presets reach.
fn analyze_cell(
    engine: &mut Engine<'_>,
    channel: Channel,
    tier: Tier,
    action: Action,
    subsets: &[Capabilities],
) -> Result<Vec<Cell>, DecisionError> {
    let mut by_level: BTreeMap<RiskLevel, Cell> = BTreeMap::new();
    for signals in signal_presets() {
        let opened = engine.opened(channel, tier, action, &signals)?;
        let level = match &opened {
            Some((_, d)) => d.risk.level,
            None => {
                let mut req = engine.request(channel, tier, action, &signals);
                req.stage = Stage::Open;
                engine.decide(&req)?.risk.level
            }
        };
        if by_level.contains_key(&level) {
            continue;
        }
        let closed = Engine::closed(channel, opened.as_ref());
        let paths = match (&opened, &closed) {
            (Some(opened), None) => minimal_paths(engine, opened, subsets)?,
            _ => Vec::new(),
        };
        let cell = Cell {
            channel,
            tier,
            action,
            risk: level,
            paths,
            closed,
        };
        by_level.insert(level, cell);
    }
    Ok(by_level.into_values().collect())
}

/// `gates.toml`: bounds on the attack paths, checked by `policy check` and `policy test`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    #[serde(default, rename = "gate")]
    pub gates: Vec<Gate>,
}

/// One gate: for the cells it names, every attack path needs at least `min_capabilities`
/// capabilities and, with `needs_non_remote`, at least one that is not a remote takeover.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Tiers it covers; empty covers every tier.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// Actions it covers; empty covers every action.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Channels it covers (`phone`, `self_service`...); empty covers every channel.
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub min_capabilities: Option<usize>,
    #[serde(default)]
    pub needs_non_remote: bool,
}

impl Gate {
    fn covers(&self, cell: &Cell) -> bool {
        (self.tiers.is_empty() || self.tiers.contains(&cell.tier))
            && (self.actions.is_empty() || self.actions.contains(&cell.action))
            && (self.channels.is_empty() || self.channels.contains(&cell.channel))
    }

    /// Why `path` breaks this gate, if it does.
    fn broken_by(&self, path: &Capabilities) -> Option<String> {
        if let Some(min) = self.min_capabilities
            && path.len() < min
        {
            return Some(format!(
                "{} capabilit{} where the gate needs at least {min}",
                path.len(),
                if path.len() == 1 { "y" } else { "ies" }
            ));
        }
        if self.needs_non_remote && path.iter().all(|c| c.is_remote()) {
            return Some("remote takeovers only, where the gate needs one that is not".to_owned());
        }
        None
    }
}

impl Gates {
    /// Every path that breaks a gate, cheapest first within each cell.
    pub fn violations(&self, cells: &[Cell]) -> Vec<Violation> {
        let mut out = Vec::new();
        for gate in &self.gates {
            for cell in cells.iter().filter(|c| gate.covers(c)) {
                for path in &cell.paths {
                    if let Some(why) = gate.broken_by(path) {
                        out.push(Violation {
                            gate: gate.name.clone(),
                            channel: cell.channel,
                            tier: cell.tier,
                            action: cell.action,
                            risk: cell.risk,
                            path: path.clone(),
                            why,
                        });
                    }
                }
            }
        }
        out
    }
}
