//! Column text and JSON documents into values and back: times are RFC 3339 text, documents are
//! JSON, and anything that does not parse is a corrupt store, never a panic.

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(corrupt)
}

pub(super) fn parse_opt_time(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_time).transpose()
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(docs: Vec<String>) -> Result<Vec<T>> {
    docs.iter()
        .map(|d| serde_json::from_str(d).map_err(corrupt))
        .collect()
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(corrupt)
}
