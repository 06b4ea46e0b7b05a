//! Our scheduler: tokio-cron-scheduler for the cron arithmetic and ticking (UTC only), with what
//! it lacks added here. A tick that finds its job still running is skipped (tokio-cron-scheduler
//! would run the job concurrently with itself), job bodies run on a task tracker so shutdown can
//! wait for them (its `shutdown()` does not), and every tick returns at once so a slow run never
//! stalls the ticker. A one-second heartbeat job proves the ticker itself is alive.

use crate::config::Schedule;
use crate::metrics::Metrics;
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

    /// How long ago the ticker last ticked.
    pub fn since_heartbeat(&self) -> Duration {
        Duration::from_millis((now_ms() - self.heartbeat.load(Ordering::Relaxed)).max(0) as u64)
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

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::Semaphore;

    /// A job whose runs count themselves and then wait for a permit from `gate`.
    fn gated_job(runs: Arc<AtomicUsize>, gate: Arc<Semaphore>) -> JobFn {
        Arc::new(move |_stop| {
            let (runs, gate) = (runs.clone(), gate.clone());
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
            })
        })
    }

    /// A schedule that does not come round during a test.
    fn yearly() -> Schedule {
        Schedule::parse("0 0 0 1 1 *").unwrap()
    }

    async fn until(what: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !what() {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("condition not reached in 5 s");
    }

    #[tokio::test]
    async fn a_job_replaced_during_a_run_runs_again_once_that_run_ends() {
        let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
            .await
            .unwrap();
        let (runs, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
        let job = gated_job(runs.clone(), gate.clone());
        scheduler.add("j", &yearly(), job.clone()).await.unwrap();
        scheduler.trigger("j").await;
        until(|| runs.load(Ordering::SeqCst) == 1).await;

        scheduler.add("j", &yearly(), job).await.unwrap(); // a reload mid-run
        scheduler.trigger("j").await; // skipped: the first run still goes on
        gate.add_permits(1);
        until(|| !scheduler_running(&scheduler, "j")).await;
        scheduler.trigger("j").await;

        until(|| runs.load(Ordering::SeqCst) == 2).await;
        gate.add_permits(1);
        assert!(scheduler.shutdown(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_requested_run_waits_for_the_running_one_and_returns_its_result() {
        let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
            .await
            .unwrap();
        let (runs, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
        scheduler
            .add("j", &yearly(), gated_job(runs.clone(), gate.clone()))
            .await
            .unwrap();
        scheduler.trigger("j").await;
        until(|| runs.load(Ordering::SeqCst) == 1).await;

        let seen = runs.clone();
        let requested = scheduler.run_now("j", async move { seen.load(Ordering::SeqCst) });
        let requested = tokio::time::timeout(Duration::from_millis(200), requested).await;
        assert!(
            requested.is_err(),
            "the requested run started beside the running one"
        );

        gate.add_permits(1);
        let seen = runs.clone();
        let result = scheduler.run_now("j", async move { seen.load(Ordering::SeqCst) * 10 });
        assert_eq!(result.await, Some(10));
        assert_eq!(scheduler.run_now("nope", async {}).await, None);
        assert!(scheduler.shutdown(Duration::from_secs(1)).await);
    }

    fn scheduler_running(scheduler: &Scheduler, name: &str) -> bool {
        scheduler
            .jobs
            .try_lock()
            .map(|jobs| {
                jobs.iter()
                    .any(|(n, r, _)| n == name && r.state.running.load(Ordering::Acquire))
            })
            .unwrap_or(true)
    }
}
