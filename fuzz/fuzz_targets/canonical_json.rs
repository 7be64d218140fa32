//! The canonical JSON of audit entries: the writer (`canonical_bytes`), the strict reader
//! (`AuditEntry::from_canonical`) and the fast scanner (`is_canonical_entry`,
//! `canonical_entry_len`) that verifying an export relies on.
//!
//! For any input bytes:
//! - the scanner is sound: it accepts bytes (or a prefix of them) for an index only if
//!   `from_canonical` accepts them and the entry carries that index;
//! - what `from_canonical` accepts is exactly what `canonical_bytes` writes for the entry, and
//!   re-parses (as plain JSON) to the same value as the entry.
//!
//! And when the input is any JSON value, an entry carrying it as `details` is written to bytes
//! without a newline that `from_canonical` reads back to the same entry, whatever the order of
//! keys in the input.
#![no_main]

use deskgate_audit::{Actor, AuditEntry, canonical_bytes, canonical_entry_len, is_canonical_entry};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The index the bytes claim, if they hold an `"index":` field followed by digits.
fn claimed_index(bytes: &[u8]) -> Option<u64> {
    let at = bytes.windows(8).position(|w| w == b"\"index\":")? + 8;
    let digits: Vec<u8> = bytes[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn check_scanner(data: &[u8]) {
    let strict = AuditEntry::from_canonical(data);
    if let Ok(entry) = &strict {
        assert_eq!(canonical_bytes(entry), data);
        let reparsed: Value = serde_json::from_slice(data).unwrap();
        assert_eq!(reparsed, serde_json::to_value(entry).unwrap());
        assert!(!is_canonical_entry(data, entry.index.wrapping_add(1)));
    }
    for index in [0, 7].into_iter().chain(claimed_index(data)) {
        if is_canonical_entry(data, index) {
            let entry = strict
                .as_ref()
                .expect("the scanner accepted bytes from_canonical refuses");
            assert_eq!(entry.index, index, "the scanner accepted another index");
        }
        if let Some(len) = canonical_entry_len(data, index) {
            let prefix = &data[..len];
            assert!(is_canonical_entry(prefix, index));
            let entry = AuditEntry::from_canonical(prefix)
                .expect("the scanner found an entry from_canonical refuses");
            assert_eq!(entry.index, index);
        }
    }
}

fn check_writer(details: Value, data: &[u8]) {
    let entry = AuditEntry {
        index: data.len() as u64,
        time: "2026-11-26T09:30:00.123Z".to_owned(),
        actor: Actor {
            id: String::from_utf8_lossy(&data[..data.len().min(8)]).into_owned(),
            role: "agent".to_owned(),
            auth: "passkey".to_owned(),
        },
        case_id: None,
        event: "case.opened".to_owned(),
        details,
        policy_digest: Some("sha256:\u{7}\"\\".to_owned()),
        evidence_digests: vec![],
    };
    let bytes = canonical_bytes(&entry);
    assert!(!bytes.contains(&b'\n'));
    let back = AuditEntry::from_canonical(&bytes).expect("written bytes read back");
    assert_eq!(back, entry);
    let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(reparsed, serde_json::to_value(&entry).unwrap());
}

fuzz_target!(|data: &[u8]| {
    check_scanner(data);
    if let Ok(details) = serde_json::from_slice::<Value>(data) {
        check_writer(details, data);
    }
});
