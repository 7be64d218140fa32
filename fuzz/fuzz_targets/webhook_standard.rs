//! The Standard Webhooks verifier (`WebhookVerifier` for `Vendor::StandardWebhooks`).
//!
//! Input: a mode byte, a 16-bit timestamp skew, a 16-bit mutation position, then
//! - raw mode (mode even): `id\ntimestamp\nsignature-header\nbody`, as an attacker would send.
//!   Accepted only if an independent HMAC over `id.timestamp.body` equals one of the header's
//!   `v1` signatures, and then with the id and timestamp that were signed.
//! - signing mode (mode odd): the rest is a body, signed genuinely with `skew` seconds of clock
//!   difference. A genuine delivery is never refused for its signature (and never for its age
//!   when within the tolerance); the same delivery with one bit of the signature, the body, the
//!   id or the timestamp changed is always refused as a bad signature.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use deskgate_app::idv::{IdvError, TOLERANCE_SECS, Vendor, WebhookVerifier};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: i64 = 1_764_150_000;

fn key() -> Vec<u8> {
    STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap()
}

fn hmac(content: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key()).unwrap();
    for part in content {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn headers(id: &[u8], timestamp: &[u8], signature: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.insert(name, value);
        }
    }
    map
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

fn raw(verifier: &WebhookVerifier, data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (Some(id), Some(ts), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let map = headers(id, ts, sig);
    let Ok(delivery) = verifier.verify(&map, body, now()) else {
        return;
    };
    // The verifier trims header values; the sender signed what it sent.
    let text = |name: &str| map.get(name).unwrap().to_str().unwrap().trim().to_owned();
    let (id, ts, sig) = (
        text("webhook-id"),
        text("webhook-timestamp"),
        text("webhook-signature"),
    );
    let expected = hmac(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    let genuine = sig.split_ascii_whitespace().any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|s| STANDARD.decode(s).ok())
            .is_some_and(|s| s == expected)
    });
    assert!(
        genuine,
        "accepted a delivery without a genuine v1 signature"
    );
    assert_eq!(delivery.delivery_id, id);
    assert_eq!(delivery.sent_at.timestamp(), ts.parse::<i64>().unwrap());
    assert!((delivery.sent_at.timestamp() - NOW).abs() <= TOLERANCE_SECS);
}

fn signed(verifier: &WebhookVerifier, mode: u8, skew: i16, position: u16, body: &[u8]) {
    let id = format!("msg_{mode}");
    let ts = (NOW + i64::from(skew)).to_string();
    let mac = hmac(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    // Decoys beside the genuine entry: another scheme and a v1 that does not match.
    let decoys = match (mode >> 1) & 3 {
        0 => String::new(),
        1 => "v1a,c2lnbmF0dXJl ".to_owned(),
        2 => format!("v1,{} ", STANDARD.encode([0u8; 32])),
        _ => "v2,x v1a,y ".to_owned(),
    };
    let header = |mac: &[u8]| format!("{decoys}v1,{}", STANDARD.encode(mac));

    let genuine = verifier.verify(
        &headers(id.as_bytes(), ts.as_bytes(), header(&mac).as_bytes()),
        body,
        now(),
    );
    match &genuine {
        Ok(delivery) => {
            assert_eq!(delivery.delivery_id, id);
            assert_eq!(delivery.sent_at.timestamp(), NOW + i64::from(skew));
        }
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
        headers(id.as_bytes(), ts.as_bytes(), header(&flipped).as_bytes()),
        body,
        "signature bit flipped",
    );
    bad(
        headers(id.as_bytes(), ts.as_bytes(), header(&mac[..31]).as_bytes()),
        body,
        "signature truncated",
    );
    if !body.is_empty() {
        let mut tampered = body.to_vec();
        let bit = usize::from(position) % (tampered.len() * 8);
        tampered[bit / 8] ^= 1 << (bit % 8);
        bad(
            headers(id.as_bytes(), ts.as_bytes(), header(&mac).as_bytes()),
            &tampered,
            "body bit flipped",
        );
    }
    let other_id = format!("{id}x");
    bad(
        headers(other_id.as_bytes(), ts.as_bytes(), header(&mac).as_bytes()),
        body,
        "id changed",
    );
    let later = (NOW + i64::from(skew) + 1).to_string();
    bad(
        headers(id.as_bytes(), later.as_bytes(), header(&mac).as_bytes()),
        body,
        "timestamp changed",
    );
}

fuzz_target!(|data: &[u8]| {
    let [mode, s0, s1, p0, p1, rest @ ..] = data else {
        return;
    };
    let verifier = WebhookVerifier::new(Vendor::StandardWebhooks, SECRET).unwrap();
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
