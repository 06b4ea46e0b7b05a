//! Load mode, a first pull's staging: records go straight into `pull_load_devices`, committed
//! page by page, and the apply swaps that table in by rename ([`super::swap`]). Each device is
//! logged `added` (a row without a copy of the record, which `devices` holds): when the change
//! log is empty (the first pull of a database) into `pull_load_device_change_log`, swapped in
//! with the devices, otherwise straight into the change log. The apply writes those rows, or,
//! while the pull waits for the link ([`Load::log_with_pages`]), the pages write them as they
//! come in.
//!
//! Until the apply nothing reads the load tables; a crash leaves them behind and the next pull
//! drops them and moves the indexes back ([`drop_tables`]).

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

/// The change log and its load table.
const LOAD_CHANGES: (&str, &str) = ("device_change_log", "pull_load_device_change_log");

/// Columns of the change log a load writes in ascending order (`device_id`) or with one value:
/// d42sync's indexes on it all start with one of them, so they grow by appending.
const CHANGES_IN_ORDER: &[&str] = &["device_id", "run_id", "change", "at"];

/// Devices staged before their `added` rows go into the change log's load table, when the pages
/// write them ([`Load::log_with_pages`]). Each write rewrites the last, partly filled pages of
/// the table and of its four indexes: a first load of 100 000 devices wrote 35 MiB more in
/// batches of this many (about 120 MiB more with a batch per page of 1 000), and the apply
/// after the last page writes at most this many, a few milliseconds (`bench/findings.md`).
const LOGGED_AT_ONCE: u64 = 8192;

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
    /// The change log's load table, when the change log is empty and has no trigger.
    log: Option<LoadLog>,
}

/// A first load's change log: the `added` rows of the devices staged, written as the pages come
/// in and swapped in with `devices`.
struct LoadLog {
    /// `CREATE TABLE` of `pull_load_device_change_log`, and its indexes.
    definition: Definition,
    /// Devices staged and not logged yet.
    unlogged: u64,
    /// The pages log their devices, in batches of [`LOGGED_AT_ONCE`]; otherwise the apply does.
    /// Set for each page: the link's pace can change during a pull.
    with_pages: bool,
}

impl LoadLog {
    /// The change log's load table, when the change log is empty and no trigger hangs on it (a
    /// trigger is to fire for each row, so the rows are inserted by the apply then).
    async fn prepare(conn: &mut SqliteConnection) -> Result<Option<Self>, StoreError> {
        let (table, _) = LOAD_CHANGES;
        if !is_empty(conn, table).await? || triggers_on(conn, table, &[]).await? > 0 {
            return Ok(None);
        }
        Ok(definition(conn, LOAD_CHANGES, CHANGES_IN_ORDER)
            .await?
            .map(|definition| Self {
                definition,
                unlogged: 0,
                with_pages: false,
            }))
    }

    /// Logs the devices of `pull_load_devices` past the highest one logged, within `tx`: the
    /// load stages ids in ascending order (see `jobs::pull::paging`); [`Self::swap_in`] checks
    /// the count.
    async fn write(
        &mut self,
        tx: &mut SqliteConnection,
        run: (i64, &str),
    ) -> Result<(), StoreError> {
        if self.unlogged == 0 {
            return Ok(());
        }
        log_added(tx, (LOAD_DEVICES.1, LOAD_CHANGES.1), run, true).await?;
        self.unlogged = 0;
        Ok(())
    }

    /// Writes the rest of the `added` rows and swaps the log in within the apply transaction
    /// `tx`, before `pull_load_devices` is swapped in. `added` devices were loaded.
    async fn swap_in(
        &mut self,
        tx: &mut SqliteConnection,
        run: (i64, &str),
        added: i64,
    ) -> Result<(), StoreError> {
        let (table, load) = LOAD_CHANGES;
        if !is_empty(tx, table).await? {
            return Err(StoreError::Conflict(format!(
                "{table} was written by something other than d42sync during the pull"
            )));
        }
        self.write(tx, run).await?;
        let (logged,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM main.{load}"))
            .fetch_one(&mut *tx)
            .await?;
        if logged != added {
            // Ids staged out of order: logged again from the start, each device once.
            sqlx::query(&format!("DELETE FROM main.{load}"))
                .execute(&mut *tx)
                .await?;
            log_added(tx, (LOAD_DEVICES.1, load), run, false).await?;
        }
        swap_in(tx, LOAD_CHANGES, &self.definition.rebuilt).await
    }
}

/// Logs each device of table `from` `added` by run `run_id` at `at` in table `into`, in id
/// order; with `past_logged`, only those above the highest device id `into` holds.
async fn log_added(
    tx: &mut SqliteConnection,
    (from, into): (&str, &str),
    (run_id, at): (i64, &str),
    past_logged: bool,
) -> Result<(), StoreError> {
    let past = if past_logged {
        format!("WHERE device_id > (SELECT coalesce(max(device_id), ?) FROM main.{into})")
    } else {
        String::new()
    };
    let sql = format!(
        "INSERT INTO main.{into} (run_id, device_id, change, at) \
         SELECT ?, device_id, ?, ? FROM main.{from} {past} ORDER BY device_id"
    );
    let mut insert = sqlx::query(&sql)
        .bind(run_id)
        .bind(Change::Added.as_str())
        .bind(at);
    if past_logged {
        insert = insert.bind(i64::MIN);
    }
    insert.execute(tx).await?;
    Ok(())
}

/// How many triggers hang on `table`, less those named in `except`.
async fn triggers_on(
    conn: &mut SqliteConnection,
    table: &str,
    except: &[&str],
) -> Result<i64, StoreError> {
    let except = serde_json::to_string(except).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ? \
         AND name NOT IN (SELECT value FROM json_each(?))",
    )
    .bind(table)
    .bind(except)
    .fetch_one(conn)
    .await?;
    Ok(count)
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
        let own = [OWN_TRIGGERS.0, OWN_TRIGGERS.1];
        if triggers_on(conn, LOAD_DEVICES.0, &own).await? > 0 {
            return Ok(None);
        }
        let Some(devices) = definition(conn, LOAD_DEVICES, DEVICES_IN_ORDER).await? else {
            return Ok(None);
        };
        let Some(children) = LoadTables::prepare(conn).await? else {
            return Ok(None);
        };
        let log = LoadLog::prepare(conn).await?;
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
            log,
        }))
    }

    /// Creates empty load tables, dropping those of an earlier attempt.
    pub(super) async fn clear(&mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        drop_tables(conn).await?;
        let mut tx = begin_immediate(conn).await?;
        create_load_table(&mut tx, LOAD_DEVICES, &self.devices).await?;
        self.children.create(&mut tx).await?;
        if let Some(log) = &mut self.log {
            create_load_table(&mut tx, LOAD_CHANGES, &log.definition).await?;
            log.unlogged = 0;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the pages write the change log's `added` rows as they come in (`on`), or the
    /// apply after the last page. On while the stage waits for the link: there it costs no
    /// time, and on a 200 ms link it took 0.1 s off a first load of 100 000 devices. Against a
    /// fast appliance, where the stage is what the pull waits for, it would only add the
    /// batches' writes (`bench/findings.md`). Without a load table for the change log (it has
    /// rows or a trigger) the apply inserts the rows either way.
    pub(super) fn log_with_pages(&mut self, on: bool) {
        if let Some(log) = &mut self.log {
            log.with_pages = on;
        }
    }

    /// Writes a page's records (all of them carry one: nothing is stored to compare with) in a
    /// transaction of their own, as the load's commit number `commits` of run `run_id`, with `at`
    /// on every row. Returns how many ids were new to this pull.
    pub(super) async fn stage(
        &mut self,
        conn: &mut SqliteConnection,
        rows: &[StageRow<'_>],
        (run_id, at, commits): (i64, &str, u64),
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
        if let Some(log) = &mut self.log {
            log.unlogged += inserted;
            if log.with_pages && log.unlogged >= LOGGED_AT_ONCE {
                let devices = log.unlogged;
                log.write(&mut tx, (run_id, at)).await?;
                tracing::debug!(devices, "change log written with the pages");
            }
        }
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

    /// Swaps the load tables in within the apply transaction `tx`: the inventory becomes the
    /// `items` devices loaded, each logged `added` by run `run_id` at `at` (a row that reads its
    /// record from `devices`).
    pub(super) async fn apply(
        &mut self,
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
        if let Some(log) = &mut self.log {
            log.swap_in(tx, (run_id, at), added).await?;
        }
        swap_in(tx, LOAD_DEVICES, &self.devices.rebuilt).await?;
        self.children.swap_in(tx).await?;
        if self.log.is_none() {
            log_added(tx, (LOAD_DEVICES.0, LOAD_CHANGES.0), (run_id, at), false).await?;
        }
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

/// Drops the load-mode tables, if a pull left them, and gives their indexes back to `devices`
/// and the change log. (The `pull_load_changes` of older versions is dropped by the migration
/// `device_change_log`.)
pub(super) async fn drop_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    children::drop_load_tables(conn).await?;
    for pair in [LOAD_DEVICES, LOAD_CHANGES] {
        let (left,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?)",
        )
        .bind(pair.1)
        .fetch_one(&mut *conn)
        .await?;
        if !left {
            continue;
        }
        let (was,): (bool,) = sqlx::query_as("PRAGMA legacy_alter_table")
            .fetch_one(&mut *conn)
            .await?;
        legacy_renames(conn, true).await?;
        let dropped = give_indexes_back(conn, pair).await;
        legacy_renames(conn, was).await?;
        dropped?;
    }
    Ok(())
}

/// Drops the load table of `pair` in one write transaction, its indexes going back to the table
/// it stood for.
async fn give_indexes_back(
    conn: &mut SqliteConnection,
    (table, load): (&str, &str),
) -> Result<(), StoreError> {
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
