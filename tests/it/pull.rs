//! The device pull against the simulator: exact mirror, no rewrites, change log, drift, faults,
//! mass-deletion guard, reader consistency, and SIGKILL at random moments.

use crate::helpers::{
    TestEnv, checksum, count, devices_checksum, last_run, log_lines, logged_numbers, output,
    stored_devices, text,
};
use d42sim::{Drift, Fault, FaultRule, SimConfig};
use d42sync::jobs::pull::{self, PullOptions};
use sqlx::Connection;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DEVICES: &str = "/api/2.0/devices/";

fn sim(devices: usize) -> SimConfig {
    SimConfig {
        devices,
        ..SimConfig::default()
    }
}

/// Pulls in-process; `Ok` outcome name or the error text.
async fn pull(env: &TestEnv) -> Result<&'static str, String> {
    let s = env.settings();
    let db = env.db().await;
    let r = pull::run(
        &db,
        &env.client(),
        &s.devices,
        PullOptions::default(),
        &CancellationToken::new(),
    )
    .await;
    db.close().await;
    r.map(|r| r.outcome.as_str()).map_err(|e| format!("{e:#}"))
}

fn expected(env: &TestEnv) -> Vec<(i64, String)> {
    let s = env.settings();
    env.sim
        .rendered_devices(&s.devices.endpoint, &s.devices.include_cols)
}

/// Rows whose typed columns do not match what their raw record says.
async fn typed_columns_disagreeing_with_raw(env: &TestEnv) -> i64 {
    let db = env.db().await;
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM devices WHERE name IS NOT json_extract(raw, '$.name') \
         OR type IS NOT json_extract(raw, '$.type') OR serial_no IS NOT json_extract(raw, '$.serial_no') \
         OR os_name IS NOT json_extract(raw, '$.os_name') OR in_service IS NOT json_extract(raw, '$.in_service')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    db.close().await;
    n
}

async fn change_counts(env: &TestEnv) -> std::collections::BTreeMap<String, i64> {
    crate::helpers::grouped_counts(
        env,
        "SELECT change, count(*) FROM device_changes GROUP BY change",
    )
    .await
}

#[tokio::test]
async fn a_pull_mirrors_ten_thousand_devices_exactly_and_a_second_pull_writes_nothing() {
    let env = TestEnv::start(
        sim(10_000),
        "[devices]\ninclude_cols = [\"notes\", \"tags\", \"custom_fields\", \"os_name\", \"in_service\"]",
    )
    .await;

    assert_eq!(pull(&env).await, Ok("ok"));
    let db = env.db().await;
    let first = stored_devices(&db).await;
    assert_eq!(first.len(), 10_000);
    assert!(
        first == expected(&env),
        "ids and raw records equal the simulator's, byte for byte"
    );
    let stamps: Vec<(i64, String)> =
        sqlx::query_as("SELECT device_id, last_changed FROM devices ORDER BY device_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(change_counts(&env).await.get("added"), Some(&10_000));
    assert_eq!(typed_columns_disagreeing_with_raw(&env).await, 0);

    assert_eq!(pull(&env).await, Ok("ok"));
    let db = env.db().await;
    let again: Vec<(i64, String)> =
        sqlx::query_as("SELECT device_id, last_changed FROM devices ORDER BY device_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let counts: (i64, i64, i64, i64) =
        sqlx::query_as("SELECT items, added, changed, removed FROM sync_runs WHERE job = 'pull_devices' ORDER BY id DESC LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(again, stamps, "no device row was rewritten");
    assert_eq!(counts, (10_000, 0, 0, 0));
    assert_eq!(
        change_counts(&env).await.values().sum::<i64>(),
        10_000,
        "no change row was added"
    );
}

#[tokio::test]
async fn upstream_edits_additions_and_deletions_appear_in_the_change_log() {
    let env = TestEnv::start(sim(500), "").await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let ids = env.sim.device_ids();
    assert!(env.sim.edit_device(ids[10]) && env.sim.edit_device(ids[20]));
    assert!(env.sim.remove_device(ids[30]));
    let added = env.sim.add_devices(3);

    assert_eq!(pull(&env).await, Ok("ok"));

    let db = env.db().await;
    assert_eq!(typed_columns_disagreeing_with_raw(&env).await, 0);
    assert!(
        stored_devices(&db).await == expected(&env),
        "equal to the simulator after the changes"
    );
    let run: i64 = sqlx::query_scalar("SELECT max(id) FROM sync_runs")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let changes: Vec<(i64, String)> = sqlx::query_as(
        "SELECT device_id, change FROM device_changes WHERE run_id = ? ORDER BY device_id",
    )
    .bind(run)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let removed_raw: String =
        sqlx::query_scalar("SELECT raw FROM device_changes WHERE change = 'removed'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    db.close().await;
    let mut want = vec![
        (ids[10], "changed".to_string()),
        (ids[20], "changed".to_string()),
        (ids[30], "removed".to_string()),
    ];
    want.extend(added.iter().map(|id| (*id, "added".to_string())));
    want.sort();
    assert_eq!(changes, want);
    assert!(
        removed_raw.contains(&format!("\"device_id\":{}", ids[30]))
            || removed_raw.contains(&format!("\"device_id\": {}", ids[30]))
    );
}

#[tokio::test]
async fn a_drifting_inventory_never_yields_duplicates_or_a_wrong_set() {
    for (inserts, deletes) in [(0, 2), (2, 0), (1, 1)] {
        let env = TestEnv::start(sim(2_000), "[devices]\npage_size = 200\nconcurrency = 1").await;
        assert_eq!(pull(&env).await, Ok("ok"));
        let before: BTreeSet<i64> = env.sim.device_ids().into_iter().collect();
        env.sim.set_drift(Drift {
            inserts_per_page: inserts,
            deletes_per_page: deletes,
            pages: 4,
        });

        let drifted = pull(&env).await;
        let db = env.db().await;
        let stored: Vec<i64> = stored_devices(&db).await.iter().map(|r| r.0).collect();
        db.close().await;
        let after: BTreeSet<i64> = env.sim.device_ids().into_iter().collect();
        let settled = pull(&env).await;

        let case = format!("({inserts},{deletes})");
        assert_eq!(drifted, Ok("ok"), "{case}: the shifted range is repaired");
        let set: BTreeSet<i64> = stored.iter().copied().collect();
        assert_eq!(set.len(), stored.len(), "{case}: no duplicate device_id");
        assert!(
            before.intersection(&after).all(|id| set.contains(id)),
            "{case}: every device that existed throughout"
        );
        assert!(
            set.iter()
                .all(|id| before.contains(id) || after.contains(id)),
            "{case}: only devices that existed"
        );
        assert_eq!(settled, Ok("ok"), "{case}");
        let db = env.db().await;
        let stored = stored_devices(&db).await;
        db.close().await;
        assert!(
            stored == expected(&env),
            "{case}: the next pull stores the final upstream records"
        );
    }
}

#[tokio::test]
async fn a_pull_that_never_sees_a_consistent_inventory_fails_and_changes_nothing() {
    let env = TestEnv::start(
        sim(200),
        "[devices]\npage_size = 100\nconcurrency = 1\nmax_drift_retries = 1",
    )
    .await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let before = devices_checksum(&env.db_path()).await;
    // A page's worth of devices more after every request: the listing's end is never reached.
    env.sim.set_drift(Drift {
        inserts_per_page: 100,
        deletes_per_page: 1,
        pages: 1_000,
    });

    let err = pull(&env).await.unwrap_err();

    assert!(
        err.contains("inventory changed while paging") && err.contains("2 attempts"),
        "{err}"
    );
    assert_eq!(devices_checksum(&env.db_path()).await, before);
    assert_eq!(last_run(&env.db().await, "pull_devices").await.0, "failed");
}

#[tokio::test]
async fn each_fault_either_recovers_or_fails_with_nothing_applied() {
    // (fault, times, recovers): transient faults are retried; persistent or malformed ones fail.
    let cases = [
        (Fault::Status(500), 2, true),
        (Fault::Truncate, 2, true),
        (Fault::Reset, 2, true),
        (Fault::Status(500), 100, false),
        (Fault::HtmlPage(200), 1, false),
        (Fault::MalformedJson, 1, false),
        (Fault::WrongIdType, 1, false),
        (Fault::MissingId, 1, false),
        (Fault::Oversize(2 << 20), 1, false),
    ];
    for (fault, times, recovers) in cases {
        let env = TestEnv::start_with(
            sim(300),
            "max_retries = 3\nmax_page_bytes = 1048576",
            "[devices]\npage_size = 100\nconcurrency = 1",
        )
        .await;
        assert_eq!(pull(&env).await, Ok("ok"));
        for id in env.sim.device_ids().into_iter().take(5) {
            env.sim.edit_device(id);
        }
        let before = devices_checksum(&env.db_path()).await;
        env.sim.inject(FaultRule {
            path_prefix: DEVICES.into(),
            method: None,
            fault: fault.clone(),
            times,
            skip: 1,
        });

        let out = env.run(&["pull"]).await;

        let (_, stderr) = text(&out);
        let after = devices_checksum(&env.db_path()).await;
        let db = env.db().await;
        let (status, error) = last_run(&db, "pull_devices").await;
        db.close().await;
        if recovers {
            assert!(out.status.success(), "{fault:?}: {stderr}");
            assert_eq!(after, checksum(&expected(&env)), "{fault:?}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{fault:?}: {stderr}");
            assert_eq!(after, before, "{fault:?}: devices unchanged");
            assert_eq!(status, "failed", "{fault:?}");
            let errors = log_lines(&stderr, "ERROR");
            assert_eq!(
                errors.len(),
                1,
                "{fault:?}: exactly one ERROR line: {stderr}"
            );
            // The second page: pages overlap by one item, so it starts at offset 99.
            assert!(
                errors[0].contains("offset 99"),
                "{fault:?}: names the offset: {}",
                errors[0]
            );
            assert!(error.unwrap().contains("offset 99"));
        }
    }
}

#[tokio::test]
async fn no_more_pages_are_in_flight_than_devices_concurrency() {
    let env = TestEnv::start(sim(3_000), "[devices]\npage_size = 100\nconcurrency = 3").await;
    let delay = Duration::from_millis(150);
    env.sim.set_page_delay(delay);
    assert_eq!(pull(&env).await, Ok("ok"));
    // Each page is answered `delay` after it arrives, so pages that arrive closer together than
    // that were in flight at once.
    let arrivals: Vec<_> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == DEVICES)
        .map(|r| r.at)
        .collect();
    assert!(arrivals.len() > 30, "{} pages", arrivals.len());
    let window = delay - Duration::from_millis(30);
    let most_at_once = arrivals
        .iter()
        .map(|first| {
            arrivals
                .iter()
                .filter(|at| **at >= *first && at.duration_since(*first) < window)
                .count()
        })
        .max();
    let ms: Vec<u128> = arrivals
        .iter()
        .map(|at| at.duration_since(arrivals[0]).as_millis())
        .collect();
    assert_eq!(most_at_once, Some(3), "arrivals (ms): {ms:?}");
}

/// 3 000 devices in pages of 100 with 8 in flight: thirty pages, enough for the window and
/// the pages sent with the first to show. Records of one column beside the brief fields.
async fn thirty_pages_eight_in_flight() -> TestEnv {
    TestEnv::start(
        sim(3_000),
        "[devices]\npage_size = 100\nconcurrency = 8\ninclude_cols = \"in_service\"",
    )
    .await
}

#[tokio::test]
async fn four_record_pages_go_with_the_first_the_round_follows_a_slow_one_id_pages_take_every_slot()
{
    let env = thirty_pages_eight_in_flight().await;
    let delay = Duration::from_millis(500);
    env.sim.set_page_delay(delay);
    assert_eq!(pull(&env).await, Ok("ok"), "a full pull of records");
    assert_eq!(
        pull(&env).await,
        Ok("ok"),
        "an incremental pull: the id list, then the records edited since yesterday"
    );
    // Each page is answered `delay` after it arrives, and no page past those sent early can be
    // planned before the first one is answered: the pages of a listing arriving within `delay`
    // of its first went out with it, and those within `at_once` at the same time.
    let at_once = Duration::from_millis(80);
    let before_the_answer = delay - Duration::from_millis(50);
    let sent_with_the_first = |listing: fn(&str) -> bool, within: Duration| {
        let arrivals: Vec<_> = env
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.path == DEVICES && listing(&r.query))
            .map(|r| r.at)
            .collect();
        assert!(!arrivals.is_empty(), "no such page");
        arrivals
            .iter()
            .filter(|at| at.duration_since(arrivals[0]) < within)
            .count()
    };
    let every_record = |q: &str| q.contains("include_cols") && !q.contains("last_edited_gt");
    let edited = |q: &str| q.contains("last_edited_gt");
    let ids = |q: &str| !q.contains("include_cols");
    assert_eq!(
        sent_with_the_first(every_record, at_once),
        4,
        "every record"
    );
    assert_eq!(
        sent_with_the_first(every_record, before_the_answer),
        8,
        "every record, the first page being slow"
    );
    // A listing of a day's edits is a page or two, usually: no more pages past its end.
    assert_eq!(
        sent_with_the_first(edited, before_the_answer),
        4,
        "records edited since yesterday"
    );
    assert_eq!(sent_with_the_first(ids, at_once), 8, "pages of ids");
}

#[tokio::test]
async fn a_pull_whose_stage_is_slower_than_its_pages_holds_fewer_of_them() {
    let env = thirty_pages_eight_in_flight().await;
    // Each planned page's stage takes 50 ms more; the simulator answers at once.
    let out = output({
        let mut cmd = env.command(&["pull"]);
        cmd.env("D42SYNC_FAILPOINT", "pull.slow_stage")
            .env("D42SYNC_LOG__LEVEL", "info,d42sync=trace");
        cmd
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let windows = logged_numbers(&stderr, "TRACE", "page staged", "window");
    assert!(windows.len() > 30, "{} pages staged", windows.len());
    // The lookahead (8 in flight and 2 received) until the stage and fetch times are known, then
    // the pages that cover one page's fetch plus the one staged: far fewer while the stage is slow.
    assert_eq!(windows[0], 10, "{windows:?}");
    assert!(windows[2..].iter().all(|w| *w < 8), "{windows:?}");
}

/// The `offset` of each device page the simulator was asked for, in the order asked.
fn requested_offsets(env: &TestEnv) -> Vec<u64> {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.path == DEVICES)
        .filter_map(|r| {
            r.query
                .split('&')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

#[tokio::test]
async fn a_server_capping_limit_below_page_size_is_paged_at_its_cap() {
    // "Enforce API GET Limits" at 40 while 100 are asked: the pages sent with the first one, at
    // offsets planned for pages of 100, are thrown away and the rest go by 40.
    let env = TestEnv::start(
        SimConfig {
            max_limit: 40,
            ..sim(1_000)
        },
        "[devices]\npage_size = 100\nconcurrency = 4\ninclude_cols = \"in_service\"",
    )
    .await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let db = env.db().await;
    assert!(
        stored_devices(&db).await == expected(&env),
        "ids and raw records equal the simulator's"
    );
    db.close().await;
    let offsets: BTreeSet<u64> = requested_offsets(&env).into_iter().collect();
    // Pages of 40 that overlap by one, up to the one holding the last device, and the three
    // sent early at offsets 99, 198 and 297.
    let mut expected: BTreeSet<u64> = (0..)
        .map(|k| k * 39)
        .take_while(|o| o + 1 < 1_000)
        .collect();
    expected.extend([99, 198, 297]);
    assert_eq!(offsets, expected);
}

#[tokio::test]
async fn with_one_page_in_flight_pages_are_requested_in_offset_order() {
    // Records of one column beside the brief fields: the order of the requests is what counts.
    let env = TestEnv::start(
        sim(10_000),
        "[devices]\npage_size = 100\nconcurrency = 1\ninclude_cols = \"in_service\"",
    )
    .await;
    // The binary, on its multi-threaded runtime, where tasks start in no particular order.
    let out = env.run(&["pull"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let offsets = requested_offsets(&env);
    // Pages of 100 that overlap by one: 0, 99, 198, ... up to the one holding the last device.
    let expected: Vec<u64> = (0..)
        .map(|k| k * 99)
        .take_while(|o| o + 1 < 10_000)
        .collect();
    assert_eq!(offsets, expected);
}

#[tokio::test]
async fn a_v2_pull_asks_for_the_default_columns_and_blanks_as_null() {
    let env = TestEnv::start(sim(50), "").await;

    assert_eq!(pull(&env).await, Ok("ok"));

    let pages: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == DEVICES)
        .collect();
    assert!(!pages.is_empty());
    for page in pages {
        assert_eq!(
            page.query_param("include_cols").as_deref(),
            Some(d42sync::config::DEFAULT_INCLUDE_COLS.join(",").as_str())
        );
        assert_eq!(page.query_param("blankasnull").as_deref(), Some("yes"));
    }
}

#[tokio::test]
async fn a_v1_pull_asks_for_blanks_as_null_and_no_columns() {
    let v1 = "/api/1.0/devices/all/";
    let env = TestEnv::start(sim(50), &format!("[devices]\nendpoint = \"{v1}\"")).await;

    assert_eq!(pull(&env).await, Ok("ok"));

    let pages: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == v1)
        .collect();
    assert!(!pages.is_empty());
    for page in pages {
        assert_eq!(page.query_param("include_cols"), None, "{}", page.query);
        assert_eq!(page.query_param("blankasnull").as_deref(), Some("yes"));
    }
}

#[tokio::test]
async fn a_token_refused_with_the_permission_500_mid_pull_is_renewed_once_and_the_pull_completes() {
    let env = TestEnv::start(sim(2_000), "[devices]\npage_size = 100\nconcurrency = 2").await;
    env.sim.inject(FaultRule {
        path_prefix: DEVICES.into(),
        method: None,
        fault: Fault::PermissionDenied,
        times: 1,
        skip: 7,
    });

    assert_eq!(pull(&env).await, Ok("ok"));

    assert_eq!(env.sim.token_requests(), 2, "exactly one new token");
    let refused = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == DEVICES && r.status == 500)
        .count();
    assert_eq!(refused, 1);
    assert_eq!(count(&env, "SELECT count(*) FROM devices").await, 2_000);
}

#[tokio::test]
async fn token_expiry_mid_pull_recovers_without_refetching_pages() {
    let env = TestEnv::start(sim(2_000), "[devices]\npage_size = 100\nconcurrency = 2").await;
    env.sim.inject(FaultRule {
        path_prefix: DEVICES.into(),
        method: None,
        fault: Fault::Unauthorized,
        times: 1,
        skip: 7,
    });
    assert_eq!(pull(&env).await, Ok("ok"));
    let mut served: HashMap<String, usize> = HashMap::new();
    for r in env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == DEVICES && r.status == 200)
    {
        *served.entry(r.query.clone()).or_default() += 1;
    }
    // 2 000 devices, pages of 100 that overlap by one: 1 + ceil(1 900 / 99) pages.
    assert_eq!(served.len(), 1 + 1_900usize.div_ceil(99));
    assert!(
        served.values().all(|n| *n == 1),
        "each page fetched once: {served:?}"
    );
    assert_eq!(env.sim.token_requests(), 2);
}

#[tokio::test]
async fn the_mass_deletion_guard_holds_a_sixty_percent_removal_until_overridden() {
    let env = TestEnv::start(sim(100), "").await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let before = devices_checksum(&env.db_path()).await;
    for id in env.sim.device_ids().into_iter().take(60) {
        env.sim.remove_device(id);
    }

    let held = env.run(&["pull"]).await;

    assert_eq!(held.status.code(), Some(1));
    let (_, stderr) = text(&held);
    let warn = log_lines(&stderr, "WARN").join("\n");
    assert!(
        warn.contains("\"stored\":100") && warn.contains("\"incoming\":40"),
        "{stderr}"
    );
    assert_eq!(devices_checksum(&env.db_path()).await, before);
    assert_eq!(last_run(&env.db().await, "pull_devices").await.0, "held");

    let applied = env.run(&["pull", "--allow-mass-delete"]).await;

    assert!(applied.status.success(), "{}", text(&applied).1);
    assert_eq!(
        devices_checksum(&env.db_path()).await,
        checksum(&expected(&env))
    );
    assert_eq!(change_counts(&env).await.get("removed"), Some(&60));
}

#[tokio::test]
async fn a_reader_holding_a_transaction_sees_one_snapshot_throughout() {
    let env = TestEnv::start(sim(3_000), "").await;
    assert_eq!(pull(&env).await, Ok("ok"));
    for id in env.sim.device_ids().into_iter().take(100) {
        env.sim.edit_device(id);
    }
    env.sim.add_devices(50);
    let snapshot = "SELECT count(*), coalesce(sum(length(raw)), 0), coalesce(sum(raw_hash % 1000003), 0) FROM devices";
    let mut reader =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", env.db_path().display()))
            .await
            .unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    let before: (i64, i64, i64) = sqlx::query_as(snapshot)
        .fetch_one(&mut reader)
        .await
        .unwrap();

    assert_eq!(pull(&env).await, Ok("ok"));

    let during: (i64, i64, i64) = sqlx::query_as(snapshot)
        .fetch_one(&mut reader)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
    let after: (i64, i64, i64) = sqlx::query_as(snapshot)
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(
        before, during,
        "the open read transaction keeps its snapshot"
    );
    assert_eq!(
        after.0, 3_050,
        "a new read transaction sees the new snapshot"
    );
    assert_ne!(after, before);
}

/// Starts `d42sync pull` and SIGKILLs it after `delay`.
async fn kill_pull_after(env: &TestEnv, delay: Duration) {
    let mut child = env
        .command(&["pull"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(delay).await;
    let _ = child.kill();
    let _ = child.wait();
}

/// After a killed pull: the file is sound and the next pull completes with `expected` devices.
async fn next_pull_completes(env: &TestEnv, iteration: usize, expected: (i64, u64)) {
    let db = env.db().await;
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
    db.close().await;
    let next = env.run(&["pull"]).await;
    assert!(
        next.status.success(),
        "iteration {iteration}: {}",
        text(&next).1
    );
    assert_eq!(
        devices_checksum(&env.db_path()).await,
        expected,
        "iteration {iteration}: the next pull completes"
    );
}

/// A small inventory whose pulls are spread over ten pages two at a time, so that a kill can
/// land before, during or after any page write or the swap.
async fn crash_env() -> TestEnv {
    let env = TestEnv::start(sim(100), "[devices]\npage_size = 10\nconcurrency = 2").await;
    env.sim.set_page_delay(Duration::from_millis(10));
    env
}

/// How long a `d42sync pull` takes here, start to exit: the window random kills are drawn from.
async fn timed_pull(env: &TestEnv) -> Duration {
    let started = std::time::Instant::now();
    let out = env.run(&["pull"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_leaves_the_old_or_the_new_snapshot() {
    // R1 asks for at least 200 seeded kills: four inventories of their own, 50 kills each, side
    // by side.
    let kills: Vec<_> = (0..4)
        .map(|k| tokio::spawn(kill_pulls_at_random(20261128 + k, 50)))
        .collect();
    let (mut saw_old, mut saw_new) = (0, 0);
    for k in kills {
        let (old, new) = k.await.unwrap();
        saw_old += old;
        saw_new += new;
    }
    assert_eq!(saw_old + saw_new, 200);
    assert!(
        saw_old > 0,
        "some kills must land before the swap ({saw_old} old, {saw_new} new)"
    );
}

/// Kills between two pulls that are let complete: each killed pull starts from what the kill
/// before it left, so the recovery of a killed pull's leftovers is also taken by killed pulls.
const KILLS_PER_COMPLETED_PULL: usize = 10;

/// `iterations` times: the inventory changes, a pull is killed at a random moment, and the
/// database holds the old or the new snapshot; after every [`KILLS_PER_COMPLETED_PULL`] kills
/// and at the end, the next pull completes. How often each was seen.
async fn kill_pulls_at_random(seed: u64, iterations: usize) -> (usize, usize) {
    use rand::{Rng, SeedableRng};
    let env = crash_env().await;
    let window = timed_pull(&env).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut saw_old, mut saw_new) = (0, 0);
    for i in 0..iterations {
        let old = devices_checksum(&env.db_path()).await;
        let ids = env.sim.device_ids();
        for _ in 0..20 {
            env.sim.edit_device(ids[rng.random_range(0..ids.len())]);
        }
        env.sim.remove_device(ids[rng.random_range(0..ids.len())]);
        env.sim.add_devices(2);
        let new = checksum(&expected(&env));
        let delay = window.mul_f64(rng.random_range(0.0..1.0));

        kill_pull_after(&env, delay).await;

        let now = devices_checksum(&env.db_path()).await;
        assert!(
            now == old || now == new,
            "seed {seed}, iteration {i}: a mix after a kill at {delay:?}"
        );
        if now == old {
            saw_old += 1
        } else {
            saw_new += 1
        }
        if (i + 1) % KILLS_PER_COMPLETED_PULL != 0 && i + 1 != iterations {
            let db = env.db().await;
            assert_eq!(db.integrity_check().await.unwrap(), "ok", "iteration {i}");
            db.close().await;
            continue;
        }
        next_pull_completes(&env, i, new).await;
        let running = count(
            &env,
            "SELECT count(*) FROM sync_runs WHERE status = 'running'",
        )
        .await;
        assert_eq!(
            running, 0,
            "seed {seed}, iteration {i}: a stale running row is marked failed at the next start"
        );
    }
    (saw_old, saw_new)
}

#[tokio::test]
async fn change_rows_and_runs_older_than_their_retention_are_pruned() {
    let env = TestEnv::start(sim(50), "[devices]\nkeep_changes = \"30d\"").await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let db = env.db().await;
    sqlx::query(
        "INSERT INTO sync_runs (id, job, started_at, finished_at, status) VALUES (900, 'pull_devices', '2000-01-01T00:00:00.000Z', '2000-01-01T00:01:00.000Z', 'ok')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO device_change_log (run_id, device_id, change, at, raw) VALUES (900, 1, 'added', '2000-01-01T00:01:00.000Z', '{}')")
        .execute(&db.pool)
        .await
        .unwrap();
    db.close().await;

    assert_eq!(pull(&env).await, Ok("ok"));

    let db = env.db().await;
    let old_changes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM device_changes WHERE at < '2001'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let old_runs: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE id = 900")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM device_changes")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.close().await;
    assert_eq!((old_changes, old_runs), (0, 0));
    assert_eq!(kept, 50, "recent changes stay");
}

/// Runs `d42sync pull --full` (the pages of the full listing are what is compared); the pages it
/// parsed and reused, from its `pull finished` line.
async fn pull_pages(env: &TestEnv) -> (u64, u64) {
    let v = crate::helpers::pull_finished(env, &["pull", "--full"]).await;
    let count = |key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"));
    (count("pages_parsed"), count("pages_reused"))
}

async fn exec(env: &TestEnv, sql: &str) {
    let db = env.db().await;
    sqlx::raw_sql(sql).execute(&db.pool).await.unwrap();
    db.close().await;
}

/// The last pull's `(items, added, changed, removed)`.
async fn last_counts(env: &TestEnv) -> (i64, i64, i64, i64) {
    let db = env.db().await;
    let counts = sqlx::query_as(
        "SELECT items, added, changed, removed FROM sync_runs WHERE job = 'pull_devices' \
         ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    db.close().await;
    counts
}

#[tokio::test]
async fn unchanged_pages_are_not_parsed_again_and_never_hide_a_change() {
    // 2 000 devices in pages of 250 overlapping by one: 9 pages.
    let env = TestEnv::start(sim(2_000), "[devices]\npage_size = 250").await;
    assert_eq!(pull_pages(&env).await, (9, 0));
    assert_eq!(
        pull_pages(&env).await,
        (0, 9),
        "an unchanged re-pull parses nothing"
    );
    assert_eq!(last_counts(&env).await, (2_000, 0, 0, 0));

    // One record edited upstream: only its page is parsed.
    let ids = env.sim.device_ids();
    env.sim.edit_device(ids[1_000]);
    assert_eq!(pull_pages(&env).await, (1, 8));
    assert_eq!(last_counts(&env).await, (2_000, 0, 1, 0));
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    db.close().await;

    // A row deleted and another altered by hand: the stored pages no longer describe `devices`,
    // so every record is compared again and both are repaired.
    exec(
        &env,
        &format!(
            "DELETE FROM devices WHERE device_id = {}; \
             UPDATE devices SET raw = '{{}}', raw_hash = 0 WHERE device_id = {}",
            ids[10], ids[1_500]
        ),
    )
    .await;
    assert_eq!(pull_pages(&env).await, (9, 0));
    assert_eq!(last_counts(&env).await, (2_000, 1, 1, 0));
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    db.close().await;

    // A removal low in the list shifts every later page; a new device extends the last one.
    env.sim.remove_device(ids[100]);
    env.sim.add_devices(1);
    let (parsed, reused) = pull_pages(&env).await;
    assert_eq!((parsed, reused), (9, 0), "every page moved");
    assert_eq!(last_counts(&env).await, (2_000, 1, 0, 1));
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    db.close().await;
    assert_eq!(pull_pages(&env).await, (0, 9));
}

/// Each column of `devices` and `device_changes`: name, type, NOT NULL and primary-key position.
/// The columns of `devices` and `device_changes`, then the indexes of `devices` and of the change
/// log's table with table and columns.
async fn table_definitions(db: &d42sync::store::Db) -> Vec<String> {
    let mut definitions = Vec::new();
    for table in ["devices", "device_changes"] {
        let columns: String = sqlx::query_scalar(
            "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' || pk, ', ') \
             FROM pragma_table_info(?)",
        )
        .bind(table)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        definitions.push(columns);
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT m.name || ' ON ' || m.tbl_name || ' (' || \
         (SELECT group_concat(i.name, ', ') FROM pragma_index_info(m.name) i) || ')' \
         FROM sqlite_schema m WHERE m.type = 'index' AND m.sql IS NOT NULL \
         AND m.tbl_name IN ('devices', 'device_change_log') ORDER BY m.name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    definitions.extend(indexes);
    definitions
}

#[tokio::test]
async fn a_first_pull_swaps_in_tables_that_keep_reports_views_and_indexes() {
    let env = TestEnv::start(sim(1_200), "[devices]\npage_size = 250").await;
    assert!(env.run(&["migrate"]).await.status.success());
    // A report's view and index, and what a pull killed during a first load leaves behind.
    exec(
        &env,
        "CREATE VIEW report AS SELECT name, serial_no FROM devices; \
         CREATE INDEX report_by_serial ON devices (serial_no); \
         CREATE TABLE pull_load_devices (leftover INTEGER)",
    )
    .await;
    let db = env.db().await;
    let before = table_definitions(&db).await;
    db.close().await;

    assert_eq!(pull(&env).await, Ok("ok"));
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    assert_eq!(
        table_definitions(&db).await,
        before,
        "the tables have their migrated columns and every index"
    );
    let (in_view,): (i64,) = sqlx::query_as("SELECT count(*) FROM report")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(in_view, 1_200);
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for expected_name in [
        "device_changes_by_at",
        "device_changes_by_device",
        "device_changes_by_run",
        "devices_by_hash",
        "devices_by_name",
        "report_by_serial",
    ] {
        assert!(
            names.iter().any(|n| n == expected_name),
            "{expected_name} in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("pull_load")),
        "{names:?}"
    );
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as("EXPLAIN QUERY PLAN SELECT name FROM devices WHERE serial_no = 'x'")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(
        plan.iter().any(|r| r.3.contains("report_by_serial")),
        "{plan:?}"
    );
    assert_eq!(db.integrity_check().await.unwrap(), "ok");
    db.close().await;
    assert_eq!(change_counts(&env).await.get("added"), Some(&1_200));
    assert_eq!(typed_columns_disagreeing_with_raw(&env).await, 0);
}

#[tokio::test]
async fn a_first_load_into_emptied_devices_keeps_the_history_and_any_trigger() {
    let env = TestEnv::start(sim(600), "[devices]\npage_size = 250").await;
    assert_eq!(pull(&env).await, Ok("ok"));
    // devices emptied by hand: the next pull loads afresh, but the change log has history.
    exec(&env, "DELETE FROM devices").await;
    assert_eq!(pull(&env).await, Ok("ok"));
    assert_eq!(change_counts(&env).await.get("added"), Some(&1_200));
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    db.close().await;

    // A trigger on devices: a drop would lose it, so the load goes through the compare path.
    exec(
        &env,
        "DELETE FROM devices; CREATE TABLE audit (n INTEGER); \
         CREATE TRIGGER devices_audit AFTER INSERT ON devices BEGIN INSERT INTO audit VALUES (1); END",
    )
    .await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    let (fired,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.close().await;
    assert_eq!(
        fired, 600,
        "the trigger is still there and fired for each device"
    );
}

#[tokio::test]
async fn sigkill_during_a_first_load_leaves_no_devices_or_all_of_them() {
    use rand::{Rng, SeedableRng};
    let env = crash_env().await;
    let full = checksum(&expected(&env));
    assert!(env.run(&["migrate"]).await.status.success());
    let db = env.db().await;
    let definitions = table_definitions(&db).await;
    db.close().await;
    let window = timed_pull(&env).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026_1128);
    let (mut saw_empty, mut saw_full) = (0, 0);
    for i in 0..15 {
        exec(&env, "DELETE FROM devices; DELETE FROM device_change_log").await;
        let delay = window.mul_f64(rng.random_range(0.0..1.0));
        kill_pull_after(&env, delay).await;

        let now = devices_checksum(&env.db_path()).await;
        assert!(
            now.0 == 0 || now == full,
            "iteration {i}: {} devices after a kill at {delay:?}",
            now.0
        );
        if now.0 == 0 {
            saw_empty += 1;
        } else {
            saw_full += 1;
        }
        next_pull_completes(&env, i, full).await;
        let left = count(
            &env,
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'pull_load%'",
        )
        .await;
        assert_eq!(
            left, 0,
            "iteration {i}: the next pull dropped what the killed one left"
        );
        let db = env.db().await;
        assert_eq!(
            table_definitions(&db).await,
            definitions,
            "iteration {i}: every index is back on its table"
        );
        db.close().await;
    }
    assert!(
        saw_empty > 0,
        "some kills land before the swap ({saw_empty} empty, {saw_full} full)"
    );
}

/// A read transaction on its own connection, holding the snapshot it first read.
async fn long_reader(env: &TestEnv) -> sqlx::SqliteConnection {
    let mut reader =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", env.db_path().display()))
            .await
            .unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM devices;")
        .execute(&mut reader)
        .await
        .unwrap();
    reader
}

fn wal_bytes(env: &TestEnv) -> u64 {
    let mut wal = env.db_path().into_os_string();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

#[tokio::test]
async fn the_wal_a_long_reader_held_back_shrinks_to_its_limit_after_the_next_checkpoint() {
    // R26: a 200 000-row pull while a report holds a read transaction open. Records of one
    // column beside the brief fields still fill the WAL well past its limit (about 160 MB).
    let env = TestEnv::start(sim(200_000), "[devices]\ninclude_cols = \"in_service\"").await;
    assert!(env.run(&["migrate"]).await.status.success());
    let mut reader = long_reader(&env).await;
    assert_eq!(pull(&env).await, Ok("ok"));
    let held = wal_bytes(&env);
    assert!(
        held > d42sync::store::JOURNAL_SIZE_LIMIT,
        "the reader kept the pull's frames in the WAL: {held} bytes"
    );
    let (seen,): (i64,) = sqlx::query_as("SELECT count(*) FROM devices")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(seen, 0, "the reader still sees its snapshot");
    reader.close().await.unwrap();

    // The daemon's next writes (here the next pull, with the pool kept open) checkpoint the
    // WAL and rewind it, truncating the file.
    let db = env.db().await;
    let s = env.settings();
    let cancel = CancellationToken::new();
    pull::run(
        &db,
        &env.client(),
        &s.devices,
        PullOptions::default(),
        &cancel,
    )
    .await
    .unwrap();
    let after = wal_bytes(&env);
    db.close().await;
    assert!(
        after <= d42sync::store::JOURNAL_SIZE_LIMIT,
        "the WAL is {after} bytes after the next checkpoint (it was {held})"
    );
}

#[tokio::test]
async fn a_long_reader_does_not_stall_a_first_load() {
    // 161 pages of 25: a load that waited on the reader at each of its pauses (up to 5 s each)
    // would take many seconds longer than the same load without a reader, which sets the pace
    // on this machine as it is loaded now.
    let env = TestEnv::start(sim(4_000), "[devices]\npage_size = 25").await;
    let started = std::time::Instant::now();
    assert_eq!(pull(&env).await, Ok("ok"));
    let alone = started.elapsed();
    exec(&env, "DELETE FROM devices; DELETE FROM device_change_log").await;
    let reader = long_reader(&env).await;
    let started = std::time::Instant::now();
    assert_eq!(pull(&env).await, Ok("ok"));
    let took = started.elapsed();
    drop(reader);
    assert!(
        took < alone * 2 + Duration::from_secs(5),
        "the load took {took:?} beside a reader, {alone:?} alone"
    );
    let db = env.db().await;
    assert!(stored_devices(&db).await == expected(&env));
    db.close().await;
}

#[tokio::test]
async fn every_log_line_of_a_pull_carries_its_job_and_run_id() {
    let env = TestEnv::start(sim(300), "[devices]\npage_size = 100\nconcurrency = 2").await;
    // A page fetched on its own task meets a retryable fault: its retry WARN is the run's too.
    env.sim.inject(FaultRule {
        path_prefix: DEVICES.into(),
        method: None,
        fault: Fault::Status(503),
        times: 1,
        skip: 1,
    });

    let out = env.run(&["pull"]).await;

    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = ["WARN", "INFO"]
        .iter()
        .flat_map(|level| log_lines(&stderr, level))
        .collect();
    assert!(lines.iter().any(|l| l.contains("retry")), "{stderr}");
    for line in lines {
        assert!(
            line.contains("\"job\":\"pull_devices\"") && line.contains("\"run_id\":"),
            "{line}"
        );
    }
}
