//! `sync_runs`: one row per job run, its outcome and counts.

use super::{Db, StoreError};
use crate::time::now_iso;
use serde::Serialize;

/// The two jobs, as named in the `job` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// The device pull.
    PullDevices,
    /// The building push.
    PushBuildings,
}

impl Job {
    /// The value stored in `sync_runs.job`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Job::PullDevices => "pull_devices",
            Job::PushBuildings => "push_buildings",
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended, as stored in `sync_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Started and not finished (the column's default), or left so by a process that died.
    Running,
    /// Finished and applied.
    Ok,
    /// Ended in an error; nothing of it was applied.
    Failed,
    /// A pull withheld by the mass-deletion guard.
    Held,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Held => "held",
        }
    }
}

/// The counts a run records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunCounts {
    /// Items seen (devices received, queue rows claimed).
    pub items: i64,
    /// Devices added.
    pub added: i64,
    /// Devices whose record changed.
    pub changed: i64,
    /// Devices removed.
    pub removed: i64,
    /// Buildings accepted by Device42.
    pub sent: i64,
    /// Buildings that failed this time (retried later or dead).
    pub failed: i64,
}

/// One row of `sync_runs`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub job: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub items: i64,
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
    pub sent: i64,
    pub failed: i64,
    pub error: Option<String>,
}

/// Records the start of a run and returns its id.
pub async fn start(db: &Db, job: Job) -> Result<i64, StoreError> {
    let mut tx = db.begin_write().await?;
    let id =
        sqlx::query_scalar("INSERT INTO sync_runs (job, started_at) VALUES (?, ?) RETURNING id")
            .bind(job.as_str())
            .bind(now_iso())
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(id)
}

/// Records how a run ended, inside the caller's write transaction (so a pull's outcome commits
/// with its rows).
pub async fn finish_in(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
    status: RunStatus,
    counts: RunCounts,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sync_runs SET finished_at = ?, status = ?, items = ?, added = ?, changed = ?, \
         removed = ?, sent = ?, failed = ?, error = ? WHERE id = ?",
    )
    .bind(now_iso())
    .bind(status.as_str())
    .bind(counts.items)
    .bind(counts.added)
    .bind(counts.changed)
    .bind(counts.removed)
    .bind(counts.sent)
    .bind(counts.failed)
    .bind(error)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records how a run ended, in a transaction of its own.
pub async fn finish(
    db: &Db,
    id: i64,
    status: RunStatus,
    counts: RunCounts,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = db.begin_write().await?;
    finish_in(&mut tx, id, status, counts, error).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks runs left `running` by a process that died as `failed`. Only call it while holding the
/// single-instance lock, or a live daemon's run would be marked.
pub async fn fail_interrupted(db: &Db) -> Result<u64, StoreError> {
    db.execute_write(
        sqlx::query(
            "UPDATE sync_runs SET status = ?, finished_at = ?, \
         error = 'interrupted: the process stopped before the run finished' WHERE status = ?",
        )
        .bind(RunStatus::Failed.as_str())
        .bind(now_iso())
        .bind(RunStatus::Running.as_str()),
    )
    .await
}

/// The latest run of `job`, if any.
pub async fn last(db: &Db, job: Job) -> Result<Option<RunRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM sync_runs WHERE job = ? ORDER BY id DESC LIMIT 1")
            .bind(job.as_str())
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// The latest successful run of `job`, if any.
pub async fn last_ok(db: &Db, job: Job) -> Result<Option<RunRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM sync_runs WHERE job = ? AND status = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(job.as_str())
    .bind(RunStatus::Ok.as_str())
    .fetch_optional(&db.pool)
    .await?)
}

/// The finished runs of one job with one status, as the database holds them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunTotal {
    /// `sync_runs.job`.
    pub job: String,
    /// `sync_runs.status`: `ok`, `failed` or `held`.
    pub status: String,
    /// How many such runs are kept.
    pub runs: i64,
    /// When the latest of them finished.
    pub last_finished: Option<String>,
}

/// The finished runs by job and status, with the latest finish of each: what the run counters
/// and last-success times start from after a restart.
pub async fn totals(db: &Db) -> Result<Vec<RunTotal>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT job, status, count(*) AS runs, max(finished_at) AS last_finished \
         FROM sync_runs WHERE status != 'running' GROUP BY job, status ORDER BY job, status",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Deletes runs finished before `before` that no kept change row refers to, keeping the latest
/// run of each job.
pub async fn prune(db: &Db, before: &str) -> Result<u64, StoreError> {
    db.execute_write(
        sqlx::query(
            "DELETE FROM sync_runs WHERE finished_at < ? AND status != ? \
         AND id NOT IN (SELECT max(id) FROM sync_runs GROUP BY job) \
         AND NOT EXISTS (SELECT 1 FROM device_change_log c WHERE c.run_id = sync_runs.id)",
        )
        .bind(before)
        .bind(RunStatus::Running.as_str()),
    )
    .await
}

#[cfg(test)]
mod tests;
