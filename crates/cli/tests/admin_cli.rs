//! `deskgate admin import-subjects`: the production way to fill the built-in directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{deskgate, stderr, stdout};

const SUBJECT: &str = r#"{"id":"u-nora","display_name":"Nora Quist","tier":"standard","status":"active","manager":null,"owners":[],"groups":["idp-admins"],"contacts":[{"kind":"email","value":"nora@example.org","verified_at":"2024-01-01T00:00:00Z","changed_at":"2024-01-01T00:00:00Z"}],"authenticators":[],"flagged":false,"hired_at":null}"#;

#[test]
fn imported_subjects_get_their_tier_from_groups_and_bad_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{SUBJECT}\n{{\"id\": 3}}\n")).unwrap();
    let o = deskgate(&data, &["admin", "import-subjects", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.jsonl:2:"), "{}", stderr(&o));
    let o = deskgate(
        &data,
        &[
            "policy",
            "explain",
            "--subject",
            "u-nora",
            "--action",
            "password_reset",
        ],
    );
    assert!(!o.status.success(), "nothing was imported from a bad file");

    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, format!("{SUBJECT}\n")).unwrap();
    let o = deskgate(&data, &["admin", "import-subjects", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "imported 1 subject(s)");
    // The file said standard; the idp-admins group makes her privileged.
    let o = deskgate(
        &data,
        &[
            "policy",
            "explain",
            "--subject",
            "u-nora",
            "--action",
            "password_reset",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("privileged-tier"), "{}", stdout(&o));
}

fn status_with(base: &str, token: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{base}/api/v1/cases?mine=true"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn revoking_a_staff_members_tokens_locks_them_out_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::demo(&data);
    let token = demo.token("sam.rivera");
    assert_eq!(status_with(&demo.base(), &token), "200");
    let o = deskgate(
        &data,
        &["admin", "token", "revoke-all", "--staff", "sam.rivera"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("revoked "), "{}", stdout(&o));
    assert_eq!(status_with(&demo.base(), &token), "401");
    // Other staff are untouched.
    assert_eq!(
        status_with(&demo.base(), &demo.token("jordan.blake")),
        "200"
    );
    drop(demo);
}

fn staff_line(data: &std::path::Path, name: &str) -> String {
    let o = deskgate(data, &["admin", "staff", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed:\n{}", stdout(&o)))
        .to_owned()
}

#[test]
fn a_disabled_staff_member_cannot_authenticate_until_enabled_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::demo(&data);
    let token = demo.token("sam.rivera");
    assert!(staff_line(&data, "sam.rivera").ends_with("\tactive"));

    let o = deskgate(
        &data,
        &["admin", "staff", "disable", "--name", "sam.rivera"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(staff_line(&data, "sam.rivera").ends_with("\tdisabled"));
    assert_eq!(status_with(&demo.base(), &token), "401");
    // A token minted while disabled does not authenticate either.
    let o = deskgate(
        &data,
        &["admin", "token", "create", "--staff", "sam.rivera"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let fresh = stdout(&o).trim().to_owned();
    assert_eq!(status_with(&demo.base(), &fresh), "401");

    let o = deskgate(&data, &["admin", "staff", "enable", "--name", "sam.rivera"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(status_with(&demo.base(), &fresh), "200");
    // Tokens revoked by the disabling stay revoked.
    assert_eq!(status_with(&demo.base(), &token), "401");
    drop(demo);
}

#[test]
fn staff_sso_identities_are_registered_listed_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let add = |id: &str, name: &str, identity: &str| {
        deskgate(
            &data,
            &[
                "admin",
                "staff",
                "add",
                "--id",
                id,
                "--name",
                name,
                "--role",
                "auditor",
                "--sso-identity",
                identity,
            ],
        )
    };
    let o = add("st-1", "kim.ode", "Kim.Ode@example.org");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        staff_line(&data, "kim.ode"),
        "st-1\tkim.ode\tauditor\t\tKim.Ode@example.org\tactive"
    );
    // The same identity in other letter case is the same identity.
    let o = add("st-2", "lee.park", "kim.ode@EXAMPLE.org");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("another staff member signs in with that identity"),
        "{}",
        stderr(&o)
    );
    // An empty value removes it.
    let o = add("st-1", "kim.ode", "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        staff_line(&data, "kim.ode"),
        "st-1\tkim.ode\tauditor\t\t\tactive"
    );
}

#[test]
fn the_oidc_client_secret_comes_from_the_environment_and_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("deskgate.toml");
    std::fs::write(
        &config,
        "[oidc]\nissuer = \"https://idp.example.org\"\nclient_id = \"deskgate\"\n",
    )
    .unwrap();
    let run = |secret: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"));
        cmd.args(["admin", "staff", "list", "--config"])
            .arg(&config)
            .env("DESKGATE_DATA_DIR", &data)
            .env("DESKGATE_LOG", "warn")
            .env_remove("DESKGATE_OIDC__CLIENT_SECRET");
        if let Some(s) = secret {
            cmd.env("DESKGATE_OIDC__CLIENT_SECRET", s);
        }
        cmd.output().unwrap()
    };
    let o = run(None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("client_secret is required"),
        "{}",
        stderr(&o)
    );
    let o = run(Some("from-the-environment"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("from-the-environment"));
}

#[test]
fn tokens_expire_are_listed_without_their_secret_and_revoke_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::demo(&data);
    let create = |days: &str, label: &str| {
        deskgate(
            &data,
            &[
                "admin",
                "token",
                "create",
                "--staff",
                "jordan.blake",
                "--label",
                label,
                "--expires-days",
                days,
            ],
        )
    };
    for bad in ["0", "400"] {
        let o = create(bad, "ticketing");
        assert!(!o.status.success(), "{bad} days");
        assert!(
            stderr(&o).contains("between 1 and 366 days"),
            "{}",
            stderr(&o)
        );
    }
    let o = create("30", "ticketing");
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o).trim().to_owned();
    let o = create("7", "siem-export");
    assert!(o.status.success(), "{}", stderr(&o));
    let second = stdout(&o).trim().to_owned();
    assert_eq!(status_with(&demo.base(), &first), "200");

    let o = deskgate(
        &data,
        &["admin", "token", "list", "--staff", "jordan.blake"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = stdout(&o);
    assert!(!listing.contains(&first) && !listing.contains(&second));
    let row = |label: &str| {
        listing
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} row in {listing}"))
            .to_owned()
    };
    let ticketing = row("ticketing");
    assert!(ticketing.contains(" live "), "{ticketing}");
    assert!(!listing.contains("sam.rivera"), "filtered to one person");
    // The expiry is the one asked for: 30 days after creation.
    let created: chrono::DateTime<chrono::Utc> = ticketing
        .split_whitespace()
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    let expires: chrono::DateTime<chrono::Utc> = ticketing
        .split_whitespace()
        .nth(5)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires - created, chrono::Duration::days(30));

    let id = ticketing.split_whitespace().next().unwrap().to_owned();
    let o = deskgate(&data, &["admin", "token", "revoke", "--id", &id[..4]]);
    assert!(!o.status.success(), "too short an id is refused");
    let o = deskgate(&data, &["admin", "token", "revoke", "--id", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(status_with(&demo.base(), &first), "401");
    assert_eq!(status_with(&demo.base(), &second), "200", "only that one");
    let o = deskgate(
        &data,
        &["admin", "token", "list", "--staff", "jordan.blake"],
    );
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.contains("ticketing") && l.contains(" revoked "))
    );
    drop(demo);
}
