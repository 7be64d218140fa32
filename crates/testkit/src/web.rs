//! The single sign-on peers of the console tests: the real npm `oidc-provider` (the fixture in
//! `crates/testkit/fixtures/oidc`, installed by `./scripts/test.sh`) on a free port, a Deskgate
//! server configured to sign staff in through it, and a cookie-keeping HTTP client that walks
//! the provider's login and consent pages the way a browser would, without one.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deskgate_app::Config;
use deskgate_app::sso::{CALLBACK_PATH, IdentityClaim, OidcConfig};
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};

use crate::server::{Backend, TestServer};

/// The client Deskgate is registered as at the provider.
pub const CLIENT_ID: &str = "deskgate-console";
/// The provider's name on the console's sign-in button.
pub const PROVIDER_NAME: &str = "Example IdP";
const INSTALL: &str = "the OpenID provider fixture is not installed: run \
    `npm ci --prefix crates/testkit/fixtures/oidc` (./scripts/test.sh does)";

/// A free TCP port on the loopback interface (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The npm oidc-provider on a free port, killed when dropped.
pub struct OidcProvider {
    child: Child,
    pub issuer: String,
}

impl OidcProvider {
    /// Starts the provider on `port`, or says why it did not come up: the port may have been
    /// taken between choosing it and node binding it, by another test on this machine.
    pub async fn start(port: u16, client_secret: &str, redirect_uri: &str) -> Result<Self, String> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc");
        assert!(dir.join("node_modules/oidc-provider").exists(), "{INSTALL}");
        let child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .args([&port.to_string(), CLIENT_ID, client_secret, redirect_uri])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("node could not start ({e}): {INSTALL}"));
        let mut provider = Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        // Node takes a few seconds to load the provider on a busy two-core machine.
        for _ in 0..300 {
            if let Ok(resp) = client
                .get(format!(
                    "{}/.well-known/openid-configuration",
                    provider.issuer
                ))
                .send()
                .await
                && resp.status() == StatusCode::OK
            {
                return Ok(provider);
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                return Err(format!("the provider exited ({status})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "the provider never answered at {}",
            provider.issuer
        ))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[oidc]` table for a provider on `port`.
pub fn oidc_config(port: u16, secret: &str, claim: IdentityClaim) -> OidcConfig {
    OidcConfig {
        issuer: format!("http://127.0.0.1:{port}"),
        client_id: CLIENT_ID.to_owned(),
        client_secret: secret.to_owned(),
        claim,
        scopes: None,
        provider_name: PROVIDER_NAME.to_owned(),
    }
}

/// A Deskgate server with `[oidc]` at a real provider that knows its callback; `adjust` may
/// change the rest of the configuration. Tries three ports before giving up.
pub async fn server_with_provider(
    backend: Backend,
    claim: IdentityClaim,
    adjust: impl Fn(&mut Config) + Clone + Send + 'static,
) -> (TestServer, OidcProvider) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let config_secret = secret.clone();
        let adjust = adjust.clone();
        let s = TestServer::start_with(backend, move |c| {
            c.oidc = Some(oidc_config(port, &config_secret, claim));
            adjust(c);
        })
        .await;
        let redirect = format!("{}{CALLBACK_PATH}", s.service.config().public_url);
        match OidcProvider::start(port, &secret, &redirect).await {
            Ok(provider) => return (s, provider),
            Err(why) => {
                failures.push(why);
                s.finish().await;
            }
        }
    }
    panic!("the OpenID provider did not start: {failures:?}");
}

/// A client that does not follow redirects, speaking from `from` (a loopback address), as one
/// machine on the network would.
pub fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// One response as the client saw it.
pub struct Page {
    pub status: StatusCode,
    pub url: Url,
    pub location: Option<Url>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// A client that never follows redirects by itself and keeps cookies per host and port, the way
/// a browser keeps each site's cookies apart (paths are ignored: the names do not clash).
pub struct Browser {
    client: reqwest::Client,
    jar: HashMap<String, BTreeMap<String, String>>,
}

/// The host and port a cookie belongs to.
pub fn site(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    )
}

/// The console session cookie a page set, if it set one.
pub fn session_cookie(page: &Page) -> Option<&String> {
    page.set_cookies
        .iter()
        .find(|c| c.starts_with("deskgate_console=") && !c.starts_with("deskgate_console=;"))
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self::with_client(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        )
    }

    /// A browser speaking from `from` (a loopback address), as one machine on the network would.
    pub fn from_address(from: &str) -> Self {
        Self::with_client(client_from(from))
    }

    fn with_client(client: reqwest::Client) -> Self {
        Self {
            client,
            jar: HashMap::new(),
        }
    }

    pub fn cookie(&self, url: &Url, name: &str) -> Option<String> {
        self.jar.get(&site(url))?.get(name).cloned()
    }

    pub fn set_cookie(&mut self, url: &Url, name: &str, value: &str) {
        self.jar
            .entry(site(url))
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder, url: Url) -> Page {
        let cookies = self
            .jar
            .get(&site(&url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies)
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| url.join(l.to_str().unwrap()).unwrap());
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = value.is_empty() || c.to_lowercase().contains("max-age=0");
            let jar = self.jar.entry(site(&url)).or_default();
            if expired {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status,
            url,
            location,
            set_cookies,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let url = Url::parse(url).unwrap();
        let req = self.client.get(url.clone());
        self.send(req, url).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let url = Url::parse(url).unwrap();
        let req = self.client.post(url.clone()).form(form);
        self.send(req, url).await
    }

    /// Starts Deskgate's single sign-on and goes through the provider's login (as `login`) and
    /// consent pages, following redirects, until the provider sends the browser back to Deskgate.
    /// Returns the callback URL without visiting it.
    pub async fn through_provider(&mut self, base: &str, login: &str) -> Url {
        let page = self.get(&format!("{base}/console/sign-in/oidc")).await;
        self.continue_at_provider(page, base, login).await
    }

    /// Signs in through the provider as `login`; answers Deskgate's callback page.
    pub async fn sign_in_through_provider(&mut self, base: &str, login: &str) -> Page {
        let callback = self.through_provider(base, login).await;
        self.get(callback.as_str()).await
    }

    /// [`Self::through_provider`] from Deskgate's redirect to the provider.
    pub async fn continue_at_provider(&mut self, mut page: Page, base: &str, login: &str) -> Url {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        for _ in 0..20 {
            if let Some(next) = page.location.clone() {
                if next.as_str().starts_with(&format!("{base}{CALLBACK_PATH}")) {
                    return next;
                }
                page = self.get(next.as_str()).await;
                continue;
            }
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let action = page.url.to_string();
            page = if page.body.contains(r#"name="prompt" value="login""#) {
                self.post(
                    &action,
                    &[("prompt", "login"), ("login", login), ("password", "any")],
                )
                .await
            } else if page.body.contains(r#"name="prompt" value="consent""#) {
                self.post(&action, &[("prompt", "consent")]).await
            } else {
                panic!("unexpected provider page {}:\n{}", page.url, page.body);
            };
        }
        panic!("the provider never sent the browser back");
    }
}
