//! The page plan of one pass: which offsets to ask for, and the checks that the inventory did
//! not shift under the pager (`total_count` moving, pages that do not overlap, repeated ids).
//!
//! Pages overlap by one item: page `k` starts at offset `k * (step - 1)`, so its first item
//! must be the previous page's last. If rows below were deleted or inserted between two page
//! requests, the offsets shift and that check fails; together with `total_count` staying put
//! and the distinct ids matching it, this catches the skips and repeats of limit/offset paging.

use super::error::PullError;
use super::pager::{FetchedPage, Fetching, Listing, PageContent, Pager, Pass};
use crate::config::DevicesSettings;
use crate::d42::Client;
use crate::store::devices::{PullStage, StageRow};
use crate::store::pages::SeenPage;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// One pass over every page of `pass`'s listing into the (empty) stage; the number of devices
/// on success. An id listing stages every id as unchanged.
pub(super) async fn pull_once(
    stage: &mut PullStage,
    client: &Client,
    settings: &DevicesSettings,
    cancel: &CancellationToken,
    pass: &Pass,
) -> Result<i64, PullError> {
    let asked = u64::from(settings.page_size);
    let pager = Pager::new(client, settings, (stage.known_pages(), pass), cancel);
    let ids_only = pass.listing == Listing::Ids;
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
    let mut distinct = stage_page(stage, &first, &mut last_id, ids_only).await?;
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
                distinct += stage_page(stage, &page, &mut last_id, ids_only).await?;
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
                distinct += stage_page(stage, &page, &mut last_id, ids_only).await?;
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
/// stored one (none when `ids_only`). Returns the ids new to this pull.
async fn stage_page(
    stage: &mut PullStage,
    page: &FetchedPage,
    last_id: &mut Option<i64>,
    ids_only: bool,
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
    let stored = if items.is_empty() || ids_only {
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
                _ if ids_only => None,
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
