//! How a simulator is set up: [`SimConfig`] and the knobs it is made of.

use std::time::Duration;

/// The settings of one simulated Device42 appliance.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Initial inventory size; ids ascend from 1 with a few gaps, as after old deletions.
    pub devices: usize,
    /// Seed of every generated record and of `fail_rate`: the same seed gives the same inventory.
    pub seed: u64,
    /// The only client key the token endpoint accepts.
    pub client_key: String,
    /// The only secret key the token endpoint accepts.
    pub secret_key: String,
    /// Real lifetime of issued tokens; the token response's `ttl` is this in minutes.
    pub token_ttl: Duration,
    /// Seconds added to the `expires` field only, as on an appliance whose clock is off.
    pub expires_skew: i64,
    /// Key of the item list in `/api/2.0/devices/` answers, which varies between sources.
    pub list_key: ListKey,
    /// Whether list answers carry `total_count`; some endpoints omit it.
    pub include_total_count: bool,
    /// "Enforce API GET Limits": the default and the cap of `limit`.
    pub max_limit: usize,
    /// Wait before answering each devices list request, for latency-bound benchmarks.
    pub page_delay: Duration,
    /// Wait before answering each building POST, for latency-bound benchmarks.
    pub post_delay: Duration,
    /// Probability that any `/api/` request gets a random retryable fault (500, 503, reset or
    /// truncated body), drawn from a generator seeded with `seed`.
    pub fail_rate: f64,
    /// How a Bearer token that is unknown, expired or revoked is refused.
    pub token_refusal: TokenRefusal,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            devices: 100,
            seed: 42,
            client_key: "sim-client-key".to_string(),
            secret_key: "sim-secret-key".to_string(),
            token_ttl: Duration::from_secs(600),
            expires_skew: 0,
            list_key: ListKey::Devices,
            include_total_count: true,
            max_limit: 1000,
            page_delay: Duration::ZERO,
            post_delay: Duration::ZERO,
            fail_rate: 0.0,
            token_refusal: TokenRefusal::PermissionDenied,
        }
    }
}

/// The answer to a Bearer token that is not (or no longer) valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// HTTP 500 `{"msg": "You don't have permissions to access this resource.", "code": "1"}`:
    /// what the appliance was recorded answering to a refused credential.
    PermissionDenied,
    /// HTTP 401 `{"detail": "Invalid token."}`, as Django REST framework answers by default.
    Unauthorized,
}

/// The key of the device list in `/api/2.0/devices/` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKey {
    /// `"Devices"`, as in the swagger.
    Devices,
    /// `"devices"`, as in other Device42 material.
    LowerDevices,
}

impl ListKey {
    /// The key as it appears in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKey::Devices => "Devices",
            ListKey::LowerDevices => "devices",
        }
    }
}

/// Inventory changes made while a client pages, so that limit/offset paging skips or repeats rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drift {
    /// Devices added (ids above the current maximum) after each devices list request.
    pub inserts_per_page: usize,
    /// Devices removed (the lowest ids, so later offsets shift) after each devices list request.
    pub deletes_per_page: usize,
    /// How many of the next devices list requests are followed by these changes.
    pub pages: u32,
}

/// Steady churn while a client pages, as autodiscovery makes on a large appliance during a
/// multi-minute pull: single deletions and additions spread over the devices list requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Churn {
    /// One device removed after every `delete_every`-th devices list request (0: none). It is
    /// drawn, from a generator seeded with the simulator's seed, among the devices listed before
    /// the request's offset, so that the offsets of later pages shift (any device at offset 0).
    pub delete_every: u32,
    /// One device added, above every id used so far, after every `add_every`-th devices list
    /// request (0: none).
    pub add_every: u32,
    /// How many of the next devices list requests churn follows.
    pub requests: u32,
}
