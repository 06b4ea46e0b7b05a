//! The service's metrics: a [`Metrics`] handle that the daemon (or a command) creates once and
//! passes to whoever records (the client, its breaker, the jobs, the scheduler), rendered by
//! prometheus-client in the OpenMetrics text format for `/metrics`.
//!
//! prometheus-client appends `_total` to counter samples, so a counter is registered as
//! `d42sync_runs` and scraped as `d42sync_runs_total`; the run durations are one histogram,
//! `d42sync_run_duration_seconds`, whose `_sum` and `_count` samples are the series the rules
//! and the dashboard read.

use crate::store::runs::RunTotal;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The content type of [`Metrics::render`]'s text, for the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the run duration buckets: a push of a few rows takes well under a
/// second, a pull of a large inventory minutes.
const RUN_SECONDS_BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The queue statuses whose depth is exported, zero when no row has them.
const QUEUE_STATUSES: [&str; 4] = ["pending", "sending", "done", "dead"];

/// A handle on every series the service exports. Cheap to clone; clones record into the same
/// series, and two handles made with [`Metrics::default`] share nothing.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Series>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// The registry and the series registered in it (clones of the registered metrics share their
/// values with them).
struct Series {
    registry: Registry,
    /// HTTP requests to Device42 by status class ("2xx", ..., "error" for no answer).
    http_requests: Family<ClassLabel, Counter>,
    /// Tokens obtained.
    token_refreshes: Counter,
    /// Unix time at which the current token expires (0: none yet); exported as time left.
    token_expires_at: Arc<AtomicI64>,
    /// Job runs by (job, outcome).
    runs: Family<RunLabels, Counter>,
    /// Durations of finished runs by job.
    run_seconds: Family<JobLabel, Histogram, fn() -> Histogram>,
    /// Unix time of the last successful run by job.
    last_success: Family<JobLabel, Gauge>,
    /// Scheduler ticks skipped because the job was still running, by job.
    skipped: Family<JobLabel, Counter>,
    /// Devices stored after the last pull.
    devices_stored: Gauge,
    /// 1 while Device42 answers, 0 while the breaker holds calls.
    device42_up: Gauge,
    /// Times the breaker opened.
    breaker_opened: Counter,
    /// Calls the open breaker refused without sending them.
    calls_refused: Counter,
    /// Queue rows by status, refreshed after each push.
    queue_depth: Family<StatusLabel, Gauge>,
}

fn run_histogram() -> Histogram {
    Histogram::new(RUN_SECONDS_BUCKETS)
}

/// A family's name after the `d42sync_` prefix (a counter's samples add `_total`), and its help.
type Described = (&'static str, &'static str);

const HTTP_REQUESTS: Described = ("http_requests", "HTTP requests to Device42 by status class");
const TOKEN_REFRESHES: Described = ("token_refreshes", "Device42 API tokens obtained");
const RUNS: Described = ("runs", "Job runs by job and outcome");
const RUN_SECONDS: Described = ("run_duration_seconds", "Seconds spent in job runs");
const LAST_SUCCESS: Described = (
    "last_success_timestamp_seconds",
    "Unix time of the last successful run",
);
const SKIPPED: Described = (
    "skipped_ticks",
    "Ticks skipped because the job was still running",
);
const DEVICES: Described = ("devices_stored", "Devices in the local inventory");
const DEVICE42_UP: Described = (
    "device42_up",
    "1 while Device42 answers, 0 while calls are paused after repeated failures",
);
const BREAKER_OPENED: Described = (
    "breaker_opened",
    "Times calls to Device42 were paused after repeated failures",
);
const CALLS_REFUSED: Described = (
    "calls_refused",
    "Calls to Device42 not sent because calls were paused",
);
const QUEUE_DEPTH: Described = ("queue_depth", "Building queue rows by status");

/// Registers `metric` in `registry` as described; the clone returned shares its values.
fn add<M: Metric + Clone>(registry: &mut Registry, (name, help): Described, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Series {
    fn default() -> Self {
        let mut r = Registry::with_prefix("d42sync");
        let token_expires_at = Arc::<AtomicI64>::default();
        r.register_collector(Box::new(TokenExpiry(token_expires_at.clone())));
        Series {
            http_requests: add(&mut r, HTTP_REQUESTS, Family::default()),
            token_refreshes: add(&mut r, TOKEN_REFRESHES, Counter::default()),
            token_expires_at,
            runs: add(&mut r, RUNS, Family::default()),
            run_seconds: add(
                &mut r,
                RUN_SECONDS,
                Family::new_with_constructor(run_histogram),
            ),
            last_success: add(&mut r, LAST_SUCCESS, Family::default()),
            skipped: add(&mut r, SKIPPED, Family::default()),
            devices_stored: add(&mut r, DEVICES, Gauge::default()),
            device42_up: add(&mut r, DEVICE42_UP, Gauge::default()),
            breaker_opened: add(&mut r, BREAKER_OPENED, Counter::default()),
            calls_refused: add(&mut r, CALLS_REFUSED, Counter::default()),
            queue_depth: add(&mut r, QUEUE_DEPTH, Family::default()),
            registry: r,
        }
    }
}

/// `d42sync_token_expiry_seconds`: the time left on the current token, computed at each scrape
/// from the expiry the client recorded.
#[derive(Debug)]
struct TokenExpiry(Arc<AtomicI64>);

impl Collector for TokenExpiry {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let expires = self.0.load(Ordering::Relaxed);
        let left = if expires == 0 {
            0
        } else {
            (expires - chrono::Utc::now().timestamp()).max(0)
        };
        let gauge = ConstGauge::new(left);
        let metric = encoder.encode_descriptor(
            "token_expiry_seconds",
            "Seconds until the current token expires.",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

impl Metrics {
    /// Counts one HTTP exchange by its status (`None`: no answer).
    pub fn http_request(&self, status: Option<u16>) {
        let class = match status {
            Some(100..=199) => "1xx",
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
            None => "error",
        };
        self.inner
            .http_requests
            .get_or_create(&ClassLabel { class })
            .inc();
    }

    /// Counts a token obtained, which expires at `expires_at` (unix seconds).
    pub fn token_obtained(&self, expires_at: i64) {
        self.inner.token_refreshes.inc();
        self.inner
            .token_expires_at
            .store(expires_at, Ordering::Relaxed);
    }

    /// Counts a run by outcome, without a duration (a run that never started its work).
    pub fn run_counted(&self, job: &str, outcome: &str) {
        self.runs(job, outcome).inc();
    }

    /// Records a finished run.
    pub fn run_finished(&self, job: &str, outcome: &str, seconds: f64) {
        self.run_counted(job, outcome);
        self.inner
            .run_seconds
            .get_or_create(&job_label(job))
            .observe(seconds);
        if outcome == "ok" {
            self.set_last_success(job, chrono::Utc::now().timestamp());
        }
    }

    /// Starts the run counters and last-success times from the runs the database holds, so a
    /// restart does not reset them.
    pub fn restore(&self, totals: &[RunTotal]) {
        for total in totals {
            self.runs(&total.job, &total.status)
                .inc_by(total.runs.max(0) as u64);
            let finished = total
                .last_finished
                .as_deref()
                .and_then(crate::time::parse_iso);
            if let ("ok", Some(at)) = (total.status.as_str(), finished) {
                self.set_last_success(&total.job, at.timestamp());
            }
        }
    }

    /// Unix time of the last successful run of `job`.
    pub fn last_success(&self, job: &str) -> Option<i64> {
        self.inner
            .last_success
            .get(&job_label(job))
            .map(|g| g.get())
    }

    /// Counts a scheduler tick skipped because `job` was still running.
    pub fn tick_skipped(&self, job: &str) {
        self.inner.skipped.get_or_create(&job_label(job)).inc();
    }

    /// Replaces the queue depth gauges.
    pub fn set_queue_depth(&self, by_status: &BTreeMap<String, i64>) {
        for status in QUEUE_STATUSES {
            let depth = by_status.get(status).copied().unwrap_or(0);
            let label = StatusLabel {
                status: status.to_string(),
            };
            self.inner.queue_depth.get_or_create(&label).set(depth);
        }
    }

    /// Sets the number of devices in the local inventory.
    pub fn set_devices_stored(&self, devices: i64) {
        self.inner.devices_stored.set(devices);
    }

    /// The number of devices in the local inventory, as last set.
    pub fn devices_stored(&self) -> i64 {
        self.inner.devices_stored.get()
    }

    /// Sets whether Device42 answers (`false` while the breaker holds calls).
    pub fn set_device42_up(&self, up: bool) {
        self.inner.device42_up.set(i64::from(up));
    }

    /// Counts the breaker opening.
    pub fn breaker_opened(&self) {
        self.inner.breaker_opened.inc();
    }

    /// Counts a call the open breaker refused.
    pub fn call_refused(&self) {
        self.inner.calls_refused.inc();
    }

    /// The OpenMetrics text exposition of every series, served with [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    fn runs(&self, job: &str, outcome: &str) -> Counter {
        let labels = RunLabels {
            job: job.to_string(),
            outcome: outcome.to_string(),
        };
        self.inner.runs.get_or_create_owned(&labels)
    }

    fn set_last_success(&self, job: &str, at: i64) {
        self.inner
            .last_success
            .get_or_create(&job_label(job))
            .set(at);
    }
}

fn job_label(job: &str) -> JobLabel {
    JobLabel {
        job: job.to_string(),
    }
}

#[cfg(test)]
mod tests;
