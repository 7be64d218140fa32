//! The default bundle's own cases, refusal of broken bundles, the digest, explain and diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use deskgate_core::{Action, IndependenceClass, SubjectStatus, Tier};
use deskgate_policy::{Bundle, BundleError, Outcome, ProblemKind, diff, run_tests};

fn default_files() -> BTreeMap<String, String> {
    Bundle::default_bundle().unwrap().files().clone()
}

fn with(edit: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<Bundle, BundleError> {
    let mut files = default_files();
    edit(&mut files);
    Bundle::from_files(files)
}

fn replace(files: &mut BTreeMap<String, String>, file: &str, from: &str, to: &str) {
    let text = files.get_mut(file).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    *text = text.replacen(from, to, 1);
}

fn refused(result: Result<Bundle, BundleError>) -> BundleError {
    match result {
        Ok(_) => panic!("the broken bundle was loaded"),
        Err(e) => e,
    }
}

#[test]
fn default_bundle_cases_all_pass() {
    let bundle = Bundle::default_bundle().unwrap();
    let report = run_tests(&bundle);
    println!("{report}");
    assert!(
        report.results.len() >= 40,
        "only {} cases",
        report.results.len()
    );
    assert!(report.all_passed(), "{report}");
    assert!(
        report
            .to_string()
            .ends_with(&format!("{} passed, 0 failed", report.results.len()))
    );
}

#[test]
fn default_directory_loads_with_the_compiled_in_digest() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default");
    let from_dir = Bundle::load_dir(dir).unwrap();
    let compiled = Bundle::default_bundle().unwrap();
    assert_eq!(from_dir.digest(), compiled.digest());
    assert_eq!(compiled.digest().len(), 64);
}

#[test]
fn every_policy_has_an_id_and_a_reason() {
    let bundle = Bundle::default_bundle().unwrap();
    assert!(bundle.policy_count() >= 20);
    let info = bundle.policy("guardrail-not-self").unwrap();
    assert_eq!(info.file, "policies/guardrails.cedar");
    assert!(info.line.is_some());
    assert!(info.reason.is_some());
    assert_eq!(
        bundle
            .policy("escalate-probation-high-risk")
            .unwrap()
            .escalate_to
            .as_deref(),
        Some("security_officer")
    );
}

#[test]
fn cedar_syntax_error_is_refused_with_file_and_line() {
    let e = refused(with(|f| {
        replace(
            f,
            "policies/permits.cedar",
            "when { context.stage == \"open\" };",
            "when { context.stage == };",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!(p.kind, ProblemKind::CedarSyntax);
    assert_eq!(p.file, "policies/permits.cedar");
    let text = &default_files()["policies/permits.cedar"];
    let line = text
        .lines()
        .position(|l| l.contains("when { context.stage == \"open\" }"))
        .unwrap()
        + 1;
    assert_eq!(p.line, Some(line), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("policies/permits.cedar:{line}:")),
        "{e}"
    );
}

#[test]
fn schema_violation_is_refused_with_file_and_line() {
    let e = refused(with(|f| {
        replace(
            f,
            "policies/guardrails.cedar",
            "resource.status == \"terminated\"",
            "resource.status == 3",
        )
    }));
    let p = e
        .problems()
        .iter()
        .find(|p| p.kind == ProblemKind::CedarValidation)
        .expect("validation problem");
    assert_eq!(p.file, "policies/guardrails.cedar");
    let text = &default_files()["policies/guardrails.cedar"];
    let line = text
        .lines()
        .position(|l| l.contains("resource.status == \"terminated\""))
        .unwrap()
        + 1;
    assert_eq!(p.line, Some(line), "{e}");
    assert!(p.message.contains("guardrail-terminated"), "{e}");
}

#[test]
fn unknown_action_in_a_policy_is_refused() {
    let e = refused(with(|f| {
        replace(
            f,
            "policies/guardrails.cedar",
            "Action::\"service_credential_rotate\"",
            "Action::\"service_credential_rotation\"",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!(p.kind, ProblemKind::CedarValidation);
    assert_eq!(p.file, "policies/guardrails.cedar");
    assert!(p.line.is_some());
    assert!(p.message.contains("service_credential_rotation"), "{e}");
}

#[test]
fn schema_declaring_an_unknown_action_is_refused() {
    let e = refused(with(|f| {
        replace(
            f,
            "schema.cedarschema",
            "action password_reset,",
            "action password_reset, password_recover,",
        )
    }));
    let p = e
        .problems()
        .iter()
        .find(|p| p.kind == ProblemKind::UnknownAction)
        .expect("unknown action");
    assert_eq!(p.file, "schema.cedarschema");
    assert!(p.message.contains("password_recover"), "{e}");
    assert!(p.line.is_some());
}

#[test]
fn schema_missing_a_deskgate_action_is_refused() {
    let e = refused(with(|f| {
        replace(
            f,
            "schema.cedarschema",
            "action password_reset, account_unlock,",
            "action password_reset,",
        );
        // Policies naming the dropped action must go too, or validation reports them first.
        let g = f.get_mut("policies/permits.cedar").unwrap();
        *g = g.replace(", Action::\"account_unlock\"", "");
    }));
    assert!(
        e.problems()
            .iter()
            .any(|p| p.kind == ProblemKind::UnknownAction && p.message.contains("account_unlock")),
        "{e}"
    );
}

#[test]
fn playbook_naming_an_unknown_class_is_refused_with_line() {
    let e = refused(with(|f| {
        replace(
            f,
            "playbooks.toml",
            "[\"government_id\", \"device_of_record\"], [\"manager\"]",
            "[\"government_id\", \"device_of_record\"], [\"line_manager\"]",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!(p.kind, ProblemKind::Toml);
    assert_eq!(p.file, "playbooks.toml");
    let text = &default_files()["playbooks.toml"];
    let line = text
        .lines()
        .position(|l| l.contains("[\"government_id\", \"device_of_record\"], [\"manager\"]"))
        .unwrap()
        + 1;
    assert_eq!(p.line, Some(line), "{e}");
    assert!(p.message.contains("line_manager"), "{e}");
}

#[test]
fn playbook_requiring_knowledge_is_refused() {
    let e = refused(with(|f| {
        replace(
            f,
            "playbooks.toml",
            "[\"device_of_record\", \"government_id\", \"recovery_code\"],",
            "[\"knowledge\"],",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!(p.kind, ProblemKind::Playbook);
    assert!(p.message.contains("knowledge"), "{e}");
    assert!(p.line.is_some());
}

#[test]
fn playbook_naming_an_unknown_method_in_a_test_case_is_refused() {
    let e = refused(with(|f| {
        replace(
            f,
            "tests/evidence.toml",
            "evidence = [\"email_code\"]",
            "evidence = [\"carrier_pigeon\"]",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!(p.file, "tests/evidence.toml");
    assert!(p.message.contains("carrier_pigeon"), "{e}");
    assert!(p.line.is_some());
}

#[test]
fn bad_risk_toml_is_refused_with_line() {
    let e = refused(with(|f| {
        replace(
            f,
            "risk.toml",
            "new_hire_days = 30",
            "new_hire_days = \"thirty\"",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!((p.kind, p.file.as_str()), (ProblemKind::Toml, "risk.toml"));
    let text = &default_files()["risk.toml"];
    let line = text
        .lines()
        .position(|l| l.starts_with("new_hire_days"))
        .unwrap()
        + 1;
    assert_eq!(p.line, Some(line), "{e}");
}

#[test]
fn policy_without_id_and_duplicate_ids_are_refused() {
    let e = refused(with(|f| {
        replace(
            f,
            "policies/guardrails.cedar",
            "@id(\"guardrail-disabled\")\n",
            "",
        )
    }));
    assert!(
        e.problems().iter().any(|p| p.kind == ProblemKind::PolicyId),
        "{e}"
    );
    let e = refused(with(|f| {
        replace(
            f,
            "policies/guardrails.cedar",
            "@id(\"guardrail-disabled\")",
            "@id(\"guardrail-on-leave\")",
        )
    }));
    assert!(
        e.problems()
            .iter()
            .any(|p| p.kind == ProblemKind::PolicyId && p.message.contains("already used")),
        "{e}"
    );
}

#[test]
fn missing_required_file_is_refused() {
    let e = refused(with(|f| {
        f.remove("risk.toml");
    }));
    assert!(
        e.problems()
            .iter()
            .any(|p| p.kind == ProblemKind::MissingFile && p.file == "risk.toml"),
        "{e}"
    );
}

#[test]
fn load_dir_refuses_a_broken_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in default_files() {
        let target = dir.path().join(&path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    assert!(Bundle::load_dir(dir.path()).is_ok());
    std::fs::write(
        dir.path().join("policies/extra.cedar"),
        "permit (principal, action, resource",
    )
    .unwrap();
    let e = refused(Bundle::load_dir(dir.path()));
    assert_eq!(e.problems()[0].file, "policies/extra.cedar");
}

#[test]
fn digest_changes_when_any_file_changes() {
    let base = Bundle::default_bundle().unwrap();
    for path in base.files().keys() {
        let comment = if path.ends_with(".toml") {
            "\n# changed\n"
        } else {
            "\n// changed\n"
        };
        let changed = with(|f| f.get_mut(path).unwrap().push_str(comment)).unwrap();
        assert_ne!(changed.digest(), base.digest(), "{path}");
    }
    let added = with(|f| {
        f.insert(
            "policies/zz.cedar".to_owned(),
            "// nothing yet\n".to_owned(),
        );
    })
    .unwrap();
    assert_ne!(added.digest(), base.digest());
    let ignored = with(|f| {
        f.insert("README.md".to_owned(), "notes".to_owned());
    })
    .unwrap();
    assert_eq!(ignored.digest(), base.digest());
}

#[test]
fn layers_that_disagree_fail_the_test_run_and_never_allow() {
    // The playbook asks two classes for a standard password reset; Cedar still permits one.
    let bundle = with(|f| {
        replace(
            f,
            "playbooks.toml",
            "min_classes = 1\n",
            "min_classes = 2\n",
        );
    })
    .unwrap();
    let report = run_tests(&bundle);
    assert!(!report.all_passed());
    let text = report.to_string();
    assert!(text.contains("the layers disagree"), "{text}");
    let case = bundle
        .test_cases()
        .iter()
        .find(|c| c.name == "standard unlock with an enrolled authenticator is allowed")
        .unwrap();
    let d = bundle.evaluate(&case.request).unwrap();
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.reasons.iter().any(|r| r.contains("disagree")));
}

#[test]
fn decisions_are_pinned_to_the_digest_and_policy_ids() {
    let bundle = Bundle::default_bundle().unwrap();
    let case = bundle
        .test_cases()
        .iter()
        .find(|c| c.name == "probation subject: mfa reset escalates")
        .unwrap();
    let d = bundle.evaluate(&case.request).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(d.bundle_digest, bundle.digest());
    assert_eq!(
        d.policy_ids,
        vec!["escalate-probation-high-risk".to_owned()]
    );
    assert!(d.reasons[0].contains("probation"));
}

#[test]
fn explain_shows_playbook_steps_and_reasons() {
    let bundle = Bundle::default_bundle().unwrap();
    let text = bundle
        .explain(
            Tier::Executive,
            SubjectStatus::Active,
            Action::MfaReset,
            &[IndependenceClass::GovernmentId],
        )
        .unwrap();
    assert!(text.contains("risk: high"), "{text}");
    assert!(text.contains("high-value-tier"), "{text}");
    assert!(text.contains("Required: verify through manager"), "{text}");
    assert!(text.contains("Obtain the supervisor approval"), "{text}");
    assert!(text.contains("decision: deny"), "{text}");
    let ok = bundle
        .explain(
            Tier::Standard,
            SubjectStatus::Active,
            Action::PasswordReset,
            &[
                IndependenceClass::EmailOfRecord,
                IndependenceClass::PhoneOfRecord,
            ],
        )
        .unwrap();
    assert!(ok.contains("decision: allow"), "{ok}");
    assert!(ok.contains("execute-standard-password-reset"), "{ok}");
}

#[test]
fn diff_lists_exactly_the_cases_whose_outcome_changes() {
    let old = Bundle::default_bundle().unwrap();
    assert!(diff(&old, &old).is_empty());
    let new = with(|f| {
        replace(
            f,
            "policies/guardrails.cedar",
            "@id(\"guardrail-on-leave\")\n@reason(\"the subject is on leave: recovery waits for their return\")\nforbid (principal, action, resource)\nwhen { resource.status == \"on_leave\" };\n",
            "",
        )
    })
    .unwrap();
    let changes = diff(&old, &new);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].name, "on-leave subject is refused");
    assert_eq!(
        (changes[0].old, changes[0].new),
        (Outcome::Deny, Outcome::Allow)
    );
    assert_eq!(
        changes[0].old_policy_ids,
        vec!["guardrail-on-leave".to_owned()]
    );
}

#[test]
fn core_requirements_carry_the_evidence_part() {
    let bundle = Bundle::default_bundle().unwrap();
    let r = bundle
        .playbooks()
        .resolve(
            Tier::Privileged,
            Action::MfaReset,
            deskgate_core::RiskLevel::High,
            false,
        )
        .requirements;
    let core = r.to_core_requirements();
    assert_eq!(core.min_classes, 3);
    assert_eq!(core.required_any_of.len(), 2);
    assert_eq!(core.contact_freshness_days, 14);
    assert_eq!(core.grant_minutes, 5);
}

#[test]
fn schema_that_does_not_accept_deskgates_request_shape_is_refused() {
    // No policy reads off_hours, so policy validation passes; the load-time probe must not.
    let e = refused(with(|f| {
        replace(
            f,
            "schema.cedarschema",
            "off_hours: Bool,",
            "off_hours: Long,",
        )
    }));
    let p = &e.problems()[0];
    assert_eq!(
        (p.kind, p.file.as_str()),
        (ProblemKind::Schema, "schema.cedarschema")
    );
    assert_eq!(e.problems().len(), 1, "{e}");
    assert!(
        p.message.contains("does not accept") && p.message.contains("context"),
        "{e}"
    );
}
