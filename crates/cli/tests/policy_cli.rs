//! `deskgate policy check|test|diff` on the shipped pack and on edited copies of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use support::{deskgate, stderr, stdout};

const PACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default");

#[test]
fn the_shipped_pack_checks_and_its_cases_pass() {
    let dir = tempfile::tempdir().unwrap();
    let o = deskgate(dir.path(), &["policy", "check", PACK]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok: bundle "));
    let o = deskgate(dir.path(), &["policy", "test", PACK]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let last = stdout(&o).lines().last().unwrap().to_owned();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 40, "{last}");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

#[test]
fn a_broken_bundle_is_refused_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    deskgate_testkit::bundle::copy_dir(Path::new(PACK), &broken);
    let playbooks = broken.join("playbooks.toml");
    let text = std::fs::read_to_string(&playbooks).unwrap();
    // An evidence class that does not exist, in the first list of strong classes.
    let edited = text.replacen("\"recovery_code\"]", "\"horoscope\"]", 1);
    assert_ne!(edited, text, "the edit must change the pack");
    std::fs::write(&playbooks, edited).unwrap();
    let o = deskgate(dir.path(), &["policy", "check", broken.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("playbooks.toml:"), "{err}");
}

#[test]
fn diff_names_the_cases_a_change_flips() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new");
    deskgate_testkit::bundle::copy_dir(Path::new(PACK), &new);
    // Drop the guardrail that keeps security-tier subjects for security officers.
    let guardrails = new.join("policies/guardrails.cedar");
    let text = std::fs::read_to_string(&guardrails).unwrap();
    let start = text
        .find("@id(\"guardrail-security-tier-officers-only\")")
        .unwrap();
    let end = start + text[start..].find(';').unwrap() + 1;
    std::fs::write(&guardrails, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let o = deskgate(dir.path(), &["policy", "diff", PACK, new.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("deny -> "), "{out}");
    assert!(!out.trim_end().ends_with(" 0 case(s) change"), "{out}");
}
