//! One helper for every integration test: a real Deskgate server on a random port, on SQLite or
//! on a fresh PostgreSQL database, seeded with the demo organisation, talked to over HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use deskgate_app::demo::DemoStaff;
use deskgate_app::{Clock, Config, Service};
use deskgate_store::verify_chain;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::database::FreshDatabase;
pub use crate::database::{Backend, postgres_base_url};

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub service: Arc<Service>,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub backend: Backend,
    staff: HashMap<String, DemoStaff>,
    database: FreshDatabase,
}

/// What must not change when a request is refused.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub case: Option<Value>,
    pub subject: Value,
    pub audit_size: u64,
    pub outbox_len: usize,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change (delivery, lifetimes...).
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::boot(backend, adjust, None).await
    }

    /// Starts a server whose granted actions execute through `connector` (a test double), which
    /// is also the system of record subjects are synced from.
    pub async fn start_with_connector(
        backend: Backend,
        connector: Arc<dyn deskgate_connectors::Connector>,
    ) -> Self {
        Self::boot(backend, |_| {}, Some(connector)).await
    }

    async fn boot(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
        connector: Option<Arc<dyn deskgate_connectors::Connector>>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let database = FreshDatabase::create(backend, dir.path(), "deskgate.db").await;
        let database_url = database.url.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config {
            public_url: base.clone(),
            database: database_url.clone(),
            data_dir: dir.path().to_path_buf(),
            delivery: deskgate_app::delivery::Config {
                outbox_file: true,
                ..Default::default()
            },
            ..Config::default()
        };
        adjust(&mut config);
        let clock = Clock::system();
        let mut service = deskgate_app::build(config, clock.clone()).await.unwrap();
        if let Some(connector) = connector {
            service = service.with_connector(connector);
        }
        let service = Arc::new(service);
        let staff = deskgate_app::demo::seed(&service)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let app = deskgate_server::router(service.clone());
        tokio::spawn(async move {
            // As `deskgate serve` does: the sign-in limits count by the peer address.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            base,
            client: reqwest::Client::new(),
            service,
            clock,
            dir,
            database_url,
            backend,
            staff,
            database,
        }
    }

    pub fn token(&self, staff_name: &str) -> String {
        self.staff[staff_name].token.clone()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// Every message the demo outbox holds, oldest first.
    pub fn outbox(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.path().join("outbox.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The newest outbox message of `kind`.
    pub fn last_message(&self, kind: &str) -> Value {
        self.outbox()
            .into_iter()
            .rev()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} message in the outbox"))
    }

    /// Opens a case as `agent` and returns its JSON.
    pub async fn open_case(&self, agent: &str, subject: &str, action: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/cases",
                Some(&self.token(agent)),
                json!({ "subject": subject, "action": action, "channel": "phone", "ticket": "INC-1" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Starts a code verification and returns (verification id, code from the outbox).
    pub async fn send_code(&self, agent: &str, case_id: &str, method: &str) -> (String, String) {
        let (status, body) = self
            .post(
                &format!("/api/v1/cases/{case_id}/verifications"),
                Some(&self.token(agent)),
                json!({ "method": method }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let vid = body["verification"]["id"].as_str().unwrap().to_owned();
        let code = self.last_message("verification_code")["code"]
            .as_str()
            .unwrap()
            .to_owned();
        (vid, code)
    }

    pub async fn answer(
        &self,
        agent: &str,
        case_id: &str,
        vid: &str,
        code: &str,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/cases/{case_id}/verifications/{vid}"),
            Some(&self.token(agent)),
            json!({ "code": code }),
        )
        .await
    }

    /// An MFA reset for `subject` worked by `agent` the way the default pack allows (an SMS code
    /// to the phone of record and one of the recovery codes the person saved, found by `email`)
    /// and executed: answers the temporary access pass message it sent to a contact of record.
    pub async fn executed_mfa_reset(&self, agent: &str, subject: &str, email: &str) -> Value {
        let case = self.open_case(agent, subject, "mfa_reset").await;
        let id = case["id"].as_str().unwrap().to_owned();
        let (vid, code) = self.send_code(agent, &id, "sms_code").await;
        assert_eq!(self.answer(agent, &id, &vid, &code).await.0, StatusCode::OK);
        let saved = self.recovery_codes(email);
        let (rid, _) = self.start_method(agent, &id, "recovery_code").await;
        let (status, body) = self.answer(agent, &id, &rid, &saved[0]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "approved", "{body}");
        let (status, body) = self.execute(agent, &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.last_message("temporary_access_pass")
    }

    /// Gets a standard-tier password reset approved the way the default pack asks since issue 13
    /// (two counted classes, one of them a contact or person of record): a code to the email of
    /// record, which alone leaves the case verifying, then a code to the phone of record. Returns
    /// the answer that approved the case; the outbox's newest `verification_code` is the SMS.
    pub async fn pass_password_reset(&self, agent: &str, case_id: &str) -> Value {
        let (vid, code) = self.send_code(agent, case_id, "email_code").await;
        let (status, body) = self.answer(agent, case_id, &vid, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["state"], "verifying",
            "one class never resets a password: {body}"
        );
        let (vid, code) = self.send_code(agent, case_id, "sms_code").await;
        let (status, body) = self.answer(agent, case_id, &vid, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "approved", "{body}");
        body
    }

    /// Starts a verification that sends nothing (a recovery code) and returns its id and the case.
    pub async fn start_method(&self, agent: &str, case_id: &str, method: &str) -> (String, Value) {
        let (status, body) = self
            .post(
                &format!("/api/v1/cases/{case_id}/verifications"),
                Some(&self.token(agent)),
                json!({ "method": method }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["verification"]["id"].as_str().unwrap().to_owned(),
            body,
        )
    }

    /// The recovery codes the demo person with `email` saved at enrolment: the demo keeps them
    /// in `subject-secrets.json` (what people hold offline), never in the outbox.
    pub fn recovery_codes(&self, email: &str) -> Vec<String> {
        let path = self.dir.path().join(deskgate_app::demo::SUBJECT_SECRETS);
        let kept: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        kept["subjects"]
            .as_object()
            .unwrap()
            .values()
            .find(|p| p["email"] == email)
            .unwrap_or_else(|| panic!("no saved recovery codes for {email}"))["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    /// Starts a manager attestation and returns the link the manager received.
    pub async fn request_attestation(&self, agent: &str, case_id: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/api/v1/cases/{case_id}/verifications"),
                Some(&self.token(agent)),
                json!({ "method": "manager_attestation" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.last_message("attestation_link")["link"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A POST to the token-free route of a link Deskgate sent (absolute URL `PREFIX/TOKEN`):
    /// `PREFIX` + `suffix`, with the token in the `X-Link-Token` header, never in the URL.
    pub fn post_link(&self, link: &str, suffix: &str) -> reqwest::RequestBuilder {
        let (prefix, token) = link.rsplit_once('/').unwrap();
        self.client
            .post(format!("{prefix}{suffix}"))
            .header("x-link-token", token)
    }

    /// Signs in to an attestation link (absolute URL) the way the manager does: asks for a
    /// code on their own phone, reads it from the outbox and enters it. Returns the session, or
    /// the refusal of whichever step refused.
    pub async fn attestation_sign_in(&self, link: &str) -> Result<String, (StatusCode, Value)> {
        let (status, body) = self.send(self.post_link(link, "/code")).await;
        if status != StatusCode::OK {
            return Err((status, body));
        }
        let code = self.last_message("attestation_sign_in_code")["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = self
            .send(
                self.post_link(link, "/sign-in")
                    .json(&json!({ "code": code })),
            )
            .await;
        if status != StatusCode::OK {
            return Err((status, body));
        }
        Ok(body["session"].as_str().unwrap().to_owned())
    }

    /// Signs in to an attestation link and POSTs a decision to it (absolute URL).
    pub async fn attest(
        &self,
        link: &str,
        token: Option<&str>,
        decision: &str,
    ) -> (StatusCode, Value) {
        let session = match self.attestation_sign_in(link).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        self.attest_with_session(link, token, Some(&session), decision)
            .await
    }

    /// POSTs a decision to an attestation link with the given session (or none).
    pub async fn attest_with_session(
        &self,
        link: &str,
        token: Option<&str>,
        session: Option<&str>,
        decision: &str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .post_link(link, "")
            .json(&json!({ "decision": decision }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = session {
            req = req.header("x-attestation-session", s);
        }
        self.send(req).await
    }

    pub async fn execute(&self, agent: &str, case_id: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/cases/{case_id}/execute"),
            Some(&self.token(agent)),
            Value::Null,
        )
        .await
    }

    pub async fn snapshot(&self, case_id: Option<&str>, subject_id: &str) -> Snapshot {
        let store = &self.service.store();
        let case = match case_id {
            Some(id) => store
                .case(id)
                .await
                .unwrap()
                .map(|c| serde_json::to_value(&c.case).unwrap()),
            None => None,
        };
        Snapshot {
            case,
            subject: serde_json::to_value(store.subject(subject_id).await.unwrap().unwrap())
                .unwrap(),
            audit_size: store.audit_size().await.unwrap(),
            outbox_len: self.outbox().len(),
        }
    }

    /// Audit event names appended after index `from`.
    pub async fn events_since(&self, from: u64) -> Vec<String> {
        let store = &self.service.store();
        let size = store.audit_size().await.unwrap();
        store
            .audit_entries(from, size)
            .await
            .unwrap()
            .iter()
            .map(|r| r.entry().unwrap()["event"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Recomputes every hash of the audit trail.
    pub async fn assert_audit_chain_intact(&self) {
        let store = &self.service.store();
        let size = store.audit_size().await.unwrap();
        let records = store.audit_entries(0, size).await.unwrap();
        assert_eq!(records.len() as u64, size);
        verify_chain(&records).unwrap();
        // Every secret that was ever delivered must be absent from every entry.
        let secrets: Vec<String> = self
            .outbox()
            .iter()
            .flat_map(|m| {
                ["code", "password", "pass", "link"].map(|k| m[k].as_str().map(str::to_owned))
            })
            .flatten()
            .collect();
        for r in &records {
            for secret in &secrets {
                assert!(
                    !r.body.contains(secret.as_str()),
                    "audit entry {} holds a secret: {}",
                    r.index,
                    r.body
                );
            }
            let token_part = secrets
                .iter()
                .filter_map(|l| l.rsplit_once("/attest/").map(|(_, t)| t.to_owned()));
            for t in token_part {
                assert!(
                    !r.body.contains(&t),
                    "audit entry {} holds a link token",
                    r.index
                );
            }
        }
    }

    /// Executes raw SQL against the server's database (fault injection).
    pub async fn sql(&self, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
                for s in statements {
                    sqlx::query(s).execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
                for s in statements {
                    sqlx::query(s).execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
        }
    }

    /// Drops the per-test PostgreSQL database.
    pub async fn finish(self) {
        self.database.drop_now().await;
    }
}
