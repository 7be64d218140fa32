//! Deskgate executing with its own LDAP connector against a real OpenLDAP (slapd with ppolicy,
//! one private server per test from `deskgate-testkit`): full cases over HTTP whose effects are
//! checked in the directory itself (binds, attributes), with the directory as the system of
//! record for the subject's tier, status and contacts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::server as common;

use common::{Backend, TestServer};
use deskgate_app::connector_setup::ConnectorKind;
use deskgate_core::ContactKind;
use deskgate_testkit::{INVALID_CREDENTIALS, SERVICE_DN, SERVICE_PW, SUFFIX, Slapd, people};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "sam.rivera";

/// Some of the demo organisation, as the directory holds it: same ids (uid), names, email and
/// mobile of record as Deskgate's store, so the first sync changes nothing.
const SEED: &str = r#"dn: uid=u-dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: u-dave
cn: Dave Whitfield
sn: Whitfield
mail: dave.whitfield@example.org
mobile: +1 555 010 0112
userPassword: dave-old-pass

dn: uid=u-grace,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: u-grace
cn: Grace Liu
sn: Liu
mail: grace.liu@example.org
mobile: +1 555 010 0104
userPassword: grace-pass

dn: uid=svc-payroll,ou=services,dc=example,dc=org
objectClass: inetOrgPerson
uid: svc-payroll
cn: Payroll export service
sn: payroll
mail: svc-payroll@service.example.org
userPassword: payroll-old-secret

dn: cn=sales,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: sales
member: uid=u-dave,ou=people,dc=example,dc=org

dn: cn=it-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: it-admins
member: uid=u-grace,ou=people,dc=example,dc=org

dn: cn=service-accounts,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: service-accounts
member: uid=svc-payroll,ou=services,dc=example,dc=org
"#;

fn dave() -> String {
    people("u-dave")
}

/// A Deskgate server whose connector is the LDAP one, pointed at a fresh slapd.
async fn start(backend: Backend) -> (TestServer, Slapd) {
    let slapd = Slapd::start(SEED).await;
    let url = slapd.url().to_owned();
    let s = TestServer::start_with(backend, |c| {
        c.connector = ConnectorKind::Ldap;
        c.connectors.ldap = Some(json!({
            "url": url, "tls": "none", "mode": "openldap",
            "bind_dn": SERVICE_DN, "bind_password": SERVICE_PW,
            "base_dn": SUFFIX, "user_filter": "(objectClass=inetOrgPerson)",
            "subject_attribute": "uid", "group_base_dn": format!("ou=groups,{SUFFIX}"),
            "group_tiers": { "it-admins": "privileged", "service-accounts": "service" },
            "default_tier": "standard", "phone_attribute": "mobile", "timeout_secs": 5,
        }));
    })
    .await;
    (s, slapd)
}

/// Dave's password reset, approved on a code to his email and one to his phone of record: since
/// issue 13 a standard password reset needs two classes.
async fn approved_reset(s: &TestServer) -> String {
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap().to_owned();
    s.pass_password_reset(AGENT, &id).await;
    id
}

/// Opens a case for `subject` and passes one `email_code`: a standard unlock is then approved.
async fn approved_on_email(s: &TestServer, subject: &str, action: &str) -> String {
    let case = s.open_case(AGENT, subject, action).await;
    let id = case["id"].as_str().unwrap().to_owned();
    let (vid, code) = s.send_code(AGENT, &id, "email_code").await;
    let (status, body) = s.answer(AGENT, &id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    id
}

/// The audit entries appended so far, as JSON.
async fn entries(s: &TestServer) -> Vec<Value> {
    let size = s.service.store().audit_size().await.unwrap();
    s.service
        .store()
        .audit_entries(0, size)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry().unwrap())
        .collect()
}

fn kinds(s: &TestServer, kind: &str) -> Vec<Value> {
    s.outbox()
        .into_iter()
        .filter(|m| m["kind"] == kind)
        .collect()
}

async fn a_password_reset_sets_a_new_password_in_ldap_delivered_only_to_the_contact(
    backend: Backend,
) {
    let (s, slapd) = start(backend).await;
    assert_eq!(slapd.bind_rc(&dave(), "dave-old-pass").await, 0);
    let id = approved_reset(&s).await;

    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["state"], "executed");

    let delivered = s.last_message("temporary_password");
    assert_eq!(delivered["to"], "dave.whitfield@example.org");
    let password = delivered["password"].as_str().unwrap();
    assert!(
        !body.to_string().contains(password),
        "the agent never sees it"
    );
    assert_eq!(slapd.bind_rc(&dave(), password).await, 0);
    assert_eq!(
        slapd.bind_rc(&dave(), "dave-old-pass").await,
        INVALID_CREDENTIALS
    );
    let reset = slapd.read(&dave(), &["pwdReset"]).await;
    assert_eq!(reset.attrs.get("pwdReset"), Some(&vec!["TRUE".to_owned()]));
    // The directory holds the password; Deskgate's store holds no copy.
    assert!(
        s.service
            .store()
            .credential("u-dave", "password")
            .await
            .unwrap()
            .is_none()
    );
    let notices: Vec<String> = kinds(&s, "recovery_notice")
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        notices.contains(&"bob.kramer@example.org".to_owned()),
        "{notices:?}"
    );

    let all = entries(&s).await;
    let events: Vec<&str> = all.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let started = events
        .iter()
        .position(|e| *e == "execution.started")
        .unwrap();
    let performed = events
        .iter()
        .position(|e| *e == "execution.performed")
        .unwrap();
    assert!(started < performed, "{events:?}");
    let performed = &all[performed]["details"];
    assert_eq!(performed["connector"], "openldap");
    assert_eq!(performed["backend_id"], dave());
    assert_eq!(performed["sessions"], "not supported by this connector");
    assert!(
        s.service
            .store()
            .subject("u-dave")
            .await
            .unwrap()
            .unwrap()
            .probation_until
            .is_some()
    );
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn an_unlock_clears_the_ppolicy_lock_so_the_account_binds_again(backend: Backend) {
    let (s, slapd) = start(backend).await;
    slapd.lock_with_wrong_passwords(&dave()).await;
    assert_eq!(
        slapd.bind_rc(&dave(), "dave-old-pass").await,
        INVALID_CREDENTIALS,
        "ppolicy locked the account"
    );
    let id = approved_on_email(&s, "u-dave", "account_unlock").await;
    // Opening the case synced the lock from the directory.
    let stored = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert_eq!(stored.status, deskgate_core::SubjectStatus::Locked);

    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["was_locked"], true);

    assert_eq!(slapd.bind_rc(&dave(), "dave-old-pass").await, 0);
    let stored = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert_eq!(stored.status, deskgate_core::SubjectStatus::Active);
    s.finish().await;
}

/// Opens a contact change for Dave and gets it approved with his authenticator app and the
/// phone of record, then executes it.
async fn change_contact(s: &TestServer, action: &str, new_contact: &str) {
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            json!({"subject": "u-dave", "action": action, "channel": "phone",
                   "new_contact": new_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-dave").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &tid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (vid, sms) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &vid, &sms).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_phone_change_lands_in_the_directory(backend: Backend) {
    let (s, slapd) = start(backend).await;
    change_contact(&s, "phone_change", "+1 555 010 7777").await;
    let entry = slapd.read(&dave(), &["mobile", "mail"]).await;
    assert_eq!(
        entry.attrs.get("mobile"),
        Some(&vec!["+1 555 010 7777".to_owned()])
    );
    assert_eq!(
        entry.attrs.get("mail"),
        Some(&vec!["dave.whitfield@example.org".to_owned()])
    );
    let phone = s.service.store().subject("u-dave").await.unwrap().unwrap();
    let phone = phone.contact(ContactKind::Phone).unwrap();
    assert_eq!(phone.value, "+1 555 010 7777");
    assert!(
        phone.verified_at.is_none(),
        "unverified until it proves itself"
    );
    // The old number hears about it.
    assert!(
        kinds(&s, "recovery_notice")
            .iter()
            .any(|m| m["to"] == "+1 555 010 0112")
    );
    s.finish().await;
}

async fn an_email_change_lands_in_the_directory(backend: Backend) {
    let (s, slapd) = start(backend).await;
    change_contact(&s, "email_change", "dave.w@newmail.example").await;
    let entry = slapd.read(&dave(), &["mobile", "mail"]).await;
    assert_eq!(
        entry.attrs.get("mail"),
        Some(&vec!["dave.w@newmail.example".to_owned()])
    );
    assert_eq!(
        entry.attrs.get("mobile"),
        Some(&vec!["+1 555 010 0112".to_owned()])
    );
    let dave = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert_eq!(
        dave.contact(ContactKind::Email).unwrap().value,
        "dave.w@newmail.example"
    );
    assert!(
        kinds(&s, "recovery_notice")
            .iter()
            .any(|m| m["to"] == "dave.whitfield@example.org"),
        "the old address hears about it"
    );
    s.finish().await;
}

async fn the_tier_comes_from_directory_groups(backend: Backend) {
    let (s, slapd) = start(backend).await;
    let standard = s.open_case(AGENT, "u-dave", "password_reset").await;
    assert_eq!(standard["tier"], "standard");
    let (status, _) = s
        .post(
            &format!("/api/v1/cases/{}/cancel", standard["id"].as_str().unwrap()),
            Some(&s.token(AGENT)),
            json!({"reason": "reopened"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // An administrator adds Dave to the admins group in the directory.
    slapd
        .replace(
            &format!("cn=it-admins,ou=groups,{SUFFIX}"),
            "member",
            &[&people("u-grace"), &dave()],
        )
        .await;
    let privileged = s.open_case(AGENT, "u-dave", "password_reset").await;
    assert_eq!(privileged["tier"], "privileged");
    // The privileged playbook: more classes and a supervisor's approval.
    assert!(
        privileged["requirements"]["min_classes"].as_u64().unwrap()
            > standard["requirements"]["min_classes"].as_u64().unwrap(),
        "{}",
        privileged["requirements"]
    );
    assert!(
        privileged["requirements"]["approvals"]
            .as_array()
            .unwrap()
            .contains(&json!("supervisor")),
        "{}",
        privileged["requirements"]
    );
    let stored = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert_eq!(stored.tier, deskgate_core::Tier::Privileged);
    assert_eq!(stored.groups, ["it-admins", "sales"]);
    let synced = entries(&s)
        .await
        .into_iter()
        .rfind(|e| e["event"] == "directory.synced")
        .unwrap();
    assert_eq!(
        synced["details"]["changes"]["tier"],
        json!({"from": "standard", "to": "privileged"})
    );
    s.finish().await;
}

async fn a_contact_changed_in_the_directory_since_the_last_sync_is_not_evidence(backend: Backend) {
    let (s, slapd) = start(backend).await;
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (vid, code) = s.send_code(AGENT, id, "sms_code").await;
    assert_eq!(s.last_message("verification_code")["to"], "+1 555 010 0112");
    let (status, body) = s.answer(AGENT, id, &vid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Since issue 13 the phone alone is not enough: the email of record is the second class.
    assert_eq!(body["state"], "verifying", "{body}");
    let (evid, ecode) = s.send_code(AGENT, id, "email_code").await;
    let (status, body) = s.answer(AGENT, id, &evid, &ecode).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");

    // Someone redirects the mobile number in the directory before the agent executes.
    slapd.replace(&dave(), "mobile", &["+1 555 666 0000"]).await;
    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "requirements_not_met");

    let (_, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(view["state"], "verifying", "{view}");
    assert!(view["grant"].is_null(), "{view}");
    // The phone code stopped counting; only the email code is left.
    assert_eq!(
        view["progress"]["counted_classes"],
        json!(["email_of_record"]),
        "{view}"
    );
    let phone = s.service.store().subject("u-dave").await.unwrap().unwrap();
    let phone = phone.contact(ContactKind::Phone).unwrap();
    assert_eq!(phone.value, "+1 555 666 0000");
    // Vouched for by the directory, but changed just now: no evidence for the freshness window.
    assert!(s.service.now() - phone.changed_at < chrono::Duration::minutes(1));
    let events = s.events_since(0).await;
    assert!(
        events.contains(&"directory.synced".to_owned()),
        "{events:?}"
    );
    assert!(!events.contains(&"grant.consumed".to_owned()), "{events:?}");
    // Nothing happened in the directory.
    assert_eq!(slapd.bind_rc(&dave(), "dave-old-pass").await, 0);
    // The new number is not offered for codes, and the risk says why.
    let again = s
        .open_case("jordan.blake", "u-dave", "password_reset")
        .await;
    let offered = again["playbook"][0]["methods"].as_array().unwrap();
    assert!(!offered.contains(&json!("sms_code")), "{offered:?}");
    assert!(
        again["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "contact_changed_recently"),
        "{}",
        again["risk"]
    );
    s.finish().await;
}

async fn a_subject_missing_from_the_directory_is_refused(backend: Backend) {
    let (s, slapd) = start(backend).await;
    // Alice is in Deskgate's store (the demo) but not in the directory.
    let (status, body) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            json!({"subject": "u-alice", "action": "password_reset", "channel": "phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unknown_subject");

    // Dave leaves the directory between approval and execution.
    let id = approved_reset(&s).await;
    slapd.delete(&dave()).await;
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unknown_subject");
    let events = s.events_since(0).await;
    assert!(!events.contains(&"grant.consumed".to_owned()), "{events:?}");
    assert!(kinds(&s, "temporary_password").is_empty());
    s.finish().await;
}

async fn a_directory_outage_at_execution_fails_the_case_and_spends_the_grant(backend: Backend) {
    let (s, mut slapd) = start(backend).await;
    let id = approved_reset(&s).await;
    let outbox_before = s.outbox().len();
    slapd.stop();

    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "execution_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("openldap connector failed") && message.contains("new case"),
        "{message}"
    );
    assert_eq!(s.outbox().len(), outbox_before, "no notice, no password");

    let all = entries(&s).await;
    let events: Vec<&str> = all.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in ["grant.consumed", "execution.started", "execution.failed"] {
        assert!(events.contains(&e), "missing {e} in {events:?}");
    }
    assert!(!events.contains(&"execution.performed"), "{events:?}");
    let failed = all
        .iter()
        .find(|e| e["event"] == "execution.failed")
        .unwrap();
    assert!(
        failed["details"]["error"]
            .as_str()
            .unwrap()
            .contains("could not talk to the directory"),
        "{failed}"
    );
    assert!(!failed.to_string().contains(SERVICE_PW));

    let (_, view) = s
        .get(&format!("/api/v1/cases/{id}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(view["state"], "failed", "{view}");
    assert!(view["executed_at"].is_null());
    let stored = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert!(
        stored.probation_until.is_none(),
        "no probation without an execution"
    );
    // Single use: the grant cannot be tried again.
    let (status, body) = s.execute(AGENT, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

async fn a_service_credential_rotation_sets_the_new_secret_in_the_directory(backend: Backend) {
    let (s, slapd) = start(backend).await;
    let svc = format!("uid=svc-payroll,ou=services,{SUFFIX}");
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            json!({"subject": "svc-payroll", "action": "service_credential_rotate",
                   "channel": "ticket", "requester": "u-erin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["tier"], "service");
    let id = case["id"].as_str().unwrap();
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-erin").await.unwrap();
    let (status, body) = s.answer(AGENT, id, &tid, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let link = s.request_attestation(AGENT, id).await;
    let (status, body) = s.attest(&link, None, "confirm").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case_state"], "approved");

    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let handover = s.last_message("secret_retrieval_link");
    assert_eq!(handover["to"], "erin.walsh@example.org");
    let url = handover["link"].as_str().unwrap().to_owned();
    let first = s.post_link(&url, "").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let secret = first.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(slapd.bind_rc(&svc, &secret).await, 0);
    assert_eq!(
        slapd.bind_rc(&svc, "payroll-old-secret").await,
        INVALID_CREDENTIALS
    );
    let again = s.post_link(&url, "").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    for e in entries(&s).await {
        assert!(
            !e.to_string().contains(&secret),
            "an entry holds the secret: {e}"
        );
    }
    for m in s.outbox() {
        assert!(
            !m.to_string().contains(&secret),
            "a message holds the secret: {m}"
        );
    }
    s.finish().await;
}

async fn concurrent_executes_reach_the_directory_once(backend: Backend) {
    let (s, slapd) = start(backend).await;
    let id = approved_reset(&s).await;
    let s = std::sync::Arc::new(s);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move { s.execute(AGENT, &id).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
        }
    }
    assert_eq!(ok, 1, "exactly one execution");
    let passwords = kinds(&s, "temporary_password");
    assert_eq!(passwords.len(), 1);
    // The one password delivered is the one the directory holds: no second reset overwrote it.
    let password = passwords[0]["password"].as_str().unwrap();
    assert_eq!(slapd.bind_rc(&dave(), password).await, 0);
    let events = s.events_since(0).await;
    for e in ["grant.consumed", "execution.started", "execution.performed"] {
        assert_eq!(
            events.iter().filter(|x| *x == e).count(),
            1,
            "{e}: {events:?}"
        );
    }
    s.assert_audit_chain_intact().await;
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        s.finish().await;
    }
}

async fn an_mfa_reset_removes_deskgate_factors_and_records_the_sessions_it_could_not_revoke(
    backend: Backend,
) {
    let (s, slapd) = start(backend).await;
    let (status, case) = s
        .post(
            "/api/v1/cases",
            Some(&s.token(AGENT)),
            json!({"subject": "u-dave", "action": "mfa_reset", "channel": "phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let id = case["id"].as_str().unwrap();
    let (tid, _) = s.start_method(AGENT, id, "totp").await;
    let code = s.service.current_totp("u-dave").await.unwrap();
    assert_eq!(s.answer(AGENT, id, &tid, &code).await.0, StatusCode::OK);
    let (vid, sms) = s.send_code(AGENT, id, "sms_code").await;
    let (status, body) = s.answer(AGENT, id, &vid, &sms).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");

    let (status, body) = s.execute(AGENT, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pass = s.last_message("temporary_access_pass");
    assert_eq!(pass["to"], "dave.whitfield@example.org");
    let stored = s.service.store().subject("u-dave").await.unwrap().unwrap();
    assert!(stored.authenticators.is_empty());
    let performed = entries(&s)
        .await
        .into_iter()
        .find(|e| e["event"] == "execution.performed")
        .unwrap();
    assert_eq!(performed["details"]["connector"], "openldap");
    assert_eq!(
        performed["details"]["sessions"],
        "not supported by this connector"
    );
    // The directory's password is untouched: only factors were reset.
    assert_eq!(slapd.bind_rc(&dave(), "dave-old-pass").await, 0);
    s.finish().await;
}

async fn a_tier_raised_in_the_directory_after_approval_stops_the_execution(backend: Backend) {
    let (s, slapd) = start(backend).await;
    let id = approved_reset(&s).await;
    // Dave becomes an administrator after his standard case was approved on two codes.
    slapd
        .replace(
            &format!("cn=it-admins,ou=groups,{SUFFIX}"),
            "member",
            &[&people("u-grace"), &dave()],
        )
        .await;
    let (status, body) = s.execute(AGENT, &id).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT,
        "{status}: {body}"
    );
    let events = s.events_since(0).await;
    assert!(!events.contains(&"grant.consumed".to_owned()), "{events:?}");
    assert!(
        events.contains(&"directory.synced".to_owned()),
        "{events:?}"
    );
    assert_eq!(slapd.bind_rc(&dave(), "dave-old-pass").await, 0);
    assert!(kinds(&s, "temporary_password").is_empty());
    s.finish().await;
}

on_both_backends!(
    a_password_reset_sets_a_new_password_in_ldap_delivered_only_to_the_contact,
    an_unlock_clears_the_ppolicy_lock_so_the_account_binds_again,
    a_phone_change_lands_in_the_directory,
    an_email_change_lands_in_the_directory,
    the_tier_comes_from_directory_groups,
    a_tier_raised_in_the_directory_after_approval_stops_the_execution,
    a_contact_changed_in_the_directory_since_the_last_sync_is_not_evidence,
    a_subject_missing_from_the_directory_is_refused,
    a_directory_outage_at_execution_fails_the_case_and_spends_the_grant,
    a_service_credential_rotation_sets_the_new_secret_in_the_directory,
    concurrent_executes_reach_the_directory_once,
    an_mfa_reset_removes_deskgate_factors_and_records_the_sessions_it_could_not_revoke,
);
