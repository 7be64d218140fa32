//! The audit log over HTTP: signed checkpoints, entries, inclusion and consistency proofs, all
//! checked with the audit crate's verifiers on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use deskgate_audit::{
    Hash, RootBuilder, leaf_hash, verify_checkpoint, verify_consistency, verify_inclusion,
};
use reqwest::StatusCode;
use serde_json::Value;

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_hex(h.as_str().unwrap()).unwrap())
        .collect()
}

async fn password_reset(s: &TestServer, subject: &str) {
    let case = s.open_case("sam.rivera", subject, "password_reset").await;
    let id = case["id"].as_str().unwrap();
    s.pass_password_reset("sam.rivera", id).await;
    assert_eq!(s.execute("sam.rivera", id).await.0, StatusCode::OK);
}

async fn checkpoints_and_proofs_verify(backend: Backend) {
    let s = TestServer::start(backend).await;
    password_reset(&s, "u-dave").await;
    let auditor = s.token("avery.stone");
    let (status, cp) = s
        .post("/api/v1/audit/checkpoint", Some(&auditor), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{cp}");
    let key = cp["verifier_key"].as_str().unwrap();
    assert!(key.starts_with("deskgate.example/audit+"), "{key}");
    let checkpoint = verify_checkpoint(cp["note"].as_str().unwrap(), key).unwrap();
    let size = checkpoint.size;
    assert_eq!(size, s.service.store().audit_size().await.unwrap());

    let (status, page) = s
        .get(
            &format!("/api/v1/audit/entries?start=0&end={size}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len() as u64, size);
    let mut builder = RootBuilder::new();
    for e in entries {
        builder.push_entry(e["canonical"].as_str().unwrap().as_bytes());
    }
    assert_eq!(
        builder.root(),
        checkpoint.root,
        "the entries are the signed tree"
    );

    for (i, e) in entries.iter().enumerate() {
        let (status, proof) = s
            .get(
                &format!("/api/v1/audit/proof/inclusion?index={i}&size={size}"),
                Some(&auditor),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        let leaf = leaf_hash(e["canonical"].as_str().unwrap().as_bytes());
        verify_inclusion(
            leaf,
            i as u64,
            size,
            &hashes(&proof["proof"]),
            checkpoint.root,
        )
        .unwrap();
        // The same proof does not prove a neighbour.
        if i > 0 {
            assert!(
                verify_inclusion(
                    leaf,
                    i as u64 - 1,
                    size,
                    &hashes(&proof["proof"]),
                    checkpoint.root
                )
                .is_err()
            );
        }
    }

    password_reset(&s, "u-bob").await;
    let (_, cp2) = s
        .post("/api/v1/audit/checkpoint", Some(&auditor), Value::Null)
        .await;
    let newer = verify_checkpoint(cp2["note"].as_str().unwrap(), key).unwrap();
    assert!(newer.size > size);
    let (status, cons) = s
        .get(
            &format!(
                "/api/v1/audit/proof/consistency?from={size}&to={}",
                newer.size
            ),
            Some(&auditor),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cons}");
    verify_consistency(
        size,
        checkpoint.root,
        newer.size,
        newer.root,
        &hashes(&cons["proof"]),
    )
    .unwrap();
    assert!(
        verify_consistency(
            size,
            newer.root,
            newer.size,
            newer.root,
            &hashes(&cons["proof"])
        )
        .is_err()
    );

    // GET returns the latest without cutting; bad ranges and the wrong role are refused.
    let (_, latest) = s.get("/api/v1/audit/checkpoint", Some(&auditor)).await;
    assert_eq!(latest["size"], newer.size);
    for bad in [
        format!(
            "/api/v1/audit/proof/inclusion?index={0}&size={0}",
            newer.size
        ),
        format!(
            "/api/v1/audit/proof/inclusion?index=0&size={}",
            newer.size + 5
        ),
        "/api/v1/audit/proof/consistency?from=0&to=1".to_owned(),
        "/api/v1/audit/proof/inclusion?index=x&size=1".to_owned(),
        "/api/v1/audit/entries?start=0&end=5000".to_owned(),
    ] {
        let (status, body) = s.get(&bad, Some(&auditor)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = s
        .get("/api/v1/audit/checkpoint", Some(&s.token("sam.rivera")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.finish().await;
}

on_both_backends!(checkpoints_and_proofs_verify);
