//! Every console page is usable on a phone (390 x 844 CSS pixels): nothing makes the page wider
//! than the screen; wide tables scroll inside their own box instead. Checked in Chromium for each
//! role's pages, with real cases on them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::chromedriver::{Chromedriver, click, shoot, type_into, wait_text};
use deskgate_testkit::server::{Backend, TestServer};
use thirtyfour::prelude::*;

async fn sign_in(driver: &WebDriver, base: &str, token: &str) {
    driver
        .goto(format!("{base}/console/sign-in"))
        .await
        .unwrap();
    type_into(driver, "#token", token).await;
    click(driver, "form[action='/console/sign-in'] button").await;
    wait_text(driver, By::Css("header .who"), "Sign out").await;
}

/// The page's width beyond the screen's, in CSS pixels (0 when it fits).
async fn overflow(driver: &WebDriver) -> i64 {
    driver
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            Vec::new(),
        )
        .await
        .unwrap()
        .convert()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_screen() {
    let s = TestServer::start(Backend::Sqlite).await;
    let case = s.open_case("sam.rivera", "u-priya", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    s.send_code("sam.rivera", &id, "email_code").await;
    let chromedriver = Chromedriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.browser(&profile).await;
    driver.set_window_rect(0, 0, 390, 844).await.unwrap();
    let pages: [(&str, &[&str]); 4] = [
        (
            "sam.rivera",
            &[
                "/console",
                "/console/cases/new",
                "/console/cases/new?q=da",
                "/console/account",
            ],
        ),
        ("morgan.lee", &["/console/approvals", "/console/dashboard"]),
        ("riley.chen", &["/console/security"]),
        ("avery.stone", &["/console/audit"]),
    ];
    let mut wide = Vec::new();
    for (who, paths) in pages {
        driver.delete_all_cookies().await.unwrap();
        sign_in(&driver, &s.base, &s.token(who)).await;
        let mut all: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        if who == "sam.rivera" || who == "morgan.lee" {
            all.push(format!("/console/cases/{id}"));
        }
        for path in all {
            driver.goto(format!("{}{path}", s.base)).await.unwrap();
            wait_text(&driver, By::Tag("h1"), "").await;
            let over = overflow(&driver).await;
            if over > 0 {
                wide.push(format!("{who} {path}: {over}px too wide"));
            }
            if who == "sam.rivera" && path.starts_with("/console/cases/c-") {
                shoot(&driver, "phone-case").await;
            }
        }
    }
    assert!(wide.is_empty(), "{wide:#?}");
    driver.quit().await.unwrap();
    s.finish().await;
}
