//! Typed, validated settings: the only code that reads the config file and the environment.
//!
//! Settings come from a TOML file and `D42SYNC_*` environment overrides (sections joined by `__`,
//! e.g. `D42SYNC_DEVICE42__BASE_URL`). Every value is checked here; a bad one is reported as a
//! [`ConfigError`] naming its key, which the binary turns into exit code 78.

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use secrecy::SecretString;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The environment variable that names the config file; it is not a setting itself.
pub const CONFIG_PATH_ENV: &str = "D42SYNC_CONFIG";

/// `D42SYNC_*` variables that are not settings: the config path and the crash tests' failpoint.
const NOT_SETTINGS: &[&str] = &[CONFIG_PATH_ENV, "D42SYNC_FAILPOINT"];

/// Where the config file is looked for when neither `--config` nor `$D42SYNC_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/d42sync/d42sync.toml";

/// A setting that is missing or invalid, with the key that names it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The dotted key (`device42.base_url`), or the file for errors in the file as a whole.
    pub key: String,
    /// What is wrong, lowercase, without the value when the value is a secret.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every setting of the service, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How to reach and authenticate against the Device42 appliance.
    pub device42: Device42Settings,
    /// Where the SQLite database lives.
    pub database: DatabaseSettings,
    /// The device pull job.
    pub devices: DevicesSettings,
    /// The building push job.
    pub buildings: BuildingsSettings,
    /// Log format and level.
    pub log: LogSettings,
    /// The optional Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// Warnings found while loading (an inline secret, insecure TLS), logged once telemetry is up.
    pub warnings: Vec<String>,
}

/// The `[device42]` section.
#[derive(Debug, Clone)]
pub struct Device42Settings {
    /// The appliance, e.g. `https://d42.example.com`; API paths are joined onto it.
    pub base_url: Url,
    /// The API client's key; secret, because with the secret key it yields tokens.
    pub client_key: SecretString,
    /// The API client's secret key, from systemd credentials, a file, or (warned) inline; only
    /// commands that call Device42 need it.
    pub secret_key: SecretKey,
    /// PEM certificates to trust in addition to the system store (private-CA appliances).
    pub ca_pem: Option<Vec<u8>>,
    /// Skip certificate verification; only ever on explicit request, with a warning.
    pub insecure_skip_tls_verify: bool,
    /// Bound on establishing a TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Bound on a whole request, response body included.
    pub request_timeout: Duration,
    /// Retries per request for retryable failures.
    pub max_retries: u32,
    /// First backoff step between retries of a request.
    pub retry_base: Duration,
    /// Longest backoff step between retries of a request.
    pub retry_max: Duration,
    /// The longest `Retry-After` that is honoured; longer ones are capped to this.
    pub max_retry_after: Duration,
    /// A response body larger than this is refused (a runaway or hostile page).
    pub max_page_bytes: u64,
    /// Failed calls in a row (after their retries) that pause calls to Device42; 0: never.
    pub breaker_failures: u32,
    /// While paused, one call is let through as a probe this often.
    pub breaker_probe_interval: Duration,
}

/// The secret key as loading found it. Commands that never call Device42 (`status`, `migrate`,
/// `requeue`, `enqueue-building`, `check-config` without `--connect`) work without it, so an
/// administrator's shell needs no access to it; the others ask with [`SecretKey::get`], which
/// turns a missing or refused secret into the config error it is.
#[derive(Debug, Clone)]
pub enum SecretKey {
    /// Read and accepted.
    Loaded(SecretString),
    /// Not available to this process, and why.
    Unavailable {
        /// The key to name in the error.
        key: String,
        /// Why, as [`ConfigError::message`] says it.
        message: String,
        /// Not configured for, or not readable by, this process (an administrator's shell); the
        /// service may still have it. A file that is missing, empty or too open is not this.
        out_of_reach: bool,
    },
}

impl SecretKey {
    /// The secret, or the config error that kept it from being read.
    pub fn get(&self) -> Result<&SecretString, ConfigError> {
        match self {
            SecretKey::Loaded(s) => Ok(s),
            SecretKey::Unavailable { key, message, .. } => {
                Err(ConfigError::new(key.clone(), message.clone()))
            }
        }
    }

    fn unavailable(e: ConfigError, out_of_reach: bool) -> Self {
        SecretKey::Unavailable {
            key: e.key,
            message: e.message,
            out_of_reach,
        }
    }
}

/// The `[database]` section.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// The SQLite file; its directory must exist.
    pub path: PathBuf,
}

/// The `[devices]` section.
#[derive(Debug, Clone)]
pub struct DevicesSettings {
    /// When the pull runs.
    pub schedule: Schedule,
    /// The list endpoint pulled, `/api/2.0/devices/` by default.
    pub endpoint: String,
    /// Columns asked for with `include_cols=` on a v2 endpoint, [`DEFAULT_INCLUDE_COLS`] unless
    /// set: v2 items are brief without them, leaving most typed columns NULL.
    pub include_cols: Vec<String>,
    /// Items per page (`limit`); Device42 caps it at 1000.
    pub page_size: u32,
    /// Pages in flight at once.
    pub concurrency: usize,
    /// A pull that would remove more than this fraction of the stored devices is held.
    pub max_delete_fraction: f64,
    /// How long `device_changes` rows are kept.
    pub keep_changes: Duration,
    /// How often a pull whose pages shifted while paging is started over before it fails.
    pub max_drift_retries: u32,
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
#[derive(Debug, Clone)]
pub struct BuildingsSettings {
    /// When the push runs.
    pub schedule: Schedule,
    /// Rows claimed per pass.
    pub batch_size: u32,
    /// POSTs in flight at once.
    pub concurrency: usize,
    /// Attempts before a row is `dead`.
    pub max_attempts: u32,
    /// First backoff step of a failed row.
    pub retry_base: Duration,
    /// Longest backoff of a failed row.
    pub retry_max: Duration,
    /// How long `done` rows are kept.
    pub keep_done: Duration,
    /// How long a stopping daemon waits for POSTs in flight.
    pub stop_grace: Duration,
}

/// The `[log]` section.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// JSON lines for the journal, or text for people.
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `d42sync=trace`, ...
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// The `[metrics]` section.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Where `/metrics` and `/healthz` are served; `None` when off.
    pub listen: Option<SocketAddr>,
}

/// A validated cron schedule, evaluated in UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression with seconds (6 fields), as the scheduler takes it.
    pub expr: String,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses a 6-field (with seconds) or 5-field cron expression.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        let expr = match expr.split(' ').count() {
            5 => format!("0 {expr}"),
            6 => expr,
            n => return Err(format!("cron needs 5 or 6 fields, got {n}")),
        };
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&expr)
            .map_err(|e| format!("invalid cron expression: {}", e.to_string().to_lowercase()))?;
        Ok(Self { expr, cron })
    }

    /// The parsed expression, which the scheduler runs on as it is (not parsed again).
    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }

    /// The next firing strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The typical period between firings, from the next two occurrences.
    pub fn period(&self) -> Duration {
        let now = chrono::Utc::now();
        let a = self.next_after(now);
        let b = a.and_then(|a| self.next_after(a));
        match (a, b) {
            (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
            _ => Duration::from_secs(60),
        }
    }
}

/// Every key the file and the environment may set, so that a misspelt one is refused by name.
const KNOWN_KEYS: &[&str] = &[
    "device42.base_url",
    "device42.client_key",
    "device42.secret_key",
    "device42.secret_key_file",
    "device42.ca_file",
    "device42.insecure_skip_tls_verify",
    "device42.connect_timeout",
    "device42.request_timeout",
    "device42.max_retries",
    "device42.max_retry_after",
    "device42.retry_base",
    "device42.retry_max",
    "device42.max_page_bytes",
    "device42.breaker_failures",
    "device42.breaker_probe_interval",
    "database.path",
    "devices.schedule",
    "devices.endpoint",
    "devices.include_cols",
    "devices.page_size",
    "devices.concurrency",
    "devices.max_delete_fraction",
    "devices.keep_changes",
    "devices.max_drift_retries",
    "buildings.schedule",
    "buildings.batch_size",
    "buildings.concurrency",
    "buildings.max_attempts",
    "buildings.retry_base",
    "buildings.retry_max",
    "buildings.keep_done",
    "buildings.stop_grace",
    "log.format",
    "log.level",
    "metrics.listen",
];

/// Loads settings from `path` and the process environment.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    load_with_env(path, &env)
}

/// Loads settings from `path` and the given environment (tests pass their own).
pub fn load_with_env(path: &Path, env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
    let file_key = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            &file_key,
            format!("cannot read config file: {}", io_reason(&e)),
        )
    })?;
    let overrides: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("D42SYNC_") && !NOT_SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if overrides.contains_key("D42SYNC_DEVICE42__SECRET_KEY") {
        return Err(ConfigError::new(
            "device42.secret_key",
            "is not taken from the environment; use secret_key_file or systemd credentials",
        ));
    }
    let cfg = Config::builder()
        .add_source(File::from_str(&text, FileFormat::Toml))
        .add_source(
            Environment::with_prefix("D42SYNC")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("devices.include_cols")
                .source(Some(overrides.into_iter().collect())),
        )
        .build()
        .map_err(|e| ConfigError::new(&file_key, e.to_string().to_lowercase()))?;
    reject_unknown_keys(&cfg)?;
    Reader { cfg: &cfg, env }.settings()
}

fn reject_unknown_keys(cfg: &Config) -> Result<(), ConfigError> {
    let known: BTreeSet<&str> = KNOWN_KEYS.iter().copied().collect();
    let sections: BTreeSet<&str> = KNOWN_KEYS
        .iter()
        .filter_map(|k| k.split('.').next())
        .collect();
    let top = cfg
        .clone()
        .try_deserialize::<HashMap<String, Value>>()
        .map_err(|e| ConfigError::new("config", e.to_string().to_lowercase()))?;
    for (section, value) in top {
        if !sections.contains(section.as_str()) {
            return Err(ConfigError::new(section, "unknown section"));
        }
        let ValueKind::Table(table) = value.kind else {
            return Err(ConfigError::new(section, "must be a table"));
        };
        for key in table.keys() {
            let full = format!("{section}.{key}");
            if !known.contains(full.as_str()) {
                return Err(ConfigError::new(full, "unknown key"));
            }
        }
    }
    Ok(())
}

/// Reads one key at a time so that every error names its key.
struct Reader<'a> {
    cfg: &'a Config,
    env: &'a HashMap<String, String>,
}

impl Reader<'_> {
    fn value(&self, key: &str) -> Option<Value> {
        self.cfg
            .get::<Value>(key)
            .ok()
            .filter(|v| !matches!(v.kind, ValueKind::Nil))
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => v
                .into_string()
                .map(Some)
                .map_err(|_| ConfigError::new(key, "must be a string")),
        }
    }

    fn required(&self, key: &str) -> Result<String, ConfigError> {
        match self.string(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ConfigError::new(key, "is required")),
        }
    }

    fn string_or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.string(key)?.unwrap_or_else(|| default.to_string()))
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.value(key) {
            None => Ok(default),
            Some(v) => v
                .into_bool()
                .map_err(|_| ConfigError::new(key, "must be true or false")),
        }
    }

    fn int_in(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n = match self.value(key) {
            None => default,
            Some(v) => v
                .into_int()
                .map_err(|_| ConfigError::new(key, "must be a whole number"))?,
        };
        if n < min || n > max {
            return Err(ConfigError::new(
                key,
                format!("must be between {min} and {max}, got {n}"),
            ));
        }
        Ok(n)
    }

    fn duration_or(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        let text = self.string_or(key, default)?;
        let d = crate::time::parse_duration(&text).map_err(|e| ConfigError::new(key, e))?;
        if d.is_zero() {
            return Err(ConfigError::new(key, "must be longer than zero"));
        }
        Ok(d)
    }

    fn schedule_or(&self, key: &str, default: &str) -> Result<Schedule, ConfigError> {
        Schedule::parse(&self.string_or(key, default)?).map_err(|e| ConfigError::new(key, e))
    }

    fn settings(&self) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        let device42 = self.device42(&mut warnings)?;
        let database = DatabaseSettings {
            path: self.database_path()?,
        };
        let devices = self.devices()?;
        let buildings = self.buildings()?;
        let log = self.log()?;
        let metrics = match self.string_or("metrics.listen", "")?.trim() {
            "" => MetricsSettings { listen: None },
            s => MetricsSettings {
                listen: Some(s.parse().map_err(|_| {
                    ConfigError::new(
                        "metrics.listen",
                        format!("must be an address like 127.0.0.1:9142, got {s:?}"),
                    )
                })?),
            },
        };
        Ok(Settings {
            device42,
            database,
            devices,
            buildings,
            log,
            metrics,
            warnings,
        })
    }

    fn device42(&self, warnings: &mut Vec<String>) -> Result<Device42Settings, ConfigError> {
        let raw_url = self.required("device42.base_url")?;
        let base_url = Url::parse(raw_url.trim())
            .map_err(|e| ConfigError::new("device42.base_url", format!("invalid url: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
            return Err(ConfigError::new(
                "device42.base_url",
                "must be an http(s) url with a host",
            ));
        }
        // The url is not quoted back: whatever sits before the `@` is a credential.
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(ConfigError::new(
                "device42.base_url",
                "must not carry credentials (user:password@); the API client key and secret authenticate",
            ));
        }
        // The token request carries key:secret in its Basic header, and every call a token:
        // plain http is for a simulator on this host only.
        if base_url.scheme() == "http" && !is_loopback(&base_url) {
            return Err(ConfigError::new(
                "device42.base_url",
                "plain http would send the API credentials in clear; use https (http is allowed to loopback only)",
            ));
        }
        let client_key =
            SecretString::from(self.required("device42.client_key")?.trim().to_string());
        let secret_key = self.secret_key(warnings)?;
        let ca_pem = match self.string("device42.ca_file")? {
            Some(p) if !p.trim().is_empty() => Some(read_ca_file(Path::new(p.trim()))?),
            _ => None,
        };
        let insecure_skip_tls_verify = self.bool_or("device42.insecure_skip_tls_verify", false)?;
        if insecure_skip_tls_verify {
            warnings.push("device42.insecure_skip_tls_verify is true: the appliance's certificate is not checked".into());
        }
        Ok(Device42Settings {
            base_url,
            client_key,
            secret_key,
            ca_pem,
            insecure_skip_tls_verify,
            connect_timeout: self.duration_or("device42.connect_timeout", "10s")?,
            request_timeout: self.duration_or("device42.request_timeout", "60s")?,
            max_retries: self.int_in("device42.max_retries", 5, 0, 100)? as u32,
            max_retry_after: self.duration_or("device42.max_retry_after", "10m")?,
            retry_base: self.duration_or("device42.retry_base", "1s")?,
            retry_max: self.duration_or("device42.retry_max", "30s")?,
            max_page_bytes: self.int_in("device42.max_page_bytes", 64 << 20, 1024, 1 << 34)? as u64,
            breaker_failures: self.int_in("device42.breaker_failures", 3, 0, 1000)? as u32,
            breaker_probe_interval: self.duration_or("device42.breaker_probe_interval", "60s")?,
        })
    }

    /// Finds the secret key: systemd's credential when the unit handed one over, else
    /// `secret_key_file`, else an inline `secret_key` (warned). Setting both of the latter is an
    /// error at once; anything that keeps the secret from being read is kept for
    /// [`SecretKey::get`].
    fn secret_key(&self, warnings: &mut Vec<String>) -> Result<SecretKey, ConfigError> {
        let file = self
            .string("device42.secret_key_file")?
            .filter(|s| !s.trim().is_empty());
        let inline = self
            .string("device42.secret_key")?
            .filter(|s| !s.is_empty());
        if file.is_some() && inline.is_some() {
            return Err(ConfigError::new(
                "device42.secret_key",
                "set either secret_key or secret_key_file, not both",
            ));
        }
        let credential = self
            .env
            .get("CREDENTIALS_DIRECTORY")
            .map(|dir| Path::new(dir).join("secret_key"))
            .filter(|p| p.exists());
        let read = match (credential, file, inline) {
            (Some(path), _, _) => read_secret_file("device42.secret_key_file", &path, false),
            (None, Some(path), _) => {
                read_secret_file("device42.secret_key_file", Path::new(path.trim()), true)
            }
            (None, None, Some(secret)) => {
                warnings.push("device42.secret_key is set inline in the config file; prefer secret_key_file or systemd credentials".into());
                Ok(SecretString::from(secret))
            }
            (None, None, None) => Err(SecretError::Denied(ConfigError::new(
                "device42.secret_key_file",
                "no secret key: set secret_key_file, or run under systemd with LoadCredential=secret_key:...",
            ))),
        };
        Ok(match read {
            Ok(secret) => SecretKey::Loaded(secret),
            Err(SecretError::Invalid(e)) => SecretKey::unavailable(e, false),
            Err(SecretError::Denied(e)) => SecretKey::unavailable(e, true),
        })
    }

    fn database_path(&self) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(
            self.string_or("database.path", "/var/lib/d42sync/inventory.db")?
                .trim(),
        );
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(ConfigError::new(
                "database.path",
                format!("directory {} does not exist", dir.display()),
            ));
        }
        if !access_writable(&dir) {
            return Err(ConfigError::new(
                "database.path",
                format!("directory {} is not writable", dir.display()),
            ));
        }
        Ok(path)
    }

    fn devices(&self) -> Result<DevicesSettings, ConfigError> {
        let endpoint = self
            .string_or("devices.endpoint", "/api/2.0/devices/")?
            .trim()
            .to_string();
        if !endpoint.starts_with("/api/") || !endpoint.ends_with('/') {
            return Err(ConfigError::new(
                "devices.endpoint",
                "must be an api path like /api/2.0/devices/ (with the trailing slash)",
            ));
        }
        let include_cols = match self.value("devices.include_cols") {
            None => DEFAULT_INCLUDE_COLS.iter().map(|c| c.to_string()).collect(),
            Some(v) => match v.kind {
                ValueKind::String(s) => split_cols(&s),
                _ => v
                    .into_array()
                    .map_err(|_| {
                        ConfigError::new("devices.include_cols", "must be a list of column names")
                    })?
                    .into_iter()
                    .map(|c| c.into_string().map(|s| s.trim().to_string()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        ConfigError::new("devices.include_cols", "must be a list of column names")
                    })?,
            },
        };
        if include_cols.iter().any(|c| c.is_empty()) {
            return Err(ConfigError::new(
                "devices.include_cols",
                "has an empty column name",
            ));
        }
        if let Some(bad) = include_cols.iter().find(|c| c.contains(',')) {
            return Err(ConfigError::new(
                "devices.include_cols",
                format!("column name {bad:?} holds a comma; list each column as its own string"),
            ));
        }
        if let Some(bad) = include_cols
            .iter()
            .find(|c| !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        {
            return Err(ConfigError::new(
                "devices.include_cols",
                format!("invalid column name {bad:?}"),
            ));
        }
        let fraction = match self.value("devices.max_delete_fraction") {
            None => 0.5,
            Some(v) => v
                .into_float()
                .map_err(|_| ConfigError::new("devices.max_delete_fraction", "must be a number"))?,
        };
        if !(0.0..=1.0).contains(&fraction) {
            return Err(ConfigError::new(
                "devices.max_delete_fraction",
                "must be between 0 and 1",
            ));
        }
        Ok(DevicesSettings {
            schedule: self.schedule_or("devices.schedule", "0 */15 * * * *")?,
            endpoint,
            include_cols,
            page_size: self.int_in("devices.page_size", 1000, 1, 1000)? as u32,
            concurrency: self.int_in("devices.concurrency", 4, 1, 64)? as usize,
            max_delete_fraction: fraction,
            keep_changes: self.duration_or("devices.keep_changes", "90d")?,
            max_drift_retries: self.int_in("devices.max_drift_retries", 3, 0, 100)? as u32,
        })
    }

    fn buildings(&self) -> Result<BuildingsSettings, ConfigError> {
        let retry_base = self.duration_or("buildings.retry_base", "2s")?;
        let retry_max = self.duration_or("buildings.retry_max", "1h")?;
        if retry_max < retry_base {
            return Err(ConfigError::new(
                "buildings.retry_max",
                "must not be shorter than buildings.retry_base",
            ));
        }
        Ok(BuildingsSettings {
            schedule: self.schedule_or("buildings.schedule", "*/30 * * * * *")?,
            batch_size: self.int_in("buildings.batch_size", 100, 1, 10_000)? as u32,
            concurrency: self.int_in("buildings.concurrency", 4, 1, 64)? as usize,
            max_attempts: self.int_in("buildings.max_attempts", 10, 1, 1000)? as u32,
            retry_base,
            retry_max,
            keep_done: self.duration_or("buildings.keep_done", "30d")?,
            stop_grace: self.duration_or("buildings.stop_grace", "15s")?,
        })
    }

    fn log(&self) -> Result<LogSettings, ConfigError> {
        let format = match self.string_or("log.format", "json")?.trim() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(ConfigError::new(
                    "log.format",
                    format!("must be json or text, got {other:?}"),
                ));
            }
        };
        let level = self.string_or("log.level", "info")?.trim().to_string();
        tracing_subscriber::EnvFilter::builder()
            .parse(&level)
            .map_err(|e| ConfigError::new("log.level", format!("invalid filter: {e}")))?;
        Ok(LogSettings { format, level })
    }
}

fn split_cols(s: &str) -> Vec<String> {
    s.split(',').map(|c| c.trim().to_string()).collect()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

/// Why a secret file was not read.
enum SecretError {
    /// Not configured for, or not readable by, this process (the service may have it).
    Denied(ConfigError),
    /// Missing, empty, or too open.
    Invalid(ConfigError),
}

/// Reads a secret file, refusing one that others than its owner and group can read, that its
/// group can write, or that someone other than root or this user owns (unless systemd provided
/// it). Group read is allowed so that one file, `root:d42sync` mode 0640, serves the unit and an
/// administrator in the service's group alike.
fn read_secret_file(key: &str, path: &Path, check_mode: bool) -> Result<SecretString, SecretError> {
    let io_error = |e: std::io::Error| {
        let error = ConfigError::new(
            key,
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        );
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => SecretError::Denied(error),
            _ => SecretError::Invalid(error),
        }
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    if check_mode {
        let mode = meta.mode() & 0o777;
        if mode & 0o027 != 0 {
            return Err(SecretError::Invalid(ConfigError::new(
                key,
                format!(
                    "{} is accessible by others or writable by its group (mode {mode:04o}); chmod 0600 or 0640 it",
                    path.display()
                ),
            )));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid && meta.uid() != 0 {
            return Err(SecretError::Invalid(ConfigError::new(
                key,
                format!(
                    "{} is owned by uid {}, neither root nor the service user (uid {euid})",
                    path.display(),
                    meta.uid()
                ),
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(io_error)?;
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(SecretError::Invalid(ConfigError::new(
            key,
            format!("{} is empty", path.display()),
        )));
    }
    Ok(SecretString::from(secret))
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError::new(
            "device42.ca_file",
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        )
    })?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .filter(|c| c.is_ok())
        .count();
    if count == 0 {
        return Err(ConfigError::new(
            "device42.ca_file",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(pem)
}

fn access_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests;
