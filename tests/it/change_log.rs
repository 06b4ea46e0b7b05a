//! The change log stores each record once: the migration that makes `device_changes` a view over
//! `device_change_log` converts a database filled under the previous schema without losing a row,
//! and pulls go on logging into it.

use crate::helpers::{TestEnv, logged_numbers, output, text};
use d42sim::SimConfig;
use d42sync::store::Db;
use sqlx::migrate::Migrator;
use std::path::Path;
use std::time::Duration;

/// The version of the migration under test; those before it build the previous schema.
const CHANGE_LOG: &str = "20261203010000";

/// Opens `path` migrated up to, not including, the change log migration.
async fn open_previous(path: &Path) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(all).unwrap() {
        let file = entry.unwrap().path();
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < CHANGE_LOG {
            std::fs::copy(&file, dir.path().join(name)).unwrap();
        }
    }
    let db = Db::open_unmigrated(path).await.unwrap();
    Migrator::new(dir.path())
        .await
        .unwrap()
        .run(&db.pool)
        .await
        .unwrap();
    db
}

/// Every change row as reports read it, in id order.
async fn change_rows(db: &Db) -> Vec<(i64, i64, i64, String, String, String)> {
    sqlx::query_as("SELECT id, run_id, device_id, change, at, raw FROM device_changes ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// The ids of the change log's rows that hold no copy of their record.
async fn rows_without_copy(db: &Db) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM device_change_log WHERE raw IS NULL ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_migration_keeps_every_change_row_and_a_copy_only_of_records_no_longer_current() {
    // Change rows are kept long enough for the history below to outlive the pull.
    let env = TestEnv::start(SimConfig::default(), "[devices]\nkeep_changes = \"3650d\"").await;
    let ids = env.sim.device_ids();
    let gone = ids.iter().max().unwrap() + 1_000;
    let db = open_previous(&env.db_path()).await;
    // Histories, as the previous schema logged them (ids 1-3 are runs 1-3 of the pulls):
    // [0] changed twice; [1] changed and back; [2] edited by hand since; [3] removed and added
    // again; [4] no history left (pruned); `gone` removed.
    let (a, b, c, d, e) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let history = format!(
        "INSERT INTO sync_runs (id, job, started_at, status) VALUES \
           (1, 'pull_devices', '2026-01-01', 'ok'), (2, 'pull_devices', '2026-01-02', 'ok'), \
           (3, 'pull_devices', '2026-01-03', 'ok'); \
         INSERT INTO devices (device_id, raw, raw_hash, first_seen, last_changed) VALUES \
           ({a}, '{{\"v\":3}}', 3, '2026-01-01', '2026-01-03'), ({b}, '{{\"v\":1}}', 1, '2026-01-01', '2026-01-03'), \
           ({c}, '{{\"v\":\"hand\"}}', 9, '2026-01-01', '2026-01-01'), ({d}, '{{\"v\":1}}', 1, '2026-01-03', '2026-01-03'), \
           ({e}, '{{\"v\":1}}', 1, '2026-01-01', '2026-01-01'); \
         INSERT INTO device_changes (id, run_id, device_id, change, at, raw) VALUES \
           (1, 1, {a}, 'added', '2026-01-01', '{{\"v\":1}}'), (2, 1, {b}, 'added', '2026-01-01', '{{\"v\":1}}'), \
           (3, 1, {c}, 'added', '2026-01-01', '{{\"v\":1}}'), (4, 1, {d}, 'added', '2026-01-01', '{{\"v\":1}}'), \
           (5, 1, {gone}, 'added', '2026-01-01', '{{\"v\":1}}'), \
           (6, 2, {a}, 'changed', '2026-01-02', '{{\"v\":2}}'), (7, 2, {b}, 'changed', '2026-01-02', '{{\"v\":2}}'), \
           (8, 2, {d}, 'removed', '2026-01-02', '{{\"v\":1}}'), (9, 2, {gone}, 'removed', '2026-01-02', '{{\"v\":1}}'), \
           (10, 3, {a}, 'changed', '2026-01-03', '{{\"v\":3}}'), (11, 3, {b}, 'changed', '2026-01-03', '{{\"v\":1}}'), \
           (12, 3, {d}, 'added', '2026-01-03', '{{\"v\":1}}');"
    );
    sqlx::raw_sql(&history).execute(&db.pool).await.unwrap();
    let before = change_rows(&db).await;

    db.migrate().await.unwrap();

    assert_eq!(
        change_rows(&db).await,
        before,
        "every row reads back as it was"
    );
    assert_eq!(
        rows_without_copy(&db).await,
        [10, 11, 12],
        "only the latest row of a device whose record is current reads it from devices"
    );
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT raw FROM device_changes WHERE device_id = 1 ORDER BY at",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|r| r.3.contains("device_changes_by_device")),
        "{plan:?}"
    );
    db.close().await;

    // The next pull replaces the five records (the simulator's differ): the converted rows
    // that read them from devices get their copies first.
    let out = env.run(&["pull"]).await;
    assert!(out.status.success(), "{out:?}");
    let db = env.db().await;
    assert_eq!(change_rows(&db).await[..before.len()], before[..]);
    db.close().await;
}

#[tokio::test]
async fn the_migration_drops_a_first_load_an_older_version_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d42sync.db");
    let db = open_previous(&path).await;
    // What the previous version's first load left when killed: a load table holding the
    // change log's indexes, under their names.
    sqlx::raw_sql(
        "CREATE TABLE pull_load_changes (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, \
           device_id INTEGER NOT NULL, change TEXT NOT NULL, at TEXT NOT NULL, raw TEXT NOT NULL); \
         DROP INDEX device_changes_by_at; DROP INDEX device_changes_by_device; \
         DROP INDEX device_changes_by_run; \
         CREATE INDEX device_changes_by_at ON pull_load_changes (at); \
         CREATE INDEX device_changes_by_device ON pull_load_changes (device_id, at); \
         CREATE INDEX device_changes_by_run ON pull_load_changes (run_id);",
    )
    .execute(&db.pool)
    .await
    .unwrap();

    db.migrate().await.unwrap();

    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, tbl_name FROM sqlite_schema \
         WHERE name LIKE 'device_change%' OR name LIKE 'pull_load%' ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let log = "device_change_log".to_string();
    assert_eq!(
        objects,
        [
            (log.clone(), log.clone()),
            ("device_change_log_current".into(), log.clone()),
            ("device_changes".into(), "device_changes".into()),
            ("device_changes_by_at".into(), log.clone()),
            ("device_changes_by_device".into(), log.clone()),
            ("device_changes_by_run".into(), log),
        ]
    );
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
    db.close().await;
}

/// A first load of 10 000 devices in pages of 1 000 (8 in flight), each page answered `delay`
/// after it is asked for, `failpoint` set: the batches of `added` rows the pages wrote (from the
/// DEBUG lines), once the pull has checked that each device is logged once, in id order.
async fn first_load_log_batches(delay: Duration, failpoint: &str) -> Vec<u64> {
    let env = TestEnv::start(
        SimConfig {
            devices: 10_000,
            ..SimConfig::default()
        },
        "[devices]\npage_size = 1000\nconcurrency = 8",
    )
    .await;
    env.sim.set_page_delay(delay);

    let out = output({
        let mut cmd = env.command(&["pull"]);
        cmd.env("D42SYNC_LOG__LEVEL", "info,d42sync=debug")
            .env("D42SYNC_FAILPOINT", failpoint);
        cmd
    })
    .await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let db = env.db().await;
    let log: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, device_id, change FROM device_change_log ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let mut ids = env.sim.device_ids();
    ids.sort_unstable();
    let expected: Vec<(i64, i64, String)> = (1..)
        .zip(ids)
        .map(|(row, id)| (row, id, "added".to_string()))
        .collect();
    assert_eq!(log, expected, "each device logged once, in id order");
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
    db.close().await;
    logged_numbers(
        &stderr,
        "DEBUG",
        "change log written with the pages",
        "devices",
    )
}

#[tokio::test]
async fn a_first_load_logs_its_devices_as_the_pages_come_in_while_it_waits_for_the_link() {
    // A page's fetch (600 ms) outlasts the lookahead's ten stages: the stage waits. Pages
    // overlap by one device: the ninth brings the 8 192nd, and the apply logs the rest.
    let waiting = first_load_log_batches(Duration::from_millis(600), "").await;
    assert_eq!(waiting, [1_000 + 8 * 999]);
    // Each stage held 50 ms longer: ten of them outlast a 150 ms fetch, and the apply logs all.
    let busy = first_load_log_batches(Duration::from_millis(150), "pull.slow_stage").await;
    assert_eq!(busy, [0_u64; 0]);
}
