//! The README's curl walkthrough, run verbatim (only the port and data directory substituted)
//! against the real `deskgate demo` binary, so the documentation cannot drift from the product.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[test]
fn readme_walkthrough_runs_verbatim_against_a_fresh_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::demo(&data);
    let stdout = support::run_walkthrough(&demo);
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in ["verifying", "approved", "executed", "temporary_access_pass"] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("\"event\": \"execution.performed\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+1 *** *** 42"),
        "masked contacts shown: {stdout}"
    );
}
