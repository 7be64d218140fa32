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
    let demo = support::Demo::start(&data);
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

#[test]
fn tokens_expire_are_listed_without_their_secret_and_revoke_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::Demo::start(&data);
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
