//! Our scheduler: tokio-cron-scheduler for the cron arithmetic and ticking (UTC only), with what
//! it lacks added here. A tick that finds its job still running is skipped (tokio-cron-scheduler
//! would run the job concurrently with itself), job bodies run on a task tracker so shutdown can
//! wait for them (its `shutdown()` does not), and every tick returns at once so a slow run never
//! stalls the ticker. A one-second heartbeat job proves the ticker itself is alive.

use crate::config::Schedule;
use crate::metrics::METRICS;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// tokio-cron-scheduler's job id, only ever passed back to it.
type JobId = uuid::Uuid;

/// A job body: given the stop token, one run.
pub type JobFn =
    Arc<dyn Fn(CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The service's scheduler.
pub struct Scheduler {
    inner: JobScheduler,
    /// Running job bodies, awaited on shutdown.
    tracker: TaskTracker,
    /// Cancelled when the service stops: no new runs, and running ones wind down.
    stop: CancellationToken,
    /// Unix milliseconds of the last heartbeat tick.
    heartbeat: Arc<AtomicI64>,
    /// The jobs by name, with the id the cron scheduler knows them by.
    jobs: tokio::sync::Mutex<Vec<(String, Arc<Runner>, JobId)>>,
}

/// One job: its body and whether a run of it is going on.
struct Runner {
    name: String,
    body: JobFn,
    running: AtomicBool,
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Runner {
    /// Starts a run unless one is going on or the service is stopping.
    fn fire(self: &Arc<Self>) {
        if self.stop.is_cancelled() {
            return;
        }
        if self.running.swap(true, Ordering::AcqRel) {
            tracing::debug!(job = %self.name, "tick skipped: the previous run is still going");
            METRICS.tick_skipped(&self.name);
            return;
        }
        let this = self.clone();
        self.tracker.spawn(async move {
            let _clear = ClearOnDrop(&this.running);
            (this.body)(this.stop.clone()).await;
        });
    }
}

impl Scheduler {
    /// A stopped scheduler; `stop` is the service's stop token.
    pub async fn new(stop: CancellationToken) -> anyhow::Result<Self> {
        let inner = JobScheduler::new().await?;
        let heartbeat = Arc::new(AtomicI64::new(now_ms()));
        let beat = heartbeat.clone();
        inner
            .add(Job::new_async_tz(
                "* * * * * *",
                chrono::Utc,
                move |_, _| {
                    beat.store(now_ms(), Ordering::Relaxed);
                    Box::pin(async {})
                },
            )?)
            .await?;
        Ok(Self {
            inner,
            tracker: TaskTracker::new(),
            stop,
            heartbeat,
            jobs: Default::default(),
        })
    }

    /// Adds (or replaces) job `name` on `schedule`.
    pub async fn add(&self, name: &str, schedule: &Schedule, body: JobFn) -> anyhow::Result<()> {
        let mut jobs = self.jobs.lock().await;
        // A replaced job keeps its running flag, so a reload cannot start a second run.
        let runner = match jobs.iter().position(|(n, _, _)| n == name) {
            Some(pos) => {
                let (_, old, id) = jobs.remove(pos);
                self.inner.remove(&id).await?;
                Arc::new(Runner {
                    name: name.to_string(),
                    body,
                    running: AtomicBool::new(old.running.load(Ordering::Acquire)),
                    tracker: self.tracker.clone(),
                    stop: self.stop.clone(),
                })
            }
            None => Arc::new(Runner {
                name: name.to_string(),
                body,
                running: AtomicBool::new(false),
                tracker: self.tracker.clone(),
                stop: self.stop.clone(),
            }),
        };
        let ticking = runner.clone();
        let job = Job::new_async_tz(schedule.expr.as_str(), chrono::Utc, move |_, _| {
            ticking.fire();
            Box::pin(async {})
        })?;
        let id = self.inner.add(job).await?;
        jobs.push((name.to_string(), runner, id));
        Ok(())
    }

    /// Runs job `name` now, outside its schedule, unless it is already running.
    pub async fn trigger(&self, name: &str) {
        if let Some((_, runner, _)) = self.jobs.lock().await.iter().find(|(n, _, _)| n == name) {
            runner.fire();
        }
    }

    /// Starts ticking.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.inner.start().await?;
        Ok(())
    }

    /// How long ago the ticker last ticked.
    pub fn since_heartbeat(&self) -> Duration {
        Duration::from_millis((now_ms() - self.heartbeat.load(Ordering::Relaxed)).max(0) as u64)
    }

    /// Stops ticking and waits up to `grace` for running jobs; `true` if they all finished.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        self.stop.cancel();
        if let Err(e) = self.inner.shutdown().await {
            tracing::debug!(error = %e, "scheduler shutdown");
        }
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Clears a job's running flag however its run ends (a panic included).
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
