//! Process-wide counters and gauges, rendered in the Prometheus text format for `/metrics`.
//!
//! Plain atomics and small maps: the service has a handful of series, so a metrics library
//! would add more than it saves.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// Every series the service exports.
#[derive(Default)]
pub struct Metrics {
    /// HTTP requests to Device42 by status class ("2xx", ..., "error" for no answer).
    http_requests: Mutex<BTreeMap<&'static str, u64>>,
    /// Tokens obtained.
    pub token_refreshes: AtomicU64,
    /// Unix time at which the current token expires (0: none yet).
    pub token_expires_at: AtomicI64,
    /// Job runs by (job, outcome).
    runs: Mutex<BTreeMap<(String, String), u64>>,
    /// Sum and count of run durations by job, for a summary.
    durations: Mutex<BTreeMap<String, (f64, u64)>>,
    /// Unix time of the last successful run by job.
    last_success: Mutex<BTreeMap<String, i64>>,
    /// Scheduler ticks skipped because the job was still running, by job.
    skipped: Mutex<BTreeMap<String, u64>>,
    /// Devices stored after the last pull.
    pub devices_stored: AtomicI64,
    /// 1 while Device42 answers, 0 while the breaker holds calls.
    pub device42_up: AtomicI64,
    /// Times the breaker opened.
    pub breaker_opened: AtomicU64,
    /// Calls the open breaker refused without sending them.
    pub calls_refused: AtomicU64,
    /// Queue rows by status, refreshed after each push.
    queue_depth: Mutex<BTreeMap<String, i64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        *lock(&self.http_requests).entry(class).or_default() += 1;
    }

    /// Counts a run by outcome, without a duration (a run that never started its work).
    pub fn run_counted(&self, job: &str, outcome: &str) {
        *lock(&self.runs)
            .entry((job.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// Records a finished run.
    pub fn run_finished(&self, job: &str, outcome: &str, seconds: f64) {
        self.run_counted(job, outcome);
        let mut d = lock(&self.durations);
        let e = d.entry(job.to_string()).or_default();
        e.0 += seconds;
        e.1 += 1;
        if outcome == "ok" {
            lock(&self.last_success).insert(job.to_string(), chrono::Utc::now().timestamp());
        }
    }

    /// Records a skipped tick.
    pub fn tick_skipped(&self, job: &str) {
        *lock(&self.skipped).entry(job.to_string()).or_default() += 1;
    }

    /// Replaces the queue depth gauges.
    pub fn set_queue_depth(&self, by_status: &BTreeMap<String, i64>) {
        let mut q = lock(&self.queue_depth);
        for status in ["pending", "sending", "done", "dead"] {
            q.insert(
                status.to_string(),
                by_status.get(status).copied().unwrap_or(0),
            );
        }
    }

    /// Unix time of the last successful run of `job`.
    pub fn last_success(&self, job: &str) -> Option<i64> {
        lock(&self.last_success).get(job).copied()
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let by = |label: &str, v: &str| format!("{{{label}=\"{v}\"}}");
        let http = lock(&self.http_requests)
            .iter()
            .map(|(c, v)| (by("class", c), v.to_string()))
            .collect();
        family(
            &mut out,
            "d42sync_http_requests_total",
            "counter",
            "HTTP requests to Device42 by status class.",
            http,
        );
        let refreshes = vec![(
            String::new(),
            self.token_refreshes.load(Ordering::Relaxed).to_string(),
        )];
        family(
            &mut out,
            "d42sync_token_refreshes_total",
            "counter",
            "Device42 API tokens obtained.",
            refreshes,
        );
        let expires = self.token_expires_at.load(Ordering::Relaxed);
        let left = if expires == 0 {
            0
        } else {
            (expires - chrono::Utc::now().timestamp()).max(0)
        };
        let expiry = vec![(String::new(), left.to_string())];
        family(
            &mut out,
            "d42sync_token_expiry_seconds",
            "gauge",
            "Seconds until the current token expires.",
            expiry,
        );
        let runs = lock(&self.runs)
            .iter()
            .map(|((job, outcome), v)| {
                (
                    format!("{{job=\"{job}\",outcome=\"{outcome}\"}}"),
                    v.to_string(),
                )
            })
            .collect();
        family(
            &mut out,
            "d42sync_runs_total",
            "counter",
            "Job runs by job and outcome.",
            runs,
        );
        let durations = lock(&self.durations).clone();
        let sums = durations
            .iter()
            .map(|(j, (sum, _))| (by("job", j), format!("{sum:.3}")))
            .collect();
        family(
            &mut out,
            "d42sync_run_duration_seconds_sum",
            "counter",
            "Total seconds spent in job runs.",
            sums,
        );
        let counts = durations
            .iter()
            .map(|(j, (_, n))| (by("job", j), n.to_string()))
            .collect();
        family(
            &mut out,
            "d42sync_run_duration_seconds_count",
            "counter",
            "Job runs timed.",
            counts,
        );
        let last = lock(&self.last_success)
            .iter()
            .map(|(j, t)| (by("job", j), t.to_string()))
            .collect();
        family(
            &mut out,
            "d42sync_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful run.",
            last,
        );
        let skipped = lock(&self.skipped)
            .iter()
            .map(|(j, v)| (by("job", j), v.to_string()))
            .collect();
        family(
            &mut out,
            "d42sync_skipped_ticks_total",
            "counter",
            "Ticks skipped because the job was still running.",
            skipped,
        );
        let devices = vec![(
            String::new(),
            self.devices_stored.load(Ordering::Relaxed).to_string(),
        )];
        family(
            &mut out,
            "d42sync_devices_stored",
            "gauge",
            "Devices in the local inventory.",
            devices,
        );
        let one = |v: String| vec![(String::new(), v)];
        family(
            &mut out,
            "d42sync_device42_up",
            "gauge",
            "1 while Device42 answers, 0 while calls are paused after repeated failures.",
            one(self.device42_up.load(Ordering::Relaxed).to_string()),
        );
        family(
            &mut out,
            "d42sync_breaker_opened_total",
            "counter",
            "Times calls to Device42 were paused after repeated failures.",
            one(self.breaker_opened.load(Ordering::Relaxed).to_string()),
        );
        family(
            &mut out,
            "d42sync_calls_refused_total",
            "counter",
            "Calls to Device42 not sent because calls were paused.",
            one(self.calls_refused.load(Ordering::Relaxed).to_string()),
        );
        let queue = lock(&self.queue_depth)
            .iter()
            .map(|(s, v)| (by("status", s), v.to_string()))
            .collect();
        family(
            &mut out,
            "d42sync_queue_depth",
            "gauge",
            "Building queue rows by status.",
            queue,
        );
        out
    }
}

/// Writes one metric family: its HELP and TYPE lines, then its samples (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: Vec<(String, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}
