//! [`Client`]: the face of the Device42 API to jobs and commands. It puts the rooms together:
//! [`Transport`] sends, [`Auth`] puts a token on each request and renews it once when refused,
//! [`Retrier`] passes every call through the breaker and retries GETs, and the answer is
//! classified on the way back ([`super::classify`]).
//!
//! The building POST is sent once per call: its retries belong to the queue, which spaces them
//! out across runs.

use super::auth::{Auth, TOKEN_PATH};
use super::error::{Error, excerpt};
use super::exchange::{Body, Request};
use super::models::{self, BuildingAnswer};
use super::retry::breaker::{Breaker, Gate};
use super::retry::{self, Retrier, RetryPolicy};
use super::transport::Transport;
use crate::config::Device42Settings;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// The building upsert endpoint.
pub const BUILDINGS_PATH: &str = "/api/1.0/buildings/";

/// The Device42 API client. Cheap to clone; clones share the connection pool and the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What a client's clones share.
struct Inner {
    /// The connection to the appliance; it counts the requests into the metrics.
    transport: Transport,
    /// The credentials and the token.
    auth: Auth,
    /// Retries and the breaker.
    retry: Retrier,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.transport.base().as_str())
            .field("client_key", &"[REDACTED]")
            .field("secret_key", &"[REDACTED]")
            .field("retry", &self.inner.retry.policy())
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
        let breaker = old.retry.breaker();
        let same = *old.transport.base() == s.base_url
            && breaker.is_configured_as(s.breaker_failures, s.breaker_probe_interval);
        let metrics = old.transport.metrics().clone();
        Self::with_breaker(s, same.then(|| Arc::clone(breaker)), metrics)
    }

    fn with_breaker(
        s: &Device42Settings,
        breaker: Option<Arc<Breaker>>,
        metrics: Metrics,
    ) -> Result<Self, String> {
        let secret_key = s.secret_key.get().map_err(|e| e.to_string())?.clone();
        let auth = Auth::new(s.client_key.clone(), secret_key);
        let transport = Transport::new(s, metrics.clone())?;
        let policy = RetryPolicy {
            max_retries: s.max_retries,
            base: s.retry_base,
            max: s.retry_max,
            max_retry_after: s.max_retry_after,
        };
        let breaker = breaker.unwrap_or_else(|| {
            Arc::new(Breaker::new(
                s.breaker_failures,
                s.breaker_probe_interval,
                metrics,
            ))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                auth,
                retry: Retrier::new(policy, breaker),
            }),
        })
    }

    /// Obtains a token now (for `check-config --connect`).
    pub async fn connect(&self) -> Result<(), Error> {
        let Inner {
            transport,
            auth,
            retry,
        } = &*self.inner;
        let endpoint = || Request::post(TOKEN_PATH, None).endpoint();
        retry
            .once(endpoint, async { auth.token(transport).await.map(|_| ()) })
            .await
    }

    /// Whether a call made now would be sent, probe the appliance, or be refused.
    pub fn gate(&self) -> Gate {
        self.inner.retry.breaker().gate(retry::now())
    }

    /// Whether calls are paused after repeated failures (a probe may be due).
    pub fn is_paused(&self) -> bool {
        self.inner.retry.breaker().is_open()
    }

    /// Whether certificate verification is off (warned about on every pull).
    pub fn is_insecure(&self) -> bool {
        self.inner.transport.is_insecure()
    }

    /// The metrics this client records into, which the jobs run with it record into too.
    pub fn metrics(&self) -> &Metrics {
        self.inner.transport.metrics()
    }

    /// Time left on the current token.
    pub fn token_expires_in(&self) -> Option<Duration> {
        self.inner.auth.expires_in()
    }

    /// GET `path?query`, with retries; the body of a 2xx answer.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Body, Error> {
        let Inner {
            transport,
            auth,
            retry,
        } = &*self.inner;
        let request = Request::get(path, query);
        let family = Request::get(path, &[]).endpoint();
        retry
            .retried(&request.endpoint(), &family, || {
                auth.authorized(transport, &request)
            })
            .await
    }

    /// POST one building (form-encoded, only the fields given) once; Device42's building id on
    /// success. A refused token is answered by one token refresh and one more try, as for every
    /// request.
    pub async fn post_building(&self, fields: &[(&str, &str)]) -> Result<Option<i64>, Error> {
        let Inner {
            transport,
            auth,
            retry,
        } = &*self.inner;
        let request = Request::post(BUILDINGS_PATH, Some(fields));
        let sent = auth.authorized(transport, &request);
        let body = retry.once(|| request.endpoint(), sent).await?;
        match models::parse_building_answer(&body.bytes).map_err(|cause| body.bad(cause))? {
            BuildingAnswer::Accepted(id) => Ok(id),
            BuildingAnswer::Refused(message) => Err(Error::Rejected {
                endpoint: body.endpoint,
                status: body.status,
                message: excerpt(message.as_bytes()),
            }),
        }
    }
}
