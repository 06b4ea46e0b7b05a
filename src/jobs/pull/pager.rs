//! The page fetcher: requests pages of one listing (every record, the ids, or the records
//! edited since a day) `devices.concurrency` at a time in the order they are queued, counts
//! their bytes, and parses each on a blocking thread unless its body is the one the last applied
//! pull got at the same place.

use super::error::PullError;
use super::window::Window;
use crate::config::DevicesSettings;
use crate::d42::{self, Client};
use crate::device::DeviceColumns;
use crate::store::pages::{KnownPage, KnownPages};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

/// The brief list of every device: v2 items without `include_cols`, about a twentieth of the
/// bytes of full records. v1 has no brief form; the ids are the same, so it serves either endpoint.
pub(super) const BRIEF_LIST: &str = "/api/2.0/devices/";

/// Which device list a pass pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    /// Every record of `devices.endpoint`.
    Records,
    /// The id of every device, from [`BRIEF_LIST`].
    Ids,
    /// The records of `devices.endpoint` edited on or after this day (UTC).
    EditedSince(chrono::NaiveDate),
}

/// One pass: the listing it pages, and the run's count of body bytes received.
#[derive(Debug, Clone)]
pub(super) struct Pass {
    /// What is listed.
    pub(super) listing: Listing,
    /// Body bytes of every page of the run, for its INFO line.
    pub(super) bytes: Arc<AtomicU64>,
}

/// A fetched page.
pub(super) struct FetchedPage {
    /// The offset asked for.
    pub(super) offset: u64,
    /// The limit asked for.
    pub(super) asked: u64,
    /// xxh3-128 of the body.
    pub(super) hash: u128,
    /// `total_count` as the body gave it.
    pub(super) total_count: Option<u64>,
    /// `limit` as the body gave it (a server may cap what was asked).
    pub(super) limit: Option<u64>,
    /// The records, or that they are the last pull's.
    pub(super) content: PageContent,
}

/// What a fetched page holds.
pub(super) enum PageContent {
    /// Parsed into an index over its body (no copy of the records).
    Parsed {
        body: String,
        /// Each device in page order.
        items: Vec<FetchedItem>,
    },
    /// The same body as the last applied pull got here: the same records, already stored. The
    /// body stays for a page that overlaps the page before otherwise than last time: its ids
    /// are then taken from the body, see [`FetchedPage::parsed`].
    Known(KnownPage, d42::Body),
}

impl FetchedPage {
    /// Devices on the page.
    pub(super) fn len(&self) -> u64 {
        match &self.content {
            PageContent::Parsed { items, .. } => items.len() as u64,
            PageContent::Known(page, _) => page.count,
        }
    }

    /// The first and the last device id, if the page has any.
    pub(super) fn first_and_last(&self) -> Option<(i64, i64)> {
        match &self.content {
            PageContent::Parsed { items, .. } => {
                Some((items.first()?.device_id, items.last()?.device_id))
            }
            PageContent::Known(page, _) => Some((page.first_id?, page.last_id?)),
        }
    }

    /// The page with its records parsed, known or not.
    pub(super) fn parsed(self) -> Result<FetchedPage, PullError> {
        match self.content {
            PageContent::Parsed { .. } => Ok(self),
            PageContent::Known(_, body) => parse(self.offset, self.asked, self.hash, body),
        }
    }
}

/// One device of a fetched page.
pub(super) struct FetchedItem {
    /// Device42's id.
    pub(super) device_id: i64,
    /// Hash of the raw record.
    pub(super) hash: i64,
    /// Where the record's JSON lies in the page body.
    pub(super) range: std::ops::Range<usize>,
    /// The typed columns derived from it.
    pub(super) columns: DeviceColumns,
}

/// Received pages held beyond those in flight. A page is parsed, then waits for the pages before
/// it to be staged; if it held its request slot meanwhile, every slow stage would idle the link.
/// On a 200 ms link with 8 in flight, two such pages took a first load of 100 000 devices from
/// 3.6 s to 3.2 s (`bench/findings.md`); four took 3.16-3.21 s against 3.16-3.23 s, and held
/// 6-8 MiB more. When the stage is behind, [`Window`] holds fewer.
const RECEIVED_AHEAD: usize = 2;

/// A page fetch running on its own task; dropping it aborts the fetch.
pub(super) type Fetching = AbortOnDropHandle<Result<FetchedPage, PullError>>;

/// What every page fetch of one pass shares.
#[derive(Clone)]
pub(super) struct Pager {
    /// The client every request goes through.
    client: Client,
    /// The endpoint, its columns and the concurrency.
    settings: DevicesSettings,
    /// The last applied pull's pages (none unless the pass lists every record).
    known: Arc<KnownPages>,
    /// The listing and the byte count.
    pass: Pass,
    /// Ends every fetch when the service stops.
    cancel: CancellationToken,
    /// `devices.concurrency` permits: one per request in flight.
    in_flight: Arc<Semaphore>,
    /// One permit per core: pages parsed at once (see [`Pager::fetch_in`]).
    parsing: Arc<Semaphore>,
    /// Told when the page queued last has its slot.
    last: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    /// The pages held by the pass, and how long fetches take.
    window: Arc<Window>,
}

/// A page's place in the queue for request slots.
struct Turn {
    /// Told when the page queued before has its slot; `None` for the first page.
    before: Option<oneshot::Receiver<()>>,
    /// Tells the page queued next.
    mine: oneshot::Sender<()>,
}

impl Pager {
    /// A pager for `pass`, which knows the last applied pull's pages as `known` (only a pass
    /// over every record uses them: another listing's bodies differ at the same offsets).
    pub(super) fn new(
        client: &Client,
        settings: &DevicesSettings,
        (known, pass): (Arc<KnownPages>, &Pass),
        cancel: &CancellationToken,
    ) -> Self {
        let known = match pass.listing {
            Listing::Records => known,
            Listing::Ids | Listing::EditedSince(_) => Arc::default(),
        };
        Self {
            client: client.clone(),
            settings: settings.clone(),
            known,
            pass: pass.clone(),
            cancel: cancel.clone(),
            in_flight: Arc::new(Semaphore::new(settings.concurrency)),
            parsing: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            last: Arc::default(),
            window: Arc::new(Window::new(settings.concurrency + RECEIVED_AHEAD)),
        }
    }

    /// Whether the pass lists ids alone: its items are staged as present, never as records.
    pub(super) fn ids_only(&self) -> bool {
        self.pass.listing == Listing::Ids
    }

    /// Pages fetched ahead of the one being staged: those in flight, and up to
    /// [`RECEIVED_AHEAD`] received ones that are being parsed or wait their turn.
    pub(super) fn lookahead(&self) -> usize {
        self.settings.concurrency + RECEIVED_AHEAD
    }

    /// The pages the pass holds: the stage releases each page it is done with.
    pub(super) fn window(&self) -> &Window {
        &self.window
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

    /// Queues the page for a slot now, then fetches it on a task of its own.
    pub(super) fn spawn(&self, offset: u64, limit: u64) -> Fetching {
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
    pub(super) async fn fetch(&self, offset: u64, limit: u64) -> Result<FetchedPage, PullError> {
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
        let (path, query) = page_query(settings, self.pass.listing, offset, limit);
        let started = Instant::now();
        let body = tokio::select! {
            body = client.get(path, &query) => body?,
            () = cancel.cancelled() => return Err(PullError::Cancelled),
        };
        drop(slot);
        let len = body.bytes.len() as u64;
        self.pass.bytes.fetch_add(len, Ordering::Relaxed);
        tracing::debug!(
            offset,
            bytes = len,
            ms = started.elapsed().as_millis() as u64,
            "page fetched"
        );
        let hash = xxhash_rust::xxh3::xxh3_128(&body.bytes);
        if let Some(page) = known.get(&(offset, limit)).filter(|page| page.hash == hash) {
            self.window.fetched(started.elapsed());
            return Ok(FetchedPage {
                offset,
                asked: limit,
                hash,
                total_count: page.total_count,
                limit: page.limit,
                content: PageContent::Known(*page, body),
            });
        }
        // A page of 1 000 full records parses in 10-20 ms. On the runtime's own threads that
        // held up the tasks that send the next requests and read the bodies: on a 200 ms link,
        // 8 in flight averaged 7.5. On blocking threads, one page per core at a time, 8 stay in
        // flight. (One at a time left bodies waiting for their parse: a fast first load of
        // 100 000 devices peaked at 64-68 MiB against 55-64, `bench/findings.md`.)
        let _parsing = Arc::clone(&self.parsing).acquire_owned().await.ok();
        let page = tokio::task::spawn_blocking(move || parse(offset, limit, hash, body))
            .await
            .map_err(|e| PullError::Task(e.to_string()))?;
        self.window.fetched(started.elapsed());
        page
    }
}

/// Parses the page asked at `offset` with `limit`, whose body hashes as `hash`.
fn parse(offset: u64, limit: u64, hash: u128, body: d42::Body) -> Result<FetchedPage, PullError> {
    crate::failpoint::block("pull.slow_parse");
    let parsed = d42::models::parse_device_page(&body.bytes).map_err(|cause| body.bad(cause))?;
    let (total_count, limit_given) = (parsed.total_count, parsed.limit);
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
    // The parse checked the body to be UTF-8; kept as text, its records need no check when
    // they are staged.
    let body = String::from_utf8(body.bytes)
        .map_err(|e| PullError::Task(format!("a parsed page is not UTF-8: {e}")))?;
    Ok(FetchedPage {
        offset,
        asked: limit,
        hash,
        total_count,
        limit: limit_given,
        content: PageContent::Parsed { body, items },
    })
}

/// The path and query of one page: paging, `blankasnull=yes` (so that Device42 sends null, not
/// `""`, for an unset field), and for records `include_cols` on a v2 endpoint (v1 records are
/// full without it); for edited records the day-granular, inclusive edit filter
/// (`last_edited_gt` on v2, `last_updated_gt` on v1).
fn page_query(
    settings: &DevicesSettings,
    listing: Listing,
    offset: u64,
    limit: u64,
) -> (&str, Vec<(&'static str, String)>) {
    let mut query = vec![
        ("limit", limit.to_string()),
        ("offset", offset.to_string()),
        ("blankasnull", "yes".to_string()),
    ];
    let v2 = settings.endpoint.starts_with("/api/2.0/");
    if listing == Listing::Ids {
        return (BRIEF_LIST, query);
    }
    if v2 && !settings.include_cols.is_empty() {
        query.push(("include_cols", settings.include_cols.join(",")));
    }
    if let Listing::EditedSince(day) = listing {
        let key = if v2 {
            "last_edited_gt"
        } else {
            "last_updated_gt"
        };
        query.push((key, day.format("%Y-%m-%d").to_string()));
    }
    (&settings.endpoint, query)
}
