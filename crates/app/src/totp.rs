//! Time-based one-time passwords (RFC 6238) from an enrolled authenticator app: making the
//! shared secret at enrolment, the `otpauth://` URI the app scans, and checking a code.
//!
//! The parameters are the ones every authenticator app supports: HMAC-SHA-1, 6 digits, 30-second
//! steps, and one step of clock skew either way (RFC 6238 section 5.2). A code is accepted at most
//! once: [`verify`] returns the time step it matched, the caller stores it with the authenticator,
//! and passes it back as `last_used_step` so that neither that step nor an earlier one is accepted
//! again (RFC 6238 section 5.2: the verifier must not accept the second attempt of the same OTP).

use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Digits in a code.
pub const DIGITS: u8 = 6;
/// Seconds in a time step.
pub const STEP_SECS: u64 = 30;
/// Steps of clock skew accepted either way.
pub const SKEW_STEPS: u16 = 1;
/// Bytes in a generated secret: 160 bits, the length RFC 4226 section 4 recommends.
const SECRET_BYTES: usize = 20;
/// The shortest secret accepted, 128 bits (RFC 4226 section 4's minimum).
const MIN_SECRET_BYTES: usize = 16;

/// Why a code or secret was refused. No variant carries the secret or the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    #[error("a code is exactly {DIGITS} digits")]
    MalformedCode,
    #[error("the code does not match the authenticator")]
    WrongCode,
    #[error("the code's time step {step} was already used")]
    Replayed { step: u64 },
    #[error("the TOTP secret is not base32 of at least {MIN_SECRET_BYTES} bytes")]
    InvalidSecret,
    #[error("the account name and issuer must be non-empty and contain no ':'")]
    InvalidLabel,
}

/// The secret shared with one authenticator. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A secret from raw bytes, at least 128 bits.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TotpError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TotpError::InvalidSecret);
        }
        Ok(Self(bytes))
    }

    /// A secret from its unpadded RFC 4648 base32 form (as stored, and as in the URI).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let secret = Secret::try_from_base32(text).map_err(|_| TotpError::InvalidSecret)?;
        Self::from_bytes(secret.as_bytes().to_vec())
    }

    /// The unpadded RFC 4648 base32 form, for storage.
    pub fn to_base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    fn totp(&self) -> Result<Totp, TotpError> {
        self.builder().build().map_err(|_| TotpError::InvalidSecret)
    }

    fn builder(&self) -> Builder {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_step_duration(STEP_SECS)
            .with_skew(SKEW_STEPS)
            .with_secret(self.0.clone())
    }
}

/// The raw seed, for sealing it in the store.
pub fn secret_bytes(secret: &TotpSecret) -> Vec<u8> {
    secret.0.clone()
}

/// The code an authenticator app shows at `now_unix`.
pub fn code_at(secret: &TotpSecret, now_unix: u64) -> Result<String, TotpError> {
    Ok(secret.totp()?.generate(now_unix).to_string())
}

/// A new random 160-bit secret from the operating system's CSPRNG, for enrolling an
/// authenticator.
pub fn generate_secret() -> TotpSecret {
    let mut bytes = vec![0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    TotpSecret(bytes)
}

/// The `otpauth://totp/...` URI (usually shown as a QR code) that enrols `secret` in an
/// authenticator app under `issuer:account`.
pub fn provisioning_uri(
    secret: &TotpSecret,
    account: &str,
    issuer: &str,
) -> Result<String, TotpError> {
    // The label is `issuer:account`: an empty part would enrol a nameless entry in the app, and
    // a ':' (refused by totp-rs) would be read back as the separator.
    if account.is_empty() || issuer.is_empty() {
        return Err(TotpError::InvalidLabel);
    }
    secret
        .builder()
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .and_then(|totp| totp.to_url())
        .map_err(|error| match error {
            totp_rs::TotpError::SecretTooShort { .. } => TotpError::InvalidSecret,
            _ => TotpError::InvalidLabel,
        })
}

/// Checks `code` against `secret` at `now_unix` (seconds), within one step of skew either way,
/// and returns the time step it matched. A code whose step is at or before `last_used_step` is
/// refused as [`TotpError::Replayed`], so the same step is never accepted twice and an older
/// code cannot follow a newer one.
///
/// The comparison with each candidate code is constant-time (totp-rs compares tokens so).
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_unix: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::MalformedCode);
    }
    let step = secret
        .totp()?
        .check(code, now_unix)
        .ok_or(TotpError::WrongCode)?;
    match last_used_step {
        Some(used) if step <= used => Err(TotpError::Replayed { step }),
        _ => Ok(step),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed: the ASCII bytes of "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    /// RFC 6238 appendix B, SHA-1 rows: (time, 8-digit TOTP) cut to their last 6 digits, which
    /// is what 6-digit truncation (the value mod 10^6) gives.
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ];

    #[test]
    fn rfc_6238_sha1_vectors_verify_at_their_times() {
        for (time, code) in RFC_VECTORS {
            assert_eq!(
                verify(&rfc_secret(), code, time, None),
                Ok(time / STEP_SECS),
                "T={time}"
            );
        }
    }

    #[test]
    fn code_is_accepted_one_step_early_or_late() {
        // 287082 is the code of step 1 (T=30..59).
        assert_eq!(verify(&rfc_secret(), "287082", 59 + 30, None), Ok(1));
        assert_eq!(verify(&rfc_secret(), "287082", 0, None), Ok(1));
    }

    #[test]
    fn code_is_refused_two_steps_early_or_late() {
        assert_eq!(
            verify(&rfc_secret(), "287082", 59 + 60, None),
            Err(TotpError::WrongCode)
        );
        // 081804 is the code of step 37037036; two steps before it is out of the window.
        assert_eq!(
            verify(&rfc_secret(), "081804", 1_111_111_109 - 60, None),
            Err(TotpError::WrongCode)
        );
        assert_eq!(
            verify(&rfc_secret(), "081804", 1_111_111_109 - 30, None),
            Ok(37_037_036)
        );
    }

    #[test]
    fn same_step_is_not_accepted_twice() {
        let step = verify(&rfc_secret(), "287082", 59, None).unwrap();
        assert_eq!(
            verify(&rfc_secret(), "287082", 59, Some(step)),
            Err(TotpError::Replayed { step })
        );
    }

    #[test]
    fn older_step_is_refused_after_a_newer_one_was_used() {
        // 050471 is step 37037037, 081804 the step before; both are in the window at T=1111111111.
        let newer = verify(&rfc_secret(), "050471", 1_111_111_111, Some(37_037_036)).unwrap();
        assert_eq!(newer, 37_037_037);
        assert_eq!(
            verify(&rfc_secret(), "081804", 1_111_111_111, Some(newer)),
            Err(TotpError::Replayed { step: 37_037_036 })
        );
    }

    #[test]
    fn wrong_code_is_refused() {
        assert_eq!(
            verify(&rfc_secret(), "287083", 59, None),
            Err(TotpError::WrongCode)
        );
    }

    #[test]
    fn input_that_is_not_six_digits_is_malformed() {
        for code in [
            "",
            "28708",
            "2870822",
            "28708a",
            "+87082",
            " 287082",
            "２８７０８２",
        ] {
            assert_eq!(
                verify(&rfc_secret(), code, 59, None),
                Err(TotpError::MalformedCode),
                "{code:?}"
            );
        }
    }

    #[test]
    fn generated_secrets_are_160_bits_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.0.len(), 20);
        assert_ne!(a, b);
    }

    #[test]
    fn secret_round_trips_through_base32_and_short_secrets_are_refused() {
        let secret = generate_secret();
        assert_eq!(TotpSecret::from_base32(&secret.to_base32()), Ok(secret));
        assert_eq!(
            TotpSecret::from_bytes(vec![0; 15]),
            Err(TotpError::InvalidSecret)
        );
        assert_eq!(
            TotpSecret::from_base32("not base32!"),
            Err(TotpError::InvalidSecret)
        );
    }

    #[test]
    fn secret_debug_output_is_redacted() {
        let secret = rfc_secret();
        assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn provisioning_uri_enrols_an_app_that_produces_accepted_codes() {
        let secret = rfc_secret();
        let uri = provisioning_uri(&secret, "alice@example.com", "Deskgate").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Deskgate:alice%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("secret={}", secret.to_base32())),
            "{uri}"
        );
        assert!(uri.contains("issuer=Deskgate"), "{uri}");
        // Play the authenticator app: read the URI back and make the code for T=59.
        let app = Totp::from_url(&uri).unwrap();
        assert_eq!(app.generate(59).to_string(), "287082");
    }

    #[test]
    fn provisioning_uri_refuses_labels_that_would_be_misread() {
        let secret = rfc_secret();
        for (account, issuer) in [
            ("a:b", "Deskgate"),
            ("alice", "Desk:gate"),
            ("", "Deskgate"),
        ] {
            assert_eq!(
                provisioning_uri(&secret, account, issuer),
                Err(TotpError::InvalidLabel),
                "{account:?} {issuer:?}"
            );
        }
    }
}
