//! Store-level tests of the pull path: load, compare, guard, swap and checkpointer, each on a
//! fresh database file of its own.

use super::checkpoint::Checkpointer;
use super::{ApplyOutcome, DeleteGuard, PullStage, StageRow};
use crate::device::DeviceColumns;
use crate::store::pages::SeenPage;
use crate::store::runs::{self, Job};
use crate::store::{Db, StoreError};
use tempfile::TempDir;

/// A device as a test pulls it: its id and a version of its record.
pub(super) type Device = (i64, u32);

/// Lets every pull through.
pub(super) const NO_GUARD: DeleteGuard = DeleteGuard {
    max_delete_fraction: 1.0,
    allow_mass_delete: false,
};

/// A fresh, migrated database in a directory of its own (dropped with the directory).
pub(super) async fn open() -> (TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("d42sync.db")).await.unwrap();
    (dir, db)
}

/// The record a device sends at `version`.
fn raw((id, version): Device) -> String {
    format!(r#"{{"device_id":{id},"name":"dev-{id}","version":{version}}}"#)
}

/// Stages `pages` as one pull into a stage opened for a new run; the run id and the stage.
pub(super) async fn staged(db: &Db, pages: &[&[Device]]) -> (i64, PullStage) {
    let run_id = runs::start(db, Job::PullDevices).await.unwrap();
    let mut stage = PullStage::new(db, run_id).await.unwrap();
    stage_pages(&mut stage, run_id, pages).await;
    (run_id, stage)
}

/// Stages `pages` into `stage`, opened for run `run_id`, as one attempt of a pull.
pub(super) async fn stage_pages(stage: &mut PullStage, run_id: i64, pages: &[&[Device]]) {
    for (k, page) in pages.iter().enumerate() {
        let records: Vec<(Device, String, DeviceColumns)> = page
            .iter()
            .map(|&device| {
                let columns = DeviceColumns {
                    name: Some(format!("dev-{}", device.0)),
                    children: super::children::tests::children_of(device),
                    ..Default::default()
                };
                (device, raw(device), columns)
            })
            .collect();
        let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
        let (lo, hi) = (ids.iter().min().unwrap(), ids.iter().max().unwrap());
        let stored = stage.stored_hashes(*lo, *hi).await.unwrap();
        let rows: Vec<StageRow<'_>> = records
            .iter()
            .map(|((id, version), raw, columns)| {
                let hash = i64::from(*version);
                StageRow {
                    device_id: *id,
                    raw_hash: hash,
                    record: (stored.get(id) != Some(&hash)).then_some((raw.as_str(), columns)),
                }
            })
            .collect();
        let seen = SeenPage {
            key: (k as u64 * 100, 100),
            hash: (u128::from(run_id as u64) << 64) + k as u128,
            total_count: None,
            limit: None,
            ids: Some(&ids),
        };
        stage.stage(seen, &rows).await.unwrap();
    }
    assert!(stage.finish().await.unwrap(), "no id repeated");
}

/// Pulls `pages` and applies them under `guard`; the run id and what the apply did.
pub(super) async fn pull(db: &Db, pages: &[&[Device]], guard: DeleteGuard) -> (i64, ApplyOutcome) {
    let (run_id, stage) = staged(db, pages).await;
    let items = pages.iter().map(|p| p.len() as i64).sum();
    (run_id, stage.apply(items, guard).await.unwrap())
}

/// The stored devices: id and record.
async fn devices(db: &Db) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT device_id, raw FROM devices ORDER BY device_id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// The change rows of run `run_id`: device, change and record.
async fn changes(db: &Db, run_id: i64) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT device_id, change, raw FROM device_changes WHERE run_id = ? ORDER BY device_id",
    )
    .bind(run_id)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// The change rows of run `run_id`: device and change.
async fn kinds(db: &Db, run_id: i64) -> Vec<(i64, String)> {
    let rows = changes(db, run_id).await;
    rows.into_iter()
        .map(|(id, change, _)| (id, change))
        .collect()
}

/// Run `run_id`'s status and counts (items, added, changed, removed).
async fn run_row(db: &Db, run_id: i64) -> (String, [i64; 4]) {
    let (status, items, added, changed, removed): (String, i64, i64, i64, i64) =
        sqlx::query_as("SELECT status, items, added, changed, removed FROM sync_runs WHERE id = ?")
            .bind(run_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    (status, [items, added, changed, removed])
}

/// The schema around the inventory: columns of `devices` and `device_changes`, then every
/// index (name, table, columns), view and trigger, and any table a pull works in.
async fn schema(db: &Db) -> Vec<String> {
    let mut schema: Vec<String> = Vec::new();
    for table in ["devices", "device_changes"] {
        schema.push(
            sqlx::query_scalar(
                "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' || pk, ', ') \
                 FROM pragma_table_info(?)",
            )
            .bind(table)
            .fetch_one(&db.pool)
            .await
            .unwrap(),
        );
    }
    let objects: Vec<String> = sqlx::query_scalar(
        "SELECT m.type || ' ' || m.name || ' ON ' || m.tbl_name || ' (' || \
         coalesce((SELECT group_concat(i.name, ', ') FROM pragma_index_info(m.name) i), m.sql) || ')' \
         FROM sqlite_schema m WHERE m.type IN ('index', 'view', 'trigger') AND m.sql IS NOT NULL \
         OR m.name LIKE 'pull_load%' OR m.name = 'pull_swap' ORDER BY m.type, m.name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    schema.extend(objects);
    schema
}

/// Rows in `table`.
async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Runs `sql` on the pool.
pub(super) async fn exec(db: &Db, sql: &str) {
    sqlx::raw_sql(sql).execute(&db.pool).await.unwrap();
}

#[tokio::test]
async fn a_first_pull_loads_every_page_and_logs_each_device_as_added() {
    let (_dir, db) = open().await;

    let (run_id, outcome) = pull(&db, &[&[(1, 1), (2, 1)], &[(3, 1)]], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.items == 3 && c.added == 3));
    let want: Vec<(i64, String)> = [(1, 1), (2, 1), (3, 1)].map(|d| (d.0, raw(d))).into();
    assert_eq!(devices(&db).await, want);
    assert_eq!(
        kinds(&db, run_id).await,
        [1, 2, 3].map(|id| (id, "added".to_string()))
    );
    assert_eq!(run_row(&db, run_id).await, ("ok".into(), [3, 3, 0, 0]));
}

#[tokio::test]
async fn a_second_pull_logs_added_changed_and_removed_devices_and_counts_them() {
    let (_dir, db) = open().await;
    pull(
        &db,
        &[&[(1, 1), (2, 1), (3, 1)], &[(4, 1), (5, 1)]],
        NO_GUARD,
    )
    .await;

    // 1 and 3 unchanged, 2 edited, 4 and 5 gone, 6 new.
    let (run_id, outcome) = pull(&db, &[&[(1, 1), (2, 2), (3, 1)], &[(6, 1)]], NO_GUARD).await;

    let counts = match outcome {
        ApplyOutcome::Applied(counts) => counts,
        held => panic!("{held:?}"),
    };
    assert_eq!(
        [counts.items, counts.added, counts.changed, counts.removed],
        [4, 1, 1, 2]
    );
    let want: Vec<(i64, String)> = [(1, 1), (2, 2), (3, 1), (6, 1)]
        .map(|d| (d.0, raw(d)))
        .into();
    assert_eq!(devices(&db).await, want);
    assert_eq!(
        changes(&db, run_id).await,
        [
            (2, "changed".to_string(), raw((2, 2))),
            (4, "removed".to_string(), raw((4, 1))),
            (5, "removed".to_string(), raw((5, 1))),
            (6, "added".to_string(), raw((6, 1))),
        ]
    );
    assert_eq!(run_row(&db, run_id).await, ("ok".into(), [4, 1, 1, 2]));
}

#[tokio::test]
async fn the_deletion_guard_holds_a_pull_that_removes_too_much_and_changes_nothing() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1), (3, 1), (4, 1)]], NO_GUARD).await;
    let before = devices(&db).await;
    let guard = DeleteGuard {
        max_delete_fraction: 0.5,
        allow_mass_delete: false,
    };

    let (run_id, outcome) = pull(&db, &[&[(1, 2)]], guard).await;

    assert_eq!(
        outcome,
        ApplyOutcome::Held {
            stored: 4,
            incoming: 1,
            removing: 3
        }
    );
    assert_eq!(devices(&db).await, before);
    assert!(changes(&db, run_id).await.is_empty());
    assert_eq!(run_row(&db, run_id).await, ("held".into(), [1, 0, 0, 3]));

    let overridden = DeleteGuard {
        allow_mass_delete: true,
        ..guard
    };
    let (_, outcome) = pull(&db, &[&[(1, 2)]], overridden).await;
    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.removed == 3 && c.changed == 1));
}

#[tokio::test]
async fn a_first_pull_swaps_in_tables_with_every_index_view_and_column_as_before() {
    let (_dir, db) = open().await;
    exec(
        &db,
        "CREATE VIEW report AS SELECT name, serial_no FROM devices; \
         CREATE INDEX report_by_serial ON devices (serial_no);",
    )
    .await;
    let before = schema(&db).await;

    let (_, outcome) = pull(&db, &[&[(1, 1), (2, 1)], &[(3, 1)]], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.added == 3));
    assert_eq!(schema(&db).await, before);
    assert_eq!(count(&db, "report").await, 3);
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_first_load_into_emptied_devices_keeps_the_change_log_and_adds_to_it() {
    let (_dir, db) = open().await;
    let (first, _) = pull(&db, &[&[(1, 1), (2, 1)]], NO_GUARD).await;
    exec(&db, "DELETE FROM devices").await;

    let (second, outcome) = pull(&db, &[&[(1, 2), (2, 2), (3, 1)]], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.added == 3));
    assert_eq!(changes(&db, first).await.len(), 2, "the history is kept");
    assert_eq!(
        kinds(&db, second).await,
        [1, 2, 3].map(|id| (id, "added".to_string()))
    );
    assert_eq!(devices(&db).await.len(), 3);
}

#[tokio::test]
async fn a_trigger_on_devices_keeps_a_first_pull_out_of_the_swap_and_fires_for_each_device() {
    let (_dir, db) = open().await;
    exec(
        &db,
        "CREATE TABLE audit (n INTEGER); \
         CREATE TRIGGER devices_audit AFTER INSERT ON devices BEGIN INSERT INTO audit VALUES (1); END",
    )
    .await;
    let before = schema(&db).await;

    pull(&db, &[&[(1, 1), (2, 1)]], NO_GUARD).await;

    assert_eq!(schema(&db).await, before);
    assert_eq!(
        count(&db, "audit").await,
        2,
        "the trigger fired for each device"
    );
}

#[tokio::test]
async fn a_discarded_load_leaves_the_empty_tables_and_their_indexes_as_they_were() {
    let (_dir, db) = open().await;
    let before = schema(&db).await;
    let (_, stage) = staged(&db, &[&[(1, 1), (2, 1)]]).await;

    stage.discard().await;

    assert_eq!(schema(&db).await, before);
    assert!(devices(&db).await.is_empty());
}

#[tokio::test]
async fn a_discarded_compare_leaves_the_inventory_untouched() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1)]], NO_GUARD).await;
    let before = devices(&db).await;
    let (run_id, stage) = staged(&db, &[&[(1, 2), (3, 1)]]).await;

    stage.discard().await;

    assert_eq!(devices(&db).await, before);
    assert!(changes(&db, run_id).await.is_empty());
}

#[tokio::test]
async fn a_load_whose_devices_were_written_meanwhile_is_refused_and_leaves_them() {
    let (_dir, db) = open().await;
    let before = schema(&db).await;
    let (_, stage) = staged(&db, &[&[(1, 1), (2, 1)]]).await;
    exec(
        &db,
        "INSERT INTO devices (device_id, raw, raw_hash, first_seen, last_changed) \
         VALUES (9, '{}', 0, 'then', 'then')",
    )
    .await;

    let refused = stage.apply(2, NO_GUARD).await;

    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(devices(&db).await, [(9, "{}".to_string())]);
    assert_eq!(schema(&db).await, before);
}

#[tokio::test]
async fn a_load_left_behind_by_a_crash_is_dropped_and_its_indexes_given_back() {
    let (_dir, db) = open().await;
    let before = schema(&db).await;
    // Dropped without a discard, as a killed process leaves it: the load tables stay.
    let (_, stage) = staged(&db, &[&[(1, 1)]]).await;
    drop(stage);
    assert_ne!(schema(&db).await, before, "the load tables are left");

    let (_, outcome) = pull(&db, &[&[(1, 1), (2, 1)]], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.added == 2));
    assert_eq!(schema(&db).await, before);
}

#[tokio::test]
async fn the_checkpointer_copies_committed_pages_into_the_database_file_every_second_commit() {
    let (dir, db) = open().await;
    let file = dir.path().join("d42sync.db");
    let mut writer = db.pool.acquire().await.unwrap();
    // As during a load: the writer leaves checkpoints to the checkpointer.
    exec(&db, "CREATE TABLE filler (b BLOB)").await;
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&mut *writer)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *writer)
        .await
        .unwrap();
    let size_before = std::fs::metadata(&file).unwrap().len();
    let mut checkpointer = Checkpointer::start(&db.pool).await.unwrap();
    sqlx::query("INSERT INTO filler VALUES (zeroblob(4 * 1024 * 1024))")
        .execute(&mut *writer)
        .await
        .unwrap();

    // An odd commit asks for no checkpoint: nothing reaches the file.
    checkpointer.after_commit(7).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size_before);

    // The eighth commit waits for a checkpoint that started after it.
    checkpointer.after_commit(8).await;

    let size_after = std::fs::metadata(&file).unwrap().len();
    assert!(
        size_after >= size_before + 4 * 1024 * 1024,
        "{size_before} -> {size_after}"
    );
    checkpointer.stop().await;
}

/// Device `device_id`'s rows as reports read them (`device_changes`): change and record.
async fn history(db: &Db, device_id: i64) -> Vec<(String, String)> {
    sqlx::query_as("SELECT change, raw FROM device_changes WHERE device_id = ? ORDER BY at, id")
        .bind(device_id)
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// Copies of records the change log holds (rows with their own `raw`).
async fn copies(db: &Db) -> i64 {
    count(db, "device_change_log WHERE raw IS NOT NULL").await
}

/// Every row of the change log table as stored, and every device as stored.
async fn log_and_devices(db: &Db) -> (Vec<String>, Vec<(i64, String)>) {
    let log = sqlx::query_scalar(
        "SELECT concat_ws('|', id, run_id, device_id, change, at, raw) \
         FROM device_change_log ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    (log, devices(db).await)
}

#[tokio::test]
async fn a_device_added_changed_twice_and_removed_reads_back_each_record_from_the_copies_needed() {
    let (_dir, db) = open().await;
    let mut held = Vec::new();

    for version in 1..=3 {
        pull(&db, &[&[(1, version), (2, 1)]], NO_GUARD).await;
        held.push(copies(&db).await);
    }
    pull(&db, &[&[(2, 1)]], NO_GUARD).await;
    held.push(copies(&db).await);

    let record = |version| raw((1, version));
    assert_eq!(
        history(&db, 1).await,
        [
            ("added".to_string(), record(1)),
            ("changed".to_string(), record(2)),
            ("changed".to_string(), record(3)),
            ("removed".to_string(), record(3)),
        ]
    );
    assert_eq!(history(&db, 2).await, [("added".to_string(), raw((2, 1)))]);
    // A copy only of the records replaced, and the removed row's last known record.
    assert_eq!(held, [0, 1, 2, 4]);
}

#[tokio::test]
async fn a_first_load_stores_each_record_once() {
    let (_dir, db) = open().await;

    let (run_id, _) = pull(&db, &[&[(1, 1), (2, 1)], &[(3, 1)]], NO_GUARD).await;

    let logged: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(length(raw)), 0) + count(raw) FROM device_change_log",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(logged, 0, "no change row holds a copy");
    let want: Vec<(i64, String, String)> = [(1, 1), (2, 1), (3, 1)]
        .map(|d| (d.0, "added".to_string(), raw(d)))
        .into();
    assert_eq!(changes(&db, run_id).await, want);
}

#[tokio::test]
async fn a_held_or_failed_pull_changes_no_row_of_the_log_or_the_inventory() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1), (3, 1)]], NO_GUARD).await;
    pull(&db, &[&[(1, 2), (2, 1), (3, 1)]], NO_GUARD).await;
    let before = log_and_devices(&db).await;
    let guard = DeleteGuard {
        max_delete_fraction: 0.5,
        allow_mass_delete: false,
    };

    let (_, held) = pull(&db, &[&[(1, 3)]], guard).await;
    let after_held = log_and_devices(&db).await;
    // A report's trigger refuses new devices: the apply fails after devices 1 and 3 were
    // replaced (and their records copied into the log), so all of it is rolled back.
    exec(
        &db,
        "CREATE TRIGGER refuse BEFORE INSERT ON device_change_log WHEN NEW.change = 'added' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .await;
    let (_, stage) = staged(&db, &[&[(1, 3), (2, 1), (3, 2), (4, 1)]]).await;
    let failed = stage.apply(4, NO_GUARD).await;

    assert!(matches!(held, ApplyOutcome::Held { .. }), "{held:?}");
    assert_eq!(after_held, before);
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(log_and_devices(&db).await, before);
}

#[tokio::test]
async fn records_replaced_or_deleted_by_hand_stay_in_the_history() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1)]], NO_GUARD).await;
    pull(&db, &[&[(1, 2), (2, 1)]], NO_GUARD).await;

    exec(
        &db,
        "UPDATE devices SET raw = '{}' WHERE device_id = 2; DELETE FROM devices WHERE device_id = 1",
    )
    .await;

    assert_eq!(
        history(&db, 1).await,
        [
            ("added".to_string(), raw((1, 1))),
            ("changed".to_string(), raw((1, 2))),
        ]
    );
    assert_eq!(history(&db, 2).await, [("added".to_string(), raw((2, 1)))]);
}

#[tokio::test]
async fn a_trigger_on_the_change_log_fires_for_each_row_of_a_first_load_that_swaps_devices_in() {
    let (_dir, db) = open().await;
    exec(
        &db,
        "CREATE TABLE audit (device_id INTEGER, change TEXT); \
         CREATE TRIGGER log_audit AFTER INSERT ON device_change_log \
         BEGIN INSERT INTO audit VALUES (NEW.device_id, NEW.change); END",
    )
    .await;
    let before = schema(&db).await;
    let (_, stage) = staged(&db, &[&[(1, 1), (2, 1)]]).await;
    let loading = schema(&db).await;

    let outcome = stage.apply(2, NO_GUARD).await.unwrap();

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.added == 2));
    assert_ne!(loading, before, "the pull loaded into a table of its own");
    assert_eq!(schema(&db).await, before);
    let audit: Vec<(i64, String)> =
        sqlx::query_as("SELECT device_id, change FROM audit ORDER BY device_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(audit, [1, 2].map(|id| (id, "added".to_string())));
}

/// Devices `ids` at version 1, in pages of 1 000.
fn pages_of(ids: std::ops::RangeInclusive<i64>) -> Vec<Vec<Device>> {
    let devices: Vec<Device> = ids.map(|id| (id, 1)).collect();
    devices.chunks(1_000).map(<[Device]>::to_vec).collect()
}

/// The change log's rows (id, device, change), in id order.
async fn log_rows(db: &Db) -> Vec<(i64, i64, String)> {
    sqlx::query_as("SELECT id, device_id, change FROM device_change_log ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_first_load_logs_each_device_once_whether_its_pages_or_its_apply_write_the_log() {
    for with_pages in [false, true] {
        let (_dir, db) = open().await;
        let before = schema(&db).await;
        let run_id = runs::start(&db, Job::PullDevices).await.unwrap();
        let mut stage = PullStage::new(&db, run_id).await.unwrap();
        stage.log_with_pages(with_pages);
        let pages = pages_of(1..=9_000);
        let pages: Vec<&[Device]> = pages.iter().map(Vec::as_slice).collect();
        stage_pages(&mut stage, run_id, &pages).await;
        // The ninth page brings the 8 192nd device: the pages wrote a batch, if they log.
        let loaded = count(&db, "pull_load_device_change_log").await;
        assert_eq!(loaded, if with_pages { 9_000 } else { 0 });
        assert_eq!(count(&db, "device_changes").await, 0, "nothing applied yet");

        stage.apply(9_000, NO_GUARD).await.unwrap();

        let expected: Vec<(i64, i64, String)> = (1..=9_000)
            .map(|id| (id, id, "added".to_string()))
            .collect();
        assert_eq!(log_rows(&db).await, expected, "with pages: {with_pages}");
        assert_eq!(schema(&db).await, before, "with pages: {with_pages}");
    }
}

#[tokio::test]
async fn a_load_staged_out_of_id_order_still_logs_each_device_once() {
    let (_dir, db) = open().await;
    let run_id = runs::start(&db, Job::PullDevices).await.unwrap();
    let mut stage = PullStage::new(&db, run_id).await.unwrap();
    stage.log_with_pages(true);
    // 8 192 devices, logged with the ninth page, then ten with lower ids.
    let mut pages = pages_of(20_001..=28_192);
    pages.push((1..=10).map(|id| (id, 1)).collect());
    let pages: Vec<&[Device]> = pages.iter().map(Vec::as_slice).collect();
    stage_pages(&mut stage, run_id, &pages).await;
    assert_eq!(count(&db, "pull_load_device_change_log").await, 8_192);

    stage.apply(8_202, NO_GUARD).await.unwrap();

    let expected: Vec<(i64, i64, String)> = (1..=10)
        .chain(20_001..=28_192)
        .zip(1..)
        .map(|(id, row)| (row, id, "added".to_string()))
        .collect();
    assert_eq!(log_rows(&db).await, expected);
}

#[tokio::test]
async fn a_load_whose_change_log_was_written_meanwhile_is_refused_and_gives_its_indexes_back() {
    let (_dir, db) = open().await;
    let before = schema(&db).await;
    let (run_id, stage) = staged(&db, &[&[(1, 1), (2, 1)]]).await;
    exec(
        &db,
        &format!(
            "INSERT INTO device_change_log (run_id, device_id, change, at) \
             VALUES ({run_id}, 7, 'added', 'then')"
        ),
    )
    .await;

    let refused = stage.apply(2, NO_GUARD).await;

    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(log_rows(&db).await, [(1, 7, "added".to_string())]);
    assert!(devices(&db).await.is_empty());
    assert_eq!(schema(&db).await, before);
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_repair_page_is_staged_but_not_kept_as_a_page_for_the_next_pull() {
    let (_dir, db) = open().await;
    let (_, mut stage) = staged(&db, &[&[(1, 1), (2, 1)]]).await;
    let record = raw((3, 1));
    let columns = DeviceColumns::default();
    let rows = [StageRow {
        device_id: 3,
        raw_hash: 1,
        record: Some((record.as_str(), &columns)),
    }];

    let inserted = stage.stage_repair(&rows).await.unwrap();
    stage.apply(3, NO_GUARD).await.unwrap();

    assert_eq!(inserted, 1);
    let ids: Vec<i64> = devices(&db).await.iter().map(|d| d.0).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(count(&db, "pull_pages").await, 1, "only the planned page");
}
