//! The page plan of one pass: the first page, the offsets planned from its `total_count`, and
//! the pages past the plan until the listing is seen to end. Each page goes through a
//! [`Walk`], which repairs what churn shifts under the pager.
//!
//! # Why a pass under churn gets every device
//!
//! Device42 lists devices in ascending id order, and pages overlap by one item: page `k` asks
//! offset `k * (step - 1)`. While a large inventory pages for minutes, autodiscovery removes
//! and adds devices: a removal below an offset shifts every later item left (the next page
//! then starts past the last one staged, and items in between would be skipped); an addition
//! gets a higher id than any, at the end. A pass does not start over for that. It keeps a
//! cursor, the highest id covered so far, and takes the pages in offset order:
//!
//! - a page whose first id is at or below the cursor (or the page at offset 0) is accepted: its
//!   ids above the cursor are staged, and the cursor moves to its last id;
//! - a page whose first id is above the cursor (or which is empty, past offset 0) leaves a gap:
//!   items before its offset went away since the page before was fetched. A repair page is then
//!   fetched at an earlier offset (further back each time one still leaves a gap; offset 0
//!   always fits) and accepted; then the page is taken again ([`Walk::take`]);
//! - removals below the pager add up over a pass, so each accepted page measures how far left
//!   the listing moved at the cursor (the shift), and the pages not yet asked for are asked that
//!   much earlier: one removal costs about one repair, not one per later page;
//! - the pass is complete only when an accepted page reaches the listing's end (it is shorter
//!   than the step, or its own `total_count` ends with it): the listing was seen to end after
//!   the cursor. Pages planned past it are dropped; when the plan runs out first, further pages
//!   are fetched.
//!
//! Each page is a contiguous run of the id-ordered list as it was when it was fetched. The
//! accepted pages, in the order accepted, overlap (each starts at or below the highest id
//! before it), the first starts at the list's start and the last at its end. So their ids span,
//! without a hole, from the lowest id to the highest one listed: a device that existed
//! throughout the pass lies within one accepted page's first and last id, was listed by it (it
//! existed when that page was fetched), and was staged then or by an earlier page. Only ids a
//! page listed are staged: none that never existed, and each once. A device removed during the
//! pass may stay until the next pull, one added during it may come with the next; a removal is
//! applied only from a complete pass (R4) and the mass-deletion guard is unchanged.
//!
//! A pass that cannot be repaired within its budget of extra requests ([`Walk`]) is shifted
//! drift ([`PullError::Drift`]) and starts over, up to `devices.max_drift_retries` times; so is
//! one whose `total_count` never moved and which needed no repair, yet did not receive that
//! many distinct ids (a server that skips items without moving them). A server that ignores
//! `offset` is not drift: a full page that brings no id past the cursor is asked again (it may
//! have been answered before the page before it), and if it still brings none the pull fails
//! at once ([`PullError::Unpageable`]); so does a page whose ids do not ascend.

use super::error::PullError;
use super::pager::{Fetching, Listing, Pager, Pass};
use super::walk::Walk;
use crate::config::DevicesSettings;
use crate::d42::Client;
use crate::store::devices::PullStage;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Pages of records requested together with the first page of a pass, at most (the first
/// included). A page of 1 000 full records costs about 6 MiB of memory from its arrival to its
/// stage; eight arriving at once were the peak of a first load against a fast appliance
/// (100 000 devices: 60-62 MiB with 8, 51-54 MiB with 4, wall time unchanged either way). On a
/// slow link the rest of the first round follows ([`FIRST_ROUND_WAIT`]). Id pages are a
/// twentieth of that size: every slot goes early for them.
const EARLY_RECORD_PAGES: u64 = 4;

/// How long the first page of a pass over every record may take before the rest of the first
/// round goes out too, up to `devices.concurrency` pages (not for the records edited since a
/// day: a page or two, usually, where more early pages would be requests past the end). A first
/// page slower than this comes from a slow link or a slow appliance, where the window opens to
/// the lookahead anyway once the first page is in; against a fast one (the first of four pages
/// of 1 000 records answered in about 50 ms here) only `EARLY_RECORD_PAGES` go early, as
/// before. On a 200 ms link a first load of 100 000 devices went from 3.34-3.46 s to
/// 3.20-3.26 s (`bench/findings.md`).
const FIRST_ROUND_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// One pass over every page of `pass`'s listing into the (empty) stage; the number of devices
/// staged on success (an id listing stages every id as present, with no record). The pass's
/// repairs are counted in the stage's [`crate::store::devices::PageCounts`].
pub(super) async fn pull_once(
    stage: &mut PullStage,
    client: &Client,
    settings: &DevicesSettings,
    cancel: &CancellationToken,
    pass: &Pass,
) -> Result<i64, PullError> {
    let asked = u64::from(settings.page_size);
    let pager = Pager::new(client, settings, (stage.known_pages(), pass), cancel);
    let advance_guess = if asked > 1 { asked - 1 } else { asked };
    // The next pages go out with the first one, on the guess that the server honours `limit`
    // and the inventory spans them: on a slow link that saves a whole round trip. A wrong guess
    // costs a few requests that are thrown away (aborted when dropped). Pages of records go
    // early only up to `EARLY_RECORD_PAGES`: they arrive together and are held before the
    // window knows whether the stage can use them; the rest of the round follows if the first
    // page is slow (`FIRST_ROUND_WAIT`). While calls are paused the first page goes alone: it
    // is the breaker's probe.
    let early_pages = if client.is_paused() {
        1
    } else if pass.listing == Listing::Ids {
        settings.concurrency as u64
    } else {
        (settings.concurrency as u64).min(EARLY_RECORD_PAGES)
    };
    let window = pager.window();
    // Pages `k` of the first round, at the guessed offsets, held by the window as they go.
    let send_early = |ks: std::ops::Range<u64>| {
        ks.map(|k| k * advance_guess).map(|offset| {
            window.hold();
            (offset, pager.spawn(offset, asked))
        })
    };
    let mut early: HashMap<u64, Fetching> = send_early(1..early_pages).collect();
    // Behind the early pages in the queue for slots, but there is one slot left for it.
    let follows_up = early_pages > 1 && pass.listing == Listing::Records;
    let first = pager.fetch(0, asked);
    tokio::pin!(first);
    let first = tokio::select! {
        first = &mut first => first,
        () = tokio::time::sleep(FIRST_ROUND_WAIT), if follows_up => {
            // A slow first page: the rest of the first round goes now, behind it.
            early.extend(send_early(early_pages..settings.concurrency as u64));
            first.await
        }
    }?;
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
    if step != asked {
        for _ in early.drain() {
            window.forget();
        }
    }
    // Without `total_count` nothing is planned beyond the first page: the pages past the plan
    // are the whole listing.
    let plan: Vec<u64> = total.map_or_else(Vec::new, |total| {
        (1..)
            .map(|k| k * advance)
            .take_while(|o| o + (step - advance) < total)
            .collect()
    });
    // Each page is asked for at its planned offset less the shift the walk has measured by the
    // time the page is queued.
    let shift = Arc::new(AtomicU64::new(0));
    let mut walk = Walk::new(stage, &pager, (step, plan.len() as u64 + 1), &shift);
    let staging = Instant::now();
    walk.take(first, 0).await?;
    window.staged(staging.elapsed());
    let last_planned = plan.last().copied().unwrap_or(0);
    // A planned page is requested once the window has room for it (see `window`), at its
    // offset less the shift measured by then.
    let mut pages = Box::pin(
        futures::stream::iter(plan)
            .then(|nominal| {
                let early = early.remove(&nominal);
                let (pager, shift) = (pager.clone(), Arc::clone(&shift));
                async move {
                    let fetching = match early {
                        Some(fetching) => fetching,
                        None => {
                            pager.window().admit().await;
                            let offset = nominal.saturating_sub(shift.load(Ordering::Relaxed));
                            pager.spawn(offset, step)
                        }
                    };
                    (nominal, fetching)
                }
            })
            .map(|(nominal, fetching)| fetching.map(move |joined| (nominal, joined)))
            .buffered(pager.lookahead()),
    );
    while !walk.ended() {
        let Some((nominal, joined)) = pages.next().await else {
            break;
        };
        let page = joined.map_err(|e| PullError::Task(e.to_string()))??;
        let staging = Instant::now();
        crate::failpoint::delay("pull.slow_stage").await;
        // While the stage waits for the link, a first load logs its devices with the pages,
        // not after the last one.
        walk.log_with_pages(window.stage_waits());
        walk.take(page, nominal).await?;
        window.release(staging.elapsed());
    }
    // Pages planned past the end are not needed: dropping them aborts their requests.
    drop(pages);
    let mut nominal = last_planned;
    while !walk.ended() {
        nominal += advance;
        walk.beyond_plan(total.is_some())?;
        let offset = nominal.saturating_sub(shift.load(Ordering::Relaxed));
        let page = pager.fetch(offset, step).await?;
        walk.take(page, nominal).await?;
    }
    walk.finish(total).await
}
