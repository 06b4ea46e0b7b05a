//! `devices` and `device_changes`: the staging of a pull and its swap into the inventory.
//!
//! A pull writes what it receives into a TEMP table on one dedicated connection ([`PullStage`]).
//! Temp tables live outside the main database file, so staging never takes the database's write
//! lock and a crash simply discards them. Only a complete pull is applied, in one `BEGIN
//! IMMEDIATE` transaction that moves the inventory from the previous snapshot to the next:
//! readers see one or the other, never a mix.

use super::runs::{self, RunCounts, RunStatus};
use super::{Db, StoreError};
use crate::device::DeviceColumns;
use crate::time::now_iso;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, QueryBuilder, Sqlite};
use std::collections::HashMap;

/// Rows per multi-row INSERT into the staging table: a few hundred keeps statements short while
/// amortising the per-statement cost (one INSERT per row is several times slower). 15 values a
/// row stay far below SQLite's limit of 32 766 bound values.
const STAGE_CHUNK: usize = 250;

/// The staging table: the fixed columns, then the typed ones in [`TYPED`] order.
const CREATE_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS pull_stage (device_id INTEGER PRIMARY KEY, \
     raw_hash INTEGER NOT NULL, raw TEXT, in_service INTEGER, name TEXT, type TEXT, serial_no TEXT, \
     asset_no TEXT, uuid TEXT, service_level TEXT, customer TEXT, hardware TEXT, os_name TEXT, \
     os_version TEXT, last_updated TEXT)";

/// The typed columns as a SQL list: `in_service`, then [`DeviceColumns::TEXT_COLUMNS`].
const TYPED: &str = "in_service, name, type, serial_no, asset_no, uuid, service_level, customer, \
     hardware, os_name, os_version, last_updated";

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

/// A pull's staging area: a TEMP table on a connection held for the whole pull.
pub struct PullStage {
    conn: PoolConnection<Sqlite>,
}

impl PullStage {
    /// Takes a connection and creates an empty staging table on it.
    pub async fn new(db: &Db) -> Result<Self, StoreError> {
        let mut conn = db.pool.acquire().await?;
        // The temp database gets the same page size as the main one, for the same reason
        // (it only takes effect before the connection first uses temp storage).
        sqlx::query(&format!("PRAGMA temp.page_size = {}", super::PAGE_SIZE))
            .execute(&mut *conn)
            .await?;
        sqlx::query(CREATE_STAGE).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM temp.pull_stage")
            .execute(&mut *conn)
            .await?;
        Ok(Self { conn })
    }

    /// The stored hashes of devices with ids in `lo..=hi` (a page's id range; pages come in id
    /// order, so this is one index range scan).
    pub async fn stored_hashes(
        &mut self,
        lo: i64,
        hi: i64,
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT device_id, raw_hash FROM devices WHERE device_id BETWEEN ? AND ?",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Stages a page; returns how many ids were new to this pull (fewer than `rows.len()` means
    /// the server repeated ids: the inventory shifted while paging).
    pub async fn stage(&mut self, rows: &[StageRow<'_>]) -> Result<u64, StoreError> {
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
                    .push_bind(*raw)
                    .push_bind(columns.in_service);
                for text in columns.texts() {
                    b.push_bind(text);
                }
            });
            q.push(" ON CONFLICT (device_id) DO NOTHING");
            inserted += q
                .build()
                .persistent(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // Unchanged devices: only their id (they still exist) and hash.
        let unchanged: Vec<&StageRow<'_>> = rows.iter().filter(|r| r.record.is_none()).collect();
        for chunk in unchanged.chunks(STAGE_CHUNK * 4) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO temp.pull_stage (device_id, raw_hash) ");
            q.push_values(chunk, |mut b, row| {
                b.push_bind(row.device_id).push_bind(row.raw_hash);
            });
            q.push(" ON CONFLICT (device_id) DO NOTHING");
            inserted += q
                .build()
                .persistent(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Empties the staging table for a fresh attempt.
    pub async fn clear(&mut self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM temp.pull_stage")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// Swaps the staged snapshot into `devices` in one write transaction, logging each change
    /// in `device_changes` and finishing run `run_id` in the same transaction.
    pub async fn apply(
        mut self,
        run_id: i64,
        items: i64,
        guard: DeleteGuard,
    ) -> Result<ApplyOutcome, StoreError> {
        let outcome = self.apply_in_tx(run_id, items, guard).await;
        // The staging table is dropped whatever happened, so its disk space is given back.
        let _ = sqlx::query("DROP TABLE IF EXISTS temp.pull_stage")
            .execute(&mut *self.conn)
            .await;
        outcome
    }

    async fn apply_in_tx(
        &mut self,
        run_id: i64,
        items: i64,
        guard: DeleteGuard,
    ) -> Result<ApplyOutcome, StoreError> {
        let now = now_iso();
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
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
        let counts = RunCounts {
            items,
            added,
            changed,
            removed,
            ..Default::default()
        };
        runs::finish_in(&mut tx, run_id, RunStatus::Ok, counts, None).await?;
        tx.commit().await?;
        Ok(ApplyOutcome::Applied(counts))
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
    db.execute_write(sqlx::query("DELETE FROM device_changes WHERE at < ?").bind(before))
        .await
}
