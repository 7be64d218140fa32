//! `policy analyze`: the attack paths of a bundle, computed with the bundle's own decisions, and
//! the gates that bound them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::Utc;
use deskgate_core::{Action, RiskLevel, Tier};
use deskgate_policy::{Analysis, Bundle, Capability};

fn default_files() -> BTreeMap<String, String> {
    Bundle::default_bundle().unwrap().files().clone()
}

fn replace(files: &mut BTreeMap<String, String>, file: &str, from: &str, to: &str) {
    let text = files.get_mut(file).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    *text = text.replacen(from, to, 1);
}

/// Lets one class reset a standard password, in both layers so that they agree.
fn weaken_standard_password_reset(files: &mut BTreeMap<String, String>) {
    replace(
        files,
        "playbooks.toml",
        "name = \"standard-password-reset\"\ntiers = [\"standard\"]\nactions = [\"password_reset\"]\nrisk_levels = [\"low\", \"elevated\"]\nmin_classes = 2\nrequired_any_of = [[\"phone_of_record\", \"email_of_record\", \"manager\"]]",
        "name = \"standard-password-reset\"\ntiers = [\"standard\"]\nactions = [\"password_reset\"]\nrisk_levels = [\"low\", \"elevated\"]\nmin_classes = 1\nrequired_any_of = []",
    );
    replace(
        files,
        "policies/permits.cedar",
        "  context.evidence_count >= 2 &&\n  context.evidence_classes.containsAny([\"phone_of_record\", \"email_of_record\", \"manager\"])\n};\n\n@id(\"execute-sensitive-light\")",
        "  context.evidence_count >= 1\n};\n\n@id(\"execute-sensitive-light\")",
    );
}

fn analyze(files: BTreeMap<String, String>) -> Analysis {
    Bundle::from_files(files)
        .unwrap()
        .analyze(Utc::now())
        .unwrap()
}

fn paths(analysis: &Analysis, tier: Tier, action: Action, risk: RiskLevel) -> Vec<Vec<Capability>> {
    analysis
        .cells
        .iter()
        .find(|c| c.tier == tier && c.action == action && c.risk == risk)
        .unwrap_or_else(|| panic!("no cell {tier} {action} {risk}"))
        .paths
        .iter()
        .map(|p| p.iter().copied().collect())
        .collect()
}

#[test]
fn the_default_pack_holds_to_its_gates() {
    let bundle = Bundle::default_bundle().unwrap();
    assert!(bundle.gates().gates.len() >= 3);
    let analysis = bundle.analyze(Utc::now()).unwrap();
    let broken: Vec<String> = analysis
        .violations
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
    assert!(analysis.decisions > 100, "{}", analysis.decisions);
    // A legitimate standard password reset still exists: a mailbox and a phone, or the device
    // with a contact of record.
    let reset = paths(
        &analysis,
        Tier::Standard,
        Action::PasswordReset,
        RiskLevel::Low,
    );
    assert!(
        reset.contains(&vec![Capability::SimSwap, Capability::Mailbox]),
        "{reset:?}"
    );
    assert!(reset.iter().all(|p| p.len() >= 2), "{reset:?}");
    // An MFA reset needs something not remote: the device, or a forged document.
    let mfa = paths(
        &analysis,
        Tier::Standard,
        Action::MfaReset,
        RiskLevel::Elevated,
    );
    assert!(!mfa.is_empty());
    assert!(
        mfa.iter().all(|p| p.iter().any(|c| !c.is_remote())),
        "{mfa:?}"
    );
    assert!(
        mfa.contains(&vec![Capability::Mailbox, Capability::Device]),
        "{mfa:?}"
    );
}

#[test]
fn every_path_is_minimal() {
    let analysis = Bundle::default_bundle()
        .unwrap()
        .analyze(Utc::now())
        .unwrap();
    for cell in &analysis.cells {
        for (i, a) in cell.paths.iter().enumerate() {
            for (j, b) in cell.paths.iter().enumerate() {
                assert!(
                    i == j || !a.is_subset(b),
                    "{} {} {}: {a:?} inside {b:?}",
                    cell.tier,
                    cell.action,
                    cell.risk
                );
            }
        }
    }
}

/// A row that lets one class reset a standard password (in both layers, so they agree) fails
/// the one-factor gate, and the violation names the cheapest capability: a mailbox alone.
#[test]
fn a_weak_row_fails_its_gate_with_the_cheapest_path_named() {
    let mut files = default_files();
    weaken_standard_password_reset(&mut files);
    // The tests of the default pack expect the strict row; the analysis is what is asked here.
    files.retain(|path, _| !path.starts_with("tests/"));
    let analysis = analyze(files);
    let found: Vec<String> = analysis
        .violations
        .iter()
        .filter(|v| v.tier == Tier::Standard && v.action == Action::PasswordReset)
        .map(ToString::to_string)
        .collect();
    assert!(
        found
            .iter()
            .any(|v| v.contains("one-factor-never-obtains-another")
                && v.contains("{mailbox}")
                && v.contains("1 capability where the gate needs at least 2")),
        "{found:#?}"
    );
    assert!(found.iter().any(|v| v.contains("{sim_swap}")), "{found:#?}");
}

/// Without the strong class, an MFA reset falls to remote takeovers: the gate names the set.
#[test]
fn a_factor_change_without_a_strong_class_fails_the_remote_only_gate() {
    let mut files = default_files();
    replace(
        &mut files,
        "playbooks.toml",
        "  [\"device_of_record\", \"government_id\", \"recovery_code\"],\n  [\"phone_of_record\", \"email_of_record\", \"manager\"],\n",
        "  [\"phone_of_record\", \"email_of_record\", \"manager\"],\n",
    );
    replace(
        &mut files,
        "policies/permits.cedar",
        "  context.evidence_classes.containsAny([\"device_of_record\", \"government_id\", \"recovery_code\"]) &&\n",
        "",
    );
    files.retain(|path, _| !path.starts_with("tests/"));
    let analysis = analyze(files);
    let remote: Vec<String> = analysis
        .violations
        .iter()
        .filter(|v| v.gate == "no-remote-only-factor-or-contact-change")
        .map(ToString::to_string)
        .collect();
    assert!(
        remote
            .iter()
            .any(|v| v.contains("standard mfa_reset") && v.contains("{sim_swap, mailbox}")),
        "{remote:#?}"
    );
}

/// The default pack's matrix, as `deskgate policy analyze` prints it. A change to the pack that
/// opens or closes a path shows here; refresh with `DESKGATE_UPDATE_SNAPSHOTS=1`.
#[test]
fn the_default_pack_matrix_matches_its_snapshot() {
    let analysis = Bundle::default_bundle()
        .unwrap()
        .analyze(Utc::now())
        .unwrap();
    let table = deskgate_policy::analyze::render_table(&analysis);
    // The first line names the bundle's digest, which every edit of the pack changes.
    let body: String = table.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/default_pack_analysis.txt"
    );
    if std::env::var_os("DESKGATE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &body).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap();
    assert_eq!(body, expected, "the attack paths changed; see the diff");
}

/// `policy diff` shows the paths a change opens or closes.
#[test]
fn a_change_shows_the_paths_it_opens_and_closes() {
    let old = Bundle::default_bundle()
        .unwrap()
        .analyze(Utc::now())
        .unwrap();
    let mut files = default_files();
    weaken_standard_password_reset(&mut files);
    files.retain(|path, _| !path.starts_with("tests/"));
    let new = analyze(files);
    let changes = deskgate_policy::path_changes(&old, &new);
    let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert!(
        text.contains(&"standard password_reset at low risk: opens sim_swap | mailbox | manager_compromise | device".to_owned()),
        "{text:#?}"
    );
    assert!(
        changes
            .iter()
            .all(|c| c.tier == Tier::Standard && c.action == Action::PasswordReset),
        "{text:#?}"
    );
    // And back: the stricter row closes them.
    let back = deskgate_policy::path_changes(&new, &old);
    assert!(
        back.iter()
            .all(|c| c.opened.is_empty() && !c.closed.is_empty()),
        "{back:#?}"
    );
}

/// Self-service is analysed as its own channel: worked by Deskgate's desk under the same
/// requirements, with the tiers and actions `self_service.cedar` sends to the help desk closed.
#[test]
fn self_service_is_analysed_as_its_own_channel() {
    use deskgate_core::Channel;
    let analysis = Bundle::default_bundle()
        .unwrap()
        .analyze(Utc::now())
        .unwrap();
    let on = |channel: Channel, tier: Tier, action: Action, risk: RiskLevel| {
        analysis
            .cells
            .iter()
            .find(|c| {
                c.channel == channel && c.tier == tier && c.action == action && c.risk == risk
            })
            .unwrap_or_else(|| panic!("no cell {channel} {tier} {action} {risk}"))
    };
    // The same paths as a call where the bundle lets a person do it alone.
    let alone = on(
        Channel::SelfService,
        Tier::Standard,
        Action::PasswordReset,
        RiskLevel::Low,
    );
    let call = on(
        Channel::Phone,
        Tier::Standard,
        Action::PasswordReset,
        RiskLevel::Low,
    );
    assert!(
        alone.closed.is_none() && !alone.paths.is_empty(),
        "{alone:?}"
    );
    assert_eq!(alone.paths, call.paths);
    // Closed for high-value and service tiers and for every action but the three.
    for cell in analysis
        .cells
        .iter()
        .filter(|c| c.channel == Channel::SelfService)
    {
        let refused = matches!(
            cell.tier,
            Tier::Privileged | Tier::Executive | Tier::Security | Tier::Service
        ) || !matches!(
            cell.action,
            Action::PasswordReset | Action::MfaReset | Action::AccountUnlock
        ) || matches!(cell.risk, RiskLevel::High | RiskLevel::Critical);
        if refused {
            assert!(cell.paths.is_empty() && cell.closed.is_some(), "{cell:?}");
        }
        // Nobody at the desk colludes.
        assert!(
            cell.paths
                .iter()
                .all(|p| !p.contains(&Capability::ColludingAgent)),
            "{cell:?}"
        );
    }
    let table = deskgate_policy::analyze::render_table(&analysis);
    assert!(table.contains("self_service privileged"), "{table}");
}

/// A gate may cover one channel only: a stricter bound for self-service breaks there and not on
/// calls.
#[test]
fn a_gate_can_name_the_self_service_channel() {
    let mut files = default_files();
    files.get_mut("gates.toml").unwrap().push_str(
        "\n[[gate]]\nname = \"self-service-needs-three\"\nactions = [\"password_reset\"]\nchannels = [\"self_service\"]\nmin_capabilities = 3\n",
    );
    files.retain(|path, _| !path.starts_with("tests/"));
    let analysis = analyze(files);
    let broken: Vec<_> = analysis
        .violations
        .iter()
        .filter(|v| v.gate == "self-service-needs-three")
        .collect();
    assert!(!broken.is_empty());
    assert!(
        broken
            .iter()
            .all(|v| v.channel == deskgate_core::Channel::SelfService),
        "{broken:?}"
    );
    assert!(
        broken[0].to_string().contains("on self-service"),
        "{}",
        broken[0]
    );
}
