//! The device pull: pages `devices.endpoint` into a staging table and swaps the complete
//! snapshot into `devices` in one transaction.
//!
//! A pull is full (every record) or incremental (`incremental`: the ids of every device from the
//! brief list, and the records edited since the watermark of the last applied pull); a full
//! pull runs on the first load, on `pull --full`, every `devices.full_every`, and whenever the
//! watermark does not fit (another endpoint or `include_cols`). Either way each listing is paged
//! with the checks below and the apply is the same, and it records the watermark.
//!
//! A pull is complete only when a page showed the listing's end after a run of pages that
//! overlap one another (`paging`, `walk`): devices removed while paging shift later pages, and
//! the range before a shifted page is fetched again instead of starting over. A pass that churn
//! outruns (its repairs exceed a budget) starts over, up to `devices.max_drift_retries` times;
//! one that never completes fails and changes nothing. Pages are fetched `devices.concurrency`
//! at a time and parsed on blocking threads, one per core at a time (`pager`); memory is
//! bounded by the pages in flight and two received ones waiting to be staged, not by the
//! inventory. A page whose body hashes as the same page of the last applied pull, and that
//! overlaps the page before as it did then, is not parsed: its records are the ones stored
//! ([`crate::store::pages`]). `report` has the lines a run logs as it ends, with the body bytes
//! received and the mode.

mod error;
mod incremental;
mod pager;
mod paging;
mod report;
mod walk;
mod window;

use super::{Outcome, RunReport, Start};
use crate::config::DevicesSettings;
use crate::d42::Client;
use crate::store::Db;
use crate::store::devices::{self, ApplyOutcome, DeleteGuard, PullStage};
use crate::store::runs::{self, Job, RunCounts, RunStatus};
use error::PullError;
use incremental::Mode;
use pager::{Listing, Pass};
use report::Taken;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Options of one pull; also what a shell's `pull` request to the daemon carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PullOptions {
    /// Apply even if the mass-deletion guard would hold the pull.
    pub allow_mass_delete: bool,
    /// Fetch every record, even where an incremental pull would do (`pull --full`); absent
    /// from the requests of an older client: false.
    #[serde(default)]
    pub full: bool,
}

/// Runs one pull and records it in `sync_runs`. Logs one INFO line on success, one WARN line
/// when held, one ERROR line on failure (DEBUG for a failed probe while Device42 is
/// unreachable); returns `Err` only when the run failed. While calls to Device42 are paused and
/// no probe is due, the run is skipped: outcome `paused`, nothing recorded.
pub async fn run(
    db: &Db,
    client: &Client,
    settings: &DevicesSettings,
    options: PullOptions,
    cancel: &CancellationToken,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let start = match Start::of(client, Job::PullDevices, started) {
        Ok(start) => start,
        Err(skipped) => return Ok(skipped),
    };
    let run_id = runs::start(db, Job::PullDevices).await?;
    let span = tracing::info_span!("run", job = "pull_devices", run_id);
    async move {
        if client.is_insecure() {
            tracing::warn!("device42.insecure_skip_tls_verify is true: the appliance's certificate is not checked");
        }
        let result = pull_and_apply(db, client, settings, options, cancel, run_id).await;
        let duration = started.elapsed();
        let report = |outcome, counts| RunReport {
            run_id: Some(run_id),
            outcome,
            counts,
            duration,
        };
        match result {
            Ok((ApplyOutcome::Applied(counts), taken)) => {
                report::applied(&counts, taken, duration, client.metrics());
                prune(db, settings).await;
                let stored = devices::count(db).await.unwrap_or(0);
                client.metrics().set_devices_stored(stored);
                Ok(report(Outcome::Ok, counts))
            }
            Ok((
                ApplyOutcome::Held {
                    stored,
                    incoming,
                    removing,
                },
                _,
            )) => {
                report::held((stored, incoming, removing), settings, duration, client.metrics());
                let counts = RunCounts {
                    items: incoming,
                    removed: removing,
                    ..Default::default()
                };
                Ok(report(Outcome::Held, counts))
            }
            Err(e) => {
                report::failed(&e, (&start, client), settings, duration);
                let message = e.to_string();
                let counts = RunCounts::default();
                let recorded = runs::finish(db, run_id, RunStatus::Failed, counts, Some(&message));
                if let Err(record) = recorded.await {
                    tracing::warn!(error = %record, "could not record the failed run");
                }
                Err(anyhow::Error::new(e).context("pull failed"))
            }
        }
    }
    .instrument(span)
    .await
}

/// Pulls into a fresh stage and applies it; what the apply did and how the pages were taken.
async fn pull_and_apply(
    db: &Db,
    client: &Client,
    settings: &DevicesSettings,
    options: PullOptions,
    cancel: &CancellationToken,
    run_id: i64,
) -> Result<(ApplyOutcome, Taken), PullError> {
    let mut stage = PullStage::new(db, run_id).await?;
    let bytes = Arc::new(AtomicU64::new(0));
    let pulled = match incremental::mode(db, settings, options.full, &stage).await {
        Ok(mode) => pull_listings(&mut stage, client, settings, cancel, (mode, &bytes)).await,
        Err(e) => Err(e),
    };
    let (items, mode) = match pulled {
        Ok(pulled) => pulled,
        Err(e) => {
            stage.discard().await;
            return Err(e);
        }
    };
    stage.mark(incremental::watermark(settings, mode));
    let guard = DeleteGuard {
        max_delete_fraction: settings.max_delete_fraction,
        allow_mass_delete: options.allow_mass_delete,
    };
    crate::failpoint::hit("pull.before_apply");
    let started = Instant::now();
    let pages = stage.pages();
    let outcome = stage.apply(items, guard).await?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "snapshot applied"
    );
    let taken = Taken {
        pages,
        mode: mode.as_str(),
        bytes: bytes.load(Ordering::Relaxed),
    };
    Ok((outcome, taken))
}

/// Pages what `mode` asks for into the stage, counting body bytes in `bytes`; the number of
/// devices, and the mode the pull ran in: full when an incremental pull met a listed id that is
/// neither stored nor edited (it cannot tell what that device holds).
async fn pull_listings(
    stage: &mut PullStage,
    client: &Client,
    settings: &DevicesSettings,
    cancel: &CancellationToken,
    (mode, bytes): (Mode, &Arc<AtomicU64>),
) -> Result<(i64, Mode), PullError> {
    let pass = |listing| Pass {
        listing,
        bytes: Arc::clone(bytes),
    };
    let records = pass(Listing::Records);
    let Mode::Incremental { since } = mode else {
        let items = pull_with_retries(stage, client, settings, cancel, &records).await?;
        return Ok((items, Mode::Full));
    };
    let items = pull_with_retries(stage, client, settings, cancel, &pass(Listing::Ids)).await?;
    stage.set_listed_aside().await?;
    let edited = pass(Listing::EditedSince(since));
    pull_with_retries(stage, client, settings, cancel, &edited).await?;
    let unknown = stage.merge_listed().await?;
    if unknown == 0 {
        return Ok((items, mode));
    }
    tracing::info!(
        unknown,
        "listed devices are neither stored nor among the edited records; pulling every record"
    );
    stage.clear().await?;
    let items = pull_with_retries(stage, client, settings, cancel, &records).await?;
    Ok((items, Mode::Full))
}

/// Pulls `pass`'s listing into the stage until one pass sees a consistent inventory; the number
/// of devices.
async fn pull_with_retries(
    stage: &mut PullStage,
    client: &Client,
    settings: &DevicesSettings,
    cancel: &CancellationToken,
    pass: &Pass,
) -> Result<i64, PullError> {
    let mut attempt = 0;
    let items = loop {
        attempt += 1;
        if attempt > 1 {
            stage.clear().await?;
        }
        match paging::pull_once(stage, client, settings, cancel, pass).await {
            Ok(items) => break items,
            Err(PullError::Drift(reason)) if attempt <= settings.max_drift_retries => {
                tracing::warn!(attempt, reason = %reason, "inventory changed while paging; starting the pull over");
            }
            Err(PullError::Drift(reason)) => {
                return Err(PullError::Drift(format!(
                    "{reason} (gave up after {attempt} attempts)"
                )));
            }
            Err(e) => return Err(e),
        }
    };
    if cancel.is_cancelled() {
        return Err(PullError::Cancelled);
    }
    Ok(items)
}

/// Drops change rows and runs past their retention; a failure here is only worth a warning.
async fn prune(db: &Db, settings: &DevicesSettings) {
    let before = crate::time::iso(crate::time::sub(chrono::Utc::now(), settings.keep_changes));
    match devices::prune_changes(db, &before).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(rows = n, "pruned old device_changes"),
        Err(e) => tracing::warn!(error = %e, "could not prune device_changes"),
    }
    if let Err(e) = runs::prune(db, &before).await {
        tracing::warn!(error = %e, "could not prune sync_runs");
    }
}
