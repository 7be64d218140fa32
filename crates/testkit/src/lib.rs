//! The one harness of Deskgate's integration tests (dev-only, never shipped):
//!
//! - [`server`]: a real Deskgate server (the application service behind the axum API) on a free
//!   port, on embedded SQLite or a fresh PostgreSQL database, seeded with the demo organisation,
//!   with helpers to drive cases over HTTP and check the audit log; [`on_both_backends!`] runs a
//!   test once per database.
//! - [`web`]: the real npm `oidc-provider` and a cookie-keeping client that walks its pages.
//! - [`chromedriver`]: Debian's chromium through chromedriver, for the console's browser tests.
//! - [`cli`]: the real `deskgate` binary: a demo server and one-shot commands.
//! - [`database`]: a fresh SQLite or PostgreSQL database per test, shared with the store's
//!   own tests.
//! - [`slapd`]: a private OpenLDAP server per test, for the directory connector.
//! - [`bundle`]: a private copy of the default policy pack to edit.
// A fixture that cannot start must fail the test loudly; these are test-only panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bundle;
pub mod chromedriver;
pub mod cli;
pub mod database;
pub mod passkeys;
pub mod server;
pub mod slapd;
pub mod web;

pub use slapd::*;
