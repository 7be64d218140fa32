//! A fast acceptance test for canonical entry bytes, for verifying large exports.
//!
//! [`AuditEntry::from_canonical`](crate::AuditEntry::from_canonical) parses into owned strings
//! and a `serde_json::Value`, then re-encodes and compares: about 1.5 µs per typical entry and
//! a dozen allocations. [`is_canonical_entry`] walks the bytes once without allocating and
//! answers whether they are exactly what [`canonical_bytes`](crate::canonical_bytes) writes for
//! an entry with the given index and a valid time.
//!
//! It may answer `false` for bytes that are canonical after all (object keys with escapes,
//! nesting deeper than [`MAX_DEPTH`], a leap second): it only decides the common case and the
//! caller falls back to `from_canonical`, which also says *why* bytes are rejected. So the one
//! property it must have is soundness: `true` only if `from_canonical` accepts the bytes and
//! they carry `index`. The tests check that on generated entries and on mutations of them.

use chrono::{NaiveDate, NaiveTime};

/// Deepest nesting of arrays and objects inside `details` decided here. `serde_json` stops at
/// 128 levels; anything near that is left to it.
const MAX_DEPTH: usize = 32;

/// Whether `bytes` are the canonical encoding of a valid entry whose `index` field is `index`.
///
/// Public so that the fuzz targets can hold it to its one promise: `true` only if
/// [`AuditEntry::from_canonical`](crate::AuditEntry::from_canonical) accepts `bytes` and the
/// entry carries `index` (a `false` for canonical bytes is allowed, see the module docs).
pub fn is_canonical_entry(bytes: &[u8], index: u64) -> bool {
    canonical_entry_len(bytes, index) == Some(bytes.len())
}

/// The length of the canonical entry with index `index` that `bytes` starts with, if they do.
///
/// This also finds the end of the line without a search for the newline: canonical bytes
/// never contain one. Public for the fuzz targets, like [`is_canonical_entry`].
pub fn canonical_entry_len(bytes: &[u8], index: u64) -> Option<usize> {
    let mut scanner = Scanner { bytes, pos: 0 };
    if !scanner.entry(index) {
        return None;
    }
    // Checked once for the whole entry, so that the string scanner can pass any byte >= 0x80.
    let entry = bytes.get(..scanner.pos)?;
    std::str::from_utf8(entry).is_ok().then_some(entry.len())
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// The fields in the order and with the separators `canonical_bytes` writes them, which
    /// also enforces `deny_unknown_fields` and the presence of every field.
    fn entry(&mut self, index: u64) -> bool {
        self.literal(br#"{"actor":{"auth":"#)
            && self.string().is_some()
            && self.literal(br#","id":"#)
            && self.string().is_some()
            && self.literal(br#","role":"#)
            && self.string().is_some()
            && self.literal(br#"},"case_id":"#)
            && self.optional_string()
            && self.literal(br#","details":"#)
            && self.value(0)
            && self.literal(br#","event":"#)
            && self.string().is_some()
            && self.literal(br#","evidence_digests":["#)
            && self.string_list()
            && self.literal(br#","index":"#)
            && self.index(index)
            && self.literal(br#","policy_digest":"#)
            && self.optional_string()
            && self.literal(br#","time":"#)
            && self.string().is_some_and(is_canonical_time)
            && self.literal(b"}")
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    // Inlined so that each comparison has a constant length and needs no call to `memcmp`.
    #[inline]
    fn literal(&mut self, literal: &[u8]) -> bool {
        let found = self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(literal));
        if found {
            self.pos += literal.len();
        }
        found
    }

    /// A string as `canonical_bytes` escapes it; returns its raw (still escaped) contents.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.literal(b"\"") {
            return None;
        }
        let start = self.pos;
        loop {
            self.skip_plain();
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    self.pos += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            // Only control characters without a short escape are written as
                            // `\u00xx`, in lowercase hex.
                            let hex = self.bytes.get(self.pos + 1..self.pos + 5)?;
                            let code = match hex {
                                [b'0', b'0', high @ b'0'..=b'1', low] => {
                                    ((high - b'0') << 4) | lower_hex_digit(*low)?
                                }
                                _ => return None,
                            };
                            if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            self.pos += 5;
                        }
                        _ => return None,
                    }
                }
                // Raw control characters are not JSON.
                0x00..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        let contents = self.bytes.get(start..self.pos);
        self.pos += 1;
        contents
    }

    /// Skips, eight at a time, string bytes that need no escape: all but `"`, `\\` and the
    /// control characters. It may stop early (the tests below have false positives, never false
    /// negatives); the byte-wise loop in [`Self::string`] then decides.
    fn skip_plain(&mut self) {
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
        // Sets the high bit of the first byte below `limit` (and maybe of bytes after it).
        let any_below =
            |word: u64, limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH_BITS;
        while let Some(Ok(chunk)) = self
            .bytes
            .get(self.pos..self.pos + 8)
            .map(<[u8; 8]>::try_from)
        {
            let word = u64::from_le_bytes(chunk);
            let quote = any_below(word ^ (ONES * u64::from(b'"')), 1);
            let backslash = any_below(word ^ (ONES * u64::from(b'\\')), 1);
            if quote | backslash | any_below(word, 0x20) != 0 {
                return;
            }
            self.pos += 8;
        }
    }

    fn optional_string(&mut self) -> bool {
        self.literal(b"null") || self.string().is_some()
    }

    /// The rest of a list of strings whose `[` was consumed, through its `]`.
    fn string_list(&mut self) -> bool {
        if self.literal(b"]") {
            return true;
        }
        loop {
            if self.string().is_none() {
                return false;
            }
            if self.literal(b"]") {
                return true;
            }
            if !self.literal(b",") {
                return false;
            }
        }
    }

    /// The `index` field: a decimal without leading zeros, equal to `index`.
    fn index(&mut self, index: u64) -> bool {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            {
                Some(next) => value = next,
                None => return false,
            }
            self.pos += 1;
        }
        let digits = self.pos - start;
        let leading_zero = digits > 1 && self.bytes.get(start) == Some(&b'0');
        digits > 0 && !leading_zero && value == index
    }

    /// Any JSON value in canonical form, `depth` levels of arrays and objects deep.
    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'"') => self.string().is_some(),
            Some(b'{') if depth < MAX_DEPTH => self.object(depth + 1),
            Some(b'[') if depth < MAX_DEPTH => self.array(depth + 1),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.literal(b"null") || self.literal(b"true") || self.literal(b"false"),
        }
    }

    /// An object with keys in strictly increasing byte order (sorted, no duplicates).
    fn object(&mut self, depth: usize) -> bool {
        self.pos += 1;
        if self.literal(b"}") {
            return true;
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            // Keys are compared as written, which is their order only without escapes: `\n`
            // sorts as 0x0a but is written as 0x5c 0x6e. Escaped keys are left to the slow path.
            let Some(key) = self.string().filter(|key| !key.contains(&b'\\')) else {
                return false;
            };
            if previous.is_some_and(|previous| previous >= key) {
                return false;
            }
            previous = Some(key);
            if !(self.literal(b":") && self.value(depth)) {
                return false;
            }
            if self.literal(b"}") {
                return true;
            }
            if !self.literal(b",") {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.pos += 1;
        if self.literal(b"]") {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.literal(b"]") {
                return true;
            }
            if !self.literal(b",") {
                return false;
            }
        }
    }

    fn number(&mut self) -> bool {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.pos += 1;
        }
        self.bytes
            .get(start..self.pos)
            .is_some_and(is_canonical_number)
    }
}

fn lower_hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// Whether a number token reads back and is written again unchanged, as `serde_json` does.
fn is_canonical_number(token: &[u8]) -> bool {
    let (negative, digits) = match token.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, token),
    };
    // Integers of up to 18 digits fit both `u64` and `i64` and are written back as they are
    // read, except for leading zeros and `-0` (which `serde_json` reads as the float -0.0).
    if (1..=18).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
        return match digits {
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => true,
        };
    }
    // Floats and long integers: rare enough to ask `serde_json` itself, which is exactly what
    // `canonical_bytes` would write for them.
    std::str::from_utf8(token).is_ok_and(|text| {
        serde_json::from_str::<serde_json::Number>(text)
            .is_ok_and(|number| number.to_string() == text)
    })
}

/// Whether `raw` is a time as [`audit_time`](crate::audit_time) writes it:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, a valid date, and no leap second (left to the slow path).
fn is_canonical_time(raw: &[u8]) -> bool {
    let Ok::<&[u8; 24], _>(
        [
            y1,
            y2,
            y3,
            y4,
            b'-',
            mo1,
            mo2,
            b'-',
            d1,
            d2,
            b'T',
            h1,
            h2,
            b':',
            mi1,
            mi2,
            b':',
            s1,
            s2,
            b'.',
            ms1,
            ms2,
            ms3,
            b'Z',
        ],
    ) = raw.try_into()
    else {
        return false;
    };
    let number = |digits: &[&u8]| {
        digits.iter().try_fold(0u32, |value, &&digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (
        number(&[y1, y2, y3, y4]),
        number(&[mo1, mo2]),
        number(&[d1, d2]),
    ) else {
        return false;
    };
    let (Some(hour), Some(minute), Some(second), Some(milli)) = (
        number(&[h1, h2]),
        number(&[mi1, mi2]),
        number(&[s1, s2]),
        number(&[ms1, ms2, ms3]),
    ) else {
        return false;
    };
    let Ok(year) = i32::try_from(year) else {
        return false;
    };
    NaiveDate::from_ymd_opt(year, month, day).is_some()
        && second < 60
        && NaiveTime::from_hms_milli_opt(hour, minute, second, milli).is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::entry::{Actor, AuditEntry, canonical_bytes};

    fn entry(index: u64, details: Value) -> AuditEntry {
        AuditEntry {
            index,
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

    /// What the slow path says: the bytes are canonical and carry `index`.
    fn accepted(bytes: &[u8], index: u64) -> bool {
        AuditEntry::from_canonical(bytes).is_ok_and(|entry| entry.index == index)
    }

    #[test]
    fn accepts_typical_entries() {
        let details = json!({
            "channel": "sms", "n": -12, "x": 0, "f": 2.5, "big": 1e300, "u": u64::MAX,
            "i": i64::MIN, "nested": {"a": [1, {"b": null}], "t": true, "z": false},
            "text": "tab\there \"quoted\" \\ é \u{1} \u{7f}", "": []
        });
        for index in [0, 7, 1_000_000, u64::MAX] {
            let mut e = entry(index, details.clone());
            e.policy_digest = Some("sha256:cc".to_owned());
            e.evidence_digests.clear();
            for e in [e.clone(), entry(index, json!({}))] {
                let bytes = canonical_bytes(&e);
                assert!(is_canonical_entry(&bytes, index), "{e:?}");
                assert!(!is_canonical_entry(&bytes, index.wrapping_add(1)));
            }
        }
    }

    #[test]
    fn leaves_escaped_keys_and_deep_nesting_to_the_slow_path() {
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH {
            deep = json!([deep]);
        }
        for details in [json!({"a\nb": 1}), deep] {
            let bytes = canonical_bytes(&entry(3, details));
            assert!(accepted(&bytes, 3));
            assert!(!is_canonical_entry(&bytes, 3));
        }
    }

    #[test]
    fn rejects_what_the_slow_path_rejects() {
        let bytes = String::from_utf8(canonical_bytes(&entry(5, json!({"b": 1, "c": 2})))).unwrap();
        let variants = [
            bytes.replacen(r#""b":1,"c":2"#, r#""c":2,"b":1"#, 1),
            bytes.replacen(r#""b":1,"c":2"#, r#""b":1,"b":2"#, 1),
            bytes.replacen(r#""b":1"#, r#""b":01"#, 1),
            bytes.replacen(r#""b":1"#, r#""b":-0"#, 1),
            bytes.replacen(r#""b":1"#, r#""b":1.0e0"#, 1),
            bytes.replacen(r#""b":1"#, r#""b":1e5"#, 1),
            bytes.replacen(r#""b":1"#, r#""b":18446744073709551616"#, 1),
            bytes.replacen(r#""b":1"#, r#""b": 1"#, 1),
            bytes.replacen("case.opened", "case\\u002eopened", 1),
            bytes.replacen("case.opened", "case\\/opened", 1),
            bytes.replacen("case.opened", "case\\u0009opened", 1),
            bytes.replacen("case.opened", "case\\u001Fopened", 1),
            bytes.replacen("case.opened", "case\topened", 1),
            bytes.replacen(r#""index":5"#, r#""index":05"#, 1),
            bytes.replacen(r#""policy_digest":null,"#, "", 1),
            bytes.replacen("09:30:00.123Z", "09:30:00Z", 1),
            bytes.replacen("09:30:00.123Z", "09:30:00.123+00:00", 1),
            format!("{bytes}\n"),
            format!("{bytes} "),
            bytes[..bytes.len() - 1].to_owned(),
        ];
        for variant in variants {
            assert_ne!(variant, bytes);
            assert!(!accepted(variant.as_bytes(), 5), "{variant}");
            assert!(!is_canonical_entry(variant.as_bytes(), 5), "{variant}");
        }
        let mut invalid_utf8 = bytes.clone().into_bytes();
        let at = bytes.find("passkey").unwrap();
        invalid_utf8[at] = 0xff;
        assert!(!is_canonical_entry(&invalid_utf8, 5));
    }

    #[test]
    fn time_check_agrees_with_the_entry_time_check() {
        let times = [
            "2026-11-26T09:30:00.123Z",
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2024-02-29T12:00:00.000Z",
            "2023-02-29T12:00:00.000Z",
            "2026-04-31T12:00:00.000Z",
            "2026-00-10T12:00:00.000Z",
            "2026-13-10T12:00:00.000Z",
            "2026-01-00T12:00:00.000Z",
            "2026-01-10T24:00:00.000Z",
            "2026-01-10T23:60:00.000Z",
            "2026-01-10T23:59:60.000Z",
            "2026-01-10T23:59:60.500Z",
            "2026-01-10t23:59:59.000Z",
            "2026-01-10T23:59:59.000z",
            "2026-01-10T23:59:59,000Z",
            "+026-01-10T23:59:59.000Z",
            "2026-01-10T23:59:5a.000Z",
        ];
        for time in times {
            let mut e = entry(1, json!({}));
            e.time = time.to_owned();
            let fast = is_canonical_time(time.as_bytes());
            assert_eq!(
                fast,
                e.validate().is_ok() && !time.contains(":60."),
                "{time}"
            );
        }
    }

    fn has_escaped_key(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.iter().any(|(key, item)| {
                key.contains(|c| matches!(c, '"' | '\\' | '\0'..='\x1f')) || has_escaped_key(item)
            }),
            Value::Array(items) => items.iter().any(has_escaped_key),
            _ => false,
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
            "[a-z\"\\\\\u{0}-\u{1f}é]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z_é]{0,4}", inner.clone()), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
                prop::collection::vec((any::<String>(), inner), 0..3)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    fn any_entry() -> impl Strategy<Value = AuditEntry> {
        (
            json_value(),
            any::<String>(),
            prop::collection::vec(any::<String>(), 0..3),
            any::<u64>(),
            proptest::option::of(any::<String>()),
        )
            .prop_map(|(details, text, digests, index, case_id)| {
                let mut e = entry(index, details);
                e.event = text.clone();
                e.actor.id = text;
                e.evidence_digests = digests;
                e.case_id = case_id.clone();
                e.policy_digest = case_id;
                e
            })
    }

    proptest! {
        #[test]
        fn agrees_with_from_canonical_on_entries(e in any_entry()) {
            let bytes = canonical_bytes(&e);
            prop_assert!(accepted(&bytes, e.index));
            // Only keys written with escapes send a generated entry to the slow path.
            if !has_escaped_key(&e.details) {
                prop_assert!(is_canonical_entry(&bytes, e.index));
            }
        }

        #[test]
        fn accepts_mutated_bytes_only_if_from_canonical_does(
            e in any_entry(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..4),
        ) {
            let mut bytes = canonical_bytes(&e);
            for (at, kind, byte) in edits {
                let at = at.index(bytes.len() + 1);
                let structural = b"{}[],:\"\\0123456789-.eE nultrfa";
                let byte = if byte % 2 == 0 { structural[usize::from(byte) % structural.len()] } else { byte };
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => { bytes.remove(at); }
                    2 if at + 1 < bytes.len() => bytes.swap(at, at + 1),
                    _ => bytes.insert(at, byte),
                }
            }
            if is_canonical_entry(&bytes, e.index) {
                prop_assert!(accepted(&bytes, e.index), "{}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
