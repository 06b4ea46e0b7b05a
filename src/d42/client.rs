//! [`Client`]: requests to Device42 with authentication, timeouts and retries.
//!
//! Every request carries a bearer token from the shared [`TokenCache`]. A 401/403 answer, or
//! Device42's HTTP 500 permission error, makes the client drop that token, obtain a new one
//! (once, for all concurrent callers) and try once more; a second refusal is an auth error. GETs are retried on retryable failures with capped
//! exponential backoff with jitter, honouring `Retry-After`. The building POST is sent once per
//! call: its retries belong to the queue, which spaces them out across runs.
//!
//! Every call passes the client's [`Breaker`]: after repeated outage failures calls are refused
//! at once ([`Error::Paused`]) except for one probe per interval, and a GET stops retrying.

use super::breaker::{Breaker, Gate};
use super::error::{Error, excerpt};
use super::models::{self, BuildingAnswer, TokenGrant};
use super::retry_log::{self, RetryLog};
use super::token::TokenCache;
use super::{BUILDINGS_PATH, TOKEN_PATH};
use crate::config::Device42Settings;
use crate::metrics::Metrics;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use url::Url;

/// A whole response body, read within the size cap.
#[derive(Debug)]
pub struct Body {
    /// Method and path, for messages.
    pub endpoint: String,
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, or empty.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The server's `Retry-After`, if it sent one, capped at `device42.max_retry_after`.
    pub retry_after: Option<Duration>,
}

impl Body {
    /// A `BadResponse` error about this body.
    pub fn bad(&self, cause: impl Into<String>) -> Error {
        Error::BadResponse {
            endpoint: self.endpoint.clone(),
            status: self.status,
            content_type: self.content_type.clone(),
            cause: super::error::mask_known_secrets(&cause.into()),
            excerpt: excerpt(&self.bytes),
        }
    }
}

/// Retry timing for GETs.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff step.
    pub base: Duration,
    /// Longest backoff step.
    pub max: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

/// The Device42 API client. Cheap to clone; clones share the connection pool and the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    client_key: SecretString,
    secret_key: SecretString,
    tokens: TokenCache,
    retry: RetryPolicy,
    max_body: u64,
    insecure: bool,
    /// What a failed connection's message needs of the settings.
    transport: super::transport::Settings,
    /// Keeps retries to one WARN per endpoint at a time.
    retry_log: RetryLog,
    /// Shared with the client a reload replaces when the appliance stays the same.
    breaker: Arc<Breaker>,
    /// Where requests and tokens are counted; the jobs record their runs into it too.
    metrics: Metrics,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("client_key", &"[REDACTED]")
            .field("secret_key", &"[REDACTED]")
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl Client {
    /// Builds the client from settings, recording into `metrics`. Fails only on TLS material
    /// that cannot be used.
    pub fn new(s: &Device42Settings, metrics: Metrics) -> Result<Self, String> {
        Self::with_breaker(s, None, metrics)
    }

    /// Builds the client for reloaded settings. When they name the same appliance and the same
    /// breaker settings, the new client keeps `previous`'s breaker: an outage under way stays
    /// one outage, with one WARN and still one probe per interval.
    pub fn reloaded(s: &Device42Settings, previous: &Client) -> Result<Self, String> {
        let old = &previous.inner;
        let same = old.base == s.base_url
            && old
                .breaker
                .is_configured_as(s.breaker_failures, s.breaker_probe_interval);
        let breaker = same.then(|| Arc::clone(&old.breaker));
        Self::with_breaker(s, breaker, old.metrics.clone())
    }

    fn with_breaker(
        s: &Device42Settings,
        breaker: Option<Arc<Breaker>>,
        metrics: Metrics,
    ) -> Result<Self, String> {
        // An appliance may echo them back in an answer that ends up in a log line or a row.
        let secret_key = s.secret_key.get().map_err(|e| e.to_string())?.clone();
        super::error::never_quote(&s.client_key);
        super::error::never_quote(&secret_key);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(s.connect_timeout)
            .timeout(s.request_timeout)
            // Proxies from the environment are not used: the appliance is reached directly,
            // and a stray http_proxy must not silently reroute credentials.
            .no_proxy()
            // Device42 answers plain http with a 301 to https; following it would turn the
            // building POST into a GET. Report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("d42sync/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60));
        builder = if s.insecure_skip_tls_verify {
            builder.tls_danger_accept_invalid_certs(true)
        } else {
            builder.tls_backend_preconfigured(super::tls::client_config(s.ca_pem.as_deref())?)
        };
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the http client: {}", root_cause(&e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: s.base_url.clone(),
                client_key: s.client_key.clone(),
                secret_key,
                tokens: TokenCache::default(),
                retry: RetryPolicy {
                    max_retries: s.max_retries,
                    base: s.retry_base,
                    max: s.retry_max,
                    max_retry_after: s.max_retry_after,
                },
                max_body: s.max_page_bytes,
                insecure: s.insecure_skip_tls_verify,
                transport: super::transport::Settings {
                    ca_file: s.ca_pem.is_some(),
                    connect_timeout: s.connect_timeout,
                    request_timeout: s.request_timeout,
                },
                retry_log: RetryLog::default(),
                breaker: breaker.unwrap_or_else(|| {
                    let (failures, every) = (s.breaker_failures, s.breaker_probe_interval);
                    Arc::new(Breaker::new(failures, every, metrics.clone()))
                }),
                metrics,
            }),
        })
    }

    /// Obtains a token now (for `check-config --connect`).
    pub async fn connect(&self) -> Result<(), Error> {
        let endpoint = || endpoint_name(&Method::POST, TOKEN_PATH, &[]);
        self.call(endpoint, async { self.token().await.map(|_| ()) })
            .await
    }

    /// Whether a call made now would be sent, probe the appliance, or be refused.
    pub fn gate(&self) -> Gate {
        self.inner.breaker.gate(Instant::now())
    }

    /// Whether calls are paused after repeated failures (a probe may be due).
    pub fn is_paused(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// Runs one call through the breaker: refused at once while it holds calls; an end that
    /// points at an outage counts towards opening it, any other end closes it.
    async fn call<T>(
        &self,
        endpoint: impl FnOnce() -> String,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let permit = self
            .inner
            .breaker
            .admit(Instant::now())
            .map_err(|retry_in| Error::Paused {
                endpoint: endpoint(),
                retry_in,
            })?;
        let result = call.await;
        match &result {
            // A retry the breaker held back: the call says nothing about the appliance.
            Err(Error::Paused { .. }) => drop(permit),
            Err(e) if e.is_retryable() => permit.finish(Some(e), Instant::now()),
            _ => permit.finish(None, Instant::now()),
        }
        result
    }

    /// Whether certificate verification is off (warned about on every pull).
    pub fn is_insecure(&self) -> bool {
        self.inner.insecure
    }

    /// The metrics this client records into, which the jobs run with it record into too.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Time left on the current token.
    pub fn token_expires_in(&self) -> Option<Duration> {
        self.inner.tokens.expires_in()
    }

    /// GET `path?query`, with retries; the body of a 2xx answer.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Body, Error> {
        let retry = self.inner.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(retry.base)
            .with_max_delay(retry.max)
            .with_max_times(retry.max_retries as usize)
            .with_jitter();
        let endpoint = endpoint_name(&Method::GET, path, query);
        let tries = std::sync::atomic::AtomicU32::new(0);
        // The failure a retry was planned for: the call's cause if the breaker holds the retry.
        let last_failure = std::sync::Mutex::new(None);
        let attempt = || async {
            // A retry already waiting when the breaker opened is not sent either; the call
            // ends with the failure that made it retry, which names the cause.
            if tries.fetch_add(1, Ordering::Relaxed) > 0
                && let Some(retry_in) = self.inner.breaker.paused_for(Instant::now())
            {
                let last = last_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                return Err(last.unwrap_or_else(|| Error::Paused {
                    endpoint: endpoint.clone(),
                    retry_in,
                }));
            }
            self.authorized(Method::GET, path, query, None).await
        };
        let attempts = attempt
            .retry(backoff)
            // Once the breaker opens (this call's failures or another's), stop: a probe is
            // one attempt, and an outage is reported once, not per retry.
            .when(|e| e.is_retryable() && !self.inner.breaker.is_open())
            .adjust(|e, planned| {
                // Retry-After replaces the planned step (never past the cap); an exhausted
                // backoff stays exhausted.
                planned.map(|d| {
                    e.retry_after()
                        .map_or(d, |ra| ra.min(retry.max_retry_after))
                })
            })
            .notify(|e: &Error, after| {
                *last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                self.log_retry(path, &endpoint, e, after);
            });
        self.call(|| endpoint.clone(), attempts).await
    }

    /// Logs a planned retry: one WARN per path while retries keep coming, DEBUG for the rest.
    fn log_retry(&self, path: &str, endpoint: &str, e: &Error, after: Duration) {
        let retry_in_ms = after.as_millis() as u64;
        let path_endpoint = endpoint_name(&Method::GET, path, &[]);
        match self.inner.retry_log.level(&path_endpoint, Instant::now()) {
            retry_log::Level::Warn { quietened } => {
                tracing::warn!(endpoint = %path_endpoint, request = %endpoint, retry_in_ms, quietened, error = %e, "request failed, retrying; more retries of this endpoint at debug");
            }
            retry_log::Level::Debug => {
                tracing::debug!(endpoint = %endpoint, retry_in_ms, error = %e, "request failed, retrying");
            }
        }
    }

    /// POST one building (form-encoded, only the fields given) once; Device42's building id on
    /// success. A refused token is answered by one token refresh and one more try, as for every
    /// request.
    pub async fn post_building(&self, fields: &[(&str, &str)]) -> Result<Option<i64>, Error> {
        let form = serde_urlencoded_form(fields);
        let endpoint = || endpoint_name(&Method::POST, BUILDINGS_PATH, &[]);
        let body = self
            .call(
                endpoint,
                self.authorized(Method::POST, BUILDINGS_PATH, &[], Some(form)),
            )
            .await?;
        match models::parse_building_answer(&body.bytes).map_err(|cause| body.bad(cause))? {
            BuildingAnswer::Accepted(id) => Ok(id),
            BuildingAnswer::Refused(message) => Err(Error::Rejected {
                endpoint: body.endpoint,
                status: body.status,
                message: excerpt(message.as_bytes()),
            }),
        }
    }

    /// One request with a bearer token, renewing the token once when it is refused (401, 403,
    /// or Device42's 500 permission error).
    async fn authorized(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<String>,
    ) -> Result<Body, Error> {
        let (token, generation) = self.token().await?;
        let first = self
            .send(method.clone(), path, query, form.clone(), &token)
            .await?;
        if !refuses_token(&first) {
            return classify(first);
        }
        tracing::debug!(endpoint = %first.endpoint, status = first.status, "token refused, obtaining a new one");
        self.inner.tokens.invalidate(generation).await;
        let (token, _) = self.token().await?;
        let second = self.send(method, path, query, form, &token).await?;
        if refuses_token(&second) {
            return Err(Error::Auth {
                endpoint: second.endpoint,
                status: second.status,
                message: format!(
                    "token refused again after renewal: {}",
                    excerpt(&second.bytes)
                ),
            });
        }
        classify(second)
    }

    /// The current token, obtaining one (single flight) when needed.
    async fn token(&self) -> Result<(SecretString, u64), Error> {
        self.inner.tokens.get(|| self.fetch_token()).await
    }

    /// `POST /tauth/1.0/token/` with the API client's key and secret. Never retried here.
    async fn fetch_token(&self) -> Result<(TokenGrant, Option<DateTime<Utc>>), Error> {
        let endpoint = endpoint_name(&Method::POST, TOKEN_PATH, &[]);
        let url = self.url(TOKEN_PATH, &[]);
        let request = self.inner.http.post(url).basic_auth(
            self.inner.client_key.expose_secret(),
            Some(self.inner.secret_key.expose_secret()),
        );
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&endpoint, e));
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        self.inner.metrics.http_request(status);
        let response = response?;
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .map(DateTime::<Utc>::from);
        let body = self.read(endpoint, response).await?;
        if refuses_token(&body) {
            return Err(Error::Auth {
                endpoint: body.endpoint.clone(),
                status: body.status,
                message: format!(
                    "the API client key or secret was refused: {}",
                    excerpt(&body.bytes)
                ),
            });
        }
        let body = classify(body)?;
        let grant = models::parse_token(&body.bytes).map_err(|cause| body.bad(cause))?;
        let lifetime = super::token::planned_lifetime(&grant, date);
        let expires_at = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default();
        self.inner.metrics.token_obtained(expires_at.timestamp());
        tracing::info!(
            token_id = grant.token_id,
            lifetime_s = lifetime.as_secs_f64(),
            "obtained a Device42 token"
        );
        Ok((grant, date))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<String>,
        token: &SecretString,
    ) -> Result<Body, Error> {
        let endpoint = endpoint_name(&method, path, query);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| Error::Auth {
                endpoint: endpoint.clone(),
                status: 0,
                message: "token is not a valid header".into(),
            })?;
        auth.set_sensitive(true);
        let mut request = self
            .inner
            .http
            .request(method, self.url(path, query))
            .header(AUTHORIZATION, auth);
        if let Some(form) = form {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&endpoint, e));
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        self.inner.metrics.http_request(status);
        self.read(endpoint, response?).await
    }

    /// Reads a whole body, refusing one over the size cap.
    async fn read(&self, endpoint: String, mut response: reqwest::Response) -> Result<Body, Error> {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
            .map(|d| d.min(self.inner.retry.max_retry_after));
        let limit = self.inner.max_body;
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
                Err(e) => return Err(self.transport_error(&endpoint, e)),
            }
        }
        Ok(Body {
            endpoint,
            status,
            content_type,
            bytes,
            retry_after,
        })
    }

    fn transport_error(&self, endpoint: &str, e: reqwest::Error) -> Error {
        super::transport::classify(&e, endpoint.to_string(), self.inner.transport)
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.inner.base.clone();
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

/// Maps a non-auth answer to success or a typed error.
fn classify(body: Body) -> Result<Body, Error> {
    let retry_after = body.retry_after;
    let status = body.status;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = || {
        serde_json::from_slice::<serde_json::Value>(&body.bytes)
            .ok()
            .map(|v| models::msg_of(&v))
            .filter(|m| !m.is_empty())
            .map(|m| excerpt(m.as_bytes()))
            .unwrap_or_else(|| excerpt(&body.bytes))
    };
    let unavailable = |body: Body| Error::Unavailable {
        excerpt: excerpt(&body.bytes),
        endpoint: body.endpoint,
        status,
        content_type: body.content_type,
        retry_after,
    };
    match status {
        401 | 403 => Err(Error::Auth {
            message: message(),
            endpoint: body.endpoint,
            status,
        }),
        500 if mentions_permission(&body.bytes) => Err(Error::Auth {
            message: message(),
            endpoint: body.endpoint,
            status,
        }),
        500 if mentions_license(&body.bytes) => Err(Error::Rejected {
            message: message(),
            endpoint: body.endpoint,
            status,
        }),
        408 | 429 | 500..=599 => Err(unavailable(body)),
        300..=399 => Err(Error::Rejected {
            message: "redirected (is device42.base_url https?)".into(),
            endpoint: body.endpoint,
            status,
        }),
        _ => Err(Error::Rejected {
            message: message(),
            endpoint: body.endpoint,
            status,
        }),
    }
}

/// Whether an answer refuses the credential: 401, 403, or the HTTP 500 whose message speaks of
/// permissions, which is how the appliance answers a refused credential.
fn refuses_token(body: &Body) -> bool {
    matches!(body.status, 401 | 403) || (body.status == 500 && mentions_permission(&body.bytes))
}

fn mentions_permission(body: &[u8]) -> bool {
    String::from_utf8_lossy(&body[..body.len().min(2048)])
        .to_ascii_lowercase()
        .contains("permission")
}

fn mentions_license(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
    text.contains("license expired") || text.contains("license is not valid")
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `GET /api/2.0/devices/ offset=1000`: the method, path and the paging position, never more.
fn endpoint_name(method: &Method, path: &str, query: &[(&str, String)]) -> String {
    match query.iter().find(|(k, _)| *k == "offset") {
        Some((_, offset)) => format!("{method} {path} (offset {offset})"),
        None => format!("{method} {path}"),
    }
}

fn serde_urlencoded_form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The innermost error message, lowercase-first, without the URL reqwest adds.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    let mut msg = cur.to_string();
    while let Some(next) = cur.source() {
        cur = next;
        msg = cur.to_string();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn endpoints_name_the_path_and_offset_only() {
        let q = [
            ("limit", "1000".to_string()),
            ("offset", "2000".to_string()),
        ];
        assert_eq!(
            endpoint_name(&Method::GET, "/api/2.0/devices/", &q),
            "GET /api/2.0/devices/ (offset 2000)"
        );
    }
}
