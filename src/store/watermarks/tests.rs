//! The watermark as the apply writes it, and the incremental stage's join, on fresh databases.

use super::{Watermark, get};
use crate::device::DeviceColumns;
use crate::store::Db;
use crate::store::devices::{ApplyOutcome, DeleteGuard, PullStage, StageRow};
use crate::store::pages::SeenPage;
use crate::store::runs::{self, Job};
use tempfile::TempDir;

const V2: &str = "/api/2.0/devices/";

async fn open() -> (TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("d42sync.db")).await.unwrap();
    (dir, db)
}

fn mark(endpoint: &str, full: bool) -> Watermark {
    Watermark {
        endpoint: endpoint.into(),
        view: "tags".into(),
        full,
    }
}

/// Stages devices `(id, version)` as one page; `ids_only` stages them as unchanged.
async fn stage_page(stage: &mut PullStage, devices: &[(i64, i64)], ids_only: bool) {
    let columns = DeviceColumns::default();
    let raws: Vec<String> = devices
        .iter()
        .map(|(id, v)| format!(r#"{{"device_id":{id},"v":{v}}}"#))
        .collect();
    let rows: Vec<StageRow<'_>> = devices
        .iter()
        .zip(&raws)
        .map(|((id, v), raw)| StageRow {
            device_id: *id,
            raw_hash: *v,
            record: (!ids_only).then_some((raw.as_str(), &columns)),
        })
        .collect();
    let ids: Vec<i64> = devices.iter().map(|d| d.0).collect();
    let seen = SeenPage {
        key: (0, 100),
        hash: 1,
        total_count: None,
        limit: None,
        ids: Some(&ids),
    };
    stage.stage(seen, &rows).await.unwrap();
}

/// Applies one full pull of `devices` with the watermark `mark`, under `guard`.
async fn pull(db: &Db, devices: &[(i64, i64)], mark: Watermark, guard: f64) -> ApplyOutcome {
    let run_id = runs::start(db, Job::PullDevices).await.unwrap();
    let mut stage = PullStage::new(db, run_id).await.unwrap();
    stage_page(&mut stage, devices, false).await;
    stage.mark(mark);
    let guard = DeleteGuard {
        max_delete_fraction: guard,
        allow_mass_delete: false,
    };
    stage.apply(devices.len() as i64, guard).await.unwrap()
}

/// After a full pull of devices 1..=10, an incremental stage whose id listing held `listed`,
/// set aside for the edited records.
async fn listed_aside(db: &Db, listed: std::ops::RangeInclusive<i64>) -> PullStage {
    let all: Vec<(i64, i64)> = (1..=10).map(|id| (id, 1)).collect();
    pull(db, &all, mark(V2, true), 1.0).await;
    let run_id = runs::start(db, Job::PullDevices).await.unwrap();
    let mut stage = PullStage::new(db, run_id).await.unwrap();
    let listed: Vec<(i64, i64)> = listed.map(|id| (id, 0)).collect();
    stage_page(&mut stage, &listed, true).await;
    stage.set_listed_aside().await.unwrap();
    stage
}

async fn stored(db: &Db) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT device_id, raw FROM devices ORDER BY device_id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_applied_pull_writes_the_watermark_and_a_held_one_leaves_it() {
    let (_dir, db) = open().await;
    let all: Vec<(i64, i64)> = (1..=10).map(|id| (id, 1)).collect();
    assert_eq!(get(&db, V2).await.unwrap(), None);

    pull(&db, &all, mark(V2, true), 0.5).await;
    let first = get(&db, V2).await.unwrap().unwrap();
    let held = pull(&db, &all[..2], mark(V2, false), 0.5).await;

    assert_eq!(first.view, "tags");
    assert_eq!(first.pulled_from, first.full_from);
    assert!(matches!(held, ApplyOutcome::Held { .. }), "{held:?}");
    assert_eq!(get(&db, V2).await.unwrap(), Some(first));
}

#[tokio::test]
async fn an_incremental_apply_moves_the_pull_time_but_not_the_full_one() {
    let (_dir, db) = open().await;
    let all: Vec<(i64, i64)> = (1..=10).map(|id| (id, 1)).collect();
    pull(&db, &all, mark(V2, true), 1.0).await;
    let full = get(&db, V2).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    pull(&db, &all, mark(V2, false), 1.0).await;

    let after = get(&db, V2).await.unwrap().unwrap();
    assert_eq!(after.full_from, full.full_from);
    assert!(after.pulled_from > full.pulled_from);
}

#[tokio::test]
async fn a_pull_of_another_endpoint_forgets_the_first_endpoints_watermark() {
    let (_dir, db) = open().await;
    let all: Vec<(i64, i64)> = (1..=10).map(|id| (id, 1)).collect();
    pull(&db, &all, mark(V2, true), 1.0).await;

    pull(&db, &all, mark("/api/1.0/devices/all/", true), 1.0).await;

    assert_eq!(get(&db, V2).await.unwrap(), None);
    assert!(get(&db, "/api/1.0/devices/all/").await.unwrap().is_some());
}

#[tokio::test]
async fn the_joined_stage_holds_listed_ids_with_their_edits_and_no_unlisted_record() {
    let (_dir, db) = open().await;
    // Listed: 2..=10 and a new 11 (1 was removed upstream).
    let mut stage = listed_aside(&db, 2..=11).await;
    // Edited: 3 changed, 11 new, 12 added and removed again between the listings.
    stage_page(&mut stage, &[(3, 2), (11, 1), (12, 1)], false).await;

    let unknown = stage.merge_listed().await.unwrap();
    let outcome = stage.apply(
        10,
        DeleteGuard {
            max_delete_fraction: 1.0,
            allow_mass_delete: false,
        },
    );
    let outcome = outcome.await.unwrap();

    assert_eq!(unknown, 0);
    let ApplyOutcome::Applied(counts) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!((counts.added, counts.changed, counts.removed), (1, 1, 1));
    let ids: Vec<i64> = stored(&db).await.iter().map(|r| r.0).collect();
    assert_eq!(ids, (2..=11).collect::<Vec<_>>());
    assert!(
        stored(&db).await[1].1.contains(r#""v":2"#),
        "3 holds its edit"
    );
}

#[tokio::test]
async fn a_listed_id_neither_stored_nor_edited_is_counted() {
    let (_dir, db) = open().await;
    let mut stage = listed_aside(&db, 1..=12).await;
    stage_page(&mut stage, &[(11, 1)], false).await;

    let unknown = stage.merge_listed().await.unwrap();
    stage.discard().await;

    assert_eq!(unknown, 1, "12 is listed, not stored, not edited");
}
