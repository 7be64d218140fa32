//! The subject's own page (`/me`) end to end over HTTP, with webauthn-authenticator-rs's software
//! passkey as the person's authenticator: passkey sign-in that tells nobody who exists, what the
//! page shows, recovery codes shown once that depend on the passkey that minted them, passkeys
//! added, renamed and removed, probation, sessions that end with their passkey, and "this was
//! not me" on a case of one's own only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deskgate_testkit::on_both_backends;
use deskgate_testkit::passkeys::{self, origin};
use deskgate_testkit::server as common;

use chrono::Duration;
use common::{Backend, TestServer};
use deskgate_store::Change;
use reqwest::StatusCode;
use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

const AGENT: &str = "sam.rivera";
const DAVE: &str = "u-dave";

async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.public_url = c.public_url.replace("127.0.0.1", "localhost");
        c.security_contacts = vec!["soc@example.org".to_owned()];
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Enrols `device`'s passkey for `subject` with a temporary access pass, as after an MFA reset,
/// then lets weeks pass; answers the new passkey's authenticator id.
async fn enrol(s: &TestServer, subject: &str, device: &mut SoftPasskey) -> String {
    let pass = passkeys::issue_pass(s, subject).await;
    let done = passkeys::enrol_with_pass(s, subject, &pass, device).await;
    s.clock.advance(Duration::days(15));
    done["authenticator_id"].as_str().unwrap().to_owned()
}

async fn sign_in_options(s: &TestServer, name: &str) -> (StatusCode, Value) {
    let resp = client()
        .post(format!("{}/me/sign-in/options", s.base))
        .form(&[("name", name)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs in to the own page as `name` with `device`: the session cookie, or the refusal page.
async fn sign_in(
    s: &TestServer,
    name: &str,
    device: &mut SoftPasskey,
) -> Result<String, (StatusCode, String)> {
    let (status, body) = sign_in_options(s, name).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let challenge: RequestChallengeResponse =
        serde_json::from_value(body["options"].clone()).unwrap();
    let assertion = device
        .do_authentication(origin(s), challenge)
        .map_err(|e| (StatusCode::IM_A_TEAPOT, format!("{e:?}")))?;
    let resp = client()
        .post(format!("{}/me/sign-in", s.base))
        .form(&[
            ("name", name),
            ("ceremony", body["ceremony"].as_str().unwrap()),
            ("credential", &serde_json::to_string(&assertion).unwrap()),
        ])
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::SEE_OTHER {
        let status = resp.status();
        return Err((status, resp.text().await.unwrap()));
    }
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("deskgate_me="))
        .unwrap();
    Ok(cookie.split(';').next().unwrap().to_owned())
}

async fn get_me(s: &TestServer, cookie: &str) -> (StatusCode, String) {
    let resp = client()
        .get(format!("{}/me", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post_me(
    s: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = client()
        .post(format!("{}{path}", s.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The recovery codes a page shows.
fn codes_on(page: &str) -> Vec<String> {
    page.split("<li><code>")
        .skip(1)
        .map(|rest| rest.split("</code>").next().unwrap().to_owned())
        .collect()
}

fn signed_in(page: &str) -> bool {
    page.contains("action=\"/me/sign-out\"")
}

async fn a_subject_signs_in_with_a_passkey_and_sees_only_their_own_account(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    let passkey = enrol(&s, DAVE, &mut device).await;
    let before = s.service.store().audit_size().await.unwrap();

    let cookie = sign_in(&s, DAVE, &mut device).await.unwrap();
    let (status, page) = get_me(&s, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(signed_in(&page), "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(page.contains(&dave.display_name), "{page}");
    for contact in &dave.contacts {
        assert!(page.contains(&contact.masked()), "{page}");
        assert!(
            !page.contains(&contact.value),
            "a contact shown unmasked: {page}"
        );
    }
    assert!(
        page.contains(&format!("id=\"passkey-{passkey}\"")),
        "{page}"
    );
    assert!(page.contains("(this session)"), "{page}");
    // Nobody else's account is on the page.
    let priya = s.service.store().subject("u-priya").await.unwrap().unwrap();
    assert!(!page.contains(&priya.display_name), "{page}");

    let events = s.events_since(before).await;
    assert_eq!(events, vec!["subject.signed_in".to_owned()]);
    // The same person by their email of record signs in too.
    let email = dave
        .contact(deskgate_core::ContactKind::Email)
        .unwrap()
        .value
        .clone();
    let by_email = sign_in(&s, &email.to_uppercase(), &mut device)
        .await
        .unwrap();
    assert!(signed_in(&get_me(&s, &by_email).await.1));
    // A new sign-in replaced the first session.
    assert!(!signed_in(&get_me(&s, &cookie).await.1));
    s.finish().await;
}

async fn the_sign_in_answer_does_not_tell_who_exists_or_has_passkeys(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut device).await;
    let mut shapes = Vec::new();
    for name in [DAVE, "u-priya", "nobody-at-all", "u-dave2"] {
        let (status, body) = sign_in_options(&s, name).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let allowed = body["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap();
        assert!(!allowed.is_empty(), "{name}: {body}");
        let mut keys: Vec<String> = body["options"]["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        shapes.push((keys, body["ceremony"].as_str().unwrap().len()));
    }
    assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:?}");
    // The same name always gets the same decoy ids.
    let (_, a) = sign_in_options(&s, "nobody-at-all").await;
    let (_, b) = sign_in_options(&s, "nobody-at-all").await;
    assert_eq!(
        a["options"]["publicKey"]["allowCredentials"],
        b["options"]["publicKey"]["allowCredentials"]
    );
    // A passkey of someone else, or of nobody, is refused with the one refusal.
    let mut stranger = SoftPasskey::new(true);
    let refused_unknown = sign_in(&s, "nobody-at-all", &mut stranger).await;
    let refused_known = sign_in(&s, DAVE, &mut stranger).await;
    for refused in [refused_unknown, refused_known] {
        match refused {
            Err((StatusCode::IM_A_TEAPOT, _)) => {} // the authenticator found no allowed credential
            Err((status, page)) => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
                assert!(page.contains("sign-in failed"), "{page}");
            }
            Ok(cookie) => panic!("signed in with a stranger's passkey: {cookie}"),
        }
    }
    s.finish().await;
}

async fn recovery_codes_minted_on_the_page_are_shown_once_and_depend_on_the_passkey(
    backend: Backend,
) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    let passkey = enrol(&s, DAVE, &mut device).await;
    let cookie = sign_in(&s, DAVE, &mut device).await.unwrap();
    let outbox_before = s.outbox().len();

    let resp = client()
        .post(format!("{}/me/recovery-codes", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let page = resp.text().await.unwrap();
    let codes = codes_on(&page);
    assert_eq!(codes.len(), 10, "{page}");
    assert!(page.contains("download=\"recovery-codes.txt\""), "{page}");
    let outbox = serde_json::to_string(&s.outbox()).unwrap();
    assert!(
        codes.iter().all(|c| !outbox.contains(c.as_str())),
        "never sent"
    );
    assert!(
        s.outbox()[outbox_before..]
            .iter()
            .all(|m| m["kind"] == "authenticator_notice"),
        "every contact is told, nothing else is sent"
    );
    // The account page now counts ten and shows where they were shown.
    let (_, account) = get_me(&s, &cookie).await;
    assert!(account.contains("10 unused recovery code(s)"), "{account}");
    assert!(account.contains("signed in with passkey"), "{account}");

    // A code works in a case, and depends on the passkey that minted it.
    let case = s.open_case(AGENT, DAVE, "password_reset").await;
    let id = case["id"].as_str().unwrap();
    let (rid, _) = s.start_method(AGENT, id, "recovery_code").await;
    let (status, body) = s.answer(AGENT, id, &rid, &codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let verification = body["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == rid.as_str())
        .unwrap()
        .clone();
    let units: Vec<&str> = verification["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(
        units.contains(&format!("device:{passkey}").as_str()),
        "{units:?}"
    );
    s.finish().await;
}

async fn probation_keeps_sign_in_methods_as_they_are(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut device).await;
    let old_codes = s.service.store().recovery_codes(DAVE).await.unwrap();
    let mut dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    dave.probation_until = Some(s.service.now() + Duration::days(3));
    s.service
        .store()
        .commit(Change {
            subjects: vec![dave],
            ..Change::default()
        })
        .await
        .unwrap();
    let cookie = sign_in(&s, DAVE, &mut device).await.unwrap();
    let (_, page) = get_me(&s, &cookie).await;
    assert!(page.contains("id=\"probation\""), "{page}");
    let size = s.service.store().audit_size().await.unwrap();
    let (status, page) = post_me(&s, &cookie, "/me/recovery-codes", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("only through the help desk"), "{page}");
    assert!(codes_on(&page).is_empty());
    assert_eq!(
        s.service.store().recovery_codes(DAVE).await.unwrap(),
        old_codes
    );
    assert_eq!(s.service.store().audit_size().await.unwrap(), size);
    let (status, _) = post_me(&s, &cookie, "/me/passkeys/options", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.finish().await;
}

async fn passkeys_are_added_renamed_and_removed_with_provenance(backend: Backend) {
    let s = server(backend).await;
    let mut phone = SoftPasskey::new(true);
    let first = enrol(&s, DAVE, &mut phone).await;
    let cookie = sign_in(&s, DAVE, &mut phone).await.unwrap();

    // Add a second passkey from the page.
    let resp = client()
        .post(format!("{}/me/passkeys/options", s.base))
        .header("cookie", &cookie)
        .form(&[("label", "Laptop")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let started: Value = resp.json().await.unwrap();
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut laptop = SoftPasskey::new(true);
    let credential = laptop.do_registration(origin(&s), options).unwrap();
    let (status, page) = post_me(
        &s,
        &cookie,
        "/me/passkeys",
        &[
            ("ceremony", started["ceremony"].as_str().unwrap()),
            ("credential", &serde_json::to_string(&credential).unwrap()),
            ("label", "Laptop"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Passkey added."), "{page}");
    let stored = s
        .service
        .stored_passkeys(DAVE, deskgate_app::passkeys::SUBJECT_PASSKEYS)
        .await
        .unwrap();
    let second = stored.iter().find(|p| p.label == "Laptop").unwrap();
    let provenance = second.provenance.clone().unwrap();
    assert!(
        provenance.units.contains(&format!("device:{first}")),
        "{provenance:?}"
    );
    let second = second.authenticator_id.clone();
    let events = s.events_since(0).await;
    assert!(events.contains(&"subject.passkey_added".to_owned()));

    // The new one signs in; rename it; the one in use cannot be removed, the other can.
    let laptop_cookie = sign_in(&s, DAVE, &mut laptop).await.unwrap();
    let (status, page) = post_me(
        &s,
        &laptop_cookie,
        &format!("/me/passkeys/{second}/rename"),
        &[("label", "Work laptop")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Work laptop"), "{page}");
    let (status, page) = post_me(
        &s,
        &laptop_cookie,
        &format!("/me/passkeys/{second}/remove"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("signed in with this passkey"), "{page}");
    let (status, page) = post_me(
        &s,
        &laptop_cookie,
        &format!("/me/passkeys/{first}/remove"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.authenticators.iter().all(|a| a.id != first));
    // The removed passkey signs in no more.
    assert!(sign_in(&s, DAVE, &mut phone).await.is_err());
    // Someone else's passkey id is not found.
    let (status, _) = post_me(
        &s,
        &laptop_cookie,
        "/me/passkeys/passkey-0000/rename",
        &[("label", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.finish().await;
}

async fn a_session_ends_when_its_passkey_is_taken_away(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut device).await;
    let cookie = sign_in(&s, DAVE, &mut device).await.unwrap();
    assert!(signed_in(&get_me(&s, &cookie).await.1));
    // An MFA reset removes every authenticator.
    let mut dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    dave.authenticators.clear();
    s.service
        .store()
        .commit(Change {
            subjects: vec![dave],
            ..Change::default()
        })
        .await
        .unwrap();
    let (status, page) = get_me(&s, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!signed_in(&page), "{page}");
    let (status, _) = post_me(&s, &cookie, "/me/recovery-codes", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A forged cookie for the same person is no session either.
    let forged = format!("{}.{}", cookie.split('.').next().unwrap(), "A".repeat(43));
    assert!(!signed_in(&get_me(&s, &forged).await.1));
    s.finish().await;
}

async fn not_me_from_the_page_locks_the_account_for_its_own_cases_only(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut device).await;
    let mine = s.open_case(AGENT, DAVE, "password_reset").await;
    let mine = mine["id"].as_str().unwrap().to_owned();
    let theirs = s.open_case(AGENT, "u-priya", "password_reset").await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let cookie = sign_in(&s, DAVE, &mut device).await.unwrap();
    let (_, page) = get_me(&s, &cookie).await;
    assert!(page.contains(&format!("id=\"case-{mine}\"")), "{page}");
    assert!(!page.contains(&theirs), "{page}");

    let size = s.service.store().audit_size().await.unwrap();
    let (status, _) = post_me(&s, &cookie, "/me/not-me", &[("case_id", &theirs)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(s.service.store().audit_size().await.unwrap(), size);
    let priya = s.service.store().subject("u-priya").await.unwrap().unwrap();
    assert!(!priya.flagged);

    let (status, page) = post_me(&s, &cookie, "/me/not-me", &[("case_id", &mine)]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("locked"), "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.flagged);
    assert_eq!(dave.status, deskgate_core::SubjectStatus::Locked);
    let (_, case) = s
        .get(&format!("/api/v1/cases/{mine}"), Some(&s.token(AGENT)))
        .await;
    assert_eq!(case["state"], "denied", "{case}");
    assert_eq!(s.last_message("security_alert")["to"], "soc@example.org");
    // The session is over, and a held account cannot sign in again.
    assert!(!signed_in(&get_me(&s, &cookie).await.1));
    assert!(sign_in(&s, DAVE, &mut device).await.is_err());
    s.finish().await;
}

async fn a_cross_site_post_to_the_page_is_refused(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut device).await;
    let cookie = sign_in(&s, DAVE, &mut device).await.unwrap();
    let codes = s.service.store().recovery_codes(DAVE).await.unwrap();
    let resp = client()
        .post(format!("{}/me/recovery-codes", s.base))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.service.store().recovery_codes(DAVE).await.unwrap(), codes);
    s.finish().await;
}

async fn a_ceremony_signs_in_once_and_only_the_name_it_was_made_for(backend: Backend) {
    let s = server(backend).await;
    let mut device = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut device).await;
    let (_, body) = sign_in_options(&s, DAVE).await;
    let challenge: RequestChallengeResponse =
        serde_json::from_value(body["options"].clone()).unwrap();
    let assertion = device.do_authentication(origin(&s), challenge).unwrap();
    let assertion = serde_json::to_string(&assertion).unwrap();
    let ceremony = body["ceremony"].as_str().unwrap();
    let post = |name: &'static str| {
        client()
            .post(format!("{}/me/sign-in", s.base))
            .form(&[
                ("name", name),
                ("ceremony", ceremony),
                ("credential", assertion.as_str()),
            ])
            .send()
    };
    let before = s.service.store().audit_size().await.unwrap();
    // Made for Dave, presented for Priya: refused, audited with who was named.
    let resp = post("u-priya").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let entries = s
        .service
        .store()
        .audit_entries(before, before + 1)
        .await
        .unwrap();
    let entry: Value = serde_json::from_str(&entries[0].body).unwrap();
    assert_eq!(entry["event"], "subject.sign_in_failed", "{entry}");
    assert_eq!(entry["details"]["reason"], "ceremony_for_another_name");
    assert_eq!(entry["details"]["subject_id"], "u-priya");
    // Once for Dave, then never again.
    let resp = post(DAVE).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = post(DAVE).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A staff sign-in ceremony does not open here.
    let resp = client()
        .post(format!("{}/console/sign-in/passkey/options", s.base))
        .form(&[("name", AGENT)])
        .send()
        .await
        .unwrap();
    let staff: Value = resp.json().await.unwrap();
    let resp = client()
        .post(format!("{}/me/sign-in", s.base))
        .form(&[
            ("name", AGENT),
            ("ceremony", staff["ceremony"].as_str().unwrap()),
            ("credential", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let events = s.events_since(before).await;
    assert_eq!(
        events.iter().filter(|e| *e == "subject.signed_in").count(),
        1,
        "{events:?}"
    );
    s.finish().await;
}

/// Gives `subject` a push device (as the identity provider would enrol one) besides what they
/// have; answers its id.
async fn with_push_device(s: &TestServer, subject: &str) -> String {
    let mut record = s.service.store().subject(subject).await.unwrap().unwrap();
    let id = format!("push-{subject}-pixel");
    record.authenticators.push(deskgate_core::Authenticator {
        id: id.clone(),
        kind: deskgate_core::AuthenticatorKind::Push,
        label: "Pixel 7".to_owned(),
        enrolled_at: s.service.now() - Duration::days(9),
    });
    s.service
        .store()
        .commit(Change {
            subjects: vec![record],
            ..Change::default()
        })
        .await
        .unwrap();
    id
}

async fn other_devices_are_listed_renamed_and_removed(backend: Backend) {
    let s = server(backend).await;
    let mut phone = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut phone).await;
    let push = with_push_device(&s, DAVE).await;
    let cookie = sign_in(&s, DAVE, &mut phone).await.unwrap();
    let (_, page) = get_me(&s, &cookie).await;
    assert!(page.contains(&format!("id=\"device-{push}\"")), "{page}");
    assert!(page.contains("Push-notification device"), "{page}");
    assert!(page.contains("Pixel 7"), "{page}");

    let (status, page) = post_me(
        &s,
        &cookie,
        &format!("/me/devices/{push}/rename"),
        &[("label", "Old phone")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Device renamed."), "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(
        dave.authenticators
            .iter()
            .any(|a| a.id == push && a.label == "Old phone")
    );
    // A passkey is not a "device" here, nor is someone else's device.
    let passkey = dave
        .authenticators
        .iter()
        .find(|a| a.kind == deskgate_core::AuthenticatorKind::Passkey)
        .unwrap()
        .id
        .clone();
    let alices = with_push_device(&s, "u-alice").await;
    for other in [&passkey, &alices] {
        let (status, _) = post_me(&s, &cookie, &format!("/me/devices/{other}/remove"), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
    }
    let alice = s.service.store().subject("u-alice").await.unwrap().unwrap();
    assert!(alice.authenticators.iter().any(|a| a.id == alices));

    let before = s.outbox().len();
    let (status, page) = post_me(&s, &cookie, &format!("/me/devices/{push}/remove"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Device removed."), "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.authenticators.iter().all(|a| a.id != push));
    assert!(dave.authenticators.iter().any(|a| a.id == passkey));
    // Every contact of record is told, and both changes are in the log.
    let told: Vec<_> = s.outbox()[before..]
        .iter()
        .filter(|m| m["kind"] == "authenticator_notice")
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    assert!(told.len() >= 2, "{told:?}");
    let events = s.events_since(0).await;
    assert!(events.contains(&"subject.device_renamed".to_owned()));
    assert!(events.contains(&"subject.device_removed".to_owned()));
    s.finish().await;
}

async fn probation_keeps_devices_too(backend: Backend) {
    let s = server(backend).await;
    let mut phone = SoftPasskey::new(true);
    enrol(&s, DAVE, &mut phone).await;
    let push = with_push_device(&s, DAVE).await;
    let mut dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    dave.probation_until = Some(s.service.now() + Duration::days(3));
    s.service
        .store()
        .commit(Change {
            subjects: vec![dave],
            ..Change::default()
        })
        .await
        .unwrap();
    let cookie = sign_in(&s, DAVE, &mut phone).await.unwrap();
    let size = s.service.store().audit_size().await.unwrap();
    let (status, page) = post_me(&s, &cookie, &format!("/me/devices/{push}/remove"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let dave = s.service.store().subject(DAVE).await.unwrap().unwrap();
    assert!(dave.authenticators.iter().any(|a| a.id == push));
    assert_eq!(s.service.store().audit_size().await.unwrap(), size);
    s.finish().await;
}

on_both_backends!(
    other_devices_are_listed_renamed_and_removed,
    probation_keeps_devices_too,
    a_ceremony_signs_in_once_and_only_the_name_it_was_made_for,
    a_subject_signs_in_with_a_passkey_and_sees_only_their_own_account,
    the_sign_in_answer_does_not_tell_who_exists_or_has_passkeys,
    recovery_codes_minted_on_the_page_are_shown_once_and_depend_on_the_passkey,
    probation_keeps_sign_in_methods_as_they_are,
    passkeys_are_added_renamed_and_removed_with_provenance,
    a_session_ends_when_its_passkey_is_taken_away,
    not_me_from_the_page_locks_the_account_for_its_own_cases_only,
    a_cross_site_post_to_the_page_is_refused,
);
