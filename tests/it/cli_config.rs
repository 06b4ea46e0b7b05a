//! Configuration through the binary: exit code 78 naming the key, env overrides, secrets,
//! `check-config --connect`, `migrate`, usage errors.

use crate::helpers::{TestEnv, text};
use d42sim::SimConfig;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[tokio::test]
async fn each_bad_value_exits_78_naming_the_key_within_a_second() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let cases = [
        (
            "D42SYNC_DEVICE42__BASE_URL",
            "not a url",
            "device42.base_url",
        ),
        ("D42SYNC_DEVICES__SCHEDULE", "0 0 0 0", "devices.schedule"),
        (
            "D42SYNC_BUILDINGS__RETRY_BASE",
            "0s",
            "buildings.retry_base",
        ),
        ("D42SYNC_DEVICES__CONCURRENCY", "0", "devices.concurrency"),
        (
            "D42SYNC_DATABASE__PATH",
            "/nonexistent/dir/x.db",
            "database.path",
        ),
        ("D42SYNC_DEVICES__SURPRISE", "1", "devices.surprise"),
        (
            "D42SYNC_DEVICE42__SECRET_KEY",
            "from-env",
            "device42.secret_key",
        ),
    ];
    for (var, value, key) in cases {
        let mut cmd = env.command(&["run"]);
        cmd.env(var, value);
        let started = Instant::now();
        let out = crate::helpers::output(cmd).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(key),
            "{var}={value} should name {key}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{var}: took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_missing_config_file_exits_78() {
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(crate::helpers::bin())
            .args(["--config", "/nonexistent/d42sync.toml", "check-config"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out).1.contains("/nonexistent/d42sync.toml"));
}

#[tokio::test]
async fn the_example_config_is_valid_as_shipped() {
    // Only the paths differ from a real host: the secret file and the database.
    let env = TestEnv::start(SimConfig::default(), "").await;
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d42sync.example.toml");
    let mut cmd = crate::helpers::command_with_config(&example, &["check-config"]);
    cmd.env(
        "D42SYNC_DEVICE42__SECRET_KEY_FILE",
        env.dir.path().join("secret_key"),
    )
    .env("D42SYNC_DATABASE__PATH", env.db_path());
    let out = crate::helpers::output(cmd).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("config ok"), "{stdout}");
}

#[tokio::test]
async fn a_world_readable_secret_file_is_refused() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    std::fs::set_permissions(
        env.dir.path().join("secret_key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = env.run(&["check-config"]).await;
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out).1.contains("device42.secret_key_file"),
        "{}",
        text(&out).1
    );
}

#[tokio::test]
async fn the_environment_overrides_the_file_for_the_binary_too() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let mut cmd = env.command(&["check-config", "--connect"]);
    cmd.env("D42SYNC_DEVICE42__BASE_URL", "http://127.0.0.1:9");
    let out = crate::helpers::output(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "port 9 must be used and refuse: {:?}",
        text(&out)
    );
    assert!(text(&out).1.contains("cannot connect"), "{}", text(&out).1);
}

#[tokio::test]
async fn check_config_connect_obtains_a_token() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let out = env.run(&["check-config", "--connect"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("config ok") && stdout.contains("token obtained"),
        "{stdout}"
    );
    assert_eq!(env.sim.token_requests(), 1);
}

#[tokio::test]
async fn check_config_connect_with_bad_credentials_fails_once_without_retrying() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    std::fs::write(env.dir.path().join("secret_key"), "wrong-secret").unwrap();
    let out = env.run(&["check-config", "--connect"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("authentication failed"),
        "{}",
        text(&out).1
    );
    assert_eq!(env.sim.token_requests(), 1);
}

#[tokio::test]
async fn migrate_creates_the_four_tables_and_sqlite_users_can_enqueue() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let out = env.run(&["migrate"]).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let db = env.db().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for t in ["building_queue", "device_changes", "devices", "sync_runs"] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    db.close().await;
    // A reporting tool with nothing but the sqlite3 shell.
    let path = env.db_path();
    let shell = tokio::task::spawn_blocking(move || {
        // As docs/schema.md tells report writers: wait for a busy database, don't fail.
        std::process::Command::new("sqlite3")
            .args(["-cmd", ".timeout 5000"])
            .arg(&path)
            .arg("INSERT INTO building_queue (name, address) VALUES ('Head-office', 'NY'); SELECT status, attempts, created_at FROM building_queue;")
            .output()
    })
    .await
    .unwrap()
    .expect("the sqlite3 shell is installed (CI installs it)");
    let stdout = String::from_utf8_lossy(&shell.stdout);
    assert!(
        shell.status.success(),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    assert!(stdout.starts_with("pending|0|20"), "{stdout}");
}

#[tokio::test]
async fn a_usage_error_exits_2() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let out = env.run(&["pull", "--no-such-flag"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn commands_that_do_not_call_device42_need_no_secret() {
    // As an administrator's shell sees the packaged setup: the unit hands the secret over with
    // LoadCredential=, the config names none.
    let env = TestEnv::start(SimConfig::default(), "").await;
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    let config: String = config
        .lines()
        .filter(|l| !l.starts_with("secret_key_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(env.config_path(), config).unwrap();

    for args in [
        &["migrate"][..],
        &["enqueue-building", "--name", "HQ"],
        &["requeue", "--all-dead"],
        &["status"],
        &["status", "--json"],
        &["check-config"],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {:?}", text(&out));
    }
    let checked = env.run(&["check-config"]).await;
    assert!(
        text(&checked).0.contains("secret key not checked"),
        "{:?}",
        text(&checked)
    );

    for args in [
        &["pull"][..],
        &["push"],
        &["check-config", "--connect"],
        &["run"],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.status.code(), Some(78), "{args:?}: {:?}", text(&out));
        assert!(
            text(&out).1.contains("device42.secret_key_file"),
            "{args:?}"
        );
    }
    assert_eq!(env.sim.token_requests(), 0);
}

#[tokio::test]
async fn a_secret_file_readable_by_the_service_group_only_is_accepted() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    std::fs::set_permissions(
        env.dir.path().join("secret_key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let out = env.run(&["check-config", "--connect"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[tokio::test]
async fn credentials_in_clear_are_refused_at_config_check_with_exit_78() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    for url in [
        "https://report:pw-in-url@127.0.0.1:8443",
        "http://d42.example.com",
    ] {
        let mut cmd = env.command(&["check-config"]);
        cmd.env("D42SYNC_DEVICE42__BASE_URL", url);
        let out = crate::helpers::output(cmd).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{url}: {stderr}");
        assert!(stderr.contains("device42.base_url"), "{url}: {stderr}");
        assert!(!stderr.contains("pw-in-url"), "{url}: {stderr}");
    }
}

#[tokio::test]
async fn a_wrong_type_or_a_level_that_is_no_filter_exits_78_naming_the_key_and_the_variable() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    for (extra, key) in [
        ("[devices]\npage_size = 0.6\n", "devices.page_size"),
        ("[devices]\npage_size = true\n", "devices.page_size"),
    ] {
        env.write_config("", extra);
        let out = env.run(&["check-config"]).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{extra}: {stderr}");
        assert!(stderr.contains(key), "{extra}: {stderr}");
    }
    env.write_config("", "");
    for (var, value, key) in [
        ("D42SYNC_LOG__LEVEL", "verbose", "log.level"),
        ("D42SYNC_DEVICES__PAGE_SIZE", "0.6", "devices.page_size"),
    ] {
        let mut cmd = env.command(&["check-config"]);
        cmd.env(var, value);
        let out = crate::helpers::output(cmd).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(var),
            "{var}={value}: {stderr}"
        );
    }
}

/// `cmd` with a system trust store that holds no certificate: rustls-native-certs reads
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` instead of the platform's store when they are set.
fn with_empty_trust_store(env: &TestEnv, mut cmd: std::process::Command) -> std::process::Command {
    let file = env.dir.path().join("empty-ca.pem");
    let dir = env.dir.path().join("empty-certs");
    std::fs::write(&file, "").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    cmd.env("SSL_CERT_FILE", file).env("SSL_CERT_DIR", dir);
    cmd
}

#[tokio::test]
async fn an_empty_trust_store_for_https_exits_78_naming_ca_file_before_touching_the_database() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    env.write_config("base_url = \"https://127.0.0.1:9\"", "");
    for command in ["run", "pull", "push"] {
        let cmd = with_empty_trust_store(&env, env.command(&[command]));
        let out = crate::helpers::output(cmd).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{command}: {stderr}");
        assert!(stderr.contains("device42.ca_file"), "{command}: {stderr}");
        let touched: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("inventory.db"))
            .collect();
        assert!(touched.is_empty(), "{command} created {touched:?}");
    }
}

#[tokio::test]
async fn an_http_loopback_appliance_needs_no_trust_store() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let cmd = with_empty_trust_store(&env, env.command(&["pull"]));
    let out = crate::helpers::output(cmd).await;
    assert!(out.status.success(), "{}", text(&out).1);
    let stored = crate::helpers::count(&env, "SELECT count(*) FROM devices").await;
    assert_eq!(stored, env.sim_config.devices as i64);
}
