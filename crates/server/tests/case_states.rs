//! Every state a case can be in has a designed view: the "what now" panel says where the case
//! stands, what to say, and offers exactly one next action, which works for the person looking
//! (a link that opens, a button that posts, a control on the page it jumps to); nothing on the
//! page offers what the state refuses. Walked over HTTP with a signed-in console session; the
//! browser tests (console.rs, accessibility.rs) click through the same panel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Duration;
use deskgate_testkit::server::{Backend, TestServer};
use deskgate_testkit::web::{Browser, Page};
use reqwest::StatusCode;
use serde_json::json;

const AGENT: &str = "sam.rivera";
const AGENT2: &str = "jordan.blake";
const OFFICER: &str = "riley.chen";
const OFFICER2: &str = "casey.nguyen";

/// The panel's next action: `("post", action, label)`, `("link", href, label)` (a page or a
/// `#control` on this one), or `("wait", "", "")`.
fn next_action(body: &str) -> (&'static str, String, String) {
    let at = body
        .find("id=\"next-action\"")
        .unwrap_or_else(|| panic!("no next action: {body}"));
    let before = &body[..at];
    let tag = &before[before.rfind('<').unwrap()..];
    let text_from = at + body[at..].find('>').unwrap() + 1;
    let label = body[text_from..text_from + body[text_from..].find('<').unwrap()].to_owned();
    if tag.starts_with("<button") {
        let form = &before[before.rfind("<form").unwrap()..];
        let action = attr(form, "action");
        return ("post", action, label);
    }
    if tag.starts_with("<a") {
        let rest = &body[at..text_from];
        return ("link", attr(rest, "href"), label);
    }
    assert!(label.contains("Nothing to press"), "{label}");
    ("wait", String::new(), String::new())
}

fn attr(html: &str, name: &str) -> String {
    let from = html.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    html[from..from + html[from..].find('"').unwrap()].replace("&#x2f;", "/")
}

fn headline(body: &str) -> String {
    let from = body.find("id=\"what-now-heading\">").unwrap() + "id=\"what-now-heading\">".len();
    body[from..from + body[from..].find('<').unwrap()].to_owned()
}

struct Console<'a> {
    s: &'a TestServer,
    b: Browser,
}

impl<'a> Console<'a> {
    async fn sign_in(s: &'a TestServer, staff: &str) -> Self {
        let mut b = Browser::new();
        let page = b
            .post(
                &format!("{}/console/sign-in", s.base),
                &[("token", &s.token(staff))],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        Self { s, b }
    }

    async fn case(&mut self, id: &str) -> Page {
        let page = self
            .b
            .get(&format!("{}/console/cases/{id}", self.s.base))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page
    }

    /// Checks the view: its headline, and that its one next action works.
    async fn expect(&mut self, id: &str, state: &str, headline_has: &str, next: &str) -> Page {
        let page = self.case(id).await;
        let shown = headline(&page.body);
        assert!(shown.contains(headline_has), "{state}: {shown}");
        let (kind, target, label) = next_action(&page.body);
        assert_eq!(kind, next, "{state}: {label} -> {target}");
        match kind {
            "link" if target.starts_with('#') => {
                // A control on this page: it is there.
                let anchor = format!("id=\"{}\"", &target[1..]);
                assert!(page.body.contains(&anchor), "{state}: {anchor} missing");
            }
            "link" => {
                let opened = self.b.get(&format!("{}{target}", self.s.base)).await;
                assert_eq!(opened.status, StatusCode::OK, "{state}: {target}");
            }
            _ => {}
        }
        page
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.b.post(&format!("{}{path}", self.s.base), form).await
    }
}

/// Nothing that cannot work: no verification can start and no code can be typed.
fn offers_no_verification(page: &Page, state: &str) {
    assert!(!page.body.contains("id=\"start-"), "{state}: start buttons");
    assert!(
        !page.body.contains("name=\"code\""),
        "{state}: a code field"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_has_a_view_whose_next_action_works() {
    let s = TestServer::start(Backend::Sqlite).await;
    let mut sam = Console::sign_in(&s, AGENT).await;

    // Open: the first step's buttons.
    let id = s.open_case(AGENT, "u-dave", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = sam.expect(&id, "open", "Verify the caller", "link").await;
    assert_eq!(next_action(&page.body).1, "#step-1");

    // A code sent: the field to type it in, focused.
    let (vid, code) = s.send_code(AGENT, &id, "email_code").await;
    let page = sam
        .expect(&id, "code pending", "Waiting for the code", "link")
        .await;
    assert_eq!(next_action(&page.body).1, format!("#code-{vid}"));
    assert!(page.body.contains("autofocus"));
    // A wrong code: said at the field, not at the top.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = sam
        .post(
            &format!("/console/cases/{id}/verifications/{vid}"),
            &[("code", wrong)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains(&format!("id=\"code-{vid}-error\"")));
    assert!(!refused.body.contains("id=\"case-error\""));
    // The right one: one step done and ticked, the next numbered after it.
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);
    let page = sam
        .expect(&id, "one passed", "one more independent way", "link")
        .await;
    assert!(page.body.contains("id=\"done-1\""));
    assert_eq!(next_action(&page.body).1, "#step-2");
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    assert_eq!(s.answer(AGENT, &id, &vid, &code).await.0, StatusCode::OK);

    // Approved: execute, and after it, done.
    let page = sam.expect(&id, "approved", "Approved", "post").await;
    offers_no_verification(&page, "approved");
    let (_, action, _) = next_action(&page.body);
    assert_eq!(sam.post(&action, &[]).await.status, StatusCode::SEE_OTHER);
    let page = sam.expect(&id, "executed", "Done", "link").await;
    assert_eq!(next_action(&page.body).1, "/console");
    offers_no_verification(&page, "executed");

    // Escalated by the bundle (Dave is on probation): the agent waits, an officer takes over.
    let mut jordan = Console::sign_in(&s, AGENT2).await;
    let held = s.open_case(AGENT2, "u-dave", "mfa_reset").await;
    let held = held["id"].as_str().unwrap();
    let page = jordan
        .expect(held, "escalated", "Waiting for a security officer", "wait")
        .await;
    offers_no_verification(&page, "escalated");
    let mut riley = Console::sign_in(&s, OFFICER).await;
    riley
        .expect(held, "escalated (officer)", "Escalated", "post")
        .await;

    // Too many failed verifications: the agent is told to deny; the officer resumes, and the
    // used-up method is gone.
    let id = s.open_case(AGENT, "u-bob", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "sms_code").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        s.answer(AGENT, &id, &vid, wrong).await;
    }
    let page = sam
        .expect(&id, "failures", "Too many failed verifications", "link")
        .await;
    assert_eq!(next_action(&page.body).1, "#end-case");
    offers_no_verification(&page, "failures");
    let page = riley
        .expect(&id, "failures (officer)", "Escalated", "post")
        .await;
    let (_, resume, _) = next_action(&page.body);
    assert_eq!(riley.post(&resume, &[]).await.status, StatusCode::SEE_OTHER);
    let page = riley
        .expect(&id, "resumed", "used up its tries: use another way", "link")
        .await;
    assert!(!page.body.contains("id=\"start-sms_code\""));
    // Denied.
    let denied = riley
        .post(
            &format!("/console/cases/{id}/end"),
            &[("outcome", "deny"), ("reason", "five wrong codes")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let page = riley.expect(&id, "denied", "Denied", "link").await;
    offers_no_verification(&page, "denied");

    // Waiting for the manager, then cancelled.
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.request_attestation(AGENT, &id).await;
    sam.expect(&id, "manager pending", "Waiting for the manager", "wait")
        .await;
    let cancelled = sam
        .post(
            &format!("/console/cases/{id}/end"),
            &[("outcome", "cancel"), ("reason", "caller hung up")],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    sam.expect(&id, "cancelled", "nothing was changed", "link")
        .await;

    // Approved but the grant ran out: a new case, with the subject already searched.
    let id = s.open_case(AGENT, "u-erin", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.pass_password_reset(AGENT, &id).await;
    s.clock.advance(Duration::minutes(11));
    let page = sam
        .expect(&id, "grant expired", "The grant expired unused", "link")
        .await;
    assert_eq!(next_action(&page.body).1, "/console/cases/new?q=u-erin");
    offers_no_verification(&page, "grant expired");

    // Break-glass with two officers: cooling off shows the window, then execute.
    let id = s.open_case(AGENT, "u-priya", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let why = json!({"reason": "devices seized in an incident; no proofing possible tonight"});
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{id}/break-glass"),
            Some(&s.token(OFFICER)),
            why,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ok =
        json!({"decision": "confirm", "reason": "second officer reviewed the incident ticket"});
    let (status, body) = s
        .post(
            &format!("/api/v1/cases/{id}/approvals"),
            Some(&s.token(OFFICER2)),
            ok,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = sam
        .expect(
            &id,
            "cooling off",
            "Cooling off: execution opens at",
            "wait",
        )
        .await;
    assert!(page.body.contains("Execution is possible from"));
    s.clock.advance(Duration::minutes(16));
    let page = sam.expect(&id, "cooled off", "Approved", "post").await;
    assert!(next_action(&page.body).1.ends_with("/execute"));

    // The queue puts what the agent can finish now first: the approved case above a newer one.
    let priya = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await
        .1;
    let newer = s.open_case(AGENT, "u-carol", "account_unlock").await;
    let queue = sam.b.get(&format!("{}/console", s.base)).await.body;
    let at = |r: &serde_json::Value| queue.find(r["reference"].as_str().unwrap()).unwrap();
    assert!(at(&priya) < at(&newer), "{queue}");
    // The security page says why each case waits for an officer, and for how long.
    let security = riley
        .b
        .get(&format!("{}/console/security", s.base))
        .await
        .body;
    let held_row = &security[security.find("id=\"escalated\"").unwrap()..];
    assert!(held_row.contains("probation"), "{held_row}");
    assert!(held_row.contains(" min<"), "{held_row}");
    s.finish().await;
}

/// The new-case form: several matches pre-select nobody, the action is chosen explicitly, a
/// phone call needs the caller's number, and a refusal keeps what was typed and says why at
/// the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_case_form_invites_no_mistakes_and_keeps_the_form_on_refusal() {
    let s = TestServer::start(Backend::Sqlite).await;
    let mut sam = Console::sign_in(&s, AGENT).await;
    // "da" matches Dave and Daniel: nobody is chosen for the agent.
    let page = sam
        .b
        .get(&format!("{}/console/cases/new?q=da", s.base))
        .await;
    assert!(
        page.body.matches("name=\"subject\"").count() > 1,
        "{}",
        page.body
    );
    assert!(!page.body.contains(" checked"), "a match is pre-selected");
    assert!(
        page.body.contains("manager u-bob"),
        "results show the manager"
    );
    // No action chosen: refused at the action field, the rest kept.
    let form = [
        ("subject", "u-dave"),
        ("action", ""),
        ("channel", "phone"),
        ("caller_number", "+1 555 010 0199"),
        ("ticket", "INC-77"),
    ];
    let refused = sam.post("/console/cases", &form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("id=\"action-error\""));
    assert!(refused.body.contains("value=\"INC-77\""));
    assert!(refused.body.contains("value=\"+1 555 010 0199\""));
    // A phone call without the caller's number.
    let form = [
        ("subject", "u-dave"),
        ("action", "password_reset"),
        ("channel", "phone"),
        ("caller_number", ""),
        ("ticket", "INC-77"),
    ];
    let refused = sam.post("/console/cases", &form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("id=\"caller_number-error\""));
    assert!(
        refused
            .body
            .contains("id=\"subject-u-dave\" name=\"subject\" value=\"u-dave\" required checked")
    );
    // A refusal by the rules (a terminated subject) lands on the form too, not a bare page.
    let form = [
        ("subject", "u-hank"),
        ("action", "password_reset"),
        ("channel", "ticket"),
        ("ticket", "INC-78"),
    ];
    let refused = sam.post("/console/cases", &form).await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert!(
        refused.body.contains("id=\"open-error\""),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("<form method=\"post\" action=\"/console/cases\"")
    );
    assert_eq!(
        s.events_since(0)
            .await
            .iter()
            .filter(|e| *e == "case.opened")
            .count(),
        0
    );
    s.finish().await;
}

/// A supervisor decides on the case page itself: the panel points at the decision, the evidence
/// is summed up beside the buttons, and the decision comes back to the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_decides_on_the_case_page() {
    let s = TestServer::start(Backend::Sqlite).await;
    let id = s.open_case(AGENT, "u-priya", "password_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The agent sees no decision buttons.
    let mut sam = Console::sign_in(&s, AGENT).await;
    assert!(!sam.case(&id).await.body.contains("id=\"approve\""));
    let mut morgan = Console::sign_in(&s, "morgan.lee").await;
    let page = morgan
        .expect(&id, "approval needed", "Your approval is needed", "link")
        .await;
    assert_eq!(next_action(&page.body).1, "#approve");
    // The navigation counts what waits for the approver.
    assert!(
        page.body
            .contains("id=\"approvals-waiting\" aria-label=\"1 waiting\">1<"),
        "{}",
        page.body
    );
    let decided = morgan
        .post(
            &format!("/console/cases/{id}/approvals"),
            &[
                ("decision", "confirm"),
                ("reason", "called Priya back on her desk phone"),
                ("back", "case"),
            ],
        )
        .await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER);
    assert_eq!(
        decided.location.unwrap().path(),
        format!("/console/cases/{id}")
    );
    let page = morgan.case(&id).await;
    assert!(!page.body.contains("id=\"approve\""), "decided once");
    assert!(!page.body.contains("id=\"approvals-waiting\""));
    assert!(
        s.events_since(0)
            .await
            .contains(&"approval.recorded".to_owned())
    );
    s.finish().await;
}

/// The manager's page says what they vouch for and what happens next, offers "I do not recognise
/// this, alert security" (the case is denied, the security contacts alerted, on the record), and
/// a used link answers in words for a manager, not with the staff console's error page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_who_does_not_recognise_the_request_alerts_security() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.security_contacts = vec!["soc@example.org".to_owned()];
    })
    .await;
    let id = s.open_case(AGENT, "u-alice", "mfa_reset").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = s.request_attestation(AGENT, &id).await;
    let (_, token) = link.rsplit_once("/attest/").unwrap();
    let mut manager = Browser::new();
    let base = &s.base;
    let opened = manager.get(&format!("{base}/console/attest/{token}")).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    manager
        .post(&format!("{base}/console/attest/code"), &[])
        .await;
    let code = s.last_message("attestation_sign_in_code")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = manager
        .post(
            &format!("{base}/console/attest/sign-in"),
            &[("code", &code)],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let page = manager.get(&format!("{base}/console/attest")).await;
    assert!(page.body.contains("id=\"vouch\""), "{}", page.body);
    assert!(page.body.contains("MFA reset"));
    assert!(page.body.contains("id=\"unrecognised\""));
    let before = s.service.store().audit_size().await.unwrap();
    let done = manager
        .post(
            &format!("{base}/console/attest"),
            &[("decision", "unrecognised")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("security team has been alerted"));
    let events = s.events_since(before).await;
    assert!(
        events.contains(&"attestation.rejected".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"attestation.unrecognised".to_owned()),
        "{events:?}"
    );
    let alert = s.last_message("attestation_unrecognised_alert");
    assert_eq!(alert["to"], "soc@example.org");
    let (_, case) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["state"], "denied");
    // The link again: a manager's page that says it was used.
    let again = manager.get(&format!("{base}/console/attest/{token}")).await;
    assert!(again.status.is_client_error());
    assert!(again.body.contains("id=\"link-error\""), "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);
    s.finish().await;
}
