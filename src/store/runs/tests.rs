use super::*;

async fn fresh() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("runs.db")).await.unwrap();
    (dir, db)
}

#[tokio::test]
async fn totals_count_finished_runs_by_job_and_status_with_the_latest_finish() {
    let (_dir, db) = fresh().await;
    for status in [RunStatus::Ok, RunStatus::Failed, RunStatus::Ok] {
        let id = start(&db, Job::PullDevices).await.unwrap();
        finish(&db, id, status, RunCounts::default(), None)
            .await
            .unwrap();
    }
    // A push still running is not counted.
    start(&db, Job::PushBuildings).await.unwrap();

    let totals = totals(&db).await.unwrap();

    let last_ok = last_ok(&db, Job::PullDevices).await.unwrap().unwrap();
    let seen: Vec<(&str, &str, i64)> = totals
        .iter()
        .map(|t| (t.job.as_str(), t.status.as_str(), t.runs))
        .collect();
    assert_eq!(
        seen,
        [("pull_devices", "failed", 1), ("pull_devices", "ok", 2)]
    );
    assert_eq!(totals[1].last_finished, last_ok.finished_at);
    db.close().await;
}
