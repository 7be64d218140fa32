//! The audit entry and its canonical byte encoding, which is what the Merkle tree hashes.
//!
//! Canonical form: JSON, object keys sorted at every level (by UTF-8 bytes, i.e. code point
//! order), no insignificant whitespace, strings and numbers as `serde_json` writes them, `null`
//! written for absent optional fields. This is not RFC 8785 (JCS): JCS sorts keys by UTF-16 code
//! units and reformats numbers; we only need one encoding that this crate both writes and checks,
//! and [`AuditEntry::from_canonical`] enforces it by re-encoding and comparing bytes.
//!
//! Floats in `details` are written in shortest round-trip form and parsed exactly (the
//! `float_roundtrip` feature of `serde_json`), so every value this crate writes re-encodes to
//! the same bytes.
//!
//! The encoding never contains a raw newline (JSON escapes control characters in strings), so an
//! export is one canonical entry per line.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who caused an audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Staff, subject or service identifier.
    pub id: String,
    /// Role in which they acted (agent, manager, security officer, system...).
    pub role: String,
    /// How they were authenticated.
    pub auth: String,
}

/// One leaf of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the log, from 0; equal to the leaf index.
    pub index: u64,
    /// RFC 3339 UTC with millisecond precision and `Z`, as [`audit_time`] writes it.
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// The case the event belongs to, if any.
    pub case_id: Option<String>,
    /// What happened.
    pub event: String,
    /// Event-specific data.
    pub details: Value,
    /// Digest of the policy bundle that decided, if a decision was made.
    pub policy_digest: Option<String>,
    /// Digests of the evidence the event relied on.
    pub evidence_digests: Vec<String>,
}

/// Why bytes are not a valid canonical audit entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not JSON, not UTF-8, or not the shape of an [`AuditEntry`].
    #[error("entry is not a valid audit entry")]
    Parse(#[source] serde_json::Error),
    /// `time` is not RFC 3339 UTC with milliseconds and `Z`.
    #[error("entry time {time:?} is not RFC 3339 UTC with milliseconds")]
    InvalidTime {
        /// The offending value.
        time: String,
    },
    /// A valid entry, but not in canonical form (key order, whitespace, escapes, number format,
    /// omitted `null`...), so its bytes are not the ones that were hashed.
    #[error("entry is not in canonical form")]
    NotCanonical,
}

/// Formats a timestamp the way [`AuditEntry::time`] requires: `2026-11-26T09:30:00.123Z`.
pub fn audit_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl AuditEntry {
    /// Parses canonical bytes, rejecting anything that [`canonical_bytes`] would not have
    /// written byte for byte.
    ///
    /// # Errors
    /// [`EntryError`] saying whether the bytes do not parse, carry a bad time, or are not
    /// canonical.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, EntryError> {
        let entry: Self = serde_json::from_slice(bytes).map_err(EntryError::Parse)?;
        entry.check_time()?;
        if canonical_bytes(&entry) != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }

    /// Checks the field constraints that the type system does not (today: the time format).
    ///
    /// # Errors
    /// [`EntryError::InvalidTime`].
    pub fn validate(&self) -> Result<(), EntryError> {
        self.check_time()
    }

    fn check_time(&self) -> Result<(), EntryError> {
        let canonical = DateTime::parse_from_rfc3339(&self.time)
            .map(|time| audit_time(time.with_timezone(&Utc)));
        match canonical {
            Ok(canonical) if canonical == self.time => Ok(()),
            _ => Err(EntryError::InvalidTime {
                time: self.time.clone(),
            }),
        }
    }
}

/// The canonical bytes of an entry: what the log hashes, stores and exports.
pub fn canonical_bytes(entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    // Fields in sorted key order, by hand: the struct is fixed, so no sorting is needed here.
    out.extend_from_slice(br#"{"actor":{"auth":"#);
    write_string(&mut out, &entry.actor.auth);
    out.extend_from_slice(br#","id":"#);
    write_string(&mut out, &entry.actor.id);
    out.extend_from_slice(br#","role":"#);
    write_string(&mut out, &entry.actor.role);
    out.extend_from_slice(br#"},"case_id":"#);
    write_optional(&mut out, entry.case_id.as_deref());
    out.extend_from_slice(br#","details":"#);
    write_value(&mut out, &entry.details);
    out.extend_from_slice(br#","event":"#);
    write_string(&mut out, &entry.event);
    out.extend_from_slice(br#","evidence_digests":["#);
    for (i, digest) in entry.evidence_digests.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(&mut out, digest);
    }
    out.extend_from_slice(br#"],"index":"#);
    out.extend_from_slice(entry.index.to_string().as_bytes());
    out.extend_from_slice(br#","policy_digest":"#);
    write_optional(&mut out, entry.policy_digest.as_deref());
    out.extend_from_slice(br#","time":"#);
    write_string(&mut out, &entry.time);
    out.push(b'}');
    out
}

// The JSON writer below is hand-written: `serde_json` has no sorted-keys mode that survives
// `serde_json/preserve_order` being switched on by another crate in the build, its writers are
// fallible in type (`io::Result`), and the infallible route (`Value`'s `Display` on a re-sorted
// copy) was six times slower, which matters when verifying million-entry exports. Its output is
// tested to equal `serde_json`'s compact output of the key-sorted value, byte for byte.

fn write_optional(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => write_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // `Number`'s `Display` is the formatting `serde_json` serializes with.
        Value::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Writes a JSON string with `serde_json`'s escapes: `"` and `\`, the short forms of
/// backspace, form feed, newline, carriage return and tab, `\u00xx` for other control
/// characters, everything else (including non-ASCII) as raw UTF-8.
fn write_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    // Bytes of multi-byte UTF-8 sequences are all >= 0x80, so escaping byte by byte is safe.
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0x0f)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, json};

    fn entry(details: Value) -> AuditEntry {
        AuditEntry {
            index: 7,
            time: "2026-11-26T09:30:00.123Z".to_owned(),
            actor: Actor {
                id: "agent-1".to_owned(),
                role: "agent".to_owned(),
                auth: "passkey".to_owned(),
            },
            case_id: Some("case-42".to_owned()),
            event: "case.opened".to_owned(),
            details,
            policy_digest: None,
            evidence_digests: vec!["sha256:aa".to_owned(), "sha256:bb".to_owned()],
        }
    }

    #[test]
    fn canonical_bytes_sort_keys_at_every_level_without_whitespace() {
        let bytes = canonical_bytes(&entry(
            json!({"z": 1, "a": {"y": [ {"b": 2, "a": 1} ], "x": null}}),
        ));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            concat!(
                r#"{"actor":{"auth":"passkey","id":"agent-1","role":"agent"},"case_id":"case-42","#,
                r#""details":{"a":{"x":null,"y":[{"a":1,"b":2}]},"z":1},"event":"case.opened","#,
                r#""evidence_digests":["sha256:aa","sha256:bb"],"index":7,"policy_digest":null,"#,
                r#""time":"2026-11-26T09:30:00.123Z"}"#
            )
        );
    }

    #[test]
    fn key_order_of_input_does_not_change_bytes() {
        let forward: Value =
            serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":[{"e":3,"f":4}]}}"#).unwrap();
        let backward: Value =
            serde_json::from_str(r#"{"b":{"d":[{"f":4,"e":3}],"c":2},"a":1}"#).unwrap();
        assert_eq!(
            canonical_bytes(&entry(forward)),
            canonical_bytes(&entry(backward))
        );
    }

    #[test]
    fn canonical_bytes_round_trip_through_from_canonical() {
        let original = entry(json!({"note": "line one\nline \"two\" é", "n": -3.5}));
        let bytes = canonical_bytes(&original);
        assert!(!bytes.contains(&b'\n'));
        assert_eq!(AuditEntry::from_canonical(&bytes).unwrap(), original);
    }

    #[test]
    fn float_that_needs_exact_parsing_round_trips() {
        // Found by the property test below: without exact float parsing this value parses back
        // one ulp off and a genuine entry would be rejected as non-canonical.
        let original = entry(json!([4.061703048705679e-183]));
        assert_eq!(
            AuditEntry::from_canonical(&canonical_bytes(&original)).unwrap(),
            original
        );
    }

    #[test]
    fn from_canonical_rejects_reordered_keys() {
        let bytes = String::from_utf8(canonical_bytes(&entry(json!({})))).unwrap();
        let reordered = bytes.replacen(
            r#""auth":"passkey","id":"agent-1""#,
            r#""id":"agent-1","auth":"passkey""#,
            1,
        );
        assert_ne!(reordered, bytes);
        assert!(matches!(
            AuditEntry::from_canonical(reordered.as_bytes()),
            Err(EntryError::NotCanonical)
        ));
    }

    #[test]
    fn from_canonical_rejects_whitespace_and_escape_variants() {
        let bytes = String::from_utf8(canonical_bytes(&entry(json!({})))).unwrap();
        let spaced = bytes.replacen(r#""index":7"#, r#""index": 7"#, 1);
        let escaped = bytes.replacen("case.opened", "case\\u002eopened", 1);
        let trailing = format!("{bytes}\n");
        for variant in [spaced, escaped, trailing] {
            assert!(
                matches!(
                    AuditEntry::from_canonical(variant.as_bytes()),
                    Err(EntryError::NotCanonical)
                ),
                "{variant}"
            );
        }
    }

    #[test]
    fn from_canonical_rejects_omitted_null_field() {
        let bytes = String::from_utf8(canonical_bytes(&entry(json!({})))).unwrap();
        let omitted = bytes.replacen(r#""policy_digest":null,"#, "", 1);
        assert_ne!(omitted, bytes);
        assert!(matches!(
            AuditEntry::from_canonical(omitted.as_bytes()),
            Err(EntryError::NotCanonical)
        ));
    }

    #[test]
    fn from_canonical_rejects_unknown_fields_and_garbage() {
        let bytes = String::from_utf8(canonical_bytes(&entry(json!({})))).unwrap();
        let extra = bytes.replacen(r#"{"actor""#, r#"{"a":1,"actor""#, 1);
        assert!(matches!(
            AuditEntry::from_canonical(extra.as_bytes()),
            Err(EntryError::Parse(_))
        ));
        assert!(matches!(
            AuditEntry::from_canonical(b"not json"),
            Err(EntryError::Parse(_))
        ));
        assert!(matches!(
            AuditEntry::from_canonical(&[0xff, 0xfe]),
            Err(EntryError::Parse(_))
        ));
    }

    #[test]
    fn time_must_be_utc_millis_with_z() {
        for bad in [
            "2026-11-26T09:30:00Z",
            "2026-11-26T09:30:00.123456Z",
            "2026-11-26T09:30:00.123+00:00",
            "2026-11-26 09:30:00.123Z",
            "yesterday",
        ] {
            let mut e = entry(json!({}));
            e.time = bad.to_owned();
            assert!(
                matches!(e.validate(), Err(EntryError::InvalidTime { .. })),
                "{bad}"
            );
            assert!(
                matches!(
                    AuditEntry::from_canonical(&canonical_bytes(&e)),
                    Err(EntryError::InvalidTime { .. })
                ),
                "{bad}"
            );
        }
        assert!(entry(json!({})).validate().is_ok());
    }

    #[test]
    fn audit_time_writes_millis_and_z() {
        let time = DateTime::parse_from_rfc3339("2026-11-26T10:30:00.5+01:00").unwrap();
        assert_eq!(
            audit_time(time.with_timezone(&Utc)),
            "2026-11-26T09:30:00.500Z"
        );
    }

    /// The value with every object rebuilt in sorted key order, whatever `Map`'s ordering.
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut fields: Vec<_> = map.iter().collect();
                fields.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect::<Map<_, _>>(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn writer_matches_serde_json_compact_output_of_sorted_value(value in json_value()) {
            let mut ours = Vec::new();
            write_value(&mut ours, &value);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&sorted(&value)).unwrap());
        }

        #[test]
        fn any_entry_round_trips_through_canonical_bytes(
            details in json_value(),
            text in any::<String>(),
            digests in prop::collection::vec(any::<String>(), 0..3),
            index in any::<u64>(),
            case_id in proptest::option::of(any::<String>()),
        ) {
            let mut original = entry(details);
            original.index = index;
            original.event = text.clone();
            original.actor.id = text;
            original.evidence_digests = digests;
            original.case_id = case_id;
            let bytes = canonical_bytes(&original);
            prop_assert!(!bytes.contains(&b'\n'));
            prop_assert_eq!(AuditEntry::from_canonical(&bytes).unwrap(), original);
        }
    }
}
