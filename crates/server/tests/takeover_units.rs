//! Independence computed from takeover units, over HTTP on both databases: evidence an attacker
//! gets from one takeover counts once, whatever the methods' labels say (issue 13).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use deskgate_store::Change;
use reqwest::StatusCode;
use serde_json::Value;

const AGENT: &str = "sam.rivera";

fn verification<'a>(case: &'a Value, vid: &str) -> &'a Value {
    case["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == vid)
        .unwrap()
}

/// Alice's recovery codes were mailed to her (what Deskgate did before codes were shown once):
/// whoever reads her mail holds both an email code and a recovery code. Labelled
/// `email_of_record` and `recovery_code`, they were two classes; they share one takeover unit, so
/// they are one.
async fn a_mailbox_takeover_counts_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let saved = s.recovery_codes("alice.jensen@example.org");
    // Codes issued before provenance was kept count as mailed.
    forget_recovery_provenance(&s, "u-alice").await;
    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();

    let (email, code) = s.send_code(AGENT, id, "email_code").await;
    let (status, _) = s.answer(AGENT, id, &email, &code).await;
    assert_eq!(status, StatusCode::OK);
    let (codes, _) = s.start_method(AGENT, id, "recovery_code").await;
    let (status, body) = s.answer(AGENT, id, &codes, &saved[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(body["state"], "verifying", "{body}");
    assert_eq!(
        body["progress"]["counted_classes"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{}",
        body["progress"]
    );
    let mailbox = verification(&body, &email)["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|u| u.as_str().filter(|u| u.starts_with("mailbox:")))
        .expect("an email code depends on the mailbox")
        .to_owned();
    assert!(
        !mailbox.contains("alice.jensen"),
        "units never show a contact in full"
    );
    let codes_view = verification(&body, &codes);
    assert!(
        codes_view["depends_on"]
            .as_array()
            .unwrap()
            .contains(&Value::from(mailbox.as_str())),
        "mailed recovery codes depend on that mailbox: {codes_view}"
    );
    // One of the two is left out, and says which unit it shares.
    let left_out: Vec<&Value> = [&email, &codes]
        .iter()
        .map(|vid| verification(&body, vid))
        .filter(|v| v["counts"] == false)
        .collect();
    assert_eq!(left_out.len(), 1, "{body}");
    let why = left_out[0]["not_counted_because"].as_str().unwrap();
    assert!(why.contains(&mailbox), "{why}");

    // A phone is a takeover of its own: it adds a class.
    let (sms, code) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &sms, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["progress"]["counted_classes"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{}",
        body["progress"]
    );
    assert!(
        verification(&body, &sms)["depends_on"][0]
            .as_str()
            .unwrap()
            .starts_with("phone:")
    );
}

/// Removes the record of where a subject's recovery codes were shown, as for codes issued before
/// Deskgate kept it.
async fn forget_recovery_provenance(s: &TestServer, subject: &str) {
    let store = s.service.store();
    let record = store
        .credential(subject, "recovery_codes_provenance")
        .await
        .unwrap()
        .expect("the demo's codes have a provenance");
    // An unreadable record is as good as none: the codes count as mailed.
    store
        .commit(Change {
            credentials: vec![deskgate_store::Credential {
                hash: "not a provenance".to_owned(),
                ..record
            }],
            ..Change::default()
        })
        .await
        .unwrap();
}

/// The first attack path: with the subject's phone (SIM swap) and mailbox, a standard
/// MFA reset executed, because the mailbox held the recovery codes. Codes and app seeds are now
/// never sent: the mailbox yields an email code, the phone an SMS code, and neither is the
/// strong class an MFA reset needs.
async fn a_sim_swap_and_a_mailbox_do_not_reset_mfa(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mailbox: Vec<Value> = s
        .outbox()
        .into_iter()
        .filter(|m| m["to"] == "alice.jensen@example.org")
        .collect();
    assert!(
        mailbox
            .iter()
            .all(|m| m["kind"] != "recovery_codes" && m["kind"] != "totp_enrolment"),
        "{mailbox:?}"
    );
    let saved = s.recovery_codes("alice.jensen@example.org");
    let mail = serde_json::to_string(&mailbox).unwrap();
    assert!(saved.iter().all(|c| !mail.contains(c.as_str())));

    let case = s.open_case(AGENT, "u-alice", "mfa_reset").await;
    let id = case["id"].as_str().unwrap();
    let (email, code) = s.send_code(AGENT, id, "email_code").await;
    let (status, _) = s.answer(AGENT, id, &email, &code).await;
    assert_eq!(status, StatusCode::OK);
    let (sms, code) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &sms, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "verifying", "{body}");
    assert_eq!(body["progress"]["met"], false);
    assert!(
        !body["progress"]["missing_any_of"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a device, a document or a saved recovery code is still missing: {}",
        body["progress"]
    );
    let (status, body) = s.execute(AGENT, id).await;
    assert_ne!(status, StatusCode::OK, "{body}");

    // What Alice keeps offline is another matter: her saved code is held, not mailed.
    let (rid, _) = s.start_method(AGENT, id, "recovery_code").await;
    let (status, body) = s.answer(AGENT, id, &rid, &saved[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        verification(&body, &rid)["depends_on"],
        serde_json::json!(["held:u-alice"])
    );
    assert_eq!(body["state"], "approved", "{body}");
}

/// Opens a phone change for `subject` to `new_phone` and passes an email code on it: the case id
/// and the email verification's id.
async fn phone_change_after_an_email_code(
    s: &TestServer,
    subject: &str,
    new_phone: &str,
) -> (String, String) {
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            serde_json::json!({
                "subject": subject, "action": "phone_change", "channel": "phone",
                "new_contact": new_phone,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap().to_owned();
    let (email, code) = s.send_code(AGENT, &id, "email_code").await;
    let (status, _) = s.answer(AGENT, &id, &email, &code).await;
    assert_eq!(status, StatusCode::OK);
    (id, email)
}

/// The second path: the subject's mailbox and a colluding manager completed a phone
/// change (the mailbox held the recovery codes). Now the mailbox yields an email code, the
/// manager their attestation, and a phone change still needs a strong class neither can give.
async fn a_mailbox_and_a_colluding_manager_do_not_change_the_phone(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, _) = phone_change_after_an_email_code(&s, "u-alice", "+1 555 010 0999").await;
    let id = id.as_str();
    // Bob, the manager, works for the attacker: he signs in and confirms.
    let link = s.request_attestation(AGENT, id).await;
    let session = s.attestation_sign_in(&link).await.unwrap();
    let (status, body) = s
        .attest_with_session(&link, None, Some(&session), "confirm")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "verifying", "{body}");
    assert_eq!(body["progress"]["met"], false);
    let (status, body) = s.execute(AGENT, id).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    let alice = s.service.store().subject("u-alice").await.unwrap().unwrap();
    assert!(
        alice.contacts.iter().all(|c| c.value != "+1 555 010 0999"),
        "the phone of record is unchanged"
    );
}

/// A contact a case put on record depends on what that case's evidence depended on: a phone
/// changed with Dave's mailbox and his app is, for later cases, not independent of that mailbox
/// (whoever made the change could hold the new phone), even once it is no longer fresh.
async fn a_contact_a_case_put_on_record_depends_on_that_cases_evidence(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, email) = phone_change_after_an_email_code(&s, "u-dave", "+1 555 010 0777").await;
    let id = id.as_str();
    let (app, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-dave").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &app, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    let mailbox = verification(&body, &email)["depends_on"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Deskgate puts a changed contact on record unverified; a connected directory that vouches
    // for it later (as after a sync) makes it a contact of record that carries codes.
    let mut dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    for c in &mut dave.contacts {
        if c.value == "+1 555 010 0777" {
            c.verified_at = Some(s.service.now());
        }
    }
    s.service
        .store()
        .commit(Change {
            subjects: vec![dave],
            ..Change::default()
        })
        .await
        .unwrap();
    // Past the freshness window and the probation, the new phone carries codes again...
    s.clock.advance(chrono::Duration::days(15));
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (email, code) = s.send_code(AGENT, id, "email_code").await;
    let (status, _) = s.answer(AGENT, id, &email, &code).await;
    assert_eq!(status, StatusCode::OK);
    let (sms, code) = s.send_code(AGENT, id, "sms_code").await;
    assert_eq!(s.last_message("verification_code")["to"], "+1 555 010 0777");
    let (status, body) = s.answer(AGENT, id, &sms, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // ...but a code to it depends on the mailbox that put it there: one class, not two.
    let units = verification(&body, &sms)["depends_on"].to_string();
    assert!(units.contains(&mailbox), "{units}");
    assert_eq!(body["state"], "verifying", "{body}");
    assert_eq!(
        body["progress"]["counted_classes"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{}",
        body["progress"]
    );
}

/// The push verification's units, started on a new password-reset case for Alice.
async fn push_units(s: &TestServer) -> Vec<String> {
    let case = s.open_case(AGENT, "u-alice", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (push, body) = s.start_method(AGENT, id, "push").await;
    verification(&body["case"], &push)["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

/// An identity provider lets a temporary access pass enrol any factor: a push device enrolled
/// after a pass went to a phone depends on that phone, so one SIM swap cannot show up as the
/// phone and as the device of record.
async fn a_push_device_enrolled_after_a_pass_depends_on_where_the_pass_went(backend: Backend) {
    let s = TestServer::start(backend).await;
    let now = s.service.now();
    s.service
        .store()
        .commit(Change {
            credentials: vec![deskgate_store::Credential {
                subject_id: "u-alice".to_owned(),
                kind: "temporary_access_pass_provenance".to_owned(),
                hash: serde_json::json!({
                    "shown_in": "enrolled with a temporary access pass sent to +1 *** *** 42",
                    "units": ["phone:+1 *** *** 42#00ff00ff"],
                })
                .to_string(),
                created_at: now,
                expires_at: None,
                used_at: None,
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    // Enrolled long before the pass: the device alone.
    assert_eq!(push_units(&s).await, vec!["device:push-u-alice".to_owned()]);

    // Enrolled after it (as with the pass): the device and the pass's phone.
    let mut alice = s.service.store().subject("u-alice").await.unwrap().unwrap();
    for a in &mut alice.authenticators {
        if a.id == "push-u-alice" {
            a.enrolled_at = now + chrono::Duration::minutes(3);
        }
    }
    s.service
        .store()
        .commit(Change {
            subjects: vec![alice],
            ..Change::default()
        })
        .await
        .unwrap();
    s.clock.advance(chrono::Duration::days(15));
    let units = push_units(&s).await;
    assert!(
        units.contains(&"device:push-u-alice".to_owned()),
        "{units:?}"
    );
    assert!(
        units.contains(&"phone:+1 *** *** 42#00ff00ff".to_owned()),
        "{units:?}"
    );
}

on_both_backends!(
    a_push_device_enrolled_after_a_pass_depends_on_where_the_pass_went,
    a_contact_a_case_put_on_record_depends_on_that_cases_evidence,
    a_mailbox_and_a_colluding_manager_do_not_change_the_phone,
    a_mailbox_takeover_counts_once,
    a_sim_swap_and_a_mailbox_do_not_reset_mfa,
);
