//! The two jobs, the only place where the Device42 client and the store meet.
//!
//! - [`pull_devices`]: pages the device inventory into a staging table and swaps it in whole.
//! - [`push_buildings`]: drains the building queue to Device42, one short transaction per step.
//! - [`backoff`]: the full-jitter schedule for queue retries.

pub mod backoff;
pub mod pull_devices;
pub mod push_buildings;

use std::time::Duration;

/// What a finished run reports to its caller (the command or the scheduler).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The `sync_runs` id, when a run was recorded.
    pub run_id: Option<i64>,
    /// `ok`, `failed`, `held`, or `idle` (nothing to do, nothing recorded).
    pub outcome: &'static str,
    /// The counts recorded.
    pub counts: crate::store::runs::RunCounts,
    /// Wall time of the run.
    pub duration: Duration,
}
