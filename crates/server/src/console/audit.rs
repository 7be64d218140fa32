//! The auditor's page: the latest signed checkpoint and the log's entries, newest first, each
//! with its RFC 9162 inclusion proof checked here against the checkpoint's signed root, so the
//! page only says "verified" for what the math shows.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_audit::{
    AuditEntry, Checkpoint, Hash, leaf_hash, verify_checkpoint, verify_inclusion,
};
use serde::Deserialize;
use serde_json::Value;

use super::session::SignedIn;
use super::{Console, Failure, Nav};
use deskgate_app::AppError;

/// Entries per page: each needs its own proof, so pages stay short.
const PAGE: u64 = 20;

struct EntryRow {
    index: u64,
    time: String,
    event: String,
    actor: String,
    case_id: String,
    details: String,
    leaf_hash: String,
    proof: String,
    verified: bool,
}

struct CheckpointPanel {
    size: u64,
    root: String,
    note: String,
    created_at: String,
    verifier_key: String,
    /// The note's signature checked against the verifier key, and its size and root equal to
    /// what the server reports.
    signature: Result<(), String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    checkpoint: CheckpointPanel,
    log_size: u64,
    entries: Vec<EntryRow>,
    page: u64,
    newer: Option<u64>,
    older: Option<u64>,
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

/// Checks the signed note and returns the checkpoint it vouches for.
fn signed_checkpoint(latest: &Value) -> Result<Checkpoint, String> {
    let checkpoint = verify_checkpoint(&text(latest, "note"), &text(latest, "verifier_key"))
        .map_err(|e| e.to_string())?;
    let reported_root = Hash::from_hex(&text(latest, "root")).map_err(|e| e.to_string())?;
    if Some(checkpoint.size) != latest["size"].as_u64() || checkpoint.root != reported_root {
        return Err("the signed note disagrees with the reported size or root".to_owned());
    }
    Ok(checkpoint)
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    page: Option<u64>,
}

pub(super) async fn audit_page(
    State(console): State<Console>,
    staff: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, Failure> {
    let service = &console.service;
    let latest = service.audit_checkpoint(&staff.0, false).await?;
    let signed = signed_checkpoint(&latest);
    let log_size = service.audit_entries(&staff.0, 0, 0).await?["size"]
        .as_u64()
        .unwrap_or_default();
    let pages = log_size.div_ceil(PAGE).max(1);
    let page = q.page.unwrap_or(0).min(pages - 1);
    // Newest first: page 0 ends at the newest entry.
    let end = log_size.saturating_sub(page * PAGE);
    let start = end.saturating_sub(PAGE);
    let listed = service.audit_entries(&staff.0, start, end).await?;
    let mut entries = Vec::new();
    for record in listed["entries"].as_array().into_iter().flatten().rev() {
        entries.push(entry_row(&console, &staff, record, signed.as_ref().ok()).await?);
    }
    Ok(AuditPage {
        nav: Some(staff.nav()),
        checkpoint: CheckpointPanel {
            size: latest["size"].as_u64().unwrap_or_default(),
            root: text(&latest, "root"),
            note: text(&latest, "note"),
            created_at: text(&latest, "created_at"),
            verifier_key: text(&latest, "verifier_key"),
            signature: signed.map(|_| ()),
        },
        log_size,
        entries,
        page,
        newer: page.checked_sub(1),
        older: (page + 1 < pages).then_some(page + 1),
    }
    .into_response())
}

/// One entry, its leaf hash recomputed from the canonical bytes and its inclusion proof checked
/// against the signed checkpoint root. Entries after the checkpoint are listed unverified.
async fn entry_row(
    console: &Console,
    staff: &SignedIn,
    record: &Value,
    checkpoint: Option<&Checkpoint>,
) -> Result<EntryRow, Failure> {
    let index = record["index"].as_u64().unwrap_or_default();
    let canonical = text(record, "canonical");
    let stored_leaf = text(record, "leaf_hash");
    let entry = AuditEntry::from_canonical(canonical.as_bytes()).ok();
    let leaf = leaf_hash(canonical.as_bytes());
    let (proof, verified) = match checkpoint {
        Some(cp) if index < cp.size => {
            let answer = console
                .service
                .audit_inclusion(&staff.0, index, cp.size)
                .await?;
            let hashes: Result<Vec<Hash>, _> = answer["proof"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| Hash::from_hex(h.as_str().unwrap_or_default()))
                .collect();
            let hashes = hashes.map_err(|e| AppError::invalid(e.to_string()))?;
            let ok = leaf.to_hex() == stored_leaf
                && verify_inclusion(leaf, index, cp.size, &hashes, cp.root).is_ok();
            let shown = if ok {
                format!(
                    "verified: {} hashes up to the root of {} entries",
                    hashes.len(),
                    cp.size
                )
            } else {
                "NOT VERIFIED: the proof does not lead to the signed root".to_owned()
            };
            (shown, ok)
        }
        Some(_) => (
            "after the latest checkpoint; cut one to verify".to_owned(),
            false,
        ),
        None => (
            "no valid signed checkpoint to verify against".to_owned(),
            false,
        ),
    };
    Ok(EntryRow {
        index,
        time: entry.as_ref().map(|e| e.time.clone()).unwrap_or_default(),
        event: entry.as_ref().map(|e| e.event.clone()).unwrap_or_default(),
        actor: entry
            .as_ref()
            .map(|e| format!("{} ({}, {})", e.actor.id, e.actor.role, e.actor.auth))
            .unwrap_or_default(),
        case_id: entry
            .as_ref()
            .and_then(|e| e.case_id.clone())
            .unwrap_or_default(),
        details: entry
            .as_ref()
            .map(|e| e.details.to_string())
            .unwrap_or_default(),
        leaf_hash: stored_leaf,
        proof,
        verified,
    })
}

/// Cuts a checkpoint now, so the newest entries can be verified.
pub(super) async fn cut_checkpoint(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    console.service.audit_checkpoint(&staff.0, true).await?;
    Ok(Redirect::to("/console/audit").into_response())
}
