//! A real browser for the console's tests: Debian's chromium, driven through chromedriver with
//! the W3C WebDriver protocol, one fresh profile per session, and the waits and clicks the browser
//! tests share. Screenshots go to a temporary directory, or with DESKGATE_SCREENSHOTS=1 to
//! docs/screenshots/.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};
use thirtyfour::common::command::{Command as WdCommand, ExtensionCommand};
use thirtyfour::prelude::*;

pub const INSTALL: &str = "the browser tests need Debian's chromium and chromium-driver: \
    `apt-get install -y chromium chromium-driver` (the README's test command, ./scripts/test.sh, \
    installs them)";

/// A chromedriver process on a free port, killed when dropped.
pub struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    pub async fn start() -> Self {
        assert!(
            ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
                .iter()
                .any(|p| std::path::Path::new(p).exists()),
            "chromium is not installed: {INSTALL}"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver could not start ({e}): {INSTALL}"));
        // Owned from here on, so it is killed and reaped even if it never becomes ready.
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(resp) = client.get(format!("{}/status", driver.url)).send().await
                && let Ok(body) = resp.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "chromedriver did not become ready on {}: {INSTALL}",
            driver.url
        );
    }

    /// A fresh headless browser with its own profile (no shared cookies between sessions).
    pub async fn browser(&self, profile: &tempfile::TempDir) -> WebDriver {
        let mut caps = DesiredCapabilities::chrome();
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--window-size=1280,1100",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        WebDriver::new(self.url.clone(), caps)
            .await
            .unwrap_or_else(|e| panic!("no browser session ({e}): {INSTALL}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn screenshots() -> PathBuf {
    let dir = if std::env::var("DESKGATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        std::env::temp_dir().join("deskgate-screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shoot(driver: &WebDriver, name: &str) {
    driver
        .screenshot(&screenshots().join(format!("{name}.png")))
        .await
        .unwrap();
}

/// Waits until the element shows `want` (ignoring case: CSS upper-cases states), and returns
/// its text.
pub async fn wait_text(driver: &WebDriver, by: By, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(element) = driver.find(by.clone()).await
            && let Ok(text) = element.text().await
        {
            if text.to_lowercase().contains(&want.to_lowercase()) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = driver.source().await.unwrap_or_default();
    panic!("{by:?} never showed {want:?}; last text {last:?}; page:\n{page}");
}

pub async fn click(driver: &WebDriver, css: &str) {
    driver
        .find(By::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Replaces the text of the field `css` with `text`.
pub async fn type_into(driver: &WebDriver, css: &str, text: &str) {
    let field = driver.find(By::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The W3C WebAuthn WebDriver extension's "add virtual authenticator": a platform authenticator
/// with user verification, standing in for the person's device.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl ExtensionCommand for AddVirtualAuthenticator {
    fn parameters_json(&self) -> Option<Value> {
        Some(json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
        }))
    }

    fn method(&self) -> Method {
        Method::POST
    }

    fn endpoint(&self) -> Arc<str> {
        Arc::from("/webauthn/authenticator")
    }
}

/// Gives the browser a virtual passkey authenticator.
pub async fn add_virtual_authenticator(driver: &WebDriver) {
    driver
        .cmd(WdCommand::ExtensionCommand(Box::new(
            AddVirtualAuthenticator,
        )))
        .await
        .unwrap();
}
