//! The long-running service (`d42sync run`): both jobs on their schedules until SIGTERM/SIGINT.
//!
//! The daemon knows time and cancellation, never what a job does:
//! - [`lock`]: one daemon per database.
//! - [`scheduler`]: cron ticks, no overlap, tracked runs.
//! - [`signals`]: stop and reload requests.
//! - [`notify`]: READY/WATCHDOG/STATUS/STOPPING for systemd.
//! - [`http`]: `/metrics` and `/healthz`, on axum.
//! - [`control`]: the socket through which `pull`, `push` and `status` from a shell reach it.
//!
//! Start-up order: client (the last config check, so that TLS material that cannot be used
//! exits 78 having changed nothing), lock, database and migrations, recovery of what a crash
//! left (`running` runs become `failed`, `sending` queue rows become `pending`), scheduler,
//! control socket, then READY=1.

pub mod control;
pub mod http;
pub mod lock;
pub mod notify;
pub mod scheduler;
pub mod signals;

use crate::config::{self, ConfigError, Device42Settings, Settings};
use crate::d42::Client;
use crate::jobs::{pull, push_buildings};
use crate::metrics::Metrics;
use crate::store::{Db, devices, queue, runs};
use scheduler::{JobFn, Scheduler};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the jobs share and a reload replaces.
pub struct Context {
    /// The database.
    pub db: Db,
    /// The settings and client now in force (a valid SIGHUP reload swaps both).
    current: RwLock<(Arc<Settings>, Client)>,
    /// The daemon's metrics, which the clients, jobs and scheduler record into.
    metrics: Metrics,
    /// When the daemon started (unix seconds), for the health check's grace.
    started_at: i64,
    /// Unix milliseconds of the main loop's last turn.
    loop_alive: AtomicI64,
}

impl Context {
    fn current(&self) -> (Arc<Settings>, Client) {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        (guard.0.clone(), guard.1.clone())
    }

    /// One pull with the settings and client now in force: a scheduled run or a requested one.
    async fn pull(
        &self,
        options: pull::PullOptions,
        stop: &CancellationToken,
    ) -> anyhow::Result<crate::jobs::RunReport> {
        let (settings, client) = self.current();
        pull::run(&self.db, &client, &settings.devices, options, stop).await
    }

    /// One push with the settings and client now in force: a scheduled run or a requested one.
    async fn push(&self, stop: &CancellationToken) -> anyhow::Result<crate::jobs::RunReport> {
        let (settings, client) = self.current();
        push_buildings::run(&self.db, &client, &settings.buildings, stop).await
    }

    /// Healthy while the main loop turns and the last successful pull is recent (three pull
    /// periods, counted from start-up until a first pull succeeds).
    pub fn healthy(&self) -> Result<(), String> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let loop_age =
            Duration::from_millis((now_ms - self.loop_alive.load(Ordering::Relaxed)).max(0) as u64);
        if loop_age > Duration::from_secs(10) {
            return Err(format!("main loop stalled for {}s", loop_age.as_secs()));
        }
        let (settings, _) = self.current();
        let allowed = 3 * settings.devices.schedule.period().as_secs() as i64;
        // A success restored from before the start does not shorten the start-up grace.
        let last = self
            .metrics
            .last_success(PULL)
            .map_or(self.started_at, |t| t.max(self.started_at));
        let age = now_ms / 1000 - last;
        if age > allowed {
            return Err(format!(
                "last successful pull {age}s ago (allowed {allowed}s)"
            ));
        }
        Ok(())
    }
}

/// Runs the daemon until a stop signal; `Ok` after a graceful stop.
pub async fn run(config_path: PathBuf, settings: Settings) -> anyhow::Result<()> {
    // Signals first: a SIGTERM during start-up then means a clean stop right after it.
    let stop = CancellationToken::new();
    let mut reloads = signals::install(stop.clone())?;
    let metrics = Metrics::default();
    let client = client(&settings.device42, metrics.clone())?;
    let _lock = lock::InstanceLock::acquire(&settings.database.path)?;
    let db = Db::open(&settings.database.path).await?;
    recover(&db).await?;
    metrics.restore(&runs::totals(&db).await?);
    metrics.set_devices_stored(devices::count(&db).await.unwrap_or(0));
    let notifier = notify::Notifier::from_env();
    let settings = Arc::new(settings);
    let ctx = Arc::new(Context {
        db,
        current: RwLock::new((settings.clone(), client)),
        metrics: metrics.clone(),
        started_at: chrono::Utc::now().timestamp(),
        loop_alive: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
    });

    let scheduler = Arc::new(Scheduler::new(stop.clone(), metrics.clone()).await?);
    schedule_jobs(&scheduler, &ctx, &settings).await?;
    scheduler.start().await?;
    let socket = control::socket_path(&settings.database.path);
    let handler = Arc::new(Control {
        ctx: ctx.clone(),
        scheduler: scheduler.clone(),
    });
    let _control = match control::serve(&socket, handler, stop.clone()) {
        Ok(listening) => Some(listening),
        Err(e) => {
            tracing::warn!(socket = %socket.display(), error = %e, "control socket unavailable: pull and push from a shell will not reach the daemon");
            None
        }
    };
    let metrics_server = match settings.metrics.listen {
        Some(addr) => {
            let health = ctx.clone();
            let endpoint = http::Endpoint {
                metrics,
                health: Arc::new(move || health.healthy()),
            };
            Some(http::serve(addr, endpoint, stop.clone()).await?)
        }
        None => None,
    };
    // A first pull right away when the inventory is stale, rather than waiting for the schedule.
    if pull_is_due(&ctx.db, &settings).await {
        scheduler.trigger(PULL).await;
    }
    notifier.notify("READY=1");
    tracing::info!(
        database = %settings.database.path.display(),
        pull_schedule = %settings.devices.schedule.expr,
        push_schedule = %settings.buildings.schedule.expr,
        "d42sync started"
    );

    let tick = notifier
        .watchdog_interval
        .unwrap_or(Duration::from_secs(1))
        .min(Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = String::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(()) = reloads.recv() => reload(&config_path, &ctx, &scheduler).await,
            _ = ticker.tick() => {
                crate::failpoint::stall("daemon.stall", ctx.started_at);
                ctx.loop_alive.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
                // The watchdog is fed only while the cron ticker is alive too.
                if notifier.watchdog_interval.is_some()
                    && scheduler.overdue().await < Duration::from_secs(10)
                {
                    notifier.notify("WATCHDOG=1");
                }
                let status = status_line(&ctx).await;
                if status != last_status {
                    notifier.notify(&format!("STATUS={status}"));
                    last_status = status;
                }
            }
        }
    }

    notifier.notify("STOPPING=1");
    let (settings, _) = ctx.current();
    let grace = settings.buildings.stop_grace;
    if !scheduler.shutdown(grace).await {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "jobs still running after the stop grace period; rows being sent will be re-sent after restart"
        );
    }
    if let Some(server) = metrics_server {
        server.abort();
    }
    ctx.db.close().await;
    tracing::info!("d42sync stopped");
    Ok(())
}

/// The scheduler's job names are the names runs are stored under.
const PULL: &str = runs::Job::PullDevices.as_str();
const PUSH: &str = runs::Job::PushBuildings.as_str();

/// Serves the control socket's requests: a requested pull or push runs as that job's next run.
struct Control {
    ctx: Arc<Context>,
    scheduler: Arc<Scheduler>,
}

impl control::Handler for Control {
    async fn handle(&self, request: control::Request) -> control::Reply {
        use control::{Reply, Request, RunSummary};
        let ctx = self.ctx.clone();
        let stop = self.scheduler.stop_token();
        let finished = match request {
            Request::Status => {
                return Reply::Daemon(control::DaemonInfo {
                    pid: std::process::id(),
                    started_at: chrono::DateTime::from_timestamp(ctx.started_at, 0)
                        .map(crate::time::iso)
                        .unwrap_or_default(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                });
            }
            Request::Pull(options) => {
                let run = async move { RunSummary::of(&ctx.pull(options, &stop).await) };
                self.scheduler.run_now(PULL, run).await
            }
            Request::Push => {
                let run = async move { RunSummary::of(&ctx.push(&stop).await) };
                self.scheduler.run_now(PUSH, run).await
            }
        };
        match finished {
            Some(summary) => Reply::Run(summary),
            None => Reply::Refused {
                message: "the daemon is stopping".into(),
            },
        }
    }
}

/// The client for `s`, recording into `metrics`. It fails only on TLS material that cannot be
/// used, a configuration error: systemd must not restart into it (exit 78).
pub fn client(s: &Device42Settings, metrics: Metrics) -> Result<Client, ConfigError> {
    Client::new(s, metrics).map_err(|message| ConfigError::new("device42.ca_file", message))
}

/// Makes the database consistent after a crash. Call only while holding the instance lock.
pub async fn recover(db: &Db) -> anyhow::Result<()> {
    let interrupted = runs::fail_interrupted(db).await?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "runs interrupted by a previous stop marked failed"
        );
    }
    let resend = queue::recover_sending(db).await?;
    if resend > 0 {
        tracing::warn!(
            rows = resend,
            "queue rows left sending by a previous stop will be sent again"
        );
    }
    Ok(())
}

async fn schedule_jobs(
    scheduler: &Scheduler,
    ctx: &Arc<Context>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let pull_ctx = ctx.clone();
    let pull: JobFn = Arc::new(move |stop| {
        let ctx = pull_ctx.clone();
        Box::pin(async move {
            // Failures are logged and recorded by the job; the daemon carries on.
            let _ = ctx.pull(Default::default(), &stop).await;
        })
    });
    let push_ctx = ctx.clone();
    let push: JobFn = Arc::new(move |stop| {
        let ctx = push_ctx.clone();
        Box::pin(async move {
            let _ = ctx.push(&stop).await;
        })
    });
    scheduler
        .add(PULL, &settings.devices.schedule, pull)
        .await?;
    scheduler
        .add(PUSH, &settings.buildings.schedule, push)
        .await?;
    Ok(())
}

async fn pull_is_due(db: &Db, settings: &Settings) -> bool {
    let period = settings.devices.schedule.period();
    match runs::last_ok(db, runs::Job::PullDevices).await {
        Ok(Some(run)) => run
            .finished_at
            .as_deref()
            .and_then(crate::time::parse_iso)
            .is_none_or(|t| {
                chrono::Utc::now() - t > chrono::Duration::from_std(period).unwrap_or_default()
            }),
        _ => true,
    }
}

/// Re-reads the config on SIGHUP; keeps the old one when the new one is invalid. The database
/// path and the metrics address need a restart.
async fn reload(config_path: &std::path::Path, ctx: &Arc<Context>, scheduler: &Scheduler) {
    let new = match config::load(config_path) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(key = %e.key, error = %e.message, "config reload refused; keeping the running config");
            return;
        }
    };
    let (old, old_client) = ctx.current();
    let client = match Client::reloaded(&new.device42, &old_client) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "config reload refused; keeping the running config");
            return;
        }
    };
    if new.database.path != old.database.path || new.metrics.listen != old.metrics.listen {
        tracing::warn!("database.path and metrics.listen changes take effect after a restart");
    }
    if let Err(e) = crate::telemetry::apply(new.log.format, &new.log.level) {
        tracing::warn!(error = %e, "log settings not applied");
    }
    let new = Arc::new(new);
    for w in &new.warnings {
        tracing::warn!("{w}");
    }
    *ctx.current.write().unwrap_or_else(|e| e.into_inner()) = (new.clone(), client);
    if let Err(e) = schedule_jobs(scheduler, ctx, &new).await {
        tracing::error!(error = %e, "could not apply the new schedules");
    }
    tracing::info!("config reloaded");
}

/// One line for `systemctl status` (STATUS=): the last pull, devices and queue, led by the
/// outage when calls to Device42 are paused.
async fn status_line(ctx: &Context) -> String {
    let db = &ctx.db;
    let pull = match runs::last(db, runs::Job::PullDevices).await {
        Ok(Some(r)) => format!(
            "last pull {} at {}",
            r.status,
            r.finished_at.unwrap_or(r.started_at)
        ),
        _ => "no pull yet".to_string(),
    };
    let queue = match queue::counts(db).await {
        Ok(c) => format!("queue pending {} dead {}", c["pending"], c["dead"]),
        Err(_) => String::new(),
    };
    let devices = ctx.metrics.devices_stored();
    let outage = if ctx.current().1.is_paused() {
        "Device42 unreachable, calls paused; "
    } else {
        ""
    };
    format!("{outage}{pull}; {devices} devices; {queue}")
}
