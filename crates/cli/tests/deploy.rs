//! The packaging in `deploy/`: the systemd unit passes `systemd-analyze verify` and keeps its
//! sandbox, the alert rules pass `promtool check rules`, the dashboard and the alerts query only
//! series Deskgate exports, and the container runs without root and without a shell.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::DESKGATE;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// Whether `tool` can be run; when not, says why the check is skipped.
fn available(tool: &str, package: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!(
            "SKIPPED: {tool} is not installed (Debian package {package}); scripts/test.sh installs it"
        );
    }
    found
}

#[test]
fn the_systemd_unit_keeps_its_sandbox() {
    let unit = read("deploy/systemd/deskgate.service");
    for directive in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=deskgate",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "DynamicUser=yes",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(
            unit.contains(directive),
            "{directive:?} missing from the unit"
        );
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !available("systemd-analyze", "systemd") {
        return;
    }
    // verify checks that ExecStart names an executable: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = read("deploy/systemd/deskgate.service").replace("/usr/bin/deskgate", DESKGATE);
    let path = dir.path().join("deskgate.service");
    std::fs::write(&path, unit).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{said}");
    // verify only warns about an unknown key or a bad value ("..., ignoring"): any word about
    // the unit is a mistake in it.
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("deskgate.service"))
        .collect();
    assert!(about_unit.is_empty(), "{}", about_unit.join("\n"));
}

#[test]
fn the_alert_rules_pass_promtool() {
    if !available("promtool", "prometheus") {
        return;
    }
    let o = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo().join("deploy/prometheus/alerts.yml"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

/// Every `deskgate_*` series name in `text`, histogram suffixes removed.
fn series_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("deskgate_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let name = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_owned();
        names.insert(name);
    }
    names
}

#[test]
fn the_dashboard_and_the_alerts_query_only_exported_series() {
    let exported = read("crates/app/src/telemetry.rs");
    let dashboard = read("deploy/grafana/deskgate.json");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(parsed["panels"].as_array().unwrap().len() >= 8);
    let alerts = read("deploy/prometheus/alerts.yml");
    for name in [
        "deskgate_not_me_reports_total",
        "deskgate_audit_append_failures_total",
    ] {
        assert!(alerts.contains(name), "no alert on {name}");
    }
    let queried: BTreeSet<String> = series_names(&dashboard)
        .into_iter()
        .chain(series_names(&alerts))
        .collect();
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        assert!(
            exported.contains(&format!("\"{name}\"")),
            "{name} is queried but not described in crates/app/src/telemetry.rs"
        );
    }
}

#[test]
fn the_container_runs_without_root_and_without_a_shell() {
    let file = read("deploy/Containerfile");
    let stages: Vec<&str> = file.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(
        stages.len() >= 2,
        "a build stage and a run stage: {stages:?}"
    );
    let last = stages.last().unwrap();
    assert!(
        last.contains("gcr.io/distroless/") || last.contains("FROM scratch"),
        "the final image must have no shell: {last}"
    );
    let run_stage = &file[file.rfind("\nFROM ").unwrap()..];
    let user = run_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the run stage names its user");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "runs as {user}"
    );
    assert!(
        !run_stage.contains("\nRUN "),
        "no shell to RUN in the final image"
    );
}
