//! Making and checking secrets: one-time codes, link and API tokens, temporary passwords.
//! Only hashes are ever stored. Codes are short, so they are hashed with a server-held HMAC key:
//! a copy of the database alone does not let anyone brute-force a pending code offline.

use std::io::Write;
use std::path::Path;

use argon2::password_hash::{PasswordHasher, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A 256-bit random token for links and API access, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a high-entropy token: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A temporary password: 20 characters from an alphabet without look-alikes (~115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| char::from(ALPHABET[OsRng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Hashes one-time codes with a server-held key and compares them in constant time.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher(..)")
    }
}

impl CodeHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn random() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill(&mut key);
        Self { key }
    }

    /// Loads the key from `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if let Ok(bytes) = std::fs::read(path) {
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "code key must be 32 bytes")
            })?;
            return Ok(Self { key });
        }
        let hasher = Self::random();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(&hasher.key)?;
        file.sync_all()?;
        Ok(hasher)
    }

    /// A uniformly random code of `digits` decimal digits.
    pub fn generate_code(digits: u32) -> String {
        let digits = digits.clamp(6, 12);
        let bound = 10u64.pow(digits);
        format!(
            "{:0width$}",
            OsRng.gen_range(0..bound),
            width = digits as usize
        )
    }

    fn mac(&self, context: &str, code: &str) -> [u8; 32] {
        // Keys of any length are valid for HMAC, so this cannot fail; fall back to a zero MAC
        // that matches nothing real rather than panic.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(context.as_bytes());
                mac.update(&[0]);
                mac.update(code.as_bytes());
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; 32],
        }
    }

    /// The stored form of `code`, bound to `context` (the verification id) so a hash cannot be
    /// replayed into another verification.
    pub fn hash(&self, context: &str, code: &str) -> String {
        hex::encode(self.mac(context, code))
    }

    /// Constant-time check of an answer against a stored hash.
    pub fn matches(&self, context: &str, answer: &str, stored_hex: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hex) else {
            return false;
        };
        let computed = self.mac(context, answer.trim());
        computed.ct_eq(stored.as_slice()).into()
    }
}

/// Seals secrets the server must be able to read back (TOTP seeds) with XChaCha20-Poly1305 under
/// a key kept beside the database, never in it; the associated data binds each sealed value to
/// its owner so a value cannot be moved to another subject.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("the sealed value is malformed or was sealed for another owner or key")]
    Invalid,
}

impl Sealer {
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill(&mut key);
        Self { key }
    }

    /// Loads the key from `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let hasher = CodeHasher::load_or_create(path)?;
        Ok(Self { key: hasher.key })
    }

    /// `base64(nonce || ciphertext)`.
    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Result<String, SealError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.key).into());
        let mut nonce = [0u8; 24];
        OsRng.fill(&mut nonce);
        let sealed = cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Invalid)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, owner: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| SealError::Invalid)?;
        if bytes.len() < 24 {
            return Err(SealError::Invalid);
        }
        let (nonce, body) = bytes.split_at(24);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.key).into());
        cipher
            .decrypt(
                chacha20poly1305::XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_have_the_requested_length_and_are_digits() {
        for _ in 0..100 {
            let c = CodeHasher::generate_code(6);
            assert_eq!(c.len(), 6);
            assert!(c.chars().all(|d| d.is_ascii_digit()));
        }
        assert_eq!(
            CodeHasher::generate_code(3).len(),
            6,
            "fewer than 6 digits is never issued"
        );
    }

    #[test]
    fn a_code_matches_only_its_own_context() {
        let h = CodeHasher::random();
        let stored = h.hash("v1", "123456");
        assert!(h.matches("v1", "123456", &stored));
        assert!(!h.matches("v2", "123456", &stored));
        assert!(!h.matches("v1", "123457", &stored));
        assert!(!CodeHasher::random().matches("v1", "123456", &stored));
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_owner_and_key() {
        let sealer = Sealer::random();
        let sealed = sealer.seal("u-alice/totp", b"seed").unwrap();
        assert_eq!(sealer.open("u-alice/totp", &sealed).unwrap(), b"seed");
        assert!(sealer.open("u-bob/totp", &sealed).is_err());
        assert!(Sealer::random().open("u-alice/totp", &sealed).is_err());
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open("u-alice/totp", &String::from_utf8(tampered).unwrap())
                .is_err()
        );
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.key");
        let a = CodeHasher::load_or_create(&path).unwrap();
        let b = CodeHasher::load_or_create(&path).unwrap();
        assert_eq!(a.hash("x", "1"), b.hash("x", "1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
