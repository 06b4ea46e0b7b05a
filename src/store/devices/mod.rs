//! `devices` and the change log (`device_change_log`, read as the view `device_changes`): the
//! staging of a pull and its swap into the inventory.
//!
//! A pull stages what it receives on one dedicated connection ([`PullStage`], this module: all
//! that the pull job calls) and only a complete pull is applied, in one `BEGIN IMMEDIATE`
//! transaction that moves the inventory from the previous snapshot to the next and finishes the
//! run: readers see one or the other, never a mix. Where the records go meanwhile depends on
//! what `devices` holds when the pull starts:
//!
//! - **Compare** (the inventory has rows, `compare`): into a TEMP table, compared with
//!   `devices` on apply; only what differs is written, and logged as a change.
//! - **Load** (`devices` is empty, a first pull, `load`): straight into tables of the main
//!   database committed page by page, with the WAL copied alongside (`checkpoint`); the apply
//!   swaps them in by rename (`swap`), so each record is written once instead of being staged
//!   and then copied in one huge transaction.
//!
//! Either way each record is stored once: a change row holds no copy of the record while it is
//! the device's current one, and gets one (from the triggers on `devices` the migration
//! `device_change_log` creates) before the record is replaced or the device removed.
//!
//! `rows` holds what the rooms share: the staged row, the change kinds, the apply's outcome;
//! `children` the child tables (`device_ips`, ...), staged and applied with the records.

mod checkpoint;
mod children;
mod compare;
mod layouts;
mod listed;
mod load;
mod rows;
mod swap;
#[cfg(test)]
mod tests;

pub use rows::{ApplyOutcome, Change, DeleteGuard, StageRow};

use super::pages::{self, KnownPage, KnownPages, SeenPage};
use super::runs::{self, RunCounts, RunStatus};
use super::watermarks::{self, Watermark};
use super::{Db, StoreError, begin_immediate};
use crate::time::now_iso;
use children::ChildStage;
use compare::Compare;
use load::Load;
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a pull's records wait for the apply.
enum Target {
    /// Into `temp.pull_stage`, compared with `devices` on apply.
    Compare(Compare),
    /// Into `pull_load_*`, renamed over the empty tables on apply.
    Load(Box<Load>),
}

/// How a pull's last attempt took its pages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageCounts {
    /// Parsed and staged record by record.
    pub parsed: u64,
    /// Recognised as the last applied pull's, so neither parsed nor compared.
    pub reused: u64,
    /// Fetched out of the page plan, to repair a range that churn shifted under the pager.
    pub repairs: u64,
}

/// What the stage received, page by page.
#[derive(Debug, Default)]
struct Tally {
    /// Pages parsed and pages reused as known.
    pages: PageCounts,
    /// The ids the reused pages hold beyond each page's overlap.
    reused_ids: u64,
}

/// A pull's staging area, on a connection held for the whole pull.
pub struct PullStage {
    /// The staging connection: the TEMP tables live on it, so it is held until the apply.
    conn: PoolConnection<Sqlite>,
    /// The run every change row and the run's outcome are recorded under.
    run_id: i64,
    /// The time every row of this pull carries (`first_seen`, `last_changed`, `at`).
    at: String,
    /// Compare or load, decided when the stage opens.
    target: Target,
    /// What the current attempt received.
    tally: Tally,
    /// The watermark the apply records, when the pull keeps one.
    watermark: Option<Watermark>,
    /// The child rows not written yet, and the lists of custom-field keys.
    children: ChildStage,
}

impl PullStage {
    /// Takes a connection and prepares an empty stage for run `run_id`, dropping what a crashed
    /// pull may have left behind.
    pub async fn new(db: &Db, run_id: i64) -> Result<Self, StoreError> {
        let mut conn = db.pool.acquire().await?;
        // The temp database gets the same page size as the main one, for the same reason
        // (it only takes effect before the connection first uses temp storage).
        sqlx::query(&format!("PRAGMA temp.page_size = {}", super::PAGE_SIZE))
            .execute(&mut *conn)
            .await?;
        load::drop_tables(&mut conn).await?;
        let target = match Load::prepare(&db.pool, &mut conn).await? {
            Some(load) => {
                // A load changes this connection's settings: it is closed after the pull rather
                // than handed back to the pool.
                conn.close_on_drop();
                Target::Load(Box::new(load))
            }
            None => Target::Compare(Compare::open(&mut conn).await?),
        };
        let children = ChildStage::read(&mut conn).await?;
        let mut stage = Self {
            conn,
            run_id,
            at: now_iso(),
            target,
            tally: Tally::default(),
            watermark: None,
            children,
        };
        if let Err(e) = stage.clear().await {
            stage.discard().await;
            return Err(e);
        }
        Ok(stage)
    }

    /// The last pull's pages, to recognise unchanged ones without parsing them.
    pub fn known_pages(&self) -> Arc<KnownPages> {
        match &self.target {
            Target::Compare(compare) => compare.known(),
            Target::Load(_) => Arc::default(),
        }
    }

    /// Whether this is a first load (the inventory was empty): only a full pull can fill it.
    pub fn is_first_load(&self) -> bool {
        matches!(self.target, Target::Load(_))
    }

    /// Whether a first load writes its change log with the pages (`on`: the pull waits for the
    /// link, not for the stage) or after the last one (see `load`). Nothing changes for a pull
    /// that compares.
    pub fn log_with_pages(&mut self, on: bool) {
        if let Target::Load(load) = &mut self.target {
            load.log_with_pages(on);
        }
    }

    /// Has the apply record `watermark` in its transaction, dated by this pull's start.
    pub fn mark(&mut self, watermark: Watermark) {
        self.watermark = Some(watermark);
    }

    /// Sets the staged ids of an incremental pull's id listing aside and empties the stage for
    /// the records edited since its watermark (see `store::devices::listed`).
    pub async fn set_listed_aside(&mut self) -> Result<(), StoreError> {
        match self.target {
            Target::Compare(_) => listed::set_aside(&mut self.conn).await,
            Target::Load(_) => Err(StoreError::Conflict(
                "an incremental pull needs stored devices".into(),
            )),
        }
    }

    /// Joins the set-aside ids to the staged edited records; how many listed ids are neither
    /// stored nor edited (then the pull must fetch every record).
    pub async fn merge_listed(&mut self) -> Result<i64, StoreError> {
        listed::merge(&mut self.conn).await
    }

    /// How the current attempt took its pages so far.
    pub fn pages(&self) -> PageCounts {
        self.tally.pages
    }

    /// Empties the stage for a fresh attempt.
    pub async fn clear(&mut self) -> Result<(), StoreError> {
        self.tally = Tally::default();
        self.children.clear();
        pages::clear_seen(&mut self.conn).await?;
        match &mut self.target {
            Target::Compare(_) => compare::clear(&mut self.conn).await,
            Target::Load(load) => load.clear(&mut self.conn).await,
        }
    }

    /// The stored hashes of devices with ids in `lo..=hi`; none in a load (nothing is stored).
    pub async fn stored_hashes(
        &mut self,
        lo: i64,
        hi: i64,
    ) -> Result<HashMap<i64, i64>, StoreError> {
        match self.target {
            Target::Compare(_) => compare::stored_hashes(&mut self.conn, lo, hi).await,
            Target::Load(_) => Ok(HashMap::new()),
        }
    }

    /// Stages a parsed page: `page` as seen (with every device id on it, in order) and its
    /// `rows` without the overlap. Returns how many ids were new to this pull (fewer than
    /// `rows.len()` means the server repeated ids: the inventory shifted while paging).
    pub async fn stage(
        &mut self,
        page: SeenPage<'_>,
        rows: &[StageRow<'_>],
    ) -> Result<u64, StoreError> {
        pages::note_seen(&mut self.conn, page).await?;
        self.stage_rows(rows).await
    }

    /// Counts a page fetched out of the plan to repair a shifted range.
    pub fn note_repair(&mut self) {
        self.tally.pages.repairs += 1;
    }

    /// Stages the `rows` of a repair page, parsed like any other but not noted as seen: it lies
    /// off the page plan, so the next pull does not ask for it (and it must not replace the
    /// note of a planned page at the same place). Returns how many ids were new to this pull.
    pub async fn stage_repair(&mut self, rows: &[StageRow<'_>]) -> Result<u64, StoreError> {
        self.stage_rows(rows).await
    }

    /// Stages the rows of a parsed page.
    async fn stage_rows(&mut self, rows: &[StageRow<'_>]) -> Result<u64, StoreError> {
        self.tally.pages.parsed += 1;
        match &mut self.target {
            Target::Compare(_) => compare::stage(&mut self.conn, rows, &mut self.children).await,
            Target::Load(load) => {
                let commit = (self.run_id, self.at.as_str(), self.tally.pages.parsed);
                load.stage(&mut self.conn, rows, commit, &mut self.children)
                    .await
            }
        }
    }

    /// Notes a page that came back as the last pull saw it; its ids are staged by
    /// [`Self::finish`]. Returns how many ids it holds beyond its overlap with the page before.
    pub async fn reuse(
        &mut self,
        key: (u64, u64),
        page: &KnownPage,
        overlap: bool,
    ) -> Result<u64, StoreError> {
        let seen = SeenPage {
            key,
            hash: page.hash,
            total_count: page.total_count,
            limit: page.limit,
            ids: None,
        };
        pages::note_seen(&mut self.conn, seen).await?;
        let ids = page.count - u64::from(overlap && page.count > 0);
        self.tally.pages.reused += 1;
        self.tally.reused_ids += ids;
        Ok(ids)
    }

    /// Completes the stage once every page is in: stages the ids of reused pages, unless every
    /// page of the last pull came back unchanged (then nothing is to be compared at all). `Ok`
    /// false when those ids repeat ones already staged: the inventory shifted while paging.
    pub async fn finish(&mut self) -> Result<bool, StoreError> {
        if self.tally.pages.reused == 0 || self.unchanged() {
            return Ok(true);
        }
        Ok(pages::stage_reused_ids(&mut self.conn).await? == self.tally.reused_ids)
    }

    /// Every page is one the last pull saw, and no other: the inventory is as applied then.
    fn unchanged(&self) -> bool {
        match &self.target {
            Target::Compare(compare) => {
                compare.unchanged(self.tally.pages.parsed, self.tally.pages.reused)
            }
            Target::Load(_) => false,
        }
    }

    /// Swaps the staged snapshot into `devices` in one write transaction, logging each change
    /// in the change log and finishing the run in the same transaction.
    pub async fn apply(
        mut self,
        items: i64,
        guard: DeleteGuard,
    ) -> Result<ApplyOutcome, StoreError> {
        self.end_load().await;
        let outcome = self.apply_in_transaction(items, guard).await;
        self.discard().await;
        outcome
    }

    async fn apply_in_transaction(
        &mut self,
        items: i64,
        guard: DeleteGuard,
    ) -> Result<ApplyOutcome, StoreError> {
        let unchanged = self.unchanged();
        let reused = self.tally.pages.reused > 0;
        let run = (self.run_id, self.at.as_str());
        let mut tx = begin_immediate(&mut self.conn).await?;
        let outcome = match &mut self.target {
            Target::Compare(compare) => {
                let pages = (unchanged, reused);
                compare.apply(&mut tx, run, items, guard, pages).await?
            }
            Target::Load(load) => load.apply(&mut tx, run, items, &mut self.children).await?,
        };
        match outcome {
            ApplyOutcome::Applied(counts) => {
                self.children.apply_layouts(&mut tx).await?;
                if let Some(mark) = &self.watermark {
                    watermarks::write_in(&mut tx, mark, &self.at).await?;
                }
                runs::finish_in(&mut tx, self.run_id, RunStatus::Ok, counts, None).await?;
            }
            ApplyOutcome::Held {
                stored, removing, ..
            } => {
                let counts = RunCounts {
                    items,
                    removed: removing,
                    ..Default::default()
                };
                let reason = guard.reason(stored, removing);
                runs::finish_in(&mut tx, self.run_id, RunStatus::Held, counts, Some(&reason))
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Gives back what the stage holds (its tables and their disk space). Best effort: what is
    /// left is dropped by the next pull.
    pub async fn discard(mut self) {
        self.end_load().await;
        let _ = compare::drop_stage(&mut self.conn).await;
        let _ = listed::drop_listed(&mut self.conn).await;
        let _ = pages::drop_seen(&mut self.conn).await;
        if matches!(self.target, Target::Load(_)) {
            let _ = load::drop_tables(&mut self.conn).await;
            // A load's connection is not handed back (its settings changed): closed here and
            // now, not by a task racing the pool's last close (see `checkpoint`).
            let _ = self.conn.close().await;
        }
    }

    /// Ends a load's checkpointing, for the apply's own commit.
    async fn end_load(&mut self) {
        if let Target::Load(load) = &mut self.target {
            load.end(&mut self.conn).await;
        }
    }
}

/// Devices stored now.
pub async fn count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(&db.pool)
        .await?)
}

/// Deletes change rows recorded before `before`.
pub async fn prune_changes(db: &Db, before: &str) -> Result<u64, StoreError> {
    db.execute_write(sqlx::query("DELETE FROM device_change_log WHERE at < ?").bind(before))
        .await
}
