//! Policy bundle loading: a directory (or the compiled-in default) holding `schema.cedarschema`,
//! `policies/*.cedar`, `playbooks.toml`, `risk.toml` and `tests/*.toml`. Loading parses every
//! file, validates the Cedar policies against the schema in strict mode and cross-checks the
//! schema against Deskgate's actions and request shape. Any problem refuses the whole bundle, so a
//! running server keeps its previous one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Effect, Entities, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Schema,
    ValidationMode, Validator,
};
use deskgate_core::{Action, ApiId};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::analyze::Gates;
use crate::error::{BundleError, Problem, ProblemKind};
use crate::playbook::{Playbooks, toml_problem};
use crate::risk::RiskThresholds;
use crate::slice::Slicer;
use crate::source::line_of;
use crate::testing::{TestCase, parse_cases};

include!(concat!(env!("OUT_DIR"), "/default_bundle.rs"));

const SCHEMA_FILE: &str = "schema.cedarschema";
const PLAYBOOKS_FILE: &str = "playbooks.toml";
const RISK_FILE: &str = "risk.toml";
const GATES_FILE: &str = "gates.toml";

/// Annotation naming a policy; every policy must carry one, and decisions report it.
pub const ID_ANNOTATION: &str = "id";
/// Annotation giving the human-readable reason a decision reports for a policy.
pub const REASON_ANNOTATION: &str = "reason";
/// Annotation marking a forbid policy as an escalation rather than a hard denial.
pub const ESCALATE_ANNOTATION: &str = "escalate";

/// Where a policy came from and what its annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub id: String,
    pub file: String,
    pub line: Option<usize>,
    pub effect: Effect,
    pub reason: Option<String>,
    /// `Some(role)` for a forbid policy annotated `@escalate("role")`.
    pub escalate_to: Option<String>,
}

/// A loaded, validated policy bundle. Immutable: reloading builds a new one.
#[derive(Debug, Clone)]
pub struct Bundle {
    files: BTreeMap<String, String>,
    digest: String,
    pub(crate) schema: Schema,
    /// The permit policies alone: what the evidence layer of Cedar says, guardrails aside.
    pub(crate) permits: PolicySet,
    pub(crate) info: HashMap<String, PolicyInfo>,
    pub(crate) actions: HashMap<Action, EntityUid>,
    /// The schema's action entities (with their groups), added to every request's entities.
    pub(crate) action_entities: Entities,
    pub(crate) staff_type: EntityTypeName,
    pub(crate) subject_type: EntityTypeName,
    pub(crate) playbooks: Playbooks,
    pub(crate) thresholds: RiskThresholds,
    pub(crate) tests: Vec<TestCase>,
    /// Bounds on the attack paths (`gates.toml`; none when the file is absent).
    pub(crate) gates: Gates,
    /// Every policy, re-identified by its `@id`, with the guards that pick which of them a
    /// decision hands to Cedar.
    pub(crate) slicer: Slicer,
}

/// Which relative paths belong to a bundle; anything else in the directory (a README) is ignored
/// and does not enter the digest.
fn is_bundle_file(rel: &str) -> bool {
    let in_dir = |dir: &str, ext: &str| {
        rel.strip_prefix(dir)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|name| !name.contains('/') && name.ends_with(ext))
    };
    rel == SCHEMA_FILE
        || rel == PLAYBOOKS_FILE
        || rel == RISK_FILE
        || rel == GATES_FILE
        || in_dir("policies", ".cedar")
        || in_dir("tests", ".toml")
}

/// SHA-256 over the sorted files: a version tag, the file count, then for each file its path
/// and contents, each preceded by its length as a big-endian u64 so no two bundles frame alike.
fn digest_of(files: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(b"deskgate-policy-bundle-v1\n");
    h.update((files.len() as u64).to_be_bytes());
    for (path, text) in files {
        h.update((path.len() as u64).to_be_bytes());
        h.update(path.as_bytes());
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}

fn read_dir_files(root: &Path) -> Result<BTreeMap<String, String>, BundleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    let mut files = BTreeMap::new();
    for rel in [SCHEMA_FILE, PLAYBOOKS_FILE, RISK_FILE, GATES_FILE] {
        let path = root.join(rel);
        if path.is_file() {
            files.insert(
                rel.to_owned(),
                std::fs::read_to_string(&path).map_err(io(&path))?,
            );
        }
    }
    for dir in ["policies", "tests"] {
        let path = root.join(dir);
        if !path.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&path).map_err(io(&path))? {
            let entry = entry.map_err(io(&path))?;
            let file = entry.path();
            let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
            if file.is_file() && is_bundle_file(&rel) {
                files.insert(rel, std::fs::read_to_string(&file).map_err(io(&file))?);
            }
        }
    }
    Ok(files)
}

fn first_label_line(text: &str, d: &dyn Diagnostic) -> Option<usize> {
    d.labels()
        .and_then(|mut labels| labels.next())
        .map(|l| line_of(text, l.offset()))
}

fn diagnostic_message(d: &dyn Diagnostic) -> String {
    match d.help() {
        Some(help) => format!("{d}; {help}"),
        None => d.to_string(),
    }
}

fn problem(kind: ProblemKind, file: &str, line: Option<usize>, message: String) -> Problem {
    Problem {
        kind,
        file: file.to_owned(),
        line,
        message,
    }
}

fn entity_type(name: &str) -> Result<EntityTypeName, Problem> {
    EntityTypeName::from_str(name).map_err(|e| {
        problem(
            ProblemKind::Schema,
            SCHEMA_FILE,
            None,
            format!("entity type {name}: {e}"),
        )
    })
}

/// The schema's actions (groups excluded) must be exactly Deskgate's recovery actions.
fn check_actions(
    schema: &Schema,
    text: &str,
    problems: &mut Vec<Problem>,
) -> HashMap<Action, EntityUid> {
    let groups: Vec<&EntityUid> = schema.action_groups().collect();
    let declared: Vec<&EntityUid> = schema.actions().filter(|a| !groups.contains(a)).collect();
    let mut map = HashMap::new();
    for action in Action::all() {
        let id = action.api_id();
        match declared.iter().find(|uid| uid.id().unescaped() == id) {
            Some(uid) => {
                map.insert(*action, (*uid).clone());
            }
            None => problems.push(problem(
                ProblemKind::UnknownAction,
                SCHEMA_FILE,
                None,
                format!("the schema declares no action {id:?}, which Deskgate requests"),
            )),
        }
    }
    for uid in declared {
        let name = uid.id().unescaped();
        if Action::from_api_id(name).is_none() {
            problems.push(problem(
                ProblemKind::UnknownAction,
                SCHEMA_FILE,
                text.find(name).map(|at| line_of(text, at)),
                format!(
                    "the schema declares action {name:?}, which is not a Deskgate recovery action \
                     (an action group needs no appliesTo)"
                ),
            ));
        }
    }
    map
}

/// Parses one policy file, re-identifies its policies by `@id` and records where they came from.
fn load_policy_file(
    file: &str,
    text: &str,
    all: &mut PolicySet,
    info: &mut HashMap<String, PolicyInfo>,
    problems: &mut Vec<Problem>,
) {
    let Some(parsed) = parse_policy_file(file, text, problems) else {
        return;
    };
    if parsed.templates().next().is_some() {
        problems.push(problem(
            ProblemKind::PolicyId,
            file,
            None,
            "templates are not supported in a policy bundle".to_owned(),
        ));
    }
    for (index, policy) in in_file_order(&parsed).into_iter().enumerate() {
        let Some(id) = policy.annotation(ID_ANNOTATION).map(str::to_owned) else {
            problems.push(problem(
                ProblemKind::PolicyId,
                file,
                None,
                format!(
                    "policy number {} in this file has no @id annotation",
                    index + 1
                ),
            ));
            continue;
        };
        add_policy(file, text, id, policy, all, info, problems);
    }
}

/// Cedar's parse of one policy file; a syntax error records one problem per error and yields
/// nothing.
fn parse_policy_file(file: &str, text: &str, problems: &mut Vec<Problem>) -> Option<PolicySet> {
    match PolicySet::from_str(text) {
        Ok(p) => Some(p),
        Err(errors) => {
            for e in errors.iter() {
                problems.push(problem(
                    ProblemKind::CedarSyntax,
                    file,
                    first_label_line(text, e),
                    diagnostic_message(e),
                ));
            }
            None
        }
    }
}

/// The file's policies in the order they appear in it.
fn in_file_order(parsed: &PolicySet) -> Vec<&Policy> {
    // Cedar names parsed policies policy0, policy1...; sort by that to report in file order.
    let mut policies: Vec<_> = parsed.policies().collect();
    policies.sort_by_key(|p| {
        p.id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    policies
}

/// Adds one policy under its `@id` to the bundle's set, unless the id is taken or Cedar refuses
/// it, and records where it came from.
fn add_policy(
    file: &str,
    text: &str,
    id: String,
    policy: &Policy,
    all: &mut PolicySet,
    info: &mut HashMap<String, PolicyInfo>,
    problems: &mut Vec<Problem>,
) {
    let line = text
        .find(&format!("@{ID_ANNOTATION}(\"{id}\")"))
        .map(|at| line_of(text, at));
    if let Some(previous) = info.get(&id) {
        problems.push(problem(
            ProblemKind::PolicyId,
            file,
            line,
            format!("policy id {id:?} is already used in {}", previous.file),
        ));
        return;
    }
    let escalate_to = policy.annotation(ESCALATE_ANNOTATION).map(str::to_owned);
    if escalate_to.is_some() && policy.effect() != Effect::Forbid {
        problems.push(problem(
            ProblemKind::PolicyId,
            file,
            line,
            format!("policy {id:?}: only forbid policies can be @escalate"),
        ));
    }
    if let Err(e) = all.add(policy.new_id(PolicyId::new(&id))) {
        problems.push(problem(ProblemKind::PolicyId, file, line, e.to_string()));
        return;
    }
    info.insert(
        id.clone(),
        PolicyInfo {
            id,
            file: file.to_owned(),
            line,
            effect: policy.effect(),
            reason: policy.annotation(REASON_ANNOTATION).map(str::to_owned),
            escalate_to,
        },
    );
}

/// The text of a required bundle file, or a `MissingFile` problem.
fn required<'a>(
    files: &'a BTreeMap<String, String>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a str> {
    match files.get(name) {
        Some(t) => Some(t.as_str()),
        None => {
            problems.push(problem(
                ProblemKind::MissingFile,
                name,
                None,
                "required file is missing".to_owned(),
            ));
            None
        }
    }
}

/// `risk.toml`, parsed and checked.
fn load_thresholds(
    files: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> Option<RiskThresholds> {
    let text = required(files, RISK_FILE, problems)?;
    match toml::from_str::<RiskThresholds>(text) {
        Ok(t) => {
            for message in t.check() {
                problems.push(problem(ProblemKind::Thresholds, RISK_FILE, None, message));
            }
            Some(t)
        }
        Err(e) => {
            problems.push(toml_problem(RISK_FILE, text, &e));
            None
        }
    }
}

/// The schema and what is read from it: Deskgate's actions and the action entities.
struct SchemaParts {
    schema: Option<Schema>,
    actions: HashMap<Action, EntityUid>,
    action_entities: Option<Entities>,
}

/// `schema.cedarschema`, parsed, with its actions checked against Deskgate's.
fn load_schema(files: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> SchemaParts {
    let schema_text = required(files, SCHEMA_FILE, problems);
    let schema = schema_text.and_then(|text| match Schema::from_cedarschema_str(text) {
        Ok((schema, _warnings)) => Some(schema),
        Err(e) => {
            problems.push(problem(
                ProblemKind::Schema,
                SCHEMA_FILE,
                first_label_line(text, &e),
                diagnostic_message(&e),
            ));
            None
        }
    });
    let actions = match (&schema, schema_text) {
        (Some(s), Some(text)) => check_actions(s, text, problems),
        _ => HashMap::new(),
    };
    let action_entities = schema.as_ref().and_then(|s| match s.action_entities() {
        Ok(e) => Some(e),
        Err(e) => {
            problems.push(problem(
                ProblemKind::Schema,
                SCHEMA_FILE,
                None,
                e.to_string(),
            ));
            None
        }
    });
    SchemaParts {
        schema,
        actions,
        action_entities,
    }
}

/// Every policy of `policies/*.cedar` under its `@id`, the permits alone, and where each came
/// from.
struct LoadedPolicies {
    all: PolicySet,
    permits: PolicySet,
    info: HashMap<String, PolicyInfo>,
}

/// Loads `policies/*.cedar`, validates them against the schema (when it parsed) and sets the
/// permits apart.
fn load_policies(
    files: &BTreeMap<String, String>,
    schema: Option<&Schema>,
    problems: &mut Vec<Problem>,
) -> LoadedPolicies {
    let mut all = PolicySet::new();
    let mut info = HashMap::new();
    let policy_files: Vec<(&String, &String)> = files
        .iter()
        .filter(|(path, _)| path.starts_with("policies/"))
        .collect();
    if policy_files.is_empty() {
        problems.push(problem(
            ProblemKind::MissingFile,
            "policies/",
            None,
            "the bundle has no policies/*.cedar file".to_owned(),
        ));
    }
    for (file, text) in &policy_files {
        load_policy_file(file, text, &mut all, &mut info, problems);
    }
    if let Some(schema) = schema {
        validate_policies(files, schema, &all, &info, problems);
    }
    let permits = permits_of(&all, problems);
    LoadedPolicies { all, permits, info }
}

/// Cedar's strict validation of the policies against the schema, each error reported in the
/// policy's file.
fn validate_policies(
    files: &BTreeMap<String, String>,
    schema: &Schema,
    policies: &PolicySet,
    info: &HashMap<String, PolicyInfo>,
    problems: &mut Vec<Problem>,
) {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    for e in result.validation_errors() {
        let id = e.policy_id().to_string();
        let file = info.get(&id).map_or("policies/", |i| i.file.as_str());
        let line = files.get(file).and_then(|text| first_label_line(text, e));
        problems.push(problem(
            ProblemKind::CedarValidation,
            file,
            line,
            format!("policy {id:?}: {}", diagnostic_message(e)),
        ));
    }
}

/// The permit policies of `policies` alone.
fn permits_of(policies: &PolicySet, problems: &mut Vec<Problem>) -> PolicySet {
    let mut permits = PolicySet::new();
    for p in policies.policies().filter(|p| p.effect() == Effect::Permit) {
        if let Err(e) = permits.add(p.clone()) {
            problems.push(problem(
                ProblemKind::PolicyId,
                "policies/",
                None,
                e.to_string(),
            ));
        }
    }
    permits
}

/// `playbooks.toml`, parsed once the thresholds it depends on are known.
fn load_playbooks(
    files: &BTreeMap<String, String>,
    thresholds: Option<&RiskThresholds>,
    problems: &mut Vec<Problem>,
) -> Option<Playbooks> {
    match (files.get(PLAYBOOKS_FILE), thresholds) {
        (Some(text), Some(t)) => match Playbooks::parse(text, t.contact_freshness_days) {
            Ok(p) => Some(p),
            Err(mut found) => {
                problems.append(&mut found);
                None
            }
        },
        (None, _) => {
            required(files, PLAYBOOKS_FILE, problems);
            None
        }
        (Some(_), None) => None,
    }
}

/// `gates.toml`, when the bundle has one.
fn load_gates(files: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Gates {
    let Some(text) = files.get(GATES_FILE) else {
        return Gates::default();
    };
    match toml::from_str::<Gates>(text) {
        Ok(gates) => gates,
        Err(e) => {
            problems.push(toml_problem(GATES_FILE, text, &e));
            Gates::default()
        }
    }
}

/// The table-driven cases of `tests/*.toml`.
fn load_tests(files: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Vec<TestCase> {
    let mut tests = Vec::new();
    for (file, text) in files.iter().filter(|(p, _)| p.starts_with("tests/")) {
        match parse_cases(file, text) {
            Ok(mut cases) => tests.append(&mut cases),
            Err(mut found) => problems.append(&mut found),
        }
    }
    tests
}

impl Bundle {
    /// The default bundle compiled into the binary.
    pub fn default_bundle() -> Result<Self, BundleError> {
        Self::from_files(
            DEFAULT_BUNDLE_FILES
                .iter()
                .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
                .collect(),
        )
    }

    /// Loads and validates the bundle in directory `dir`.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, BundleError> {
        Self::from_files(read_dir_files(dir.as_ref())?)
    }

    /// Loads and validates a bundle from its files: `/`-separated relative path -> contents.
    /// Paths that are not bundle files are ignored.
    pub fn from_files(mut files: BTreeMap<String, String>) -> Result<Self, BundleError> {
        files.retain(|path, _| is_bundle_file(path));
        let mut problems = Vec::new();
        let thresholds = load_thresholds(&files, &mut problems);
        let SchemaParts {
            schema,
            actions,
            action_entities,
        } = load_schema(&files, &mut problems);
        let LoadedPolicies {
            all: policies,
            permits,
            info,
        } = load_policies(&files, schema.as_ref(), &mut problems);
        let playbooks = load_playbooks(&files, thresholds.as_ref(), &mut problems);
        let tests = load_tests(&files, &mut problems);
        let gates = load_gates(&files, &mut problems);
        let staff_type = entity_type("Staff").map_err(|p| problems.push(p)).ok();
        let subject_type = entity_type("Subject").map_err(|p| problems.push(p)).ok();

        match (
            schema,
            action_entities,
            playbooks,
            thresholds,
            staff_type,
            subject_type,
        ) {
            (
                Some(schema),
                Some(action_entities),
                Some(playbooks),
                Some(thresholds),
                Some(staff_type),
                Some(subject_type),
            ) if problems.is_empty() => {
                let slicer = Slicer::new(
                    &policies,
                    &actions,
                    &action_entities,
                    &staff_type,
                    &subject_type,
                );
                let bundle = Self {
                    digest: digest_of(&files),
                    files,
                    schema,
                    permits,
                    info,
                    actions,
                    action_entities,
                    staff_type,
                    subject_type,
                    playbooks,
                    thresholds,
                    tests,
                    gates,
                    slicer,
                };
                // The schema must accept the request Deskgate builds, or every decision would fail.
                bundle.probe_request_shape()?;
                Ok(bundle)
            }
            _ => Err(BundleError::Invalid { problems }),
        }
    }

    /// Builds one request per action against the schema; a schema whose entity or context
    /// types do not match what Deskgate sends is refused here rather than at the first case.
    fn probe_request_shape(&self) -> Result<(), BundleError> {
        for action in Action::all() {
            let probe = crate::decide::probe_request(*action);
            if let Err(e) = self.check_request_shape(&probe) {
                // One problem is enough: the shape is the same for every action.
                return Err(BundleError::Invalid {
                    problems: vec![problem(
                        ProblemKind::Schema,
                        SCHEMA_FILE,
                        None,
                        format!("the schema does not accept Deskgate's {action} request: {e}"),
                    )],
                });
            }
        }
        Ok(())
    }

    /// Hex SHA-256 over the bundle's files; decisions and audit entries carry it.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The bundle's files (relative path -> contents), as hashed.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    /// Number of Cedar policies.
    pub fn policy_count(&self) -> usize {
        self.info.len()
    }

    /// What the bundle knows about the policy with this `@id`.
    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.info.get(id)
    }

    /// The bounds `gates.toml` sets on the bundle's attack paths.
    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    pub fn playbooks(&self) -> &Playbooks {
        &self.playbooks
    }

    pub fn thresholds(&self) -> &RiskThresholds {
        &self.thresholds
    }

    /// The table-driven cases from `tests/*.toml`.
    pub fn test_cases(&self) -> &[TestCase] {
        &self.tests
    }

    pub(crate) fn entity_uid(&self, ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_file_filter_keeps_only_loaded_kinds() {
        assert!(is_bundle_file("schema.cedarschema"));
        assert!(is_bundle_file("policies/a.cedar"));
        assert!(is_bundle_file("tests/a.toml"));
        assert!(!is_bundle_file("README.md"));
        assert!(!is_bundle_file("policies/a.txt"));
        assert!(!is_bundle_file("policies/sub/a.cedar"));
        assert!(!is_bundle_file("tests.toml"));
    }

    #[test]
    fn digest_frames_paths_and_contents_unambiguously() {
        let a = BTreeMap::from([("ab".to_owned(), "c".to_owned())]);
        let b = BTreeMap::from([("a".to_owned(), "bc".to_owned())]);
        assert_ne!(digest_of(&a), digest_of(&b));
        assert_eq!(digest_of(&a), digest_of(&a.clone()));
        assert_eq!(digest_of(&a).len(), 64);
    }
}
