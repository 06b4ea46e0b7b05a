//! Compare mode, the staging of a pull into an inventory that has rows: old against new.
//!
//! Records wait in the TEMP table `pull_stage`, which lives outside the main database file,
//! never takes its write lock and vanishes with a crash. Only records whose hash differs from the
//! stored one carry their JSON; the apply counts the removals, asks the mass-deletion guard, and
//! then deletes, updates and inserts what differs, logging each difference in the change log.
//! Pages that come back byte for byte as the last pull saw them are not parsed at all ([`pages`]).
//!
//! The change log stores each record once: an `added` or `changed` row is written without the
//! record, which `devices` holds, and the triggers on `devices` copy it into the row before the
//! record is replaced or the device deleted; so the rows are logged after `devices` is updated.

use super::children::{self, ChildStage, Staging};
use super::rows::{
    ApplyOutcome, Change, DeleteGuard, STAGE_CHUNK, StageRow, TYPED, insert_new, push_typed,
};
use crate::device::DeviceColumns;
use crate::store::StoreError;
use crate::store::pages::{self, Basis, KnownPages};
use crate::store::runs::RunCounts;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;
use std::sync::Arc;

/// The staging table: the fixed columns, then the typed ones in [`TYPED`] order. `raw_hash` and
/// `raw` are NULL for a device whose stored record is unchanged.
const CREATE_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS pull_stage (device_id INTEGER PRIMARY KEY, \
     raw_hash INTEGER, raw TEXT, in_service INTEGER, name TEXT, type TEXT, serial_no TEXT, \
     asset_no TEXT, uuid TEXT, service_level TEXT, customer TEXT, hardware TEXT, os_name TEXT, \
     os_version TEXT, last_updated TEXT)";

/// What a compare-mode pull knows of the last one.
#[derive(Default)]
pub(super) struct Compare {
    /// The last pull's pages (empty when they cannot be trusted).
    known: Arc<KnownPages>,
    /// What `devices` held when they were recorded; checked again in the apply.
    basis: Option<Basis>,
}

impl Compare {
    /// Reads the last pull's pages, if `devices` still matches them.
    pub(super) async fn open(conn: &mut SqliteConnection) -> Result<Self, StoreError> {
        Ok(match pages::load(conn).await? {
            Some((basis, known)) => Self {
                known: Arc::new(known),
                basis: Some(basis),
            },
            None => Self::default(),
        })
    }

    /// The last pull's pages.
    pub(super) fn known(&self) -> Arc<KnownPages> {
        Arc::clone(&self.known)
    }

    /// Whether `parsed` pages parsed and `reused` reused are every page the last pull saw, and
    /// no other: the inventory is as applied then.
    pub(super) fn unchanged(&self, parsed: u64, reused: u64) -> bool {
        parsed == 0 && !self.known.is_empty() && reused == self.known.len() as u64
    }

    /// Applies the staged snapshot within the apply transaction `tx`, as run `run_id` at `at`:
    /// `items` devices, of which the stage holds what differs (nothing at all when `unchanged`;
    /// ids of `reused` pages rest on the basis read at the start).
    pub(super) async fn apply(
        &self,
        tx: &mut SqliteConnection,
        (run_id, at): (i64, &str),
        items: i64,
        guard: DeleteGuard,
        (unchanged, reused): (bool, bool),
    ) -> Result<ApplyOutcome, StoreError> {
        if reused && Some(pages::basis(tx).await?) != self.basis {
            return Err(StoreError::Conflict(
                "devices was written by something other than d42sync during the pull; \
                 the next pull compares every record"
                    .into(),
            ));
        }
        if unchanged {
            return Ok(ApplyOutcome::Applied(RunCounts {
                items,
                ..Default::default()
            }));
        }
        let (stored, removing) = count_removals(tx).await?;
        if guard.holds(stored, removing) {
            return Ok(ApplyOutcome::Held {
                stored,
                incoming: items,
                removing,
            });
        }
        // Finding what to remove scans every stored record: skipped when the count says none.
        children::apply_staged(tx, removing > 0).await?;
        let removed = if removing > 0 {
            remove(tx, run_id, at).await?
        } else {
            0
        };
        let changed = if stored == 0 {
            0
        } else {
            update(tx, at).await?
        };
        log_staged(tx, run_id, at).await?;
        let added = add(tx, at).await?;
        pages::save(tx).await?;
        Ok(ApplyOutcome::Applied(RunCounts {
            items,
            added,
            changed,
            removed,
            ..Default::default()
        }))
    }
}

/// Creates (or empties) the staging table.
pub(super) async fn clear(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query(CREATE_STAGE).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM temp.pull_stage")
        .execute(&mut *conn)
        .await?;
    children::clear_stage(conn).await
}

/// Drops the staging table and gives back its disk space.
pub(super) async fn drop_stage(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("DROP TABLE IF EXISTS temp.pull_stage")
        .execute(&mut *conn)
        .await?;
    children::drop_stage(conn).await
}

/// The stored hashes of devices with ids in `lo..=hi` (a page's id range; pages come in id
/// order, so this is one index range scan).
pub(super) async fn stored_hashes(
    conn: &mut SqliteConnection,
    lo: i64,
    hi: i64,
) -> Result<HashMap<i64, i64>, StoreError> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT device_id, raw_hash FROM devices WHERE device_id BETWEEN ? AND ?")
            .bind(lo)
            .bind(hi)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Stages a page's rows: records that differ with their JSON, the others by id alone. Returns
/// how many ids were new to this pull.
pub(super) async fn stage(
    conn: &mut SqliteConnection,
    rows: &[StageRow<'_>],
    children: &mut ChildStage,
) -> Result<u64, StoreError> {
    // A plain BEGIN: these statements write only the temp schema, which never takes the
    // main database's write lock, so there is no lock upgrade to fail.
    let mut tx = conn.begin().await?;
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
    children.stage(&mut tx, Staging::Temp, rows).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// The deletion guard's input: devices stored, and how many of them the stage lacks.
async fn count_removals(tx: &mut SqliteConnection) -> Result<(i64, i64), StoreError> {
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM devices")
        .fetch_one(&mut *tx)
        .await?;
    let (removing,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM devices d \
         WHERE NOT EXISTS (SELECT 1 FROM temp.pull_stage s WHERE s.device_id = d.device_id)",
    )
    .fetch_one(tx)
    .await?;
    Ok((stored, removing))
}

/// Logs (with the last known record) and deletes the devices the stage lacks; how many.
async fn remove(tx: &mut SqliteConnection, run_id: i64, at: &str) -> Result<i64, StoreError> {
    let removed = sqlx::query(
        "INSERT INTO device_change_log (run_id, device_id, change, at, raw) \
         SELECT ?, d.device_id, ?, ?, d.raw FROM devices d \
         WHERE NOT EXISTS (SELECT 1 FROM temp.pull_stage s WHERE s.device_id = d.device_id)",
    )
    .bind(run_id)
    .bind(Change::Removed.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(
        "DELETE FROM devices WHERE device_id NOT IN (SELECT device_id FROM temp.pull_stage)",
    )
    .execute(tx)
    .await?;
    Ok(removed)
}

/// Logs each staged record as `added` or `changed`, without the record (it is the current
/// one): after the changed records are written ([`update`]), before the new ones are ([`add`]).
async fn log_staged(tx: &mut SqliteConnection, run_id: i64, at: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_change_log (run_id, device_id, change, at) \
         SELECT ?, s.device_id, CASE WHEN d.device_id IS NULL THEN ? ELSE ? END, ? \
         FROM temp.pull_stage s LEFT JOIN devices d ON d.device_id = s.device_id \
         WHERE s.raw IS NOT NULL ORDER BY s.device_id",
    )
    .bind(run_id)
    .bind(Change::Added.as_str())
    .bind(Change::Changed.as_str())
    .bind(at)
    .execute(tx)
    .await?;
    Ok(())
}

/// Writes the staged records of stored devices; the devices changed.
///
/// Changed records first, then new ones ([`add`]): two plain statements are cheaper than an
/// upsert, and their row counts are the run's counts. Only ids go into the IN list; each changed
/// row is then read by primary key (an `UPDATE ... FROM` would materialise every staged record
/// first).
async fn update(tx: &mut SqliteConnection, at: &str) -> Result<i64, StoreError> {
    let staged: Vec<String> = TYPED.split(", ").map(|c| format!("s.{c}")).collect();
    Ok(sqlx::query(&format!(
        "UPDATE devices SET (raw, raw_hash, last_changed, {TYPED}) = \
         (SELECT s.raw, s.raw_hash, ?1, {} FROM temp.pull_stage s WHERE s.device_id = devices.device_id) \
         WHERE device_id IN (SELECT device_id FROM temp.pull_stage WHERE raw IS NOT NULL)",
        staged.join(", ")
    ))
    .bind(at)
    .execute(tx)
    .await?
    .rows_affected() as i64)
}

/// Inserts the staged records of devices not stored; the devices added.
async fn add(tx: &mut SqliteConnection, at: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query(&format!(
        "INSERT INTO devices (device_id, raw, raw_hash, first_seen, last_changed, {TYPED}) \
         SELECT s.device_id, s.raw, s.raw_hash, ?1, ?1, {TYPED} FROM temp.pull_stage s \
         WHERE s.raw IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.device_id = s.device_id) \
         ORDER BY s.device_id"
    ))
    .bind(at)
    .execute(tx)
    .await?
    .rows_affected() as i64)
}
