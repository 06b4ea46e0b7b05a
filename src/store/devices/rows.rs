//! What flows between a pull and the device tables: the rows a pull stages, the kinds of change
//! it logs, what its apply did, and the column list and INSERT helpers both stagings share.

use crate::device::DeviceColumns;
use crate::store::StoreError;
use crate::store::direct::Row;
use crate::store::runs::RunCounts;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// Rows per multi-row INSERT into a staging table: a few hundred keeps statements short while
/// amortising the per-statement cost (one INSERT per row is several times slower). 17 values a
/// row stay far below SQLite's limit of 32 766 bound values.
pub(super) const STAGE_CHUNK: usize = 250;

/// The typed columns as a SQL list: `in_service`, then [`DeviceColumns::TEXT_COLUMNS`].
pub(super) const TYPED: &str = "in_service, name, type, serial_no, asset_no, uuid, service_level, \
     customer, hardware, os_name, os_version, last_updated";

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

/// What became of a device in a pull, as stored in `device_changes.change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New to the inventory.
    Added,
    /// Stored before, with another record.
    Changed,
    /// Stored before, absent from the pull.
    Removed,
}

impl Change {
    /// The value stored in `device_changes.change`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Changed => "changed",
            Change::Removed => "removed",
        }
    }
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

impl DeleteGuard {
    /// Whether removing `removing` of `stored` devices is more than the guard lets through.
    pub(super) fn holds(&self, stored: i64, removing: i64) -> bool {
        stored > 0
            && removing as f64 > self.max_delete_fraction * stored as f64
            && !self.allow_mass_delete
    }

    /// The `error` a held run records.
    pub(super) fn reason(&self, stored: i64, removing: i64) -> String {
        format!(
            "held: would remove {removing} of {stored} devices (more than max_delete_fraction {}); \
             run `d42sync pull --allow-mass-delete` to apply",
            self.max_delete_fraction
        )
    }
}

/// Binds a record's typed columns, in [`TYPED`] order.
pub(super) fn push_typed<'args>(
    b: &mut sqlx::query_builder::Separated<'_, 'args, Sqlite, &'static str>,
    columns: &'args DeviceColumns,
) {
    b.push_bind(columns.in_service);
    for text in columns.texts() {
        b.push_bind(text);
    }
}

/// Binds a record's typed columns, in [`TYPED`] order, for a direct insert.
pub(super) fn bind_typed(row: &mut Row, columns: &DeviceColumns) {
    row.int(columns.in_service);
    for text in columns.texts() {
        row.text(text);
    }
}

/// Runs a staging INSERT that skips ids already staged; the rows it added.
pub(super) async fn insert_new(
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
