//! The device pull: pages `devices.endpoint` into a staging table and swaps the complete
//! snapshot into `devices` in one transaction.
//!
//! A pull is complete only when the distinct ids received equal the `total_count` the server
//! reported and that count did not move while paging. If the inventory shifted under the pager
//! (repeated or skipped rows), the pull starts over, up to `devices.max_drift_retries` times;
//! one that never gets a consistent picture fails and changes nothing. Pages are fetched
//! `devices.concurrency` at a time and parsed on the runtime's worker threads; memory is bounded
//! by the pages in flight and two received ones waiting to be staged, not by the inventory. A
//! page whose body hashes as the same page of the last applied pull is not parsed: its records
//! are the ones stored ([`crate::store::pages`]).

use super::{RunReport, Start};
use crate::config::DevicesSettings;
use crate::d42::{self, Client};
use crate::device::DeviceColumns;
use crate::store::Db;
use crate::store::devices::{self, ApplyOutcome, DeleteGuard, PageCounts, PullStage, StageRow};
use crate::store::pages::{KnownPage, KnownPages, SeenPage};
use crate::store::runs::{self, Job, RunCounts, RunStatus};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

/// Options of one pull.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullOptions {
    /// Apply even if the mass-deletion guard would hold the pull.
    pub allow_mass_delete: bool,
}

/// Why a pull did not produce a snapshot to apply.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error(transparent)]
    Api(#[from] d42::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("inventory changed while paging: {0}")]
    Drift(String),
    #[error("stopped: the service is shutting down")]
    Cancelled,
    #[error("page task failed: {0}")]
    Task(String),
}

/// A fetched page.
struct FetchedPage {
    offset: u64,
    /// The limit asked for.
    asked: u64,
    /// xxh3-128 of the body.
    hash: u128,
    total_count: Option<u64>,
    limit: Option<u64>,
    content: PageContent,
}

/// What a fetched page holds.
enum PageContent {
    /// Parsed into an index over its body (no copy of the records).
    Parsed {
        body: Vec<u8>,
        /// Each device in page order.
        items: Vec<FetchedItem>,
    },
    /// The same body as the last applied pull got here: the same records, already stored.
    Known(KnownPage),
}

impl FetchedPage {
    /// Devices on the page.
    fn len(&self) -> u64 {
        match &self.content {
            PageContent::Parsed { items, .. } => items.len() as u64,
            PageContent::Known(page) => page.count,
        }
    }

    /// The first and the last device id, if the page has any.
    fn first_and_last(&self) -> Option<(i64, i64)> {
        match &self.content {
            PageContent::Parsed { items, .. } => {
                Some((items.first()?.device_id, items.last()?.device_id))
            }
            PageContent::Known(page) => Some((page.first_id?, page.last_id?)),
        }
    }
}

/// One device of a fetched page.
struct FetchedItem {
    /// Device42's id.
    device_id: i64,
    /// Hash of the raw record.
    hash: i64,
    /// Where the record's JSON lies in the page body.
    range: std::ops::Range<usize>,
    /// The typed columns derived from it.
    columns: DeviceColumns,
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
        match result {
            Ok((ApplyOutcome::Applied(counts), pages)) => {
                tracing::info!(
                    items = counts.items, added = counts.added, changed = counts.changed,
                    pages_parsed = pages.parsed, pages_reused = pages.reused,
                    removed = counts.removed, duration_ms = duration.as_millis() as u64,
                    "pull finished"
                );
                client.metrics().run_finished(Job::PullDevices.as_str(), "ok", duration.as_secs_f64());
                prune(db, settings).await;
                client.metrics().set_devices_stored(devices::count(db).await.unwrap_or(0));
                Ok(RunReport { run_id: Some(run_id), outcome: "ok", counts, duration })
            }
            Ok((ApplyOutcome::Held { stored, incoming, removing }, _)) => {
                tracing::warn!(
                    stored, incoming, removing, max_delete_fraction = settings.max_delete_fraction,
                    "pull held: it would remove more devices than devices.max_delete_fraction allows; \
                     nothing changed; run `d42sync pull --allow-mass-delete` to apply it"
                );
                client.metrics().run_finished(Job::PullDevices.as_str(), "held", duration.as_secs_f64());
                let counts = RunCounts { items: incoming, removed: removing, ..Default::default() };
                Ok(RunReport { run_id: Some(run_id), outcome: "held", counts, duration })
            }
            Err(e) => {
                let message = e.to_string();
                let refused = matches!(e, PullError::Api(d42::Error::Paused { .. }));
                if start.failure_reported(client, refused) {
                    tracing::debug!(error = %message, "probe pull failed; devices unchanged");
                } else if matches!(e, PullError::Cancelled) {
                    // A stop asked for by the service manager: nothing for an operator to do.
                    tracing::warn!(duration_ms = duration.as_millis() as u64, "pull stopped by shutdown; devices unchanged");
                } else {
                    tracing::error!(endpoint = %settings.endpoint, error = %message, duration_ms = duration.as_millis() as u64, "pull failed; devices unchanged");
                }
                client.metrics().run_finished(Job::PullDevices.as_str(), "failed", duration.as_secs_f64());
                if let Err(record) = runs::finish(db, run_id, RunStatus::Failed, RunCounts::default(), Some(&message)).await {
                    tracing::warn!(error = %record, "could not record the failed run");
                }
                Err(anyhow::Error::new(e).context("pull failed"))
            }
        }
    }
    .instrument(span)
    .await
}

async fn pull_and_apply(
    db: &Db,
    client: &Client,
    settings: &DevicesSettings,
    options: PullOptions,
    cancel: &CancellationToken,
    run_id: i64,
) -> Result<(ApplyOutcome, PageCounts), PullError> {
    let mut stage = PullStage::new(db, run_id).await?;
    let items = match pull_with_retries(&mut stage, client, settings, cancel).await {
        Ok(items) => items,
        Err(e) => {
            stage.discard().await;
            return Err(e);
        }
    };
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
    Ok((outcome, pages))
}

/// Pulls into the stage until one pass sees a consistent inventory; the number of devices.
async fn pull_with_retries(
    stage: &mut PullStage,
    client: &Client,
    settings: &DevicesSettings,
    cancel: &CancellationToken,
) -> Result<i64, PullError> {
    let mut attempt = 0;
    let items = loop {
        attempt += 1;
        if attempt > 1 {
            stage.clear().await?;
        }
        match pull_once(stage, client, settings, cancel).await {
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

/// One pass over every page into the (empty) stage; the number of devices on success.
///
/// Pages overlap by one item: page `k` starts at offset `k * (step - 1)`, so its first item
/// must be the previous page's last. If rows below were deleted or inserted between two page
/// requests, the offsets shift and that check fails; together with `total_count` staying put
/// and the distinct ids matching it, this catches the skips and repeats of limit/offset paging.
async fn pull_once(
    stage: &mut PullStage,
    client: &Client,
    settings: &DevicesSettings,
    cancel: &CancellationToken,
) -> Result<i64, PullError> {
    let asked = u64::from(settings.page_size);
    let pager = Pager::new(client, settings, stage.known_pages(), cancel);
    let advance_guess = if asked > 1 { asked - 1 } else { asked };
    // The next pages go out with the first one, on the guess that the server honours `limit`
    // and the inventory spans them: on a slow link that saves a whole round trip. A wrong guess
    // costs a few requests that are thrown away (aborted when dropped). While calls are paused
    // the first page goes alone: it is the breaker's probe.
    let early_pages = if client.is_paused() {
        1
    } else {
        settings.concurrency as u64
    };
    let mut early: HashMap<u64, Fetching> = (1..early_pages)
        .map(|k| k * advance_guess)
        .map(|offset| (offset, pager.spawn(offset, asked)))
        .collect();
    // Behind the early pages in the queue for slots, but there is one slot left for it.
    let first = pager.fetch(0, asked).await?;
    let total = first.total_count;
    let short_first = first.len() < asked && total.is_some_and(|t| t > first.len());
    // The server may cap `limit` below what was asked ("Enforce API GET Limits").
    let step = match first.limit.filter(|l| *l > 0) {
        Some(l) => l.min(asked),
        // A short first page of a larger inventory, without an echoed limit: the server capped it.
        None if short_first && first.len() > 0 => first.len(),
        None => asked,
    };
    let advance = if step > 1 { step - 1 } else { step };
    let mut last_id = None;
    let mut distinct = stage_page(stage, &first, &mut last_id).await?;
    let mut last_len = first.len();
    drop(first);

    match total {
        Some(total) => {
            let offsets: Vec<u64> = (1..)
                .map(|k| k * advance)
                .take_while(|o| o + (step - advance) < total)
                .collect();
            if step != asked {
                early.clear();
            }
            let mut pages = futures::stream::iter(offsets)
                .map(|offset| {
                    early
                        .remove(&offset)
                        .unwrap_or_else(|| pager.spawn(offset, step))
                })
                .buffered(pager.lookahead());
            while let Some(joined) = pages.next().await {
                let page = joined.map_err(|e| PullError::Task(e.to_string()))??;
                if page.total_count != Some(total) {
                    return Err(PullError::Drift(format!(
                        "total_count moved from {total} to {} at offset {}",
                        page.total_count.map_or("none".into(), |t| t.to_string()),
                        page.offset
                    )));
                }
                distinct += stage_page(stage, &page, &mut last_id).await?;
            }
            if distinct != total {
                return Err(PullError::Drift(format!(
                    "received {distinct} distinct devices, total_count is {total}"
                )));
            }
        }
        None => {
            // No total_count: page sequentially until a short page. Completeness then rests on
            // the page overlaps and the absence of repeated ids.
            let mut offset = 0;
            while last_len == step {
                offset += advance;
                let page = pager.fetch(offset, step).await?;
                last_len = page.len();
                distinct += stage_page(stage, &page, &mut last_id).await?;
            }
        }
    }
    if !stage.finish().await? {
        return Err(PullError::Drift("device ids repeated across pages".into()));
    }
    Ok(distinct as i64)
}

/// Checks a page against the previous one (its first item must repeat the previous page's
/// last) and stages it without that overlap, writing only records whose hash differs from the
/// stored one. Returns the ids new to this pull.
async fn stage_page(
    stage: &mut PullStage,
    page: &FetchedPage,
    last_id: &mut Option<i64>,
) -> Result<u64, PullError> {
    let ends = page.first_and_last();
    let overlap = match (*last_id, ends) {
        (None, _) => false,
        (Some(_), None) => return Ok(0),
        (Some(prev), Some((first, _))) if first == prev => true,
        (Some(prev), Some((first, _))) => {
            return Err(PullError::Drift(format!(
                "the page at offset {} starts at device {first} instead of {prev}: rows moved while paging",
                page.offset
            )));
        }
    };
    if let Some((_, last)) = ends {
        *last_id = Some(last);
    }
    let key = (page.offset, page.asked);
    let (body, all) = match &page.content {
        PageContent::Known(known) => return Ok(stage.reuse(key, known, overlap).await?),
        PageContent::Parsed { body, items } => (body, items),
    };
    let items = &all[usize::from(overlap)..];
    let lo = items.iter().map(|i| i.device_id).min().unwrap_or(0);
    let hi = items.iter().map(|i| i.device_id).max().unwrap_or(0);
    let stored = if items.is_empty() {
        HashMap::new()
    } else {
        stage.stored_hashes(lo, hi).await?
    };
    let rows: Vec<StageRow<'_>> = items
        .iter()
        .map(|item| StageRow {
            device_id: item.device_id,
            raw_hash: item.hash,
            record: match stored.get(&item.device_id) {
                Some(h) if *h == item.hash => None,
                // Ranges were cut from the body by the JSON parser at value boundaries, and the
                // body was checked to be UTF-8.
                _ => Some((
                    std::str::from_utf8(&body[item.range.clone()]).unwrap_or_default(),
                    &item.columns,
                )),
            },
        })
        .collect();
    let ids: Vec<i64> = all.iter().map(|i| i.device_id).collect();
    let seen = SeenPage {
        key,
        hash: page.hash,
        total_count: page.total_count,
        limit: page.limit,
        ids: Some(&ids),
    };
    let started = Instant::now();
    let inserted = stage.stage(seen, &rows).await?;
    tracing::trace!(
        offset = page.offset,
        rows = rows.len(),
        ms = started.elapsed().as_millis() as u64,
        "page staged"
    );
    if inserted < rows.len() as u64 {
        return Err(PullError::Drift(format!(
            "{} device ids repeated at offset {}",
            rows.len() as u64 - inserted,
            page.offset
        )));
    }
    Ok(inserted)
}

/// Received pages held beyond those in flight. A page is parsed, then waits for the pages before
/// it to be staged; if it held its request slot meanwhile, every slow stage would idle the link.
/// On a 200 ms link with 8 in flight, two such pages took a first load of 100 000 devices from
/// 3.6 s to 3.2 s; each costs about 3 MB while the stage is behind (`bench/findings.md`).
const RECEIVED_AHEAD: usize = 2;

/// A page fetch running on its own task; dropping it aborts the fetch.
type Fetching = AbortOnDropHandle<Result<FetchedPage, PullError>>;

/// What every page fetch of one pass shares.
#[derive(Clone)]
struct Pager {
    client: Client,
    settings: DevicesSettings,
    /// The last applied pull's pages.
    known: Arc<KnownPages>,
    cancel: CancellationToken,
    /// `devices.concurrency` permits: one per request in flight.
    in_flight: Arc<Semaphore>,
    /// Told when the page queued last has its slot.
    last: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

/// A page's place in the queue for request slots.
struct Turn {
    /// Told when the page queued before has its slot; `None` for the first page.
    before: Option<oneshot::Receiver<()>>,
    /// Tells the page queued next.
    mine: oneshot::Sender<()>,
}

impl Pager {
    fn new(
        client: &Client,
        settings: &DevicesSettings,
        known: Arc<KnownPages>,
        cancel: &CancellationToken,
    ) -> Self {
        Self {
            client: client.clone(),
            settings: settings.clone(),
            known,
            cancel: cancel.clone(),
            in_flight: Arc::new(Semaphore::new(settings.concurrency)),
            last: Arc::default(),
        }
    }

    /// Pages fetched ahead of the one being staged: those in flight, and up to
    /// [`RECEIVED_AHEAD`] received ones that are being parsed or wait their turn.
    fn lookahead(&self) -> usize {
        self.settings.concurrency + RECEIVED_AHEAD
    }

    /// Queues for a request slot: behind every page queued before, so pages are requested in
    /// the order they are queued whichever task runs first.
    fn queue(&self) -> Turn {
        let (mine, next) = oneshot::channel();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        Turn {
            before: last.replace(next),
            mine,
        }
    }

    /// A request slot, once the page queued before has one and a slot is free. (`None` only if
    /// the semaphore were closed, which it never is.)
    async fn slot(&self, turn: Turn) -> Option<OwnedSemaphorePermit> {
        if let Some(before) = turn.before {
            // An error: that page was dropped before it got a slot, which frees the turn too.
            let _ = before.await;
        }
        let slot = Arc::clone(&self.in_flight).acquire_owned().await.ok();
        let _ = turn.mine.send(());
        slot
    }

    /// Queues the page for a slot now, then fetches it on a worker thread.
    fn spawn(&self, offset: u64, limit: u64) -> Fetching {
        let turn = self.queue();
        let pager = self.clone();
        // The run's span goes with the page, so the page's retry lines carry `job` and `run_id`.
        AbortOnDropHandle::new(tokio::spawn(
            async move {
                let slot = pager.slot(turn).await;
                pager.fetch_in(slot, offset, limit).await
            }
            .instrument(tracing::Span::current()),
        ))
    }

    /// Queues the page for a slot, then fetches it here.
    async fn fetch(&self, offset: u64, limit: u64) -> Result<FetchedPage, PullError> {
        let slot = self.slot(self.queue()).await;
        self.fetch_in(slot, offset, limit).await
    }

    /// Fetches one page in `slot` and parses it unless it is known. The page counts as in
    /// flight until its body is in: parsing it and waiting for its turn to be staged do not
    /// hold up the next request.
    async fn fetch_in(
        &self,
        slot: Option<OwnedSemaphorePermit>,
        offset: u64,
        limit: u64,
    ) -> Result<FetchedPage, PullError> {
        let Self {
            client,
            settings,
            known,
            cancel,
            ..
        } = self;
        let query = page_query(settings, offset, limit);
        let started = Instant::now();
        let body = tokio::select! {
            body = client.get(&settings.endpoint, &query) => body?,
            () = cancel.cancelled() => return Err(PullError::Cancelled),
        };
        drop(slot);
        tracing::debug!(
            offset,
            bytes = body.bytes.len(),
            ms = started.elapsed().as_millis() as u64,
            "page fetched"
        );
        let hash = xxhash_rust::xxh3::xxh3_128(&body.bytes);
        if let Some(page) = known.get(&(offset, limit)).filter(|page| page.hash == hash) {
            return Ok(FetchedPage {
                offset,
                asked: limit,
                hash,
                total_count: page.total_count,
                limit: page.limit,
                content: PageContent::Known(*page),
            });
        }
        let parsed =
            d42::models::parse_device_page(&body.bytes).map_err(|cause| body.bad(cause))?;
        if std::str::from_utf8(&body.bytes).is_err() {
            return Err(body.bad("body is not valid utf-8").into());
        }
        let base = body.bytes.as_ptr() as usize;
        let items = parsed
            .items
            .into_iter()
            .map(|item| {
                let start = item.raw.as_ptr() as usize - base;
                FetchedItem {
                    device_id: item.device_id,
                    hash: xxhash_rust::xxh3::xxh3_64(item.raw.as_bytes()) as i64,
                    range: start..start + item.raw.len(),
                    columns: item.columns,
                }
            })
            .collect();
        Ok(FetchedPage {
            offset,
            asked: limit,
            hash,
            total_count: parsed.total_count,
            limit: parsed.limit,
            content: PageContent::Parsed {
                body: body.bytes,
                items,
            },
        })
    }
}

/// The query of one page: paging, `blankasnull=yes` (so that Device42 sends null, not `""`,
/// for an unset field), and `include_cols` for a v2 endpoint (v1 records are full without it).
fn page_query(settings: &DevicesSettings, offset: u64, limit: u64) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("limit", limit.to_string()),
        ("offset", offset.to_string()),
        ("blankasnull", "yes".to_string()),
    ];
    if settings.endpoint.starts_with("/api/2.0/") && !settings.include_cols.is_empty() {
        query.push(("include_cols", settings.include_cols.join(",")));
    }
    query
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
