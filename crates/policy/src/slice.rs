//! Policy slicing: which Cedar policies a decision must hand to Cedar at all.
//!
//! Cedar 4 evaluates every policy of the set it is given, one by one; it has no index. Most of
//! a bundle's policies cannot match a given request: their leading conditions test the stage,
//! the tier, the status, a role or a flag, and the request has another value. At load each
//! policy's scope and leading conditions are read (from Cedar's own JSON form of the policy) into
//! a guard over the request's scalar facts. A decision evaluates the guards, and Cedar gets only
//! the policies no guard proved false (a cached `PolicySet` per combination), with only the
//! attributes those policies mention.
//!
//! Why the decision is identical to evaluating the full set:
//! - Cedar evaluates a policy as `principal scope && action scope && resource scope && when.. &&
//!   !unless..`, left to right with short-circuit. Scope constraints never error. A guard is the
//!   longest prefix of the conditions that the evaluator below understands completely; it is
//!   evaluated with the same short-circuit order on the same values the Cedar request carries,
//!   and it answers "false" only when Cedar's evaluation would be `false` without error. Anything
//!   it cannot tell (an unknown construct, an attribute it cannot see, a value that would make
//!   Cedar error) stops the guard and the policy goes to Cedar. A policy that is false without
//!   error is neither a deciding policy nor an error: leaving it out changes neither the
//!   decision nor its diagnostics.
//! - Attributes are left out of the Cedar request only when no policy of the slice names them
//!   (policies can read an attribute only by naming it; a policy that uses `context` as a whole
//!   gets the whole context); entities and the action hierarchy likewise (see `AttrUse`).
//! - A slice is keyed by which guards left their policy in, so one cached set serves every
//!   request with the same guard results; `EqIndex` only avoids evaluating guards that a
//!   lookup shows false.
//!
//! `tests` checks this against the full set on the bundle's test cases and on a grid of requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};
use deskgate_core::{Action, ApiId};
use serde_json::Value as Json;

/// The attributes Deskgate puts on the principal (`Staff`), in `Facts::staff` order.
pub(crate) const STAFF_ATTRS: [&str; 6] = ["role", "team", "region", "shift", "subject", "manager"];
/// The attributes Deskgate puts on the resource (`Subject`), in `Facts::subject` order.
pub(crate) const SUBJECT_ATTRS: [&str; 4] = ["tier", "status", "groups", "on_probation"];
/// The context record Deskgate sends, in `Facts::context` order.
pub(crate) const CONTEXT_ATTRS: [&str; 21] = [
    "stage",
    "risk_level",
    "evidence_classes",
    "evidence_count",
    "approvals",
    "security_officer_approvals",
    "cooling_off_elapsed",
    "break_glass",
    "requester_is_owner",
    "case_agent",
    "contact_changed_recently",
    "caller_number_differs",
    "recent_recoveries",
    "open_cases_for_subject",
    "requests_for_subject",
    "requests_from_caller_number",
    "requests_by_agent",
    "off_hours",
    "new_hire_without_factors",
    "subject_flagged",
    "channel",
];

/// Deskgate's two entity types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Staff,
    Subject,
}

/// One attribute value of a request, exactly as the Cedar request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attr<'a> {
    Str(&'a str),
    Bool(bool),
    Long(i64),
    Entity(Kind, &'a str),
    StrSet(Vec<&'a str>),
    /// An optional attribute the entity does not have.
    Absent,
}

/// The request as the guards and the Cedar request builder both see it: one source for both.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    pub principal_id: &'a str,
    pub resource_id: &'a str,
    pub action: Action,
    pub staff: [Attr<'a>; STAFF_ATTRS.len()],
    pub subject: [Attr<'a>; SUBJECT_ATTRS.len()],
    pub context: [Attr<'a>; CONTEXT_ATTRS.len()],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Principal,
    Resource,
    Context,
}

impl Var {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "principal" => Some(Self::Principal),
            "resource" => Some(Self::Resource),
            "context" => Some(Self::Context),
            _ => None,
        }
    }

    fn attrs(self) -> &'static [&'static str] {
        match self {
            Self::Principal => &STAFF_ATTRS,
            Self::Resource => &SUBJECT_ATTRS,
            Self::Context => &CONTEXT_ATTRS,
        }
    }
}

impl<'a> Facts<'a> {
    fn attr(&self, var: Var, index: usize) -> Option<&Attr<'a>> {
        match var {
            Var::Principal => self.staff.get(index),
            Var::Resource => self.subject.get(index),
            Var::Context => self.context.get(index),
        }
    }
}

/// A literal of a guard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    Str(String),
    Bool(bool),
    Long(i64),
}

#[derive(Debug, Clone)]
enum Term {
    Lit(Lit),
    Attr(Var, usize),
    /// `principal` or `resource` itself: an entity.
    Var(Var),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A boolean condition the guard evaluator understands completely.
#[derive(Debug, Clone)]
enum Pred {
    Lit(bool),
    /// A boolean attribute used as a condition.
    Attr(Var, usize),
    Has(Var, usize),
    Not(Box<Pred>),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Eq(Term, Term),
    /// `[literals].contains(term)`.
    In(Vec<Lit>, Term),
    Cmp(Cmp, Term, Term),
}

/// A value a term evaluates to.
#[derive(Debug, Clone, Copy)]
enum Val<'v> {
    Str(&'v str),
    Bool(bool),
    Long(i64),
    Entity(Kind, &'v str),
}

impl Val<'_> {
    /// Cedar's `==`: never an error, false across types.
    fn same(self, other: Val<'_>) -> bool {
        match (self, other) {
            (Val::Str(a), Val::Str(b)) => a == b,
            (Val::Bool(a), Val::Bool(b)) => a == b,
            (Val::Long(a), Val::Long(b)) => a == b,
            (Val::Entity(k, a), Val::Entity(l, b)) => k == l && a == b,
            _ => false,
        }
    }
}

impl Lit {
    fn val(&self) -> Val<'_> {
        match self {
            Self::Str(s) => Val::Str(s),
            Self::Bool(b) => Val::Bool(*b),
            Self::Long(n) => Val::Long(*n),
        }
    }
}

/// "Cannot tell": Cedar might error here or the value is not one the guard can see.
struct Unknown;

impl Term {
    fn eval<'v>(&'v self, f: &'v Facts<'_>) -> Result<Val<'v>, Unknown> {
        match self {
            Self::Lit(l) => Ok(l.val()),
            Self::Var(Var::Principal) => Ok(Val::Entity(Kind::Staff, f.principal_id)),
            Self::Var(Var::Resource) => Ok(Val::Entity(Kind::Subject, f.resource_id)),
            Self::Var(Var::Context) => Err(Unknown),
            Self::Attr(var, i) => match f.attr(*var, *i).ok_or(Unknown)? {
                Attr::Str(s) => Ok(Val::Str(s)),
                Attr::Bool(b) => Ok(Val::Bool(*b)),
                Attr::Long(n) => Ok(Val::Long(*n)),
                Attr::Entity(k, id) => Ok(Val::Entity(*k, id)),
                Attr::StrSet(_) | Attr::Absent => Err(Unknown),
            },
        }
    }
}

impl Pred {
    /// Cedar's value of the condition, when it is a boolean reached without error.
    fn eval(&self, f: &Facts<'_>) -> Result<bool, Unknown> {
        match self {
            Self::Lit(b) => Ok(*b),
            Self::Attr(var, i) => match f.attr(*var, *i) {
                Some(Attr::Bool(b)) => Ok(*b),
                _ => Err(Unknown),
            },
            Self::Has(var, i) => match f.attr(*var, *i) {
                Some(Attr::Absent) => Ok(false),
                Some(_) => Ok(true),
                None => Err(Unknown),
            },
            Self::Not(p) => p.eval(f).map(|b| !b),
            Self::And(a, b) => {
                if a.eval(f)? {
                    b.eval(f)
                } else {
                    Ok(false)
                }
            }
            Self::Or(a, b) => {
                if a.eval(f)? {
                    Ok(true)
                } else {
                    b.eval(f)
                }
            }
            Self::Eq(a, b) => Ok(a.eval(f)?.same(b.eval(f)?)),
            Self::In(set, t) => {
                let v = t.eval(f)?;
                Ok(set.iter().any(|l| l.val().same(v)))
            }
            Self::Cmp(op, a, b) => match (a.eval(f)?, b.eval(f)?) {
                (Val::Long(x), Val::Long(y)) => Ok(match op {
                    Cmp::Lt => x < y,
                    Cmp::Le => x <= y,
                    Cmp::Gt => x > y,
                    Cmp::Ge => x >= y,
                }),
                _ => Err(Unknown),
            },
        }
    }
}

fn one<'j>(json: &'j Json, key: &str) -> Option<&'j Json> {
    let map = json.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.get(key)
}

fn lit(json: &Json) -> Option<Lit> {
    match one(json, "Value")? {
        Json::String(s) => Some(Lit::Str(s.clone())),
        Json::Bool(b) => Some(Lit::Bool(*b)),
        Json::Number(n) => n.as_i64().map(Lit::Long),
        _ => None,
    }
}

fn var(json: &Json) -> Option<Var> {
    one(json, "Var")?.as_str().and_then(Var::parse)
}

/// `var.attr` with `attr` one Deskgate sends.
fn attr(json: &Json) -> Option<(Var, usize)> {
    let node = one(json, ".")?;
    let v = var(node.get("left")?)?;
    let name = node.get("attr")?.as_str()?;
    let index = v.attrs().iter().position(|a| *a == name)?;
    Some((v, index))
}

fn term(json: &Json) -> Option<Term> {
    if let Some(l) = lit(json) {
        return Some(Term::Lit(l));
    }
    if let Some((v, i)) = attr(json) {
        return Some(Term::Attr(v, i));
    }
    match var(json)? {
        v @ (Var::Principal | Var::Resource) => Some(Term::Var(v)),
        Var::Context => None,
    }
}

fn binary<'j>(json: &'j Json, op: &str) -> Option<(&'j Json, &'j Json)> {
    let node = one(json, op)?;
    Some((node.get("left")?, node.get("right")?))
}

/// Reads a condition the evaluator understands; `None` for anything else.
fn pred(json: &Json) -> Option<Pred> {
    if let Some(Lit::Bool(b)) = lit(json) {
        return Some(Pred::Lit(b));
    }
    if let Some((v, i)) = attr(json) {
        return Some(Pred::Attr(v, i));
    }
    if let Some(node) = one(json, "has") {
        let v = var(node.get("left")?)?;
        let name = node.get("attr")?.as_str()?;
        let index = v.attrs().iter().position(|a| *a == name)?;
        return Some(Pred::Has(v, index));
    }
    if let Some(node) = one(json, "!") {
        return Some(Pred::Not(Box::new(pred(node.get("arg")?)?)));
    }
    if let Some((l, r)) = binary(json, "&&") {
        return Some(Pred::And(Box::new(pred(l)?), Box::new(pred(r)?)));
    }
    if let Some((l, r)) = binary(json, "||") {
        return Some(Pred::Or(Box::new(pred(l)?), Box::new(pred(r)?)));
    }
    if let Some((l, r)) = binary(json, "==") {
        return Some(Pred::Eq(term(l)?, term(r)?));
    }
    if let Some((l, r)) = binary(json, "!=") {
        return Some(Pred::Not(Box::new(Pred::Eq(term(l)?, term(r)?))));
    }
    if let Some((l, r)) = binary(json, "contains") {
        let set = one(l, "Set")?.as_array()?;
        let lits = set.iter().map(lit).collect::<Option<Vec<_>>>()?;
        return Some(Pred::In(lits, term(r)?));
    }
    for (op, cmp) in [
        ("<", Cmp::Lt),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        (">=", Cmp::Ge),
    ] {
        if let Some((l, r)) = binary(json, op) {
            return Some(Pred::Cmp(cmp, term(l)?, term(r)?));
        }
    }
    None
}

/// The conditions of a policy in Cedar's evaluation order: each `when` split at its top-level
/// `&&`, each `unless` negated whole.
fn conjuncts(json: &Json, out: &mut Vec<Json>) {
    match binary(json, "&&") {
        Some((l, r)) => {
            conjuncts(l, out);
            conjuncts(r, out);
        }
        None => out.push(json.clone()),
    }
}

/// What a policy's scope and leading conditions say, in evaluation order.
#[derive(Debug, Clone)]
struct Guard {
    /// Bit `i` set: the action scope admits `Action::all()[i]`.
    actions: u32,
    /// The principal or resource scope can never hold for Deskgate's entity types.
    scope_false: bool,
    /// The leading conditions the evaluator understands, up to the first one it does not.
    conds: Vec<Pred>,
    /// Evaluated through an `EqIndex` rather than by the scan of every guard.
    indexed: bool,
}

impl Guard {
    /// True when Cedar would find the policy false without error.
    fn rules_out(&self, facts: &Facts<'_>, action_bit: u32) -> bool {
        if self.scope_false || self.actions & action_bit == 0 {
            return true;
        }
        for c in &self.conds {
            match c.eval(facts) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(Unknown) => return false,
            }
        }
        false
    }
}

/// What a set of policies can read: a bit per entry of the attribute tables, and whether they
/// test the action hierarchy. An entity none of whose attributes is read is left out of the
/// request's entities: Cedar dereferences an entity only to read an attribute or tag, or for
/// `in`, and Deskgate's staff and subject entities have no parents, so `in` on them is equality
/// whether they are present or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AttrUse {
    pub staff: u32,
    pub subject: u32,
    pub context: u32,
    /// Some policy uses `in` (in its action scope or a condition), which reads the schema's
    /// action entities; without one, the request's entities need not carry them. Nothing else in
    /// Cedar reads an action entity (actions have no attributes or tags).
    pub action_entities: bool,
}

impl AttrUse {
    pub(crate) const ALL: Self = Self {
        staff: u32::MAX,
        subject: u32::MAX,
        context: u32::MAX,
        action_entities: true,
    };

    fn union(self, o: Self) -> Self {
        Self {
            staff: self.staff | o.staff,
            subject: self.subject | o.subject,
            context: self.context | o.context,
            action_entities: self.action_entities || o.action_entities,
        }
    }

    fn name(&mut self, name: &str) {
        for (table, bits) in [
            (&STAFF_ATTRS[..], &mut self.staff),
            (&SUBJECT_ATTRS[..], &mut self.subject),
            (&CONTEXT_ATTRS[..], &mut self.context),
        ] {
            if let Some(i) = table.iter().position(|a| *a == name) {
                *bits |= 1 << i;
            }
        }
    }
}

/// Every attribute name a policy's conditions mention (in `.` and `has`, whatever the base),
/// whether they use `context` other than to read one attribute, and whether they use `in`.
fn uses(json: &Json, out: &mut AttrUse) {
    match json {
        Json::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("." | "has", Json::Object(node)) => {
                        match node.get("attr") {
                            Some(Json::String(name)) => out.name(name),
                            Some(Json::Array(names)) => {
                                names
                                    .iter()
                                    .filter_map(Json::as_str)
                                    .for_each(|n| out.name(n));
                            }
                            _ => {}
                        }
                        for (k, v) in node {
                            // `context.x`: the base is read through the attribute only.
                            if k == "left" && var(v) == Some(Var::Context) {
                                continue;
                            }
                            uses(v, out);
                        }
                    }
                    ("Var", Json::String(v)) if v == "context" => out.context = u32::MAX,
                    ("in", _) => {
                        out.action_entities = true;
                        uses(value, out);
                    }
                    // A tag read names no attribute but tells a missing entity from one without
                    // the tag: keep both entities.
                    ("getTag" | "hasTag", _) => {
                        out.staff = u32::MAX;
                        out.subject = u32::MAX;
                        uses(value, out);
                    }
                    _ => uses(value, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|i| uses(i, out)),
        _ => {}
    }
}

/// The policies handed to Cedar for one combination of guards, and what they can read.
#[derive(Debug)]
pub(crate) struct Slice {
    pub set: PolicySet,
    pub uses: AttrUse,
}

/// How many combinations of guard results keep their slice; real traffic has a few dozen.
const CACHE_LIMIT: usize = 1024;

/// Guards whose first condition is `attribute == "literal"` on one string attribute, by literal.
/// The request's value of the attribute picks the only ones that can hold: every other one's
/// first condition is false (the attribute is a string the request carries, so no error).
/// Bundles accumulate such rules (a region, a team, a tier each), and this keeps a decision from
/// scanning them all.
#[derive(Debug, Clone)]
struct EqIndex {
    var: Var,
    attr: usize,
    by_value: HashMap<String, Vec<usize>>,
    all: Vec<usize>,
}

/// Below this many guards on one attribute a scan is as cheap as a hash lookup.
const INDEX_MIN: usize = 4;

fn first_eq(g: &Guard) -> Option<(Var, usize, &str)> {
    match g.conds.first()? {
        Pred::Eq(Term::Attr(v, i), Term::Lit(Lit::Str(s)))
        | Pred::Eq(Term::Lit(Lit::Str(s)), Term::Attr(v, i)) => Some((*v, *i, s)),
        _ => None,
    }
}

fn build_indexes(guards: &mut [Guard]) -> Vec<EqIndex> {
    let mut groups: Vec<EqIndex> = Vec::new();
    for (n, g) in guards.iter().enumerate() {
        let Some((var, attr, value)) = first_eq(g) else {
            continue;
        };
        let at = match groups.iter().position(|x| x.var == var && x.attr == attr) {
            Some(at) => at,
            None => {
                groups.push(EqIndex {
                    var,
                    attr,
                    by_value: HashMap::new(),
                    all: Vec::new(),
                });
                groups.len() - 1
            }
        };
        if let Some(group) = groups.get_mut(at) {
            group.by_value.entry(value.to_owned()).or_default().push(n);
            group.all.push(n);
        }
    }
    groups.retain(|x| x.all.len() >= INDEX_MIN);
    for n in groups.iter().flat_map(|x| &x.all) {
        if let Some(g) = guards.get_mut(*n) {
            g.indexed = true;
        }
    }
    groups
}

/// The guards of a bundle's policies and the cache of slices.
#[derive(Debug, Clone)]
pub(crate) struct Slicer {
    policies: Vec<Policy>,
    guards: Vec<Guard>,
    indexes: Vec<EqIndex>,
    uses: Vec<AttrUse>,
    full: Arc<Slice>,
    cache: Arc<RwLock<HashMap<Vec<u64>, Arc<Slice>>>>,
}

/// The bit of `action` in `Guard::actions`; an action outside the table rules nothing out.
fn action_bit(action: Action) -> u32 {
    Action::all()
        .iter()
        .position(|a| *a == action)
        .map_or(u32::MAX, |i| 1 << i)
}

/// Whether action `a` is `group` or one of its members in the schema's action hierarchy.
fn in_group(action_entities: &Entities, a: &EntityUid, group: &EntityUid) -> bool {
    a == group
        || action_entities
            .ancestors(a)
            .is_some_and(|mut it| it.any(|g| g == group))
}

/// The bits (in `Action::all` order) of the actions `p`'s action scope admits.
fn action_mask(
    p: &Policy,
    actions: &HashMap<Action, EntityUid>,
    action_entities: &Entities,
) -> u32 {
    let mut mask = 0u32;
    for (i, a) in Action::all().iter().enumerate() {
        let admitted = match (actions.get(a), p.action_constraint()) {
            (_, ActionConstraint::Any) => true,
            (Some(uid), ActionConstraint::Eq(e)) => *uid == e,
            (Some(uid), ActionConstraint::In(groups)) => {
                groups.iter().any(|g| in_group(action_entities, uid, g))
            }
            (None, _) => true,
        };
        if admitted {
            mask |= 1 << i;
        }
    }
    mask
}

/// Whether `p`'s principal or resource scope names a type Deskgate never sends there.
fn scope_false(p: &Policy, staff_type: &EntityTypeName, subject_type: &EntityTypeName) -> bool {
    (match p.principal_constraint() {
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => t != *staff_type,
        _ => false,
    }) || match p.resource_constraint() {
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => t != *subject_type,
        _ => false,
    }
}

/// The policy's `when` conjuncts and negated `unless` bodies, in Cedar's evaluation order; an
/// unknown clause kind becomes `null`, which no guard understands.
fn flat_conditions(json: &Json) -> Vec<Json> {
    let mut flat = Vec::new();
    for clause in json
        .get("conditions")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let body = clause.get("body").cloned().unwrap_or(Json::Null);
        match clause.get("kind").and_then(Json::as_str) {
            Some("when") => conjuncts(&body, &mut flat),
            Some("unless") => flat.push(serde_json::json!({ "!": { "arg": body } })),
            _ => flat.push(Json::Null),
        }
    }
    flat
}

/// The guard's conditions (the longest prefix the evaluator understands) and what the policy
/// reads.
fn conditions_and_uses(p: &Policy) -> (Vec<Pred>, AttrUse) {
    let mut conds = Vec::new();
    let mut policy_uses = AttrUse {
        action_entities: matches!(p.action_constraint(), ActionConstraint::In(_)),
        ..AttrUse::default()
    };
    let json = p.to_json().ok();
    match &json {
        Some(json) => {
            for c in &flat_conditions(json) {
                match pred(c) {
                    Some(cond) => conds.push(cond),
                    None => break,
                }
            }
            if let Some(conditions) = json.get("conditions") {
                uses(conditions, &mut policy_uses);
            }
        }
        // Unreadable: no guard, and Cedar gets every attribute.
        None => policy_uses = AttrUse::ALL,
    }
    (conds, policy_uses)
}

impl Slicer {
    pub(crate) fn new(
        set: &PolicySet,
        actions: &HashMap<Action, EntityUid>,
        action_entities: &Entities,
        staff_type: &EntityTypeName,
        subject_type: &EntityTypeName,
    ) -> Self {
        let mut policies = Vec::new();
        let mut guards = Vec::new();
        let mut uses_of = Vec::new();
        for p in set.policies() {
            let (conds, policy_uses) = conditions_and_uses(p);
            policies.push(p.clone());
            guards.push(Guard {
                actions: action_mask(p, actions, action_entities),
                scope_false: scope_false(p, staff_type, subject_type),
                conds,
                indexed: false,
            });
            uses_of.push(policy_uses);
        }
        let indexes = build_indexes(&mut guards);
        Self {
            policies,
            guards,
            indexes,
            uses: uses_of,
            full: Arc::new(Slice {
                set: set.clone(),
                uses: AttrUse::ALL,
            }),
            cache: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The policies Cedar must evaluate for `facts`. Slices are cached per combination of guard
    /// results, up to `CACHE_LIMIT` combinations; past it a slice is built for the one decision.
    pub(crate) fn slice(&self, facts: &Facts<'_>) -> Arc<Slice> {
        let bit = action_bit(facts.action);
        let mut key = vec![0u64; self.guards.len().div_ceil(64)];
        let mut check = |i: usize| {
            if let Some(g) = self.guards.get(i)
                && !g.rules_out(facts, bit)
                && let Some(word) = key.get_mut(i / 64)
            {
                *word |= 1 << (i % 64);
            }
        };
        for (i, g) in self.guards.iter().enumerate() {
            if !g.indexed {
                check(i);
            }
        }
        for x in &self.indexes {
            match facts.attr(x.var, x.attr) {
                Some(Attr::Str(v)) => x
                    .by_value
                    .get(*v)
                    .into_iter()
                    .flatten()
                    .for_each(|i| check(*i)),
                _ => x.all.iter().for_each(|i| check(*i)),
            }
        }
        if let Ok(cache) = self.cache.read()
            && let Some(s) = cache.get(&key)
        {
            return Arc::clone(s);
        }
        let kept = |i: usize| key.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
        let mut uses = AttrUse::default();
        let mut chosen = Vec::new();
        for (i, p) in self.policies.iter().enumerate() {
            if kept(i) {
                chosen.push(p.clone());
                uses = uses.union(self.uses.get(i).copied().unwrap_or(AttrUse::ALL));
            }
        }
        let Ok(set) = PolicySet::from_policies(chosen) else {
            return Arc::clone(&self.full);
        };
        let slice = Arc::new(Slice { set, uses });
        if let Ok(mut cache) = self.cache.write()
            && cache.len() < CACHE_LIMIT
        {
            cache.insert(key, Arc::clone(&slice));
        }
        slice
    }

    /// Every policy, with every attribute: the request as it was before slicing.
    #[cfg(test)]
    pub(crate) fn full(&self) -> Arc<Slice> {
        Arc::clone(&self.full)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::fmt::Write as _;

    use deskgate_core::{ApproverRole, ContactKind, IndependenceClass, Role, SubjectStatus, Tier};

    use super::*;
    use crate::bundle::Bundle;
    use crate::decide::{ApprovalInput, DecisionRequest, EvidenceInput, Stage};
    use crate::risk::{ContactChange, RiskSignals};

    /// Policies that exercise every kind of guard, conditions that error before and after a
    /// guard, and attribute reads through another entity.
    const EXTRA: &str = r#"
@id("x-error-after-guard")
forbid (principal, action, resource)
when { resource.tier == "privileged" && context.requests_by_agent + 9223372036854775807 > 0 };

@id("x-error-before-guard")
forbid (principal, action, resource)
when { context.requests_by_agent + 9223372036854775807 > 0 && resource.tier == "executive" };

@id("x-own-subject-tier")
forbid (principal, action, resource)
when { principal has subject && principal.subject.tier == "executive" };

@id("x-typed-scope")
permit (principal is Staff, action in Action::"high_risk_change", resource is Subject)
when { context.stage == "open" || (context.recent_recoveries < 2 && resource.status != "locked") }
unless { context.off_hours || principal == context.case_agent };

@id("x-team-shift")
forbid (principal, action == Action::"account_unlock", resource)
when { principal.team == "night-desk" && principal.shift != "day" && !context.caller_number_differs };
"#;

    /// The default bundle with 40 filler policies (as the benchmark grows it) and `extra`.
    fn grown(extra: &str) -> Bundle {
        let mut files = Bundle::default_bundle().unwrap().files().clone();
        let mut filler = String::new();
        for n in 0..40 {
            writeln!(
                filler,
                "@id(\"embargo-{n}\")\nforbid (principal, action, resource)\n\
                 when {{ principal.region == \"region-{n}\" && resource.groups.contains(\"embargo-{n}\") }};\n"
            )
            .unwrap();
        }
        files.insert("policies/filler.cedar".to_owned(), filler);
        files.insert("policies/extra.cedar".to_owned(), extra.to_owned());
        Bundle::from_files(files).unwrap()
    }

    fn assert_same(bundle: &Bundle, req: &DecisionRequest) {
        let sliced = bundle.evaluate(req).unwrap();
        let full = bundle.evaluate_unsliced(req).unwrap();
        assert_eq!(sliced, full, "sliced and full decisions differ on {req:#?}");
    }

    #[test]
    fn slicing_decides_every_bundle_case_at_every_stage_like_the_full_set() {
        let bundle = Bundle::default_bundle().unwrap();
        assert!(!bundle.test_cases().is_empty());
        for case in bundle.test_cases() {
            for stage in [Stage::Open, Stage::Approve, Stage::Execute] {
                let mut req = case.request.clone();
                req.stage = stage;
                assert_same(&bundle, &req);
            }
        }
        let grown = grown(EXTRA);
        for case in grown.test_cases() {
            assert_same(&grown, &case.request);
        }
    }

    /// A small deterministic generator, so a failure names a reproducible request.
    struct Lcg(u64);

    impl Lcg {
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let i = usize::try_from(self.0 >> 33).unwrap() % items.len();
            &items[i]
        }
    }

    #[test]
    fn slicing_matches_the_full_set_on_a_grid_of_requests_with_errors_and_all_guard_kinds() {
        let bundle = grown(EXTRA);
        let mut rng = Lcg(7);
        let mut errors = 0;
        let mut outcomes = std::collections::HashSet::new();
        for _ in 0..600 {
            let mut req = crate::decide::probe_request(*rng.pick(Action::all()));
            req.stage = *rng.pick(&[Stage::Open, Stage::Approve, Stage::Execute]);
            req.principal.id = (*rng.pick(&["staff-a", "staff-b"])).to_owned();
            req.case_agent_id = (*rng.pick(&["staff-a", "staff-b"])).to_owned();
            req.principal.role = *rng.pick(Role::all());
            req.principal.region = (*rng.pick(&["emea", "region-3", "region-39"])).to_owned();
            req.principal.team = (*rng.pick(&["service-desk", "night-desk"])).to_owned();
            req.principal.shift = (*rng.pick(&["day", "night"])).to_owned();
            req.subject.id = (*rng.pick(&["u-1", "u-own", "u-boss"])).to_owned();
            req.principal.subject_id = rng.pick(&[None, Some("u-own")]).map(str::to_owned);
            req.principal.manager_id = rng.pick(&[None, Some("u-boss")]).map(str::to_owned);
            req.subject.tier = *rng.pick(Tier::all());
            req.subject.status = *rng.pick(SubjectStatus::all());
            req.subject.on_probation = *rng.pick(&[false, false, true]);
            req.subject.groups = rng
                .pick(&[&[][..], &["embargo-3"][..], &["staff", "embargo-39"][..]])
                .iter()
                .map(|g| (*g).to_owned())
                .collect();
            req.break_glass = *rng.pick(&[false, false, true]);
            req.requester_is_owner = *rng.pick(&[false, true]);
            req.channel = *rng.pick(deskgate_core::Channel::all());
            req.waited_minutes = *rng.pick(&[0, 60 * 24 * 7]);
            let classes = [
                IndependenceClass::DeviceOfRecord,
                IndependenceClass::GovernmentId,
                IndependenceClass::Manager,
                IndependenceClass::PhoneOfRecord,
                IndependenceClass::Knowledge,
            ];
            req.evidence = (0..*rng.pick(&[0, 1, 2, 3, 4]))
                .map(|_| EvidenceInput::from_class(*rng.pick(&classes)))
                .collect();
            req.approvals = (0..*rng.pick(&[0, 1, 2, 3]))
                .enumerate()
                .map(|(i, _)| ApprovalInput {
                    approver_id: format!("approver-{i}"),
                    role: *rng.pick(&[
                        ApproverRole::Manager,
                        ApproverRole::Owner,
                        ApproverRole::Supervisor,
                        ApproverRole::SecurityOfficer,
                    ]),
                })
                .collect();
            req.signals = RiskSignals {
                contact_changes: rng
                    .pick(&[&[][..], &[3][..], &[400][..]])
                    .iter()
                    .map(|d| ContactChange {
                        kind: ContactKind::Email,
                        days_ago: *d,
                    })
                    .collect(),
                recent_recoveries: *rng.pick(&[0, 1, 3]),
                requests_by_agent: *rng.pick(&[0, 0, 1, 40]),
                requests_for_subject: *rng.pick(&[1, 5]),
                caller_number_differs: *rng.pick(&[false, true]),
                subject_local_hour: *rng.pick(&[None, Some(3), Some(10)]),
                subject_flagged: *rng.pick(&[false, false, false, true]),
                ..RiskSignals::default()
            };
            let sliced = bundle.evaluate(&req).unwrap();
            assert_eq!(
                sliced,
                bundle.evaluate_unsliced(&req).unwrap(),
                "sliced and full decisions differ on {req:#?}"
            );
            if sliced
                .reasons
                .iter()
                .any(|r| r.contains("evaluation error"))
            {
                errors += 1;
            }
            outcomes.insert(sliced.outcome);
        }
        // The grid must reach Cedar's errors and every outcome, or it proves little.
        assert!(
            errors > 20,
            "only {errors} requests hit an evaluation error"
        );
        assert_eq!(outcomes.len(), 3, "outcomes reached: {outcomes:?}");
    }

    #[test]
    fn a_routine_request_hands_cedar_a_few_policies_with_only_the_attributes_they_read() {
        let bundle = grown("");
        let mut req = crate::decide::probe_request(Action::MfaReset);
        req.stage = Stage::Execute;
        req.evidence = vec![
            EvidenceInput::from_class(IndependenceClass::DeviceOfRecord),
            EvidenceInput::from_class(IndependenceClass::PhoneOfRecord),
        ];
        let p = bundle.prepare(&req);
        let facts = bundle.facts(&req, req.stage, &p);
        let slice = bundle.slicer.slice(&facts);
        let ids: Vec<String> = slice.set.policies().map(|p| p.id().to_string()).collect();
        assert!(bundle.policy_count() > 60);
        assert!(ids.len() <= 4, "{} policies left: {ids:?}", ids.len());
        assert!(ids.contains(&"execute-strong-two-classes".to_owned()));
        // The filler reads region and groups; this slice does not need them.
        assert_eq!(slice.uses.staff & (1 << 2), 0);
        assert_eq!(slice.uses.context & (1 << 12), 0);
        assert_eq!(
            bundle.evaluate(&req).unwrap().outcome,
            crate::Outcome::Allow
        );
        // The 40 region rules are reached through one lookup, not 40 comparisons.
        assert!(bundle.slicer.indexes.iter().any(|x| x.var == Var::Principal
            && STAFF_ATTRS[x.attr] == "region"
            && x.all.len() == 40));
        // The same combination comes from the cache.
        assert!(Arc::ptr_eq(&slice, &bundle.slicer.slice(&facts)));
    }

    #[test]
    fn context_table_matches_the_default_schema() {
        let schema = include_str!("../../../policies/default/schema.cedarschema");
        for name in CONTEXT_ATTRS
            .iter()
            .chain(&STAFF_ATTRS)
            .chain(&SUBJECT_ATTRS)
        {
            assert!(
                schema.contains(&format!("  {name}")),
                "{name} is not declared in the default schema"
            );
        }
    }
}
