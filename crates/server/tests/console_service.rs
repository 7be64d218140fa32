//! The console's pages read their data through the application service, and the service (not the
//! page) decides who may read it: calling the service directly, without any console in between,
//! refuses the same roles the pages refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use deskgate_core::Staff;
use reqwest::StatusCode;

const AGENT: &str = "sam.rivera";
const AGENT2: &str = "jordan.blake";
const SUPERVISOR: &str = "morgan.lee";
const OFFICER: &str = "riley.chen";
const AUDITOR: &str = "avery.stone";
const ADMIN: &str = "quinn.adams";

async fn staff(s: &TestServer, name: &str) -> Staff {
    s.service.authenticate(&s.token(name)).await.unwrap()
}

fn status<T>(result: Result<T, deskgate_app::AppError>) -> StatusCode {
    match result {
        Ok(_) => StatusCode::OK,
        Err(e) => StatusCode::from_u16(deskgate_server::error::status(&e).as_u16()).unwrap(),
    }
}

async fn console_reads_are_authorised_by_the_service(backend: Backend) {
    let s = TestServer::start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let case_id = case["id"].as_str().unwrap();
    let svc = &s.service;

    for name in [AGENT, AGENT2, SUPERVISOR, OFFICER, AUDITOR, ADMIN] {
        let who = staff(&s, name).await;
        let oversees = matches!(name, SUPERVISOR | OFFICER | AUDITOR);
        let expect = |allowed: bool| {
            if allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            }
        };
        assert_eq!(
            status(svc.dashboard_stats(&who).await),
            expect(oversees),
            "dashboard statistics for {name}"
        );
        assert_eq!(
            status(svc.security_overview(&who).await),
            expect(name == OFFICER),
            "security overview for {name}"
        );
        assert_eq!(
            status(svc.admin_overview(&who).await),
            expect(name == ADMIN),
            "admin overview for {name}"
        );
        // The grant's cooling-off end follows who may see the case: its agent and oversight,
        // not another agent, nor the admin.
        assert_eq!(
            status(svc.grant_not_before(&who, case_id).await),
            expect(name == AGENT || oversees),
            "grant of another's case for {name}"
        );
    }

    // What is allowed carries the data the pages show.
    let stats = svc
        .dashboard_stats(&staff(&s, SUPERVISOR).await)
        .await
        .unwrap();
    assert!(stats.total >= 1, "the case opened above is counted");
    let admin = svc.admin_overview(&staff(&s, ADMIN).await).await.unwrap();
    assert!(admin.staff.iter().any(|p| p.name == AGENT));
    assert_eq!(admin.bundle.digest(), svc.bundle().digest());
    s.finish().await;
}

on_both_backends!(console_reads_are_authorised_by_the_service);
