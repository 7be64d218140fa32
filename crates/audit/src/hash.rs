//! The 32-byte SHA-256 hash of the audit log and the RFC 9162 leaf and node hash functions.
//!
//! The hashing itself is `tlog_tiles`' (a port of Go's `sumdb/tlog`); this module only gives the
//! hash a type of our own with the encodings Deskgate needs (hex for JSON and databases, base64
//! for checkpoints) and the traits the other crates want (`Eq`, `Hash`, `Ord`, serde).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    /// The text is not valid hex (or base64, for [`Hash::from_base64`]).
    #[error("hash is not valid {encoding}")]
    Encoding {
        /// `"hex"` or `"base64"`.
        encoding: &'static str,
    },
    /// The text decodes, but not to 32 bytes.
    #[error("hash must be 32 bytes, got {len}")]
    Length {
        /// Number of decoded bytes.
        len: usize,
    },
}

/// A SHA-256 value: a leaf hash, an interior node hash, or a tree root.
///
/// Serialized with serde as 64 lowercase hex characters; `Display` is hex too.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    ///
    /// # Errors
    /// [`HashParseError`] when the text is not hex or not 32 bytes long.
    pub fn from_hex(text: &str) -> Result<Self, HashParseError> {
        let bytes = hex::decode(text).map_err(|_| HashParseError::Encoding { encoding: "hex" })?;
        Self::from_slice(&bytes)
    }

    /// Standard padded base64, the encoding of the root line of a C2SP checkpoint.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Parses standard padded base64.
    ///
    /// # Errors
    /// [`HashParseError`] when the text is not base64 or not 32 bytes long.
    pub fn from_base64(text: &str) -> Result<Self, HashParseError> {
        let bytes = BASE64
            .decode(text)
            .map_err(|_| HashParseError::Encoding { encoding: "base64" })?;
        Self::from_slice(&bytes)
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, HashParseError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| HashParseError::Length { len: bytes.len() })
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

impl From<tlog_tiles::Hash> for Hash {
    fn from(hash: tlog_tiles::Hash) -> Self {
        Self(hash.0)
    }
}

impl From<Hash> for tlog_tiles::Hash {
    fn from(hash: Hash) -> Self {
        Self(hash.0)
    }
}

/// Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = Hash(tlog_tiles::EMPTY_HASH.0);

/// RFC 9162 leaf hash: `SHA-256(0x00 || entry_bytes)`.
pub fn leaf_hash(entry_bytes: &[u8]) -> Hash {
    tlog_tiles::record_hash(entry_bytes).into()
}

/// RFC 9162 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    tlog_tiles::node_hash(left.into(), right.into()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn leaf_hash_of_empty_entry_matches_rfc_vector() {
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn node_hash_prefixes_one_and_is_not_leaf_hash_of_concatenation() {
        let (left, right) = (leaf_hash(b""), leaf_hash(&[0]));
        assert_eq!(
            node_hash(left, right).to_hex(),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
        let mut concatenated = left.0.to_vec();
        concatenated.extend_from_slice(&right.0);
        assert_ne!(node_hash(left, right), leaf_hash(&concatenated));
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            EMPTY_ROOT.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_and_base64_round_trip() {
        let hash = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert_eq!(Hash::from_hex(&hash.to_hex().to_uppercase()).unwrap(), hash);
        assert_eq!(Hash::from_base64(&hash.to_base64()).unwrap(), hash);
    }

    #[test]
    fn rejects_wrong_length_and_bad_encoding() {
        assert_eq!(
            Hash::from_hex("abcd"),
            Err(HashParseError::Length { len: 2 })
        );
        assert_eq!(
            Hash::from_hex(&"zz".repeat(32)),
            Err(HashParseError::Encoding { encoding: "hex" })
        );
        assert_eq!(
            Hash::from_base64("not base64!"),
            Err(HashParseError::Encoding { encoding: "base64" })
        );
    }

    #[test]
    fn serde_uses_hex_string() {
        let hash = leaf_hash(b"");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(
            json,
            "\"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d\""
        );
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<Hash>("\"00\"").is_err());
    }
}
