//! The files d42sync shares with other programs: one daemon per database file whatever name
//! reaches it, and a database that report users in the service's group can write, while the
//! daemon runs and after it stopped.

use crate::helpers::TestEnv;
use d42sync::sim::SimConfig;
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

fn sigterm(child: &Child) {
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Waits for the child to exit, at most `limit`; its exit code.
async fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
