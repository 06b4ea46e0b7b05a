use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// A temp dir with a config file and a 0600 secret file next to it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(extra: &str) -> Self {
        Self::with_device42("", extra)
    }

    /// Like [`Fixture::new`] with extra `[device42]` keys.
    fn with_device42(device42_extra: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret_key");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "[device42]\nbase_url = \"https://d42.example.com\"\nclient_key = \"ck\"\nsecret_key_file = \"{}\"\n{device42_extra}\n[database]\npath = \"{}\"\n{extra}",
            secret.display(),
            dir.path().join("inventory.db").display()
        );
        std::fs::write(dir.path().join("d42sync.toml"), text).unwrap();
        Self { dir }
    }

    fn load(&self, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_with_env(&self.dir.path().join("d42sync.toml"), &env)
    }
}

#[test]
fn defaults_match_the_spec() {
    let s = Fixture::new("").load(&[]).unwrap();
    assert_eq!(s.devices.schedule.expr, "0 */15 * * * *");
    assert_eq!(s.devices.page_size, 1000);
    assert_eq!(s.devices.concurrency, 4);
    assert_eq!(s.devices.max_delete_fraction, 0.5);
    assert_eq!(s.buildings.max_attempts, 10);
    assert_eq!(s.buildings.retry_base, Duration::from_secs(2));
    assert_eq!(s.device42.request_timeout, Duration::from_secs(60));
    assert_eq!(s.device42.breaker_failures, 3);
    assert_eq!(s.device42.breaker_probe_interval, Duration::from_secs(60));
    assert_eq!(s.log.format, LogFormat::Json);
    assert!(s.metrics.listen.is_none());
}

#[test]
fn the_environment_overrides_the_file() {
    let f = Fixture::new("[devices]\npage_size = 500\n");
    let s = f
        .load(&[
            ("D42SYNC_DEVICE42__BASE_URL", "https://other.example.com"),
            ("D42SYNC_DEVICES__PAGE_SIZE", "250"),
            ("D42SYNC_DEVICES__INCLUDE_COLS", "notes,tags"),
            ("D42SYNC_CONFIG", "/ignored/path.toml"),
        ])
        .unwrap();
    assert_eq!(s.device42.base_url.host_str(), Some("other.example.com"));
    assert_eq!(s.devices.page_size, 250);
    assert_eq!(s.devices.include_cols, vec!["notes", "tags"]);
}

#[test]
fn five_field_cron_gets_a_seconds_field() {
    let f = Fixture::new("[buildings]\nschedule = \"*/5 * * * *\"\n");
    assert_eq!(
        f.load(&[]).unwrap().buildings.schedule.expr,
        "0 */5 * * * *"
    );
}

#[test]
fn include_cols_defaults_to_the_columns_that_fill_every_typed_column() {
    let s = Fixture::new("").load(&[]).unwrap();
    assert_eq!(s.devices.include_cols, DEFAULT_INCLUDE_COLS);
    for column in [
        "in_service",
        "service_level",
        "customer",
        "hardware",
        "os_name",
        "os_version",
        "os_version_no",
        "last_updated",
        "tags",
        "custom_fields",
        "aliases",
        "notes",
    ] {
        assert!(
            s.devices.include_cols.iter().any(|c| c == column),
            "{column} is asked for by default"
        );
    }
    let none = Fixture::new("[devices]\ninclude_cols = []\n")
        .load(&[])
        .unwrap();
    assert!(
        none.devices.include_cols.is_empty(),
        "an empty list asks for brief items"
    );
}

#[test]
fn include_cols_in_the_file_may_be_one_string_of_names_separated_by_commas() {
    let s = Fixture::new("[devices]\ninclude_cols = \"notes, tags\"\n")
        .load(&[])
        .unwrap();
    assert_eq!(s.devices.include_cols, vec!["notes", "tags"]);
    let err = Fixture::new("[devices]\ninclude_cols = 5\n")
        .load(&[])
        .unwrap_err();
    assert_eq!(err.key, "devices.include_cols", "{err}");
}

#[test]
fn include_cols_names_are_non_empty_and_hold_no_comma() {
    for extra in [
        "[devices]\ninclude_cols = [\"notes\", \"\"]\n",
        "[devices]\ninclude_cols = [\"notes, tags\"]\n",
        "[devices]\ninclude_cols = [\"notes,tags\"]\n",
    ] {
        let err = Fixture::new(extra).load(&[]).unwrap_err();
        assert_eq!(err.key, "devices.include_cols", "{extra}: {err}");
    }
    let err = Fixture::new("")
        .load(&[("D42SYNC_DEVICES__INCLUDE_COLS", "notes,,tags")])
        .unwrap_err();
    assert_eq!(err.key, "devices.include_cols", "{err}");
}

#[test]
fn the_example_config_lists_the_default_include_cols() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d42sync.example.toml"),
    )
    .unwrap();
    let example = Config::builder()
        .add_source(File::from_str(&example, FileFormat::Toml))
        .build()
        .unwrap();
    let listed: Vec<String> = example.get("devices.include_cols").unwrap();
    assert_eq!(listed, DEFAULT_INCLUDE_COLS);
}

#[test]
fn each_bad_value_is_reported_by_its_key() {
    let cases = [
        ("[devices]\nschedule = \"every day\"\n", "devices.schedule"),
        ("[devices]\npage_size = 0\n", "devices.page_size"),
        (
            "[devices]\nmax_delete_fraction = 1.5\n",
            "devices.max_delete_fraction",
        ),
        ("[devices]\nkeep_changes = \"0s\"\n", "devices.keep_changes"),
        ("[devices]\nfull_every = \"0s\"\n", "devices.full_every"),
        ("[devices]\nendpoint = \"devices\"\n", "devices.endpoint"),
        (
            "[buildings]\nretry_base = \"2 fortnights\"\n",
            "buildings.retry_base",
        ),
        (
            "[buildings]\nmax_attempts = \"ten\"\n",
            "buildings.max_attempts",
        ),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        ("[metrics]\nlisten = \"nowhere\"\n", "metrics.listen"),
        ("[devices]\npage_sise = 10\n", "devices.page_sise"),
        ("[surprise]\nx = 1\n", "surprise"),
    ];
    for (extra, key) in cases {
        let err = Fixture::new(extra).load(&[]).unwrap_err();
        assert_eq!(err.key, key, "config {extra:?} gave {err}");
    }
}

#[test]
fn breaker_settings_are_checked_by_key() {
    let f = Fixture::new("");
    for (var, value, key) in [
        (
            "D42SYNC_DEVICE42__BREAKER_PROBE_INTERVAL",
            "0s",
            "device42.breaker_probe_interval",
        ),
        (
            "D42SYNC_DEVICE42__BREAKER_FAILURES",
            "-1",
            "device42.breaker_failures",
        ),
    ] {
        let err = f.load(&[(var, value)]).unwrap_err();
        assert_eq!(err.key, key, "{var}={value} gave {err}");
    }
    let off = f
        .load(&[("D42SYNC_DEVICE42__BREAKER_FAILURES", "0")])
        .unwrap();
    assert_eq!(off.device42.breaker_failures, 0, "0 turns the breaker off");
}

#[test]
fn an_invalid_url_is_refused() {
    let err = Fixture::new("")
        .load(&[("D42SYNC_DEVICE42__BASE_URL", "not a url")])
        .unwrap_err();
    assert_eq!(err.key, "device42.base_url");
}

#[test]
fn a_missing_database_directory_is_refused() {
    let err = Fixture::new("")
        .load(&[("D42SYNC_DATABASE__PATH", "/nonexistent/dir/inventory.db")])
        .unwrap_err();
    assert_eq!(err.key, "database.path");
}

/// The error `SecretKey::get` gives for the fixture's secret file at `mode`, if any.
fn secret_error_at_mode(mode: u32) -> Option<ConfigError> {
    let f = Fixture::new("");
    let secret = f.dir.path().join("secret_key");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
    let s = f
        .load(&[])
        .expect("a secret's mode is no reason to refuse the whole config");
    s.device42.secret_key.get().err()
}

#[test]
fn a_secret_file_readable_by_others_is_refused_when_the_secret_is_needed() {
    for mode in [0o644, 0o604, 0o660, 0o606] {
        let err = secret_error_at_mode(mode).unwrap_or_else(|| panic!("mode {mode:o} accepted"));
        assert_eq!(err.key, "device42.secret_key_file");
        assert!(err.message.contains("accessible by others"), "{err}");
    }
}

#[test]
fn a_secret_file_readable_by_its_group_only_is_accepted() {
    assert!(secret_error_at_mode(0o640).is_none());
    assert!(secret_error_at_mode(0o600).is_none());
    assert!(secret_error_at_mode(0o400).is_none());
}

#[test]
fn a_missing_secret_fails_only_the_commands_that_need_it() {
    let f = Fixture::new("");
    std::fs::remove_file(f.dir.path().join("secret_key")).unwrap();
    let s = f.load(&[]).expect("settings load without the secret");
    let err = s.device42.secret_key.get().unwrap_err();
    assert_eq!(err.key, "device42.secret_key_file");
    assert!(err.message.contains("not found"), "{err}");
}

#[test]
fn the_secret_never_comes_from_the_environment() {
    let err = Fixture::new("")
        .load(&[("D42SYNC_DEVICE42__SECRET_KEY", "x")])
        .unwrap_err();
    assert_eq!(err.key, "device42.secret_key");
}

#[test]
fn systemd_credentials_supply_the_secret_when_no_file_is_set() {
    let f = Fixture::new("");
    let text = std::fs::read_to_string(f.dir.path().join("d42sync.toml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("secret_key_file"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(f.dir.path().join("d42sync.toml"), text).unwrap();
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("secret_key"), "from-credentials\n").unwrap();

    let s = f
        .load(&[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())])
        .unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(s.device42.secret_key.get().unwrap()),
        "from-credentials"
    );

    let err = f.load(&[]).unwrap().device42.secret_key.get().unwrap_err();
    assert_eq!(err.key, "device42.secret_key_file");
}

#[test]
fn a_credential_handed_over_by_systemd_wins_over_the_secret_file() {
    let f = Fixture::new("");
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("secret_key"), "from-credentials\n").unwrap();

    let s = f
        .load(&[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())])
        .unwrap();

    assert_eq!(
        secrecy::ExposeSecret::expose_secret(s.device42.secret_key.get().unwrap()),
        "from-credentials"
    );
}

#[test]
fn debug_output_redacts_the_keys() {
    let s = Fixture::new("").load(&[]).unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("s3cret") && !dbg.contains("\"ck\""), "{dbg}");
    assert!(dbg.contains("REDACTED"));
}

#[test]
fn a_base_url_carrying_credentials_is_refused_without_quoting_them() {
    for url in [
        "https://admin:hunter2@d42.example.com",
        "https://admin@d42.example.com",
        "http://admin:hunter2@127.0.0.1:8042",
    ] {
        let Err(err) = Fixture::new("").load(&[("D42SYNC_DEVICE42__BASE_URL", url)]) else {
            panic!("{url} was accepted");
        };
        assert_eq!(err.key, "device42.base_url", "{url}");
        let message = err.to_string();
        assert!(
            !message.contains("hunter2") && !message.contains("admin"),
            "{message}"
        );
    }
}

#[test]
fn plain_http_to_anything_but_loopback_is_refused() {
    for url in [
        "http://d42.example.com",
        "http://10.1.2.3:8080",
        "http://[2001:db8::1]",
        "http://0.0.0.0",
        "http://localhost.example.com",
    ] {
        let Err(err) = Fixture::new("").load(&[("D42SYNC_DEVICE42__BASE_URL", url)]) else {
            panic!("{url} was accepted");
        };
        assert_eq!(err.key, "device42.base_url", "{url}");
        assert!(err.message.contains("https"), "{url}: {err}");
    }
}

#[test]
fn plain_http_to_loopback_is_allowed() {
    for url in [
        "http://127.0.0.1:8042",
        "http://127.8.9.10",
        "http://[::1]:8042",
        "http://localhost:8042",
        "http://LOCALHOST",
    ] {
        let s = Fixture::new("")
            .load(&[("D42SYNC_DEVICE42__BASE_URL", url)])
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(s.device42.base_url.scheme(), "http");
    }
}

#[test]
fn a_value_of_the_wrong_type_in_the_file_is_refused_not_converted() {
    let cases = [
        ("", "[devices]\npage_size = 0.6\n", "devices.page_size"),
        ("", "[devices]\npage_size = true\n", "devices.page_size"),
        ("", "[devices]\npage_size = \"500\"\n", "devices.page_size"),
        (
            "",
            "[devices]\nmax_delete_fraction = true\n",
            "devices.max_delete_fraction",
        ),
        ("", "[log]\nlevel = 3\n", "log.level"),
        ("", "[metrics]\nlisten = 9142\n", "metrics.listen"),
        (
            "insecure_skip_tls_verify = \"yes\"",
            "",
            "device42.insecure_skip_tls_verify",
        ),
        ("max_retries = 2.5", "", "device42.max_retries"),
    ];
    for (device42_extra, extra, key) in cases {
        let err = Fixture::with_device42(device42_extra, extra)
            .load(&[])
            .map(|_| ())
            .expect_err(&format!("{device42_extra}{extra} was accepted"));
        assert_eq!(err.key, key, "{device42_extra}{extra} gave {err}");
    }
}

#[test]
fn values_from_the_environment_are_parsed_into_the_type_of_their_setting() {
    let s = Fixture::new("")
        .load(&[
            ("D42SYNC_DEVICE42__INSECURE_SKIP_TLS_VERIFY", "true"),
            ("D42SYNC_DEVICE42__CLIENT_KEY", "12345"),
            ("D42SYNC_DEVICES__MAX_DELETE_FRACTION", "0.25"),
            ("D42SYNC_DEVICES__MAX_DRIFT_RETRIES", "7"),
            ("D42SYNC_DEVICES__KEEP_CHANGES", "1500ms"),
        ])
        .unwrap();
    assert!(s.device42.insecure_skip_tls_verify);
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&s.device42.client_key),
        "12345"
    );
    assert_eq!(s.devices.max_delete_fraction, 0.25);
    assert_eq!(s.devices.max_drift_retries, 7);
    assert_eq!(s.devices.keep_changes, Duration::from_millis(1500));
}

#[test]
fn an_error_from_the_environment_names_the_variable() {
    let f = Fixture::new("");
    for (var, value, key) in [
        ("D42SYNC_DEVICES__PAGE_SIZE", "0.6", "devices.page_size"),
        ("D42SYNC_DEVICES__CONCURRENCY", "0", "devices.concurrency"),
        ("D42SYNC_DEVICES__SURPRISE", "1", "devices.surprise"),
        ("D42SYNC_LOG__FORMAT", "xml", "log.format"),
        (
            "D42SYNC_DEVICE42__MAX_RETRIES",
            "many",
            "device42.max_retries",
        ),
    ] {
        let err = f.load(&[(var, value)]).map(|_| ()).unwrap_err();
        assert_eq!(err.key, key, "{var}={value} gave {err}");
        assert!(err.to_string().contains(var), "{var}={value} gave {err}");
    }
    let from_file = Fixture::new("[devices]\nconcurrency = 0\n")
        .load(&[])
        .map(|_| ())
        .unwrap_err();
    assert!(!from_file.to_string().contains("D42SYNC_"), "{from_file}");
}

#[test]
fn a_log_level_that_is_not_a_filter_is_refused() {
    for level in ["verbose", "inf", "d42sync=loud", "info,chatty"] {
        let err = Fixture::new(&format!("[log]\nlevel = \"{level}\"\n"))
            .load(&[])
            .map(|_| ())
            .expect_err(&format!("{level} was accepted"));
        assert_eq!(err.key, "log.level", "{level}: {err}");
    }
    for level in ["info", "WARN", "off", "d42sync=debug", "info,rustls=debug"] {
        let s = Fixture::new(&format!("[log]\nlevel = \"{level}\"\n"))
            .load(&[])
            .unwrap_or_else(|e| panic!("{level}: {e}"));
        assert_eq!(s.log.level, level);
    }
}

#[test]
fn every_duration_takes_a_unit_and_is_longer_than_zero() {
    let f = Fixture::new("");
    for var in [
        "D42SYNC_DEVICE42__CONNECT_TIMEOUT",
        "D42SYNC_DEVICE42__REQUEST_TIMEOUT",
        "D42SYNC_DEVICE42__RETRY_BASE",
        "D42SYNC_DEVICE42__RETRY_MAX",
        "D42SYNC_DEVICE42__MAX_RETRY_AFTER",
        "D42SYNC_DEVICE42__BREAKER_PROBE_INTERVAL",
        "D42SYNC_DEVICES__KEEP_CHANGES",
        "D42SYNC_BUILDINGS__RETRY_BASE",
        "D42SYNC_BUILDINGS__KEEP_DONE",
        "D42SYNC_BUILDINGS__STOP_GRACE",
    ] {
        assert!(f.load(&[(var, "90s")]).is_ok(), "{var}=90s");
        for bad in ["0s", "90", "soon"] {
            assert!(f.load(&[(var, bad)]).is_err(), "{var}={bad} was accepted");
        }
    }
}

#[test]
fn the_example_config_sets_every_key_to_its_default() {
    let f = Fixture::new("");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d42sync.example.toml");
    let secret = f.dir.path().join("secret_key");
    let database = f.dir.path().join("inventory.db");
    let env: HashMap<String, String> = [
        (
            "D42SYNC_DEVICE42__SECRET_KEY_FILE",
            secret.to_str().unwrap(),
        ),
        ("D42SYNC_DATABASE__PATH", database.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let shipped = load_with_env(&example, &env).unwrap();
    let defaults = f.load(&[]).unwrap();

    let shown = |s: &Settings| {
        let d = &s.device42;
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            (
                d.insecure_skip_tls_verify,
                d.connect_timeout,
                d.request_timeout
            ),
            (d.max_retries, d.retry_base, d.retry_max, d.max_retry_after),
            (
                d.max_page_bytes,
                d.breaker_failures,
                d.breaker_probe_interval
            ),
            (&s.devices, &s.buildings, &s.log, &s.metrics),
            d.ca_pem,
        )
    };
    assert_eq!(shown(&shipped), shown(&defaults));
    let raw = Config::builder()
        .add_source(File::from(example.as_path()))
        .build()
        .unwrap();
    let shipped_path: PathBuf = raw.get("database.path").unwrap();
    assert_eq!(shipped_path, DatabaseSettings::default().path);
}

#[test]
fn the_next_firing_falls_on_a_whole_second() {
    let schedule = super::Schedule::parse("0 */15 * * * *").unwrap();
    let after = chrono::DateTime::parse_from_rfc3339("2026-12-03T16:44:59.734Z")
        .unwrap()
        .to_utc();

    let next = schedule.next_after(after).unwrap();

    assert_eq!(crate::time::iso(next), "2026-12-03T16:45:00.000Z");
}
