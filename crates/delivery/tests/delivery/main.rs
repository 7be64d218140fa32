//! Tests of deskgate-delivery against real servers: an aiosmtpd SMTP server started from
//! `tests/fixtures/smtp_sink.py`, and an in-process HTTP server replaying Twilio's documented
//! wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod routing;
mod smtp;
mod support;
mod twilio;
