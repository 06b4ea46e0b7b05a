//! The two jobs, the only place where the Device42 client and the store meet.
//!
//! - [`pull`]: pages the device inventory into a staging table and swaps it in whole.
//! - [`push_buildings`]: drains the building queue to Device42, one short transaction per step.
//! - [`backoff`]: the full-jitter schedule for queue retries.

pub mod backoff;
pub mod pull;
pub mod push_buildings;

use crate::d42::{Client, Gate};
use crate::store::runs::{Job, RunCounts};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How a run ended, as a command prints it, the daemon reports it and the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Finished; a pull applied.
    Ok,
    /// Ended in an error; nothing of a pull applied.
    Failed,
    /// A pull withheld by the mass-deletion guard.
    Held,
    /// A push with nothing to send: nothing recorded.
    Idle,
    /// Device42 unreachable and no probe due: nothing tried, nothing recorded.
    Paused,
}

impl Outcome {
    /// The outcome's name, as in the `outcome` label of the run metrics and in the control
    /// protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Held => "held",
            Outcome::Idle => "idle",
            Outcome::Paused => "paused",
        }
    }
}

/// What a finished run reports to its caller (the command or the scheduler).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The `sync_runs` id, when a run was recorded.
    pub run_id: Option<i64>,
    /// How the run ended.
    pub outcome: Outcome,
    /// The counts recorded.
    pub counts: crate::store::runs::RunCounts,
    /// Wall time of the run.
    pub duration: Duration,
}

/// How a run may use Device42, decided when it starts.
pub(crate) enum Start {
    /// Normally; a failure is logged at ERROR.
    Normal,
    /// As the breaker's probe: one call first, and a failure is logged at DEBUG only, since the
    /// breaker reported the outage when it opened.
    Probe,
}

impl Start {
    /// `Err` with the report of a skipped run while calls to Device42 are paused and no probe
    /// is due; the skip is logged at DEBUG and counted as outcome `paused`.
    pub(crate) fn of(client: &Client, job: Job, started: Instant) -> Result<Start, RunReport> {
        match client.gate() {
            Gate::Closed => Ok(Start::Normal),
            Gate::Probe => Ok(Start::Probe),
            Gate::Open { retry_in } => {
                tracing::debug!(
                    job = job.as_str(),
                    probe_in_s = retry_in.as_secs(),
                    "Device42 unreachable; run skipped"
                );
                client
                    .metrics()
                    .run_counted(job.as_str(), Outcome::Paused.as_str());
                Err(RunReport {
                    run_id: None,
                    outcome: Outcome::Paused,
                    counts: RunCounts::default(),
                    duration: started.elapsed(),
                })
            }
        }
    }

    /// Whether a failure of this run is the breaker's to report: the run was a probe, and
    /// either the breaker is still open or the run's call was refused (another job's call took
    /// the probe).
    pub(crate) fn failure_reported(&self, client: &Client, refused: bool) -> bool {
        matches!(self, Start::Probe) && (refused || client.is_paused())
    }
}
