//! One decision: risk (bundle thresholds) + playbook (requirements and steps) + Cedar (the final
//! gate). Every open, approve and execute of a case is one call to `Bundle::evaluate`.
//!
//! Outcomes. Cedar answers permit or deny; the outcome is read from the policies that decided:
//! - Cedar permits -> `Allow`, except at stage `execute` when the playbook is not complete: the
//!   layers disagree and the decision fails closed as `Deny`.
//! - Cedar denies and every forbid policy that matched is annotated `@escalate(...)` ->
//!   `Escalate` (route the case to a security officer; escalation policies exempt security
//!   officers, so under one the normal permits apply).
//! - Cedar denies with a hard forbid among the matches, or with no permit matching -> `Deny`.
//! - Cedar reports an evaluation error -> `Deny` (an erroring forbid must not become an allow).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, PolicySet, Request, Response,
    RestrictedExpression,
};
use deskgate_core::risk::RiskAssessment;
use deskgate_core::{
    Action, ApiId, ApproverRole, IndependenceClass, Method, Role, SubjectStatus, Tier,
};
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::error::DecisionError;
use crate::playbook::{Obtained, PlaybookProgress, ResolvedPlaybook, approver_role_id};
use crate::risk::{RiskSignals, RiskSubject, assess};

/// Which authorization point of a case is asked about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Opening a case.
    Open,
    /// A staff member recording an approval on a case (the principal is the approver).
    Approve,
    /// Executing the action.
    #[default]
    Execute,
}

impl Stage {
    pub fn api_id(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approve => "approve",
            Self::Execute => "execute",
        }
    }
}

/// The staff member making the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffInfo {
    pub id: String,
    pub role: Role,
    pub team: String,
    pub region: String,
    pub shift: String,
    /// The staff member's own subject id in the directory.
    pub subject_id: Option<String>,
    /// The subject id of that identity's manager.
    pub manager_id: Option<String>,
}

/// The subject the request is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectInfo {
    pub id: String,
    pub tier: Tier,
    pub status: SubjectStatus,
    pub groups: Vec<String>,
    pub on_probation: bool,
}

/// One passed verification as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceInput {
    pub class: IndependenceClass,
    /// Days since the contact the method used was last changed, for contact-based methods.
    pub contact_age_days: Option<u32>,
    /// The code or call went to a number or address the caller supplied, not one of record.
    pub caller_supplied: bool,
}

impl EvidenceInput {
    /// Evidence through `method` with no contact caveats.
    pub fn from_method(method: Method) -> Self {
        Self::from_class(method.class())
    }

    pub fn from_class(class: IndependenceClass) -> Self {
        Self {
            class,
            contact_age_days: None,
            caller_supplied: false,
        }
    }
}

/// One approval recorded on the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInput {
    pub approver_id: String,
    pub role: ApproverRole,
}

/// Everything one decision needs; the service loads it from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRequest {
    pub stage: Stage,
    pub principal: StaffInfo,
    /// The staff id of the agent who opened the case (the principal at open and execute).
    pub case_agent_id: String,
    pub subject: SubjectInfo,
    pub action: Action,
    pub signals: RiskSignals,
    pub evidence: Vec<EvidenceInput>,
    pub approvals: Vec<ApprovalInput>,
    /// Minutes since the evidence and approvals were complete, for the cooling-off delay.
    pub waited_minutes: u32,
    pub break_glass: bool,
    /// The verified requester is a registered owner of the subject (service accounts).
    pub requester_is_owner: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    /// Route the case to a security officer.
    Escalate,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Escalate => "escalate",
        })
    }
}

/// An explained, pinned decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// Human-readable reasons, from the deciding policies' `@reason` annotations.
    pub reasons: Vec<String>,
    /// `@id`s of the Cedar policies that decided, sorted.
    pub policy_ids: Vec<String>,
    pub bundle_digest: String,
    pub stage: Stage,
    pub risk: RiskAssessment,
    pub playbook: ResolvedPlaybook,
    pub progress: PlaybookProgress,
    /// Classes that counted.
    pub counted_classes: BTreeSet<IndependenceClass>,
    /// Why each discounted piece of evidence did not count.
    pub discounted: Vec<String>,
}

/// What a request amounts to before Cedar sees it.
struct Prepared {
    risk: RiskAssessment,
    playbook: ResolvedPlaybook,
    progress: PlaybookProgress,
    counted: BTreeSet<IndependenceClass>,
    discounted: Vec<String>,
    approval_roles: Vec<ApproverRole>,
    security_officer_approvals: usize,
    cooling_off_elapsed: bool,
}

impl Bundle {
    fn prepare(&self, req: &DecisionRequest) -> Prepared {
        let t = &self.thresholds;
        let risk = assess(
            RiskSubject {
                tier: req.subject.tier,
                status: req.subject.status,
                on_probation: req.subject.on_probation,
            },
            req.action,
            &req.signals,
            t,
        );
        let mut counted = BTreeSet::new();
        let mut discounted = Vec::new();
        for e in &req.evidence {
            if !e.class.counts() {
                discounted.push(format!(
                    "{} is recorded but never counts: answers about a person can be researched",
                    e.class
                ));
            } else if e.caller_supplied {
                discounted.push(format!(
                    "{} went to a contact the caller supplied, not one of record: it never counts",
                    e.class
                ));
            } else if let Some(age) = e.contact_age_days
                && age < t.contact_freshness_days
            {
                discounted.push(format!(
                    "{} used a contact changed {age} day(s) ago, inside the {}-day freshness window",
                    e.class, t.contact_freshness_days
                ));
            } else {
                counted.insert(e.class);
            }
        }
        // One person's approval counts once, and the agent who opened the case never approves it.
        let mut seen = HashSet::new();
        let mut approval_roles = Vec::new();
        let mut security_officer_approvals = 0;
        for a in &req.approvals {
            if a.approver_id == req.case_agent_id || !seen.insert(a.approver_id.as_str()) {
                continue;
            }
            if a.role == ApproverRole::SecurityOfficer {
                security_officer_approvals += 1;
            }
            approval_roles.push(a.role);
        }
        let playbook =
            self.playbooks
                .resolve(req.subject.tier, req.action, risk.level, req.break_glass);
        let cooling_off_elapsed = req.waited_minutes >= playbook.requirements.cooling_off_minutes;
        let progress = playbook.requirements.progress(
            req.action,
            &Obtained {
                classes: &counted,
                approvals: &approval_roles,
                cooling_off_elapsed,
                requester_is_owner: req.requester_is_owner,
            },
        );
        Prepared {
            risk,
            playbook,
            progress,
            counted,
            discounted,
            approval_roles,
            security_officer_approvals,
            cooling_off_elapsed,
        }
    }

    fn cedar_request(
        &self,
        req: &DecisionRequest,
        stage: Stage,
        p: &Prepared,
        shape: bool,
    ) -> Result<(Request, Entities), DecisionError> {
        let err = |what: &'static str| {
            move |e: &dyn fmt::Display| DecisionError::Request {
                what,
                message: e.to_string(),
            }
        };
        let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
        let long = |v: usize| RestrictedExpression::new_long(i64::try_from(v).unwrap_or(i64::MAX));
        let staff_uid = self.entity_uid(&self.staff_type, &req.principal.id);
        let subject_uid = self.entity_uid(&self.subject_type, &req.subject.id);
        let action_uid =
            self.actions
                .get(&req.action)
                .cloned()
                .ok_or_else(|| DecisionError::Request {
                    what: "action",
                    message: format!("the schema declares no action {}", req.action),
                })?;
        let pr = &req.principal;
        let mut staff_attrs: HashMap<String, RestrictedExpression> = HashMap::from([
            ("role".to_owned(), s(pr.role.api_id())),
            ("team".to_owned(), s(&pr.team)),
            ("region".to_owned(), s(&pr.region)),
            ("shift".to_owned(), s(&pr.shift)),
        ]);
        if let Some(id) = &pr.subject_id {
            staff_attrs.insert(
                "subject".to_owned(),
                RestrictedExpression::new_entity_uid(self.entity_uid(&self.subject_type, id)),
            );
        }
        if let Some(id) = &pr.manager_id {
            staff_attrs.insert(
                "manager".to_owned(),
                RestrictedExpression::new_entity_uid(self.entity_uid(&self.subject_type, id)),
            );
        }
        let staff = Entity::new(staff_uid.clone(), staff_attrs, HashSet::new())
            .map_err(|e| err("principal entity")(&e))?;
        let sub = &req.subject;
        let subject = Entity::new(
            subject_uid.clone(),
            HashMap::from([
                ("tier".to_owned(), s(sub.tier.api_id())),
                ("status".to_owned(), s(sub.status.api_id())),
                (
                    "groups".to_owned(),
                    RestrictedExpression::new_set(sub.groups.iter().map(|g| s(g))),
                ),
                (
                    "on_probation".to_owned(),
                    RestrictedExpression::new_bool(sub.on_probation),
                ),
            ]),
            HashSet::new(),
        )
        .map_err(|e| err("resource entity")(&e))?;
        // The hot path skips per-request schema checks: the load-time probe checked the shape
        // with the schema, and any mismatch left would surface as an evaluation error, which
        // denies.
        let schema = shape.then_some(&self.schema);
        let entities = self
            .action_entities
            .clone()
            .add_entities([staff, subject], schema)
            .map_err(|e| err("entities")(&e))?;
        let derived = req.signals.derive(&self.thresholds);
        let sig = &req.signals;
        let b = RestrictedExpression::new_bool;
        let n = |v: u32| RestrictedExpression::new_long(i64::from(v));
        let context = Context::from_pairs([
            ("stage".to_owned(), s(stage.api_id())),
            ("risk_level".to_owned(), s(p.risk.level.api_id())),
            (
                "evidence_classes".to_owned(),
                RestrictedExpression::new_set(p.counted.iter().map(|c| s(c.api_id()))),
            ),
            ("evidence_count".to_owned(), long(p.counted.len())),
            (
                "approvals".to_owned(),
                RestrictedExpression::new_set(
                    p.approval_roles
                        .iter()
                        .map(|r| approver_role_id(*r))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .map(s),
                ),
            ),
            (
                "security_officer_approvals".to_owned(),
                long(p.security_officer_approvals),
            ),
            ("cooling_off_elapsed".to_owned(), b(p.cooling_off_elapsed)),
            ("break_glass".to_owned(), b(req.break_glass)),
            ("requester_is_owner".to_owned(), b(req.requester_is_owner)),
            (
                "case_agent".to_owned(),
                RestrictedExpression::new_entity_uid(
                    self.entity_uid(&self.staff_type, &req.case_agent_id),
                ),
            ),
            (
                "contact_changed_recently".to_owned(),
                b(derived.contact_changed_recently),
            ),
            (
                "caller_number_differs".to_owned(),
                b(sig.caller_number_differs),
            ),
            ("recent_recoveries".to_owned(), n(sig.recent_recoveries)),
            (
                "open_cases_for_subject".to_owned(),
                n(sig.open_cases_for_subject),
            ),
            (
                "requests_for_subject".to_owned(),
                n(sig.requests_for_subject),
            ),
            (
                "requests_from_caller_number".to_owned(),
                n(sig.requests_from_caller_number),
            ),
            ("requests_by_agent".to_owned(), n(sig.requests_by_agent)),
            ("off_hours".to_owned(), b(derived.off_hours)),
            (
                "new_hire_without_factors".to_owned(),
                b(derived.new_hire_without_factors),
            ),
            ("subject_flagged".to_owned(), b(sig.subject_flagged)),
        ])
        .map_err(|e| err("context")(&e))?;
        let request = Request::new(staff_uid, action_uid, subject_uid, context, schema)
            .map_err(|e| err("request")(&e))?;
        Ok((request, entities))
    }

    fn authorize(
        &self,
        req: &DecisionRequest,
        stage: Stage,
        p: &Prepared,
        set: &PolicySet,
    ) -> Result<Response, DecisionError> {
        let (request, entities) = self.cedar_request(req, stage, p, false)?;
        Ok(Authorizer::new().is_authorized(&request, set, &entities))
    }

    /// Decides `req`: risk, playbook and Cedar, pinned to this bundle's digest.
    pub fn evaluate(&self, req: &DecisionRequest) -> Result<Decision, DecisionError> {
        let p = self.prepare(req);
        let response = self.authorize(req, req.stage, &p, &self.policies)?;
        let mut policy_ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        policy_ids.sort();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        let reason_of = |id: &String| {
            self.info
                .get(id)
                .and_then(|i| i.reason.clone())
                .unwrap_or_else(|| format!("policy {id}"))
        };
        let mut reasons: Vec<String> = policy_ids.iter().map(reason_of).collect();
        let outcome = if !errors.is_empty() {
            reasons.extend(
                errors
                    .iter()
                    .map(|e| format!("policy evaluation error: {e}")),
            );
            Outcome::Deny
        } else {
            match response.decision() {
                CedarDecision::Allow => {
                    if req.stage == Stage::Execute && !p.progress.complete {
                        reasons.push(
                            "the policy layers disagree: Cedar permits execution but the \
                             playbook is not complete; denied"
                                .to_owned(),
                        );
                        Outcome::Deny
                    } else {
                        Outcome::Allow
                    }
                }
                CedarDecision::Deny if policy_ids.is_empty() => {
                    reasons.push(format!(
                        "no policy permits {} at stage {}",
                        req.action,
                        req.stage.api_id()
                    ));
                    if req.stage == Stage::Execute {
                        if p.progress.complete {
                            reasons.push(
                                "the policy layers disagree: the playbook is complete but no \
                                 Cedar permit matches"
                                    .to_owned(),
                            );
                        } else {
                            reasons.extend(
                                p.progress
                                    .steps
                                    .iter()
                                    .map(|s| format!("still required: {}", s.title)),
                            );
                        }
                    }
                    Outcome::Deny
                }
                CedarDecision::Deny => {
                    let all_escalations = policy_ids
                        .iter()
                        .all(|id| self.info.get(id).is_some_and(|i| i.escalate_to.is_some()));
                    if all_escalations {
                        Outcome::Escalate
                    } else {
                        Outcome::Deny
                    }
                }
            }
        };
        Ok(Decision {
            outcome,
            reasons,
            policy_ids,
            bundle_digest: self.digest().to_owned(),
            stage: req.stage,
            risk: p.risk,
            playbook: p.playbook,
            progress: p.progress,
            counted_classes: p.counted,
            discounted: p.discounted,
        })
    }

    /// Builds the Cedar request for `req` checking entities, context and request against the
    /// schema: the load-time test that the schema accepts what Deskgate sends.
    pub(crate) fn check_request_shape(&self, req: &DecisionRequest) -> Result<(), DecisionError> {
        let p = self.prepare(req);
        self.cedar_request(req, req.stage, &p, true).map(|_| ())
    }

    /// Whether the two layers agree on `req` taken at stage execute: the playbook calls it
    /// complete exactly when Cedar's permit policies (guardrails and escalations aside) permit it.
    pub fn layers_agree(&self, req: &DecisionRequest) -> Result<LayerCheck, DecisionError> {
        let p = self.prepare(req);
        let response = self.authorize(req, Stage::Execute, &p, &self.permits)?;
        Ok(LayerCheck {
            playbook_complete: p.progress.complete,
            cedar_permits: response.decision() == CedarDecision::Allow
                && response.diagnostics().errors().next().is_none(),
        })
    }
}

/// The two layers' verdicts on one request at stage execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LayerCheck {
    pub playbook_complete: bool,
    pub cedar_permits: bool,
}

impl LayerCheck {
    pub fn agree(self) -> bool {
        self.playbook_complete == self.cedar_permits
    }
}

/// A neutral request used at load time to check the schema accepts Deskgate's request shape.
pub(crate) fn probe_request(action: Action) -> DecisionRequest {
    DecisionRequest {
        stage: Stage::Open,
        principal: StaffInfo {
            id: "probe-staff".to_owned(),
            role: Role::Agent,
            team: String::new(),
            region: String::new(),
            shift: String::new(),
            subject_id: Some("probe-staff-subject".to_owned()),
            manager_id: Some("probe-staff-manager".to_owned()),
        },
        case_agent_id: "probe-staff".to_owned(),
        subject: SubjectInfo {
            id: "probe-subject".to_owned(),
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            groups: vec!["probe".to_owned()],
            on_probation: false,
        },
        action,
        signals: RiskSignals::default(),
        evidence: Vec::new(),
        approvals: Vec::new(),
        waited_minutes: 0,
        break_glass: false,
        requester_is_owner: false,
    }
}
