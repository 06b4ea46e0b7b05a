//! [`Transport`]: the HTTP connection to the appliance: the reqwest client with its timeouts,
//! TLS trust and name lookups, the URL of a path, and one request sent and its whole answer
//! read within the size cap. It knows nothing of tokens or retries.

use super::classify::failure;
use super::dns::SystemResolver;
use super::error::Error;
use super::exchange::{Body, Request, parse_http_date, parse_retry_after};
use crate::config::Device42Settings;
use crate::metrics::Metrics;
use reqwest::RequestBuilder;
use reqwest::header::{CONTENT_TYPE, DATE, RETRY_AFTER};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// How long an idle connection is kept for the next request: long enough to carry a pull's
/// pages, short enough not to hold a socket between runs.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// The connection to one appliance. Shared by a client's clones.
pub struct Transport {
    /// The reqwest client: connection pool, timeouts, TLS.
    http: reqwest::Client,
    /// `device42.base_url`; paths are appended to its own path.
    base: Url,
    /// `device42.max_page_bytes`: a larger body is refused.
    max_body: u64,
    /// `device42.max_retry_after`: the longest `Retry-After` kept from an answer.
    max_retry_after: Duration,
    /// `device42.insecure_skip_tls_verify`, warned about on every pull.
    insecure: bool,
    /// What a failed connection's message needs of the settings.
    failure: failure::Settings,
    /// Where every exchange is counted by its status.
    metrics: Metrics,
}

impl Transport {
    /// The connection for `s`, counting its exchanges into `metrics`. Fails only on TLS
    /// material that cannot be used.
    pub fn new(s: &Device42Settings, metrics: Metrics) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(s.connect_timeout)
            .timeout(s.request_timeout)
            .dns_resolver(Arc::new(SystemResolver))
            // Proxies from the environment are not used: the appliance is reached directly,
            // and a stray http_proxy must not silently reroute credentials.
            .no_proxy()
            // Device42 answers plain http with a 301 to https; following it would turn the
            // building POST into a GET. Report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("d42sync/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(POOL_IDLE);
        builder = if s.insecure_skip_tls_verify {
            builder.tls_danger_accept_invalid_certs(true)
        } else {
            let https = s.base_url.scheme() == "https";
            let tls = super::tls::client_config(s.ca_pem.as_deref(), https)?;
            builder.tls_backend_preconfigured(tls)
        };
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the http client: {}", root_cause(&e)))?;
        Ok(Self {
            http,
            base: s.base_url.clone(),
            max_body: s.max_page_bytes,
            max_retry_after: s.max_retry_after,
            insecure: s.insecure_skip_tls_verify,
            failure: failure::Settings {
                ca_file: s.ca_pem.is_some(),
                connect_timeout: s.connect_timeout,
                request_timeout: s.request_timeout,
            },
            metrics,
        })
    }

    /// The metrics this connection counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The appliance's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Whether certificate verification is off.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// `request` to the appliance, with its form if it has one, for the caller to complete.
    pub fn request(&self, request: &Request<'_>) -> RequestBuilder {
        let builder = self.http.request(
            request.method.clone(),
            self.url(request.path, request.query),
        );
        match request.form {
            Some(form) => builder.form(form),
            None => builder,
        }
    }

    /// Sends `request` (named `endpoint` in messages) and reads its whole answer, whatever its
    /// status; a request that gets no answer is classified by its cause.
    pub async fn send(&self, endpoint: String, request: RequestBuilder) -> Result<Body, Error> {
        let response = request
            .send()
            .await
            .map_err(|e| failure::classify(&e, endpoint.clone(), self.failure));
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        self.metrics.http_request(status);
        self.read(endpoint, response?).await
    }

    /// Reads a whole body, refusing one over the size cap.
    async fn read(&self, endpoint: String, mut response: reqwest::Response) -> Result<Body, Error> {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let status = response.status().as_u16();
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        let retry_after = header(RETRY_AFTER)
            .as_deref()
            .and_then(parse_retry_after)
            .map(|d| d.min(self.max_retry_after));
        let date = header(DATE).as_deref().and_then(parse_http_date);
        let limit = self.max_body;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(Error::TooLarge { endpoint, limit });
        }
        let mut bytes =
            Vec::with_capacity(response.content_length().unwrap_or(0).min(limit) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() as u64 + chunk.len() as u64 > limit {
                        return Err(Error::TooLarge { endpoint, limit });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(failure::classify(&e, endpoint, self.failure)),
            }
        }
        Ok(Body {
            endpoint,
            status,
            content_type,
            bytes,
            retry_after,
            date,
        })
    }

    /// The URL of `path?query` under the base URL's own path.
    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base_path}{path}"));
        if query.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut()
                .clear()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }
}

/// The innermost error message, without the URL reqwest adds.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    let mut msg = cur.to_string();
    while let Some(next) = cur.source() {
        cur = next;
        msg = cur.to_string();
    }
    msg
}
