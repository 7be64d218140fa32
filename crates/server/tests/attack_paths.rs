//! The attack paths of the bundle in force (issue 13): the admin overview carries the matrix,
//! and a reload refuses a bundle whose own gates fail, naming the path, on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;

async fn the_admin_overview_shows_the_attack_matrix(backend: Backend) {
    let s = TestServer::start(backend).await;
    let admin = s
        .service
        .store()
        .staff_by_name("quinn.adams")
        .await
        .unwrap()
        .unwrap();
    let overview = s.service.admin_overview(&admin).await.unwrap();
    let analysis = overview.analysis.unwrap();
    assert!(analysis.violations.is_empty(), "{:?}", analysis.violations);
    assert!(analysis.cells.len() > 20);
    let agent = s
        .service
        .store()
        .staff_by_name("sam.rivera")
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.service.admin_overview(&agent).await.is_err(),
        "admins only"
    );
    s.finish().await;
}

/// A bundle that lets one email code reset a standard password (both layers agree, its own
/// tests updated to match) still breaks its gate: the reload is refused, the path named, the
/// running bundle stays and the refusal is audited.
async fn a_bundle_that_breaks_its_gates_is_not_put_in_force(backend: Backend) {
    let bundle_dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default");
    deskgate_testkit::bundle::copy_dir(std::path::Path::new(src), bundle_dir.path());
    let dir = bundle_dir.path().to_path_buf();
    let s = TestServer::start_with(backend, |c| c.policy_dir = Some(dir)).await;
    let old = s.service.bundle().digest().to_owned();

    let edit = |file: &str, from: &str, to: &str| {
        let path = bundle_dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "playbooks.toml",
        "min_classes = 2\nrequired_any_of = [[\"phone_of_record\", \"email_of_record\", \"manager\"]]\ngrant_minutes = 15",
        "min_classes = 1\nrequired_any_of = []\ngrant_minutes = 15",
    );
    edit(
        "policies/permits.cedar",
        "  context.evidence_count >= 2 &&\n  context.evidence_classes.containsAny([\"phone_of_record\", \"email_of_record\", \"manager\"])\n};\n\n@id(\"execute-sensitive-light\")",
        "  context.evidence_count >= 1\n};\n\n@id(\"execute-sensitive-light\")",
    );
    for test_file in std::fs::read_dir(bundle_dir.path().join("tests")).unwrap() {
        std::fs::remove_file(test_file.unwrap().path()).unwrap();
    }

    let (status, body) = s
        .post(
            "/api/v1/admin/policy/reload",
            Some(&s.token("quinn.adams")),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "policy_invalid");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("one-factor-never-obtains-another") && message.contains("{mailbox}"),
        "{message}"
    );
    assert_eq!(s.service.bundle().digest(), old, "the running bundle stays");
    assert!(
        s.events_since(0)
            .await
            .contains(&"policy.reload_refused".to_owned())
    );
    s.finish().await;
}

on_both_backends!(
    the_admin_overview_shows_the_attack_matrix,
    a_bundle_that_breaks_its_gates_is_not_put_in_force,
);
