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
