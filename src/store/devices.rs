//! `devices` and `device_changes`: the staging of a pull and its swap into the inventory.
//!
//! A pull stages what it receives on one dedicated connection ([`PullStage`]) and only a complete
//! pull is applied, in one `BEGIN IMMEDIATE` transaction that moves the inventory from the
//! previous snapshot to the next: readers see one or the other, never a mix. Where the records go
//! meanwhile depends on what `devices` holds when the pull starts:
//!
//! - **Compare** (the inventory has rows): into the TEMP table `pull_stage`, which lives outside
//!   the main database file, never takes its write lock and vanishes with a crash. Only records
//!   whose hash differs from the stored one carry their JSON; apply then updates, inserts and
//!   deletes what differs. Pages that come back byte for byte as the last pull saw them are not
//!   parsed at all ([`super::pages`]).
//! - **Load** (`devices` is empty, a first pull): straight into `pull_load_devices` (and their
//!   `added` rows into `pull_load_changes` when `device_changes` is empty too), tables of the main
//!   database created from the very definitions of the tables they stand for, committed page by
//!   page. Apply swaps them in by rename, so each record is written once instead of being staged
//!   and then copied in one huge transaction. The indexes the load fills in key order (on
//!   `device_id`, the run or its time) move from the empty tables to the load tables when these
//!   are created, names and definitions unchanged, so they grow by appending instead of costing
//!   a scan of the whole inventory each in the apply; the others (`name`, a report's own) are
//!   built in the apply, where a sort beats random inserts. Until the apply nothing reads the
//!   load tables; a crash leaves them behind and the next pull drops them and moves the indexes
//!   back.

use super::pages::{self, Basis, KnownPage, KnownPages, SeenPage};
use super::runs::{self, RunCounts, RunStatus};
use super::{Db, StoreError};
use crate::device::DeviceColumns;
use crate::time::now_iso;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;
use std::sync::Arc;

/// Rows per multi-row INSERT into a staging table: a few hundred keeps statements short while
/// amortising the per-statement cost (one INSERT per row is several times slower). 17 values a
/// row stay far below SQLite's limit of 32 766 bound values.
const STAGE_CHUNK: usize = 250;

/// The compare-mode staging table: the fixed columns, then the typed ones in [`TYPED`] order.
/// `raw_hash` and `raw` are NULL for a device whose stored record is unchanged.
const CREATE_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS pull_stage (device_id INTEGER PRIMARY KEY, \
     raw_hash INTEGER, raw TEXT, in_service INTEGER, name TEXT, type TEXT, serial_no TEXT, \
     asset_no TEXT, uuid TEXT, service_level TEXT, customer TEXT, hardware TEXT, os_name TEXT, \
     os_version TEXT, last_updated TEXT)";

/// The typed columns as a SQL list: `in_service`, then [`DeviceColumns::TEXT_COLUMNS`].
const TYPED: &str = "in_service, name, type, serial_no, asset_no, uuid, service_level, customer, \
     hardware, os_name, os_version, last_updated";

/// The load-mode tables and the tables they replace.
const LOAD_DEVICES: (&str, &str) = ("devices", "pull_load_devices");
const LOAD_CHANGES: (&str, &str) = ("device_changes", "pull_load_changes");

/// One device as received, ready to stage.
#[derive(Debug, Clone, Copy)]
pub struct StageRow<'a> {
    /// Device42's id.
    pub device_id: i64,
    /// Hash of the raw record, compared with the stored one.
    pub raw_hash: i64,
    /// The record exactly as sent and its typed columns; `None` when the stored record has the
    /// same hash (nothing to write for it, only its id is kept to know it still exists).
    pub record: Option<(&'a str, &'a DeviceColumns)>,
}

/// What applying a staged pull did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The inventory now equals the staged snapshot.
    Applied(RunCounts),
    /// The mass-deletion guard withheld the swap; nothing changed.
    Held {
        /// Devices stored before.
        stored: i64,
        /// Devices in the pull.
        incoming: i64,
        /// Devices the pull would have removed.
        removing: i64,
    },
}

/// The guard against a pull that would delete most of the inventory.
#[derive(Debug, Clone, Copy)]
pub struct DeleteGuard {
    /// Largest fraction of stored devices a pull may remove.
    pub max_delete_fraction: f64,
    /// Apply even if the fraction is exceeded (`pull --allow-mass-delete`).
    pub allow_mass_delete: bool,
}

/// Where a pull's records wait for the apply.
enum Target {
    /// Into `temp.pull_stage`, compared with `devices` on apply.
    Compare {
        /// The last pull's pages and the basis they hold on (empty when they cannot be trusted).
        known: Arc<KnownPages>,
        basis: Option<Basis>,
    },
    /// Into `pull_load_*`, renamed over the empty tables on apply.
    Load(Load),
}

/// A first pull's tables.
struct Load {
    /// Copies the WAL into the database file beside the staging, see [`Checkpointer`].
    checkpointer: Checkpointer,
    /// `CREATE TABLE` of `pull_load_devices`, and what becomes of the indexes of `devices`.
    devices: Definition,
    /// The same for `pull_load_changes`, when `device_changes` was empty and is replaced too;
    /// otherwise the `added` rows are copied from the new `devices` on apply.
    changes: Option<Definition>,
}

/// How a pull's last attempt took its pages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageCounts {
    /// Parsed and staged record by record.
    pub parsed: u64,
    /// Recognised as the last applied pull's, so neither parsed nor compared.
    pub reused: u64,
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
    conn: PoolConnection<Sqlite>,
    run_id: i64,
    /// The time every row of this pull carries (`first_seen`, `last_changed`, `at`).
    at: String,
    target: Target,
    tally: Tally,
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
        drop_load_tables(&mut conn).await?;
        let target = match Load::prepare(&db.pool, &mut conn).await? {
            Some(load) => {
                // A load changes this connection's settings: it is closed after the pull rather
                // than handed back to the pool.
                conn.close_on_drop();
                Target::Load(load)
            }
            None => match pages::load(&mut conn).await? {
                Some((basis, known)) => Target::Compare {
                    known: Arc::new(known),
                    basis: Some(basis),
                },
                None => Target::Compare {
                    known: Arc::default(),
                    basis: None,
                },
            },
        };
        let mut stage = Self {
            conn,
            run_id,
            at: now_iso(),
            target,
            tally: Tally::default(),
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
            Target::Compare { known, .. } => Arc::clone(known),
            Target::Load(_) => Arc::default(),
        }
    }

    /// How the current attempt took its pages so far.
    pub fn pages(&self) -> PageCounts {
        self.tally.pages
    }

    /// Empties the stage for a fresh attempt.
    pub async fn clear(&mut self) -> Result<(), StoreError> {
        self.tally = Tally::default();
        pages::clear_seen(&mut self.conn).await?;
        match &self.target {
            Target::Compare { .. } => {
                sqlx::query(CREATE_STAGE).execute(&mut *self.conn).await?;
                sqlx::query("DELETE FROM temp.pull_stage")
                    .execute(&mut *self.conn)
                    .await?;
            }
            Target::Load(load) => {
                drop_load_tables(&mut self.conn).await?;
                let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
                create_load_table(&mut tx, LOAD_DEVICES, &load.devices).await?;
                if let Some(changes) = &load.changes {
                    create_load_table(&mut tx, LOAD_CHANGES, changes).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Stops the checkpointer of a load and gives checkpoints back to the connection, for the
    /// apply's own commit.
    async fn end_load(&mut self) {
        if let Target::Load(load) = &self.target {
            load.checkpointer.stop();
            let _ = sqlx::query(&format!(
                "PRAGMA wal_autocheckpoint = {}",
                super::WAL_AUTOCHECKPOINT
            ))
            .execute(&mut *self.conn)
            .await;
        }
    }

    /// The stored hashes of devices with ids in `lo..=hi` (a page's id range; pages come in id
    /// order, so this is one index range scan).
    pub async fn stored_hashes(
        &mut self,
        lo: i64,
        hi: i64,
    ) -> Result<HashMap<i64, i64>, StoreError> {
        if matches!(self.target, Target::Load(_)) {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT device_id, raw_hash FROM devices WHERE device_id BETWEEN ? AND ?",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Stages a parsed page: `page` as seen (with every device id on it, in order) and its
    /// `rows` without the overlap. Returns how many ids were new to this pull (fewer than
    /// `rows.len()` means the server repeated ids: the inventory shifted while paging).
    pub async fn stage(
        &mut self,
        page: SeenPage<'_>,
        rows: &[StageRow<'_>],
    ) -> Result<u64, StoreError> {
        self.tally.pages.parsed += 1;
        pages::note_seen(&mut self.conn, page).await?;
        match &self.target {
            Target::Compare { .. } => self.stage_compare(rows).await,
            Target::Load(load) => {
                let with_changes = load.changes.is_some();
                self.stage_load(rows, with_changes).await
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
            Target::Compare { known, .. } => {
                self.tally.pages.parsed == 0
                    && !known.is_empty()
                    && self.tally.pages.reused == known.len() as u64
            }
            Target::Load(_) => false,
        }
    }

    async fn stage_compare(&mut self, rows: &[StageRow<'_>]) -> Result<u64, StoreError> {
        // A plain BEGIN: these statements write only the temp schema, which never takes the
        // main database's write lock, so there is no lock upgrade to fail.
        let mut tx = self.conn.begin().await?;
        let mut inserted = 0;
        let changed: Vec<(&StageRow<'_>, &str, &DeviceColumns)> = rows
            .iter()
            .filter_map(|r| r.record.map(|(raw, columns)| (r, raw, columns)))
            .collect();
        for chunk in changed.chunks(STAGE_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "INSERT INTO temp.pull_stage (device_id, raw_hash, raw, {TYPED}) "
            ));
            q.push_values(chunk, |mut b, (row, raw, columns)| {
                b.push_bind(row.device_id)
                    .push_bind(row.raw_hash)
                    .push_bind(*raw);
                push_typed(&mut b, columns);
            });
            inserted += insert_new(q, &mut tx).await?;
        }
        // Unchanged devices: only their id (they still exist).
        let unchanged: Vec<&StageRow<'_>> = rows.iter().filter(|r| r.record.is_none()).collect();
        for chunk in unchanged.chunks(STAGE_CHUNK * 4) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO temp.pull_stage (device_id) ");
            q.push_values(chunk, |mut b, row| {
                b.push_bind(row.device_id);
            });
            inserted += insert_new(q, &mut tx).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn stage_load(
        &mut self,
        rows: &[StageRow<'_>],
        with_changes: bool,
    ) -> Result<u64, StoreError> {
        let records: Vec<(i64, i64, &str, &DeviceColumns)> = rows
            .iter()
            .filter_map(|r| r.record.map(|(raw, c)| (r.device_id, r.raw_hash, raw, c)))
            .collect();
        // A short write transaction per page on the main database: the WAL is checkpointed as
        // the pages come in rather than all at once at the end.
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut inserted = 0;
        for chunk in records.chunks(STAGE_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "INSERT INTO main.pull_load_devices \
                 (device_id, raw_hash, raw, first_seen, last_changed, {TYPED}) "
            ));
            q.push_values(chunk, |mut b, (id, hash, raw, columns)| {
                b.push_bind(*id)
                    .push_bind(*hash)
                    .push_bind(*raw)
                    .push_bind(self.at.as_str())
                    .push_bind(self.at.as_str());
                push_typed(&mut b, columns);
            });
            inserted += insert_new(q, &mut tx).await?;
            if with_changes {
                let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "INSERT INTO main.pull_load_changes (run_id, device_id, change, at, raw) ",
                );
                q.push_values(chunk, |mut b, (id, _, raw, _)| {
                    b.push_bind(self.run_id)
                        .push_bind(*id)
                        .push_bind("added")
                        .push_bind(self.at.as_str())
                        .push_bind(*raw);
                });
                q.build().persistent(true).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        let commits = self.tally.pages.parsed;
        if let Target::Load(load) = &mut self.target {
            load.checkpointer.after_commit(commits).await;
        }
        Ok(inserted)
    }

    /// Swaps the staged snapshot into `devices` in one write transaction, logging each change
    /// in `device_changes` and finishing the run in the same transaction.
    pub async fn apply(
        mut self,
        items: i64,
        guard: DeleteGuard,
    ) -> Result<ApplyOutcome, StoreError> {
        self.end_load().await;
        let outcome = match &self.target {
            Target::Compare { basis, .. } => {
                let basis = *basis;
                self.apply_compare(items, guard, basis).await
            }
            Target::Load(_) => self.apply_load(items).await,
        };
        self.discard().await;
        outcome
    }

    /// Gives back what the stage holds (its tables and their disk space). Best effort: what is
    /// left is dropped by the next pull.
    pub async fn discard(mut self) {
        self.end_load().await;
        let _ = sqlx::query("DROP TABLE IF EXISTS temp.pull_stage")
            .execute(&mut *self.conn)
            .await;
        let _ = pages::drop_seen(&mut self.conn).await;
        if matches!(self.target, Target::Load(_)) {
            let _ = drop_load_tables(&mut self.conn).await;
        }
    }

    async fn apply_compare(
        &mut self,
        items: i64,
        guard: DeleteGuard,
        basis: Option<Basis>,
    ) -> Result<ApplyOutcome, StoreError> {
        let (run_id, now) = (self.run_id, self.at.clone());
        let unchanged = self.unchanged();
        let reused = self.tally.pages.reused > 0;
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        if reused && Some(pages::basis(&mut tx).await?) != basis {
            return Err(StoreError::Conflict(
                "devices was written by something other than d42sync during the pull; \
                 the next pull compares every record"
                    .into(),
            ));
        }
        if unchanged {
            let counts = RunCounts {
                items,
                ..Default::default()
            };
            return commit_applied(tx, run_id, counts).await;
        }
        let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM devices")
            .fetch_one(&mut *tx)
            .await?;
        let (removing,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM devices d \
             WHERE NOT EXISTS (SELECT 1 FROM temp.pull_stage s WHERE s.device_id = d.device_id)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if stored > 0
            && removing as f64 > guard.max_delete_fraction * stored as f64
            && !guard.allow_mass_delete
        {
            let counts = RunCounts {
                items,
                removed: removing,
                ..Default::default()
            };
            let error = format!(
                "held: would remove {removing} of {stored} devices (more than max_delete_fraction {}); \
                 run `d42sync pull --allow-mass-delete` to apply",
                guard.max_delete_fraction
            );
            runs::finish_in(&mut tx, run_id, RunStatus::Held, counts, Some(&error)).await?;
            tx.commit().await?;
            return Ok(ApplyOutcome::Held {
                stored,
                incoming: items,
                removing,
            });
        }

        let removed = sqlx::query(
            "INSERT INTO device_changes (run_id, device_id, change, at, raw) \
             SELECT ?, d.device_id, 'removed', ?, d.raw FROM devices d \
             WHERE NOT EXISTS (SELECT 1 FROM temp.pull_stage s WHERE s.device_id = d.device_id)",
        )
        .bind(run_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        sqlx::query(
            "DELETE FROM devices WHERE device_id NOT IN (SELECT device_id FROM temp.pull_stage)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO device_changes (run_id, device_id, change, at, raw) \
             SELECT ?, s.device_id, CASE WHEN d.device_id IS NULL THEN 'added' ELSE 'changed' END, ?, s.raw \
             FROM temp.pull_stage s LEFT JOIN devices d ON d.device_id = s.device_id \
             WHERE s.raw IS NOT NULL ORDER BY s.device_id",
        )
        .bind(run_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        // Changed records first, then new ones: two plain statements are cheaper than an upsert,
        // and their row counts are the run's counts.
        // Only ids go into the IN list; each changed row is then read by primary key (an
        // `UPDATE ... FROM` would materialise every staged record first).
        let changed = if stored == 0 {
            0
        } else {
            sqlx::query(&format!(
                "UPDATE devices SET (raw, raw_hash, last_changed, {TYPED}) = \
                 (SELECT s.raw, s.raw_hash, ?1, {} FROM temp.pull_stage s WHERE s.device_id = devices.device_id) \
                 WHERE device_id IN (SELECT device_id FROM temp.pull_stage WHERE raw IS NOT NULL)",
                TYPED.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
            ))
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64
        };
        let added = sqlx::query(&format!(
            "INSERT INTO devices (device_id, raw, raw_hash, first_seen, last_changed, {TYPED}) \
             SELECT s.device_id, s.raw, s.raw_hash, ?1, ?1, {TYPED} FROM temp.pull_stage s \
             WHERE s.raw IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.device_id = s.device_id) \
             ORDER BY s.device_id"
        ))
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        pages::save(&mut tx).await?;
        let counts = RunCounts {
            items,
            added,
            changed,
            removed,
            ..Default::default()
        };
        commit_applied(tx, run_id, counts).await
    }

    async fn apply_load(&mut self, items: i64) -> Result<ApplyOutcome, StoreError> {
        let Target::Load(load) = &self.target else {
            unreachable!("apply_load on a compare stage");
        };
        let (run_id, now) = (self.run_id, self.at.clone());
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        if !is_empty(&mut tx, LOAD_DEVICES.0).await? {
            return Err(StoreError::Conflict(
                "devices was written by something other than d42sync during the pull".into(),
            ));
        }
        let (added,): (i64,) = sqlx::query_as("SELECT count(*) FROM main.pull_load_devices")
            .fetch_one(&mut *tx)
            .await?;
        swap_in(&mut tx, LOAD_DEVICES, &load.devices.rebuilt).await?;
        match &load.changes {
            Some(changes) if is_empty(&mut tx, LOAD_CHANGES.0).await? => {
                swap_in(&mut tx, LOAD_CHANGES, &changes.rebuilt).await?;
            }
            _ => {
                sqlx::query(
                    "INSERT INTO device_changes (run_id, device_id, change, at, raw) \
                     SELECT ?, device_id, 'added', ?, raw FROM devices ORDER BY device_id",
                )
                .bind(run_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
        }
        pages::save(&mut tx).await?;
        let counts = RunCounts {
            items,
            added,
            ..Default::default()
        };
        commit_applied(tx, run_id, counts).await
    }
}

/// Finishes run `run_id` as ok with `counts` and commits the apply transaction.
async fn commit_applied(
    mut tx: sqlx::Transaction<'_, Sqlite>,
    run_id: i64,
    counts: RunCounts,
) -> Result<ApplyOutcome, StoreError> {
    runs::finish_in(&mut tx, run_id, RunStatus::Ok, counts, None).await?;
    tx.commit().await?;
    Ok(ApplyOutcome::Applied(counts))
}

impl Load {
    /// The load-mode tables for this pull, when `devices` is empty and can be replaced by a
    /// rename: no trigger hangs on it (a drop would lose it) and its definition reads as expected.
    async fn prepare(
        pool: &sqlx::SqlitePool,
        conn: &mut SqliteConnection,
    ) -> Result<Option<Self>, StoreError> {
        if !is_empty(conn, LOAD_DEVICES.0).await? {
            return Ok(None);
        }
        let (triggers,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN (?, ?)",
        )
        .bind(LOAD_DEVICES.0)
        .bind(LOAD_CHANGES.0)
        .fetch_one(&mut *conn)
        .await?;
        if triggers > 0 {
            return Ok(None);
        }
        let Some(devices) = definition(conn, LOAD_DEVICES).await? else {
            return Ok(None);
        };
        let changes = if is_empty(conn, LOAD_CHANGES.0).await? {
            definition(conn, LOAD_CHANGES).await?
        } else {
            None
        };
        let checkpointer = Checkpointer::start(pool).await?;
        // The staging connection leaves checkpoints to the checkpointer; `discard` restores it.
        // The connection is closed after the pull, so its settings go with it.
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut *conn)
            .await?;
        legacy_renames(conn, true).await?;
        Ok(Some(Self {
            checkpointer,
            devices,
            changes,
        }))
    }
}

/// Runs `PASSIVE` checkpoints on a connection of its own while a load commits page after page.
///
/// A checkpoint after each commit on the staging connection (SQLite's automatic one) puts its
/// I/O and fsyncs in the way of the next page; one at the end copies the whole load at once. In a
/// task of its own it overlaps with the staging, and a `PASSIVE` checkpoint never blocks it. But
/// SQLite rewinds the WAL only when a write begins after a checkpoint has copied all of it, which
/// a writer that never pauses does not allow: the load pauses now and then
/// ([`Self::after_commit`]), so the WAL and the memory that indexes it stay small whatever the
/// inventory's size (without the pauses: 2.4 GB of WAL for 400 000 devices; with them, 47 MB).
/// A pause lasts one checkpoint: when a report's long read holds frames back, waiting longer
/// would not free them.
struct Checkpointer {
    wake: Arc<tokio::sync::Notify>,
    /// Numbers the checkpoints as they start.
    started: Arc<std::sync::atomic::AtomicU64>,
    /// The number of the latest checkpoint that finished.
    finished: tokio::sync::watch::Receiver<u64>,
    task: tokio_util::task::AbortOnDropHandle<()>,
}

impl Checkpointer {
    /// Pages committed between two pauses: about 40 MB of WAL at 1 000 records a page, below
    /// the WAL size kept after a checkpoint (`JOURNAL_SIZE_LIMIT`).
    const SETTLE_EVERY: u64 = 8;
    /// The longest pause, should a checkpoint hang on the disk.
    const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

    async fn start(pool: &sqlx::SqlitePool) -> Result<Self, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut conn = pool.acquire().await?;
        // Aborted mid-checkpoint at the end of the load: closed rather than reused.
        conn.close_on_drop();
        let wake = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (done, finished) = tokio::sync::watch::channel(0);
        let (woken, numbering) = (Arc::clone(&wake), Arc::clone(&started));
        let task = tokio::spawn(async move {
            loop {
                woken.notified().await;
                let number = numbering.fetch_add(1, SeqCst) + 1;
                // (busy, frames in the WAL, frames copied)
                let result: Result<(i64, i64, i64), _> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&mut *conn)
                        .await;
                tracing::trace!(?result, "checkpoint during the load");
                if let Err(e) = result {
                    tracing::debug!(error = %e, "checkpoint during the load failed");
                }
                done.send_replace(number);
            }
        });
        Ok(Self {
            wake,
            started,
            finished,
            task: tokio_util::task::AbortOnDropHandle::new(task),
        })
    }

    /// After the load's commit number `commits`: asks for a checkpoint (pokes while one runs make
    /// one more, not one each), and every [`Self::SETTLE_EVERY`] commits waits until one that
    /// started after this commit has finished: unless a reader holds frames back, it copied the
    /// whole WAL, and the next commit rewinds it.
    async fn after_commit(&mut self, commits: u64) {
        // Any checkpoint numbered above `before` started after the commit.
        let before = self.started.load(std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        if commits.is_multiple_of(Self::SETTLE_EVERY) {
            let finished = self.finished.wait_for(|number| *number > before);
            let _ = tokio::time::timeout(Self::SETTLE_LIMIT, finished).await;
        }
    }

    fn stop(&self) {
        self.task.abort();
    }
}

/// `table` has no row.
async fn is_empty(conn: &mut SqliteConnection, table: &str) -> Result<bool, StoreError> {
    let (empty,): (bool,) =
        sqlx::query_as(&format!("SELECT NOT EXISTS (SELECT 1 FROM main.{table})"))
            .fetch_one(conn)
            .await?;
    Ok(empty)
}

/// A load table's `CREATE TABLE` and what becomes of the indexes of the table it replaces.
struct Definition {
    /// `table`'s own definition under the load table's name.
    create: String,
    /// The indexes the load fills in key order, moved to the load table: (name, `CREATE INDEX`).
    moved: Vec<(String, String)>,
    /// The others' `CREATE INDEX`, run after the swap.
    rebuilt: Vec<String>,
}

/// Columns a load writes in ascending order (`device_id`) or with one value (the run and its
/// time), by table: an index that starts with one of them grows by appending during the load.
const LOADED_IN_ORDER: &[(&str, &[&str])] = &[
    ("devices", &["device_id", "first_seen", "last_changed"]),
    ("device_changes", &["run_id", "device_id", "change", "at"]),
];

/// How `table` is redefined as `load`; `None` if its definition does not start as expected.
async fn definition(
    conn: &mut SqliteConnection,
    (table, load): (&str, &str),
) -> Result<Option<Definition>, StoreError> {
    let sql: Option<(String,)> =
        sqlx::query_as("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(create) = sql.and_then(|(sql,)| renamed(&sql, table, load)) else {
        return Ok(None);
    };
    let in_order = LOADED_IN_ORDER
        .iter()
        .find(|(t, _)| *t == table)
        .map_or(&[][..], |(_, columns)| columns);
    let (mut moved, mut rebuilt) = (Vec::new(), Vec::new());
    for (name, sql, first) in indexes_of(conn, table).await? {
        match first {
            Some(column) if in_order.contains(&column.as_str()) => moved.push((name, sql)),
            _ => rebuilt.push(sql),
        }
    }
    Ok(Some(Definition {
        create,
        moved,
        rebuilt,
    }))
}

/// The explicit indexes of `table`: (name, `CREATE INDEX`, first column if it is a column).
async fn indexes_of(
    conn: &mut SqliteConnection,
    table: &str,
) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.name, m.sql, \
         (SELECT i.name FROM pragma_index_info(m.name) i WHERE i.seqno = 0) \
         FROM main.sqlite_schema m \
         WHERE m.type = 'index' AND m.tbl_name = ? AND m.sql IS NOT NULL ORDER BY m.name",
    )
    .bind(table)
    .fetch_all(conn)
    .await?)
}

/// `PRAGMA legacy_alter_table`. On, a rename leaves views as written (they find the new table
/// by its name) instead of rewriting them to follow the renamed one or failing while a view
/// names a dropped table; indexes still follow their table.
async fn legacy_renames(conn: &mut SqliteConnection, on: bool) -> Result<(), StoreError> {
    sqlx::query(&format!("PRAGMA legacy_alter_table = {}", u8::from(on)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Where a table waits while a load table briefly bears its name.
const ASIDE: &str = "pull_swap";

/// `ALTER TABLE from RENAME TO to`.
async fn rename(tx: &mut SqliteConnection, from: &str, to: &str) -> Result<(), StoreError> {
    sqlx::query(&format!("ALTER TABLE main.{from} RENAME TO {to}"))
        .execute(tx)
        .await?;
    Ok(())
}

/// Runs `statements` (`CREATE INDEX` of another table's) while table `actual` bears `name`, a
/// free name, within the caller's transaction: the indexes are built on `actual`, and SQLite
/// rewrites their definitions when the name goes back.
async fn under_name(
    tx: &mut SqliteConnection,
    actual: &str,
    name: &str,
    statements: &[(String, String)],
) -> Result<(), StoreError> {
    if statements.is_empty() {
        return Ok(());
    }
    rename(tx, actual, name).await?;
    for (_, sql) in statements {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    rename(tx, name, actual).await
}

/// Creates `load` and moves the (empty) indexes it is to fill in key order from `table` to it,
/// names and all.
async fn create_load_table(
    tx: &mut SqliteConnection,
    pair: (&str, &str),
    definition: &Definition,
) -> Result<(), StoreError> {
    let (table, load) = pair;
    sqlx::query(&definition.create).execute(&mut *tx).await?;
    if definition.moved.is_empty() {
        return Ok(());
    }
    for (name, _) in &definition.moved {
        sqlx::query(&format!(
            "DROP INDEX main.\"{}\"",
            name.replace('"', "\"\"")
        ))
        .execute(&mut *tx)
        .await?;
    }
    rename(tx, table, ASIDE).await?;
    under_name(tx, load, table, &definition.moved).await?;
    rename(tx, ASIDE, table).await
}

/// `CREATE TABLE <table> ...` rewritten as `CREATE TABLE <to> ...`. SQLite keeps a table's
/// definition as written, except that a rename quotes the new name.
fn renamed(sql: &str, table: &str, to: &str) -> Option<String> {
    const CREATE: &str = "CREATE TABLE ";
    let head = sql.get(..CREATE.len())?;
    if !head.eq_ignore_ascii_case(CREATE) {
        return None;
    }
    let rest = &sql[CREATE.len()..];
    let quoted = format!("\"{table}\"");
    let rest = rest
        .strip_prefix(&quoted)
        .or_else(|| rest.strip_prefix(table))?;
    rest.starts_with([' ', '(', '\n', '\t'])
        .then(|| format!("{CREATE}{to}{rest}"))
}

/// Replaces `table` by `load`, which carries the moved indexes, and builds the `rebuilt` ones.
async fn swap_in(
    tx: &mut SqliteConnection,
    (table, load): (&str, &str),
    rebuilt: &[String],
) -> Result<(), StoreError> {
    sqlx::query(&format!("DROP TABLE main.{table}"))
        .execute(&mut *tx)
        .await?;
    rename(tx, load, table).await?;
    for index in rebuilt {
        sqlx::query(index).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Drops the load-mode tables, if a pull left them, and gives their indexes back to the tables
/// they were taken from.
async fn drop_load_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let (left,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name IN (?, ?)",
    )
    .bind(LOAD_DEVICES.1)
    .bind(LOAD_CHANGES.1)
    .fetch_one(&mut *conn)
    .await?;
    if left == 0 {
        return Ok(());
    }
    let (was,): (bool,) = sqlx::query_as("PRAGMA legacy_alter_table")
        .fetch_one(&mut *conn)
        .await?;
    legacy_renames(conn, true).await?;
    let dropped = give_indexes_back(conn).await;
    legacy_renames(conn, was).await?;
    dropped
}

async fn give_indexes_back(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    for pair in [LOAD_DEVICES, LOAD_CHANGES] {
        // The load table's indexes, read before the drop: their statements name the load
        // table, so they run while the table they came from bears its name.
        let indexes: Vec<(String, String)> = indexes_of(&mut tx, pair.1)
            .await?
            .into_iter()
            .map(|(name, sql, _)| (name, sql))
            .collect();
        sqlx::query(&format!("DROP TABLE IF EXISTS main.{}", pair.1))
            .execute(&mut *tx)
            .await?;
        under_name(&mut tx, pair.0, pair.1, &indexes).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Binds a record's typed columns, in [`TYPED`] order.
fn push_typed<'args>(
    b: &mut sqlx::query_builder::Separated<'_, 'args, Sqlite, &'static str>,
    columns: &'args DeviceColumns,
) {
    b.push_bind(columns.in_service);
    for text in columns.texts() {
        b.push_bind(text);
    }
}

/// Runs a staging INSERT that skips ids already staged; the rows it added.
async fn insert_new(
    mut q: QueryBuilder<'_, Sqlite>,
    tx: &mut SqliteConnection,
) -> Result<u64, StoreError> {
    q.push(" ON CONFLICT (device_id) DO NOTHING");
    Ok(q.build()
        .persistent(true)
        .execute(tx)
        .await?
        .rows_affected())
}

/// Devices stored now.
pub async fn count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(&db.pool)
        .await?)
}

/// Deletes change rows recorded before `before`.
pub async fn prune_changes(db: &Db, before: &str) -> Result<u64, StoreError> {
    db.execute_write(sqlx::query("DELETE FROM device_changes WHERE at < ?").bind(before))
        .await
}
