//! Reading a verified webhook body: the generic Standard Webhooks payload and Persona's
//! `inquiry.*` events, into an [`IdvResult`]. Only bodies whose signature was checked reach here.

use serde::Deserialize;

use std::collections::BTreeMap;

use super::{
    IdentityField, IdentityReport, IdvChecks, IdvError, IdvResult, IdvStatus, STANDARD_RESULT_TYPE,
    Vendor, same_value,
};

/// Describes a JSON error by kind and position only: serde's messages can quote values from the
/// body, which holds personal data.
pub(super) fn body_error(error: &serde_json::Error) -> IdvError {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "not the expected shape",
        serde_json::error::Category::Eof => "truncated",
    };
    IdvError::MalformedBody(format!(
        "{kind} at line {} column {}",
        error.line(),
        error.column()
    ))
}

#[derive(Deserialize)]
struct StandardEnvelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct StandardResult {
    inquiry_id: String,
    #[serde(default)]
    reference_id: Option<String>,
    status: String,
    #[serde(default)]
    checks: StandardChecks,
    /// Per identity field, whether the document matched the expected value; unknown names are
    /// ignored.
    #[serde(default)]
    matches: BTreeMap<String, bool>,
}

#[derive(Default, Deserialize)]
struct StandardChecks {
    #[serde(default)]
    document: bool,
    #[serde(default)]
    selfie: bool,
    #[serde(default)]
    liveness: bool,
}

pub(super) fn parse_standard(body: &[u8]) -> Result<(String, Option<IdvResult>), IdvError> {
    let envelope: StandardEnvelope = serde_json::from_slice(body).map_err(|e| body_error(&e))?;
    if envelope.event_type != STANDARD_RESULT_TYPE {
        return Ok((envelope.event_type, None));
    }
    let data = StandardResult::deserialize(&envelope.data).map_err(|e| body_error(&e))?;
    let status = match data.status.as_str() {
        "approved" => IdvStatus::Approved,
        "declined" => IdvStatus::Declined,
        "needs_review" => IdvStatus::NeedsReview,
        "pending" => IdvStatus::Pending,
        _ => IdvStatus::Other(data.status),
    };
    let result = IdvResult {
        vendor: Vendor::StandardWebhooks,
        inquiry_id: data.inquiry_id,
        reference_id: data.reference_id,
        status,
        checks: IdvChecks {
            document: data.checks.document,
            selfie: data.checks.selfie,
            liveness: data.checks.liveness,
        },
        identity: IdentityReport {
            matches: data
                .matches
                .iter()
                .filter_map(|(name, matched)| IdentityField::from_name(name).map(|f| (f, *matched)))
                .collect(),
            ..IdentityReport::default()
        },
    };
    Ok((envelope.event_type, Some(result)))
}

// Persona events follow its "Webhooks Overview" doc (docs.withpersona.com/docs/webhooks): a
// JSON:API `event` whose `attributes.payload` is the affected inquiry (`data`) with its
// verifications in `included`.

#[derive(Deserialize)]
struct PersonaEvent {
    data: PersonaEventData,
}

#[derive(Deserialize)]
struct PersonaEventData {
    id: String,
    attributes: PersonaEventAttributes,
}

#[derive(Deserialize)]
struct PersonaEventAttributes {
    name: String,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct PersonaInquiryPayload {
    data: PersonaInquiry,
    /// Kept as raw values: besides verifications it can hold templates, accounts, reports...,
    /// whose shapes are not ours to insist on.
    #[serde(default)]
    included: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct PersonaInquiry {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    attributes: PersonaInquiryAttributes,
    #[serde(default)]
    relationships: PersonaInquiryRelationships,
}

#[derive(Deserialize)]
struct PersonaInquiryAttributes {
    status: String,
    #[serde(rename = "reference-id", default)]
    reference_id: Option<String>,
}

#[derive(Default, Deserialize)]
struct PersonaInquiryRelationships {
    #[serde(default)]
    verifications: PersonaLinks,
}

#[derive(Default, Deserialize)]
struct PersonaLinks {
    #[serde(default)]
    data: Vec<PersonaLink>,
}

#[derive(Deserialize)]
struct PersonaLink {
    id: String,
}

#[derive(Deserialize)]
struct PersonaVerification {
    #[serde(rename = "type")]
    kind: String,
    attributes: PersonaVerificationAttributes,
}

#[derive(Deserialize)]
struct PersonaVerificationAttributes {
    status: String,
    #[serde(default)]
    checks: Vec<PersonaCheck>,
    /// What a government-ID verification extracted from the document.
    #[serde(rename = "name-first", default)]
    name_first: Option<String>,
    #[serde(rename = "name-last", default)]
    name_last: Option<String>,
    #[serde(default)]
    birthdate: Option<String>,
}

#[derive(Deserialize)]
struct PersonaCheck {
    name: String,
    status: String,
}

const PERSONA_PASSED: &str = "passed";
/// Persona's government-ID check comparing the document with the inquiry's fields.
const PERSONA_INQUIRY_COMPARISON: &str = "id_inquiry_comparison";

pub(super) fn parse_persona(body: &[u8]) -> Result<(String, String, Option<IdvResult>), IdvError> {
    let event: PersonaEvent = serde_json::from_slice(body).map_err(|e| body_error(&e))?;
    let PersonaEventData { id, attributes } = event.data;
    if !attributes.name.starts_with("inquiry.") {
        return Ok((id, attributes.name, None));
    }
    let payload =
        PersonaInquiryPayload::deserialize(&attributes.payload).map_err(|e| body_error(&e))?;
    let inquiry = payload.data;
    if inquiry.kind != "inquiry" {
        return Err(IdvError::MalformedBody(
            "an inquiry event whose payload is not an inquiry".to_owned(),
        ));
    }
    let (checks, documents) = passed_verifications(&inquiry, &payload.included)?;
    let status = persona_status(inquiry.attributes.status);
    let result = IdvResult {
        vendor: Vendor::Persona,
        inquiry_id: inquiry.id,
        reference_id: inquiry.attributes.reference_id,
        status,
        checks,
        identity: agreed_identity(&documents),
    };
    Ok((id, attributes.name, Some(result)))
}

/// A passed government-ID document: whether Persona's comparison with the inquiry's fields
/// passed, and the fields it extracted.
type Document = (bool, BTreeMap<IdentityField, String>);

/// The checks and documents of the inquiry's own verifications that passed. Resources the
/// inquiry does not link are not read, whatever their shape, and failed attempts before the one
/// that passed do not count.
fn passed_verifications(
    inquiry: &PersonaInquiry,
    included: &[serde_json::Value],
) -> Result<(IdvChecks, Vec<Document>), IdvError> {
    let linked: Vec<&str> = inquiry
        .relationships
        .verifications
        .data
        .iter()
        .map(|link| link.id.as_str())
        .collect();
    let mut checks = IdvChecks::default();
    let mut documents = Vec::new();
    for resource in included {
        let field = |name: &str| resource.get(name).and_then(serde_json::Value::as_str);
        let is_linked_verification = field("type")
            .is_some_and(|kind| kind.starts_with("verification/"))
            && field("id").is_some_and(|id| linked.contains(&id));
        if !is_linked_verification {
            continue;
        }
        let verification =
            PersonaVerification::deserialize(resource).map_err(|e| body_error(&e))?;
        if verification.attributes.status != PERSONA_PASSED {
            continue;
        }
        let attributes = &verification.attributes;
        let passed = |name: &str| {
            attributes
                .checks
                .iter()
                .any(|check| check.name == name && check.status == PERSONA_PASSED)
        };
        match verification.kind.as_str() {
            "verification/government-id" => {
                checks.document = true;
                let extracted = [
                    (IdentityField::NameFirst, &attributes.name_first),
                    (IdentityField::NameLast, &attributes.name_last),
                    (IdentityField::Birthdate, &attributes.birthdate),
                ]
                .into_iter()
                .filter_map(|(field, value)| value.clone().map(|v| (field, v)))
                .collect();
                documents.push((passed(PERSONA_INQUIRY_COMPARISON), extracted));
            }
            "verification/selfie" => {
                checks.selfie = true;
                checks.liveness |= passed("selfie_liveness_detection");
            }
            _ => {}
        }
    }
    Ok((checks, documents))
}

fn persona_status(status: String) -> IdvStatus {
    match status.as_str() {
        "approved" => IdvStatus::Approved,
        "declined" => IdvStatus::Declined,
        "needs_review" => IdvStatus::NeedsReview,
        // "completed" means the subject finished the flow; Persona's approve/decline decision
        // (by workflow or reviewer) is still to come, and only a decision counts here.
        "created" | "pending" | "completed" => IdvStatus::Pending,
        _ => IdvStatus::Other(status),
    }
}

/// Every passed document must have passed the comparison and agree on each field: an inquiry
/// cannot count one person's document beside another's.
fn agreed_identity(documents: &[Document]) -> IdentityReport {
    let comparison_passed = !documents.is_empty() && documents.iter().all(|(passed, _)| *passed);
    let mut extracted = documents
        .first()
        .map(|(_, fields)| fields.clone())
        .unwrap_or_default();
    extracted.retain(|field, value| {
        documents.iter().all(|(_, other)| {
            other
                .get(field)
                .is_some_and(|v| same_value(*field, v, value))
        })
    });
    IdentityReport {
        extracted,
        comparison_passed,
        ..IdentityReport::default()
    }
}
