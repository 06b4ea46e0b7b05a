//! The backups docs/upgrading.md gives: `sqlite3 DB ".backup FILE"` and `VACUUM INTO`, taken
//! while a pull writes, are sound databases holding a complete snapshot.

use crate::helpers::{TestEnv, text};
use d42sim::SimConfig;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs the sqlite3 shell on `db` as a report user would, waiting on a busy database.
async fn sqlite3(db: &Path, sql: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("sqlite3");
    cmd.args(["-cmd", ".timeout 5000"]).arg(db).arg(sql);
    crate::helpers::output(cmd).await
}

/// `PRAGMA integrity_check` and the device count of a backup, through the shell.
async fn check(copy: &Path) -> (String, i64) {
    let out = sqlite3(
        copy,
        "PRAGMA integrity_check; SELECT count(*) FROM devices;",
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{}: {stderr}", copy.display());
    let mut lines = stdout.lines();
    let integrity = lines.next().unwrap_or_default().to_owned();
    let devices = lines.next().and_then(|n| n.parse().ok()).unwrap_or(-1);
    (integrity, devices)
}

#[tokio::test]
async fn the_documented_backups_work_while_a_pull_writes() {
    // A first pull writes every page into the database as it arrives: 20 pages, 100 ms apart.
    let env = TestEnv::start(
        SimConfig {
            devices: 2_000,
            page_delay: Duration::from_millis(100),
            ..SimConfig::default()
        },
        "[devices]\npage_size = 100\nconcurrency = 1",
    )
    .await;
    let mut pull = env
        .command(&["pull"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/2.0/devices/")
        .count()
        < 4
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the pull never paged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let db = env.db_path();
    let dot_backup = env.dir.path().join("dot-backup.db");
    let vacuum_into = env.dir.path().join("vacuum-into.db");

    let backup = sqlite3(&db, &format!(".backup '{}'", dot_backup.display())).await;
    let vacuum = sqlite3(&db, &format!("VACUUM INTO '{}'", vacuum_into.display())).await;
    let pull_still_running = pull.try_wait().unwrap().is_none();
    let pulled = tokio::task::spawn_blocking(move || pull.wait_with_output().unwrap())
        .await
        .unwrap();

    assert!(backup.status.success(), ".backup: {}", text(&backup).1);
    assert!(vacuum.status.success(), "VACUUM INTO: {}", text(&vacuum).1);
    assert!(
        pull_still_running,
        "the pull ended before the backups: nothing was tested"
    );
    assert!(pulled.status.success(), "the pull: {}", text(&pulled).1);
    for copy in [&dot_backup, &vacuum_into] {
        let (integrity, devices) = check(copy).await;
        assert_eq!(integrity, "ok", "{}", copy.display());
        assert!(
            devices == 0 || devices == 2_000,
            "{} holds {devices} devices: not a snapshot",
            copy.display()
        );
    }
}
