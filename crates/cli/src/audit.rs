//! `deskgate audit`: print the checkpoint verifier key, export the log (entries, leaf hashes,
//! signed checkpoint, verifier key; or OCSF events), and verify an export or a running server
//! without trusting either.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use deskgate_app::Service;
use deskgate_audit::{
    AuditEntry, Checkpoint, Hash, LogVerifier, leaf_hash, verify_checkpoint, verify_consistency,
    verify_inclusion,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

pub(crate) const ENTRIES: &str = "entries.jsonl";
pub(crate) const LEAVES: &str = "leaf_hashes.txt";
pub(crate) const CHECKPOINT: &str = "checkpoint";
pub(crate) const VKEY: &str = "verifier.vkey";
pub(crate) const OCSF: &str = "ocsf.jsonl";

const PAGE: u64 = 5_000;

fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} entries {per_sec} {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Writes the log as of a freshly cut checkpoint into `out`.
pub(crate) async fn export(service: &Service, out: &Path, ocsf: bool) -> Result<String, String> {
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let checkpoint = service.cut_checkpoint().await.map_err(|e| e.to_string())?;
    let target = out.join(if ocsf { OCSF } else { ENTRIES });
    let mut entries = BufWriter::new(File::create(&target).map_err(|e| io_err(&target, e))?);
    let leaves_path = out.join(LEAVES);
    let mut leaves = if ocsf {
        None
    } else {
        Some(BufWriter::new(
            File::create(&leaves_path).map_err(|e| io_err(&leaves_path, e))?,
        ))
    };
    let mut written = 0u64;
    let mut start = 0;
    while start < checkpoint.size {
        let end = (start + PAGE).min(checkpoint.size);
        let page = service
            .store()
            .audit_entries(start, end)
            .await
            .map_err(|e| e.to_string())?;
        for record in page {
            if ocsf {
                let entry = AuditEntry::from_canonical(record.body.as_bytes())
                    .map_err(|e| format!("entry {}: {e}", record.index))?;
                if let Some(event) = deskgate_audit::to_ocsf(&entry, env!("CARGO_PKG_VERSION")) {
                    writeln!(entries, "{event}").map_err(|e| io_err(&target, e))?;
                    written += 1;
                }
            } else {
                writeln!(entries, "{}", record.body).map_err(|e| io_err(&target, e))?;
                written += 1;
            }
            if let Some(l) = leaves.as_mut() {
                writeln!(l, "{}", record.leaf_hash).map_err(|e| io_err(&leaves_path, e))?;
            }
        }
        start = end;
    }
    entries.flush().map_err(|e| io_err(&target, e))?;
    if let Some(mut l) = leaves {
        l.flush().map_err(|e| io_err(&leaves_path, e))?;
    }
    let cp = out.join(CHECKPOINT);
    std::fs::write(&cp, &checkpoint.note).map_err(|e| io_err(&cp, e))?;
    let vk = out.join(VKEY);
    std::fs::write(&vk, format!("{}\n", service.audit_verifier_key()))
        .map_err(|e| io_err(&vk, e))?;
    Ok(format!(
        "exported {written} {} of a log of {} entries to {} (checkpoint root {})",
        if ocsf { "OCSF events" } else { "entries" },
        checkpoint.size,
        out.display(),
        checkpoint.root
    ))
}

/// `--key` may be the key itself or a file holding it.
fn read_key(key: &str) -> Result<String, String> {
    if Path::new(key).is_file() {
        return std::fs::read_to_string(key)
            .map(|k| k.trim().to_owned())
            .map_err(|e| format!("{key}: {e}"));
    }
    Ok(key.trim().to_owned())
}

fn read_previous(path: Option<&PathBuf>, key: &str) -> Result<Option<Checkpoint>, String> {
    path.map(|p| {
        let text = std::fs::read_to_string(p).map_err(|e| io_err(p, e))?;
        verify_checkpoint(&text, key)
            .map_err(|e| format!("previous checkpoint {}: {e}", p.display()))
    })
    .transpose()
}

/// Recomputes an export's tree, checks the signature and, given an older checkpoint, the
/// consistency with it. Names the first bad index.
pub(crate) fn verify_dir(
    dir: &Path,
    key: &str,
    previous: Option<&PathBuf>,
) -> Result<String, String> {
    use std::io::Read as _;
    // Entries are read in blocks of whole lines, so that `push_lines` can check them on all
    // cores.
    const BLOCK: u64 = 4 << 20;
    let key = read_key(key)?;
    let previous = read_previous(previous, &key)?;
    let cp_path = dir.join(CHECKPOINT);
    let note = std::fs::read_to_string(&cp_path).map_err(|e| io_err(&cp_path, e))?;
    let mut verifier =
        LogVerifier::new(&note, &key, previous.as_ref()).map_err(|e| format!("FAILED: {e}"))?;
    let size = verify_checkpoint(&note, &key)
        .map(|c| c.size)
        .unwrap_or_default();
    let entries_path = dir.join(ENTRIES);
    let mut entries = File::open(&entries_path).map_err(|e| io_err(&entries_path, e))?;
    let mut recorded = match File::open(dir.join(LEAVES)) {
        Ok(f) => Some(BufReader::new(f).lines()),
        Err(_) => None,
    };
    let bar = progress(size);
    let (mut pending, mut leaves, mut index) = (Vec::new(), Vec::new(), 0u64);
    loop {
        let read = (&mut entries)
            .take(BLOCK)
            .read_to_end(&mut pending)
            .map_err(|e| io_err(&entries_path, e))?;
        let end = match pending.iter().rposition(|&b| b == b'\n') {
            _ if read == 0 => pending.len(),
            Some(newline) => newline + 1,
            None => continue,
        };
        leaves.clear();
        // Structure first (order, gaps, canonical form), then the leaf hash recorded when the
        // entry was written, which pinpoints an entry edited later. The entries before a bad
        // one come back in `leaves`, so their recorded hashes are still checked first.
        let pushed = verifier.push_lines(&pending[..end], &mut leaves);
        for leaf in &leaves {
            if let Some(Some(Ok(expected))) = recorded.as_mut().map(Iterator::next)
                && leaf.to_hex() != expected.trim()
            {
                bar.abandon();
                return Err(format!(
                    "FAILED: entry {index} was altered after it was logged (its leaf hash no longer matches)"
                ));
            }
            index += 1;
        }
        pushed.map_err(|e| {
            bar.abandon();
            format!("FAILED: {e}")
        })?;
        bar.inc(leaves.len() as u64);
        pending.drain(..end);
        if read == 0 {
            break;
        }
    }
    bar.finish_and_clear();
    let verified = verifier.finish().map_err(|e| format!("FAILED: {e}"))?;
    Ok(match verified.consistent_with {
        Some(old) => format!(
            "OK: {} entries verified against checkpoint root {}; consistent with the previous checkpoint of size {old}",
            verified.checkpoint.size, verified.checkpoint.root
        ),
        None => format!(
            "OK: {} entries verified against checkpoint root {}",
            verified.checkpoint.size, verified.checkpoint.root
        ),
    })
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Result<Value, String> {
    let resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    Ok(body)
}

fn hashes(v: &Value) -> Result<Vec<Hash>, String> {
    v.as_array()
        .ok_or("proof is not a list")?
        .iter()
        .map(|h| {
            h.as_str()
                .ok_or_else(|| "proof element is not a string".to_owned())
                .and_then(|s| Hash::from_hex(s).map_err(|e| e.to_string()))
        })
        .collect()
}

fn hash_at(v: &Value, key: &str) -> Result<Hash, String> {
    v[key]
        .as_str()
        .ok_or_else(|| format!("{key} missing"))
        .and_then(|s| Hash::from_hex(s).map_err(|e| e.to_string()))
}

/// A running server's audit API, read with one staff token.
struct Remote<'a> {
    client: reqwest::Client,
    base: &'a str,
    token: &'a str,
}

impl Remote<'_> {
    async fn get(&self, path: &str) -> Result<Value, String> {
        get_json(&self.client, &format!("{}{path}", self.base), self.token).await
    }
}

/// Checks a running server: its signed checkpoint, every entry against it, inclusion proofs and
/// the consistency proof from an older checkpoint.
pub(crate) async fn verify_url(
    base: &str,
    key: &str,
    token: &str,
    previous: Option<&PathBuf>,
) -> Result<String, String> {
    let key = read_key(key)?;
    let previous = read_previous(previous, &key)?;
    let remote = Remote {
        client: reqwest::Client::new(),
        base: base.trim_end_matches('/'),
        token,
    };
    let cp = remote.get("/api/v1/audit/checkpoint").await?;
    let note = cp["note"].as_str().ok_or("checkpoint note missing")?;
    let checkpoint = verify_checkpoint(note, &key).map_err(|e| format!("FAILED: {e}"))?;
    let verifier =
        LogVerifier::new(note, &key, previous.as_ref()).map_err(|e| format!("FAILED: {e}"))?;
    if let Some(prev) = &previous
        && prev.size > 0
        && prev.size < checkpoint.size
    {
        check_consistency(&remote, prev, &checkpoint).await?;
    }
    let leaves = verify_entries(&remote, verifier, checkpoint.size).await?;
    let checked = check_inclusion_sample(&remote, &leaves, &checkpoint).await?;
    Ok(format!(
        "OK: {} entries of {} verified against checkpoint root {}; {checked} inclusion proof(s){}",
        checkpoint.size,
        remote.base,
        checkpoint.root,
        previous
            .map(|p| format!(
                "; consistent with the previous checkpoint of size {}",
                p.size
            ))
            .unwrap_or_default()
    ))
}

/// The server's log must extend the previous checkpoint.
async fn check_consistency(
    remote: &Remote<'_>,
    prev: &Checkpoint,
    checkpoint: &Checkpoint,
) -> Result<(), String> {
    let proof = remote
        .get(&format!(
            "/api/v1/audit/proof/consistency?from={}&to={}",
            prev.size, checkpoint.size
        ))
        .await?;
    verify_consistency(
        prev.size,
        prev.root,
        checkpoint.size,
        checkpoint.root,
        &hashes(&proof["proof"])?,
    )
    .map_err(|e| {
        format!("FAILED: the server's log is not an extension of the previous checkpoint: {e}")
    })
}

/// Reads every entry up to `size`, checks each is canonical and that together they make the
/// checkpoint's root; returns their leaf hashes.
async fn verify_entries(
    remote: &Remote<'_>,
    mut verifier: LogVerifier,
    size: u64,
) -> Result<Vec<Hash>, String> {
    let bar = progress(size);
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut start = 0;
    while start < size {
        let end = (start + 1000).min(size);
        let page = remote
            .get(&format!("/api/v1/audit/entries?start={start}&end={end}"))
            .await?;
        for e in page["entries"].as_array().ok_or("entries missing")? {
            let canonical = e["canonical"]
                .as_str()
                .ok_or("entry without canonical form")?;
            verifier
                .push(canonical.as_bytes())
                .map_err(|e| format!("FAILED: {e}"))?;
            leaves.push(leaf_hash(canonical.as_bytes()));
            bar.inc(1);
        }
        start = end;
    }
    bar.finish_and_clear();
    verifier.finish().map_err(|e| format!("FAILED: {e}"))?;
    Ok(leaves)
}

/// Inclusion proofs: all of a small log, an even sample of a large one, always the last entry.
/// Returns how many were checked.
async fn check_inclusion_sample(
    remote: &Remote<'_>,
    leaves: &[Hash],
    checkpoint: &Checkpoint,
) -> Result<u64, String> {
    let n = checkpoint.size;
    let step = (n / 256).max(1);
    let mut checked = 0;
    let mut index = 0;
    while index < n {
        let idx = if index + step >= n { n - 1 } else { index };
        let proof = remote
            .get(&format!(
                "/api/v1/audit/proof/inclusion?index={idx}&size={n}"
            ))
            .await?;
        let leaf = leaves
            .get(usize::try_from(idx).unwrap_or(usize::MAX))
            .copied()
            .ok_or("missing leaf")?;
        verify_inclusion(leaf, idx, n, &hashes(&proof["proof"])?, checkpoint.root)
            .map_err(|e| format!("FAILED: inclusion proof of entry {idx}: {e}"))?;
        if hash_at(&proof, "root")? != checkpoint.root {
            return Err(format!(
                "FAILED: the server's root for size {n} differs from its checkpoint"
            ));
        }
        checked += 1;
        index = if idx == n - 1 { n } else { index + step };
    }
    Ok(checked)
}
