//! Checking identity-verification (IDV) vendor webhooks and reading their results.
//!
//! A vendor such as Persona tells Deskgate, by webhook, how an identity inquiry ended. That
//! result can count as the `government_id` independence class, so a forged or replayed delivery
//! must never get that far. This module is pure (no I/O): it authenticates a delivery (HMAC-SHA256
//! over the raw body, compared in constant time), refuses one whose timestamp is more than
//! [`TOLERANCE_SECS`] away from `now`, and turns the body into a vendor-neutral [`IdvResult`].
//!
//! Two signature formats are understood:
//! - [Standard Webhooks](https://www.standardwebhooks.com/): headers `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature` (space-separated `v1,<base64>` entries), signed
//!   content `{id}.{timestamp}.{body}`, secret `whsec_<base64 key>`.
//! - Persona's `Persona-Signature: t=<unix>,v1=<hex>` over `{t}.{body}`, keyed with the webhook
//!   secret's text as shown in the dashboard.
//!
//! Replays: a delivery carries an id ([`VerifiedDelivery::delivery_id`]). The service records
//! every processed id in its store (a unique key, in the same transaction as the result), so a
//! captured delivery, or a vendor retry of one already processed, is refused.
//!
//! ## Generic payload for Standard Webhooks vendors
//! A vendor (or an adapter in front of one) that signs with Standard Webhooks sends:
//! ```json
//! {
//!   "type": "idv.result",
//!   "timestamp": "2026-11-26T10:00:00Z",
//!   "data": {
//!     "inquiry_id": "inq_123",
//!     "reference_id": "the Deskgate reference the inquiry was created with",
//!     "status": "approved | declined | needs_review | pending",
//!     "checks": { "document": true, "selfie": true, "liveness": true },
//!     "matches": { "name_first": true, "name_last": true, "birthdate": true }
//!   }
//! }
//! ```
//! Other `type` values are authenticated but carry no result. A missing check counts as not
//! passed, and an unknown status is kept as [`IdvStatus::Other`].
//!
//! ## Binding to the subject
//! A genuine document proves nothing about the subject unless it is theirs: an attacker holding
//! only the mailbox could finish an inquiry with their own passport. So the inquiry is created
//! with the subject's [`ExpectedIdentity`] and a result counts only when the vendor reports a
//! match on every expected field ([`IdvResult::unmatched_fields`]): the `matches` booleans of the
//! generic payload (a missing one is no match), or for Persona its Inquiry comparison check
//! (`id_inquiry_comparison`, which compares the document with the fields the inquiry was created
//! with) passed on every passed government-ID verification, and the name and birthdate Persona
//! extracted from the document equal the expected values.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use deskgate_core::IdentityOfRecord;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// How far a delivery's signed timestamp may be from `now`, either way (5 minutes, the
/// tolerance both the Standard Webhooks spec and Persona's guidance use).
pub const TOLERANCE_SECS: i64 = 5 * 60;

const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";
const PERSONA_SIGNATURE: &str = "persona-signature";

mod payload;

use payload::{parse_persona, parse_standard};

/// The event type of the generic Standard Webhooks payload documented in the module docs.
const STANDARD_RESULT_TYPE: &str = "idv.result";

/// The wire format a vendor's webhooks come in, named by the `{vendor}` path segment of
/// `POST /api/v1/webhooks/idv/{vendor}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Vendor {
    /// Any vendor signing with Standard Webhooks and sending the generic payload.
    StandardWebhooks,
    /// Persona, with its `Persona-Signature` header and inquiry events.
    Persona,
}

impl Vendor {
    /// The vendor named by a path segment: `standard-webhooks` or `persona`.
    pub fn from_path_segment(segment: &str) -> Result<Self, IdvError> {
        match segment {
            "standard-webhooks" => Ok(Self::StandardWebhooks),
            "persona" => Ok(Self::Persona),
            other => Err(IdvError::UnknownVendor(other.to_owned())),
        }
    }

    /// The path segment (and audit name) of this vendor.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Persona => "persona",
        }
    }
}

/// Why a webhook delivery was refused. No variant carries the secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdvError {
    #[error("unknown identity-verification vendor {0:?}")]
    UnknownVendor(String),
    #[error("the webhook secret is not in the vendor's format")]
    MalformedSecret,
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    #[error("header {header} is malformed: {reason}")]
    MalformedHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("no signature matches the delivery")]
    BadSignature,
    #[error("the delivery was signed {age_secs} s ago, more than {TOLERANCE_SECS} s")]
    Stale { age_secs: i64 },
    #[error("the delivery is dated {ahead_secs} s ahead, more than {TOLERANCE_SECS} s")]
    FromTheFuture { ahead_secs: i64 },
    #[error("the body is malformed: {0}")]
    MalformedBody(String),
}

/// How the vendor decided the inquiry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdvStatus {
    Approved,
    Declined,
    NeedsReview,
    /// Not decided yet (created, in progress, or finished but awaiting a decision).
    Pending,
    /// Any other status, as the vendor spelled it (for the audit trail).
    Other(String),
}

/// Which evidence the vendor reports as passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdvChecks {
    /// A government-issued identity document was checked and passed.
    pub document: bool,
    /// A selfie was taken and passed.
    pub selfie: bool,
    /// The selfie passed a liveness check (a live person, not a photo or replay).
    pub liveness: bool,
}

/// A field of the identity of record that a document must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentityField {
    NameFirst,
    NameLast,
    Birthdate,
}

impl IdentityField {
    /// The configuration, audit and generic-payload name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameFirst => "name_first",
            Self::NameLast => "name_last",
            Self::Birthdate => "birthdate",
        }
    }

    /// Persona's inquiry field and verification attribute name.
    pub fn persona_name(self) -> &'static str {
        match self {
            Self::NameFirst => "name-first",
            Self::NameLast => "name-last",
            Self::Birthdate => "birthdate",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::NameFirst, Self::NameLast, Self::Birthdate]
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// The fields a result must match: by default first name, last name, and the birthdate when
/// the subject record has one.
pub fn default_match_fields() -> Vec<IdentityField> {
    vec![
        IdentityField::NameFirst,
        IdentityField::NameLast,
        IdentityField::Birthdate,
    ]
}

/// Why no inquiry can be bound to a subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    #[error("idv.match_fields must name at least name_first and name_last")]
    NamesNotConfigured,
    #[error("the subject record has no legal name to match a document against")]
    NoIdentityOfRecord,
}

/// What the vendor is told to expect when the inquiry is created, and what its result must
/// match: the configured fields the subject record holds, in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedIdentity {
    fields: Vec<(IdentityField, String)>,
}

impl ExpectedIdentity {
    /// The configured fields of `identity`. Both names are required (configured and present);
    /// a configured birthdate is expected when the record has one.
    pub fn of(
        identity: Option<&IdentityOfRecord>,
        configured: &[IdentityField],
    ) -> Result<Self, BindingError> {
        if !configured.contains(&IdentityField::NameFirst)
            || !configured.contains(&IdentityField::NameLast)
        {
            return Err(BindingError::NamesNotConfigured);
        }
        let identity = identity.ok_or(BindingError::NoIdentityOfRecord)?;
        if normalise_name(&identity.given_name).is_empty()
            || normalise_name(&identity.family_name).is_empty()
        {
            return Err(BindingError::NoIdentityOfRecord);
        }
        let mut fields = Vec::new();
        for field in default_match_fields() {
            if !configured.contains(&field) {
                continue;
            }
            let value = match field {
                IdentityField::NameFirst => Some(identity.given_name.trim().to_owned()),
                IdentityField::NameLast => Some(identity.family_name.trim().to_owned()),
                IdentityField::Birthdate => {
                    identity.birthdate.map(|d| d.format("%Y-%m-%d").to_string())
                }
            };
            if let Some(value) = value {
                fields.push((field, value));
            }
        }
        Ok(Self { fields })
    }

    /// The expected fields and values (birthdates as `YYYY-MM-DD`).
    pub fn fields(&self) -> &[(IdentityField, String)] {
        &self.fields
    }

    /// The names of the expected fields, for the audit trail (never the values).
    pub fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|(f, _)| f.as_str()).collect()
    }
}

/// Case, accents of composition and runs of white space do not make two names differ; anything
/// else does.
fn normalise_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn same_value(field: IdentityField, reported: &str, expected: &str) -> bool {
    match field {
        IdentityField::Birthdate => {
            let date = |text: &str| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok();
            matches!((date(reported), date(expected)), (Some(a), Some(b)) if a == b)
        }
        IdentityField::NameFirst | IdentityField::NameLast => {
            let (a, b) = (normalise_name(reported), normalise_name(expected));
            !a.is_empty() && a == b
        }
    }
}

/// What the vendor said about the document's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityReport {
    /// Standard Webhooks: the vendor's per-field `matches`.
    pub matches: BTreeMap<IdentityField, bool>,
    /// Persona: the values extracted from the document (a field two passed documents disagree
    /// on is left out).
    pub extracted: BTreeMap<IdentityField, String>,
    /// Persona: the Inquiry comparison check passed on every passed government-ID verification.
    pub comparison_passed: bool,
}

/// A vendor's result for one inquiry, in Deskgate's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdvResult {
    pub vendor: Vendor,
    /// The vendor's id of the inquiry.
    pub inquiry_id: String,
    /// The Deskgate case/verification reference the inquiry was created with; `None` when the
    /// vendor reports none, in which case the result matches no case.
    pub reference_id: Option<String>,
    pub status: IdvStatus,
    pub checks: IdvChecks,
    pub identity: IdentityReport,
}

impl IdvResult {
    /// Whether this result counts as `government_id`: the vendor approved the inquiry and the
    /// document, selfie and liveness checks all passed. Approval alone is not enough because a
    /// vendor's approval rules are configured outside Deskgate and may accept weaker evidence.
    pub fn counts_as_government_id(&self) -> bool {
        self.status == IdvStatus::Approved
            && self.checks.document
            && self.checks.selfie
            && self.checks.liveness
    }

    /// The expected fields the vendor did not report as matching the document. Empty only when
    /// every field matched; with nothing expected, every name field is reported unmatched so
    /// that an unbound result can never count.
    pub fn unmatched_fields(&self, expected: &ExpectedIdentity) -> Vec<IdentityField> {
        if expected.fields.is_empty() {
            return vec![IdentityField::NameFirst, IdentityField::NameLast];
        }
        expected
            .fields
            .iter()
            .filter(|(field, value)| !self.field_matches(*field, value))
            .map(|(field, _)| *field)
            .collect()
    }

    fn field_matches(&self, field: IdentityField, expected: &str) -> bool {
        match self.vendor {
            Vendor::StandardWebhooks => self.identity.matches.get(&field) == Some(&true),
            Vendor::Persona => {
                self.identity.comparison_passed
                    && self
                        .identity
                        .extracted
                        .get(&field)
                        .is_some_and(|reported| same_value(field, reported, expected))
            }
        }
    }
}

/// An authenticated, fresh delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDelivery {
    pub vendor: Vendor,
    /// What to refuse replays by: `webhook-id` for Standard Webhooks, the event id (`data.id`)
    /// for Persona. Both stay the same when the vendor retries.
    pub delivery_id: String,
    /// The signed timestamp.
    pub sent_at: DateTime<Utc>,
    /// The vendor's event type (`idv.result`, `inquiry.approved`, ...).
    pub event_type: String,
    /// The inquiry result, or `None` for events that carry none (e.g. Persona's `verification.*`).
    pub result: Option<IdvResult>,
}

/// Checks deliveries from one vendor endpoint against its webhook secret.
#[derive(Clone)]
pub struct WebhookVerifier {
    vendor: Vendor,
    /// Keyed with the secret; cloned for each delivery so the key is decoded only once.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("vendor", &self.vendor)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier for `vendor` with its webhook secret: `whsec_<base64>` for Standard Webhooks
    /// (the prefix may be left off, as the reference libraries allow), the secret text for
    /// Persona (its documented examples use the text itself as the HMAC key).
    pub fn new(vendor: Vendor, secret: &str) -> Result<Self, IdvError> {
        let key = match vendor {
            Vendor::StandardWebhooks => {
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                STANDARD
                    .decode(encoded)
                    .map_err(|_| IdvError::MalformedSecret)?
            }
            Vendor::Persona => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(IdvError::MalformedSecret);
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| IdvError::MalformedSecret)?;
        Ok(Self { vendor, mac })
    }

    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// Authenticates `body` (the raw bytes as received: re-serialised JSON would not match) with
    /// its `headers`, refuses it unless its signed timestamp is within [`TOLERANCE_SECS`] of
    /// `now`, and reads the result it carries. The signature is checked before the timestamp so
    /// that a sender without the secret learns nothing but "bad signature".
    ///
    /// The caller must still refuse a [`VerifiedDelivery::delivery_id`] it has seen before (the
    /// service keeps them in its store).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedDelivery, IdvError> {
        match self.vendor {
            Vendor::StandardWebhooks => {
                let (delivery_id, signed_at) = self.authenticate_standard(headers, body)?;
                let sent_at = fresh(signed_at, now, WEBHOOK_TIMESTAMP)?;
                let (event_type, result) = parse_standard(body)?;
                Ok(VerifiedDelivery {
                    vendor: self.vendor,
                    delivery_id,
                    sent_at,
                    event_type,
                    result,
                })
            }
            Vendor::Persona => {
                let signed_at = self.authenticate_persona(headers, body)?;
                let sent_at = fresh(signed_at, now, PERSONA_SIGNATURE)?;
                let (delivery_id, event_type, result) = parse_persona(body)?;
                Ok(VerifiedDelivery {
                    vendor: self.vendor,
                    delivery_id,
                    sent_at,
                    event_type,
                    result,
                })
            }
        }
    }

    /// HMAC-SHA256 of the parts, concatenated.
    fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks the Standard Webhooks headers; returns the webhook id and the signed timestamp.
    fn authenticate_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(String, i64), IdvError> {
        let id = header(headers, WEBHOOK_ID)?;
        if id.is_empty() {
            return Err(malformed(WEBHOOK_ID, "empty"));
        }
        let timestamp = header(headers, WEBHOOK_TIMESTAMP)?;
        let signed_at = parse_unix(timestamp, WEBHOOK_TIMESTAMP)?;
        let signatures = standard_signatures(header(headers, WEBHOOK_SIGNATURE)?)?;
        // The raw header text is what the sender signed, so it is used as received.
        let expected = self.sign(&[id.as_bytes(), b".", timestamp.as_bytes(), b".", body]);
        if any_matches(&expected, &signatures) {
            Ok((id.to_owned(), signed_at))
        } else {
            Err(IdvError::BadSignature)
        }
    }

    /// Checks the `Persona-Signature` header; returns the timestamp of the set that matched.
    fn authenticate_persona(&self, headers: &HeaderMap, body: &[u8]) -> Result<i64, IdvError> {
        let sets = persona_signature_sets(header(headers, PERSONA_SIGNATURE)?)?;
        let mut matched_at = None;
        for set in &sets {
            let expected = self.sign(&[set.timestamp.as_bytes(), b".", body]);
            if any_matches(&expected, &set.signatures) {
                matched_at = Some(set.signed_at);
            }
        }
        matched_at.ok_or(IdvError::BadSignature)
    }
}

fn malformed(header: &'static str, reason: &'static str) -> IdvError {
    IdvError::MalformedHeader { header, reason }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, IdvError> {
    headers
        .get(name)
        .ok_or(IdvError::MissingHeader(name))?
        .to_str()
        .map_err(|_| malformed(name, "not visible ASCII"))
        .map(str::trim)
}

fn parse_unix(text: &str, header: &'static str) -> Result<i64, IdvError> {
    text.parse::<i64>()
        .map_err(|_| malformed(header, "the timestamp is not whole Unix seconds"))
}

/// Compares `expected` with every candidate in constant time, without stopping at a match, so
/// the time taken says nothing about how close a forged signature came.
fn any_matches(expected: &[u8], candidates: &[Vec<u8>]) -> bool {
    let mut matched = Choice::from(0);
    for candidate in candidates {
        matched |= expected.ct_eq(candidate.as_slice());
    }
    matched.into()
}

/// The `v1` signatures of a `webhook-signature` header. Entries of other versions (such as the
/// spec's asymmetric `v1a`) are skipped: they are not ours to check, and a v1 entry beside them
/// may still match.
fn standard_signatures(value: &str) -> Result<Vec<Vec<u8>>, IdvError> {
    let mut signatures = Vec::new();
    for entry in value.split_ascii_whitespace() {
        let (version, signature) = entry.split_once(',').ok_or(malformed(
            WEBHOOK_SIGNATURE,
            "an entry is not version,signature",
        ))?;
        if version != "v1" {
            continue;
        }
        let decoded = STANDARD
            .decode(signature)
            .map_err(|_| malformed(WEBHOOK_SIGNATURE, "a v1 signature is not base64"))?;
        signatures.push(decoded);
    }
    if signatures.is_empty() {
        return Err(malformed(WEBHOOK_SIGNATURE, "no v1 signature"));
    }
    Ok(signatures)
}

/// One `t=...,v1=...` set of a `Persona-Signature` header.
struct PersonaSignatureSet<'h> {
    /// As received: it is part of the signed content.
    timestamp: &'h str,
    signed_at: i64,
    signatures: Vec<Vec<u8>>,
}

/// The sets of a `Persona-Signature` header. Follows Persona's "Webhook Best Practices" doc
/// (docs.withpersona.com/docs/webhooks-best-practices, "Checking signatures"): comma-separated
/// `t=<unix_timestamp>` and `v1=<hex HMAC-SHA256 of "{t}.{body}">`, and while a secret rotates,
/// two such sets separated by a space. Each set is checked with its own `t`; several `v1` in one
/// set are all accepted; unknown keys are skipped so a later scheme version can be added beside.
fn persona_signature_sets(value: &str) -> Result<Vec<PersonaSignatureSet<'_>>, IdvError> {
    let mut sets = Vec::new();
    for set in value.split_ascii_whitespace() {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for pair in set.split(',').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or(malformed(PERSONA_SIGNATURE, "a part is not key=value"))?;
            match key {
                "t" if timestamp.is_some() => {
                    return Err(malformed(PERSONA_SIGNATURE, "a set has two timestamps"));
                }
                "t" => timestamp = Some(value),
                "v1" => signatures.push(
                    hex::decode(value)
                        .map_err(|_| malformed(PERSONA_SIGNATURE, "a v1 signature is not hex"))?,
                ),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(malformed(PERSONA_SIGNATURE, "a set has no t="))?;
        if signatures.is_empty() {
            return Err(malformed(PERSONA_SIGNATURE, "a set has no v1="));
        }
        sets.push(PersonaSignatureSet {
            timestamp,
            signed_at: parse_unix(timestamp, PERSONA_SIGNATURE)?,
            signatures,
        });
    }
    if sets.is_empty() {
        return Err(malformed(PERSONA_SIGNATURE, "empty"));
    }
    Ok(sets)
}

/// Refuses a timestamp more than [`TOLERANCE_SECS`] from `now`, either way.
fn fresh(
    signed_at: i64,
    now: DateTime<Utc>,
    header: &'static str,
) -> Result<DateTime<Utc>, IdvError> {
    let age_secs = now.timestamp().saturating_sub(signed_at);
    if age_secs > TOLERANCE_SECS {
        return Err(IdvError::Stale { age_secs });
    }
    if age_secs < -TOLERANCE_SECS {
        return Err(IdvError::FromTheFuture {
            ahead_secs: age_secs.saturating_neg(),
        });
    }
    DateTime::from_timestamp(signed_at, 0).ok_or(malformed(header, "timestamp out of range"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const PERSONA_SECRET: &str = "wbhsec_test_0123456789abcdef";
    const NOW: i64 = 1_764_150_000;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    /// Signs independently of the module: the `hmac` crate directly, key from the secret text.
    fn hmac(key: &[u8], content: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(content);
        mac.finalize().into_bytes().to_vec()
    }

    fn standard_signature(secret: &str, id: &str, ts: i64, body: &str) -> String {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let content = format!("{id}.{ts}.{body}");
        format!("v1,{}", STANDARD.encode(hmac(&key, content.as_bytes())))
    }

    fn persona_v1(secret: &str, ts: i64, body: &str) -> String {
        hex::encode(hmac(secret.as_bytes(), format!("{ts}.{body}").as_bytes()))
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn standard_headers(id: &str, ts: i64, signature: String) -> HeaderMap {
        headers(&[
            (WEBHOOK_ID, id.to_owned()),
            (WEBHOOK_TIMESTAMP, ts.to_string()),
            (WEBHOOK_SIGNATURE, signature),
        ])
    }

    fn standard_verifier() -> WebhookVerifier {
        WebhookVerifier::new(Vendor::StandardWebhooks, STANDARD_SECRET).unwrap()
    }

    fn persona_verifier() -> WebhookVerifier {
        WebhookVerifier::new(Vendor::Persona, PERSONA_SECRET).unwrap()
    }

    const STANDARD_BODY: &str = r#"{"type":"idv.result","timestamp":"2026-11-26T10:00:00Z","data":{"inquiry_id":"inq_1","reference_id":"case-42","status":"approved","checks":{"document":true,"selfie":true,"liveness":true}}}"#;

    fn signed_standard(ts: i64, body: &str) -> HeaderMap {
        standard_headers(
            "msg_1",
            ts,
            standard_signature(STANDARD_SECRET, "msg_1", ts, body),
        )
    }

    /// A Persona `inquiry.approved` event shaped like the example in Persona's Webhooks Overview,
    /// with a passed government ID and a passed selfie whose liveness check has `liveness`.
    fn persona_body(status: &str, liveness: &str) -> String {
        format!(
            r#"{{"data":{{"type":"event","id":"evt_XGuYWp7WuDzNxie5z16s7sGJ","attributes":{{
            "name":"inquiry.approved","payload":{{
              "data":{{"type":"inquiry","id":"inq_2CVZ4HyVg7qaboXz2PUHknAn",
                "attributes":{{"status":"{status}","reference-id":"case-42",
                  "created-at":"2019-09-09T22:40:56.000Z"}},
                "relationships":{{"template":{{"data":{{"id":"blu_1","type":"template"}}}},
                  "verifications":{{"data":[
                    {{"id":"ver_gov","type":"verification/government-id"}},
                    {{"id":"ver_selfie","type":"verification/selfie"}}]}}}}}},
              "included":[
                {{"type":"template","id":"blu_1","attributes":{{"name":"Acme #1"}}}},
                {{"type":"verification/government-id","id":"ver_gov",
                  "attributes":{{"status":"passed","name-first":"Jane","name-middle":null,
                    "name-last":"Doe","birthdate":"1957-05-29","checks":[
                    {{"name":"id_barcode_detection","status":"passed","reasons":[],"metadata":{{}}}},
                    {{"name":"id_inquiry_comparison","status":"passed","reasons":[],"requirement":"required","metadata":{{}}}}]}}}},
                {{"type":"verification/selfie","id":"ver_selfie",
                  "attributes":{{"status":"passed","checks":[
                    {{"name":"selfie_pose_detection","status":"passed","reasons":[],"metadata":{{}}}},
                    {{"name":"selfie_liveness_detection","status":"{liveness}","reasons":[],"metadata":{{}}}}]}}}}]}},
            "created-at":"2019-09-09T22:46:20.000Z"}}}}}}"#
        )
    }

    fn persona_headers(value: String) -> HeaderMap {
        headers(&[(PERSONA_SIGNATURE, value)])
    }

    fn signed_persona(ts: i64, body: &str) -> HeaderMap {
        persona_headers(format!(
            "t={ts},v1={}",
            persona_v1(PERSONA_SECRET, ts, body)
        ))
    }

    #[test]
    fn standard_webhooks_published_vector_authenticates() {
        // The test vector published with the Standard Webhooks reference libraries.
        let body = br#"{"test": 2432232314}"#;
        let h = standard_headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned(),
        );
        let (id, ts) = standard_verifier().authenticate_standard(&h, body).unwrap();
        assert_eq!(id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(ts, 1_614_265_330);
    }

    #[test]
    fn standard_delivery_with_valid_signature_yields_result_and_id() {
        let delivery = standard_verifier()
            .verify(
                &signed_standard(NOW, STANDARD_BODY),
                STANDARD_BODY.as_bytes(),
                now(),
            )
            .unwrap();
        assert_eq!(delivery.delivery_id, "msg_1");
        assert_eq!(delivery.event_type, "idv.result");
        assert_eq!(delivery.sent_at, now());
        let result = delivery.result.unwrap();
        assert_eq!(result.vendor, Vendor::StandardWebhooks);
        assert_eq!(result.inquiry_id, "inq_1");
        assert_eq!(result.reference_id.as_deref(), Some("case-42"));
        assert_eq!(result.status, IdvStatus::Approved);
        assert!(result.counts_as_government_id());
    }

    #[test]
    fn standard_delivery_signed_with_another_secret_is_refused() {
        let other = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
        let h = standard_headers(
            "msg_1",
            NOW,
            standard_signature(other, "msg_1", NOW, STANDARD_BODY),
        );
        let err = standard_verifier()
            .verify(&h, STANDARD_BODY.as_bytes(), now())
            .unwrap_err();
        assert_eq!(err, IdvError::BadSignature);
    }

    #[test]
    fn standard_delivery_with_altered_body_is_refused() {
        let altered = STANDARD_BODY.replace("case-42", "case-43");
        let err = standard_verifier()
            .verify(
                &signed_standard(NOW, STANDARD_BODY),
                altered.as_bytes(),
                now(),
            )
            .unwrap_err();
        assert_eq!(err, IdvError::BadSignature);
    }

    #[test]
    fn standard_delivery_with_altered_timestamp_is_refused() {
        let signature = standard_signature(STANDARD_SECRET, "msg_1", NOW, STANDARD_BODY);
        let h = standard_headers("msg_1", NOW + 1, signature);
        let err = standard_verifier()
            .verify(&h, STANDARD_BODY.as_bytes(), now())
            .unwrap_err();
        assert_eq!(err, IdvError::BadSignature);
    }

    #[test]
    fn standard_delivery_with_altered_id_is_refused() {
        let signature = standard_signature(STANDARD_SECRET, "msg_1", NOW, STANDARD_BODY);
        let h = standard_headers("msg_2", NOW, signature);
        let err = standard_verifier()
            .verify(&h, STANDARD_BODY.as_bytes(), now())
            .unwrap_err();
        assert_eq!(err, IdvError::BadSignature);
    }

    #[test]
    fn standard_delivery_exactly_five_minutes_old_is_accepted() {
        let ts = NOW - TOLERANCE_SECS;
        let result = standard_verifier().verify(
            &signed_standard(ts, STANDARD_BODY),
            STANDARD_BODY.as_bytes(),
            now(),
        );
        assert!(result.is_ok());
    }

    #[test]
    fn standard_delivery_five_minutes_and_a_second_old_is_stale() {
        let ts = NOW - TOLERANCE_SECS - 1;
        let err = standard_verifier()
            .verify(
                &signed_standard(ts, STANDARD_BODY),
                STANDARD_BODY.as_bytes(),
                now(),
            )
            .unwrap_err();
        assert_eq!(err, IdvError::Stale { age_secs: 301 });
    }

    #[test]
    fn standard_delivery_more_than_five_minutes_ahead_is_refused() {
        let ts = NOW + TOLERANCE_SECS + 1;
        let err = standard_verifier()
            .verify(
                &signed_standard(ts, STANDARD_BODY),
                STANDARD_BODY.as_bytes(),
                now(),
            )
            .unwrap_err();
        assert_eq!(err, IdvError::FromTheFuture { ahead_secs: 301 });
    }

    #[test]
    fn standard_delivery_without_each_header_is_refused_naming_it() {
        let full = signed_standard(NOW, STANDARD_BODY);
        for name in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE] {
            let mut h = full.clone();
            h.remove(name);
            let err = standard_verifier()
                .verify(&h, STANDARD_BODY.as_bytes(), now())
                .unwrap_err();
            assert_eq!(err, IdvError::MissingHeader(name));
        }
    }

    #[test]
    fn standard_delivery_with_malformed_headers_is_refused() {
        let good = standard_signature(STANDARD_SECRET, "msg_1", NOW, STANDARD_BODY);
        let cases = [
            (NOW.to_string(), "garbage".to_owned(), WEBHOOK_SIGNATURE),
            (
                NOW.to_string(),
                "v1,not*base64!".to_owned(),
                WEBHOOK_SIGNATURE,
            ),
            (NOW.to_string(), "v1a,abcd".to_owned(), WEBHOOK_SIGNATURE),
            ("soon".to_owned(), good.clone(), WEBHOOK_TIMESTAMP),
            ("1.5".to_owned(), good, WEBHOOK_TIMESTAMP),
        ];
        for (timestamp, signature, bad_header) in cases {
            let h = headers(&[
                (WEBHOOK_ID, "msg_1".to_owned()),
                (WEBHOOK_TIMESTAMP, timestamp),
                (WEBHOOK_SIGNATURE, signature),
            ]);
            let err = standard_verifier()
                .verify(&h, STANDARD_BODY.as_bytes(), now())
                .unwrap_err();
            assert!(
                matches!(err, IdvError::MalformedHeader { header, .. } if header == bad_header),
                "{err:?}"
            );
        }
    }

    #[test]
    fn standard_delivery_passes_when_the_second_of_two_signatures_matches() {
        let old = standard_signature(
            "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
            "msg_1",
            NOW,
            STANDARD_BODY,
        );
        let current = standard_signature(STANDARD_SECRET, "msg_1", NOW, STANDARD_BODY);
        let h = standard_headers("msg_1", NOW, format!("{old} v1a,ignored {current}"));
        let result = standard_verifier().verify(&h, STANDARD_BODY.as_bytes(), now());
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn standard_event_of_another_type_is_authenticated_without_result() {
        let body = r#"{"type":"idv.started","data":{}}"#;
        let delivery = standard_verifier()
            .verify(&signed_standard(NOW, body), body.as_bytes(), now())
            .unwrap();
        assert_eq!(delivery.event_type, "idv.started");
        assert_eq!(delivery.result, None);
    }

    #[test]
    fn standard_result_with_unknown_status_and_missing_checks_does_not_count() {
        let body = r#"{"type":"idv.result","data":{"inquiry_id":"inq_1","reference_id":"case-42","status":"approved_ish"}}"#;
        let result = standard_verifier()
            .verify(&signed_standard(NOW, body), body.as_bytes(), now())
            .unwrap()
            .result
            .unwrap();
        assert_eq!(result.status, IdvStatus::Other("approved_ish".to_owned()));
        assert_eq!(result.checks, IdvChecks::default());
        assert!(!result.counts_as_government_id());
    }

    #[test]
    fn authentic_body_that_is_not_the_documented_shape_is_malformed() {
        for body in [
            "not json",
            r#"{"type":"idv.result","data":{"status":"approved"}}"#,
        ] {
            let err = standard_verifier()
                .verify(&signed_standard(NOW, body), body.as_bytes(), now())
                .unwrap_err();
            assert!(matches!(err, IdvError::MalformedBody(_)), "{err:?}");
        }
    }

    #[test]
    fn malformed_body_error_does_not_quote_the_body() {
        let body =
            r#"{"type":"idv.result","data":{"inquiry_id":"inq_1","status":{"name":"Jane Doe"}}}"#;
        let err = standard_verifier()
            .verify(&signed_standard(NOW, body), body.as_bytes(), now())
            .unwrap_err();
        assert!(!err.to_string().contains("Jane"), "{err}");
    }

    #[test]
    fn standard_secret_must_be_base64() {
        for secret in ["whsec_not base64!", "whsec_", ""] {
            let err = WebhookVerifier::new(Vendor::StandardWebhooks, secret).unwrap_err();
            assert_eq!(err, IdvError::MalformedSecret);
        }
    }

    #[test]
    fn verifier_debug_output_hides_the_secret() {
        let text = format!("{:?}", persona_verifier());
        assert!(!text.contains(PERSONA_SECRET), "{text}");
    }

    #[test]
    fn persona_delivery_with_valid_signature_yields_result_and_event_id() {
        let body = persona_body("approved", "passed");
        let delivery = persona_verifier()
            .verify(&signed_persona(NOW, &body), body.as_bytes(), now())
            .unwrap();
        assert_eq!(delivery.delivery_id, "evt_XGuYWp7WuDzNxie5z16s7sGJ");
        assert_eq!(delivery.event_type, "inquiry.approved");
        let result = delivery.result.unwrap();
        assert_eq!(
            result,
            IdvResult {
                vendor: Vendor::Persona,
                inquiry_id: "inq_2CVZ4HyVg7qaboXz2PUHknAn".to_owned(),
                reference_id: Some("case-42".to_owned()),
                status: IdvStatus::Approved,
                checks: IdvChecks {
                    document: true,
                    selfie: true,
                    liveness: true,
                },
                identity: IdentityReport {
                    extracted: BTreeMap::from([
                        (IdentityField::NameFirst, "Jane".to_owned()),
                        (IdentityField::NameLast, "Doe".to_owned()),
                        (IdentityField::Birthdate, "1957-05-29".to_owned()),
                    ]),
                    comparison_passed: true,
                    ..IdentityReport::default()
                },
            }
        );
        assert!(result.counts_as_government_id());
    }

    #[test]
    fn persona_delivery_with_wrong_secret_altered_body_or_timestamp_is_refused() {
        let body = persona_body("approved", "passed");
        let wrong_secret = persona_headers(format!(
            "t={NOW},v1={}",
            persona_v1("wbhsec_other", NOW, &body)
        ));
        let altered_t = persona_headers(format!(
            "t={},v1={}",
            NOW + 1,
            persona_v1(PERSONA_SECRET, NOW, &body)
        ));
        let altered_body = body.replace("case-42", "case-43");
        for (h, sent) in [
            (wrong_secret, body.as_str()),
            (altered_t, body.as_str()),
            (signed_persona(NOW, &body), altered_body.as_str()),
        ] {
            let err = persona_verifier()
                .verify(&h, sent.as_bytes(), now())
                .unwrap_err();
            assert_eq!(err, IdvError::BadSignature);
        }
    }

    #[test]
    fn persona_delivery_stale_or_from_the_future_is_refused() {
        let body = persona_body("approved", "passed");
        let stale = NOW - TOLERANCE_SECS - 1;
        let err = persona_verifier()
            .verify(&signed_persona(stale, &body), body.as_bytes(), now())
            .unwrap_err();
        assert_eq!(err, IdvError::Stale { age_secs: 301 });
        let ahead = NOW + TOLERANCE_SECS + 1;
        let err = persona_verifier()
            .verify(&signed_persona(ahead, &body), body.as_bytes(), now())
            .unwrap_err();
        assert_eq!(err, IdvError::FromTheFuture { ahead_secs: 301 });
    }

    #[test]
    fn persona_delivery_without_signature_header_is_refused() {
        let body = persona_body("approved", "passed");
        let err = persona_verifier()
            .verify(&HeaderMap::new(), body.as_bytes(), now())
            .unwrap_err();
        assert_eq!(err, IdvError::MissingHeader(PERSONA_SIGNATURE));
    }

    #[test]
    fn persona_delivery_with_malformed_signature_header_is_refused() {
        let body = persona_body("approved", "passed");
        let v1 = persona_v1(PERSONA_SECRET, NOW, &body);
        for value in [
            String::new(),
            format!("v1={v1}"),
            format!("t={NOW}"),
            format!("t={NOW},v1=zz{v1}"),
            format!("t=yesterday,v1={v1}"),
            format!("t={NOW},t={NOW},v1={v1}"),
            format!("t={NOW};v1={v1}"),
        ] {
            let err = persona_verifier()
                .verify(&persona_headers(value.clone()), body.as_bytes(), now())
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    IdvError::MalformedHeader {
                        header: PERSONA_SIGNATURE,
                        ..
                    }
                ),
                "{value:?}: {err:?}"
            );
        }
    }

    #[test]
    fn persona_delivery_passes_during_rotation_when_the_second_set_matches() {
        let body = persona_body("approved", "passed");
        let old = persona_v1("wbhsec_old", NOW, &body);
        let current = persona_v1(PERSONA_SECRET, NOW, &body);
        for value in [
            format!("t={NOW},v1={old} t={NOW},v1={current}"),
            format!("t={NOW},v1={old},v1={current}"),
        ] {
            let result = persona_verifier().verify(&persona_headers(value), body.as_bytes(), now());
            assert!(result.is_ok(), "{result:?}");
        }
    }

    #[test]
    fn persona_result_with_failed_liveness_does_not_count() {
        let body = persona_body("approved", "failed");
        let result = persona_verifier()
            .verify(&signed_persona(NOW, &body), body.as_bytes(), now())
            .unwrap()
            .result
            .unwrap();
        assert_eq!(
            result.checks,
            IdvChecks {
                document: true,
                selfie: true,
                liveness: false,
            }
        );
        assert!(!result.counts_as_government_id());
    }

    #[test]
    fn persona_statuses_map_to_deskgate_statuses() {
        for (persona, expected) in [
            ("declined", IdvStatus::Declined),
            ("needs_review", IdvStatus::NeedsReview),
            ("completed", IdvStatus::Pending),
            ("expired", IdvStatus::Other("expired".to_owned())),
        ] {
            let body = persona_body(persona, "passed");
            let result = persona_verifier()
                .verify(&signed_persona(NOW, &body), body.as_bytes(), now())
                .unwrap()
                .result
                .unwrap();
            assert_eq!(result.status, expected);
            assert!(!result.counts_as_government_id());
        }
    }

    #[test]
    fn persona_verification_not_linked_to_the_inquiry_does_not_count() {
        let body = persona_body("approved", "passed").replace(
            r#""type":"verification/government-id","id":"ver_gov""#,
            r#""type":"verification/government-id","id":"ver_elsewhere""#,
        );
        let result = persona_verifier()
            .verify(&signed_persona(NOW, &body), body.as_bytes(), now())
            .unwrap()
            .result
            .unwrap();
        assert!(!result.checks.document);
        assert!(!result.counts_as_government_id());
    }

    #[test]
    fn persona_non_inquiry_event_is_authenticated_without_result() {
        let body = r#"{"data":{"type":"event","id":"evt_2","attributes":{"name":"verification.passed","payload":{"data":{"type":"verification/selfie","id":"ver_1","attributes":{"status":"passed"}}}}}}"#;
        let delivery = persona_verifier()
            .verify(&signed_persona(NOW, body), body.as_bytes(), now())
            .unwrap();
        assert_eq!(delivery.delivery_id, "evt_2");
        assert_eq!(delivery.event_type, "verification.passed");
        assert_eq!(delivery.result, None);
    }

    #[test]
    fn persona_inquiry_without_reference_matches_no_case() {
        let body = persona_body("approved", "passed")
            .replace(r#""reference-id":"case-42""#, r#""reference-id":null"#);
        let result = persona_verifier()
            .verify(&signed_persona(NOW, &body), body.as_bytes(), now())
            .unwrap()
            .result
            .unwrap();
        assert_eq!(result.reference_id, None);
    }

    #[test]
    fn counts_as_government_id_only_when_approved_with_every_check() {
        for status in [
            IdvStatus::Approved,
            IdvStatus::Declined,
            IdvStatus::NeedsReview,
            IdvStatus::Pending,
            IdvStatus::Other("approved".to_owned()),
        ] {
            for bits in 0..8u8 {
                let checks = IdvChecks {
                    document: bits & 1 != 0,
                    selfie: bits & 2 != 0,
                    liveness: bits & 4 != 0,
                };
                let result = IdvResult {
                    vendor: Vendor::Persona,
                    inquiry_id: "inq".to_owned(),
                    reference_id: Some("case".to_owned()),
                    status: status.clone(),
                    checks,
                    identity: IdentityReport::default(),
                };
                let expected = status == IdvStatus::Approved && bits == 7;
                assert_eq!(
                    result.counts_as_government_id(),
                    expected,
                    "{status:?} {checks:?}"
                );
            }
        }
    }

    fn jane(birthdate: Option<&str>) -> IdentityOfRecord {
        IdentityOfRecord {
            given_name: "Jane".to_owned(),
            family_name: "Doe".to_owned(),
            birthdate: birthdate.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        }
    }

    fn persona_result(body: &str) -> IdvResult {
        persona_verifier()
            .verify(&signed_persona(NOW, body), body.as_bytes(), now())
            .unwrap()
            .result
            .unwrap()
    }

    #[test]
    fn expected_identity_needs_both_names_and_takes_the_birthdate_when_known() {
        let all = default_match_fields();
        let expected = ExpectedIdentity::of(Some(&jane(Some("1957-05-29"))), &all).unwrap();
        assert_eq!(
            expected.field_names(),
            ["name_first", "name_last", "birthdate"]
        );
        let expected = ExpectedIdentity::of(Some(&jane(None)), &all).unwrap();
        assert_eq!(expected.field_names(), ["name_first", "name_last"]);
        assert_eq!(
            ExpectedIdentity::of(None, &all),
            Err(BindingError::NoIdentityOfRecord)
        );
        assert_eq!(
            ExpectedIdentity::of(Some(&jane(None)), &[IdentityField::NameLast]),
            Err(BindingError::NamesNotConfigured)
        );
    }

    #[test]
    fn persona_document_of_the_subject_matches_every_field() {
        let result = persona_result(&persona_body("approved", "passed"));
        let expected =
            ExpectedIdentity::of(Some(&jane(Some("1957-05-29"))), &default_match_fields()).unwrap();
        assert_eq!(result.unmatched_fields(&expected), []);
    }

    #[test]
    fn persona_document_of_someone_else_does_not_match() {
        let body = persona_body("approved", "passed").replace(r#""Doe""#, r#""Mallory""#);
        let result = persona_result(&body);
        let expected = ExpectedIdentity::of(Some(&jane(None)), &default_match_fields()).unwrap();
        assert_eq!(
            result.unmatched_fields(&expected),
            [IdentityField::NameLast]
        );
        let wrong_birthdate =
            persona_result(&persona_body("approved", "passed").replace("1957-05-29", "1990-01-01"));
        let expected =
            ExpectedIdentity::of(Some(&jane(Some("1957-05-29"))), &default_match_fields()).unwrap();
        assert_eq!(
            wrong_birthdate.unmatched_fields(&expected),
            [IdentityField::Birthdate]
        );
    }

    #[test]
    fn persona_without_a_passed_inquiry_comparison_matches_nothing() {
        let expected = ExpectedIdentity::of(Some(&jane(None)), &default_match_fields()).unwrap();
        for status in ["failed", "not_applicable"] {
            let body = persona_body("approved", "passed").replace(
                r#""name":"id_inquiry_comparison","status":"passed""#,
                &format!(r#""name":"id_inquiry_comparison","status":"{status}""#),
            );
            assert_eq!(
                persona_result(&body).unmatched_fields(&expected),
                [IdentityField::NameFirst, IdentityField::NameLast]
            );
        }
        let without_names = persona_body("approved", "passed")
            .replace(r#""name-first":"Jane","#, "")
            .replace(r#""name-last":"Doe","#, "");
        assert_eq!(
            persona_result(&without_names).unmatched_fields(&expected),
            [IdentityField::NameFirst, IdentityField::NameLast]
        );
    }

    #[test]
    fn standard_result_counts_only_reported_matches() {
        let expected =
            ExpectedIdentity::of(Some(&jane(Some("1957-05-29"))), &default_match_fields()).unwrap();
        let with = |matches: &str| {
            let body = STANDARD_BODY.replace(
                r#""liveness":true}"#,
                &format!(r#""liveness":true}},"matches":{matches}"#),
            );
            standard_verifier()
                .verify(&signed_standard(NOW, &body), body.as_bytes(), now())
                .unwrap()
                .result
                .unwrap()
        };
        let all = with(r#"{"name_first":true,"name_last":true,"birthdate":true}"#);
        assert_eq!(all.unmatched_fields(&expected), []);
        let missing = with(r#"{"name_first":true,"name_last":true}"#);
        assert_eq!(
            missing.unmatched_fields(&expected),
            [IdentityField::Birthdate]
        );
        let mismatch = with(r#"{"name_first":false,"name_last":true,"birthdate":true}"#);
        assert_eq!(
            mismatch.unmatched_fields(&expected),
            [IdentityField::NameFirst]
        );
        let no_report = standard_verifier()
            .verify(
                &signed_standard(NOW, STANDARD_BODY),
                STANDARD_BODY.as_bytes(),
                now(),
            )
            .unwrap()
            .result
            .unwrap();
        assert_eq!(no_report.unmatched_fields(&expected).len(), 3);
    }

    #[test]
    fn vendor_path_segments_round_trip_and_unknown_is_refused() {
        for vendor in [Vendor::StandardWebhooks, Vendor::Persona] {
            assert_eq!(Vendor::from_path_segment(vendor.as_str()), Ok(vendor));
        }
        assert_eq!(
            Vendor::from_path_segment("onfido"),
            Err(IdvError::UnknownVendor("onfido".to_owned()))
        );
    }
}
