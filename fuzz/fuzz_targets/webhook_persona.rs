//! The Persona webhook verifier (`WebhookVerifier` for `Vendor::Persona`).
//!
//! Input: a mode byte, a 16-bit timestamp skew, a 16-bit mutation position, then
//! - raw mode (mode even): `persona-signature-header\nbody`, as an attacker would send.
//!   Accepted only if some `t=...,v1=...` set of the header carries an independent HMAC of
//!   `t.body`, and then with that set's timestamp.
//! - signing mode (mode odd): the rest is a body (Persona events when fuzzed from the corpus),
//!   signed genuinely with `skew` seconds of clock difference. A genuine delivery is never
//!   refused for its signature (and never for its age within the tolerance); the same delivery
//!   with one bit of the signature or the body changed, or another timestamp, is always refused
//!   as a bad signature.
#![no_main]

use chrono::{DateTime, Utc};
use deskgate_app::idv::{IdvError, TOLERANCE_SECS, Vendor, WebhookVerifier};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &str = "wbhsec_test_0123456789abcdef";
const NOW: i64 = 1_764_150_000;

fn hmac(timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn headers(signature: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(signature) {
        map.insert("persona-signature", value);
    }
    map
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

fn raw(verifier: &WebhookVerifier, data: &[u8]) {
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let signature = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let map = headers(signature);
    let Ok(delivery) = verifier.verify(&map, body, now()) else {
        return;
    };
    let header = map.get("persona-signature").unwrap().to_str().unwrap();
    // Every set whose own timestamp signs the body; the delivery must be dated by one of them.
    let genuine_times: Vec<i64> = header
        .split_ascii_whitespace()
        .filter_map(|set| {
            let parts: Vec<_> = set.split(',').filter_map(|p| p.split_once('=')).collect();
            let t = parts.iter().find(|(k, _)| *k == "t")?.1;
            let expected = hmac(t.as_bytes(), body);
            parts
                .iter()
                .any(|(k, v)| *k == "v1" && hex::decode(v).is_ok_and(|v| v == expected))
                .then(|| t.parse::<i64>().ok())
                .flatten()
        })
        .collect();
    assert!(
        genuine_times.contains(&delivery.sent_at.timestamp()),
        "accepted a delivery without a genuine signature set: {header:?}"
    );
    assert!((delivery.sent_at.timestamp() - NOW).abs() <= TOLERANCE_SECS);
}

fn signed(verifier: &WebhookVerifier, mode: u8, skew: i16, position: u16, body: &[u8]) {
    let ts = (NOW + i64::from(skew)).to_string();
    let mac = hmac(ts.as_bytes(), body);
    // Decoys beside the genuine set: a rotated secret's set, another scheme, a wrong v1.
    let header = |mac: &[u8]| {
        let genuine = format!("t={ts},v1={}", hex::encode(mac));
        match (mode >> 1) & 3 {
            0 => genuine,
            1 => format!("t={ts},v1={} {genuine}", hex::encode([7u8; 32])),
            2 => format!("{genuine},v2=abc"),
            _ => format!("t={},v1={} {genuine}", NOW - 1, hex::encode([0u8; 32])),
        }
    };

    let genuine = verifier.verify(&headers(header(&mac).as_bytes()), body, now());
    match &genuine {
        Ok(delivery) => assert_eq!(delivery.sent_at.timestamp(), NOW + i64::from(skew)),
        Err(IdvError::MalformedBody(_)) => {}
        Err(IdvError::Stale { .. } | IdvError::FromTheFuture { .. })
            if i64::from(skew).abs() > TOLERANCE_SECS => {}
        Err(error) => panic!("refused a genuine delivery: {error:?}"),
    }
    if i64::from(skew).abs() > TOLERANCE_SECS {
        assert!(
            genuine.is_err(),
            "accepted a delivery outside the tolerance"
        );
    }

    let bad = |map: HeaderMap, body: &[u8], what: &str| {
        let outcome = verifier.verify(&map, body, now());
        assert!(
            matches!(outcome, Err(IdvError::BadSignature)),
            "{what}: {outcome:?}"
        );
    };
    let mut flipped = mac.clone();
    let bit = usize::from(position) % (flipped.len() * 8);
    flipped[bit / 8] ^= 1 << (bit % 8);
    bad(
        headers(header(&flipped).as_bytes()),
        body,
        "signature bit flipped",
    );
    bad(
        headers(header(&mac[..31]).as_bytes()),
        body,
        "signature truncated",
    );
    if !body.is_empty() {
        let mut tampered = body.to_vec();
        let bit = usize::from(position) % (tampered.len() * 8);
        tampered[bit / 8] ^= 1 << (bit % 8);
        bad(
            headers(header(&mac).as_bytes()),
            &tampered,
            "body bit flipped",
        );
    }
    let moved = format!("t={},v1={}", NOW + i64::from(skew) + 1, hex::encode(&mac));
    bad(headers(moved.as_bytes()), body, "timestamp changed");
}

fuzz_target!(|data: &[u8]| {
    let [mode, s0, s1, p0, p1, rest @ ..] = data else {
        return;
    };
    let verifier = WebhookVerifier::new(Vendor::Persona, SECRET).unwrap();
    if mode % 2 == 0 {
        raw(&verifier, rest);
    } else {
        signed(
            &verifier,
            *mode,
            i16::from_le_bytes([*s0, *s1]),
            u16::from_le_bytes([*p0, *p1]),
            rest,
        );
    }
});
