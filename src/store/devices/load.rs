//! Load mode, a first pull's staging: records go straight into `pull_load_devices` (and their
//! `added` rows into `pull_load_changes` when `device_changes` is empty too), committed page by
//! page, and the apply swaps those tables in by rename ([`super::swap`]).
//!
//! Until the apply nothing reads the load tables; a crash leaves them behind and the next pull
//! drops them and moves the indexes back ([`drop_tables`]).

use super::checkpoint::Checkpointer;
use super::children::{self, LoadTables, Staging};
use super::rows::{ApplyOutcome, Change, STAGE_CHUNK, StageRow, TYPED, insert_new, push_typed};
use super::swap::{
    Definition, create_load_table, definition, indexes_of, legacy_renames, swap_in, under_name,
};
use crate::device::DeviceColumns;
use crate::store::runs::RunCounts;
use crate::store::{StoreError, begin_immediate, pages};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// The load-mode tables and the tables they replace.
const LOAD_DEVICES: (&str, &str) = ("devices", "pull_load_devices");
const LOAD_CHANGES: (&str, &str) = ("device_changes", "pull_load_changes");

/// Columns a load writes in ascending order (`device_id`) or with one value (the run and its
/// time), by table: an index that starts with one of them grows by appending during the load.
const DEVICES_IN_ORDER: &[&str] = &["device_id", "first_seen", "last_changed"];
const CHANGES_IN_ORDER: &[&str] = &["run_id", "device_id", "change", "at"];

/// A first pull's tables.
pub(super) struct Load {
    /// Copies the WAL into the database file beside the staging, see [`Checkpointer`].
    checkpointer: Checkpointer,
    /// `CREATE TABLE` of `pull_load_devices`, and what becomes of the indexes of `devices`.
    devices: Definition,
    /// The same for `pull_load_changes`, when `device_changes` was empty and is replaced too;
    /// otherwise the `added` rows are copied from the new `devices` on apply.
    changes: Option<Definition>,
    /// The child tables' load tables, swapped in with `pull_load_devices`.
    children: LoadTables,
}

impl Load {
    /// The load-mode tables for this pull, when `devices` is empty and can be replaced by a
    /// rename: no trigger hangs on it (a drop would lose it) and its definition reads as expected.
    pub(super) async fn prepare(
        pool: &sqlx::SqlitePool,
        conn: &mut SqliteConnection,
    ) -> Result<Option<Self>, StoreError> {
        if !is_empty(conn, LOAD_DEVICES.0).await? {
            return Ok(None);
        }
        let triggers =
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN (?, ?)";
        if count_of(conn, triggers, (LOAD_DEVICES.0, LOAD_CHANGES.0)).await? > 0 {
            return Ok(None);
        }
        let Some(devices) = definition(conn, LOAD_DEVICES, DEVICES_IN_ORDER).await? else {
            return Ok(None);
        };
        let Some(children) = LoadTables::prepare(conn).await? else {
            return Ok(None);
        };
        let changes = if is_empty(conn, LOAD_CHANGES.0).await? {
            definition(conn, LOAD_CHANGES, CHANGES_IN_ORDER).await?
        } else {
            None
        };
        let checkpointer = Checkpointer::start(pool).await?;
        // The staging connection leaves checkpoints to the checkpointer; `end` restores it.
        // The connection is closed after the pull, so its settings go with it.
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut *conn)
            .await?;
        legacy_renames(conn, true).await?;
        Ok(Some(Self {
            checkpointer,
            devices,
            changes,
            children,
        }))
    }

    /// Creates empty load tables, dropping those of an earlier attempt.
    pub(super) async fn clear(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        drop_tables(conn).await?;
        let mut tx = begin_immediate(conn).await?;
        create_load_table(&mut tx, LOAD_DEVICES, &self.devices).await?;
        if let Some(changes) = &self.changes {
            create_load_table(&mut tx, LOAD_CHANGES, changes).await?;
        }
        self.children.create(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a page's records (all of them carry one: nothing is stored to compare with) in a
    /// transaction of their own, as the load's commit number `commits`, with `run_id` and `at`
    /// on every row. Returns how many ids were new to this pull.
    pub(super) async fn stage(
        &mut self,
        conn: &mut SqliteConnection,
        rows: &[StageRow<'_>],
        (run_id, at): (i64, &str),
        commits: u64,
    ) -> Result<u64, StoreError> {
        let records: Vec<(i64, i64, &str, &DeviceColumns)> = rows
            .iter()
            .filter_map(|r| r.record.map(|(raw, c)| (r.device_id, r.raw_hash, raw, c)))
            .collect();
        // A short write transaction per page on the main database: the WAL is checkpointed as
        // the pages come in rather than all at once at the end.
        let mut tx = begin_immediate(conn).await?;
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
                    .push_bind(at)
                    .push_bind(at);
                push_typed(&mut b, columns);
            });
            inserted += insert_new(q, &mut tx).await?;
            if self.changes.is_some() {
                let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "INSERT INTO main.pull_load_changes (run_id, device_id, change, at, raw) ",
                );
                q.push_values(chunk, |mut b, (id, _, raw, _)| {
                    b.push_bind(run_id)
                        .push_bind(*id)
                        .push_bind(Change::Added.as_str())
                        .push_bind(at)
                        .push_bind(*raw);
                });
                q.build().persistent(true).execute(&mut *tx).await?;
            }
        }
        children::stage(&mut tx, Staging::Load, rows).await?;
        tx.commit().await?;
        self.checkpointer.after_commit(commits).await;
        Ok(inserted)
    }

    /// Stops the checkpointer and gives checkpoints back to the connection, for the apply's own
    /// commit.
    pub(super) async fn end(&self, conn: &mut SqliteConnection) {
        self.checkpointer.stop();
        let _ = sqlx::query(&format!(
            "PRAGMA wal_autocheckpoint = {}",
            crate::store::WAL_AUTOCHECKPOINT
        ))
        .execute(conn)
        .await;
    }

    /// Swaps the load tables in within the apply transaction `tx`: the inventory becomes the
    /// `items` devices loaded, each logged `added` by run `run_id` at `at`.
    pub(super) async fn apply(
        &self,
        tx: &mut SqliteConnection,
        (run_id, at): (i64, &str),
        items: i64,
    ) -> Result<ApplyOutcome, StoreError> {
        if !is_empty(tx, LOAD_DEVICES.0).await? {
            return Err(StoreError::Conflict(
                "devices was written by something other than d42sync during the pull".into(),
            ));
        }
        let (added,): (i64,) = sqlx::query_as("SELECT count(*) FROM main.pull_load_devices")
            .fetch_one(&mut *tx)
            .await?;
        swap_in(tx, LOAD_DEVICES, &self.devices.rebuilt).await?;
        self.children.swap_in(tx).await?;
        match &self.changes {
            Some(changes) if is_empty(tx, LOAD_CHANGES.0).await? => {
                swap_in(tx, LOAD_CHANGES, &changes.rebuilt).await?;
            }
            _ => {
                sqlx::query(
                    "INSERT INTO device_changes (run_id, device_id, change, at, raw) \
                     SELECT ?, device_id, ?, ?, raw FROM devices ORDER BY device_id",
                )
                .bind(run_id)
                .bind(Change::Added.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
        }
        pages::save(tx).await?;
        Ok(ApplyOutcome::Applied(RunCounts {
            items,
            added,
            ..Default::default()
        }))
    }
}

/// The count `sql` gives for the two `names` it asks about.
async fn count_of(
    conn: &mut SqliteConnection,
    sql: &str,
    names: (&str, &str),
) -> Result<i64, StoreError> {
    let (count,): (i64,) = sqlx::query_as(sql)
        .bind(names.0)
        .bind(names.1)
        .fetch_one(conn)
        .await?;
    Ok(count)
}

/// `table` has no row.
async fn is_empty(conn: &mut SqliteConnection, table: &str) -> Result<bool, StoreError> {
    let (empty,): (bool,) =
        sqlx::query_as(&format!("SELECT NOT EXISTS (SELECT 1 FROM main.{table})"))
            .fetch_one(conn)
            .await?;
    Ok(empty)
}

/// Drops the load-mode tables, if a pull left them, and gives their indexes back to the tables
/// they were taken from.
pub(super) async fn drop_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    children::drop_load_tables(conn).await?;
    let tables = "SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name IN (?, ?)";
    if count_of(conn, tables, (LOAD_DEVICES.1, LOAD_CHANGES.1)).await? == 0 {
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

/// Drops the load tables in one write transaction, their indexes going back to the tables they
/// came from.
async fn give_indexes_back(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mut tx = begin_immediate(conn).await?;
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
