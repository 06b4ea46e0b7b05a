//! Our scheduler: tokio-cron-scheduler for the cron arithmetic and ticking (UTC only), with what
//! it lacks added here. A tick that finds its job still running is skipped (tokio-cron-scheduler
//! would run the job concurrently with itself), job bodies run on a task tracker so shutdown can
//! wait for them (its `shutdown()` does not), and every tick returns at once so a slow run never
//! stalls the ticker.
//!
//! A job runs on the [`Schedule`] that config parsed: the parsed expression is handed to
//! tokio-cron-scheduler as it is, so an expression is read once, by one parser. Whether the
//! ticker is alive is read from tokio-cron-scheduler's own next ticks ([`Scheduler::overdue`]).

use crate::config::Schedule;
use crate::metrics::Metrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_cron_scheduler::job::JobCreator;
use tokio_cron_scheduler::{Job, JobBuilder, JobScheduler};
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
    /// The jobs by name, with the id the cron scheduler knows them by.
    jobs: tokio::sync::Mutex<Vec<(String, Arc<Runner>, JobId)>>,
    /// Counts the ticks skipped.
    metrics: Metrics,
}

/// Whether a run of a job is going on. A reload replaces a job's body but keeps this, so a run
/// that started before the reload still keeps the next one from starting beside it, and its end
/// lets the next one start.
#[derive(Default)]
struct RunState {
    running: AtomicBool,
    /// Woken when a run ends, for a requested run waiting its turn.
    idle: tokio::sync::Notify,
}

impl RunState {
    /// Marks a run started; `false` if one is going on already.
    fn try_start(&self) -> bool {
        !self.running.swap(true, Ordering::AcqRel)
    }
}

/// One job: its body and its run state.
struct Runner {
    name: String,
    body: JobFn,
    state: Arc<RunState>,
    tracker: TaskTracker,
    stop: CancellationToken,
    metrics: Metrics,
}

impl Runner {
    /// Starts a run unless one is going on or the service is stopping.
    fn fire(self: &Arc<Self>) {
        if self.stop.is_cancelled() {
            return;
        }
        if !self.state.try_start() {
            tracing::debug!(job = %self.name, "tick skipped: the previous run is still going");
            self.metrics.tick_skipped(&self.name);
            return;
        }
        let this = self.clone();
        self.tracker.spawn(async move {
            let _clear = ClearOnDrop(this.state.clone());
            (this.body)(this.stop.clone()).await;
        });
    }
}

impl Scheduler {
    /// A stopped scheduler; `stop` is the service's stop token, `metrics` counts skipped ticks.
    pub async fn new(stop: CancellationToken, metrics: Metrics) -> anyhow::Result<Self> {
        let mut inner = JobScheduler::new().await?;
        // Started here rather than by a first `add`, which would log its own bookkeeping.
        inner.init().await?;
        Ok(Self {
            inner,
            tracker: TaskTracker::new(),
            stop,
            jobs: Default::default(),
            metrics,
        })
    }

    /// Adds (or replaces) job `name` on `schedule`.
    pub async fn add(&self, name: &str, schedule: &Schedule, body: JobFn) -> anyhow::Result<()> {
        let mut jobs = self.jobs.lock().await;
        // A replaced job keeps its run state, so a reload cannot start a second run.
        let state = match jobs.iter().position(|(n, _, _)| n == name) {
            Some(pos) => {
                let (_, old, id) = jobs.remove(pos);
                self.inner.remove(&id).await?;
                old.state.clone()
            }
            None => Arc::default(),
        };
        let runner = Arc::new(Runner {
            name: name.to_string(),
            body,
            state,
            tracker: self.tracker.clone(),
            stop: self.stop.clone(),
            metrics: self.metrics.clone(),
        });
        let id = self.add_job(cron_job(schedule, runner.clone())?).await?;
        jobs.push((name.to_string(), runner, id));
        Ok(())
    }

    /// Hands `job` to tokio-cron-scheduler. Its `JobScheduler::add` does the same and then logs
    /// an INFO line of its own on every call (a reload included); this is the call it makes.
    async fn add_job(&self, job: Job) -> anyhow::Result<JobId> {
        Ok(JobCreator::add(&self.inner.context(), job).await?)
    }

    /// Runs job `name` now, outside its schedule, unless it is already running.
    pub async fn trigger(&self, name: &str) {
        if let Some((_, runner, _)) = self.jobs.lock().await.iter().find(|(n, _, _)| n == name) {
            runner.fire();
        }
    }

    /// Runs `run` as a run of job `name` now, outside its schedule (an operator's request): after
    /// the run going on, if any, and never beside one. `None` if there is no such job or the
    /// service stops first.
    pub async fn run_now<T: Send + 'static>(
        &self,
        name: &str,
        run: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let state = {
            let jobs = self.jobs.lock().await;
            let (_, runner, _) = jobs.iter().find(|(n, _, _)| n == name)?;
            runner.state.clone()
        };
        loop {
            // Registered before the flag is read, so an end between the two is not missed.
            let ended = state.idle.notified();
            if self.stop.is_cancelled() {
                return None;
            }
            if state.try_start() {
                break;
            }
            tokio::select! {
                () = ended => {}
                () = self.stop.cancelled() => return None,
            }
        }
        let clear = ClearOnDrop(state);
        let handle = self.tracker.spawn(async move {
            let _clear = clear;
            run.await
        });
        handle.await.ok()
    }

    /// The service's stop token, which runs are given.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Starts ticking.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.inner.start().await?;
        Ok(())
    }

    /// How late the most overdue job is: tokio-cron-scheduler moves a job's next tick on each time
    /// it fires it, so a next tick left in the past means its ticker has stopped.
    pub async fn overdue(&self) -> Duration {
        let now = chrono::Utc::now();
        let ids: Vec<JobId> = self.jobs.lock().await.iter().map(|j| j.2).collect();
        let mut latest = Duration::ZERO;
        for id in ids {
            if let Ok(Some(next)) = self.inner.clone().next_tick_for_job(id).await {
                latest = latest.max((now - next).to_std().unwrap_or_default());
            }
        }
        latest
    }

    /// Stops ticking and waits up to `grace` for running jobs; `true` if they all finished.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stop.cancel();
        if let Err(e) = self.inner.clone().shutdown().await {
            tracing::debug!(error = %e, "scheduler shutdown");
        }
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Clears a job's running flag however its run ends (a panic included), and wakes a requested
/// run waiting for it.
struct ClearOnDrop(Arc<RunState>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        self.0.idle.notify_waiters();
    }
}

/// A cron job, in UTC, on the expression config parsed, whose every tick fires `runner`.
fn cron_job(schedule: &Schedule, runner: Arc<Runner>) -> anyhow::Result<Job> {
    let mut builder = JobBuilder::new()
        .with_timezone(chrono::Utc)
        .with_cron_job_type()
        .with_run_async(Box::new(move |_, _| {
            runner.fire();
            Box::pin(async {})
        }));
    builder.schedule = Some(schedule.cron().clone());
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests;
