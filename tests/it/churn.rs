//! A pull under steady churn: devices removed and added while it pages complete the pull by
//! repairing the shifted range, never by starting over; a server that cannot be paged fails.

use crate::helpers::{TestEnv, count, devices_checksum, last_run, log_lines, text};
use d42sim::{Churn, SimConfig};
use std::collections::BTreeSet;

/// About twenty pages of a hundred devices: cheap, and long enough for steady churn.
const CHURN_CONFIG: &str = "[devices]\npage_size = 100";

fn sim(devices: usize) -> SimConfig {
    SimConfig {
        devices,
        ..SimConfig::default()
    }
}

/// A deletion of a device already paged after every second list request, an addition after
/// every fifth, for as long as any pull here pages.
const STEADY: Churn = Churn {
    delete_every: 2,
    add_every: 5,
    requests: 10_000,
};

async fn stored_ids(env: &TestEnv) -> Vec<i64> {
    let db = env.db().await;
    let ids = sqlx::query_scalar("SELECT device_id FROM devices ORDER BY device_id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    db.close().await;
    ids
}

/// What a pull under churn saw: the ids upstream before and after it, and the highest id ever.
struct Churned {
    before: BTreeSet<i64>,
    after: BTreeSet<i64>,
    last_id: i64,
    stderr: String,
    success: bool,
}

/// Runs `d42sync pull` while the simulator churns, and stops the churn after it.
async fn pull_under(env: &TestEnv, churn: Churn) -> Churned {
    let before = env.sim.device_ids().into_iter().collect();
    env.sim.set_churn(churn);
    let out = env.run(&["pull"]).await;
    env.sim.set_churn(Churn::default());
    Churned {
        before,
        after: env.sim.device_ids().into_iter().collect(),
        last_id: env.sim.last_id(),
        stderr: text(&out).1,
        success: out.status.success(),
    }
}

/// The pull's `pull finished` line as JSON.
fn finished_line(stderr: &str) -> serde_json::Value {
    let line = log_lines(stderr, "INFO")
        .into_iter()
        .find(|l| l.contains("pull finished"))
        .unwrap_or_else(|| panic!("no pull finished line: {stderr}"));
    serde_json::from_str(line).unwrap()
}

/// Asserts what a pull under churn must give: completed at once, every device that existed
/// throughout, only ids that existed, no duplicate rows or change rows; the repairs it made.
async fn assert_churned_pull(env: &TestEnv, pulled: &Churned, what: &str) -> u64 {
    assert!(pulled.success, "{what}: {}", pulled.stderr);
    assert!(
        !pulled.stderr.contains("starting the pull over"),
        "{what}: no restart: {}",
        pulled.stderr
    );
    let stored = stored_ids(env).await;
    let set: BTreeSet<i64> = stored.iter().copied().collect();
    assert_eq!(set.len(), stored.len(), "{what}: no duplicate device_id");
    let throughout: BTreeSet<i64> = pulled.before.intersection(&pulled.after).copied().collect();
    let missing: Vec<&i64> = throughout.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "{what}: every device that existed throughout is stored; missing {missing:?}"
    );
    let highest_before = pulled.before.last().copied().unwrap_or(0);
    let never: Vec<&i64> = set
        .iter()
        .filter(|id| {
            !pulled.before.contains(id) && !(highest_before + 1..=pulled.last_id).contains(id)
        })
        .collect();
    assert!(
        never.is_empty(),
        "{what}: ids that never existed: {never:?}"
    );
    let repeated = count(
        env,
        "SELECT count(*) FROM (SELECT 1 FROM device_changes \
         GROUP BY run_id, device_id HAVING count(*) > 1)",
    )
    .await;
    assert_eq!(repeated, 0, "{what}: one change row per device and run");
    assert!(
        pulled.before != pulled.after,
        "{what}: the inventory did churn"
    );
    finished_line(&pulled.stderr)["repairs"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: repairs in the pull finished line"))
}

#[tokio::test]
async fn a_pull_under_steady_churn_completes_at_once_with_every_device_that_existed_throughout() {
    let env = TestEnv::start(sim(2_000), CHURN_CONFIG).await;

    let first = pull_under(&env, STEADY).await;
    let first_repairs = assert_churned_pull(&env, &first, "first load").await;
    let second = pull_under(&env, STEADY).await;
    let second_repairs = assert_churned_pull(&env, &second, "compare").await;

    assert!(
        first_repairs > 0 && second_repairs > 0,
        "shifted ranges were repaired: {first_repairs}, {second_repairs}"
    );
}

#[tokio::test]
async fn a_pull_without_churn_after_one_under_churn_makes_the_mirror_exact() {
    let env = TestEnv::start(sim(2_000), CHURN_CONFIG).await;
    let churned = pull_under(&env, STEADY).await;
    assert!(churned.success, "{}", churned.stderr);

    let out = env.run(&["pull"]).await;

    assert!(out.status.success(), "{}", text(&out).1);
    let s = env.settings();
    let want = env
        .sim
        .rendered_devices(&s.devices.endpoint, &s.devices.include_cols);
    let db = env.db().await;
    let stored = crate::helpers::stored_devices(&db).await;
    db.close().await;
    assert!(stored == want, "the mirror equals the inventory upstream");
}

#[tokio::test]
async fn a_server_that_ignores_offset_fails_with_a_clear_error_and_changes_nothing() {
    let env = TestEnv::start(sim(500), CHURN_CONFIG).await;
    assert!(env.run(&["pull"]).await.status.success());
    let before = devices_checksum(&env.db_path()).await;
    env.sim.remove_device(env.sim.device_ids()[300]);
    env.sim.set_ignores_offset(true);
    let asked_before = page_requests(&env);

    let out = env.run(&["pull"]).await;

    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors = log_lines(&stderr, "ERROR");
    assert_eq!(errors.len(), 1, "one ERROR line: {stderr}");
    assert!(
        errors[0].contains("ignores offset"),
        "the error says why: {}",
        errors[0]
    );
    assert!(
        !stderr.contains("starting the pull over"),
        "no restart can help: {stderr}"
    );
    assert_eq!(devices_checksum(&env.db_path()).await, before);
    let db = env.db().await;
    assert_eq!(last_run(&db, "pull_devices").await.0, "failed");
    db.close().await;
    let asked = page_requests(&env) - asked_before;
    assert!(asked <= 10, "it gives up at once: {asked} page requests");
}

/// Devices list requests the simulator has seen.
fn page_requests(env: &TestEnv) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/2.0/devices/"))
        .count()
}
