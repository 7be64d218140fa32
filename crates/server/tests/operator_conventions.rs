//! What operators expect of a service (issue 18): a front door at `/`, and `/metrics` in the
//! Prometheus text format, open to the configured addresses or the metrics token only, whose
//! series move with the events they count and never name a case or a person.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server::{Backend, TestServer};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use serde_json::json;

const AGENT: &str = "sam.rivera";

on_both_backends!(
    the_front_door_links_the_console_and_the_health_endpoints,
    metrics_move_with_a_small_flow_and_name_routes_by_template,
    metrics_are_hidden_from_other_addresses_and_open_to_the_token,
);

async fn the_front_door_links_the_console_and_the_health_endpoints(backend: Backend) {
    let s = TestServer::start(backend).await;
    let resp = s.client.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let page = resp.text().await.unwrap();
    for link in [
        "href=\"/console\"",
        "href=\"/me\"",
        "href=\"/healthz\"",
        "href=\"/readyz\"",
    ] {
        assert!(page.contains(link), "{link} missing from {page}");
    }
    // Nothing inline for the policy to forbid: scripts only by src, no style attributes.
    for tag in page.match_indices("<script").map(|(i, _)| &page[i..]) {
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!page.contains(" style="), "{page}");
    assert!(!page.contains("<style"), "{page}");
    s.finish().await;
}

/// The samples of an exposition, as (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The sum of every sample of `name` carrying all of `labels`.
fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape(s: &TestServer) -> String {
    let resp = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    resp.text().await.unwrap()
}

async fn metrics_move_with_a_small_flow_and_name_routes_by_template(backend: Backend) {
    // One verification per case, so that a second start meets a rate limit.
    let s = TestServer::start_with(backend, |c| c.max_verifications_per_case = 1).await;
    let before = scrape(&s).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (vid, code) = s.send_code(AGENT, id, "email_code").await;
    let wrong = if code.starts_with('0') { "1" } else { "0" }.repeat(code.len());
    let (status, _) = s.answer(AGENT, id, &vid, &wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/verifications"),
            Some(&s.token(AGENT)),
            json!({ "method": "sms_code" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/cancel"),
            Some(&s.token(AGENT)),
            json!({ "reason": "caller hung up" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = scrape(&s).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        let (was, is) = (total(&before, name, labels), total(&after, name, labels));
        assert!(
            is > was,
            "{name}{labels:?} did not move: {was} -> {is}\n{after}"
        );
    };
    let opened = [
        ("action", "password_reset"),
        ("tier", "standard"),
        ("outcome", "opened"),
    ];
    moved("deskgate_cases_opened_total", &opened);
    let cancelled = [("action", "password_reset"), ("outcome", "cancelled")];
    moved("deskgate_cases_ended_total", &cancelled);
    moved(
        "deskgate_verifications_total",
        &[("method", "email_code"), ("outcome", "failed")],
    );
    moved(
        "deskgate_verifications_total",
        &[("method", "email_code"), ("outcome", "passed")],
    );
    moved("deskgate_audit_append_duration_seconds_count", &[]);
    moved("deskgate_audit_events_total", &[("event", "case.opened")]);
    moved(
        "deskgate_delivery_duration_seconds_count",
        &[("channel", "email")],
    );
    let route = "/api/v1/cases/{id}/verifications/{vid}";
    moved(
        "deskgate_http_request_duration_seconds_count",
        &[("method", "POST"), ("route", route), ("status", "422")],
    );
    moved(
        "deskgate_http_request_duration_seconds_count",
        &[("method", "POST"), ("route", route), ("status", "200")],
    );
    moved(
        "deskgate_rate_limit_refusals_total",
        &[("limit", "verifications_per_case")],
    );
    assert!(
        after.contains("deskgate_audit_checkpoint_age_seconds"),
        "{after}"
    );
    // Routes by template only: no case id, verification id, subject or staff token in a label.
    for secret in [id, vid.as_str(), "u-dave", &s.token(AGENT), &code] {
        assert!(!after.contains(secret), "{secret} appears in the metrics");
    }
    s.finish().await;
}

async fn metrics_are_hidden_from_other_addresses_and_open_to_the_token(backend: Backend) {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("metrics.token");
    std::fs::write(&token_file, "scrape-me-0123456789abcdef\n").unwrap();
    let s = TestServer::start_with(backend, |c| {
        c.metrics.allow = vec!["192.0.2.0/24".parse().unwrap()];
        c.metrics.token_file = Some(token_file.clone());
    })
    .await;
    let get = |token: Option<&str>| {
        let mut req = s.client.get(format!("{}/metrics", s.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // From loopback, which this server does not allow: no such endpoint.
    let resp = get(None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = get(Some("scrape-me-0123456789abcdeX")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = get(Some("scrape-me-0123456789abcdef")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("deskgate_audit_checkpoint_age_seconds"),
        "{text}"
    );
    s.finish().await;
}
