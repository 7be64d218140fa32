//! Audit entries as OCSF 1.x events for SIEMs: executions become Account Change (class 3001),
//! grants become User Access Management (class 3005). Other entries have no OCSF counterpart here
//! and are left out of the export (the signed log remains the complete record).

use chrono::DateTime;
use serde_json::{Value, json};

use crate::entry::AuditEntry;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.8.0";

const CATEGORY_IAM: u32 = 3;
const ACCOUNT_CHANGE: u32 = 3001;
const USER_ACCESS_MANAGEMENT: u32 = 3005;

/// (class, activity id, activity name, severity id) for an entry, if it maps.
fn classify(entry: &AuditEntry) -> Option<(u32, u32, &'static str, u32)> {
    match entry.event.as_str() {
        "execution.performed" => {
            let action = entry.details.get("action").and_then(Value::as_str)?;
            Some(match action {
                "password_reset" => (ACCOUNT_CHANGE, 4, "Password Reset", 3),
                "mfa_reset" | "factor_rebind" => (ACCOUNT_CHANGE, 11, "MFA Factor Disable", 3),
                "account_unlock" => (ACCOUNT_CHANGE, 12, "Unlock", 2),
                _ => (ACCOUNT_CHANGE, 99, "Other", 3),
            })
        }
        "grant.minted" => Some((USER_ACCESS_MANAGEMENT, 1, "Assign Privileges", 2)),
        "grant.consumed" | "grant.expired" => {
            Some((USER_ACCESS_MANAGEMENT, 2, "Revoke Privileges", 1))
        }
        _ => None,
    }
}

/// The OCSF event for `entry`, or `None` when the entry has no OCSF counterpart.
pub fn to_ocsf(entry: &AuditEntry, product_version: &str) -> Option<Value> {
    let (class_uid, activity_id, activity_name, severity_id) = classify(entry)?;
    let time = DateTime::parse_from_rfc3339(&entry.time)
        .ok()?
        .timestamp_millis();
    let subject = entry
        .details
        .get("subject_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let service_account = entry.details.get("tier").and_then(Value::as_str) == Some("service");
    let mut event = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": CATEGORY_IAM,
        "class_uid": class_uid,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity_id,
        "status_id": 1,
        "time": time,
        "message": format!("{} ({})", entry.event, activity_name),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": entry.index.to_string(),
            "correlation_uid": entry.case_id,
            "log_name": "deskgate-audit",
            "product": { "name": "Deskgate", "vendor_name": "Deskgate", "version": product_version },
        },
        "actor": { "user": { "uid": entry.actor.id, "type": entry.actor.role } },
        "unmapped": { "deskgate_event": entry.event, "case_id": entry.case_id },
    });
    if let Some(obj) = event.as_object_mut() {
        let user = json!({ "uid": subject, "type_id": if service_account { 4 } else { 1 } });
        obj.insert("user".to_owned(), user);
        if class_uid == USER_ACCESS_MANAGEMENT {
            obj.insert(
                "privileges".to_owned(),
                json!([entry
                    .details
                    .get("action")
                    .and_then(Value::as_str)
                    .unwrap_or("recovery")]),
            );
        }
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::entry::Actor;

    fn entry(event: &str, details: Value) -> AuditEntry {
        AuditEntry {
            index: 7,
            time: "2026-11-26T09:30:00.123Z".to_owned(),
            actor: Actor {
                id: "deskgate".into(),
                role: "system".into(),
                auth: "system".into(),
            },
            case_id: Some("c-1".into()),
            event: event.into(),
            details,
            policy_digest: None,
            evidence_digests: vec![],
        }
    }

    fn required_fields_present(e: &Value) {
        for f in [
            "activity_id",
            "category_uid",
            "class_uid",
            "severity_id",
            "time",
            "type_uid",
        ] {
            assert!(e.get(f).is_some(), "missing {f}");
        }
        assert!(e["metadata"]["product"]["name"].is_string());
        assert!(e["metadata"]["version"].is_string());
        assert_eq!(
            e["type_uid"].as_u64().unwrap(),
            e["class_uid"].as_u64().unwrap() * 100 + e["activity_id"].as_u64().unwrap()
        );
    }

    #[test]
    fn password_reset_is_account_change_activity_4() {
        let e = to_ocsf(
            &entry(
                "execution.performed",
                json!({"action": "password_reset", "subject_id": "u-a"}),
            ),
            "0.1.0",
        )
        .unwrap();
        required_fields_present(&e);
        assert_eq!(e["class_uid"], 3001);
        assert_eq!(e["activity_id"], 4);
        assert_eq!(e["type_uid"], 300_104);
        assert_eq!(e["time"], 1_795_685_400_123_i64);
        assert_eq!(e["user"]["uid"], "u-a");
    }

    #[test]
    fn mfa_reset_is_factor_disable_and_unlock_is_12() {
        let mfa = to_ocsf(
            &entry("execution.performed", json!({"action": "mfa_reset"})),
            "0",
        )
        .unwrap();
        assert_eq!(mfa["activity_id"], 11);
        let unlock = to_ocsf(
            &entry("execution.performed", json!({"action": "account_unlock"})),
            "0",
        )
        .unwrap();
        assert_eq!(unlock["activity_id"], 12);
    }

    #[test]
    fn grants_are_user_access_management() {
        let minted = to_ocsf(
            &entry(
                "grant.minted",
                json!({"action": "mfa_reset", "subject_id": "svc-x", "tier": "service"}),
            ),
            "0",
        )
        .unwrap();
        required_fields_present(&minted);
        assert_eq!(minted["class_uid"], 3005);
        assert_eq!(minted["activity_id"], 1);
        assert_eq!(minted["user"]["type_id"], 4);
        let consumed = to_ocsf(&entry("grant.consumed", json!({})), "0").unwrap();
        assert_eq!(consumed["activity_id"], 2);
    }

    #[test]
    fn other_events_are_not_exported() {
        assert!(to_ocsf(&entry("case.opened", json!({})), "0").is_none());
    }
}
