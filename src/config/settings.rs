//! The shape of the settings: one serde structure, each section refusing keys it does not have,
//! every default in the section's `Default` (or, for `[device42]`, which has required keys, in
//! [`defaults`]), and each value read through its check in [`super::fields`].

use super::fields;
use super::{Schedule, SecretKey};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Every setting of the service, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How to reach and authenticate against the Device42 appliance.
    pub device42: Device42Settings,
    /// Where the SQLite database lives.
    #[serde(default)]
    pub database: DatabaseSettings,
    /// The device pull job.
    #[serde(default)]
    pub devices: DevicesSettings,
    /// The building push job.
    #[serde(default)]
    pub buildings: BuildingsSettings,
    /// Log format and level.
    #[serde(default)]
    pub log: LogSettings,
    /// The optional Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Warnings found while loading (an inline secret, insecure TLS), logged once telemetry is up.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The `[device42]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device42Settings {
    /// The appliance, e.g. `https://d42.example.com`; API paths are joined onto it.
    #[serde(deserialize_with = "fields::base_url")]
    pub base_url: Url,
    /// The API client's key; secret, because with the secret key it yields tokens.
    #[serde(deserialize_with = "fields::client_key")]
    pub client_key: SecretString,
    /// The API client's secret key, from systemd credentials, a file, or (warned) inline; only
    /// commands that call Device42 need it. Found after reading, from the next two fields.
    #[serde(skip, default = "SecretKey::unread")]
    pub secret_key: SecretKey,
    /// The inline `secret_key`, discouraged: the file is readable by more than the secret should be.
    #[serde(
        rename = "secret_key",
        default,
        deserialize_with = "fields::inline_secret"
    )]
    pub(super) inline_secret_key: Option<SecretString>,
    /// The file holding the secret key.
    #[serde(default, deserialize_with = "fields::optional_path")]
    pub(super) secret_key_file: Option<PathBuf>,
    /// PEM certificates to trust in addition to the system store (private-CA appliances), read
    /// from `ca_file` after reading.
    #[serde(skip)]
    pub ca_pem: Option<Vec<u8>>,
    /// The file holding those certificates.
    #[serde(default, deserialize_with = "fields::optional_path")]
    pub(super) ca_file: Option<PathBuf>,
    /// Skip certificate verification; only ever on explicit request, with a warning.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// Bound on establishing a TCP + TLS connection.
    #[serde(
        default = "defaults::connect_timeout",
        deserialize_with = "fields::duration"
    )]
    pub connect_timeout: Duration,
    /// Bound on a whole request, response body included.
    #[serde(
        default = "defaults::request_timeout",
        deserialize_with = "fields::duration"
    )]
    pub request_timeout: Duration,
    /// Retries per request for retryable failures.
    #[serde(
        default = "defaults::max_retries",
        deserialize_with = "fields::between::<_, _, 0, 100>"
    )]
    pub max_retries: u32,
    /// First backoff step between retries of a request.
    #[serde(
        default = "defaults::retry_base",
        deserialize_with = "fields::duration"
    )]
    pub retry_base: Duration,
    /// Longest backoff step between retries of a request.
    #[serde(default = "defaults::retry_max", deserialize_with = "fields::duration")]
    pub retry_max: Duration,
    /// The longest `Retry-After` that is honoured; longer ones are capped to this.
    #[serde(
        default = "defaults::max_retry_after",
        deserialize_with = "fields::duration"
    )]
    pub max_retry_after: Duration,
    /// A response body larger than this is refused (a runaway or hostile page); at most 16 GiB.
    #[serde(
        default = "defaults::max_page_bytes",
        deserialize_with = "fields::between::<_, _, 1024, 17_179_869_184>"
    )]
    pub max_page_bytes: u64,
    /// Failed calls in a row (after their retries) that pause calls to Device42; 0: never.
    #[serde(
        default = "defaults::breaker_failures",
        deserialize_with = "fields::between::<_, _, 0, 1000>"
    )]
    pub breaker_failures: u32,
    /// While paused, one call is let through as a probe this often.
    #[serde(
        default = "defaults::breaker_probe_interval",
        deserialize_with = "fields::duration"
    )]
    pub breaker_probe_interval: Duration,
}

/// The defaults of `[device42]`, whose required keys leave it without a `Default`.
mod defaults {
    use std::time::Duration;

    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn request_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub(super) fn max_retries() -> u32 {
        5
    }
    pub(super) fn retry_base() -> Duration {
        Duration::from_secs(1)
    }
    pub(super) fn retry_max() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn max_retry_after() -> Duration {
        Duration::from_secs(10 * 60)
    }
    pub(super) fn max_page_bytes() -> u64 {
        64 << 20
    }
    pub(super) fn breaker_failures() -> u32 {
        3
    }
    pub(super) fn breaker_probe_interval() -> Duration {
        Duration::from_secs(60)
    }
}

/// The `[database]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The SQLite file; its directory must exist.
    #[serde(deserialize_with = "fields::path")]
    pub path: PathBuf,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/d42sync/inventory.db"),
        }
    }
}

/// The `[devices]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesSettings {
    /// When the pull runs.
    pub schedule: Schedule,
    /// The list endpoint pulled, `/api/2.0/devices/` by default.
    #[serde(deserialize_with = "fields::api_path")]
    pub endpoint: String,
    /// Columns asked for with `include_cols=` on a v2 endpoint, [`DEFAULT_INCLUDE_COLS`] unless
    /// set: v2 items are brief without them, leaving most typed columns NULL.
    #[serde(deserialize_with = "fields::columns")]
    pub include_cols: Vec<String>,
    /// Items per page (`limit`); Device42 caps it at 1000.
    #[serde(deserialize_with = "fields::between::<_, _, 1, 1000>")]
    pub page_size: u32,
    /// Pages in flight at once.
    #[serde(deserialize_with = "fields::between::<_, _, 1, 64>")]
    pub concurrency: usize,
    /// A pull that would remove more than this fraction of the stored devices is held.
    #[serde(deserialize_with = "fields::fraction")]
    pub max_delete_fraction: f64,
    /// How long `device_changes` rows are kept.
    #[serde(deserialize_with = "fields::duration")]
    pub keep_changes: Duration,
    /// How often a pull is started over whose pages shifted faster than it could repair them
    /// (`jobs::pull` repairs a shifted range without starting over) before it fails.
    #[serde(deserialize_with = "fields::between::<_, _, 0, 100>")]
    pub max_drift_retries: u32,
    /// Between incremental pulls, a full pull at least this often: an edit need not move a
    /// device's edit date, and only a full pull sees every record.
    #[serde(deserialize_with = "fields::duration")]
    pub full_every: Duration,
}

impl Default for DevicesSettings {
    fn default() -> Self {
        Self {
            schedule: Schedule::parse("0 */15 * * * *").expect("a valid default schedule"),
            endpoint: "/api/2.0/devices/".into(),
            include_cols: DEFAULT_INCLUDE_COLS.iter().map(|c| c.to_string()).collect(),
            page_size: 1000,
            concurrency: 4,
            max_delete_fraction: 0.5,
            keep_changes: Duration::from_secs(90 * 86_400),
            max_drift_retries: 3,
            full_every: Duration::from_secs(86_400),
        }
    }
}

/// The v2 columns asked for by default: every typed column of `devices` (`os_version_no` is the
/// fallback of `os_version`), and what reports ask for first, the child lists included. v2 has
/// no IP or MAC lists; those come with the v1 endpoint's full records.
pub const DEFAULT_INCLUDE_COLS: &[&str] = &[
    "in_service",
    "service_level",
    "customer",
    "hardware",
    "os_name",
    "os_version",
    "os_version_no",
    "os_architecture",
    "total_cpus",
    "core_per_cpu",
    "ram",
    "building_id",
    "rack_id",
    "notes",
    "first_added",
    "last_updated",
    "tags",
    "aliases",
    "custom_fields",
];

/// The `[buildings]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildingsSettings {
    /// When the push runs.
    pub schedule: Schedule,
    /// Rows claimed per pass.
    #[serde(deserialize_with = "fields::between::<_, _, 1, 10_000>")]
    pub batch_size: u32,
    /// POSTs in flight at once.
    #[serde(deserialize_with = "fields::between::<_, _, 1, 64>")]
    pub concurrency: usize,
    /// Attempts before a row is `dead`.
    #[serde(deserialize_with = "fields::between::<_, _, 1, 1000>")]
    pub max_attempts: u32,
    /// First backoff step of a failed row.
    #[serde(deserialize_with = "fields::duration")]
    pub retry_base: Duration,
    /// Longest backoff of a failed row; not shorter than `retry_base`.
    #[serde(deserialize_with = "fields::duration")]
    pub retry_max: Duration,
    /// How long `done` rows are kept.
    #[serde(deserialize_with = "fields::duration")]
    pub keep_done: Duration,
    /// How long a stopping daemon waits for POSTs in flight.
    #[serde(deserialize_with = "fields::duration")]
    pub stop_grace: Duration,
}

impl Default for BuildingsSettings {
    fn default() -> Self {
        Self {
            schedule: Schedule::parse("*/30 * * * * *").expect("a valid default schedule"),
            batch_size: 100,
            concurrency: 4,
            max_attempts: 10,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(3600),
            keep_done: Duration::from_secs(30 * 86_400),
            stop_grace: Duration::from_secs(15),
        }
    }
}

/// The `[log]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// JSON lines for the journal, or text for people.
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `d42sync=trace`, ...
    #[serde(deserialize_with = "fields::log_filter")]
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// The `[metrics]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `/metrics` and `/healthz` are served; `None` when off.
    #[serde(deserialize_with = "fields::listen")]
    pub listen: Option<SocketAddr>,
}
