//! A Device42 stand-in on 127.0.0.1, used by `d42sim simulate`, `d42sim demo`, the tests and
//! the benchmarks. The shipped `d42sync` binary does not contain it.
//!
//! It imitates the API described in `device42-api.md` (token endpoints, the v2 and v1 device
//! lists, the building upsert) over real HTTP, with the real appliance's shapes: brief v2 items
//! plus `include_cols` under v2 names, full v1 records with fields absent where they do not apply
//! and null where real records mostly have null, `blankasnull`, and the HTTP 500 permission error
//! for a refused credential. It lets a test script the appliance's bad days:
//! injected faults ([`FaultRule`]), rejected buildings, expired tokens, slow answers and an
//! inventory that drifts or churns while a client pages. Everything it received is recorded
//! for assertions.
//!
//! # Layout
//! Each layer uses only the layers below it.
//! - `server`: axum on hyper, plain or TLS (`tls`): requests in, answers out.
//! - `endpoints`: the handler in front of every request (recording, faults, the Bearer check)
//!   and the token, device and building endpoints.
//! - `state`: what one simulator holds, each part behind its own lock.
//! - the parts: `inventory` (devices, cached renderings, drift, churn), `tokens`, `buildings`,
//!   [`faults`] (what can go wrong on purpose), [`journal`] (what was seen).
//! - the ground: [`config`] ([`SimConfig`] and its knobs), `records` and `render`
//!   (deterministic device records and their JSON), `http` (requests and answers as plain
//!   data), `answers` (Device42's canned answers), `support` (locking, the clock).

mod answers;
mod buildings;
pub mod config;
mod endpoints;
pub mod faults;
mod http;
mod inventory;
pub mod journal;
mod records;
mod render;
mod server;
mod state;
mod support;
mod tls;
mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use buildings::SimBuilding;
pub use config::{Churn, Drift, ListKey, SimConfig, TokenRefusal};
pub use faults::{Fault, FaultRule, Rejection};
pub use journal::RecordedRequest;

use inventory::View;
use state::Shared;
use support::{lock, now_ms};

/// A running simulator. Clones share it; it stops on [`Simulator::shutdown`] or when the runtime
/// it was started on ends.
#[derive(Clone)]
pub struct Simulator {
    /// Shared by all clones.
    inner: Arc<Inner>,
}

/// Only the address: the inventory may hold hundreds of thousands of devices.
impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

/// What the clones of one simulator share.
struct Inner {
    /// The state the request handlers use.
    shared: Arc<Shared>,
    /// Where it listens.
    addr: SocketAddr,
    /// The URL clients use: `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    base_url: String,
    /// Stops the server.
    stop: CancellationToken,
    /// The server task, awaited by `shutdown`.
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Simulator {
    /// Starts a plain-HTTP simulator on `listen` (port 0 picks a free port).
    pub async fn start(cfg: SimConfig, listen: SocketAddr) -> std::io::Result<Simulator> {
        Simulator::start_with(cfg, listen, None).await
    }

    /// Starts an HTTPS simulator with this certificate chain and private key (PEM text). Its
    /// base URL names `localhost`, the name test certificates are issued for.
    pub async fn start_tls(
        cfg: SimConfig,
        listen: SocketAddr,
        cert_pem: &str,
        key_pem: &str,
    ) -> std::io::Result<Simulator> {
        let acceptor = tls::tls_acceptor(cert_pem, key_pem)?;
        Simulator::start_with(cfg, listen, Some(acceptor)).await
    }

    async fn start_with(
        cfg: SimConfig,
        listen: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let base_url = match tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let shared = Arc::new(Shared::new(cfg));
        let stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(listener, tls, shared.clone(), stop.clone()));
        let inner = Inner {
            shared,
            addr,
            base_url,
            stop,
            server: Mutex::new(Some(server)),
        };
        Ok(Simulator {
            inner: Arc::new(inner),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// Stops accepting, ends open connections and waits until the server is gone.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let server = lock(&self.inner.server).take();
        if let Some(server) = server {
            let _ = server.await;
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    // ----- inventory -----

    /// How many devices there are now.
    pub fn device_count(&self) -> usize {
        self.shared().inventory().len()
    }

    /// Every device id, ascending.
    pub fn device_ids(&self) -> Vec<i64> {
        self.shared().inventory().ids()
    }

    /// Every device as a pull asks `endpoint` (`/api/2.0/devices/` or `/api/1.0/devices/all/`)
    /// for it: with these `include_cols` (v2 only) and `blankasnull=yes`; byte for byte,
    /// ascending by id.
    ///
    /// # Panics
    /// On another endpoint: a test asking for one has a typo.
    pub fn rendered_devices(&self, endpoint: &str, include_cols: &[String]) -> Vec<(i64, String)> {
        self.rendered_devices_as(endpoint, include_cols, true)
    }

    /// Like [`Simulator::rendered_devices`], with empty strings kept (`blank_as_null` false) or
    /// sent as null.
    ///
    /// # Panics
    /// On another endpoint: a test asking for one has a typo.
    pub fn rendered_devices_as(
        &self,
        endpoint: &str,
        include_cols: &[String],
        blank_as_null: bool,
    ) -> Vec<(i64, String)> {
        let view = match endpoint.trim_end_matches('/') {
            "/api/2.0/devices" => View::v2(include_cols, blank_as_null),
            "/api/1.0/devices/all" => View::v1(blank_as_null),
            other => panic!("the simulator has no device list at {other}"),
        };
        let key = view.cache_key();
        let seed = self.shared().cfg.seed;
        let entries = self.shared().inventory().all();
        entries
            .iter()
            .map(|e| (e.device.id, e.rendered(seed, &view, &key).to_string()))
            .collect()
    }

    /// Adds `n` devices with ids above any used so far; returns their ids.
    pub fn add_devices(&self, n: usize) -> Vec<i64> {
        self.shared().inventory_mut().add(n, now_ms())
    }

    /// Changes a device's name suffix, notes and `last_updated`; false when there is no such id.
    pub fn edit_device(&self, id: i64) -> bool {
        self.shared().inventory_mut().edit(id, now_ms())
    }

    /// Removes a device; false when there is no such id.
    pub fn remove_device(&self, id: i64) -> bool {
        self.shared().inventory_mut().remove(id)
    }

    /// Changes the inventory after each of the next `drift.pages` devices list requests.
    pub fn set_drift(&self, drift: Drift) {
        self.shared().inventory_mut().set_drift(drift);
    }

    /// Churns the inventory over the next `churn.requests` devices list requests.
    pub fn set_churn(&self, churn: Churn) {
        self.shared().inventory_mut().set_churn(churn);
    }

    /// The highest device id ever used: a device that ever existed has an id at most this
    /// (ids are never reused).
    pub fn last_id(&self) -> i64 {
        self.shared().inventory().last_id()
    }

    // ----- faults -----

    /// Adds a fault rule; see [`FaultRule`].
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.shared().faults).inject(rule);
    }

    /// Removes every injected fault rule, as when an outage ends.
    pub fn clear_faults(&self) {
        lock(&self.shared().faults).clear();
    }

    /// Refuses every later building POST with this name, as `how` says.
    pub fn reject_building(&self, name: &str, how: Rejection) {
        lock(&self.shared().buildings)
            .rejections
            .insert(name.to_string(), how);
    }

    /// Accepts building POSTs with this name again.
    pub fn accept_building(&self, name: &str) {
        lock(&self.shared().buildings).rejections.remove(name);
    }

    /// Makes every token issued so far invalid (refused on use, as `token_refusal` says).
    pub fn expire_tokens(&self) {
        lock(&self.shared().tokens).expire_all();
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        lock(&self.shared().knobs).token_ttl = ttl;
    }

    /// Sets the wait before answering each devices list request.
    pub fn set_page_delay(&self, delay: Duration) {
        lock(&self.shared().knobs).page_delay = delay;
    }

    /// Whether devices list requests are answered from offset 0 whatever they ask, as by a
    /// server that drops `offset`.
    pub fn set_ignores_offset(&self, ignores: bool) {
        lock(&self.shared().knobs).ignores_offset = ignores;
    }

    /// Sets the wait before answering each building POST.
    pub fn set_post_delay(&self, delay: Duration) {
        lock(&self.shared().knobs).post_delay = delay;
    }

    // ----- observation -----

    /// The requests received (the most recent [`journal::MAX_RECORDED`]), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared().journal).requests()
    }

    /// How many `POST /tauth/1.0/token/` requests arrived, successful or not.
    pub fn token_requests(&self) -> usize {
        lock(&self.shared().journal).token_requests
    }

    /// How many answers under `/api/` refused the credential: 401, or the 500 permission error
    /// (whether the token check or an injected fault sent it).
    pub fn unauthorized_responses(&self) -> usize {
        lock(&self.shared().journal).unauthorized
    }

    /// Every token ever issued, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared().tokens).issued.clone()
    }

    /// Every building, by name.
    pub fn buildings(&self) -> Vec<SimBuilding> {
        lock(&self.shared().buildings).all()
    }

    /// How many building POSTs named `name` arrived, whatever their outcome.
    pub fn building_posts(&self, name: &str) -> usize {
        lock(&self.shared().journal)
            .building_posts
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
