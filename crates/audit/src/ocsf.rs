//! Audit entries as OCSF 1.x events for SIEMs: executions become Account Change (class 3001),
//! grants become User Access Management (class 3005). Other entries have no OCSF counterpart here
//! and are left out of the export (the signed log remains the complete record), as are entries
//! whose details are not the shape of their event ([`AuditEvent::parse`] refuses them): Deskgate
//! never wrote those.

use chrono::DateTime;
use serde_json::{Value, json};

use crate::entry::AuditEntry;
use crate::event::{AuditEvent, ExecutionResult};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.8.0";

const CATEGORY_IAM: u32 = 3;
const ACCOUNT_CHANGE: u32 = 3001;
const USER_ACCESS_MANAGEMENT: u32 = 3005;

/// How an event maps to OCSF, and the facts of it the OCSF event carries.
struct Mapped<'a> {
    class_uid: u32,
    activity_id: u32,
    activity_name: &'static str,
    severity_id: u32,
    /// The account acted on (`user.uid`); empty when the event names none.
    subject_id: &'a str,
    /// The subject's tier, when the event names it (`service` makes `user.type_id` 4).
    tier: Option<&'a str>,
    /// The action granted or revoked (`privileges`), when the event names it.
    action: Option<&'a str>,
}

impl<'a> Mapped<'a> {
    fn new(
        class_uid: u32,
        (activity_id, activity_name, severity_id): (u32, &'static str, u32),
    ) -> Self {
        Self {
            class_uid,
            activity_id,
            activity_name,
            severity_id,
            subject_id: "",
            tier: None,
            action: None,
        }
    }

    fn about(mut self, subject_id: &'a str, tier: &'a str, action: &'a str) -> Self {
        self.subject_id = subject_id;
        self.tier = Some(tier);
        self.action = Some(action);
        self
    }
}

/// The OCSF class and activity of an event, if it maps. An execution's activity follows from
/// what it changed: a temporary password is a password reset (activity 4), removed factors are
/// the MFA reset and factor re-bind (11), an unlock is 12, anything else is Other (99).
fn classify(event: &AuditEvent) -> Option<Mapped<'_>> {
    Some(match event {
        AuditEvent::ExecutionPerformed(performed) => {
            let activity = match performed.result() {
                ExecutionResult::PasswordReset(_) => (4, "Password Reset", 3),
                ExecutionResult::FactorsRemoved(_) => (11, "MFA Factor Disable", 3),
                ExecutionResult::Unlock(_) => (12, "Unlock", 2),
                ExecutionResult::ContactChanged(_)
                | ExecutionResult::ServiceCredentialRotated(_) => (99, "Other", 3),
            };
            Mapped::new(ACCOUNT_CHANGE, activity).about(
                performed.subject_id(),
                performed.tier(),
                performed.action(),
            )
        }
        AuditEvent::GrantMinted(g) => Mapped::new(
            USER_ACCESS_MANAGEMENT,
            (1, "Assign Privileges", 2),
        )
        .about(&g.subject_id, &g.tier, &g.action),
        AuditEvent::GrantConsumed(g) => Mapped::new(
            USER_ACCESS_MANAGEMENT,
            (2, "Revoke Privileges", 1),
        )
        .about(&g.subject_id, &g.tier, &g.action),
        AuditEvent::GrantExpired(_) => {
            Mapped::new(USER_ACCESS_MANAGEMENT, (2, "Revoke Privileges", 1))
        }
        _ => return None,
    })
}

/// The OCSF event for `entry`, or `None` when the entry has no OCSF counterpart.
pub fn to_ocsf(entry: &AuditEntry, product_version: &str) -> Option<Value> {
    let event = AuditEvent::of_entry(entry).ok()?;
    let mapped = classify(&event)?;
    let Mapped {
        class_uid,
        activity_id,
        activity_name,
        severity_id,
        ..
    } = mapped;
    let time = DateTime::parse_from_rfc3339(&entry.time)
        .ok()?
        .timestamp_millis();
    let name = event.name();
    let mut ocsf = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": CATEGORY_IAM,
        "class_uid": class_uid,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity_id,
        "status_id": 1,
        "time": time,
        "message": format!("{name} ({activity_name})"),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": entry.index.to_string(),
            "correlation_uid": entry.case_id,
            "log_name": "deskgate-audit",
            "product": { "name": "Deskgate", "vendor_name": "Deskgate", "version": product_version },
        },
        "actor": { "user": { "uid": entry.actor.id, "type": entry.actor.role } },
        "unmapped": { "deskgate_event": name, "case_id": entry.case_id },
    });
    if let Some(obj) = ocsf.as_object_mut() {
        let service_account = mapped.tier == Some("service");
        let user =
            json!({ "uid": mapped.subject_id, "type_id": if service_account { 4 } else { 1 } });
        obj.insert("user".to_owned(), user);
        if class_uid == USER_ACCESS_MANAGEMENT {
            obj.insert(
                "privileges".to_owned(),
                json!([mapped.action.unwrap_or("recovery")]),
            );
        }
    }
    Some(ocsf)
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

    /// `execution.performed` as the built-in directory writes it for `action` with `result`.
    fn performed(action: &str, subject_id: &str, result: Value) -> Value {
        json!({
            "connector": "builtin", "action": action, "subject_id": subject_id, "tier": "standard",
            "result": result, "notices": [{"channel": "email", "subject_id": subject_id}],
        })
    }

    fn factors_removed() -> Value {
        json!({
            "removed_authenticators": ["passkey:pk-1"],
            "temporary_access_pass_expires_at": "2026-11-26T10:30:00.123456789+00:00",
            "delivered_to": "a***@example.org",
        })
    }

    fn grant(subject_id: &str, tier: &str, action: &str) -> Value {
        json!({
            "grant_id": "g-1", "agent_id": "st-sam", "subject_id": subject_id, "tier": tier,
            "action": action,
        })
    }

    #[test]
    fn password_reset_is_account_change_activity_4() {
        let e = to_ocsf(
            &entry(
                "execution.performed",
                performed(
                    "password_reset",
                    "u-a",
                    json!({"credential": "password", "must_change": true, "delivered_to": "a***@example.org"}),
                ),
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
            &entry(
                "execution.performed",
                performed("mfa_reset", "u-a", factors_removed()),
            ),
            "0",
        )
        .unwrap();
        assert_eq!(mfa["activity_id"], 11);
        let unlock = to_ocsf(
            &entry(
                "execution.performed",
                performed(
                    "account_unlock",
                    "u-a",
                    json!({"was_locked": true, "status": "active"}),
                ),
            ),
            "0",
        )
        .unwrap();
        assert_eq!(unlock["activity_id"], 12);
    }

    #[test]
    fn grants_are_user_access_management() {
        let mut minted = grant("svc-x", "service", "mfa_reset");
        minted["expires_at"] = json!("2026-11-26T09:40:00.123Z");
        let minted = to_ocsf(&entry("grant.minted", minted), "0").unwrap();
        required_fields_present(&minted);
        assert_eq!(minted["class_uid"], 3005);
        assert_eq!(minted["activity_id"], 1);
        assert_eq!(minted["user"]["type_id"], 4);
        let consumed = to_ocsf(
            &entry("grant.consumed", grant("u-a", "standard", "mfa_reset")),
            "0",
        )
        .unwrap();
        assert_eq!(consumed["activity_id"], 2);
    }

    #[test]
    fn other_events_are_not_exported() {
        let opened = json!({
            "subject_id": "u-a", "tier": "standard", "action": "mfa_reset", "channel": "phone",
            "ticket": null, "risk": "low", "risk_reasons": [],
            "requirements": {"min_classes": 2, "required_any_of": [], "contact_freshness_days": 14,
                "grant_minutes": 10, "approvals": [], "cooling_off_minutes": 0, "tap_minutes": 60,
                "probation_hours": 72},
            "state": "open", "policy_ids": [], "playbook_rows": ["default"],
        });
        assert!(AuditEvent::parse("case.opened", &opened).is_ok());
        assert!(to_ocsf(&entry("case.opened", opened), "0").is_none());
    }

    #[test]
    fn factor_rebind_is_factor_disable_and_a_contact_change_is_other() {
        let rebind = to_ocsf(
            &entry(
                "execution.performed",
                performed("factor_rebind", "u-a", factors_removed()),
            ),
            "0",
        )
        .unwrap();
        assert_eq!(
            (&rebind["activity_id"], &rebind["activity_name"]),
            (&json!(11), &json!("MFA Factor Disable"))
        );
        let change = to_ocsf(
            &entry(
                "execution.performed",
                performed(
                    "email_change",
                    "u-a",
                    json!({"contact": "email", "old": null, "new": "a***@new.example"}),
                ),
            ),
            "0",
        )
        .unwrap();
        assert_eq!(
            (&change["activity_id"], &change["severity_id"]),
            (&json!(99), &json!(3))
        );
        assert_eq!(change["message"], "execution.performed (Other)");
        assert!(change.get("privileges").is_none());
    }

    #[test]
    fn grants_name_their_privilege_and_an_expired_grant_names_none() {
        let consumed = to_ocsf(
            &entry("grant.consumed", grant("u-a", "standard", "email_change")),
            "0",
        )
        .unwrap();
        assert_eq!(consumed["privileges"], json!(["email_change"]));
        assert_eq!(consumed["user"], json!({"uid": "u-a", "type_id": 1}));
        let expired = to_ocsf(&entry("grant.expired", json!({"grant_id": "g-1"})), "0").unwrap();
        assert_eq!(expired["activity_id"], 2);
        assert_eq!(expired["privileges"], json!(["recovery"]));
        assert_eq!(expired["user"], json!({"uid": "", "type_id": 1}));
    }

    #[test]
    fn details_not_of_their_events_shape_are_not_exported() {
        // Deskgate never wrote these: the typed event refuses them, so nothing is guessed.
        for (event, details) in [
            (
                "execution.performed",
                json!({"action": "password_reset", "subject_id": "u-a"}),
            ),
            ("grant.consumed", json!({})),
            ("grant.expired", json!({"grant_id": "g-1", "extra": true})),
        ] {
            assert!(to_ocsf(&entry(event, details), "0").is_none(), "{event}");
        }
    }
}
