//! Signed checkpoints: a C2SP tlog-checkpoint body (`origin\nsize\nbase64(root)\n`) inside a
//! C2SP signed note, signed with Ed25519.
//!
//! Note parsing, signing, verification and the key string formats are `signed_note`'s (a port of
//! Go's `sumdb/note`, which reproduces the Go reference vector); the body is `tlog_tiles`'
//! `Checkpoint`. This module fixes the policy around them: the checkpoint origin is the key
//! name, a checkpoint must carry a valid signature by the one key the caller trusts (other
//! signatures, such as witness cosignatures, are ignored), and a Deskgate checkpoint has no
//! extension lines.

use ed25519_dalek::SigningKey;
use signed_note::{
    Note, NoteError, Signer as _, SignerError, StandardSigner, StandardVerifier, Verifier as _,
    VerifierError, VerifierList,
};
use zeroize::Zeroizing;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::hash::Hash;

/// A verified checkpoint: the log `origin` had `size` entries with root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity; equal to the signing key's name.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// Root of the tree of those entries.
    pub root: Hash,
}

/// Why a key, a checkpoint, or signing was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The origin cannot be a key name (empty, or contains whitespace or `+`).
    #[error("origin {origin:?} is not a valid key name")]
    InvalidOrigin {
        /// The rejected origin.
        origin: String,
    },
    /// The signer or verifier key string is not `[PRIVATE+KEY+]name+hexid+base64`.
    #[error("malformed key string")]
    MalformedKey,
    /// The key is not Ed25519 (type byte 0x01).
    #[error("unsupported key algorithm")]
    UnsupportedKeyAlgorithm,
    /// The key id in the key string does not match the key.
    #[error("key id does not match the key")]
    KeyIdMismatch,
    /// The text is not a signed note (structure, UTF-8, control characters, signature lines).
    #[error("malformed signed note")]
    MalformedNote,
    /// The note carries no signature by the trusted key.
    #[error("no signature by key {name}+{key_id:08x}")]
    UnknownKey {
        /// Trusted key name.
        name: String,
        /// Trusted key id.
        key_id: u32,
    },
    /// The note carries a signature by the trusted key that does not verify.
    #[error("invalid signature by key {name}+{key_id:08x}")]
    BadSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// The signed text is not `origin\nsize\nbase64(root)\n`.
    #[error("malformed checkpoint body")]
    MalformedBody,
    /// The body has extension lines, which Deskgate never writes.
    #[error("checkpoint has unexpected extension lines")]
    UnexpectedExtension,
    /// The checkpoint names another log than the key's.
    #[error("checkpoint origin {found:?} is not the key's {expected:?}")]
    OriginMismatch {
        /// The key name.
        expected: String,
        /// The body's origin.
        found: String,
    },
    /// Signing failed.
    #[error("signing failed")]
    Signing(#[source] NoteError),
}

/// Signs checkpoints for one log with one Ed25519 key.
pub struct CheckpointSigner {
    signer: StandardSigner,
    signer_key: Zeroizing<String>,
    verifier_key: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A new random key whose name is the log `origin`.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`] when `origin` cannot be a key name.
    pub fn generate(origin: &str) -> Result<Self, CheckpointError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(CheckpointError::InvalidOrigin {
                origin: origin.to_owned(),
            });
        }
        let (signer_key, _) = signed_note::generate_key(&mut rand::rngs::OsRng, origin);
        Self::from_signer_key_string(&Zeroizing::new(signer_key))
    }

    /// Loads a key from the Go `note` signer key form `PRIVATE+KEY+name+hexid+base64(0x01||seed)`.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`], [`CheckpointError::UnsupportedKeyAlgorithm`] or
    /// [`CheckpointError::KeyIdMismatch`].
    pub fn from_signer_key_string(signer_key: &str) -> Result<Self, CheckpointError> {
        let signer = StandardSigner::new(signer_key).map_err(|error| match error {
            SignerError::Format => CheckpointError::MalformedKey,
            SignerError::Alg => CheckpointError::UnsupportedKeyAlgorithm,
            SignerError::Id => CheckpointError::KeyIdMismatch,
        })?;
        // `StandardSigner` keeps its key private, and the verifier key string is derived from
        // the public key, so decode the (now validated) key data once more here.
        let key_data = signer_key
            .splitn(5, '+')
            .nth(4)
            .ok_or(CheckpointError::MalformedKey)?;
        let decoded = Zeroizing::new(
            BASE64
                .decode(key_data)
                .map_err(|_| CheckpointError::MalformedKey)?,
        );
        let seed = decoded.get(1..).ok_or(CheckpointError::MalformedKey)?;
        let signing_key = SigningKey::try_from(seed).map_err(|_| CheckpointError::MalformedKey)?;
        let verifier_key =
            signed_note::new_ed25519_verifier_key(signer.name(), &signing_key.verifying_key());
        Ok(Self {
            signer,
            signer_key: Zeroizing::new(signer_key.to_owned()),
            verifier_key,
        })
    }

    /// The secret signer key string, for the caller's secret storage.
    pub fn to_signer_key_string(&self) -> String {
        self.signer_key.as_str().to_owned()
    }

    /// The public verifier key string `name+hexid+base64(0x01||pubkey)`, for auditors.
    pub fn verifier_key_string(&self) -> &str {
        &self.verifier_key
    }

    /// The log origin (the key name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The complete signed note of the checkpoint for `size` entries with root `root`.
    ///
    /// # Errors
    /// [`CheckpointError::Signing`] if the signature cannot be made.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, CheckpointError> {
        let body = tlog_tiles::Checkpoint::new(self.origin(), size, root.into(), "")
            .map_err(|_| CheckpointError::InvalidOrigin {
                origin: self.origin().to_owned(),
            })?
            .to_bytes();
        self.sign_text(&body)
    }

    /// Signs an arbitrary note text (must end in a newline).
    fn sign_text(&self, text: &[u8]) -> Result<String, CheckpointError> {
        let mut note = Note::new(text, &[]).map_err(CheckpointError::Signing)?;
        note.add_sigs(&[&self.signer])
            .map_err(CheckpointError::Signing)?;
        // A note is valid UTF-8 by construction, so this never replaces anything.
        Ok(String::from_utf8_lossy(&note.to_bytes()).into_owned())
    }
}

/// Verifies a signed checkpoint against the one trusted verifier key and returns its content.
///
/// # Errors
/// A [`CheckpointError`] naming what is wrong: the key, the note, the signature, or the body.
pub fn verify_checkpoint(
    note_text: &str,
    verifier_key: &str,
) -> Result<Checkpoint, CheckpointError> {
    let (text, key_name) = verify_note(note_text, verifier_key)?;
    let body =
        tlog_tiles::Checkpoint::from_bytes(&text).map_err(|_| CheckpointError::MalformedBody)?;
    if !body.extension().is_empty() {
        return Err(CheckpointError::UnexpectedExtension);
    }
    if body.origin() != key_name {
        return Err(CheckpointError::OriginMismatch {
            expected: key_name,
            found: body.origin().to_owned(),
        });
    }
    Ok(Checkpoint {
        origin: body.origin().to_owned(),
        size: body.size(),
        root: (*body.hash()).into(),
    })
}

/// Verifies a signed note and returns its text and the key name.
fn verify_note(note_text: &str, verifier_key: &str) -> Result<(Vec<u8>, String), CheckpointError> {
    let verifier = StandardVerifier::new(verifier_key).map_err(|error| match error {
        VerifierError::Format => CheckpointError::MalformedKey,
        VerifierError::Alg => CheckpointError::UnsupportedKeyAlgorithm,
        VerifierError::Id => CheckpointError::KeyIdMismatch,
    })?;
    let (name, key_id) = (verifier.name().to_owned(), verifier.key_id());
    let note =
        Note::from_bytes(note_text.as_bytes()).map_err(|_| CheckpointError::MalformedNote)?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|error| match error {
            NoteError::UnverifiedNote => CheckpointError::UnknownKey {
                name: name.clone(),
                key_id,
            },
            NoteError::InvalidSignature { name, id } => {
                CheckpointError::BadSignature { name, key_id: id }
            }
            // With a single verifier, ambiguity and mismatch cannot arise; treat any other
            // complaint about the note as malformed input rather than guess.
            _ => CheckpointError::MalformedNote,
        })?;
    Ok((note.text().to_vec(), name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::hash::leaf_hash;

    // Reference vector of Go's golang.org/x/mod/sumdb/note (see shared/reference/test-vectors.md).
    const GO_SIGNER_KEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER_KEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIGNATURE_LINE: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    // Example of the C2SP signed-note specification.
    const SPEC_VERIFIER_KEY: &str =
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn signed_checkpoint() -> (CheckpointSigner, String) {
        let signer = CheckpointSigner::generate("deskgate.example/audit").unwrap();
        let note = signer.sign(5, leaf_hash(b"root")).unwrap();
        (signer, note)
    }

    #[test]
    fn go_reference_key_reproduces_reference_signature_byte_for_byte() {
        let signer = CheckpointSigner::from_signer_key_string(GO_SIGNER_KEY).unwrap();
        let note = signer.sign_text(GO_TEXT.as_bytes()).unwrap();
        assert_eq!(note, format!("{GO_TEXT}\n{GO_SIGNATURE_LINE}"));
        assert_eq!(signer.verifier_key_string(), GO_VERIFIER_KEY);
    }

    #[test]
    fn go_reference_verifier_key_verifies_reference_note() {
        let note = format!("{GO_TEXT}\n{GO_SIGNATURE_LINE}");
        let (text, name) = verify_note(&note, GO_VERIFIER_KEY).unwrap();
        assert_eq!(text, GO_TEXT.as_bytes());
        assert_eq!(name, "PeterNeumann");
    }

    #[test]
    fn spec_example_key_verifies_spec_example_note() {
        let (text, name) = verify_note(SPEC_NOTE, SPEC_VERIFIER_KEY).unwrap();
        assert_eq!(text, b"This is an example message.\n");
        assert_eq!(name, "example.com/foo");
    }

    #[test]
    fn spec_example_note_is_rejected_under_another_key() {
        let note = format!("{GO_TEXT}\n{GO_SIGNATURE_LINE}");
        assert!(matches!(
            verify_note(&note, SPEC_VERIFIER_KEY),
            Err(CheckpointError::UnknownKey {
                key_id: 0x530d_903a,
                ..
            })
        ));
    }

    #[test]
    fn signed_checkpoint_has_c2sp_body_and_verifies() {
        let (signer, note) = signed_checkpoint();
        let root = leaf_hash(b"root");
        assert!(note.starts_with(&format!(
            "deskgate.example/audit\n5\n{}\n\n— deskgate.example/audit ",
            root.to_base64()
        )));
        let checkpoint = verify_checkpoint(&note, signer.verifier_key_string()).unwrap();
        assert_eq!(
            checkpoint,
            Checkpoint {
                origin: "deskgate.example/audit".to_owned(),
                size: 5,
                root
            }
        );
    }

    #[test]
    fn altering_any_body_byte_is_rejected() {
        let (signer, note) = signed_checkpoint();
        let body_len = note.find("\n\n").unwrap() + 1;
        for position in 0..body_len {
            let mut bytes = note.clone().into_bytes();
            // Stay printable ASCII so the change is not caught merely as malformed UTF-8.
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                verify_checkpoint(&tampered, signer.verifier_key_string()).is_err(),
                "accepted with body byte {position} changed"
            );
        }
    }

    #[test]
    fn altering_signature_bytes_is_bad_signature() {
        let (signer, note) = signed_checkpoint();
        let (body, line) = note.split_once("\n\n").unwrap();
        let encoded = line.rsplit_once(' ').unwrap().1.trim_end();
        let mut raw = BASE64.decode(encoded).unwrap();
        for position in 4..raw.len() {
            raw[position] ^= 0x01;
            let tampered = format!("{body}\n\n— {} {}\n", signer.origin(), BASE64.encode(&raw));
            raw[position] ^= 0x01;
            assert!(
                matches!(
                    verify_checkpoint(&tampered, signer.verifier_key_string()),
                    Err(CheckpointError::BadSignature { .. })
                ),
                "accepted with signature byte {position} flipped"
            );
        }
    }

    #[test]
    fn altering_key_id_in_signature_is_unknown_key() {
        let (signer, note) = signed_checkpoint();
        let (body, line) = note.split_once("\n\n").unwrap();
        let encoded = line.rsplit_once(' ').unwrap().1.trim_end();
        let mut raw = BASE64.decode(encoded).unwrap();
        raw[0] ^= 0x80;
        let tampered = format!("{body}\n\n— {} {}\n", signer.origin(), BASE64.encode(&raw));
        assert!(matches!(
            verify_checkpoint(&tampered, signer.verifier_key_string()),
            Err(CheckpointError::UnknownKey { .. })
        ));
    }

    #[test]
    fn checkpoint_signed_by_another_key_is_unknown_key() {
        let (_, note) = signed_checkpoint();
        let other = CheckpointSigner::generate("deskgate.example/audit").unwrap();
        assert!(matches!(
            verify_checkpoint(&note, other.verifier_key_string()),
            Err(CheckpointError::UnknownKey { .. })
        ));
    }

    #[test]
    fn note_that_is_not_a_checkpoint_is_malformed_body() {
        let signer = CheckpointSigner::from_signer_key_string(GO_SIGNER_KEY).unwrap();
        let note = signer.sign_text(GO_TEXT.as_bytes()).unwrap();
        assert!(matches!(
            verify_checkpoint(&note, GO_VERIFIER_KEY),
            Err(CheckpointError::MalformedBody)
        ));
    }

    #[test]
    fn checkpoint_with_extension_lines_is_rejected() {
        let signer = CheckpointSigner::generate("log").unwrap();
        let text = format!("log\n1\n{}\nextra\n", leaf_hash(b"").to_base64());
        let note = signer.sign_text(text.as_bytes()).unwrap();
        assert!(matches!(
            verify_checkpoint(&note, signer.verifier_key_string()),
            Err(CheckpointError::UnexpectedExtension)
        ));
    }

    #[test]
    fn checkpoint_for_another_origin_is_rejected() {
        let signer = CheckpointSigner::generate("log-a").unwrap();
        let text = format!("log-b\n1\n{}\n", leaf_hash(b"").to_base64());
        let note = signer.sign_text(text.as_bytes()).unwrap();
        assert!(matches!(
            verify_checkpoint(&note, signer.verifier_key_string()),
            Err(CheckpointError::OriginMismatch { .. })
        ));
    }

    #[test]
    fn garbage_note_is_malformed() {
        let (signer, _) = signed_checkpoint();
        assert!(matches!(
            verify_checkpoint("no signature block\n", signer.verifier_key_string()),
            Err(CheckpointError::MalformedNote)
        ));
    }

    #[test]
    fn generated_keys_round_trip() {
        let signer = CheckpointSigner::generate("deskgate.example/audit").unwrap();
        let secret = signer.to_signer_key_string();
        assert!(secret.starts_with("PRIVATE+KEY+deskgate.example/audit+"));
        let reloaded = CheckpointSigner::from_signer_key_string(&secret).unwrap();
        assert_eq!(reloaded.verifier_key_string(), signer.verifier_key_string());
        let note = reloaded.sign(3, leaf_hash(b"x")).unwrap();
        assert_eq!(note, signer.sign(3, leaf_hash(b"x")).unwrap());
        assert_eq!(
            verify_checkpoint(&note, signer.verifier_key_string())
                .unwrap()
                .size,
            3
        );
        assert!(!format!("{signer:?}").contains(&secret));
    }

    #[test]
    fn invalid_origins_and_keys_are_rejected() {
        for origin in ["", "has space", "has+plus"] {
            assert!(matches!(
                CheckpointSigner::generate(origin),
                Err(CheckpointError::InvalidOrigin { .. })
            ));
        }
        assert!(matches!(
            CheckpointSigner::from_signer_key_string("PRIVATE+KEY+x"),
            Err(CheckpointError::MalformedKey)
        ));
        let wrong_id = GO_SIGNER_KEY.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            CheckpointSigner::from_signer_key_string(&wrong_id),
            Err(CheckpointError::KeyIdMismatch)
        ));
        assert!(matches!(
            verify_checkpoint(SPEC_NOTE, "example.com/foo+530d903a"),
            Err(CheckpointError::MalformedKey)
        ));
    }
}
