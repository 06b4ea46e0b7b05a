//! Incremental pulls against the simulator: after a full pull, a pull lists the ids of every
//! device (brief items) and fetches only the records edited since the watermark less a day; a
//! full pull still runs on `--full`, every `devices.full_every`, and when `include_cols` change.

use crate::helpers::{
    TestEnv, count, log_lines, output, sigterm, stored_devices, text, wait_exit,
    wait_for_control_socket,
};
use d42sim::{Fault, FaultRule, RecordedRequest, SimConfig};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

const V2: &str = "/api/2.0/devices/";
const V1: &str = "/api/1.0/devices/all/";

/// 1 000 devices in pages of 100: cheap, and eleven pages per listing.
async fn env_with(extra: &str) -> TestEnv {
    let sim = SimConfig {
        devices: 1_000,
        ..SimConfig::default()
    };
    TestEnv::start(sim, &format!("[devices]\npage_size = 100\n{extra}")).await
}

/// Runs `d42sync <args>` (a pull) and returns its `pull finished` line.
async fn pull(env: &TestEnv, args: &[&str]) -> Value {
    crate::helpers::pull_finished(env, args).await
}

/// The devices list requests that arrived after the first `skip` requests.
fn list_requests(env: &TestEnv, skip: usize) -> Vec<RecordedRequest> {
    env.sim
        .requests()
        .into_iter()
        .skip(skip)
        .filter(|r| r.path == V2 || r.path == V1)
        .collect()
}

/// Every device as the simulator renders it for the configured endpoint and columns.
fn expected(env: &TestEnv) -> Vec<(i64, String)> {
    let s = env.settings();
    env.sim
        .rendered_devices(&s.devices.endpoint, &s.devices.include_cols)
}

async fn stored(env: &TestEnv) -> Vec<(i64, String)> {
    let db = env.db().await;
    let rows = stored_devices(&db).await;
    db.close().await;
    rows
}

/// `(pulled_from, full_from)` of the endpoint's watermark.
async fn watermark(env: &TestEnv, endpoint: &str) -> (String, String) {
    let db = env.db().await;
    let row =
        sqlx::query_as("SELECT pulled_from, full_from FROM pull_watermarks WHERE endpoint = ?")
            .bind(endpoint)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    db.close().await;
    row
}

async fn exec(env: &TestEnv, sql: &str) {
    let db = env.db().await;
    sqlx::raw_sql(sql).execute(&db.pool).await.unwrap();
    db.close().await;
}

/// The day before the day of an ISO-8601 time, as the edit filter takes it.
fn day_before(iso: &str) -> String {
    let day = chrono::NaiveDate::parse_from_str(&iso[..10], "%Y-%m-%d").unwrap();
    day.pred_opt().unwrap().format("%Y-%m-%d").to_string()
}

fn n(line: &Value, key: &str) -> u64 {
    line[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {line}"))
}

#[tokio::test]
async fn an_unchanged_re_pull_is_incremental_and_costs_at_most_a_tenth_of_the_bytes() {
    let env = env_with("").await;
    let first = pull(&env, &["pull"]).await;
    let (pulled_from, _) = watermark(&env, V2).await;
    let changes_before = count(&env, "SELECT count(*) FROM device_changes").await;
    let seen = env.sim.requests().len();

    let second = pull(&env, &["pull"]).await;

    assert_eq!(first["mode"], "full");
    assert_eq!(second["mode"], "incremental");
    assert!(
        n(&second, "bytes") * 10 <= n(&first, "bytes"),
        "incremental {} bytes against full {}",
        second["bytes"],
        first["bytes"]
    );
    assert_eq!(
        (
            n(&second, "items"),
            n(&second, "changed"),
            n(&second, "removed")
        ),
        (1_000, 0, 0)
    );
    let requests = list_requests(&env, seen);
    let (brief, edited): (Vec<_>, Vec<_>) = requests
        .iter()
        .partition(|r| r.query_param("last_edited_gt").is_none());
    assert_eq!(brief.len(), 11, "the id listing pages every device");
    for r in &brief {
        assert_eq!(r.path, V2);
        assert_eq!(r.query_param("include_cols"), None, "{}", r.query);
    }
    assert!(!edited.is_empty());
    for r in &edited {
        assert_eq!(
            r.query_param("last_edited_gt"),
            Some(day_before(&pulled_from)),
            "{}",
            r.query
        );
        assert!(r.query_param("include_cols").is_some(), "{}", r.query);
    }
    assert!(stored(&env).await == expected(&env));
    assert_eq!(
        count(&env, "SELECT count(*) FROM device_changes").await,
        changes_before
    );
}

#[tokio::test]
async fn after_edits_additions_and_deletions_an_incremental_pull_mirrors_exactly() {
    let env = env_with("").await;
    pull(&env, &["pull"]).await;
    let ids = env.sim.device_ids();
    assert!(env.sim.edit_device(ids[10]) && env.sim.edit_device(ids[500]));
    assert!(env.sim.remove_device(ids[30]) && env.sim.remove_device(ids[999]));
    let added = env.sim.add_devices(3);

    let line = pull(&env, &["pull"]).await;

    assert_eq!(line["mode"], "incremental");
    assert!(
        stored(&env).await == expected(&env),
        "every stored record equals the simulator's"
    );
    let db = env.db().await;
    let changes: Vec<(i64, String)> = sqlx::query_as(
        "SELECT device_id, change FROM device_changes \
         WHERE run_id = (SELECT max(id) FROM sync_runs) ORDER BY device_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    db.close().await;
    let edits = [ids[10], ids[500]].map(|id| (id, "changed"));
    let removals = [ids[30], ids[999]].map(|id| (id, "removed"));
    let additions = added.iter().map(|id| (*id, "added"));
    let want: BTreeSet<(i64, String)> = edits
        .into_iter()
        .chain(removals)
        .chain(additions)
        .map(|(id, change)| (id, change.to_string()))
        .collect();
    assert_eq!(changes, want.into_iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_listed_device_neither_stored_nor_edited_turns_the_pull_full() {
    let env = env_with("").await;
    pull(&env, &["pull"]).await;
    let ids = env.sim.device_ids();
    exec(
        &env,
        &format!("DELETE FROM devices WHERE device_id = {}", ids[42]),
    )
    .await;

    let out = env.run(&["pull"]).await;

    let stderr = text(&out).1;
    assert!(out.status.success(), "{stderr}");
    let info = log_lines(&stderr, "INFO").join("\n");
    assert!(info.contains("pulling every record"), "{stderr}");
    assert!(info.contains("\"mode\":\"full\""), "{stderr}");
    assert!(stored(&env).await == expected(&env));
}

#[tokio::test]
async fn pull_full_is_full_and_a_full_pull_after_incremental_ones_is_exact() {
    let env = env_with("").await;
    let first = pull(&env, &["pull"]).await;
    assert_eq!(pull(&env, &["pull"]).await["mode"], "incremental");

    let unchanged = pull(&env, &["pull", "--full"]).await;
    env.sim.edit_device(env.sim.device_ids()[7]);
    assert_eq!(pull(&env, &["pull"]).await["mode"], "incremental");
    let after_edit = pull(&env, &["pull", "--full"]).await;

    assert_eq!(unchanged["mode"], "full");
    assert_eq!(
        (n(&unchanged, "pages_parsed"), n(&unchanged, "pages_reused")),
        (0, n(&first, "pages_parsed")),
        "an incremental pull keeps the full pull's pages"
    );
    assert_eq!(after_edit["mode"], "full");
    assert_eq!(
        n(&after_edit, "pages_parsed"),
        n(&first, "pages_parsed"),
        "after an incremental pull changed devices, no stored page is trusted"
    );
    assert_eq!(n(&after_edit, "changed"), 0);
    assert!(stored(&env).await == expected(&env));
}

#[tokio::test]
async fn a_pull_after_full_every_has_passed_is_full() {
    let env = env_with("").await;
    pull(&env, &["pull"]).await;
    let (pulled_from, _) = watermark(&env, V2).await;
    exec(
        &env,
        "UPDATE pull_watermarks SET full_from = '2026-01-01T00:00:00.000Z'",
    )
    .await;
    let seen = env.sim.requests().len();

    let line = pull(&env, &["pull"]).await;

    assert_eq!(line["mode"], "full");
    let requests = list_requests(&env, seen);
    assert!(
        requests
            .iter()
            .all(|r| r.query_param("last_edited_gt").is_none()
                && r.query_param("include_cols").is_some())
    );
    let (_, full_from) = watermark(&env, V2).await;
    assert!(
        full_from >= pulled_from,
        "{full_from} moved with the full pull"
    );
}

#[tokio::test]
async fn a_v1_endpoint_lists_ids_from_the_brief_list_and_asks_for_edits_with_last_updated_gt() {
    let env = env_with(&format!("endpoint = \"{V1}\"")).await;
    pull(&env, &["pull"]).await;
    let (pulled_from, _) = watermark(&env, V1).await;
    let edited_id = env.sim.device_ids()[3];
    env.sim.edit_device(edited_id);
    let seen = env.sim.requests().len();

    let line = pull(&env, &["pull"]).await;

    assert_eq!(line["mode"], "incremental");
    assert_eq!(n(&line, "changed"), 1);
    let requests = list_requests(&env, seen);
    assert!(requests.iter().any(|r| r.path == V2));
    let edited: Vec<_> = requests.iter().filter(|r| r.path == V1).collect();
    assert!(!edited.is_empty());
    for r in edited {
        assert_eq!(
            r.query_param("last_updated_gt"),
            Some(day_before(&pulled_from))
        );
        assert_eq!(r.query_param("last_edited_gt"), None);
    }
    assert!(stored(&env).await == expected(&env));
}

#[tokio::test]
async fn the_watermark_moves_only_with_an_applied_pull() {
    let env = env_with("").await;
    pull(&env, &["pull"]).await;
    let backdated = "2026-01-10T12:00:00.000Z";
    exec(
        &env,
        &format!("UPDATE pull_watermarks SET pulled_from = '{backdated}'"),
    )
    .await;
    let mark = watermark(&env, V2).await;

    // Killed before the apply (as by SIGKILL), after every page was fetched.
    let killed = output({
        let mut cmd = env.command(&["pull"]);
        cmd.env("D42SYNC_FAILPOINT", "pull.before_apply");
        cmd
    })
    .await;
    assert!(!killed.status.success());
    assert_eq!(watermark(&env, V2).await, mark, "a killed pull leaves it");

    // A fault between pages: the edited listing follows the id listing's eleven pages.
    env.sim.inject(FaultRule {
        path_prefix: V2.into(),
        method: None,
        fault: Fault::Status(500),
        times: 100,
        skip: 11,
    });
    let failed = env.run(&["pull"]).await;
    env.sim.clear_faults();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed).1);
    assert_eq!(watermark(&env, V2).await, mark, "a failed pull leaves it");

    // Held by the mass-deletion guard.
    for id in env.sim.device_ids().into_iter().take(600) {
        env.sim.remove_device(id);
    }
    let held = env.run(&["pull"]).await;
    assert_eq!(held.status.code(), Some(1), "{}", text(&held).1);
    assert_eq!(watermark(&env, V2).await, mark, "a held pull leaves it");
    let seen = env.sim.requests().len();

    let applied = pull(&env, &["pull", "--allow-mass-delete"]).await;

    assert_eq!(applied["mode"], "incremental");
    let filters: Vec<Option<String>> = list_requests(&env, seen)
        .iter()
        .filter_map(|r| {
            r.query_param("include_cols")
                .map(|_| r.query_param("last_edited_gt"))
        })
        .collect();
    assert!(!filters.is_empty());
    assert!(
        filters.iter().all(|f| f.as_deref() == Some("2026-01-09")),
        "from the last committed watermark less a day: {filters:?}"
    );
    let (pulled_from, _) = watermark(&env, V2).await;
    assert!(pulled_from.as_str() > backdated, "{pulled_from}");
    assert!(stored(&env).await == expected(&env));
}

#[tokio::test]
async fn changing_include_cols_makes_the_next_pull_full() {
    let env = env_with("").await;
    pull(&env, &["pull"]).await;
    env.write_config(
        "",
        "[devices]\npage_size = 100\ninclude_cols = [\"notes\", \"tags\"]",
    );

    let changed = pull(&env, &["pull"]).await;
    let again = pull(&env, &["pull"]).await;

    assert_eq!(changed["mode"], "full");
    assert_eq!(n(&changed, "changed"), 1_000);
    assert_eq!(again["mode"], "incremental");
    assert!(stored(&env).await == expected(&env));
}

#[tokio::test]
async fn pull_full_from_a_shell_makes_the_running_daemon_pull_every_record() {
    let env = env_with("").await;
    let mut daemon = env
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_control_socket(&env).await;
    let first = env.run(&["pull"]).await;
    let seen = env.sim.requests().len();

    let full = env.run(&["pull", "--full"]).await;

    let requests = list_requests(&env, seen);
    sigterm(&daemon);
    assert_eq!(
        wait_exit(&mut daemon, Duration::from_secs(10)).await,
        Some(0)
    );
    for out in [&first, &full] {
        assert!(
            text(out).0.starts_with("pull ok by the daemon"),
            "{:?}",
            text(out)
        );
    }
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.query_param("include_cols").is_some()
                && r.query_param("last_edited_gt").is_none()),
        "every record, no id listing, no edit filter"
    );
}
