//! `d42sync run` as ops run it: schedules, no overlap, token refresh, steady memory, signals,
//! single instance, systemd notifications, metrics, health, status.

use crate::helpers::{TestEnv, sigterm, text, wait_exit};
use d42sim::SimConfig;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the daemon `child` holds the instance lock (its signal handlers are installed
/// by then); the lock file's path.
async fn wait_for_lock(env: &TestEnv, child: &Child) -> String {
    let lock = format!("{}.lock", env.db_path().display());
    let started = Instant::now();
    while std::fs::read_to_string(&lock)
        .map(|s| s.trim() != child.id().to_string())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the daemon never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock
}

/// `d42sync run` with stdout discarded and stderr as given, not started yet.
fn run_command(env: &TestEnv, stderr: Stdio) -> std::process::Command {
    let mut cmd = env.command(&["run"]);
    cmd.stdout(Stdio::null()).stderr(stderr);
    cmd
}

/// `d42sync run` with stdout discarded and stderr as given.
fn spawn_run(env: &TestEnv, stderr: Stdio) -> Child {
    run_command(env, stderr).spawn().unwrap()
}

/// The next `times` device pages are malformed, so those pulls fail.
fn fail_pulls(env: &TestEnv, times: u32) {
    env.sim.inject(
        d42sim::FaultRule::new("/api/2.0/devices/", d42sim::Fault::MalformedJson).times(times),
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The open fds of process `pid`: (those of SQLite, every other one). SQLite's are the files of
/// database `db` and its own temp files (`etilqs_*`, deleted as they are opened; a connection
/// keeps the one of its TEMP tables).
fn open_fds(pid: u32, db: &std::path::Path) -> (usize, usize) {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, 0);
    };
    let targets: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    let db = db.to_string_lossy();
    let sqlite = targets
        .iter()
        .filter(|t| t.starts_with(&*db) || t.contains("/etilqs_"))
        .count();
    (sqlite, targets.len() - sqlite)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_daemon_on_one_second_schedules_runs_both_jobs_without_overlap_for_twenty_seconds() {
    // One-second periods, 3 s tokens and a sample every half second: more ticks, token
    // refreshes and samples in twenty seconds than two-second periods, 6 s tokens and a sample
    // a second gave in thirty.
    let port = free_port();
    let env = TestEnv::start(
        SimConfig {
            devices: 500,
            token_ttl: Duration::from_secs(3),
            // Eleven or twelve requests of 100 ms (a full pull pages records; an incremental one
            // the id list and the edited records): a pull outlasts its one-second period, and
            // still ends well within the three periods healthz allows between successes.
            page_delay: Duration::from_millis(100),
            ..SimConfig::default()
        },
        &format!(
            "[devices]\nschedule = \"* * * * * *\"\npage_size = 50\nconcurrency = 1\n\
             [buildings]\nschedule = \"* * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:{port}\""
        ),
    )
    .await;
    // The first two pulls meet a malformed page: they fail, and the daemon carries on.
    fail_pulls(&env, 2);
    let mut child = spawn_run(&env, Stdio::piped());
    // Read as it is written: twenty seconds of runs must never fill the pipe and stall the daemon.
    let log = capture(child.stderr.take().unwrap());
    let pid = child.id();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut queued = 0;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (db_fds, other_fds) = open_fds(pid, &env.db_path());
        samples.push((started.elapsed(), rss_kib(pid), other_fds, db_fds));
        let out = env
            .run(&["enqueue-building", "--name", &format!("site-{queued}")])
            .await;
        assert!(out.status.success(), "{}", text(&out).1);
        queued += 1;
    }
    let metrics = http_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    let health = http_client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "{}", health.text().await.unwrap());
    let status = env.run(&["status", "--json"]).await;
    assert!(status.status.success(), "{}", text(&status).1);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();

    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );

    let db = env.db().await;
    let runs: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT job, status, started_at, finished_at FROM sync_runs ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let pulls: Vec<_> = runs.iter().filter(|r| r.0 == "pull_devices").collect();
    assert!(pulls.len() >= 5, "pulls: {}", pulls.len());
    for pair in pulls.windows(2) {
        let finished = pair[0].3.as_deref().expect("an earlier run finished");
        assert!(finished <= pair[1].2.as_str(), "runs overlap: {pair:?}");
    }
    let first_two: Vec<&str> = pulls.iter().take(2).map(|r| r.1.as_str()).collect();
    assert_eq!(first_two, ["failed", "failed"]);
    assert!(
        pulls.iter().filter(|r| r.1 == "ok").count() >= 5,
        "later runs succeed: {pulls:?}"
    );
    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM building_queue WHERE status = 'done'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(done >= queued - 2, "{done} of {queued} buildings sent");
    assert_eq!(status["devices"], 500);
    let last_pull_id = status["jobs"]["pull_devices"]["last_run"]["id"]
        .as_i64()
        .unwrap();
    let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE id = ?")
        .bind(last_pull_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(exists, 1);
    db.close().await;

    assert_eq!(
        env.sim.unauthorized_responses(),
        0,
        "tokens are refreshed before they expire"
    );
    assert!(
        env.sim.token_requests() >= 4,
        "3 s tokens over 20 s: {}",
        env.sim.token_requests()
    );
    assert!(
        metrics.contains("d42sync_runs_total{job=\"pull_devices\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("d42sync_skipped_ticks_total{job=\"pull_devices\"}"),
        "pulls outlast the period: {metrics}"
    );
    assert!(metrics.contains("d42sync_devices_stored 500"));
    assert!(metrics.contains("d42sync_queue_depth{status=\"done\"}"));

    let tail: Vec<_> = samples
        .iter()
        .filter(|s| s.0 >= Duration::from_secs(6))
        .collect();
    let first_rss = tail[0].1;
    let max_rss = tail.iter().map(|s| s.1).max().unwrap();
    // Sockets come and go with the runs (keep-alive to Device42, metrics, the control socket): a
    // leak shows as growth from the most the 6-11 s window held to the most the last five
    // seconds hold. SQLite's files are held by the pool's connections, which it opens as runs
    // meet them (at most 8, each on the database, its WAL and a temp file, beside the shared
    // -shm and the lock file): bounded, however late the pool grows.
    let most_sqlite_fds = samples.iter().map(|s| s.3).max().unwrap();
    assert!(
        (3..=3 * 8 + 2).contains(&most_sqlite_fds),
        "{most_sqlite_fds} fds of SQLite: {samples:?}"
    );
    let fds_within = |from: u64, to: u64| {
        let window = Duration::from_secs(from)..Duration::from_secs(to);
        samples
            .iter()
            .filter(|s| window.contains(&s.0))
            .map(|s| s.2)
            .max()
            .unwrap()
    };
    let (first_fds, max_fds) = (fds_within(6, 11), fds_within(15, 21));
    assert!(
        max_rss <= first_rss + first_rss / 5,
        "RSS grew from {first_rss} to {max_rss} KiB: {samples:?}"
    );
    assert!(
        max_fds <= first_fds + 4,
        "fds grew from {first_fds} to {max_fds}: {samples:?}"
    );
    let stderr = log.lock().unwrap().clone();
    assert!(
        crate::helpers::log_lines(&stderr, "INFO")
            .iter()
            .any(|l| l.contains("pull finished") && l.contains("\"run_id\"")),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_during_a_pull_exits_zero_and_leaves_the_database_consistent() {
    let env = TestEnv::start(
        SimConfig {
            devices: 2_000,
            page_delay: Duration::from_millis(200),
            ..SimConfig::default()
        },
        "[devices]\npage_size = 100\nconcurrency = 1",
    )
    .await;
    let mut child = spawn_run(&env, Stdio::piped());
    let log = capture(child.stderr.take().unwrap());
    while env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/2.0/devices/")
        .count()
        < 3
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    assert!(stopping.elapsed() < Duration::from_secs(10));
    wait_for_log(&log, "d42sync stopped").await;
    let log = log.lock().unwrap().clone();
    // A stop is not an operator's problem: one WARN, no ERROR.
    assert!(crate::helpers::log_lines(&log, "ERROR").is_empty(), "{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("pull stopped by shutdown"))
            .count(),
        1,
        "{log}"
    );

    let db = env.db().await;
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
    let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(devices, 0, "the interrupted pull applied nothing");
    let status: String =
        sqlx::query_scalar("SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    db.close().await;

    env.sim.set_page_delay(Duration::ZERO);
    let next = env.run(&["pull"]).await;
    assert!(next.status.success(), "{}", text(&next).1);
}

#[tokio::test]
async fn a_second_instance_exits_at_once_naming_the_holder() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let mut first = spawn_run(&env, Stdio::null());
    let lock = wait_for_lock(&env, &first).await;
    for args in [["run"]] {
        let started = Instant::now();
        let out = env.run(&args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        let expected = format!("another d42sync (pid {}) holds {lock}", first.id());
        assert!(
            text(&out).1.contains(&expected),
            "{args:?}: {}",
            text(&out).1
        );
    }
    sigterm(&first);
    assert_eq!(
        wait_exit(&mut first, Duration::from_secs(10)).await,
        Some(0)
    );
}

#[tokio::test]
async fn pull_and_push_from_a_shell_are_run_by_the_daemon_and_status_names_it() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let mut daemon = spawn_run(&env, Stdio::null());
    wait_for_lock(&env, &daemon).await;
    let socket = crate::helpers::wait_for_control_socket(&env).await;
    // The administrator's shell cannot read the secret: the daemon needs none from it.
    std::fs::remove_file(env.dir.path().join("secret_key")).unwrap();
    env.run(&["enqueue-building", "--name", "HQ"]).await;

    let pull = env.run(&["pull"]).await;
    let push = env.run(&["push"]).await;
    let status = env.run(&["status"]).await;
    let json = env.run(&["status", "--json"]).await;
    sigterm(&daemon);
    let code = wait_exit(&mut daemon, Duration::from_secs(10)).await;

    assert_eq!(pull.status.code(), Some(0), "{:?}", text(&pull));
    assert!(
        text(&pull).0.starts_with("pull ok by the daemon (run "),
        "{:?}",
        text(&pull)
    );
    assert_eq!(push.status.code(), Some(0), "{:?}", text(&push));
    assert!(text(&push).0.contains("1 sent"), "{:?}", text(&push));
    assert_eq!(env.sim.buildings().len(), 1);
    let expected = format!("daemon    running (pid {}, since ", daemon.id());
    assert!(
        text(&status).0.starts_with(&expected),
        "{}",
        text(&status).0
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["daemon"]["pid"], daemon.id());
    assert_eq!(code, Some(0));
    assert!(
        !std::path::Path::new(&socket).exists(),
        "the socket outlived the daemon"
    );
    let after = env.run(&["status"]).await;
    assert!(
        text(&after).0.starts_with("daemon    not running"),
        "{}",
        text(&after).0
    );
}

/// A fake systemd notification socket in the test's temp dir.
struct NotifySocket {
    path: std::path::PathBuf,
    socket: std::sync::Arc<UnixDatagram>,
}

impl NotifySocket {
    fn bind(dir: &std::path::Path, name: &str) -> Self {
        let path = dir.join(name);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            path,
            socket: std::sync::Arc::new(socket),
        }
    }

    /// Messages with their arrival time, for at most `window` or until `last` matches one.
    async fn collect(&self, window: Duration, last: fn(&str) -> bool) -> Vec<(Duration, String)> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            let started = Instant::now();
            let mut buf = [0u8; 4096];
            while started.elapsed() < window {
                if let Ok(n) = socket.recv(&mut buf) {
                    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let done = last(&message);
                    got.push((started.elapsed(), message));
                    if done {
                        break;
                    }
                }
            }
            got
        })
        .await
        .unwrap()
    }
}

/// `d42sync run` under a fake systemd: `NOTIFY_SOCKET` and a 2 s watchdog.
fn spawn_notified(env: &TestEnv, socket: &NotifySocket, failpoint: Option<&str>) -> Child {
    let mut cmd = env.command(&["run"]);
    cmd.env("NOTIFY_SOCKET", &socket.path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(f) = failpoint {
        cmd.env("D42SYNC_FAILPOINT", f);
    }
    cmd.spawn().unwrap()
}

#[tokio::test]
async fn systemd_hears_ready_watchdog_pings_and_stopping() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let socket = NotifySocket::bind(env.dir.path(), "notify.sock");
    let mut child = spawn_notified(&env, &socket, None);

    let got = socket.collect(Duration::from_secs(5), |_| false).await;

    let ready_at = got
        .iter()
        .position(|m| m.1 == "READY=1")
        .expect("READY=1 was sent");
    assert!(
        got.iter().any(|m| m.1.starts_with("STATUS=")),
        "a STATUS= line: {got:?}"
    );
    let db = env.db().await;
    let migrated: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.close().await;
    assert!(migrated >= 1, "READY comes after migrations");
    let pings: Vec<Duration> = got[ready_at..]
        .iter()
        .filter(|m| m.1 == "WATCHDOG=1")
        .map(|m| m.0)
        .collect();
    assert!(pings.len() >= 4, "{got:?}");
    for pair in pings.windows(2) {
        assert!(
            pair[1] - pair[0] <= Duration::from_secs(1),
            "pings at least every second: {pings:?}"
        );
    }

    sigterm(&child);
    let stopping = socket
        .collect(Duration::from_secs(5), |m| m == "STOPPING=1")
        .await;

    assert!(
        stopping.iter().any(|m| m.1 == "STOPPING=1"),
        "STOPPING=1 on SIGTERM: {stopping:?}"
    );
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}

#[tokio::test]
async fn watchdog_pings_stop_when_the_main_loop_hangs() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let socket = NotifySocket::bind(env.dir.path(), "notify.sock");
    let mut child = spawn_notified(&env, &socket, Some("daemon.stall"));

    let got = socket.collect(Duration::from_secs(9), |_| false).await;

    let _ = child.kill();
    let _ = child.wait();
    let pings: Vec<Duration> = got
        .iter()
        .filter(|m| m.1 == "WATCHDOG=1")
        .map(|m| m.0)
        .collect();
    let last = *pings.last().expect("pings before the stall");
    assert!(
        last < Duration::from_secs(6),
        "pings stop once the loop hangs (stall after 3 s): {pings:?}"
    );
}

#[tokio::test]
async fn sighup_applies_a_valid_config_and_keeps_the_running_one_when_invalid() {
    let env = TestEnv::start(
        SimConfig::default(),
        "[buildings]\nschedule = \"0 0 0 1 1 *\"",
    )
    .await;
    let mut child = spawn_run(&env, Stdio::piped());
    let log = capture(child.stderr.take().unwrap());
    wait_for_lock(&env, &child).await;
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    let hup = |child: &Child| unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let valid = std::fs::read_to_string(env.config_path()).unwrap();

    std::fs::write(
        env.config_path(),
        valid.replace("0 0 0 1 1 *", "every second"),
    )
    .unwrap();
    hup(&child);
    wait_for_log(&log, "config reload refused").await;

    assert!(
        child.try_wait().unwrap().is_none(),
        "an invalid reload does not stop the daemon"
    );
    let refused = log.lock().unwrap().clone();
    let errors = crate::helpers::log_lines(&refused, "ERROR").join("\n");
    assert!(errors.contains("buildings.schedule"), "{refused}");

    std::fs::write(
        env.config_path(),
        valid.replace("0 0 0 1 1 *", "* * * * * *"),
    )
    .unwrap();
    hup(&child);
    wait_for_log(&log, "config reloaded").await;
    let out = env
        .run(&["enqueue-building", "--name", "after-reload"])
        .await;
    assert!(out.status.success());
    let started = Instant::now();
    while env.sim.building_posts("after-reload") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the reloaded schedule runs the push"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}

#[tokio::test]
async fn sighup_applies_log_level_and_format() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let mut child = spawn_run(&env, Stdio::piped());
    let log = capture(child.stderr.take().unwrap());
    wait_for_lock(&env, &child).await;
    wait_for_log(&log, "d42sync started").await;
    let json = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(
        env.config_path(),
        json.replace("format = \"json\"", "format = \"text\"")
            .replace("level = \"info\"", "level = \"debug\""),
    )
    .unwrap();
    let before = log.lock().unwrap().len();

    // SAFETY: kill(2) with a pid we own and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    wait_for_log(&log, "config reloaded").await;
    // A push by the daemon: its queries log at DEBUG.
    let status = env.run(&["push"]).await;
    wait_for_log(&log, "control request").await;
    sigterm(&child);
    let code = wait_exit(&mut child, Duration::from_secs(10)).await;

    assert!(status.status.success());
    let after = log.lock().unwrap()[before..].to_string();
    let reloaded = after
        .lines()
        .find(|l| l.contains("config reloaded"))
        .unwrap();
    assert!(
        reloaded.contains(" INFO ") && !reloaded.starts_with('{'),
        "{reloaded}"
    );
    assert!(after.lines().any(|l| l.contains(" DEBUG ")), "{after}");
    assert!(
        !after.contains('\u{1b}'),
        "colour codes on a pipe: {after:?}"
    );
    assert_eq!(code, Some(0));
}

/// Collects a child's stderr as it is written.
fn capture(stderr: std::process::ChildStderr) -> std::sync::Arc<std::sync::Mutex<String>> {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

/// Waits (at most 10 s) until the captured log contains `needle`.
async fn wait_for_log(log: &std::sync::Mutex<String>, needle: &str) {
    let started = Instant::now();
    while !log.lock().unwrap().contains(needle) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {needle:?} in: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn healthz_turns_unhealthy_when_pulls_keep_failing() {
    let port = free_port();
    let env = TestEnv::start(
        SimConfig::default(),
        &format!(
            "[devices]\nschedule = \"*/2 * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:{port}\""
        ),
    )
    .await;
    fail_pulls(&env, 1_000);
    let mut child = spawn_run(&env, Stdio::null());
    wait_for_lock(&env, &child).await;
    let url = format!("http://127.0.0.1:{port}/healthz");
    let started = Instant::now();
    let mut first = None;
    while started.elapsed() < Duration::from_secs(12) {
        if let Ok(r) = http_client().get(&url).send().await {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            first.get_or_insert(status);
            if status == 503 {
                assert!(body.contains("last successful pull"), "{body}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(first, Some(200), "healthy within the first three periods");
    let last = http_client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    assert_eq!(last, 503, "three periods (6 s) without a successful pull");
}

#[tokio::test]
async fn an_outage_is_logged_once_and_probed_once_per_interval() {
    // R20: during an outage the daemon sends one probe per open interval and logs one WARN
    // when it stops calling and one INFO when Device42 answers again, however many ticks pass,
    // and a reload of the same config in the middle of it changes none of that.
    let env = TestEnv::start_with(
        SimConfig {
            devices: 300,
            ..SimConfig::default()
        },
        "max_retries = 1\nbreaker_failures = 3\nbreaker_probe_interval = \"2s\"",
        "[devices]\nschedule = \"* * * * * *\"\npage_size = 100\nconcurrency = 2\n\
         [buildings]\nschedule = \"* * * * * *\"\nretry_base = \"100ms\"\nretry_max = \"200ms\"",
    )
    .await;
    let socket = NotifySocket::bind(env.dir.path(), "notify.sock");
    let mut child = env
        .command(&["run"])
        .env("NOTIFY_SOCKET", &socket.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = capture(child.stderr.take().unwrap());
    wait_for_log(&log, "pull finished").await;

    env.sim
        .inject(d42sim::FaultRule::new("/", d42sim::Fault::HtmlPage(502)).times(u32::MAX));
    let db = env.db().await;
    for i in 0..5 {
        sqlx::query(&format!(
            "INSERT INTO building_queue (name) VALUES ('out{i}')"
        ))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    wait_for_log(&log, "Device42 unreachable").await;
    let opened = Instant::now();
    let lines_at_open = log.lock().unwrap().lines().count();
    let paused = |m: &str| m.starts_with("STATUS=Device42 unreachable");
    let status = socket.collect(Duration::from_secs(3), paused).await;
    assert!(
        status.iter().any(|m| paused(&m.1)),
        "systemctl status shows the outage: {status:?}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    wait_for_log(&log, "config reloaded").await;
    // The outage goes on until the breaker has sent four probes (about 9 s at one per 2 s).
    let probes_seen = || {
        env.sim
            .requests()
            .iter()
            .filter(|r| r.status == 502 && r.at > opened + Duration::from_secs(1))
            .count()
    };
    while probes_seen() < 4 {
        assert!(
            opened.elapsed() < Duration::from_secs(20),
            "four probes within 20 s of the outage: {} seen",
            probes_seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Less the reload's own line.
    let lines_before_end = log.lock().unwrap().lines().count() - 1;
    env.sim.clear_faults();
    wait_for_log(&log, "Device42 answers again").await;
    let started = Instant::now();
    while crate::helpers::count(
        &env,
        "SELECT count(*) FROM building_queue WHERE status = 'done'",
    )
    .await
        < 5
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the queue drains after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    db.close().await;

    let log = log.lock().unwrap().clone();
    let count = |message: &str| {
        let needle = format!("\"message\":\"{message}");
        log.lines().filter(|l| l.contains(&needle)).count()
    };
    assert_eq!(count("Device42 unreachable"), 1, "one WARN: {log}");
    assert_eq!(count("Device42 answers again"), 1, "one INFO: {log}");
    assert_eq!(count("config reloaded"), 1, "{log}");
    // The scheduler crate's own INFO chatter (at start and on the reload) stays out.
    assert_eq!(count("Job creator created") + count("Uninited"), 0, "{log}");
    for job in ["pull failed", "push failed"] {
        assert!(
            count(job) <= 1,
            "only a run under way when calls stopped: {log}"
        );
    }
    // Runs already under way when calls were paused end with one line each; nothing after.
    assert!(
        lines_before_end - lines_at_open <= 2,
        "{} lines during 12 s of outage (24 ticks):\n{log}",
        lines_before_end - lines_at_open
    );
    // The breaker lets its first probe go one whole interval (2 s) after it opens; a 502 that
    // arrives in the first second after the WARN is a call let through before it opened (the
    // other page of the pull, a building POST) that was still on its way, not a probe.
    let first_probe_no_earlier = opened + Duration::from_secs(1);
    let probes: Vec<Instant> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 502 && r.at > first_probe_no_earlier)
        .map(|r| r.at)
        .collect();
    assert!(
        (3..=7).contains(&probes.len()),
        "one probe per 2 s over 12 s: {} probes",
        probes.len()
    );
    for pair in probes.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(1_950),
            "probes {:?} apart",
            pair[1] - pair[0]
        );
    }
    assert_eq!(
        crate::helpers::count(
            &env,
            "SELECT count(*) FROM building_queue WHERE status = 'dead'"
        )
        .await,
        0,
        "an outage dead-letters nothing"
    );
}

#[tokio::test]
async fn a_notification_socket_nobody_reads_never_blocks_a_stop() {
    // Pings fill the socket's queue (net.unix.max_dgram_qlen, 10 here) quickly;
    // a blocking send would then hang the main loop, and SIGTERM with it.
    let env = TestEnv::start(SimConfig::default(), "").await;
    let socket = NotifySocket::bind(env.dir.path(), "unread.sock");
    // A 200 ms watchdog: a ping every 50 ms fills the queue within a second.
    let mut child = env
        .command(&["run"])
        .env("NOTIFY_SOCKET", &socket.path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock(&env, &child).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0),
        "a full notification queue does not hold up the stop"
    );
}

/// The value of `series` on the `/metrics` of the daemon listening on `port`, once it answers
/// with one.
async fn wait_for_sample(port: u16, series: &str) -> f64 {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let started = Instant::now();
    loop {
        if let Ok(answer) = http_client().get(&url).send().await
            && let Ok(text) = answer.text().await
            && let Some(value) = text
                .lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        {
            return value.parse().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {series} on /metrics"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The environment of a daemon for `devices` devices whose jobs run once a year (the first
/// pull only as it starts, on an empty inventory), with `devices_settings` more in `[devices]`
/// and metrics on the port returned.
async fn yearly_daemon_with_metrics(devices: usize, devices_settings: &str) -> (TestEnv, u16) {
    let port = free_port();
    let yearly = "schedule = \"0 0 0 1 1 *\"";
    let env = TestEnv::start(
        SimConfig {
            devices,
            ..SimConfig::default()
        },
        &format!(
            "[devices]\n{yearly}\n{devices_settings}\n[buildings]\n{yearly}\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\""
        ),
    )
    .await;
    (env, port)
}

#[tokio::test]
async fn after_a_restart_metrics_start_from_the_runs_the_database_holds() {
    let (env, port) = yearly_daemon_with_metrics(50, "").await;
    let ok_pulls = "d42sync_runs_total{job=\"pull_devices\",outcome=\"ok\"}";
    let last_pull = "d42sync_last_success_timestamp_seconds{job=\"pull_devices\"}";
    // The empty inventory is stale: the first daemon pulls as it starts.
    let mut first = spawn_run(&env, Stdio::null());
    assert_eq!(wait_for_sample(port, ok_pulls).await, 1.0);
    let before = wait_for_sample(port, last_pull).await;
    sigterm(&first);
    assert_eq!(
        wait_exit(&mut first, Duration::from_secs(10)).await,
        Some(0)
    );

    // The inventory is fresh now: the second daemon does not pull.
    let mut second = spawn_run(&env, Stdio::null());
    let runs_after = wait_for_sample(port, ok_pulls).await;
    let after = wait_for_sample(port, last_pull).await;
    sigterm(&second);
    assert_eq!(
        wait_exit(&mut second, Duration::from_secs(10)).await,
        Some(0)
    );

    assert_eq!(runs_after, 1.0, "the run counted before the restart");
    assert!(
        (after - before).abs() <= 1.0,
        "last success {before} before the restart, {after} after"
    );
    let db = env.db().await;
    let finished: String = sqlx::query_scalar(
        "SELECT finished_at FROM sync_runs WHERE job = 'pull_devices' AND status = 'ok'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    db.close().await;
    let finished = d42sync::time::parse_iso(&finished).unwrap().timestamp();
    assert_eq!(after as i64, finished, "the finish time the database holds");
}

#[tokio::test]
async fn metrics_answer_while_a_pull_parses_its_pages() {
    let (env, port) = yearly_daemon_with_metrics(4_000, "page_size = 100\nconcurrency = 8").await;
    // The empty inventory is pulled as the daemon starts, and each of its forty pages holds the
    // thread that parses it for half a second, as a large page's parse holds it for a while:
    // the pull outlasts the second and a half of polling.
    let mut child = run_command(&env, Stdio::null())
        .env("D42SYNC_FAILPOINT", "pull.slow_parse")
        .spawn()
        .unwrap();
    assert_eq!(wait_for_sample(port, "d42sync_devices_stored").await, 0.0);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let ok_pulls = "d42sync_runs_total{job=\"pull_devices\",outcome=\"ok\"}";
    let mut slowest = Duration::ZERO;
    let mut last = String::new();
    let polling = Instant::now();
    while polling.elapsed() < Duration::from_millis(1500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let asked = Instant::now();
        let answer = http_client().get(&url).send().await.unwrap();
        last = answer.text().await.unwrap();
        slowest = slowest.max(asked.elapsed());
    }
    let pages = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/2.0/devices/")
        .count();
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    // The pull was under way throughout: pages asked for, none of it applied. A parse on the
    // runtime's own threads held /metrics for a whole parse or two (972 ms once).
    assert!(pages >= 2, "{pages} pages asked for");
    assert!(!last.contains(ok_pulls), "the pull ended too soon:\n{last}");
    assert!(
        slowest < Duration::from_millis(400),
        "/metrics took {slowest:?} while pages were parsed"
    );
}
