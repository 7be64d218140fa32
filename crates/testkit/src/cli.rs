//! Running the real `deskgate` binary in tests: a demo server on a free port over a temporary
//! data directory, and one-shot commands against the same directory. The binary's path is only
//! known to the CLI crate's own tests (`env!("CARGO_BIN_EXE_deskgate")`), so they pass it in.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Demo {
    pub child: Child,
    pub binary: PathBuf,
    pub port: u16,
    pub data: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use crate::web::free_port;

impl Demo {
    /// Starts `deskgate demo` and waits until it serves and has written demo.json.
    pub fn start(binary: &str, data: &Path) -> Self {
        let port = free_port();
        let _ = std::fs::remove_file(data.join("demo.json"));
        let child = Command::new(binary)
            .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .env("DESKGATE_LOG", "warn")
            // Variables that share the prefix but name no configuration key must be ignored.
            .env("DESKGATE_UNRELATED_SETTING", "1")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(data.join("demo.json").exists() && TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            assert!(Instant::now() < deadline, "demo did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            binary: PathBuf::from(binary),
            port,
            data: data.to_path_buf(),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The token of a seeded staff member, from demo.json.
    pub fn token(&self, name: &str) -> String {
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.data.join("demo.json")).unwrap())
                .unwrap();
        info["staff"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Runs `deskgate ARGS` with its data directory set to `data`.
pub fn deskgate(binary: &str, data: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env("DESKGATE_DATA_DIR", data)
        .env("DESKGATE_LOG", "warn")
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the README's walkthrough verbatim against `demo` (only the port and data directory are
/// substituted) and returns its standard output; panics if it fails.
pub fn run_walkthrough(demo: &Demo) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- walkthrough:start -->").unwrap();
    let end = readme.find("<!-- walkthrough:end -->").unwrap();
    let script = readme[start..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("B=http://127.0.0.1:8080") && script.contains("D=deskgate-demo"));
    let script = script
        .replace("B=http://127.0.0.1:8080", &format!("B={}", demo.base()))
        .replace("D=deskgate-demo", &format!("D={}", demo.data.display()));
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "walkthrough failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}
