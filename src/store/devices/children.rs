//! The child tables of `devices` (`device_ips`, `device_macs`, `device_tags`,
//! `device_custom_fields` as `device_custom_field_entries` and `device_custom_field_layouts`,
//! [`super::layouts`], `device_aliases`): their rows are written with the records they come
//! from, in the same transactions, so a reader never sees a device without its children or
//! children without their device.
//!
//! A pull stages the children of each record it writes beside the record: in compare mode into
//! TEMP tables, replaced on apply for the devices whose record changed or which are gone (an
//! unchanged device's rows are not touched); in a first load into load tables, in batches of
//! several pages' rows ([`pending`]), swapped in by rename with `pull_load_devices`
//! ([`super::swap`]). The rows themselves are derived when a record is parsed
//! ([`crate::device::children`]).

use super::layouts::Layouts;
use super::rows::StageRow;
use super::swap::{Definition, create_load_table, definition, swap_in};
use crate::device::children::{CustomField, DeviceChildren, Ip, Mac, Text};
use crate::store::direct;
use crate::store::{StoreError, begin_immediate};
use pending::Pending;
use sqlx::SqliteConnection;

/// A child table: its name, its staging tables' names, and its columns after `device_id` in
/// the order rows bind them.
struct Table {
    /// The table in the main database.
    name: &'static str,
    /// Its TEMP staging table (compare mode).
    stage: &'static str,
    /// Its load table in the main database (first load).
    load: &'static str,
    /// Its columns after `device_id`.
    columns: &'static str,
    /// Its primary key.
    key: &'static str,
}

/// The primary key of a table with a row per list entry.
const PER_ENTRY: &str = "device_id, seq";

const IPS: Table = Table {
    name: "device_ips",
    stage: "pull_stage_device_ips",
    load: "pull_load_device_ips",
    columns: "seq, ip, label, subnet, mac, type",
    key: PER_ENTRY,
};
const MACS: Table = Table {
    name: "device_macs",
    stage: "pull_stage_device_macs",
    load: "pull_load_device_macs",
    columns: "seq, mac, port, port_name, vlan",
    key: PER_ENTRY,
};
const TAGS: Table = Table {
    name: "device_tags",
    stage: "pull_stage_device_tags",
    load: "pull_load_device_tags",
    columns: "seq, tag",
    key: PER_ENTRY,
};
/// The custom fields that are not unset (see [`super::layouts`]).
const CUSTOM_FIELD_ENTRIES: Table = Table {
    name: "device_custom_field_entries",
    stage: "pull_stage_device_custom_field_entries",
    load: "pull_load_device_custom_field_entries",
    columns: "seq, key, value, notes",
    key: PER_ENTRY,
};
/// Each device's list of custom-field keys (see [`super::layouts`]).
const CUSTOM_FIELD_LAYOUTS: Table = Table {
    name: "device_custom_field_layouts",
    stage: "pull_stage_device_custom_field_layouts",
    load: "pull_load_device_custom_field_layouts",
    columns: "layout_id",
    key: "device_id",
};
const ALIASES: Table = Table {
    name: "device_aliases",
    stage: "pull_stage_device_aliases",
    load: "pull_load_device_aliases",
    columns: "seq, alias",
    key: PER_ENTRY,
};

/// Every child table.
const TABLES: [&Table; 6] = [
    &IPS,
    &MACS,
    &TAGS,
    &CUSTOM_FIELD_ENTRIES,
    &CUSTOM_FIELD_LAYOUTS,
    &ALIASES,
];

/// Where a pull's child rows wait for its apply.
#[derive(Debug, Clone, Copy)]
pub(super) enum Staging {
    /// TEMP tables, copied into the child tables on a compare apply.
    Temp,
    /// Load tables of the main database, renamed over the child tables on a first load's apply.
    Load,
}

impl Staging {
    /// The staging table of `table`.
    fn of(self, table: &Table) -> String {
        match self {
            Staging::Temp => format!("temp.{}", table.stage),
            Staging::Load => format!("main.{}", table.load),
        }
    }
}

/// What a pull's child rows need from page to page: the rows not written yet (one [`Pending`]
/// per table, in [`TABLES`] order) and the lists of custom-field keys.
#[derive(Debug)]
pub(super) struct ChildStage {
    pending: [Pending; TABLES.len()],
    layouts: Layouts,
}

impl ChildStage {
    /// An empty stage, with the lists of keys stored now.
    pub(super) async fn read(conn: &mut SqliteConnection) -> Result<Self, StoreError> {
        Ok(Self {
            pending: Default::default(),
            layouts: Layouts::read(conn).await?,
        })
    }

    /// Forgets the rows not written yet, for a new attempt.
    pub(super) fn clear(&mut self) {
        self.pending.iter_mut().for_each(Pending::clear);
    }

    /// Stages the children of the `rows` that carry a record into `staging`, within the
    /// caller's transaction. Into TEMP tables they are written at once; into load tables, a
    /// table's rows wait until they fill [`Pending::FULL`] (see [`pending`]) or the apply.
    pub(super) async fn stage(
        &mut self,
        tx: &mut SqliteConnection,
        staging: Staging,
        rows: &[StageRow<'_>],
    ) -> Result<(), StoreError> {
        for row in rows {
            if let Some((_, columns)) = row.record {
                self.add(row.device_id, &columns.children);
            }
        }
        let full = match staging {
            Staging::Temp => 0,
            Staging::Load => Pending::FULL,
        };
        self.write(tx, staging, full).await
    }

    /// Writes the rows still waiting, within the apply transaction `tx` before the swap.
    pub(super) async fn write_rest(
        &mut self,
        tx: &mut SqliteConnection,
        staging: Staging,
    ) -> Result<(), StoreError> {
        self.write(tx, staging, 0).await
    }

    /// Within the apply `tx`, after the child tables are written: the lists of keys this pull
    /// met first, and those no device names any more ([`Layouts::apply`]).
    pub(super) async fn apply_layouts(&self, tx: &mut SqliteConnection) -> Result<(), StoreError> {
        self.layouts.apply(tx).await
    }

    /// Adds the rows of device `id`'s `children`.
    fn add(&mut self, id: i64, children: &DeviceChildren) {
        let [ips, macs, tags, entries, lists, aliases] = &mut self.pending;
        add_each(ips, id, children.ips(), bind_ip);
        add_each(macs, id, children.macs(), bind_mac);
        add_each(tags, id, children.tags(), bind_text);
        let set = children.custom_fields().filter(|f| !f.is_unset());
        add_each(entries, id, set, bind_field);
        if let Some(layout) = self.layouts.id_of(children) {
            lists.int(Some(id)).int(Some(layout));
        }
        add_each(aliases, id, children.aliases(), bind_text);
    }

    /// Writes the rows of each table holding at least `full` (all of them for 0) into its
    /// `staging` table. A device staged twice (a pass repaired or repeated) keeps its first
    /// rows, as `pull_stage` and `pull_load_devices` keep its first record.
    async fn write(
        &mut self,
        tx: &mut SqliteConnection,
        staging: Staging,
        full: usize,
    ) -> Result<(), StoreError> {
        for (table, pending) in TABLES.iter().zip(&mut self.pending) {
            if pending.is_empty() || pending.size() < full {
                continue;
            }
            let columns = format!("device_id, {}", table.columns);
            let sql = direct::insert_sql(&staging.of(table), &columns, "ON CONFLICT DO NOTHING");
            let width = columns.split(',').count();
            pending.write(tx, &sql, width).await?;
        }
        Ok(())
    }
}

/// Adds a row for each of `rows` to `pending`: device `id`, then the values `bind` gives.
fn add_each<R>(
    pending: &mut Pending,
    id: i64,
    rows: impl Iterator<Item = R>,
    bind: fn(&R, &mut Pending),
) {
    for row in rows {
        pending.int(Some(id));
        bind(&row, pending);
    }
}

fn bind_ip(r: &Ip<'_>, row: &mut Pending) {
    row.int(Some(r.seq))
        .text(r.ip)
        .text(r.label)
        .text(r.subnet)
        .text(r.mac)
        .int(r.kind);
}

fn bind_mac(r: &Mac<'_>, row: &mut Pending) {
    row.int(Some(r.seq))
        .text(r.mac)
        .text(r.port)
        .text(r.port_name)
        .text(r.vlan);
}

fn bind_field(r: &CustomField<'_>, row: &mut Pending) {
    row.int(Some(r.seq))
        .text(Some(r.key))
        .text(r.value)
        .text(r.notes);
}

fn bind_text(r: &Text<'_>, row: &mut Pending) {
    row.int(Some(r.seq)).text(Some(r.text));
}

/// Creates (or empties) the TEMP staging tables of a compare-mode pull.
pub(super) async fn clear_stage(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    for table in TABLES {
        let stage = Staging::Temp.of(table);
        let create = format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (device_id INTEGER NOT NULL, {}, \
             PRIMARY KEY ({})) WITHOUT ROWID",
            table.stage, table.columns, table.key
        );
        sqlx::query(&create).execute(&mut *conn).await?;
        sqlx::query(&format!("DELETE FROM {stage}"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(CREATE_STALE).execute(&mut *conn).await?;
    Ok(())
}

/// The devices whose children a compare apply replaces: those with a staged record (changed or
/// new) and those the pull lacks (removed).
const CREATE_STALE: &str =
    "CREATE TEMP TABLE IF NOT EXISTS pull_stage_stale (device_id INTEGER PRIMARY KEY)";

/// Drops the TEMP staging tables and gives back their disk space.
pub(super) async fn drop_stage(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    for table in TABLES {
        let stage = Staging::Temp.of(table);
        sqlx::query(&format!("DROP TABLE IF EXISTS {stage}"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DROP TABLE IF EXISTS temp.pull_stage_stale")
        .execute(conn)
        .await?;
    Ok(())
}

/// Within a compare apply `tx`, before `devices` is written: deletes the children of devices
/// changed or removed (`removals`: whether any device is removed) and inserts the staged ones.
/// Devices whose record is unchanged keep theirs untouched.
pub(super) async fn apply_staged(
    tx: &mut SqliteConnection,
    removals: bool,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM temp.pull_stage_stale")
        .execute(&mut *tx)
        .await?;
    let removed = if removals {
        " UNION SELECT d.device_id FROM devices d \
         WHERE NOT EXISTS (SELECT 1 FROM temp.pull_stage s WHERE s.device_id = d.device_id)"
    } else {
        ""
    };
    sqlx::query(&format!(
        "INSERT INTO temp.pull_stage_stale (device_id) \
         SELECT device_id FROM temp.pull_stage WHERE raw IS NOT NULL{removed}"
    ))
    .execute(&mut *tx)
    .await?;
    for table in TABLES {
        let (name, columns) = (table.name, table.columns);
        sqlx::query(&format!(
            "DELETE FROM main.{name} WHERE device_id IN (SELECT device_id FROM temp.pull_stage_stale)"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO main.{name} (device_id, {columns}) \
             SELECT device_id, {columns} FROM {}",
            Staging::Temp.of(table)
        ))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A first load's child tables: each one's definition under its load table's name.
pub(super) struct LoadTables {
    /// In [`TABLES`] order.
    definitions: Vec<Definition>,
}

impl LoadTables {
    /// The load tables, when every child table can be replaced by a rename: no trigger hangs on
    /// one (a drop would lose it) and each definition reads as expected.
    pub(super) async fn prepare(conn: &mut SqliteConnection) -> Result<Option<Self>, StoreError> {
        let names = TABLES.map(|t| t.name);
        if in_schema(conn, "type = 'trigger' AND tbl_name", &names).await? > 0 {
            return Ok(None);
        }
        let mut definitions = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            // Nothing moves to the load tables: their indexes are built after the swap, by a
            // sort, which beats keeping them up to date row by row.
            match definition(conn, pair(table), &[]).await? {
                Some(d) => definitions.push(d),
                None => return Ok(None),
            }
        }
        Ok(Some(Self { definitions }))
    }

    /// Creates the empty load tables within `tx` (after [`drop_load_tables`]).
    pub(super) async fn create(&self, tx: &mut SqliteConnection) -> Result<(), StoreError> {
        for (table, definition) in TABLES.iter().zip(&self.definitions) {
            create_load_table(tx, pair(table), definition).await?;
        }
        Ok(())
    }

    /// Replaces the child tables by the load tables within the apply transaction `tx`, and
    /// builds their indexes.
    pub(super) async fn swap_in(&self, tx: &mut SqliteConnection) -> Result<(), StoreError> {
        for (table, definition) in TABLES.iter().zip(&self.definitions) {
            swap_in(tx, pair(table), &definition.rebuilt).await?;
        }
        Ok(())
    }
}

/// `(table, load table)`, as [`super::swap`] names them.
fn pair(table: &Table) -> (&'static str, &'static str) {
    (table.name, table.load)
}

/// Drops the load tables a first load may have left behind (a crash, or a failed attempt).
/// Nothing of the child tables moved to them, so nothing has to go back.
pub(super) async fn drop_load_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    // Every pull starts here: without a table to drop, it takes no write lock.
    if in_schema(conn, "type = 'table' AND name", &TABLES.map(|t| t.load)).await? == 0 {
        return Ok(());
    }
    let mut tx = begin_immediate(conn).await?;
    for table in TABLES {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", Staging::Load.of(table)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How many entries of the main schema match `filter` (a condition ending in a column) with
/// that column among `names`.
async fn in_schema(
    conn: &mut SqliteConnection,
    filter: &str,
    names: &[&str],
) -> Result<i64, StoreError> {
    let names = serde_json::to_string(names).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let (count,): (i64,) = sqlx::query_as(&format!(
        "SELECT count(*) FROM main.sqlite_schema WHERE {filter} IN (SELECT value FROM json_each(?))"
    ))
    .bind(names)
    .fetch_one(conn)
    .await?;
    Ok(count)
}

mod pending;
#[cfg(test)]
pub(super) mod tests;
