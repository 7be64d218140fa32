//! Creating identity-verification inquiries at the vendor, bound to the subject.
//!
//! The inquiry is created server to server with the subject's [`ExpectedIdentity`], so the
//! vendor compares the document with the identity of record; values put in the link the subject
//! receives could be edited by whoever holds the mailbox. The vendor answers with the inquiry's
//! id, which the verification is bound to, and the link to send.
//!
//! - Persona: `POST {api_url}/inquiries` (Bearer key) with `data.attributes` holding
//!   `inquiry-template-id`, `reference-id` and `fields` (`name-first`, `name-last`,
//!   `birthdate`), and `meta.auto-create-one-time-link`; the answer is the inquiry (`data.id`)
//!   and `meta.one-time-link` (Persona's "Create an Inquiry" and "Inquiry One-Time Links" docs).
//! - The generic vendor (Standard Webhooks): `POST {api_url}` (Bearer key) with
//!   `{"reference_id", "expected": {"name_first", "name_last", "birthdate"?}}`; the answer is
//!   `{"inquiry_id", "url"}`, and its result webhook reports `matches` per expected field.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::IdvVendor;
use crate::idv::{ExpectedIdentity, Vendor};

/// Persona API version the request and response shapes follow.
const PERSONA_VERSION: &str = "2023-01-05";
const TIMEOUT: Duration = Duration::from_secs(10);

/// An inquiry the vendor created for one verification.
#[derive(Debug, Clone)]
pub struct CreatedInquiry {
    pub inquiry_id: String,
    /// Where the subject completes it; a secret, sent only to the email of record.
    pub link: String,
}

/// Why no inquiry was created. No variant carries the API key, the identity or the link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InquiryError {
    #[error("the vendor's api_url, api_key (or Persona's inquiry_template_id) is not configured")]
    NotConfigured,
    #[error("the vendor's api_url is not usable: {0}")]
    BadApiUrl(&'static str),
    #[error("the vendor could not be reached: {0}")]
    Unreachable(String),
    #[error("the vendor refused to create the inquiry (HTTP {0})")]
    Refused(u16),
    #[error("the vendor's answer is not the documented shape")]
    UnexpectedAnswer,
}

/// Whether `vendor` can create bound inquiries with this configuration.
pub fn can_create(vendor: Vendor, config: &IdvVendor) -> bool {
    let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    has(&config.api_url)
        && has(&config.api_key)
        && (vendor != Vendor::Persona || has(&config.inquiry_template_id))
}

/// Creates the inquiry for `reference` (case/verification) expecting `expected`.
pub async fn create(
    vendor: Vendor,
    config: &IdvVendor,
    reference: &str,
    expected: &ExpectedIdentity,
) -> Result<CreatedInquiry, InquiryError> {
    if !can_create(vendor, config) {
        return Err(InquiryError::NotConfigured);
    }
    let api_url = config.api_url.as_deref().unwrap_or_default();
    let api_key = config.api_key.as_deref().unwrap_or_default();
    let (url, body) = request_of(vendor, config, api_url, reference, expected)?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        // A redirect would replay the key elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| InquiryError::Unreachable(e.to_string()))?;
    let mut request = client.post(url).bearer_auth(api_key).json(&body);
    if vendor == Vendor::Persona {
        request = request.header("Persona-Version", PERSONA_VERSION);
    }
    let response = request.send().await.map_err(|e| {
        InquiryError::Unreachable(if e.is_timeout() {
            "no answer in time".to_owned()
        } else {
            "could not connect".to_owned()
        })
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(InquiryError::Refused(status.as_u16()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|_| InquiryError::UnexpectedAnswer)?;
    let created = answer_of(vendor, &bytes)?;
    if created.inquiry_id.trim().is_empty() || !is_https(&created.link) {
        return Err(InquiryError::UnexpectedAnswer);
    }
    Ok(created)
}

/// Where the inquiry is created and what is posted, in the vendor's format.
fn request_of(
    vendor: Vendor,
    config: &IdvVendor,
    api_url: &str,
    reference: &str,
    expected: &ExpectedIdentity,
) -> Result<(Url, Value), InquiryError> {
    Ok(match vendor {
        Vendor::Persona => {
            let fields: Map<String, Value> = expected
                .fields()
                .iter()
                .map(|(f, v)| (f.persona_name().to_owned(), Value::String(v.clone())))
                .collect();
            let body = json!({
                "data": { "attributes": {
                    "inquiry-template-id": config.inquiry_template_id,
                    "reference-id": reference,
                    "fields": fields,
                }},
                "meta": { "auto-create-one-time-link": true },
            });
            (endpoint(api_url, Some("inquiries"))?, body)
        }
        Vendor::StandardWebhooks => {
            let fields: Map<String, Value> = expected
                .fields()
                .iter()
                .map(|(f, v)| (f.as_str().to_owned(), Value::String(v.clone())))
                .collect();
            let body = json!({ "reference_id": reference, "expected": fields });
            (endpoint(api_url, None)?, body)
        }
    })
}

/// The created inquiry read from the vendor's answer.
fn answer_of(vendor: Vendor, bytes: &[u8]) -> Result<CreatedInquiry, InquiryError> {
    let created = match vendor {
        Vendor::Persona => {
            let answer: PersonaCreated =
                serde_json::from_slice(bytes).map_err(|_| InquiryError::UnexpectedAnswer)?;
            if answer.data.kind != "inquiry" {
                return Err(InquiryError::UnexpectedAnswer);
            }
            CreatedInquiry {
                inquiry_id: answer.data.id,
                link: answer.meta.one_time_link,
            }
        }
        Vendor::StandardWebhooks => {
            let answer: GenericCreated =
                serde_json::from_slice(bytes).map_err(|_| InquiryError::UnexpectedAnswer)?;
            CreatedInquiry {
                inquiry_id: answer.inquiry_id,
                link: answer.url,
            }
        }
    };
    Ok(created)
}

#[derive(Deserialize)]
struct PersonaCreated {
    data: PersonaInquiry,
    meta: PersonaMeta,
}

#[derive(Deserialize)]
struct PersonaInquiry {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

#[derive(Deserialize)]
struct PersonaMeta {
    #[serde(rename = "one-time-link")]
    one_time_link: String,
}

#[derive(Deserialize)]
struct GenericCreated {
    inquiry_id: String,
    url: String,
}

fn is_https(link: &str) -> bool {
    Url::parse(link).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
}

/// `api_url` (with `path` appended); https, or http to a loopback address.
fn endpoint(api_url: &str, path: Option<&str>) -> Result<Url, InquiryError> {
    let mut url = Url::parse(api_url).map_err(|_| InquiryError::BadApiUrl("not a URL"))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(InquiryError::BadApiUrl("use https")),
    }
    if let Some(path) = path {
        let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
    }
    Ok(url)
}

/// The configured vendor inquiries are created with: the first (by path segment) that can
/// create them. `None` means identity proofing cannot be offered.
pub fn creating_vendor(
    vendors: &std::collections::BTreeMap<String, IdvVendor>,
) -> Option<(Vendor, &IdvVendor)> {
    vendors.iter().find_map(|(segment, config)| {
        Vendor::from_path_segment(segment)
            .ok()
            .filter(|vendor| can_create(*vendor, config))
            .map(|vendor| (vendor, config))
    })
}
