//! One full decision (signals loaded; risk + playbook + Cedar) on the default bundle grown to
//! more than 50 policies, with p50 / p99 printed, against the same gate written in Rego and run
//! by `regorus`. Run with `cargo bench -p deskgate-policy`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use deskgate_core::{Action, ApiId, IndependenceClass, Method, Role, SubjectStatus, Tier};
use deskgate_policy::playbook::{Obtained, approver_role_id};
use deskgate_policy::risk::{ContactChange, RiskSubject};
use deskgate_policy::{
    Bundle, DecisionRequest, EvidenceInput, Outcome, RiskSignals, StaffInfo, Stage, SubjectInfo,
    assess,
};

/// Filler policies that never match the benchmark's principal: regional embargoes, the kind of
/// rule a real deployment accumulates.
const FILLER: usize = 40;

fn grown_bundle() -> Bundle {
    let mut files = Bundle::default_bundle().unwrap().files().clone();
    let mut cedar = String::new();
    for n in 0..FILLER {
        writeln!(
            cedar,
            "@id(\"bench-embargo-{n}\")\n@reason(\"regional embargo {n}\")\n\
             forbid (principal, action, resource)\n\
             when {{ principal.region == \"region-{n}\" && resource.groups.contains(\"embargo-{n}\") }};\n"
        )
        .unwrap();
    }
    files.insert("policies/bench_embargo.cedar".to_owned(), cedar);
    Bundle::from_files(files).unwrap()
}

fn request() -> DecisionRequest {
    DecisionRequest {
        stage: Stage::Execute,
        principal: StaffInfo {
            id: "staff-7".to_owned(),
            role: Role::Agent,
            team: "service-desk".to_owned(),
            region: "emea".to_owned(),
            shift: "day".to_owned(),
            subject_id: Some("u-staff-7".to_owned()),
            manager_id: Some("u-lead-2".to_owned()),
        },
        case_agent_id: "staff-7".to_owned(),
        subject: SubjectInfo {
            id: "u-1042".to_owned(),
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            groups: vec!["staff".to_owned(), "finance".to_owned()],
            on_probation: false,
        },
        action: Action::MfaReset,
        signals: RiskSignals {
            contact_changes: vec![ContactChange {
                kind: deskgate_core::ContactKind::Phone,
                days_ago: 200,
            }],
            requests_for_subject: 1,
            requests_from_caller_number: 1,
            requests_by_agent: 4,
            subject_local_hour: Some(10),
            days_since_hire: Some(700),
            ..RiskSignals::default()
        },
        evidence: vec![
            EvidenceInput::from_method(Method::Totp),
            EvidenceInput {
                contact_age_days: Some(200),
                ..EvidenceInput::from_method(Method::SmsCode)
            },
        ],
        approvals: Vec::new(),
        waited_minutes: 0,
        break_glass: false,
        requester_is_owner: false,
        channel: deskgate_core::Channel::Phone,
    }
}

const REGO: &str = r#"
package deskgate

case_roles := {"agent", "supervisor", "security_officer"}
high_risk_change := {"mfa_reset", "factor_rebind", "email_change", "phone_change"}
strong := {"device_of_record", "government_id", "recovery_code"}

ctx := input.context
p := input.principal
r := input.resource

hard contains "guardrail-case-roles-only" if not case_roles[p.role]
hard contains "guardrail-not-self" if p.subject == r.id
hard contains "guardrail-not-own-manager" if p.manager == r.id
hard contains "guardrail-terminated" if r.status == "terminated"
hard contains "guardrail-on-leave" if r.status == "on_leave"
hard contains "guardrail-disabled" if r.status == "disabled"
hard contains "guardrail-security-tier-officers-only" if {
  r.tier == "security"
  p.role != "security_officer"
}
hard contains "guardrail-approver-not-agent" if {
  ctx.stage == "approve"
  p.id == ctx.case_agent
}
hard contains "guardrail-rotation-service-only" if {
  input.action == "service_credential_rotate"
  r.tier != "service"
}
hard contains "guardrail-service-rotation-only" if {
  r.tier == "service"
  input.action != "service_credential_rotate"
}

not_officer if p.role != "security_officer"
not_approve if ctx.stage != "approve"

escalations contains "escalate-probation-high-risk" if {
  high_risk_change[input.action]
  r.on_probation
  not_approve
  not_officer
}
escalations contains "escalate-recent-contact-change" if {
  ctx.contact_changed_recently
  not_approve
  not_officer
}
escalations contains "escalate-flagged-subject" if {
  ctx.subject_flagged
  not_approve
  not_officer
}
escalations contains "escalate-critical-risk" if {
  ctx.risk_level == "critical"
  not_approve
  not_officer
}

executing if {
  ctx.stage == "execute"
  not ctx.break_glass
}
has_strong if {
  some c in ctx.evidence_classes
  strong[c]
}
has_gov_or_device if {
  some c in ctx.evidence_classes
  c in {"government_id", "device_of_record"}
}

permits contains "open-case" if ctx.stage == "open"
permits contains "approve-supervisor-or-officer" if {
  ctx.stage == "approve"
  p.role in {"supervisor", "security_officer"}
}
permits contains "execute-standard-light" if {
  executing
  input.action in {"password_reset", "account_unlock"}
  r.tier == "standard"
  ctx.risk_level in {"low", "elevated"}
  ctx.evidence_count >= 1
}
permits contains "execute-sensitive-light" if {
  executing
  input.action in {"password_reset", "account_unlock"}
  r.tier == "sensitive"
  ctx.risk_level in {"low", "elevated"}
  ctx.evidence_count >= 2
}
permits contains "execute-strong-two-classes" if {
  executing
  r.tier in {"standard", "sensitive"}
  ctx.evidence_count >= 2
  has_strong
}
permits contains "execute-high-value-tier" if {
  executing
  r.tier in {"privileged", "executive", "security"}
  ctx.evidence_count >= 3
  has_gov_or_device
  "manager" in ctx.evidence_classes
  "supervisor" in ctx.approvals
  ctx.cooling_off_elapsed
}
permits contains "execute-service-owner" if {
  executing
  r.tier == "service"
  ctx.requester_is_owner
  ctx.evidence_count >= 1
  has_gov_or_device
  "owner" in ctx.approvals
}
permits contains "execute-break-glass" if {
  ctx.stage == "execute"
  ctx.break_glass
  ctx.security_officer_approvals >= 2
  ctx.cooling_off_elapsed
}

default outcome := "deny"

outcome := "escalate" if {
  count(hard) == 0
  count(escalations) > 0
}

outcome := "allow" if {
  count(hard) == 0
  count(escalations) == 0
  count(permits) > 0
  input.playbook_complete
}
"#;

fn rego_source() -> String {
    let mut src = REGO.to_owned();
    for n in 0..FILLER {
        writeln!(
            src,
            "hard contains \"bench-embargo-{n}\" if {{\n  p.region == \"region-{n}\"\n  \"embargo-{n}\" in r.groups\n}}"
        )
        .unwrap();
    }
    src
}

/// The same decision with Rego as the gate: risk and playbook in Rust as on the Cedar path, the
/// request shaped as JSON input, the rules evaluated by regorus.
fn rego_decision(bundle: &Bundle, engine: &mut regorus::Engine, req: &DecisionRequest) -> String {
    let t = bundle.thresholds();
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
    let counted: std::collections::BTreeSet<IndependenceClass> = req
        .evidence
        .iter()
        .filter(|e| {
            e.class.counts()
                && !e.caller_supplied
                && e.contact_age_days
                    .is_none_or(|d| d >= t.contact_freshness_days)
        })
        .map(|e| e.class)
        .collect();
    let playbook =
        bundle
            .playbooks()
            .resolve(req.subject.tier, req.action, risk.level, req.break_glass);
    let roles: Vec<_> = req.approvals.iter().map(|a| a.role).collect();
    let elapsed = req.waited_minutes >= playbook.requirements.cooling_off_minutes;
    let progress = playbook.requirements.progress(
        req.action,
        &Obtained {
            classes: &counted,
            approvals: &roles,
            cooling_off_elapsed: elapsed,
            requester_is_owner: req.requester_is_owner,
        },
    );
    let derived = req.signals.derive(t);
    let input = serde_json::json!({
        "action": req.action.api_id(),
        "principal": {
            "id": req.principal.id, "role": req.principal.role.api_id(),
            "region": req.principal.region, "team": req.principal.team,
            "subject": req.principal.subject_id, "manager": req.principal.manager_id,
        },
        "resource": {
            "id": req.subject.id, "tier": req.subject.tier.api_id(),
            "status": req.subject.status.api_id(), "groups": req.subject.groups,
            "on_probation": req.subject.on_probation,
        },
        "context": {
            "stage": "execute",
            "risk_level": risk.level.api_id(),
            "evidence_classes": counted.iter().map(|c| c.api_id()).collect::<Vec<_>>(),
            "evidence_count": counted.len(),
            "approvals": roles.iter().map(|r| approver_role_id(*r)).collect::<Vec<_>>(),
            "security_officer_approvals": 0,
            "cooling_off_elapsed": elapsed,
            "break_glass": req.break_glass,
            "requester_is_owner": req.requester_is_owner,
            "case_agent": req.case_agent_id,
            "contact_changed_recently": derived.contact_changed_recently,
            "subject_flagged": req.signals.subject_flagged,
        },
        "playbook_complete": progress.complete,
    });
    engine.set_input(regorus::Value::from_json_str(&input.to_string()).unwrap());
    let out = engine
        .eval_rule("data.deskgate.outcome".to_owned())
        .unwrap();
    out.as_string().unwrap().to_string()
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

fn sample(iterations: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn decision(c: &mut Criterion) {
    let bundle = grown_bundle();
    let req = request();
    assert!(bundle.policy_count() >= 50);
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("deskgate.rego".to_owned(), rego_source())
        .unwrap();
    // Both gates must reach the same verdict, or the comparison means nothing. The first decision
    // also builds and caches the slice of policies this kind of request leaves to Cedar.
    let start = Instant::now();
    assert_eq!(bundle.evaluate(&req).unwrap().outcome, Outcome::Allow);
    let first = start.elapsed();
    assert_eq!(rego_decision(&bundle, &mut engine, &req), "allow");

    // DESKGATE_BENCH_ITERATIONS=N: N timed decisions per gate and no criterion run, for a quick
    // look or a profiler (`valgrind --tool=callgrind` counts instructions repeatably under load).
    let quick: Option<usize> = std::env::var("DESKGATE_BENCH_ITERATIONS").ok().map(|v| {
        v.parse()
            .expect("DESKGATE_BENCH_ITERATIONS must be a number")
    });
    let (warmup, n) = match quick {
        Some(n) => (n.min(1_000), n.max(1)),
        None => (1_000, 20_000),
    };
    sample(warmup, || {
        black_box(bundle.evaluate(black_box(&req)).unwrap());
    });
    let (cedar_p50, cedar_p99) = percentiles(sample(n, || {
        black_box(bundle.evaluate(black_box(&req)).unwrap());
    }));
    sample(warmup, || {
        black_box(rego_decision(&bundle, &mut engine, black_box(&req)));
    });
    let (rego_p50, rego_p99) = percentiles(sample(n, || {
        black_box(rego_decision(&bundle, &mut engine, black_box(&req)));
    }));
    println!(
        "full decision, {} policies: cedar p50 {cedar_p50:?} p99 {cedar_p99:?} (first {first:?}); \
         rego p50 {rego_p50:?} p99 {rego_p99:?}; rego/cedar p50 ratio {:.2}, p99 ratio {:.2}",
        bundle.policy_count(),
        rego_p50.as_secs_f64() / cedar_p50.as_secs_f64(),
        rego_p99.as_secs_f64() / cedar_p99.as_secs_f64(),
    );

    if quick.is_some() {
        return;
    }
    c.bench_function("decision/cedar", |b| {
        b.iter(|| bundle.evaluate(black_box(&req)).unwrap())
    });
    c.bench_function("decision/rego", |b| {
        b.iter(|| rego_decision(&bundle, &mut engine, black_box(&req)))
    });
}

criterion_group!(benches, decision);
criterion_main!(benches);
