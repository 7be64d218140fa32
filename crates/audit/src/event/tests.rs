//! Every details shape written in `crates/server/src`, copied key for key from its emission site
//! with values of the types the site writes, parsed and written back; and what must not parse.
//! The fixture test (`tests/typed_events_fixture.rs`) checks the same against a real log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use super::*;
use crate::entry::{Actor, AuditEntry, canonical_bytes};

const T: &str = "2026-11-26T09:30:00.123Z";

fn requirements() -> Value {
    json!({
        "min_classes": 2, "required_any_of": [["device_of_record", "government_id", "recovery_code"]],
        "contact_freshness_days": 14, "grant_minutes": 10, "approvals": ["supervisor"],
        "cooling_off_minutes": 30, "tap_minutes": 60, "probation_hours": 72,
    })
}

/// One JSON per shape of every event, as the sites in `crates/server/src` build them.
fn site_shapes() -> Vec<(&'static str, Value)> {
    vec![
        // service/approvals.rs: approve, break_glass
        (
            "approval.recorded",
            json!({"role": "supervisor", "decision": "confirm", "reason": "called back", "case_digest": "ab12"}),
        ),
        // service/approvals.rs: refuse_approval, by the core (no pin) and by the bundle
        (
            "approval.refused",
            json!({"role": "supervisor", "reason": "already approved", "policy_ids": []}),
        ),
        (
            "approval.refused",
            json!({"role": "supervisor", "reason": "nobody approves a case they opened", "policy_ids": ["guardrail-approver-not-agent"]}),
        ),
        // service/attestation.rs
        (
            "attestation.code_sent",
            json!({"verification_id": "v-1", "destination": "+1 *** *** 0110", "expires_at": T}),
        ),
        (
            "attestation.signed_in",
            json!({"verification_id": "v-1", "method": "sms_code"}),
        ),
        (
            "attestation.sign_in_failed",
            json!({"verification_id": "v-1", "attempts_left": 4}),
        ),
        (
            "attestation.locked",
            json!({"verification_id": "v-1", "method": "sms_code"}),
        ),
        (
            "attestation.confirmed",
            json!({"verification_id": "v-1", "case_digest": "ab12"}),
        ),
        (
            "attestation.rejected",
            json!({"verification_id": "v-1", "case_digest": "ab12"}),
        ),
        (
            "attestation.unrecognised",
            json!({"verification_id": "v-1", "alerted": 2}),
        ),
        // service/credentials.rs
        (
            "authenticator.enrolled",
            json!({"subject_id": "u-a", "kind": "totp", "notified": "a***@example.org"}),
        ),
        (
            "recovery_codes.issued",
            json!({"subject_id": "u-a", "count": 10, "delivered_to": "a***@example.org"}),
        ),
        (
            "recovery_codes.issued",
            json!({"subject_id": "u-a", "count": 10, "shown_in": "passkey enrolment",
                   "depends_on": ["mailbox:a***@example.org#0badc0de"]}),
        ),
        // my_account.rs
        (
            "subject.signed_in",
            json!({"subject_id": "u-a", "method": "passkey", "passkey_id": "passkey-1"}),
        ),
        (
            "subject.sign_in_failed",
            json!({"method": "passkey", "reason": "assertion_refused", "subject_id": "u-a"}),
        ),
        (
            "subject.sign_in_failed",
            json!({"method": "passkey", "reason": "no_passkey", "subject_id": null}),
        ),
        (
            "subject.signed_in_with_provider",
            json!({"subject_id": "u-a", "issuer": "https://login.example.org", "provider_subject": "a-1"}),
        ),
        (
            "subject.sign_in_failed",
            json!({"method": "oidc", "reason": "unknown_identity", "subject_id": null}),
        ),
        ("subject.signed_out", json!({"subject_id": "u-a"})),
        (
            "subject.passkey_added",
            json!({"subject_id": "u-a", "passkey_id": "passkey-2", "label": "Laptop",
                   "shown_in": "added while signed in with passkey Phone",
                   "depends_on": ["device:passkey-1"]}),
        ),
        (
            "subject.passkey_renamed",
            json!({"subject_id": "u-a", "passkey_id": "passkey-2", "label": "Work laptop"}),
        ),
        (
            "subject.passkey_removed",
            json!({"subject_id": "u-a", "passkey_id": "passkey-2"}),
        ),
        (
            "subject.device_renamed",
            json!({"subject_id": "u-a", "device_id": "push-u-a", "label": "Old phone"}),
        ),
        (
            "subject.device_removed",
            json!({"subject_id": "u-a", "device_id": "push-u-a", "kind": "push"}),
        ),
        // service/approvals.rs: break_glass
        (
            "break_glass.opened",
            json!({"reason": "devices seized", "requirements": requirements(), "playbook_rows": ["break_glass"]}),
        ),
        // service.rs: approval_entries
        (
            "case.approved",
            json!({"counted_classes": ["device_of_record", "phone_of_record"]}),
        ),
        ("case.approved", json!({"counted_classes": []})),
        (
            "grant.minted",
            json!({"grant_id": "g-1", "agent_id": "st-sam", "subject_id": "u-a", "tier": "standard", "action": "mfa_reset", "expires_at": T}),
        ),
        // service/cases.rs
        ("case.cancelled", json!({"reason": "caller hung up"})),
        ("case.denied", json!({"reason": "caller could not answer"})),
        // service/approvals.rs and service/attestation.rs write the case's Option reason
        ("case.denied", json!({"reason": null})),
        (
            "case.opened",
            json!({
                "subject_id": "u-a", "tier": "standard", "action": "mfa_reset", "channel": "phone",
                "ticket": "INC-1", "risk": "elevated", "risk_reasons": ["new_hire"],
                "requirements": requirements(), "state": "open", "policy_ids": ["open-standard"],
                "playbook_rows": ["default", "mfa"],
            }),
        ),
        (
            "case.opened",
            json!({
                "subject_id": "u-a", "tier": "standard", "action": "password_reset", "channel": "ticket",
                "ticket": null, "risk": "low", "risk_reasons": [],
                "requirements": requirements(), "state": "escalated", "policy_ids": [],
                "playbook_rows": ["default"],
            }),
        ),
        (
            "case.refused",
            json!({"subject_id": "u-hank", "action": "password_reset", "tier": "standard", "reasons": ["subject is terminated"], "policy_ids": []}),
        ),
        (
            "case.resumed",
            json!({"previous_agent": "st-jordan", "reason": "the subject is on probation"}),
        ),
        (
            "case.resumed",
            json!({"previous_agent": "st-jordan", "reason": null}),
        ),
        // service/failures.rs
        (
            "case.escalated_after_failures",
            json!({"failures": 5, "limit": 5, "risk_before": "elevated", "risk_after": "high",
                   "exhausted_methods": ["sms_code"], "alerted": 1}),
        ),
        // service/execution.rs
        (
            "case.escalated",
            json!({"reasons": ["the security team flagged this subject"], "policy_ids": ["escalate-flagged-subject"]}),
        ),
        (
            "execution.refused",
            json!({"reasons": ["the subject is on leave"], "policy_ids": ["guardrail-on-leave"]}),
        ),
        ("grant.expired", json!({"grant_id": "g-1"})),
        ("grant.expired", json!({"grant_id": null})),
        (
            "grant.consumed",
            json!({"grant_id": "g-1", "agent_id": "st-sam", "subject_id": "u-a", "tier": "standard", "action": "mfa_reset"}),
        ),
        (
            "delivery.failed",
            json!({"messages": [{"kind": "recovery_notice", "channel": "email"}]}),
        ),
        (
            "execution.abandoned",
            json!({"reason": "never came back", "grant_consumed_at": T}),
        ),
        // service/execution.rs (builtin) with each directory.rs result
        (
            "execution.performed",
            json!({
                "connector": "builtin", "action": "password_reset", "subject_id": "u-a", "tier": "standard",
                "result": {"credential": "password", "must_change": true, "delivered_to": "a***@example.org"},
                "notices": [{"channel": "email", "subject_id": "u-a"}, {"channel": "sms", "subject_id": "u-b"}],
            }),
        ),
        (
            "execution.performed",
            json!({
                "connector": "builtin", "action": "mfa_reset", "subject_id": "u-a", "tier": "standard",
                "result": {"removed_authenticators": ["passkey:pk-1", "push:push-1"],
                           "temporary_access_pass_expires_at": "2026-11-26T10:30:00.123456789+00:00",
                           "delivered_to": "a***@example.org"},
                "notices": [],
            }),
        ),
        (
            "execution.performed",
            json!({
                "connector": "builtin", "action": "account_unlock", "subject_id": "u-a", "tier": "standard",
                "result": {"was_locked": true, "status": "active"}, "notices": [],
            }),
        ),
        (
            "execution.performed",
            json!({
                "connector": "builtin", "action": "email_change", "subject_id": "u-a", "tier": "standard",
                "result": {"contact": "email", "old": "a***@example.org", "new": "a***@new.example"}, "notices": [],
            }),
        ),
        (
            "execution.performed",
            json!({
                "connector": "builtin", "action": "service_credential_rotate", "subject_id": "svc-x", "tier": "service",
                "result": {"credential": "service_secret", "delivered_to_owner": "u-o", "delivered_to": "o***@example.org"},
                "notices": [],
            }),
        ),
        // connector_execution.rs
        (
            "execution.started",
            json!({"connector": "ldap", "action": "password_reset", "subject_id": "u-a"}),
        ),
        (
            "execution.failed",
            json!({"connector": "ldap", "action": "account_unlock", "subject_id": "u-a", "error": "refused", "agent_id": "st-sam"}),
        ),
        (
            "execution.performed",
            json!({
                "connector": "ldap", "backend_id": "uid=a,dc=example", "action": "phone_change", "subject_id": "u-a",
                "tier": "standard", "agent_id": "st-sam",
                "result": {"contact": "phone", "old": null, "new": "+1 *** *** 0001"},
                "sessions": "not supported by this connector", "notices": [],
            }),
        ),
        (
            "execution.performed",
            json!({
                "connector": "ldap", "backend_id": "uid=svc,dc=example", "action": "service_credential_rotate",
                "subject_id": "svc-x", "tier": "service", "agent_id": "st-sam",
                "result": {"credential": "service_secret", "delivered_to_owner": "u-o", "delivered_to": null},
                "sessions": "revoked", "notices": [],
            }),
        ),
        // service/subjects.rs, demo.rs, directory_sync.rs
        (
            "directory.imported",
            json!({"count": 2, "subject_ids": ["u-1", "u-2"]}),
        ),
        (
            "directory.seeded",
            json!({"subjects": 27, "source": "demo"}),
        ),
        (
            "directory.seeded",
            json!({"source": "demo", "authenticators_bound_at": "700 days ago"}),
        ),
        (
            "directory.synced",
            json!({
                "subject_id": "u-new", "connector": "ldap", "backend_id": "uid=new", "created": true,
                "changes": {"groups": {"from": [], "to": ["sales"]},
                            "manager": {"from": null, "to": "u-bob"},
                            "contacts": [{"kind": "email", "change": "new", "value": "n***@example.org"}]},
            }),
        ),
        (
            "directory.synced",
            json!({
                "subject_id": "u-a", "connector": "ldap", "backend_id": "uid=a", "created": false,
                "changes": {"display_name": {"from": "A", "to": "B"}, "tier": {"from": "standard", "to": "sensitive"},
                            "status": {"from": "active", "to": "locked"}},
            }),
        ),
        (
            "directory.synced",
            json!({
                "subject_id": "u-a", "connector": "ldap", "backend_id": "uid=a", "created": false,
                "changes": {"contacts": [{"kind": "phone", "change": "new", "value": "+1 *** *** 9999"},
                                         {"kind": "phone", "change": "removed", "value": "+1 *** *** 0001"}]},
                "evidence_withdrawn_for": ["phone"], "case_state": {"from": "approved", "to": "verifying"},
            }),
        ),
        (
            "directory.synced",
            json!({"subject_id": "u-a", "connector": "ldap", "backend_id": "uid=a", "created": true, "changes": {}}),
        ),
        // service/id_proofing.rs
        (
            "idv.pending",
            json!({
                "verification_id": "v-1", "inquiry_id": "inq_1", "status": "pending",
                "checks": {"document": false, "selfie": false, "liveness": false},
                "identity_matched": true, "unmatched_fields": [],
            }),
        ),
        (
            "security.idv_identity_mismatch",
            json!({"verification_id": "v-1", "subject_id": "u-a", "unmatched_fields": ["name_first"], "alerted": 1}),
        ),
        // service/policy_admin.rs
        (
            "policy.reload_refused",
            json!({"current_digest": "d1", "problems": "guardrails.cedar:60: unexpected end"}),
        ),
        (
            "policy.reloaded",
            json!({"old_digest": "d1", "new_digest": "d2", "policies": 31}),
        ),
        // service/links.rs
        (
            "security.not_me_reported",
            json!({
                "subject_id": "u-a", "locked": true, "flagged": true,
                "spent": {"links": "all unused", "credentials": ["temporary_access_pass", "passkey_enrol", "service_secret_pickup"]},
            }),
        ),
        (
            "service_secret.retrieved",
            json!({"subject_id": "svc-x", "by": "u-o"}),
        ),
        (
            "temporary_access_pass.redeemed",
            json!({"subject_id": "u-a", "enrolled": "totp"}),
        ),
        // passkeys.rs: finish_pass_passkey
        (
            "temporary_access_pass.redeemed",
            json!({"subject_id": "u-a", "enrolled": "passkey", "authenticator_id": "pk-1"}),
        ),
        // sso.rs
        ("staff.disabled", json!({"staff_id": "st-a"})),
        ("staff.enabled", json!({"staff_id": "st-a"})),
        (
            "staff.sign_in",
            json!({"method": "oidc", "staff_id": "st-a", "issuer": "https://idp", "provider_subject": "00u1"}),
        ),
        (
            "staff.sign_in_failed",
            json!({"method": "oidc", "reason": "unknown_identity", "identity": "x@idp", "staff_id": null}),
        ),
        (
            "staff.sign_in_failed",
            json!({"method": "oidc", "reason": "state_mismatch", "identity": null, "staff_id": null}),
        ),
        (
            "staff.sso_identity_set",
            json!({"staff_id": "st-a", "identity": "a@idp"}),
        ),
        (
            "staff.sso_identity_set",
            json!({"staff_id": "st-a", "identity": null}),
        ),
        // staff_passkeys.rs
        (
            "staff.passkey_registered",
            json!({"staff_id": "st-a", "passkey_id": "staff-passkey-1", "label": "Work laptop"}),
        ),
        (
            "staff.signed_in",
            json!({"staff_id": "st-a", "method": "passkey", "passkey_id": "staff-passkey-1"}),
        ),
        (
            "staff.sign_in_failed",
            json!({"method": "passkey", "reason": "unknown_staff", "staff_id": null}),
        ),
        (
            "staff.sign_in_failed",
            json!({"method": "passkey", "reason": "assertion_refused", "staff_id": "st-a"}),
        ),
        // sign_in_guard.rs
        (
            "staff.sign_in_failures",
            json!({
                "address": "203.0.113.7", "count": 3, "reasons": {"unknown_token": 2, "state_mismatch": 1},
                "methods": {"token": 2, "oidc": 1}, "from": T, "to": "2026-11-26T09:35:00Z",
            }),
        ),
        // service/staff_tokens.rs
        (
            "staff.token_created",
            json!({"staff_id": "st-a", "label": "demo", "token_id": "0123456789ab", "expires_at": T}),
        ),
        (
            "staff.token_revoked",
            json!({"staff_id": "st-a", "token_id": "0123456789ab"}),
        ),
        (
            "staff.tokens_revoked",
            json!({"staff_id": "st-a", "revoked": 3}),
        ),
        // service/verification.rs: start_verification (codes and links; recovery code, TOTP)
        (
            "verification.started",
            json!({"verification_id": "v-1", "method": "sms_code", "class": "phone_of_record", "destination": "+1 *** *** 0142", "respondent": "u-a", "expires_at": T}),
        ),
        (
            "verification.started",
            json!({"verification_id": "v-1", "method": "recovery_code", "class": "recovery_code"}),
        ),
        // service/callback.rs, service/push.rs, service/id_proofing.rs, passkeys.rs
        (
            "verification.started",
            json!({"verification_id": "v-1", "method": "callback", "class": "phone_of_record", "destination": "+1 *** *** 0142", "call_sid": "CA1"}),
        ),
        (
            "verification.started",
            json!({"verification_id": "v-1", "method": "push", "class": "device_of_record", "device": "push-u-a"}),
        ),
        (
            "verification.started",
            json!({"verification_id": "v-1", "method": "id_proofing", "class": "government_id", "destination": "a***@example.org", "vendor": "standard-webhooks", "inquiry_id": "inq_1", "match_fields": ["name_first", "name_last"]}),
        ),
        (
            "verification.started",
            json!({"verification_id": "v-1", "method": "passkey", "class": "device_of_record", "destination": "a***@example.org", "respondent": "u-a", "expires_at": T}),
        ),
        // service/verification.rs: answer_code
        (
            "verification.expired",
            json!({"verification_id": "v-1", "method": "sms_code"}),
        ),
        (
            "verification.passed",
            json!({"verification_id": "v-1", "method": "sms_code", "class": "phone_of_record"}),
        ),
        (
            "verification.failed",
            json!({"verification_id": "v-1", "method": "sms_code", "attempts_left": 4}),
        ),
        (
            "verification.locked",
            json!({"verification_id": "v-1", "method": "sms_code", "class": "phone_of_record"}),
        ),
        // service/callback.rs
        (
            "verification.passed",
            json!({"verification_id": "v-1", "method": "callback", "call_sid": "CA1", "outcome": "the code was keyed in on the phone of record"}),
        ),
        (
            "verification.failed",
            json!({"verification_id": "v-1", "method": "callback", "call_sid": "", "outcome": "wrong or no digits keyed in"}),
        ),
        // service/push.rs
        (
            "verification.passed",
            json!({"verification_id": "v-1", "method": "push", "outcome": "approved with the matching number"}),
        ),
        (
            "verification.failed",
            json!({"verification_id": "v-1", "method": "push", "outcome": "denied on the device"}),
        ),
        // service/id_proofing.rs
        (
            "verification.passed",
            json!({
                "verification_id": "v-1", "inquiry_id": "inq_1", "status": "approved",
                "checks": {"document": true, "selfie": true, "liveness": true},
                "identity_matched": true, "unmatched_fields": [],
            }),
        ),
        (
            "verification.failed",
            json!({
                "verification_id": "v-1", "inquiry_id": "inq_1", "status": "other(\"expired\")",
                "checks": {"document": true, "selfie": true, "liveness": false},
                "identity_matched": false, "unmatched_fields": ["identity_of_record"],
            }),
        ),
        // passkeys.rs: passkey_link_answer (passed; valid but not settled; refused)
        (
            "verification.passed",
            json!({"verification_id": "v-1", "method": "passkey", "class": "device_of_record", "authenticator_id": "pk-1"}),
        ),
        (
            "verification.failed",
            json!({"verification_id": "v-1", "method": "passkey", "class": "device_of_record", "authenticator_id": "pk-2"}),
        ),
        (
            "verification.failed",
            json!({"verification_id": "v-1", "method": "passkey", "reason": "the assertion did not verify"}),
        ),
    ]
}

fn entry(event: &str, details: Value) -> AuditEntry {
    AuditEntry {
        index: 3,
        time: T.to_owned(),
        actor: Actor {
            id: "st-sam".to_owned(),
            role: "agent".to_owned(),
            auth: "bearer_token".to_owned(),
        },
        case_id: Some("c-1".to_owned()),
        event: event.to_owned(),
        details,
        policy_digest: None,
        evidence_digests: vec![],
    }
}

#[test]
fn every_site_shape_parses_and_writes_back_the_same_bytes() {
    for (name, details) in site_shapes() {
        let event = AuditEvent::parse(name, &details).unwrap_or_else(|e| {
            panic!(
                "{name} {details}: {e} ({:?})",
                std::error::Error::source(&e)
            )
        });
        assert_eq!(event.name(), name);
        assert_eq!(event.details(), details, "{name}");
        let original = entry(name, details);
        let (rebuilt_name, rebuilt_details) = event.into_parts();
        let rebuilt = entry(rebuilt_name, rebuilt_details);
        assert_eq!(
            canonical_bytes(&rebuilt),
            canonical_bytes(&original),
            "{name}"
        );
    }
}

#[test]
fn every_event_name_has_a_site_shape_and_names_are_unique() {
    let shapes = site_shapes();
    let mut names = AuditEvent::NAMES.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), AuditEvent::NAMES.len(), "duplicate names");
    for name in AuditEvent::NAMES {
        assert!(
            shapes.iter().any(|(n, _)| n == name),
            "{name} has no shape above"
        );
    }
}

#[test]
fn each_shape_lands_in_its_own_variant() {
    let parse = |name: &str, details: Value| AuditEvent::parse(name, &details).unwrap();
    assert!(matches!(
        parse(
            "verification.failed",
            json!({"verification_id": "v", "method": "passkey", "class": "device_of_record", "authenticator_id": "pk"})
        ),
        AuditEvent::VerificationFailed(VerificationFailed::PasskeyNotSettled(_))
    ));
    assert!(matches!(
        parse(
            "verification.passed",
            json!({"verification_id": "v", "method": "push", "outcome": "ok"})
        ),
        AuditEvent::VerificationPassed(VerificationPassed::Push(_))
    ));
    assert!(matches!(
        parse(
            "verification.passed",
            json!({"verification_id": "v", "method": "callback", "call_sid": "CA", "outcome": "ok"})
        ),
        AuditEvent::VerificationPassed(VerificationPassed::Callback(_))
    ));
    assert!(matches!(
        parse(
            "staff.sign_in_failed",
            json!({"method": "passkey", "reason": "r", "staff_id": null})
        ),
        AuditEvent::StaffSignInFailed(StaffSignInFailed::Passkey(_))
    ));
    assert!(matches!(
        parse(
            "staff.sign_in_failed",
            json!({"method": "oidc", "reason": "r", "identity": null, "staff_id": null})
        ),
        AuditEvent::StaffSignInFailed(StaffSignInFailed::Oidc(_))
    ));
    let performed = parse(
        "execution.performed",
        json!({
            "connector": "builtin", "action": "account_unlock", "subject_id": "u-a", "tier": "standard",
            "result": {"was_locked": false, "status": "active"}, "notices": [],
        }),
    );
    let AuditEvent::ExecutionPerformed(performed) = performed else {
        panic!("{performed:?}")
    };
    assert!(matches!(performed, ExecutionPerformed::Builtin(_)));
    assert_eq!(
        (performed.action(), performed.subject_id(), performed.tier()),
        ("account_unlock", "u-a", "standard")
    );
    assert_eq!(
        performed.result(),
        &ExecutionResult::Unlock(UnlockResult {
            was_locked: false,
            status: "active".to_owned()
        })
    );
}

#[test]
fn typed_events_write_the_sites_json() {
    // What phase 2's call sites will build, against the JSON the site writes today.
    let (name, details) = AuditEvent::GrantExpired(GrantExpired { grant_id: None }).into_parts();
    assert_eq!(
        (name, details),
        ("grant.expired", json!({"grant_id": null}))
    );
    let started = AuditEvent::VerificationStarted(VerificationStarted::Push(PushStarted {
        verification_id: "v-1".to_owned(),
        method: "push".to_owned(),
        class: "device_of_record".to_owned(),
        device: "push-u-bob".to_owned(),
    }));
    assert_eq!(
        started.details(),
        json!({"verification_id": "v-1", "method": "push", "class": "device_of_record", "device": "push-u-bob"})
    );
    let synced = AuditEvent::DirectorySynced(DirectorySynced {
        subject_id: "u-a".to_owned(),
        connector: "ldap".to_owned(),
        backend_id: "uid=a".to_owned(),
        created: false,
        changes: SubjectChanges {
            manager: Some(ManagerChange {
                from: None,
                to: "u-b".to_owned(),
            }),
            ..SubjectChanges::default()
        },
        evidence_withdrawn_for: None,
        case_state: None,
    });
    assert_eq!(
        synced.details(),
        json!({"subject_id": "u-a", "connector": "ldap", "backend_id": "uid=a", "created": false,
               "changes": {"manager": {"from": null, "to": "u-b"}}})
    );
}

#[test]
fn unknown_names_are_refused() {
    assert!(matches!(
        AuditEvent::parse("case.teleported", &json!({})),
        Err(EventError::UnknownEvent { name }) if name == "case.teleported"
    ));
    assert!(matches!(
        AuditEvent::parse("", &json!({})),
        Err(EventError::UnknownEvent { .. })
    ));
}

#[test]
fn a_key_written_as_null_must_be_present() {
    // `ticket` is an Option the site always writes: details without it were not written by it.
    let mut details = site_shapes()
        .into_iter()
        .find(|(n, _)| *n == "case.opened")
        .unwrap()
        .1;
    details.as_object_mut().unwrap().remove("ticket");
    assert!(matches!(
        AuditEvent::parse("case.opened", &details),
        Err(EventError::Details {
            name: "case.opened",
            ..
        })
    ));
    assert!(matches!(
        AuditEvent::parse("grant.expired", &json!({})),
        Err(EventError::Details { .. })
    ));
    // A passkey refusal without `staff_id` matches neither shape of `staff.sign_in_failed`.
    assert!(matches!(
        AuditEvent::parse(
            "staff.sign_in_failed",
            &json!({"method": "passkey", "reason": "r"})
        ),
        Err(EventError::Details { .. })
    ));
}

#[test]
fn a_key_a_site_omits_must_not_be_null() {
    // directory.synced omits `case_state` unless evidence was withdrawn; `null` would be
    // dropped on the way back, so it is refused rather than silently rewritten.
    let details = json!({
        "subject_id": "u-a", "connector": "ldap", "backend_id": "uid=a", "created": false,
        "changes": {"tier": null}, "evidence_withdrawn_for": null,
    });
    assert!(matches!(
        AuditEvent::parse("directory.synced", &details),
        Err(EventError::NotFaithful {
            name: "directory.synced"
        })
    ));
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    for (name, details) in [
        ("case.cancelled", json!({"reason": "x", "extra": 1})),
        ("case.cancelled", json!({})),
        ("case.cancelled", json!({"reason": 5})),
        (
            "attestation.sign_in_failed",
            json!({"verification_id": "v", "attempts_left": "4"}),
        ),
        (
            "attestation.sign_in_failed",
            json!({"verification_id": "v", "attempts_left": -1}),
        ),
        (
            "attestation.sign_in_failed",
            json!({"verification_id": "v", "attempts_left": 1.5}),
        ),
        (
            "staff.tokens_revoked",
            json!({"staff_id": "st", "revoked": true}),
        ),
        ("case.approved", json!([])),
        ("case.approved", Value::Null),
        (
            "grant.minted",
            json!({"grant_id": "g", "agent_id": "a", "subject_id": "s", "tier": "t", "action": "x", "expires_at": "yesterday"}),
        ),
        // A passed code's shape is no failure: a failed code carries attempts_left, not class.
        (
            "verification.failed",
            json!({"verification_id": "v", "method": "sms_code", "class": "phone_of_record"}),
        ),
        // Identity proofing writes no method.
        (
            "verification.passed",
            json!({
                "verification_id": "v", "method": "id_proofing", "inquiry_id": "i", "status": "approved",
                "checks": {"document": true, "selfie": true, "liveness": true},
                "identity_matched": true, "unmatched_fields": [],
            }),
        ),
        (
            "execution.performed",
            json!({
                "connector": "builtin", "action": "account_unlock", "subject_id": "u", "tier": "standard",
                "result": {"was_locked": false}, "notices": [],
            }),
        ),
    ] {
        assert!(
            matches!(
                AuditEvent::parse(name, &details),
                Err(EventError::Details { .. })
            ),
            "{name} {details} parsed"
        );
    }
}

#[test]
fn timestamps_keep_the_text_chrono_wrote() {
    for time in [
        "2026-11-26T09:30:00Z",
        "2026-11-26T09:30:00.500Z",
        "2026-11-26T09:30:00.123456Z",
        "2026-11-26T09:30:00.123456789Z",
    ] {
        let details = json!({"reason": "r", "grant_consumed_at": time});
        let event = AuditEvent::parse("execution.abandoned", &details).unwrap();
        assert_eq!(event.details(), details, "{time}");
    }
    // Valid RFC 3339 that chrono's serde would not have written: refused, not rewritten.
    for time in [
        "2026-11-26T09:30:00.5Z",
        "2026-11-26T09:30:00+00:00",
        "2026-11-26T10:30:00+01:00",
    ] {
        let details = json!({"reason": "r", "grant_consumed_at": time});
        assert!(
            matches!(
                AuditEvent::parse("execution.abandoned", &details),
                Err(EventError::NotFaithful { .. })
            ),
            "{time}"
        );
    }
}

#[test]
fn of_entry_reads_the_entrys_name_and_details() {
    let e = entry("staff.enabled", json!({"staff_id": "st-a"}));
    assert_eq!(
        AuditEvent::of_entry(&e).unwrap(),
        AuditEvent::StaffEnabled(StaffRef {
            staff_id: "st-a".to_owned()
        })
    );
}
