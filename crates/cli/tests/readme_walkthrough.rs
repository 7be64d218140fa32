//! The README's curl walkthrough, run verbatim (only the port and data directory substituted)
//! against the real `deskgate demo` binary, so the documentation cannot drift from the product.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- walkthrough:start -->").unwrap();
    let end = readme.find("<!-- walkthrough:end -->").unwrap();
    readme[start..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn readme_walkthrough_runs_verbatim_against_a_fresh_demo() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("demo");
    let _demo = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_deskgate"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .env("DESKGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(data.join("demo.json").exists() && TcpStream::connect(("127.0.0.1", port)).is_ok()) {
        assert!(Instant::now() < deadline, "demo did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = walkthrough();
    assert!(script.contains("B=http://127.0.0.1:8080") && script.contains("D=deskgate-demo"));
    let script = script
        .replace(
            "B=http://127.0.0.1:8080",
            &format!("B=http://127.0.0.1:{port}"),
        )
        .replace("D=deskgate-demo", &format!("D={}", data.display()));
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in ["verifying", "approved", "executed", "temporary_access_pass"] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("\"event\": \"execution.performed\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+1 *** *** 42"),
        "masked contacts shown: {stdout}"
    );
}
