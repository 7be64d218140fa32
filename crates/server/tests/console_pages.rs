//! The security, admin and dashboard pages over plain HTTP (no browser): who may see each, what
//! they show, and that their buttons do what the service does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use deskgate_app::labels::Label;
use deskgate_core::{ApiId, Tier};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;

const AGENT: &str = "sam.rivera";
const AGENT2: &str = "jordan.blake";
const SUPERVISOR: &str = "morgan.lee";
const OFFICER: &str = "riley.chen";
const AUDITOR: &str = "avery.stone";
const ADMIN: &str = "quinn.adams";
const EVERYONE: [&str; 5] = [AGENT, SUPERVISOR, OFFICER, AUDITOR, ADMIN];

/// A console session for one staff member, over a client that does not follow redirects.
struct Browser<'a> {
    s: &'a TestServer,
    client: reqwest::Client,
    cookie: String,
}

impl<'a> Browser<'a> {
    async fn sign_in(s: &'a TestServer, staff: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client
            .post(format!("{}/console/sign-in", s.base))
            .form(&[("token", s.token(staff))])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp.headers()[SET_COOKIE].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        Self { s, client, cookie }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.s.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// POSTs a form; returns the status, the redirect target (if any) and the body.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let resp = self
            .client
            .post(format!("{}{path}", self.s.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.status(), location, resp.text().await.unwrap())
    }
}

/// Every console page must keep to the CSP: no inline style attributes, no inline scripts.
fn assert_no_inline_code(page: &str) {
    assert!(!page.contains("style="), "inline style attribute:\n{page}");
    assert!(!page.contains("<script>"), "inline script:\n{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_page_is_refused_to_other_roles_and_linked_for_its_own() {
    let s = TestServer::start(Backend::Sqlite).await;
    let pages: [(&str, &[&str], &str); 3] = [
        ("/console/security", &[OFFICER], "Escalated cases"),
        (
            "/console/dashboard",
            &[SUPERVISOR, OFFICER, AUDITOR],
            "Cases per day by action",
        ),
        ("/console/admin", &[ADMIN], "Policy bundle in force"),
    ];
    // Signed out: sent to sign in.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, _, _) in &pages {
        let resp = anonymous
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()[LOCATION], "/console/sign-in");
    }
    for staff in EVERYONE {
        let b = Browser::sign_in(&s, staff).await;
        let (_, home) = b.get("/console").await;
        for (path, allowed, heading) in &pages {
            let (status, page) = b.get(path).await;
            let link = format!("href=\"{path}\"");
            if allowed.contains(&staff) {
                assert_eq!(status, StatusCode::OK, "{staff} on {path}: {page}");
                assert!(page.contains(heading), "{staff} on {path}: {page}");
                assert!(home.contains(&link), "{staff} has a link to {path}");
                assert_no_inline_code(&page);
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{staff} on {path}: {page}");
                assert!(!page.contains(heading), "{staff} on {path}: {page}");
                assert!(!home.contains(&link), "{staff} has no link to {path}");
            }
        }
        // Only admins reload, whatever the page shows.
        if staff != ADMIN {
            let (status, _, _) = b.post("/console/admin/reload", &[]).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{staff} reloading");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_shows_the_bundle_its_tests_and_the_staff_without_tokens() {
    let s = TestServer::start(Backend::Sqlite).await;
    let b = Browser::sign_in(&s, ADMIN).await;
    let (status, page) = b.get("/console/admin").await;
    assert_eq!(status, StatusCode::OK);
    let bundle = s.service.bundle();
    let report = deskgate_policy::run_tests(&bundle);
    assert!(page.contains(bundle.digest()), "{page}");
    assert!(
        page.contains(&format!(
            "<dd id=\"policy-count\">{}</dd>",
            bundle.policy_count()
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "{} passed, {} failed",
            report.passed(),
            report.failed()
        )),
        "{page}"
    );
    assert!(report.passed() > 0, "the default bundle has tests");
    for staff in EVERYONE {
        assert!(
            page.contains(&format!("<td>{staff}</td>")),
            "{staff}: {page}"
        );
    }
    assert!(page.contains("stores only a hash"), "{page}");
    assert!(!page.contains(&s.token(AGENT)), "no token is ever shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_a_broken_bundle_shows_the_refusal_and_keeps_the_digest() {
    let bundle_dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default");
    deskgate_testkit::bundle::copy_dir(std::path::Path::new(src), bundle_dir.path());
    let dir = bundle_dir.path().to_path_buf();
    let s = TestServer::start_with(Backend::Sqlite, |c| c.policy_dir = Some(dir)).await;
    let old = s.service.bundle().digest().to_owned();
    let b = Browser::sign_in(&s, ADMIN).await;

    let guardrails = bundle_dir.path().join("policies/guardrails.cedar");
    let text = std::fs::read_to_string(&guardrails).unwrap();
    std::fs::write(
        &guardrails,
        format!("{text}\nforbid (principal, action, resource) when {{ nonsense "),
    )
    .unwrap();
    let (status, _, page) = b.post("/console/admin/reload", &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("id=\"reload-error\""), "{page}");
    assert!(page.contains("was refused"), "{page}");
    assert!(page.contains("guardrails.cedar"), "{page}");
    assert!(
        page.contains(&format!("<code id=\"digest\">{old}</code>")),
        "the page still shows the running digest: {page}"
    );
    assert_eq!(s.service.bundle().digest(), old, "the running bundle stays");

    // A valid change is taken: the page then shows the new digest.
    std::fs::write(&guardrails, format!("{text}\n// reviewed\n")).unwrap();
    let (status, location, _) = b.post("/console/admin/reload", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/admin?reloaded=true");
    let new = s.service.bundle().digest().to_owned();
    assert_ne!(new, old);
    let (_, page) = b.get(&location).await;
    assert!(page.contains("Policy bundle reloaded."), "{page}");
    assert!(page.contains(&new), "{page}");
    let events = s.events_since(0).await;
    assert!(events.contains(&"policy.reload_refused".to_owned()));
    assert!(events.contains(&"policy.reloaded".to_owned()));
}

/// Executes a password reset for Dave (he goes on probation), then has a second agent open an
/// MFA reset for him, which the policy escalates. Returns (executed id, escalated id).
async fn probation_and_escalation(s: &TestServer) -> (String, String) {
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let executed = case["id"].as_str().unwrap().to_owned();
    s.pass_password_reset(AGENT, &executed).await;
    assert_eq!(s.execute(AGENT, &executed).await.0, StatusCode::OK);
    let escalated = s.open_case(AGENT2, "u-dave", "mfa_reset").await;
    assert_eq!(escalated["state"], "escalated", "{escalated}");
    (executed, escalated["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_page_lists_escalations_probation_and_break_glass_and_acts_on_them() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (_, escalated) = probation_and_escalation(&s).await;
    let officer = Browser::sign_in(&s, OFFICER).await;

    let (status, page) = officer.get("/console/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("action=\"/console/cases/{escalated}/resume\"")),
        "{page}"
    );
    assert!(
        page.contains("<td>u-dave</td><td>Dave Whitfield</td>"),
        "{page}"
    );
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    let until = dave.probation_until.unwrap();
    assert!(
        page.contains(&until.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{page}"
    );
    assert!(page.contains("No break-glass cases."), "{page}");

    // Resume takes the case over.
    let (status, location, _) = officer
        .post(&format!("/console/cases/{escalated}/resume"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location,
        format!("/console/cases/{escalated}?notice=resumed")
    );
    let (_, case_page) = officer.get(&location).await;
    assert!(case_page.contains("You took the case over"), "{case_page}");
    let stored = s.service.store().case(&escalated).await.unwrap().unwrap();
    assert_eq!(stored.case.agent_id, "st-riley");
    let (_, page) = officer.get("/console/security").await;
    assert!(page.contains("No escalated cases."), "{page}");
    // Resuming twice is refused with the service's reason, on the case page.
    let (status, _, again) = officer
        .post(&format!("/console/cases/{escalated}/resume"), &[])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(again.contains("id=\"case-error\""), "{again}");

    // Break-glass from the case page: offered to the officer, not to the agent.
    let case = s.open_case(AGENT, "u-priya", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let agent = Browser::sign_in(&s, AGENT).await;
    let (_, agent_view) = agent.get(&format!("/console/cases/{id}")).await;
    assert!(!agent_view.contains("break-glass-reason"), "{agent_view}");
    let (status, _, _) = agent
        .post(
            &format!("/console/cases/{id}/break-glass"),
            &[("reason", "trying")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, officer_view) = officer.get(&format!("/console/cases/{id}")).await;
    assert!(
        officer_view.contains(&format!("action=\"/console/cases/{id}/break-glass\"")),
        "{officer_view}"
    );
    let (status, location, _) = officer
        .post(
            &format!("/console/cases/{id}/break-glass"),
            &[(
                "reason",
                "Devices seized in an incident; no proofing possible tonight",
            )],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/console/cases/{id}?notice=break_glass"));
    let (_, after) = officer.get(&location).await;
    assert!(after.contains("Break-glass opened"), "{after}");
    assert!(!after.contains("break-glass-reason"), "offered once only");
    let (_, page) = officer.get("/console/security").await;
    let report = page.split("id=\"break-glass\"").nth(1).unwrap();
    assert!(report.contains(id), "{page}");
    s.assert_audit_chain_intact().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_counts_match_the_seeded_cases() {
    let s = TestServer::start(Backend::Sqlite).await;
    // Seeded: an executed password reset (sam), an escalated MFA reset (jordan), and a
    // password reset sam denies. Three cases today.
    let (executed, _) = probation_and_escalation(&s).await;
    let denied = s.open_case(AGENT, "u-priya", "password_reset").await;
    let denied_id = denied["id"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{denied_id}/deny"),
            Some(&s.token(AGENT)),
            json!({"reason": "the caller could not name their manager"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let b = Browser::sign_in(&s, AUDITOR).await;
    let (status, page) = b.get("/console/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_no_inline_code(&page);
    for expected in [
        "<dd id=\"total\">3</dd>",
        "<dd id=\"denial-rate\">1 of 3 (33%)</dd>",
        "<dd id=\"escalation-rate\">1 of 3 (33%)</dd>",
        "<dd id=\"executed\">1</dd>",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }
    // The median of one executed case is that case's own open-to-execute time.
    let stored = s
        .service
        .store()
        .case(&executed)
        .await
        .unwrap()
        .unwrap()
        .case;
    let took = (stored.executed_at.unwrap() - stored.opened_at).num_seconds();
    let median = format!(
        "<dd id=\"median\">{} min {:02} s</dd>",
        took / 60,
        took % 60
    );
    assert!(page.contains(&median), "{median}: {page}");

    // Today's row: two password resets, one MFA reset (columns in the API's action order).
    let today = s.service.now().date_naive().to_string();
    let row = format!(
        "<tr><th scope=\"row\">{today}</th><td>2</td><td>1</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>3</td></tr>"
    );
    assert!(page.contains(&row), "{row}: {page}");
    // Tiers: Dave twice, Priya once, from what the cases record.
    let dave_tier = stored.subject_tier.label();
    let priya_tier = Tier::from_api_id(denied["tier"].as_str().unwrap())
        .unwrap()
        .label();
    let tiers = page.split("id=\"tiers-table\"").nth(1).unwrap();
    if dave_tier == priya_tier {
        assert!(tiers.contains(&format!("<th scope=\"row\">{dave_tier}</th><td>3</td>")));
    } else {
        assert!(
            tiers.contains(&format!("<th scope=\"row\">{dave_tier}</th><td>2</td>")),
            "{tiers}"
        );
        assert!(
            tiers.contains(&format!("<th scope=\"row\">{priya_tier}</th><td>1</td>")),
            "{tiers}"
        );
    }
    // The escalation is jordan's, on the day shift; nobody broke glass.
    let agents = page.split("id=\"agents-table\"").nth(1).unwrap();
    assert!(
        agents.contains("<th scope=\"row\">jordan.blake</th><td>0</td><td>1</td>"),
        "{agents}"
    );
    assert!(!agents.contains("sam.rivera"), "{agents}");
    let shifts = page.split("id=\"shifts-table\"").nth(1).unwrap();
    assert!(
        shifts.contains("<th scope=\"row\">day</th><td>0</td><td>1</td>"),
        "{shifts}"
    );
    // The charts have accessible names.
    for chart in ["days", "tiers", "rates", "agents", "shifts"] {
        assert!(
            page.contains(&format!("aria-labelledby=\"{chart}-title {chart}-desc\"")),
            "{chart}"
        );
    }
    assert!(page.contains("Cases opened per day: "), "{page}");
}
