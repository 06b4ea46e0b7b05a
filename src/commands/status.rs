//! `status`: the last run of each job, devices stored, queue counts and the next scheduled runs.
//! It reads the database only, so it works while the daemon runs.

use super::print_out;
use crate::config::Settings;
use crate::daemon::control::{self, AskError, DaemonInfo, Reply, Request};
use crate::store::runs::{self, Job, RunRow};
use crate::store::{Db, devices, queue};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The daemon that owns the database, when one runs and answers on its control socket.
    pub daemon: Option<DaemonInfo>,
    /// The database file.
    pub database: String,
    /// Devices stored.
    pub devices: i64,
    /// Per job: last run, last success, next scheduled run.
    pub jobs: BTreeMap<&'static str, JobStatus>,
    /// Queue rows by status.
    pub queue: BTreeMap<String, i64>,
    /// Age in seconds of the oldest pending queue row.
    pub oldest_pending_age_s: Option<i64>,
}

/// One job's line.
#[derive(Debug, Serialize)]
pub struct JobStatus {
    /// The latest run, whatever its outcome.
    pub last_run: Option<RunRow>,
    /// When the latest successful run finished.
    pub last_ok_at: Option<String>,
    /// The cron expression (UTC).
    pub schedule: String,
    /// The next firing by the schedule.
    pub next_run: Option<String>,
}

/// Gathers the status from the database and the schedules.
pub async fn gather(db: &Db, settings: &Settings) -> anyhow::Result<Status> {
    let now = chrono::Utc::now();
    let mut jobs = BTreeMap::new();
    for (job, schedule) in [
        (Job::PullDevices, &settings.devices.schedule),
        (Job::PushBuildings, &settings.buildings.schedule),
    ] {
        jobs.insert(
            job.as_str(),
            JobStatus {
                last_run: runs::last(db, job).await?,
                last_ok_at: runs::last_ok(db, job).await?.and_then(|r| r.finished_at),
                schedule: schedule.expr.clone(),
                next_run: schedule.next_after(now).map(crate::time::iso),
            },
        );
    }
    let oldest = queue::oldest_pending(db).await?;
    Ok(Status {
        daemon: None,
        database: db.path.display().to_string(),
        devices: devices::count(db).await?,
        jobs,
        queue: queue::counts(db).await?,
        oldest_pending_age_s: oldest
            .as_deref()
            .and_then(crate::time::parse_iso)
            .map(|t| (now - t).num_seconds()),
    })
}

/// `status [--json]`.
pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<()> {
    if !settings.database.path.exists() {
        anyhow::bail!(
            "no database at {} yet (run `d42sync migrate` or start the daemon)",
            settings.database.path.display()
        );
    }
    let db = Db::open(&settings.database.path).await?;
    let mut status = gather(&db, settings).await?;
    db.close().await;
    let socket = control::socket_path(&settings.database.path);
    status.daemon =
        match control::ask(&socket, &Request::Status, Some(control::STATUS_TIMEOUT)).await {
            Ok(Reply::Daemon(info)) => Some(info),
            Ok(_) | Err(AskError::NoDaemon) => None,
            Err(e) => {
                eprintln!("d42sync: {e}");
                None
            }
        };
    if json {
        say!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_out(&render(&status));
    }
    Ok(())
}

/// The text form.
pub fn render(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = match &s.daemon {
        Some(d) => writeln!(
            out,
            "daemon    running (pid {}, since {}, version {})",
            d.pid, d.started_at, d.version
        ),
        None => writeln!(out, "daemon    not running"),
    };
    let _ = writeln!(out, "database  {}", s.database);
    let _ = writeln!(out, "devices   {}", s.devices);
    let _ = writeln!(
        out,
        "\n{:<15} {:>6} {:<8} {:<25} {:>7} {:>6} {:>7} {:>7} {:>5} {:>6}  next run",
        "job",
        "run",
        "status",
        "finished",
        "items",
        "added",
        "changed",
        "removed",
        "sent",
        "failed",
    );
    for (name, j) in &s.jobs {
        let next = j.next_run.clone().unwrap_or_else(|| "-".into());
        match &j.last_run {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "{:<15} {:>6} {:<8} {:<25} {:>7} {:>6} {:>7} {:>7} {:>5} {:>6}  {}",
                    name,
                    r.id,
                    r.status,
                    r.finished_at.as_deref().unwrap_or("(running)"),
                    r.items,
                    r.added,
                    r.changed,
                    r.removed,
                    r.sent,
                    r.failed,
                    next
                );
                if let Some(e) = &r.error {
                    let _ = writeln!(out, "{:<15} error: {e}", "");
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "{name:<15} {:>6} {:<8} {:<25} {:>48}  {next}",
                    "-", "never", "-", ""
                );
            }
        }
    }
    let q = |k: &str| s.queue.get(k).copied().unwrap_or(0);
    let _ = write!(
        out,
        "\nqueue     pending {}  sending {}  done {}  dead {}",
        q("pending"),
        q("sending"),
        q("done"),
        q("dead")
    );
    match s.oldest_pending_age_s {
        Some(age) => {
            let _ = writeln!(out, "  (oldest pending {age}s old)");
        }
        None => out.push('\n'),
    }
    out
}
