//! Short case references people can read out on a call: every case gets its own `DG-` number
//! from one counter (also under concurrency), the API and the console show it, and "Find a case"
//! opens a case by what a colleague reads out, for whoever may see that case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;
use deskgate_testkit::web::Browser;

use common::{Backend, TestServer};
use reqwest::StatusCode;

const AGENT: &str = "sam.rivera";
const AGENT2: &str = "jordan.blake";

async fn signed_in(s: &TestServer, staff: &str) -> Browser {
    let mut b = Browser::new();
    let page = b
        .post(
            &format!("{}/console/sign-in", s.base),
            &[("token", &s.token(staff))],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    b
}

fn number(reference: &str) -> u64 {
    reference.strip_prefix("DG-").unwrap().parse().unwrap()
}

async fn every_case_gets_its_own_reference_even_when_opened_at_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let first = s.open_case(AGENT, "u-dave", "password_reset").await;
    let second = s.open_case(AGENT, "u-alice", "account_unlock").await;
    let (a, b) = (
        first["reference"].as_str().unwrap(),
        second["reference"].as_str().unwrap(),
    );
    assert!(number(b) > number(a), "{a} then {b}");
    // Twelve requests at the same moment: twelve different numbers.
    let s = Arc::new(s);
    let opens: Vec<_> = (0..12)
        .map(|i| {
            let s = s.clone();
            let subject = ["u-dave", "u-alice", "u-bob"][i % 3];
            tokio::spawn(async move { s.open_case(AGENT, subject, "account_unlock").await })
        })
        .collect();
    let mut references = BTreeSet::new();
    for open in opens {
        let case = open.await.unwrap();
        references.insert(case["reference"].as_str().unwrap().to_owned());
    }
    assert_eq!(references.len(), 12, "{references:?}");
    // The list shows it too.
    let (_, list) = s.get("/api/v1/cases", Some(&s.token(AGENT))).await;
    assert!(
        list["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reference"] == a && c["subject_name"] == "Dave Whitfield"),
        "{list}"
    );
    Arc::into_inner(s).unwrap().finish().await;
}

async fn find_a_case_opens_it_for_whoever_may_see_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let (id, reference) = (
        case["id"].as_str().unwrap(),
        case["reference"].as_str().unwrap(),
    );
    let mut sam = signed_in(&s, AGENT).await;
    let queue = sam.get(&format!("{}/console", s.base)).await;
    assert!(queue.body.contains(reference), "{}", queue.body);
    // Read out on a call and typed in lower case with a space: the same case.
    let typed = reference.to_lowercase().replace('-', " ");
    let found = sam
        .get(&format!(
            "{}/console/cases/find?reference={}",
            s.base,
            typed.replace(' ', "+")
        ))
        .await;
    assert_eq!(found.status, StatusCode::SEE_OTHER, "{}", found.body);
    assert_eq!(
        found.location.unwrap().path(),
        format!("/console/cases/{id}")
    );
    let page = sam.get(&format!("{}/console/cases/{id}", s.base)).await;
    assert!(
        page.body.contains(&format!("<title>Case {reference}")),
        "{}",
        page.body
    );
    // A number nobody has, and something that is no reference: said at the field, queue kept.
    let missing = sam
        .get(&format!(
            "{}/console/cases/find?reference=DG-99999999",
            s.base
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("No case DG-99999999 was found"));
    assert!(missing.body.contains(reference), "the queue is still there");
    let junk = sam
        .get(&format!(
            "{}/console/cases/find?reference=%3Cscript%3E",
            s.base
        ))
        .await;
    assert_eq!(junk.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!junk.body.contains("<script>"));
    // Another agent may not open Sam's case by its reference either.
    let mut jordan = signed_in(&s, AGENT2).await;
    let refused = jordan
        .get(&format!(
            "{}/console/cases/find?reference={reference}",
            s.base
        ))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    s.finish().await;
}

on_both_backends!(
    every_case_gets_its_own_reference_even_when_opened_at_once,
    find_a_case_opens_it_for_whoever_may_see_it,
);
