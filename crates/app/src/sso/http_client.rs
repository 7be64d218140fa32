//! The HTTP client the relying party talks to the provider with: no redirects followed (a
//! redirect could point anywhere), bounded time and response size. `openidconnect` 4 has no
//! client for reqwest 0.13, so this implements its `AsyncHttpClient` for ours.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

use super::MAX_RESPONSE_BYTES;

/// An HTTP client for the provider: no redirects followed (a redirect could point anywhere),
/// bounded time and response size.
pub struct HttpClient(reqwest::Client);

/// A failed request to the provider.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the response exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Http(#[from] http::Error),
}

impl HttpClient {
    pub(super) fn new() -> Result<Self, reqwest::Error> {
        // reqwest is built without a crypto provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map(Self)
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut response = self.0.execute(request.try_into()?).await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(builder.body(body)?)
        })
    }
}
