//! Load mode, a first pull's staging: records go straight into `pull_load_devices`, committed
//! page by page, and the apply swaps that table in by rename ([`super::swap`]) and logs each
//! device `added` (rows without a copy of the record, which `devices` holds).
//!
//! Until the apply nothing reads the load table; a crash leaves it behind and the next pull drops
//! it and moves the indexes back ([`drop_tables`]).

use super::checkpoint::Checkpointer;
use super::children::{self, ChildStage, LoadTables, Staging};
use super::rows::{ApplyOutcome, Change, StageRow, TYPED, bind_typed};
use super::swap::{
    Definition, create_load_table, definition, indexes_of, legacy_renames, swap_in, under_name,
};
use crate::device::DeviceColumns;
use crate::store::runs::RunCounts;
use crate::store::{StoreError, begin_immediate, direct, pages};
use sqlx::SqliteConnection;

/// The load-mode table and the table it replaces.
const LOAD_DEVICES: (&str, &str) = ("devices", "pull_load_devices");

/// Columns a load writes in ascending order (`device_id`) or with one value (the run's time): an
/// index that starts with one of them grows by appending during the load.
const DEVICES_IN_ORDER: &[&str] = &["device_id", "first_seen", "last_changed"];

/// The triggers on `devices` that keep the change log's records (see the migration
/// `device_change_log`): a load recreates them with the table; any other trigger on `devices`
/// keeps a first pull on the compare path, where it fires.
const OWN_TRIGGERS: (&str, &str) = (
    "devices_keep_replaced_record",
    "devices_keep_removed_record",
);

/// A first pull's table.
pub(super) struct Load {
    /// Copies the WAL into the database file beside the staging, see [`Checkpointer`].
    checkpointer: Checkpointer,
    /// `CREATE TABLE` of `pull_load_devices`, and what becomes of the indexes and triggers of
    /// `devices`.
    devices: Definition,
    /// The child tables' load tables, swapped in with `pull_load_devices`.
    children: LoadTables,
}

impl Load {
    /// The load-mode table for this pull, when `devices` is empty and can be replaced by a
    /// rename: no trigger but d42sync's own hangs on it (the load would not fire it) and its
    /// definition reads as expected. Triggers on the change log fire as its rows are inserted.
    pub(super) async fn prepare(
        pool: &sqlx::SqlitePool,
        conn: &mut SqliteConnection,
    ) -> Result<Option<Self>, StoreError> {
        if !is_empty(conn, LOAD_DEVICES.0).await? {
            return Ok(None);
        }
        let (others,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ? \
             AND name NOT IN (?, ?)",
        )
        .bind(LOAD_DEVICES.0)
        .bind(OWN_TRIGGERS.0)
        .bind(OWN_TRIGGERS.1)
        .fetch_one(&mut *conn)
        .await?;
        if others > 0 {
            return Ok(None);
        }
        let Some(devices) = definition(conn, LOAD_DEVICES, DEVICES_IN_ORDER).await? else {
            return Ok(None);
        };
        let Some(children) = LoadTables::prepare(conn).await? else {
            return Ok(None);
        };
        let checkpointer = Checkpointer::start(pool).await?;
        // The staging connection leaves checkpoints to the checkpointer; `end` restores it.
        // The connection is closed after the pull, so its settings go with it.
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut *conn)
            .await?;
        // Its temp storage stays in files (`temp_store = FILE`, as on every connection): it
        // holds the sorts of the indexes the apply builds, which grow with the inventory. In
        // memory they spared a first load of 100 000 devices about 10 MiB of file writes, but
        // took the peak RSS of one of 400 000 from 56-57 to 68-71 MiB (`bench/findings.md`).
        legacy_renames(conn, true).await?;
        Ok(Some(Self {
            checkpointer,
            devices,
            children,
        }))
    }

    /// Creates an empty load table, dropping that of an earlier attempt.
    pub(super) async fn clear(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        drop_tables(conn).await?;
        let mut tx = begin_immediate(conn).await?;
        create_load_table(&mut tx, LOAD_DEVICES, &self.devices).await?;
        self.children.create(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a page's records (all of them carry one: nothing is stored to compare with) in a
    /// transaction of their own, as the load's commit number `commits`, with `at` on every row.
    /// Returns how many ids were new to this pull.
    pub(super) async fn stage(
        &mut self,
        conn: &mut SqliteConnection,
        rows: &[StageRow<'_>],
        (at, commits): (&str, u64),
        children: &mut ChildStage,
    ) -> Result<u64, StoreError> {
        let records: Vec<(i64, i64, &str, &DeviceColumns)> = rows
            .iter()
            .filter_map(|r| r.record.map(|(raw, c)| (r.device_id, r.raw_hash, raw, c)))
            .collect();
        // A short write transaction per page on the main database: the WAL is checkpointed as
        // the pages come in rather than all at once at the end.
        let mut tx = begin_immediate(conn).await?;
        // Each record bound through SQLite's C API, like its child rows (`store/direct.rs`).
        let inserted = direct::insert(
            &mut tx,
            &direct::insert_sql(
                "main.pull_load_devices",
                &format!("device_id, raw_hash, raw, first_seen, last_changed, {TYPED}"),
                "ON CONFLICT (device_id) DO NOTHING",
            ),
            &records,
            |(id, hash, raw, columns), row| {
                row.int(Some(*id))
                    .int(Some(*hash))
                    .text(Some(raw))
                    .text(Some(at))
                    .text(Some(at));
                bind_typed(row, columns);
            },
        )
        .await?;
        children.stage(&mut tx, Staging::Load, rows).await?;
        tx.commit().await?;
        self.checkpointer.after_commit(commits).await;
        Ok(inserted)
    }

    /// Stops the checkpointer and gives checkpoints back to the connection, for the apply's own
    /// commit.
    pub(super) async fn end(&mut self, conn: &mut SqliteConnection) {
        self.checkpointer.stop().await;
        let _ = sqlx::query(&format!(
            "PRAGMA wal_autocheckpoint = {}",
            crate::store::WAL_AUTOCHECKPOINT
        ))
        .execute(conn)
        .await;
    }

    /// Swaps the load table in within the apply transaction `tx`: the inventory becomes the
    /// `items` devices loaded, each logged `added` by run `run_id` at `at` (a row that reads its
    /// record from `devices`).
    pub(super) async fn apply(
        &self,
        tx: &mut SqliteConnection,
        (run_id, at): (i64, &str),
        items: i64,
        children: &mut ChildStage,
    ) -> Result<ApplyOutcome, StoreError> {
        if !is_empty(tx, LOAD_DEVICES.0).await? {
            return Err(StoreError::Conflict(
                "devices was written by something other than d42sync during the pull".into(),
            ));
        }
        let (added,): (i64,) = sqlx::query_as("SELECT count(*) FROM main.pull_load_devices")
            .fetch_one(&mut *tx)
            .await?;
        children.write_rest(tx, Staging::Load).await?;
        swap_in(tx, LOAD_DEVICES, &self.devices.rebuilt).await?;
        self.children.swap_in(tx).await?;
        sqlx::query(
            "INSERT INTO device_change_log (run_id, device_id, change, at) \
             SELECT ?, device_id, ?, ? FROM devices ORDER BY device_id",
        )
        .bind(run_id)
        .bind(Change::Added.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        pages::save(tx).await?;
        Ok(ApplyOutcome::Applied(RunCounts {
            items,
            added,
            ..Default::default()
        }))
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

/// Drops the load-mode table, if a pull left it, and gives its indexes back to `devices`. (The
/// `pull_load_changes` of older versions is dropped by the migration `device_change_log`.)
pub(super) async fn drop_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    children::drop_load_tables(conn).await?;
    let (left,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?)",
    )
    .bind(LOAD_DEVICES.1)
    .fetch_one(&mut *conn)
    .await?;
    if !left {
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

/// Drops the load table in one write transaction, its indexes going back to `devices`.
async fn give_indexes_back(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let (table, load) = LOAD_DEVICES;
    let mut tx = begin_immediate(conn).await?;
    // The load table's indexes, read before the drop: their statements name the load table, so
    // they run while `devices` bears its name.
    let indexes: Vec<(String, String)> = indexes_of(&mut tx, load)
        .await?
        .into_iter()
        .map(|(name, sql, _)| (name, sql))
        .collect();
    sqlx::query(&format!("DROP TABLE IF EXISTS main.{load}"))
        .execute(&mut *tx)
        .await?;
    under_name(&mut tx, table, load, &indexes).await?;
    tx.commit().await?;
    Ok(())
}
