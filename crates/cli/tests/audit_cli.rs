//! `deskgate audit export|verify|key` on a real demo: an intact export verifies, every kind of
//! tampering is detected and named, a running server's proofs check out, OCSF events come out,
//! and a kill -9 under load loses no acknowledged entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use deskgate_audit::{CheckpointSigner, Hash};
use support::{deskgate, run_walkthrough, stderr, stdout};

fn export(data: &Path, out: &Path, format: &str) {
    let o = deskgate(
        data,
        &[
            "audit",
            "export",
            "--out",
            out.to_str().unwrap(),
            "--format",
            format,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

fn verify(dir: &Path, extra: &[&str]) -> (bool, String) {
    let key = std::fs::read_to_string(dir.join("verifier.vkey")).unwrap();
    let mut args = vec![
        "audit",
        "verify",
        dir.to_str().unwrap(),
        "--key",
        key.trim(),
    ];
    args.extend_from_slice(extra);
    let o = deskgate(dir, &args);
    (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
}

/// Changes the lines of an export's entries and leaf hashes.
type Edit = dyn Fn(&mut Vec<String>, &mut Vec<String>);

/// A copy of the export with `edit` applied to its entry lines and leaf hashes.
fn tampered(
    src: &Path,
    name: &str,
    edit: impl Fn(&mut Vec<String>, &mut Vec<String>),
) -> std::path::PathBuf {
    let dst = src.parent().unwrap().join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["checkpoint", "verifier.vkey"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let read = |f: &str| -> Vec<String> {
        std::fs::read_to_string(src.join(f))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (mut entries, mut leaves) = (read("entries.jsonl"), read("leaf_hashes.txt"));
    edit(&mut entries, &mut leaves);
    std::fs::write(dst.join("entries.jsonl"), entries.join("\n") + "\n").unwrap();
    std::fs::write(dst.join("leaf_hashes.txt"), leaves.join("\n") + "\n").unwrap();
    dst
}

#[test]
fn export_verifies_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::demo(&data);
    run_walkthrough(&demo);
    let good = dir.path().join("export");
    export(&data, &good, "log");
    let (ok, report) = verify(&good, &[]);
    assert!(ok, "{report}");
    assert!(report.starts_with("OK: "), "{report}");
    let lines = std::fs::read_to_string(good.join("entries.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(lines > 15, "the walkthrough logged {lines} entries");

    let key_out = deskgate(&data, &["audit", "key"]);
    assert_eq!(
        stdout(&key_out).trim(),
        std::fs::read_to_string(good.join("verifier.vkey"))
            .unwrap()
            .trim()
    );

    let cases: Vec<(&str, Box<Edit>, &str)> = vec![
        (
            "edited",
            Box::new(|e, _| e[5] = e[5].replace("\"event\":\"", "\"event\":\"x")),
            "entry 5 was altered",
        ),
        (
            "edited-and-rehashed",
            Box::new(|e, l| {
                e[5] = e[5].replace("\"event\":\"", "\"event\":\"x");
                l[5] = deskgate_audit::leaf_hash(e[5].as_bytes()).to_hex();
            }),
            "root mismatch",
        ),
        (
            "deleted",
            Box::new(|e, l| {
                e.remove(4);
                l.remove(4);
            }),
            "entry at position 4 has index 5",
        ),
        (
            "reordered",
            Box::new(|e, l| {
                e.swap(2, 3);
                l.swap(2, 3);
            }),
            "entry at position 2 has index 3",
        ),
        (
            "truncated",
            Box::new(|e, l| {
                e.pop();
                l.pop();
            }),
            "checkpoint says",
        ),
        (
            "not-canonical",
            Box::new(|e, _| e[7] = e[7].replacen('{', "{ ", 1)),
            "entry 7 is not in canonical form",
        ),
    ];
    for (name, edit, expected) in cases {
        let bad = tampered(&good, name, edit);
        let (ok, report) = verify(&bad, &[]);
        assert!(!ok, "{name} went undetected");
        assert!(report.contains(expected), "{name}: {report}");
    }

    // An altered checkpoint signature.
    let sig = dir.path().join("bad-signature");
    std::fs::create_dir_all(&sig).unwrap();
    for f in ["entries.jsonl", "leaf_hashes.txt", "verifier.vkey"] {
        std::fs::copy(good.join(f), sig.join(f)).unwrap();
    }
    let note = std::fs::read_to_string(good.join("checkpoint")).unwrap();
    let last = note.trim_end().rsplit_once(' ').unwrap();
    let mut sig_bytes = last.1.to_owned().into_bytes();
    sig_bytes[10] = if sig_bytes[10] == b'A' { b'B' } else { b'A' };
    std::fs::write(
        sig.join("checkpoint"),
        format!("{} {}\n", last.0, String::from_utf8(sig_bytes).unwrap()),
    )
    .unwrap();
    let (ok, report) = verify(&sig, &[]);
    assert!(!ok && report.contains("checkpoint rejected"), "{report}");

    // An older checkpoint, signed with the real key, for a history this log does not extend.
    let signer = CheckpointSigner::from_signer_key_string(
        std::fs::read_to_string(data.join("audit.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let forged = signer.sign(3, Hash([7; 32])).unwrap();
    let prev = dir.path().join("previous-checkpoint");
    std::fs::write(&prev, forged).unwrap();
    let (ok, report) = verify(&good, &["--previous", prev.to_str().unwrap()]);
    assert!(
        !ok && report.contains("do not match the previous checkpoint"),
        "{report}"
    );
    // A genuine older checkpoint is accepted.
    let older = dir.path().join("older-checkpoint");
    std::fs::copy(good.join("checkpoint"), &older).unwrap();
    let (ok, report) = verify(&good, &["--previous", older.to_str().unwrap()]);
    assert!(
        ok && report.contains("consistent with the previous checkpoint"),
        "{report}"
    );

    // An entry edited in the database after the fact is pinpointed in the next export.
    let db = format!("sqlite://{}", data.join("deskgate.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        sqlx::query("UPDATE audit_log SET body = replace(body, '\"event\":\"', '\"event\":\"x') WHERE idx = 3")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let edited = dir.path().join("export-after-db-edit");
    export(&data, &edited, "log");
    let (ok, report) = verify(&edited, &[]);
    assert!(!ok && report.contains("entry 3 was altered"), "{report}");
    drop(demo);
}

#[test]
fn running_server_proofs_verify_and_ocsf_exports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = support::demo(&data);
    run_walkthrough(&demo);
    // The demo's stand-in device: Dave's app shows a code; Alice's app was removed by her MFA reset.
    let code = deskgate(&data, &["device", "totp", "--subject", "u-dave"]);
    assert!(code.status.success(), "{}", stderr(&code));
    let code = stdout(&code).trim().to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert!(
        !deskgate(&data, &["device", "totp", "--subject", "u-alice"])
            .status
            .success()
    );
    let key = stdout(&deskgate(&data, &["audit", "key"]))
        .trim()
        .to_owned();
    let older = dir.path().join("older");
    export(&data, &older, "log");
    // More entries after the older checkpoint.
    let o = deskgate(
        &data,
        &["admin", "token", "create", "--staff", "sam.rivera"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = deskgate(
        &data,
        &[
            "audit",
            "verify",
            "--url",
            &demo.base(),
            "--key",
            &key,
            // `=` form: a random token may begin with '-', which clap would read as a flag.
            &format!("--token={}", demo.token("avery.stone")),
            "--previous",
            older.join("checkpoint").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let report = stdout(&o);
    assert!(
        report.contains("inclusion proof") && report.contains("consistent with the previous"),
        "{report}"
    );
    let o = deskgate(
        &data,
        &[
            "audit",
            "verify",
            "--url",
            &demo.base(),
            "--key",
            &key,
            &format!("--token={}", demo.token("sam.rivera")),
        ],
    );
    assert!(!o.status.success(), "an agent may not read the log");

    let ocsf = dir.path().join("ocsf");
    export(&data, &ocsf, "ocsf");
    let events: Vec<serde_json::Value> = std::fs::read_to_string(ocsf.join("ocsf.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let disable: Vec<_> = events
        .iter()
        .filter(|e| e["class_uid"] == 3001 && e["activity_id"] == 11)
        .collect();
    assert_eq!(disable.len(), 1, "one MFA reset executed");
    assert!(
        events
            .iter()
            .any(|e| e["class_uid"] == 3005 && e["activity_id"] == 1)
    );
    for e in &events {
        for f in [
            "activity_id",
            "category_uid",
            "class_uid",
            "severity_id",
            "time",
            "type_uid",
        ] {
            assert!(e.get(f).is_some(), "{f} missing in {e}");
        }
        assert_eq!(e["category_uid"], 3);
        assert!(
            e["metadata"]["product"]["version"].is_string() && e["metadata"]["version"].is_string()
        );
    }
    drop(demo);
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut demo = support::demo(&data);
    let acked = dir.path().join("acked.txt");
    // Opens cases as fast as one client can; a case id is recorded only once the server said 201.
    let load = format!(
        r#"for i in $(seq 1 100000); do
             r=$(curl -s -w ' %{{http_code}}' -X POST {base}/api/v1/cases -H 'Authorization: Bearer {token}' \
                 -H 'Content-Type: application/json' -d '{{"subject":"u-dave","action":"password_reset","channel":"phone"}}') || exit 0
             case "$r" in *" 201") echo "$r" | sed 's/^{{"id":"\([^"]*\)".*/\1/' >> {acked};; esac
           done"#,
        base = demo.base(),
        token = demo.token("sam.rivera"),
        acked = acked.display()
    );
    let mut client = Command::new("bash")
        .args(["-c", &load])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&acked)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 40
    {
        assert!(std::time::Instant::now() < deadline, "load did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    demo.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    demo.child.wait().unwrap();
    let _ = client.kill();
    let _ = client.wait();
    let acked_ids: Vec<String> = std::fs::read_to_string(&acked)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    drop(demo);

    let demo = support::demo(&data);
    let out = dir.path().join("export");
    export(&data, &out, "log");
    let (ok, report) = verify(&out, &[]);
    assert!(ok, "the log verifies after a crash: {report}");
    let entries = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
    for id in &acked_ids {
        assert!(
            entries.contains(&format!("\"case_id\":\"{id}\"")),
            "acknowledged case {id} is missing from the log"
        );
    }
    assert!(acked_ids.len() >= 40);
    drop(demo);
}
