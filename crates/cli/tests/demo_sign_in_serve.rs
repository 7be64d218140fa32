//! Finding 12 of issue #11: one-click demo sign-in (any staff member, no password) exists only
//! under `deskgate demo`. `deskgate serve` cannot be talked into it by an environment variable or
//! its configuration file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{deskgate, free_port, stderr};

fn config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("deskgate.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             data_dir = \"{}\"\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn finding_12_demo_sign_in_variables_do_not_enable_it_under_serve() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = config(dir.path(), port, "");
    let added = deskgate(
        dir.path(),
        &[
            "admin",
            "staff",
            "add",
            "--id",
            "st-admin",
            "--name",
            "ada.admin",
            "--role",
            "admin",
            "--config",
            file.to_str().unwrap(),
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(&file)
        .env("DESKGATE_LOG", "warn")
        .env("DESKGATE_DEMO_SIGNIN", "1")
        .env("DESKGATE_DEMO_SIGN_IN", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        assert!(child.try_wait().unwrap().is_none(), "serve exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, cookie, page) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client
            .post(format!("http://127.0.0.1:{port}/console/sign-in/demo"))
            .form(&[("name", "ada.admin")])
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let cookie = resp.headers().get("set-cookie").cloned();
        let page = client
            .get(format!("http://127.0.0.1:{port}/console/sign-in"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (status, cookie, page)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    assert!(cookie.is_none(), "a session was started: {cookie:?}");
    assert!(!page.contains("/console/sign-in/demo"), "{page}");
}

#[test]
fn finding_12_serve_refuses_a_configuration_file_that_turns_demo_sign_in_on() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = config(dir.path(), port, "demo_sign_in = true\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(&file)
        .env("DESKGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with demo_sign_in in its configuration");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success());
    let err = stderr(&out);
    assert!(err.contains("demo_sign_in"), "{err}");
}
