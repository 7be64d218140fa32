//! The testkit's CLI harness (`deskgate_testkit::cli`) bound to this crate's `deskgate` binary,
//! whose path only this crate's tests know.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::path::Path;
use std::process::Output;

pub use deskgate_testkit::cli::{Demo, free_port, run_walkthrough, stderr, stdout};

/// The `deskgate` binary under test.
pub const DESKGATE: &str = env!("CARGO_BIN_EXE_deskgate");

/// Starts `deskgate demo` over `data`.
pub fn demo(data: &Path) -> Demo {
    Demo::start(DESKGATE, data)
}

/// Runs `deskgate ARGS` with its data directory set to `data`.
pub fn deskgate(data: &Path, args: &[&str]) -> Output {
    deskgate_testkit::cli::deskgate(DESKGATE, data, args)
}
