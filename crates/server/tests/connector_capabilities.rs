//! A directory that cannot perform an action never gets a case for it (#12 item 3): the actions
//! offered are those whose operations the configured connector supports, and opening a case for
//! any other is refused at once, with nothing changed and nothing sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use deskgate_app::connector_setup::ConnectorKind;
use deskgate_connectors::{
    Connector, ConnectorError, DirectoryContact, DirectoryEntry, GeneratedSecret, Operation,
    TemporaryAccessPass,
};
use deskgate_core::{Action, ApiId, ContactKind, SubjectStatus, Tier};
use deskgate_testkit::on_both_backends;
use deskgate_testkit::server::{Backend, TestServer};
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::json;

const AGENT: &str = "sam.rivera";

/// A directory whose service account may look people up and reset passwords, nothing else:
/// it holds Dave as the demo does.
struct PasswordsOnly;

const PASSWORDS_ONLY: &[Operation] = &[Operation::Lookup, Operation::ResetPassword];

impl PasswordsOnly {
    fn unsupported(operation: Operation) -> ConnectorError {
        ConnectorError::Unsupported {
            connector: "passwords_only",
            operation,
            reason: "the service account may only reset passwords",
        }
    }
}

#[async_trait]
impl Connector for PasswordsOnly {
    fn name(&self) -> &'static str {
        "passwords_only"
    }

    fn supported_operations(&self) -> &'static [Operation] {
        PASSWORDS_ONLY
    }

    async fn lookup(&self, subject_id: &str) -> Result<DirectoryEntry, ConnectorError> {
        if subject_id != "u-dave" {
            return Err(ConnectorError::NotFound {
                subject_id: subject_id.to_owned(),
            });
        }
        Ok(DirectoryEntry {
            subject_id: "u-dave".to_owned(),
            backend_id: "people/u-dave".to_owned(),
            display_name: "Dave Whitfield".to_owned(),
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            groups: vec!["sales".to_owned()],
            contacts: vec![
                DirectoryContact {
                    kind: ContactKind::Email,
                    value: "dave.whitfield@example.org".to_owned(),
                },
                DirectoryContact {
                    kind: ContactKind::Phone,
                    value: "+1 555 010 0112".to_owned(),
                },
            ],
            manager: Some("u-bob".to_owned()),
        })
    }

    async fn reset_password(&self, _subject_id: &str) -> Result<GeneratedSecret, ConnectorError> {
        Ok(deskgate_connectors::generate_password())
    }

    async fn remove_factors(&self, _subject_id: &str) -> Result<(), ConnectorError> {
        Err(Self::unsupported(Operation::RemoveFactors))
    }

    async fn unlock(&self, _subject_id: &str) -> Result<(), ConnectorError> {
        Err(Self::unsupported(Operation::Unlock))
    }

    async fn change_contact(
        &self,
        _subject_id: &str,
        _kind: ContactKind,
        _value: &str,
    ) -> Result<(), ConnectorError> {
        Err(Self::unsupported(Operation::ChangeContact))
    }

    async fn issue_temporary_access_pass(
        &self,
        _subject_id: &str,
        _lifetime: chrono::Duration,
    ) -> Result<TemporaryAccessPass, ConnectorError> {
        Err(Self::unsupported(Operation::IssueTemporaryAccessPass))
    }

    async fn revoke_sessions(&self, _subject_id: &str) -> Result<(), ConnectorError> {
        Err(Self::unsupported(Operation::RevokeSessions))
    }

    async fn rotate_service_credential(
        &self,
        _subject_id: &str,
    ) -> Result<GeneratedSecret, ConnectorError> {
        Err(Self::unsupported(Operation::RotateServiceCredential))
    }
}

/// The action ids the console's new-case form offers.
async fn console_actions(s: &TestServer) -> Vec<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/console/sign-in", s.base))
        .form(&[("token", s.token(AGENT))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{}/console/cases/new", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let select = page
        .split("<select id=\"action\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .expect("the new-case form has an action select");
    select
        .split("<option value=\"")
        .skip(1)
        .map(|option| option.split('"').next().unwrap().to_owned())
        // The first option is the empty "Choose the action" prompt, no action.
        .filter(|value| !value.is_empty())
        .collect()
}

async fn an_action_the_connector_cannot_perform_is_neither_offered_nor_opened(backend: Backend) {
    let s = TestServer::start_with_connector(backend, Arc::new(PasswordsOnly)).await;
    let offered = ["password_reset", "mfa_reset", "factor_rebind"];
    assert_eq!(
        s.service.offered_actions(),
        [
            Action::PasswordReset,
            Action::MfaReset,
            Action::FactorRebind
        ],
        "factors live in Deskgate's store: a factor reset needs only the lookup"
    );
    assert_eq!(console_actions(&s).await, offered);

    let before = s.snapshot(None, "u-dave").await;
    let refused = [
        json!({"action": "account_unlock"}),
        json!({"action": "email_change", "new_contact": "dave@new.example"}),
        json!({"action": "phone_change", "new_contact": "+1 555 010 7777"}),
        json!({"action": "service_credential_rotate", "requester": "u-erin"}),
    ];
    for mut request in refused {
        request["subject"] = json!("u-dave");
        request["channel"] = json!("phone");
        let (status, body) = s
            .post("/api/v1/cases", Some(&s.token(AGENT)), request.clone())
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {body}"
        );
        assert_eq!(body["error"]["code"], "action_unsupported", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("passwords_only")
                && message.contains(request["action"].as_str().unwrap()),
            "{message}"
        );
        // Refused before anything is asked of the directory, the bundle or the store.
        assert_eq!(s.snapshot(None, "u-dave").await, before, "{request}");
    }
    let (_, cases) = s.get("/api/v1/cases", Some(&s.token(AGENT))).await;
    assert_eq!(cases["cases"], json!([]), "no case was opened: {cases}");

    // What the directory can do opens as ever.
    let case = s.open_case(AGENT, "u-dave", "password_reset").await;
    assert_eq!(case["state"], "open", "{case}");
    s.assert_audit_chain_intact().await;
    s.finish().await;
}

/// LDAP supports every operation an action needs (factors live in Deskgate's store), so it
/// offers every action, as the built-in directory does.
async fn ldap_and_the_built_in_directory_offer_every_action(backend: Backend) {
    let builtin = TestServer::start(backend).await;
    assert_eq!(builtin.service.offered_actions(), every_action());
    assert_eq!(console_actions(&builtin).await.len(), 7);
    builtin.finish().await;
    // Nothing listens on port 9: offering actions never talks to the directory.
    let ldap = TestServer::start_with(backend, |c| {
        c.connector = ConnectorKind::Ldap;
        c.connectors.ldap = Some(json!({
            "url": "ldap://127.0.0.1:9", "tls": "none", "mode": "openldap",
            "bind_dn": "cn=deskgate,dc=example,dc=org", "bind_password": "unused",
            "base_dn": "dc=example,dc=org", "subject_attribute": "uid",
            "group_base_dn": "ou=groups,dc=example,dc=org", "default_tier": "standard",
        }));
    })
    .await;
    assert_eq!(ldap.service.offered_actions(), every_action());
    ldap.finish().await;
}

/// Every action, in the vocabulary's order.
fn every_action() -> Vec<Action> {
    Action::all().to_vec()
}

on_both_backends!(
    an_action_the_connector_cannot_perform_is_neither_offered_nor_opened,
    ldap_and_the_built_in_directory_offer_every_action,
);
