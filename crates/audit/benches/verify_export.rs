//! Full verification of an exported audit log against `sha256sum` over the same file.
//!
//! Writes an export of realistic entries (about 400 bytes each: actor, case id, event, a details
//! object, a policy digest and evidence digests) with a signed checkpoint into a temporary
//! directory, then times verifying it from the file, as `deskgate audit verify` does, and
//! `sha256sum` (GNU coreutils) reading the same file.
//!
//! `cargo bench -p deskgate-audit --bench verify_export`; set `DESKGATE_BENCH_ENTRIES` for a
//! quicker run with fewer entries (default 1,000,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use deskgate_audit::{
    Actor, AuditEntry, CheckpointSigner, LogVerifier, RootBuilder, canonical_bytes,
};
use serde_json::json;

const ORIGIN: &str = "deskgate.example/audit";
/// Each measurement is repeated and the fastest run kept: the machine is shared, and other
/// work only ever makes a run slower.
const RUNS: usize = 3;
/// Bytes read per call of `push_lines`: large enough that starting threads is noise.
const BLOCK: usize = 4 << 20;

const EVENTS: [&str; 6] = [
    "case.opened",
    "identity.verified",
    "approval.granted",
    "action.executed",
    "factor.disabled",
    "case.closed",
];

fn entry(index: u64) -> AuditEntry {
    let digest =
        |salt: &str| deskgate_audit::leaf_hash(format!("{salt}{index}").as_bytes()).to_hex();
    AuditEntry {
        index,
        time: format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            1 + index / 86_400 % 28,
            index / 3600 % 24,
            index / 60 % 60,
            index % 60,
            index % 1000
        ),
        actor: Actor {
            id: format!("staff-{:05}", index % 40_000),
            role: if index.is_multiple_of(7) {
                "manager"
            } else {
                "agent"
            }
            .to_owned(),
            auth: "passkey".to_owned(),
        },
        case_id: Some(format!("case-{:08}", index / 6)),
        event: EVENTS[(index % 6) as usize].to_owned(),
        details: json!({
            "channel": if index.is_multiple_of(2) { "sms" } else { "email" },
            "subject": format!("user-{:07}", index * 7919 % 1_000_000),
            "reason": "locked out after travel, identity proven on video",
            "risk": { "score": index % 100, "signals": ["new_device", "geo_change"] },
            "step": index % 6,
            "ticket": format!("HD-{}", 100_000 + index / 6),
        }),
        // Only decisions name the policy bundle that made them.
        policy_digest: (index % 6 == 2).then(|| format!("sha256:{}", digest("policy"))),
        // Verifications and the approvals relying on them cite the evidence.
        evidence_digests: if matches!(index % 6, 1 | 2) {
            vec![format!("sha256:{}", digest("evidence"))]
        } else {
            vec![]
        },
    }
}

/// Writes `count` entries and a checkpoint signed for them; returns the entry file's size.
fn write_export(dir: &Path, count: u64, signer: &CheckpointSigner) -> u64 {
    let path = dir.join("entries.jsonl");
    let mut out = BufWriter::new(File::create(&path).unwrap());
    let mut builder = RootBuilder::new();
    for index in 0..count {
        let line = canonical_bytes(&entry(index));
        builder.push_entry(&line);
        out.write_all(&line).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    let note = signer.sign(builder.size(), builder.root()).unwrap();
    std::fs::write(dir.join("checkpoint"), note).unwrap();
    std::fs::write(dir.join("verifier.vkey"), signer.verifier_key_string()).unwrap();
    std::fs::metadata(&path).unwrap().len()
}

/// Reads the export's files and verifies it in blocks of whole lines, as the CLI does.
fn verify_export(dir: &Path) -> u64 {
    let mut verifier = verifier(dir);
    let mut file = File::open(dir.join("entries.jsonl")).unwrap();
    let mut pending = Vec::with_capacity(2 * BLOCK);
    let mut leaves = Vec::new();
    loop {
        let read = (&mut file)
            .take(BLOCK as u64)
            .read_to_end(&mut pending)
            .unwrap();
        let end = match pending.iter().rposition(|&byte| byte == b'\n') {
            _ if read == 0 => pending.len(),
            Some(newline) => newline + 1,
            None => continue,
        };
        leaves.clear();
        verifier.push_lines(&pending[..end], &mut leaves).unwrap();
        pending.drain(..end);
        if read == 0 {
            break;
        }
    }
    verifier.finish().unwrap().checkpoint.size
}

/// The same, one line at a time on one core, as [`deskgate_audit::verify_log`] does.
fn verify_export_by_entry(dir: &Path) -> u64 {
    let mut verifier = verifier(dir);
    let file = File::open(dir.join("entries.jsonl")).unwrap();
    for line in BufReader::new(file).split(b'\n') {
        verifier.push(&line.unwrap()).unwrap();
    }
    verifier.finish().unwrap().checkpoint.size
}

fn verifier(dir: &Path) -> LogVerifier {
    let note = std::fs::read_to_string(dir.join("checkpoint")).unwrap();
    let key = std::fs::read_to_string(dir.join("verifier.vkey")).unwrap();
    LogVerifier::new(&note, &key, None).unwrap()
}

fn sha256sum(path: &Path) {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(output.status.success(), "sha256sum failed: {output:?}");
}

/// The fastest of [`RUNS`] runs of `f`, and the value of the last.
fn fastest<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut value = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        value = Some(f());
        best = best.min(start.elapsed());
    }
    (best, value.unwrap())
}

fn main() {
    let count: u64 = std::env::var("DESKGATE_BENCH_ENTRIES")
        .map(|n| {
            n.replace('_', "")
                .parse()
                .expect("DESKGATE_BENCH_ENTRIES is a count")
        })
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate(ORIGIN).unwrap();
    let bytes = write_export(dir.path(), count, &signer);
    let mb = bytes as f64 / 1e6;
    println!(
        "export: {count} entries, {mb:.1} MB ({} bytes per entry)",
        bytes / count.max(1)
    );

    let (sha, ()) = fastest(|| sha256sum(&dir.path().join("entries.jsonl")));
    let (verify, verified) = fastest(|| verify_export(dir.path()));
    assert_eq!(verified, count);
    let (by_entry, verified) = fastest(|| verify_export_by_entry(dir.path()));
    assert_eq!(verified, count);
    let rate = |time: Duration| count as f64 / time.as_secs_f64() / 1e6;
    let (verify_s, sha_s) = (verify.as_secs_f64(), sha.as_secs_f64());
    println!(
        "verify: {count} entries in {verify_s:.2} s = {:.2} M entries/s, {:.0} MB/s \
         (sha256sum: {sha_s:.2} s, {:.0} MB/s; ratio {:.2})",
        rate(verify),
        mb / verify_s,
        mb / sha_s,
        // As time: above 1, verification is slower than hashing the file once.
        verify_s / sha_s,
    );
    println!(
        "entry by entry on one core: {:.2} s = {:.2} M entries/s",
        by_entry.as_secs_f64(),
        rate(by_entry)
    );
}
