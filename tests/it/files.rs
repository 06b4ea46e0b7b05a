//! The files d42sync shares with other programs: one daemon per database file whatever name
//! reaches it, and a database that report users in the service's group can write, while the
//! daemon runs and after it stopped.

use crate::helpers::{TestEnv, sigterm, wait_exit};
use d42sim::SimConfig;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A daemon the test started, killed if the test ends (or fails) before stopping it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits until the daemon `child` has written its pid into the lock file `lock`.
async fn wait_for_lock(lock: &Path, child: &Child) {
    let started = Instant::now();
    while std::fs::read_to_string(lock)
        .map(|s| s.trim() != child.id().to_string())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the daemon never took the lock {}",
            lock.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A copy of the test's config file with `database.path` set to `db`.
fn config_with_database(env: &TestEnv, db: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let original = format!("path = \"{}\"", env.db_path().display());
    assert!(text.contains(&original), "{text}");
    let path = env.dir.path().join(name);
    std::fs::write(
        &path,
        text.replace(&original, &format!("path = \"{}\"", db.display())),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_second_daemon_reaching_the_database_through_a_symlink_is_refused() {
    // Arrange: a daemon on inventory.db, and a config naming it through a symlink.
    let env = TestEnv::start(SimConfig::default(), "").await;
    let link = env.dir.path().join("link.db");
    std::os::unix::fs::symlink(env.db_path(), &link).unwrap();
    let through_link = config_with_database(&env, &link, "through-link.toml");
    let mut first = Daemon(
        env.command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_lock(
        Path::new(&format!("{}.lock", env.db_path().display())),
        &first.0,
    )
    .await;

    // Act: a second daemon that starts is stopped after a while rather than left running.
    let started = Instant::now();
    let mut second = Daemon(
        crate::helpers::command_with_config(&through_link, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let code = wait_exit(&mut second.0, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();

    // Assert
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(1), "the second daemon ran: {stderr}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert!(
        stderr.contains(&format!("another d42sync (pid {})", first.0.id())),
        "{stderr}"
    );
    assert!(!link.with_extension("db.lock").exists());
    sigterm(&first.0);
    assert_eq!(
        wait_exit(&mut first.0, Duration::from_secs(10)).await,
        Some(0)
    );
}

/// The service's group, as systemd's `Group=d42sync`.
const SERVICE_GID: u32 = 64_100;
/// The service's user, as systemd's `User=d42sync`.
const SERVICE_UID: u32 = 64_101;
/// A report user: another uid, in the service's group.
const REPORT_UID: u32 = 64_102;

/// `setpriv` running `program` as `uid` in group `gid` only; no account is needed.
fn as_user(uid: u32, gid: u32, program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(program);
    cmd
}

/// The report user inserts a queue row with the sqlite3 shell; its stderr when that fails.
async fn report_user_enqueues(db: &Path, name: &str) -> Result<(), String> {
    let mut cmd = as_user(REPORT_UID, SERVICE_GID, "sqlite3");
    cmd.args(["-cmd", ".timeout 5000"]).arg(db).arg(format!(
        "INSERT INTO building_queue (name) VALUES ('{name}');"
    ));
    let out = crate::helpers::output(cmd).await;
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Waits until `log` (the daemon's stderr) says it started: database open and migrated.
async fn wait_for_start(log: &Path) {
    let started = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("d42sync started")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the daemon did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_report_user_in_the_services_group_enqueues_while_the_daemon_runs_and_after_it_stopped() {
    // Arrange: the state directory as systemd makes it (service user and group, setgid, group
    // rwx), the daemon as the service user under the unit's UMask=0007, the secret its own.
    // setpriv needs root (CI runs as root).
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs the daemon and sqlite3 as other users with setpriv: run it as root"
    );
    let env = TestEnv::start(SimConfig::default(), "").await;
    let state = env.dir.path().join("state");
    let db = state.join("inventory.db");
    env.write_config("", &format!("[database]\npath = \"{}\"", db.display()));
    std::fs::create_dir(&state).unwrap();
    let chown = |path: &Path, uid, gid| std::os::unix::fs::chown(path, Some(uid), Some(gid));
    chown(&state, SERVICE_UID, SERVICE_GID).unwrap();
    std::fs::set_permissions(&state, PermissionsExt::from_mode(0o2770)).unwrap();
    chown(&env.dir.path().join("secret_key"), SERVICE_UID, SERVICE_GID).unwrap();
    std::fs::set_permissions(env.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let log = env.dir.path().join("daemon.log");
    let mut cmd = as_user(SERVICE_UID, SERVICE_GID, "sh");
    cmd.args([
        "-c",
        "umask 0007; exec \"$0\" \"$@\"",
        crate::helpers::bin(),
    ])
    .arg("--config")
    .arg(env.config_path())
    .arg("run")
    .env_remove("CREDENTIALS_DIRECTORY")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut daemon = Daemon(cmd.spawn().unwrap());
    wait_for_start(&log).await;

    // Act / Assert: while the daemon runs.
    report_user_enqueues(&db, "while-running")
        .await
        .unwrap_or_else(|e| panic!("while the daemon runs: {e}"));
    for file in [
        "inventory.db",
        "inventory.db-wal",
        "inventory.db-shm",
        "inventory.db.lock",
    ] {
        assert_eq!(mode(&state.join(file)), 0o660, "{file}");
    }

    // Act / Assert: after it stopped, when SQLite must create -wal and -shm again.
    sigterm(&daemon.0);
    assert_eq!(
        wait_exit(&mut daemon.0, Duration::from_secs(10)).await,
        Some(0)
    );
    // A clean stop normally removes -wal and -shm (SQLite keeps them when a checkpoint on
    // close cannot finish, as seen under load): either way the group member must write.
    report_user_enqueues(&db, "after-stop")
        .await
        .unwrap_or_else(|e| panic!("after the daemon stopped: {e}"));

    let store = d42sync::store::Db::open_unmigrated(&db).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM building_queue ORDER BY id")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    store.close().await;
    assert_eq!(names, ["while-running", "after-stop"]);
}
