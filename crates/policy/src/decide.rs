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

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, PolicySet, Request, Response,
    RestrictedExpression, Schema,
};
use deskgate_core::risk::RiskAssessment;
use deskgate_core::{
    Action, ApiId, ApproverRole, Channel, IndependenceClass, Method, Role, SubjectStatus, Tier,
};
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::error::DecisionError;
use crate::playbook::{Obtained, PlaybookProgress, ResolvedPlaybook, approver_role_id};
use crate::risk::{RiskSignals, RiskSubject, assess};
use crate::slice::{Attr, AttrUse, CONTEXT_ATTRS, Facts, Kind, STAFF_ATTRS, SUBJECT_ATTRS};

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
    /// How the request came in: a help-desk channel, or `self_service` with no agent in the loop.
    #[serde(default)]
    pub channel: Channel,
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
pub(crate) struct Prepared {
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
    pub(crate) fn prepare(&self, req: &DecisionRequest) -> Prepared {
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
        let playbook = self.playbooks.resolve_for(
            req.channel,
            req.subject.tier,
            req.action,
            risk.level,
            req.break_glass,
        );
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

    /// The request's values as Cedar receives them, in the order of the `slice` tables.
    pub(crate) fn facts<'a>(
        &self,
        req: &'a DecisionRequest,
        stage: Stage,
        p: &'a Prepared,
    ) -> Facts<'a> {
        let derived = req.signals.derive(&self.thresholds);
        let sig = &req.signals;
        let pr = &req.principal;
        let sub = &req.subject;
        let count = |v: usize| Attr::Long(i64::try_from(v).unwrap_or(i64::MAX));
        let n = |v: u32| Attr::Long(i64::from(v));
        let subject_ref = |id: &'a Option<String>| {
            id.as_deref()
                .map_or(Attr::Absent, |id| Attr::Entity(Kind::Subject, id))
        };
        let mut approvals: Vec<&'static str> = p
            .approval_roles
            .iter()
            .map(|r| approver_role_id(*r))
            .collect();
        approvals.sort_unstable();
        approvals.dedup();
        Facts {
            principal_id: &pr.id,
            resource_id: &sub.id,
            action: req.action,
            // STAFF_ATTRS: role, team, region, shift, subject, manager
            staff: [
                Attr::Str(pr.role.api_id()),
                Attr::Str(&pr.team),
                Attr::Str(&pr.region),
                Attr::Str(&pr.shift),
                subject_ref(&pr.subject_id),
                subject_ref(&pr.manager_id),
            ],
            // SUBJECT_ATTRS: tier, status, groups, on_probation
            subject: [
                Attr::Str(sub.tier.api_id()),
                Attr::Str(sub.status.api_id()),
                Attr::StrSet(sub.groups.iter().map(String::as_str).collect()),
                Attr::Bool(sub.on_probation),
            ],
            // CONTEXT_ATTRS, in order
            context: [
                Attr::Str(stage.api_id()),
                Attr::Str(p.risk.level.api_id()),
                Attr::StrSet(p.counted.iter().map(|c| c.api_id()).collect()),
                count(p.counted.len()),
                Attr::StrSet(approvals),
                count(p.security_officer_approvals),
                Attr::Bool(p.cooling_off_elapsed),
                Attr::Bool(req.break_glass),
                Attr::Bool(req.requester_is_owner),
                Attr::Entity(Kind::Staff, &req.case_agent_id),
                Attr::Bool(derived.contact_changed_recently),
                Attr::Bool(sig.caller_number_differs),
                n(sig.recent_recoveries),
                n(sig.open_cases_for_subject),
                n(sig.requests_for_subject),
                n(sig.requests_from_caller_number),
                n(sig.requests_by_agent),
                Attr::Bool(derived.off_hours),
                Attr::Bool(derived.new_hire_without_factors),
                Attr::Bool(sig.subject_flagged),
                Attr::Str(req.channel.api_id()),
            ],
        }
    }

    fn restricted(&self, v: &Attr<'_>) -> Option<RestrictedExpression> {
        let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
        Some(match v {
            Attr::Str(v) => s(v),
            Attr::Bool(b) => RestrictedExpression::new_bool(*b),
            Attr::Long(n) => RestrictedExpression::new_long(*n),
            Attr::Entity(Kind::Staff, id) => {
                RestrictedExpression::new_entity_uid(self.entity_uid(&self.staff_type, id))
            }
            Attr::Entity(Kind::Subject, id) => {
                RestrictedExpression::new_entity_uid(self.entity_uid(&self.subject_type, id))
            }
            Attr::StrSet(items) => RestrictedExpression::new_set(items.iter().map(|v| s(v))),
            Attr::Absent => return None,
        })
    }

    /// The attributes of one table that `used` selects, absent optional ones left out.
    fn attrs<'s>(
        &'s self,
        names: &'static [&'static str],
        values: &'s [Attr<'_>],
        used: u32,
    ) -> impl Iterator<Item = (String, RestrictedExpression)> + 's {
        names
            .iter()
            .zip(values)
            .enumerate()
            .filter(move |(i, _)| used & (1 << i) != 0)
            .filter_map(|(_, (name, v))| self.restricted(v).map(|e| ((*name).to_owned(), e)))
    }

    /// The Cedar request and entities for `f`, with the attributes `uses` selects. With a
    /// schema, everything is checked against it.
    fn cedar_request(
        &self,
        f: &Facts<'_>,
        uses: AttrUse,
        schema: Option<&Schema>,
    ) -> Result<(Request, Entities), DecisionError> {
        let err = |what: &'static str| {
            move |e: &dyn fmt::Display| DecisionError::Request {
                what,
                message: e.to_string(),
            }
        };
        let staff_uid = self.entity_uid(&self.staff_type, f.principal_id);
        let subject_uid = self.entity_uid(&self.subject_type, f.resource_id);
        let action_uid =
            self.actions
                .get(&f.action)
                .cloned()
                .ok_or_else(|| DecisionError::Request {
                    what: "action",
                    message: format!("the schema declares no action {}", f.action),
                })?;
        let none = || std::iter::empty::<(String, RestrictedExpression)>();
        let mut list = Vec::with_capacity(2);
        if uses.staff != 0 {
            list.push(
                Entity::new_with_tags(
                    staff_uid.clone(),
                    self.attrs(&STAFF_ATTRS, &f.staff, uses.staff),
                    std::iter::empty(),
                    none(),
                )
                .map_err(|e| err("principal entity")(&e))?,
            );
        }
        if uses.subject != 0 {
            list.push(
                Entity::new_with_tags(
                    subject_uid.clone(),
                    self.attrs(&SUBJECT_ATTRS, &f.subject, uses.subject),
                    std::iter::empty(),
                    none(),
                )
                .map_err(|e| err("resource entity")(&e))?,
            );
        }
        let entities = if uses.action_entities {
            self.action_entities.clone().add_entities(list, schema)
        } else if list.is_empty() {
            Ok(Entities::empty())
        } else {
            Entities::from_entities(list, schema)
        }
        .map_err(|e| err("entities")(&e))?;
        let context = Context::from_pairs(self.attrs(&CONTEXT_ATTRS, &f.context, uses.context))
            .map_err(|e| err("context")(&e))?;
        let request = Request::new(staff_uid, action_uid, subject_uid, context, schema)
            .map_err(|e| err("request")(&e))?;
        Ok((request, entities))
    }

    /// Cedar's answer on `req` at `stage`: from the slice of the policies the request's facts
    /// leave in play, or from every policy of `set` with every attribute.
    fn authorize(
        &self,
        req: &DecisionRequest,
        stage: Stage,
        p: &Prepared,
        set: Option<&PolicySet>,
    ) -> Result<Response, DecisionError> {
        let facts = self.facts(req, stage, p);
        // The hot path skips per-request schema checks: the load-time probe checked the shape
        // with the schema, and any mismatch left would surface as an evaluation error, which
        // denies.
        let (request, entities, slice);
        let set = match set {
            Some(set) => {
                (request, entities) = self.cedar_request(&facts, AttrUse::ALL, None)?;
                set
            }
            None => {
                slice = self.slicer.slice(&facts);
                (request, entities) = self.cedar_request(&facts, slice.uses, None)?;
                &slice.set
            }
        };
        Ok(Authorizer::new().is_authorized(&request, set, &entities))
    }

    /// Decides `req`: risk, playbook and Cedar, pinned to this bundle's digest.
    pub fn evaluate(&self, req: &DecisionRequest) -> Result<Decision, DecisionError> {
        self.decide(req, None)
    }

    /// `evaluate` with every policy and every attribute handed to Cedar: what slicing must equal.
    #[cfg(test)]
    pub(crate) fn evaluate_unsliced(
        &self,
        req: &DecisionRequest,
    ) -> Result<Decision, DecisionError> {
        self.decide(req, Some(&self.slicer.full().set))
    }

    fn decide(
        &self,
        req: &DecisionRequest,
        set: Option<&PolicySet>,
    ) -> Result<Decision, DecisionError> {
        let p = self.prepare(req);
        let response = self.authorize(req, req.stage, &p, set)?;
        let (policy_ids, errors) = deciding_policies_and_errors(&response);
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
                CedarDecision::Allow => cedar_allows(req, &p, &mut reasons),
                CedarDecision::Deny if policy_ids.is_empty() => {
                    no_permit_matches(req, &p, &mut reasons)
                }
                CedarDecision::Deny => self.forbid_matches(&policy_ids),
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

    /// Cedar denies and forbid policies matched: an escalation when every one of them is an
    /// `@escalate` policy, a denial otherwise.
    fn forbid_matches(&self, policy_ids: &[String]) -> Outcome {
        let all_escalations = policy_ids
            .iter()
            .all(|id| self.info.get(id).is_some_and(|i| i.escalate_to.is_some()));
        if all_escalations {
            Outcome::Escalate
        } else {
            Outcome::Deny
        }
    }

    /// Builds the Cedar request for `req` checking entities, context and request against the
    /// schema: the load-time test that the schema accepts what Deskgate sends.
    pub(crate) fn check_request_shape(&self, req: &DecisionRequest) -> Result<(), DecisionError> {
        let p = self.prepare(req);
        let facts = self.facts(req, req.stage, &p);
        self.cedar_request(&facts, AttrUse::ALL, Some(&self.schema))
            .map(|_| ())
    }

    /// Whether the two layers agree on `req` taken at stage execute: the playbook calls it
    /// complete exactly when Cedar's permit policies (guardrails and escalations aside) permit it.
    pub fn layers_agree(&self, req: &DecisionRequest) -> Result<LayerCheck, DecisionError> {
        let p = self.prepare(req);
        let response = self.authorize(req, Stage::Execute, &p, Some(&self.permits))?;
        Ok(LayerCheck {
            playbook_complete: p.progress.complete,
            cedar_permits: response.decision() == CedarDecision::Allow
                && response.diagnostics().errors().next().is_none(),
        })
    }
}

/// The `@id`s of the policies that decided and Cedar's evaluation errors, each sorted.
fn deciding_policies_and_errors(response: &Response) -> (Vec<String>, Vec<String>) {
    let mut policy_ids: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    policy_ids.sort();
    // Sorted: Cedar reports errors in its set's hash order.
    let mut errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    errors.sort();
    (policy_ids, errors)
}

/// Cedar permits: an allow, unless at stage execute the playbook is not complete, when the
/// layers disagree and the decision fails closed.
fn cedar_allows(req: &DecisionRequest, p: &Prepared, reasons: &mut Vec<String>) -> Outcome {
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

/// Cedar denies because no permit matched: a denial, explained at stage execute by what the
/// playbook still requires (or, when it is complete, by the layers' disagreement).
fn no_permit_matches(req: &DecisionRequest, p: &Prepared, reasons: &mut Vec<String>) -> Outcome {
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
        channel: Channel::Phone,
    }
}
