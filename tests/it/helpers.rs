//! Test scaffolding: a simulator on 127.0.0.1, a temp dir with a config and a database, the
//! built binary, and helpers to inspect the database.

use d42sim::{SimConfig, Simulator};
use d42sync::config::{self, Settings};
use d42sync::d42::Client;
use d42sync::store::Db;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The compiled `d42sync` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_d42sync")
}

/// A simulator with a config and database pointing at it.
pub struct TestEnv {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    pub sim_config: SimConfig,
}

impl TestEnv {
    /// Starts a simulator with `sim_config` and writes a config for it; `extra` is appended to
    /// the generated TOML (its sections must not repeat `[device42]` or `[database]`; use
    /// `device42_extra` for device42 keys).
    pub async fn start(sim_config: SimConfig, extra: &str) -> Self {
        Self::start_with(sim_config, "", extra).await
    }

    /// Like [`TestEnv::start`] with extra `[device42]` keys.
    pub async fn start_with(sim_config: SimConfig, device42_extra: &str, extra: &str) -> Self {
        let sim = Simulator::start(sim_config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let env = Self {
            sim,
            dir: tempfile::tempdir().unwrap(),
            sim_config,
        };
        env.write_config(device42_extra, extra);
        env
    }

    /// (Re)writes the config file.
    pub fn write_config(&self, device42_extra: &str, extra: &str) {
        let secret = self.dir.path().join("secret_key");
        std::fs::write(&secret, &self.sim_config.secret_key).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "[device42]\nbase_url = \"{}\"\nclient_key = \"{}\"\nsecret_key_file = \"{}\"\n\
             connect_timeout = \"2s\"\nrequest_timeout = \"5s\"\nretry_base = \"10ms\"\nretry_max = \"50ms\"\n{device42_extra}\n\
             [database]\npath = \"{}\"\n\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n{extra}\n",
            self.sim.base_url(),
            self.sim_config.client_key,
            secret.display(),
            self.db_path().display(),
        );
        let text = merge_sections(&text);
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("d42sync.toml")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("inventory.db")
    }

    pub fn settings(&self) -> Settings {
        config::load_with_env(&self.config_path(), &Default::default()).unwrap()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.settings().device42, Default::default()).unwrap()
    }

    pub async fn db(&self) -> Db {
        Db::open(&self.db_path()).await.unwrap()
    }

    /// A `d42sync` command with `--config` set and the environment cleaned of D42SYNC_ vars.
    pub fn command(&self, args: &[&str]) -> Command {
        command_with_config(&self.config_path(), args)
    }

    /// Runs `d42sync <args>` to completion off the async runtime.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

/// Merges repeated `[section]` headers so test extras can add keys to generated sections.
fn merge_sections(text: &str) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut sections: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            current = t.to_string();
            if !sections.contains_key(&current) {
                order.push(current.clone());
                sections.insert(current.clone(), Vec::new());
            }
        } else if !t.is_empty() {
            let lines = sections.entry(current.clone()).or_default();
            // A later `key = value` replaces an earlier one, so extras can override defaults.
            let key = t.split('=').next().unwrap_or("").trim().to_string();
            lines.retain(|l| l.split('=').next().unwrap_or("").trim() != key);
            lines.push(line.to_string());
            if !order.contains(&current) {
                order.insert(0, current.clone());
            }
        }
    }
    let mut out = String::new();
    for s in order {
        if !s.is_empty() {
            out.push_str(&s);
            out.push('\n');
        }
        for l in &sections[&s] {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(device_id, raw)` of every stored device in id order.
pub async fn stored_devices(db: &Db) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT device_id, raw FROM devices ORDER BY device_id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// An ordered checksum of `devices`: count and a hash over (id, raw, last_changed).
pub async fn devices_checksum(db_path: &Path) -> (i64, u64) {
    let db = Db::open_unmigrated(db_path).await.unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT device_id, raw FROM devices ORDER BY device_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    db.close().await;
    checksum(&rows)
}

/// Count and hash of `(id, raw)` rows.
pub fn checksum(rows: &[(i64, String)]) -> (i64, u64) {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (id, raw) in rows {
        h.update(&id.to_le_bytes());
        h.update(raw.as_bytes());
    }
    (rows.len() as i64, h.digest())
}

/// `(status, error)` of the latest run of `job`.
pub async fn last_run(db: &Db, job: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, error FROM sync_runs WHERE job = ? ORDER BY id DESC LIMIT 1")
        .bind(job)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// JSON log lines of a captured stderr at `level` ("ERROR", "WARN", ...).
pub fn log_lines<'a>(stderr: &'a str, level: &str) -> Vec<&'a str> {
    let needle = format!("\"level\":\"{level}\"");
    stderr.lines().filter(|l| l.contains(&needle)).collect()
}

/// The integer `field` of each JSON log line at `level` whose message is `message`, in order.
pub fn logged_numbers(stderr: &str, level: &str, message: &str, field: &str) -> Vec<u64> {
    log_lines(stderr, level)
        .into_iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == message)
        .filter_map(|l| l[field].as_u64())
        .collect()
}

/// Runs a prepared command to completion off the async runtime.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The single integer `sql` answers (a `SELECT count(*) ...`), on a connection of its own.
pub async fn count(env: &TestEnv, sql: &str) -> i64 {
    let db = env.db().await;
    let n = sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap();
    db.close().await;
    n
}

/// Row counts grouped by the first column of `sql` (a `SELECT x, count(*) ... GROUP BY x`).
pub async fn grouped_counts(env: &TestEnv, sql: &str) -> std::collections::BTreeMap<String, i64> {
    let db = env.db().await;
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(&db.pool).await.unwrap();
    db.close().await;
    rows.into_iter().collect()
}

/// A `d42sync --config <config> <args>` command, the environment cleaned of D42SYNC_ vars and
/// of systemd's.
pub fn command_with_config(config: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(config).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("D42SYNC_")
            || k == "NOTIFY_SOCKET"
            || k == "WATCHDOG_USEC"
            || k == "CREDENTIALS_DIRECTORY"
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &std::process::Child) {
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Waits for the child to exit, at most `limit` (then kills it); its exit code.
pub async fn wait_exit(child: &mut std::process::Child, limit: std::time::Duration) -> Option<i32> {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits (at most 10 s) until the daemon of `env` listens on its control socket; the socket's path.
pub async fn wait_for_control_socket(env: &TestEnv) -> String {
    let socket = format!("{}.sock", env.db_path().display());
    let started = std::time::Instant::now();
    while !Path::new(&socket).exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no control socket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    socket
}

/// Runs `d42sync <args>` (a pull), which must succeed; its `pull finished` INFO line.
pub async fn pull_finished(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let out = env.run(args).await;
    let stderr = text(&out).1;
    assert!(out.status.success(), "{stderr}");
    let line = log_lines(&stderr, "INFO")
        .into_iter()
        .find(|l| l.contains("pull finished"))
        .unwrap_or_else(|| panic!("no pull finished line: {stderr}"));
    serde_json::from_str(line).unwrap()
}
