//! The walk of one pass along the id-ordered listing: the cursor (the highest id covered so
//! far), which pages fit after it, the repair of a gap that churn opened before a page, and the
//! staging of each accepted page's ids past the cursor. Why this gets every device that
//! existed throughout the pass is argued in [`super::paging`].

use super::error::PullError;
use super::pager::{FetchedItem, FetchedPage, PageContent, Pager};
use crate::store::devices::{PullStage, StageRow};
use crate::store::pages::SeenPage;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Requests a pass may make beyond its plan, per planned page: repair pages, and pages past
/// the plan when the inventory grew. Steady churn costs about one repair per removal below
/// the pager; a pass that needs more than twice its plan again is outrun by the churn and
/// starts over, and one that never converges ends.
const EXTRA_PER_PLANNED_PAGE: u64 = 2;

/// Extra requests any pass may make, however few pages it planned.
const EXTRA_AT_LEAST: u64 = 8;

/// How a page came to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// A page of the plan (as fetched, or asked again after repairs before it).
    Planned,
    /// A repair page, off the plan: always parsed, and not kept for the next pull.
    Repair,
}

/// One pass's position in the listing and what it staged.
pub(super) struct Walk<'a> {
    /// Where the accepted pages go.
    stage: &'a mut PullStage,
    /// Fetches repair pages.
    pager: &'a Pager,
    /// Devices per full page.
    step: u64,
    /// The highest id covered so far; `None` before the first page.
    cursor: Option<i64>,
    /// How many places the listing moved left, at the cursor, since the plan was made: the
    /// pages not yet asked for are asked that much earlier (see [`Walk::take`]).
    shift: &'a AtomicU64,
    /// Offsets of the pages noted as seen: a page asked again at one of them is staged like a
    /// repair, so that it does not replace the note of the page reused there.
    noted: HashSet<u64>,
    /// An accepted page reached the listing's end (it was short, or its own `total_count`
    /// ends with it): the listing was seen to end after the cursor.
    ended: bool,
    /// Distinct ids staged.
    distinct: u64,
    /// `total_count` of the first page, and whether a later page gave another.
    totals: (Option<u64>, bool),
    /// Requests beyond the plan so far (repairs, pages past the plan), and how many may be made.
    extra: (u64, u64),
}

impl<'a> Walk<'a> {
    /// A walk into `stage` with pages of `step` devices, of which `planned` were planned, that
    /// keeps the listing's `shift` up to date for the pages still to be asked for.
    pub(super) fn new(
        stage: &'a mut PullStage,
        pager: &'a Pager,
        (step, planned): (u64, u64),
        shift: &'a AtomicU64,
    ) -> Self {
        Self {
            stage,
            pager,
            step,
            cursor: None,
            shift,
            noted: HashSet::new(),
            ended: false,
            distinct: 0,
            totals: (None, false),
            extra: (0, (planned * EXTRA_PER_PLANNED_PAGE).max(EXTRA_AT_LEAST)),
        }
    }

    /// Whether a first load logs its devices as its pages are staged (see
    /// [`PullStage::log_with_pages`]).
    pub(super) fn log_with_pages(&mut self, on: bool) {
        self.stage.log_with_pages(on);
    }

    /// The listing was seen to end: no page is needed any more.
    pub(super) fn ended(&self) -> bool {
        self.ended
    }

    /// Counts a page past the plan; one planned from `total_count` draws on the budget of
    /// extra requests (without it, the pages past the first are the plan).
    pub(super) fn beyond_plan(&mut self, planned_by_total: bool) -> Result<(), PullError> {
        if planned_by_total {
            self.spend("the inventory grew faster than it could be paged")?;
        }
        Ok(())
    }

    /// Takes the next page of the plan, planned at offset `nominal` (and asked for that offset
    /// less the shift known then): accepts it if it fits after the cursor; otherwise repairs
    /// the gap before it with pages at earlier offsets, then takes it again (the copy held, if
    /// it fits by then, or a fresh one). Nothing once the listing has ended.
    ///
    /// Each accepted page tells where the cursor's device lies now; its distance from where
    /// the plan put it is the shift, by which the later pages are asked earlier. Removals below
    /// the pager add up over a pass: without this, every page after the first removals would
    /// open a gap. (Additions come at the end and do not shift; the shift only grows.)
    pub(super) async fn take(&mut self, page: FetchedPage, nominal: u64) -> Result<(), PullError> {
        self.note_total(&page);
        if self.ended {
            return Ok(());
        }
        let mut page = page;
        if self.fits(&page) && self.stalls(&page) {
            // Fetched before the cursor's page was answered, with a removal in between, or the
            // server ignores offset: asked again, it tells which.
            self.stage.note_repair();
            self.spend("churn shifted the pages faster than they could be repaired")?;
            page = self.pager.fetch(page.offset, self.step).await?;
            self.note_total(&page);
            if self.fits(&page) && self.stalls(&page) {
                return Err(PullError::Unpageable(format!(
                    "the full page at offset {} holds no device after device {}, twice: the \
                     server ignores offset",
                    page.offset,
                    self.cursor.unwrap_or_default()
                )));
            }
        }
        if self.fits(&page) {
            return self.accept(page, Taken::Planned, nominal).await;
        }
        let target = page.offset;
        let mut held = page;
        // Items before the page went away since the shift was last measured. Half a page back
        // covers a few such removals and still reaches the held page, so one repair usually
        // mends the gap.
        let mut grow = (self.step / 2).max(1);
        let mut back = grow.min(target);
        loop {
            self.stage.note_repair();
            self.spend("churn shifted the pages faster than they could be repaired")?;
            let offset = target - back;
            let page = self.pager.fetch(offset, self.step).await?.parsed()?;
            self.note_total(&page);
            tracing::debug!(offset, back, gap_at = target, "repairing a shifted range");
            if back == 0 {
                // A fresh copy of the page itself, after the range before it was repaired.
                held = page;
                if self.fits(&held) {
                    return self.accept(held, Taken::Planned, nominal).await;
                }
                back = grow.min(target);
                continue;
            }
            if !self.fits(&page) {
                grow = grow.saturating_mul(2);
                back = back.saturating_add(grow).min(target);
                continue;
            }
            self.accept(page, Taken::Repair, nominal).await?;
            if self.ended {
                return Ok(());
            }
            if self.fits(&held) {
                return self.accept(held, Taken::Planned, nominal).await;
            }
            // The repair fell short of the page: go on from where it ended.
            back = back.saturating_sub(self.step.saturating_sub(1).max(1));
        }
    }

    /// Ends the pass: checks the count when the listing stood still, and stages the ids of the
    /// pages reused as known. The number of devices staged.
    pub(super) async fn finish(self, total: Option<u64>) -> Result<i64, PullError> {
        let still = !self.totals.1 && self.extra.0 == 0;
        if let Some(total) = total.filter(|t| still && *t != self.distinct) {
            return Err(PullError::Drift(format!(
                "received {} distinct devices, total_count is {total}",
                self.distinct
            )));
        }
        if !self.stage.finish().await? {
            return Err(PullError::Drift("device ids repeated across pages".into()));
        }
        Ok(self.distinct as i64)
    }

    /// Draws one request on the budget of extra requests; drift once it is spent.
    fn spend(&mut self, why: &str) -> Result<(), PullError> {
        self.extra.0 += 1;
        if self.extra.0 > self.extra.1 {
            return Err(PullError::Drift(format!(
                "{why} ({} requests beyond the plan)",
                self.extra.1
            )));
        }
        Ok(())
    }

    /// Notes the page's `total_count`: the first one, or whether it moved since.
    fn note_total(&mut self, page: &FetchedPage) {
        match self.totals.0 {
            None if self.cursor.is_none() => self.totals.0 = page.total_count,
            first => self.totals.1 |= first != page.total_count,
        }
    }

    /// Whether the page leaves no gap after the cursor: it starts at the list's start, or at or
    /// below the cursor. An empty page past offset 0 does not fit: the items before its
    /// offset may have shifted into the range already passed.
    fn fits(&self, page: &FetchedPage) -> bool {
        match (self.cursor, page.first_and_last()) {
            _ if page.offset == 0 => true,
            (None, _) => true,
            (Some(_), None) => false,
            (Some(cursor), Some((first, _))) => first <= cursor,
        }
    }

    /// Whether a page past offset 0 is full and yet brings no id past the cursor: the pass
    /// would not advance with it.
    fn stalls(&self, page: &FetchedPage) -> bool {
        let last = page.first_and_last().map(|(_, last)| last);
        page.offset > 0 && page.len() >= self.step && last <= self.cursor
    }

    /// Stages the page's ids past the cursor and moves the cursor to its last id; a page that
    /// reaches the listing's end ends the walk. `nominal` is the planned offset of the page
    /// taken, where the plan expects the cursor's device.
    async fn accept(
        &mut self,
        page: FetchedPage,
        taken: Taken,
        nominal: u64,
    ) -> Result<(), PullError> {
        let ends = page.first_and_last();
        let end = page.len() < self.step
            || page
                .total_count
                .is_some_and(|total| page.offset + page.len() >= total);
        let last = ends.map(|(_, last)| last);
        let noted = self.noted.contains(&page.offset);
        let exact = match (self.cursor, ends) {
            (None, _) => page.offset == 0,
            (Some(cursor), Some((first, _))) => first == cursor && page.offset > 0,
            (Some(_), None) => false,
        };
        let page = match &page.content {
            // Reused only where it overlaps the page before as it did last time: one item.
            PageContent::Known(known, _) if exact && taken == Taken::Planned && !noted => {
                let key = (page.offset, page.asked);
                self.distinct += self.stage.reuse(key, known, self.cursor.is_some()).await?;
                self.noted.insert(page.offset);
                self.advance(last, end);
                return Ok(());
            }
            PageContent::Known(..) => page.parsed()?,
            PageContent::Parsed { .. } => page,
        };
        if let (PageContent::Parsed { items, .. }, Some(cursor)) = (&page.content, self.cursor) {
            // The page's items up to the cursor's place: when the page reaches past the cursor
            // (or ends on it), the cursor's device (or where it was) lies at
            // `page.offset + before - 1` now.
            let before = items.partition_point(|i| i.device_id <= cursor);
            let reaches = before < items.len() || last == Some(cursor);
            if before > 0 && reaches {
                let now = page.offset + before as u64 - 1;
                self.shift
                    .fetch_max(nominal.saturating_sub(now), Ordering::Relaxed);
            }
        }
        let noted_now = taken == Taken::Planned && !noted;
        self.distinct += self.stage_parsed(&page, noted_now).await?;
        if noted_now {
            self.noted.insert(page.offset);
        }
        self.advance(last, end);
        Ok(())
    }

    /// Moves the cursor to `last` (never back); `end`s the walk.
    fn advance(&mut self, last: Option<i64>, end: bool) {
        self.cursor = self.cursor.max(last);
        self.ended |= end;
    }

    /// Stages the ids of a parsed page past the cursor, writing only records whose hash
    /// differs from the stored one; notes the page as seen if `noted`, for the next pull.
    /// Returns the ids new to this pull.
    async fn stage_parsed(&mut self, page: &FetchedPage, noted: bool) -> Result<u64, PullError> {
        let PageContent::Parsed { body, items: all } = &page.content else {
            return Ok(0);
        };
        if all.windows(2).any(|w| w[0].device_id >= w[1].device_id) {
            return Err(PullError::Unpageable(format!(
                "the page at offset {} does not list devices in ascending id order",
                page.offset
            )));
        }
        let from = self
            .cursor
            .map_or(0, |cursor| all.partition_point(|i| i.device_id <= cursor));
        let items = &all[from..];
        let rows = self.rows(body, items).await?;
        let started = Instant::now();
        let inserted = if noted {
            let ids: Vec<i64> = all.iter().map(|i| i.device_id).collect();
            let seen = SeenPage {
                key: (page.offset, page.asked),
                hash: page.hash,
                total_count: page.total_count,
                limit: page.limit,
                ids: Some(&ids),
            };
            self.stage.stage(seen, &rows).await?
        } else {
            self.stage.stage_repair(&rows).await?
        };
        tracing::trace!(
            offset = page.offset,
            rows = rows.len(),
            ms = started.elapsed().as_millis() as u64,
            window = self.pager.window().limit(),
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

    /// The rows to stage for `items`, cut from `body`: with their record where the stored one
    /// differs, by id alone where it is the same (and always, for an id listing).
    async fn rows<'b>(
        &mut self,
        body: &'b str,
        items: &'b [FetchedItem],
    ) -> Result<Vec<StageRow<'b>>, PullError> {
        let ids_only = self.pager.ids_only();
        let stored = match (items.first(), items.last()) {
            (Some(lo), Some(hi)) if !ids_only => {
                self.stage.stored_hashes(lo.device_id, hi.device_id).await?
            }
            _ => HashMap::new(),
        };
        Ok(items
            .iter()
            .map(|item| StageRow {
                device_id: item.device_id,
                raw_hash: item.hash,
                record: match stored.get(&item.device_id) {
                    _ if ids_only => None,
                    Some(h) if *h == item.hash => None,
                    // Ranges were cut from the body by the JSON parser at value boundaries.
                    _ => Some((
                        body.get(item.range.clone()).unwrap_or_default(),
                        &item.columns,
                    )),
                },
            })
            .collect())
    }
}
