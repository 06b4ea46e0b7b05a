//! The building push: drains due `building_queue` rows to `POST /api/1.0/buildings/`.
//!
//! Each pass claims a batch in one short transaction (rows become `sending`), commits, sends up
//! to `buildings.concurrency` POSTs at a time with no transaction open, and records each outcome
//! in its own short transaction. A crash between Device42's answer and the recorded outcome
//! leaves the row `sending`; the next start returns it to `pending`, uncharged, and it is sent
//! again, which the upsert by name makes harmless.
//!
//! Only Device42's answer about a row may cost the row an attempt or dead-letter it: `attempts`
//! counts answers to its buildings POST (a 2xx, a rejection, a 408/429/5xx, a body that cannot
//! be read). A POST that was sent and got no answer (a timeout, a reset mid-request) counts as
//! one too: the request reached the appliance, which may be failing on this very row, and a row
//! that breaks the appliance every time must end `dead` rather than be sent forever.
//!
//! A failure before Device42 could answer about the row is not the row's: the token request
//! failed (any status, TLS, network), the buildings POST never connected (refused, DNS, TLS, no
//! connection within `device42.connect_timeout`), the token was refused again after renewal, or
//! the breaker held the call. The row goes back
//! to `pending` as it was, the rest of the batch goes back unsent, and the run is recorded
//! `failed` with one ERROR line naming the cause.
//!
//! While calls to Device42 are paused after repeated failures, nothing is claimed: an outage
//! costs no row an attempt. A probe run claims one row.

use super::backoff;
use super::{Outcome, RunReport, Start};
use crate::config::BuildingsSettings;
use crate::d42::{self, BUILDINGS_PATH, Client};
use crate::store::Db;
use crate::store::queue::{self, QueuedBuilding};
use crate::store::runs::{self, Job, RunCounts, RunStatus};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What became of one row.
enum RowOutcome {
    /// Accepted by Device42: `done`.
    Done,
    /// Refused or failed in a way worth another attempt: back to `pending` at a later time.
    Retry,
    /// Refused for good, or out of attempts: `dead`.
    Dead,
    /// Device42 did not answer about the row (see the module doc): back to `pending` as it
    /// was, and the pass stops.
    Unanswered(d42::Error),
    /// Not sent, as an earlier row of the pass was not answered: back to `pending` as it was.
    Unsent,
}

/// A push that ended because the breaker refused its calls: the breaker reports the outage, so
/// a probe run that meets it logs at DEBUG, as a pull does.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Runs one push: passes over due rows until none are left or the service stops. A run with
/// nothing to send records nothing. Returns `Err` when the run failed as a whole (database
/// errors, refused credentials).
pub async fn run(
    db: &Db,
    client: &Client,
    settings: &BuildingsSettings,
    cancel: &CancellationToken,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let buried = queue::bury_invalid(db).await?;
    if buried > 0 {
        tracing::warn!(rows = buried, "queue rows with an empty name marked dead");
    }
    let start = match Start::of(client, Job::PushBuildings, started) {
        Ok(start) => start,
        Err(skipped) => {
            refresh_queue_metrics(db, client).await;
            return Ok(skipped);
        }
    };
    let result = run_inner(db, client, settings, cancel, &start, started).await;
    if let Err(e) = &result {
        let refused = e.downcast_ref::<Refused>().is_some();
        if start.failure_reported(client, refused) {
            tracing::debug!(error = %format!("{e:#}"), "probe push failed");
        } else {
            tracing::error!(error = %format!("{e:#}"), "push failed");
        }
    }
    result
}

async fn run_inner(
    db: &Db,
    client: &Client,
    settings: &BuildingsSettings,
    cancel: &CancellationToken,
    start: &Start,
    started: Instant,
) -> anyhow::Result<RunReport> {
    let due_before = crate::time::now_iso();
    let first = match start {
        Start::Probe => 1,
        Start::Normal => settings.batch_size,
    };
    let mut batch = queue::claim_due(db, &due_before, first).await?;
    if batch.is_empty() {
        refresh_queue_metrics(db, client).await;
        prune(db, settings).await;
        return Ok(RunReport {
            run_id: None,
            outcome: Outcome::Idle,
            counts: RunCounts::default(),
            duration: started.elapsed(),
        });
    }
    let run_id = runs::start(db, Job::PushBuildings).await?;
    let span = tracing::info_span!("run", job = "push_buildings", run_id);
    async move {
        let mut counts = RunCounts::default();
        let mut failure: Option<String> = None;
        // The failure is only the breaker refusing calls, not a cause of its own.
        let mut refused = false;
        let mut unsent = 0;
        // Set by the first row Device42 did not answer about: the rows after it are not sent.
        let stop = AtomicBool::new(false);
        let mut lead = true;
        while !batch.is_empty() {
            counts.items += batch.len() as i64;
            let outcomes = send_batch(db, client, settings, batch, lead, &stop).await;
            lead = false;
            // The first cause other than the breaker's refusal, which only echoes an outage.
            let mut cause: Option<d42::Error> = None;
            for outcome in outcomes {
                match outcome {
                    Ok(RowOutcome::Done) => counts.sent += 1,
                    Ok(RowOutcome::Retry | RowOutcome::Dead) => counts.failed += 1,
                    Ok(RowOutcome::Unanswered(e)) => {
                        counts.items -= 1;
                        unsent += 1;
                        if !matches!(e, d42::Error::Paused { .. }) {
                            cause.get_or_insert(e);
                        }
                    }
                    Ok(RowOutcome::Unsent) => {
                        counts.items -= 1;
                        unsent += 1;
                    }
                    Err(e) => {
                        counts.failed += 1;
                        failure = Some(format!("{e:#}"));
                    }
                }
            }
            if let Some(cause) = cause {
                failure
                    .get_or_insert_with(|| format!("{cause}; {unsent} rows not sent stay pending"));
            } else if client.is_paused() || stop.load(Ordering::Relaxed) {
                failure.get_or_insert_with(|| {
                    refused = true;
                    format!("Device42 unreachable; {unsent} rows not sent stay pending")
                });
            }
            if failure.is_some() || cancel.is_cancelled() {
                break;
            }
            batch = queue::claim_due(db, &due_before, settings.batch_size).await?;
        }
        let duration = started.elapsed();
        let status = if failure.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
        runs::finish(db, run_id, status, counts, failure.as_deref()).await?;
        refresh_queue_metrics(db, client).await;
        prune(db, settings).await;
        let outcome = match &failure {
            None => {
                tracing::info!(
                    items = counts.items,
                    sent = counts.sent,
                    failed = counts.failed,
                    duration_ms = duration.as_millis() as u64,
                    "push finished"
                );
                client.metrics().run_finished(
                    Job::PushBuildings.as_str(),
                    Outcome::Ok.as_str(),
                    duration.as_secs_f64(),
                );
                Outcome::Ok
            }
            Some(e) => {
                client.metrics().run_finished(
                    Job::PushBuildings.as_str(),
                    Outcome::Failed.as_str(),
                    duration.as_secs_f64(),
                );
                let message = format!("{e} (sent {}, failed {})", counts.sent, counts.failed);
                if refused {
                    return Err(Refused(message).into());
                }
                anyhow::bail!(message);
            }
        };
        Ok(RunReport {
            run_id: Some(run_id),
            outcome,
            counts,
            duration,
        })
    }
    .instrument(span)
    .await
}

/// Sends a claimed batch, `buildings.concurrency` rows at a time, and records the outcomes. With
/// `lead` (the first batch of a run) the first row goes alone: a run whose token request or
/// connection fails meets that once, not once per POST in flight, and returns the rest unsent.
async fn send_batch(
    db: &Db,
    client: &Client,
    settings: &BuildingsSettings,
    batch: Vec<QueuedBuilding>,
    lead: bool,
    stop: &AtomicBool,
) -> Vec<anyhow::Result<RowOutcome>> {
    let mut rows = batch.into_iter();
    let mut outcomes = Vec::with_capacity(rows.len());
    if lead && let Some(row) = rows.next() {
        outcomes.push(send_one(db, client, settings, row, stop).await);
        if stop.load(Ordering::Relaxed) {
            let ids: Vec<i64> = rows.map(|row| row.id).collect();
            match queue::release(db, &ids).await {
                Ok(()) => outcomes.extend(ids.iter().map(|_| Ok(RowOutcome::Unsent))),
                Err(e) => outcomes.push(Err(e.into())),
            }
            return outcomes;
        }
    }
    let rest: Vec<_> = futures::stream::iter(rows)
        .map(|row| send_one(db, client, settings, row, stop))
        .buffer_unordered(settings.concurrency)
        .collect()
        .await;
    outcomes.extend(rest);
    outcomes
}

/// Sends one claimed row and records the outcome; once `stop` is set, returns the row unsent.
async fn send_one(
    db: &Db,
    client: &Client,
    settings: &BuildingsSettings,
    row: QueuedBuilding,
    stop: &AtomicBool,
) -> anyhow::Result<RowOutcome> {
    if stop.load(Ordering::Relaxed) {
        queue::release(db, &[row.id]).await?;
        return Ok(RowOutcome::Unsent);
    }
    let result = client.post_building(&row.fields.form_fields()).await;
    crate::failpoint::hit("push.after_response");
    // Counting the answer this outcome records.
    let attempts = u32::try_from(row.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    match result {
        Ok(building_id) => {
            queue::mark_done(db, row.id, building_id).await?;
            tracing::debug!(id = row.id, building_id, "building sent");
            Ok(RowOutcome::Done)
        }
        Err(e) if !answered_about_the_row(&e) => {
            stop.store(true, Ordering::Relaxed);
            queue::release(db, &[row.id]).await?;
            tracing::debug!(id = row.id, error = %e, "building not answered, stays pending");
            Ok(RowOutcome::Unanswered(e))
        }
        Err(e) if e.is_retryable() && attempts < settings.max_attempts => {
            retry_later(
                db,
                settings,
                &row,
                attempts,
                e.retry_after(),
                &e.to_string(),
            )
            .await?;
            Ok(RowOutcome::Retry)
        }
        Err(e) => {
            let error = if e.is_retryable() {
                format!("gave up after {attempts} attempts: {e}")
            } else {
                e.to_string()
            };
            tracing::warn!(id = row.id, name = %row.fields.name, error = %error, "building dead-lettered");
            queue::mark_dead(db, row.id, &error).await?;
            Ok(RowOutcome::Dead)
        }
    }
}

/// Whether a failed building POST is Device42's answer about the row: the POST itself got an
/// answer, or was sent and lost. Not when the token request it needed failed, the connection
/// was never made, the token was refused again after renewal, or the breaker held the call.
fn answered_about_the_row(e: &d42::Error) -> bool {
    let buildings_post = e
        .endpoint()
        .strip_prefix("POST ")
        .is_some_and(|path| path == BUILDINGS_PATH);
    buildings_post
        && !matches!(
            e,
            d42::Error::Connect { .. }
                | d42::Error::Certificate { .. }
                | d42::Error::Auth { .. }
                | d42::Error::Paused { .. }
        )
}

async fn retry_later(
    db: &Db,
    settings: &BuildingsSettings,
    row: &QueuedBuilding,
    attempts: u32,
    retry_after: Option<std::time::Duration>,
    error: &str,
) -> anyhow::Result<()> {
    let at = backoff::next_attempt_at(
        chrono::Utc::now(),
        attempts,
        settings.retry_base,
        settings.retry_max,
        retry_after,
        &mut rand::rng(),
    );
    tracing::debug!(id = row.id, attempts, error, "building will be retried");
    queue::mark_retry(db, row.id, &crate::time::iso(at), error).await?;
    Ok(())
}

async fn refresh_queue_metrics(db: &Db, client: &Client) {
    if let Ok(counts) = queue::counts(db).await {
        client.metrics().set_queue_depth(&counts);
    }
}

async fn prune(db: &Db, settings: &BuildingsSettings) {
    let before = crate::time::iso(crate::time::sub(chrono::Utc::now(), settings.keep_done));
    if let Err(e) = queue::prune_done(db, &before).await {
        tracing::warn!(error = %e, "could not prune done queue rows");
    }
}
