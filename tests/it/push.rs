//! The building push against the simulator: delivery, retries, dead letters, requeue, backoff,
//! no lock held across HTTP, and the crash window between Device42's answer and "done".

use crate::helpers::{TestEnv, text};
use d42sim::{Fault, FaultRule, Rejection, SimConfig};
use d42sync::jobs::push_buildings;
use d42sync::store::Db;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BUILDINGS: &str = "/api/1.0/buildings/";

async fn push(env: &TestEnv) -> anyhow::Result<d42sync::jobs::RunReport> {
    let s = env.settings();
    let db = env.db().await;
    let r = push_buildings::run(&db, &env.client(), &s.buildings, &CancellationToken::new()).await;
    db.close().await;
    r
}

async fn sql(db: &Db, statement: &str) {
    sqlx::query(statement).execute(&db.pool).await.unwrap();
}

async fn statuses(env: &TestEnv) -> BTreeMap<String, i64> {
    crate::helpers::grouped_counts(
        env,
        "SELECT status, count(*) FROM building_queue GROUP BY status",
    )
    .await
}

#[tokio::test]
async fn a_thousand_rows_inserted_with_sql_all_reach_device42_with_exactly_their_fields() {
    let env = TestEnv::start(
        SimConfig::default(),
        "[buildings]\nbatch_size = 100\nconcurrency = 8",
    )
    .await;
    let db = env.db().await;
    for i in 0..1000 {
        let statement = if i % 2 == 0 {
            format!("INSERT INTO building_queue (name, address) VALUES ('b{i}', 'street {i}')")
        } else {
            format!(
                "INSERT INTO building_queue (name, notes, latitude, longitude) VALUES ('b{i}', 'n', '40.7', '-74.0')"
            )
        };
        sql(&db, &statement).await;
    }
    db.close().await;

    let report = push(&env).await.unwrap();

    assert_eq!(report.counts.sent, 1000);
    assert_eq!(
        statuses(&env).await,
        BTreeMap::from([("done".to_string(), 1000)])
    );
    let sim_ids: BTreeMap<String, i64> = env
        .sim
        .buildings()
        .into_iter()
        .map(|b| (b.name, b.building_id))
        .collect();
    let db = env.db().await;
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, building_id FROM building_queue")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    db.close().await;
    for (name, id) in rows {
        assert_eq!(sim_ids.get(&name), Some(&id), "{name}");
    }
    let posts: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == BUILDINGS)
        .collect();
    assert_eq!(posts.len(), 1000);
    for p in &posts {
        let content_type = p
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        assert_eq!(content_type, Some("application/x-www-form-urlencoded"));
        let fields: Vec<String> = url::form_urlencoded::parse(p.body.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        let expected = if fields.contains(&"address".to_string()) {
            vec!["name", "address"]
        } else {
            vec!["name", "notes", "latitude", "longitude"]
        };
        assert_eq!(fields, expected, "only the fields that are set: {}", p.body);
    }
}

#[tokio::test]
async fn with_thirty_percent_failures_everything_still_ends_done() {
    let env = TestEnv::start(
        SimConfig { fail_rate: 0.3, ..SimConfig::default() },
        "[buildings]\nretry_base = \"1ms\"\nretry_max = \"5ms\"\nmax_attempts = 30\nconcurrency = 4",
    )
    .await;
    let db = env.db().await;
    for i in 0..200 {
        sql(
            &db,
            &format!("INSERT INTO building_queue (name) VALUES ('site-{i}')"),
        )
        .await;
    }
    let started = Instant::now();
    while statuses(&env).await.get("pending").copied().unwrap_or(0) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the queue must drain"
        );
        let _ = push(&env).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        statuses(&env).await,
        BTreeMap::from([("done".to_string(), 200)])
    );
    let attempts: i64 = sqlx::query_scalar("SELECT sum(attempts) FROM building_queue")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.close().await;
    assert!(
        attempts > 220,
        "retries are counted in attempts: {attempts}"
    );
    assert_eq!(env.sim.buildings().len(), 200);
}

#[tokio::test]
async fn a_rejection_and_a_code_1_answer_are_dead_after_one_attempt() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    env.sim.reject_building("bad-400", Rejection::Http400);
    env.sim.reject_building("bad-code", Rejection::Code1);
    env.sim
        .reject_building("bad-license", Rejection::LicenseExpired);
    let db = env.db().await;
    sql(&db, "INSERT INTO building_queue (name) VALUES ('bad-400'), ('bad-code'), ('bad-license'), ('good'), ('  ')").await;

    push(&env).await.unwrap();

    let rows: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT name, status, attempts, last_error FROM building_queue ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    db.close().await;
    for (name, status, attempts, error) in &rows[..3] {
        assert_eq!((status.as_str(), *attempts), ("dead", 1), "{name}");
        assert!(
            error.as_deref().is_some_and(|e| e.contains("rejected")),
            "{name}: {error:?}"
        );
    }
    assert_eq!(rows[3].1, "done");
    assert_eq!(rows[4].1, "dead", "a blank name never reaches Device42");
    assert!(rows[4].3.as_deref().unwrap().contains("name is empty"));
    assert_eq!(env.sim.building_posts("  "), 0);
}

#[tokio::test]
async fn a_row_that_keeps_failing_is_dead_after_max_attempts_and_requeue_revives_it() {
    let env = TestEnv::start(
        SimConfig::default(),
        "[buildings]\nmax_attempts = 3\nretry_base = \"1ms\"\nretry_max = \"2ms\"",
    )
    .await;
    env.sim.inject(FaultRule {
        path_prefix: BUILDINGS.into(),
        method: Some("POST".into()),
        fault: Fault::Status(503),
        times: 3,
        skip: 0,
    });
    let db = env.db().await;
    sql(&db, "INSERT INTO building_queue (name) VALUES ('flaky')").await;
    for _ in 0..3 {
        push(&env).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, attempts, error): (String, i64, String) =
        sqlx::query_as("SELECT status, attempts, last_error FROM building_queue")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("dead", 3));
    assert!(
        error.contains("gave up after 3 attempts") && error.contains("503"),
        "{error}"
    );
    push(&env).await.unwrap();
    assert_eq!(
        env.sim.building_posts("flaky"),
        3,
        "a dead row is never retried automatically"
    );

    let out = env.run(&["requeue", "--all-dead"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    push(&env).await.unwrap();

    let (status, building_id): (String, Option<i64>) =
        sqlx::query_as("SELECT status, building_id FROM building_queue")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(status, "done");
    assert!(building_id.is_some());
}

#[tokio::test]
async fn backoff_stays_within_full_jitter_bounds_and_honours_retry_after() {
    // Every row fails here: the breaker, which would stop the push after three, is off.
    let env = TestEnv::start_with(
        SimConfig::default(),
        "breaker_failures = 0",
        "[buildings]\nretry_base = \"2s\"\nretry_max = \"1h\"",
    )
    .await;
    env.sim.inject(FaultRule {
        path_prefix: BUILDINGS.into(),
        method: None,
        fault: Fault::Status(500),
        times: 20,
        skip: 0,
    });
    env.sim.inject(FaultRule {
        path_prefix: BUILDINGS.into(),
        method: None,
        fault: Fault::Unavailable {
            retry_after: Some("120".into()),
        },
        times: 1,
        skip: 20,
    });
    let db = env.db().await;
    for i in 0..21 {
        sql(
            &db,
            &format!("INSERT INTO building_queue (name) VALUES ('r{i}')"),
        )
        .await;
    }
    let before = chrono::Utc::now();
    push(&env).await.unwrap();
    let after = chrono::Utc::now();
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT name, status, next_attempt_at FROM building_queue ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    db.close().await;
    let mut with_retry_after = 0;
    for (name, status, at) in rows {
        assert_eq!(status, "pending", "{name}");
        let at = d42sync::time::parse_iso(&at.unwrap()).unwrap();
        let delay_from_start = (at - before).num_milliseconds();
        if delay_from_start >= 120_000 {
            with_retry_after += 1;
        } else {
            // After failure 1 the delay lies in [0, min(cap, base * 2^1)] = [0, 4 s].
            assert!(at >= before - chrono::Duration::milliseconds(1), "{name}");
            assert!(at <= after + chrono::Duration::seconds(4), "{name}: {at}");
        }
    }
    assert_eq!(
        with_retry_after, 1,
        "the 503 with Retry-After: 120 is not retried before then"
    );
}

#[tokio::test]
async fn no_database_lock_is_held_while_a_post_is_in_flight() {
    let env = TestEnv::start(
        SimConfig {
            post_delay: Duration::from_secs(5),
            ..SimConfig::default()
        },
        "",
    )
    .await;
    let db = env.db().await;
    sql(&db, "INSERT INTO building_queue (name) VALUES ('slow')").await;
    let pusher = {
        let (s, client, db) = (env.settings(), env.client(), db.clone());
        tokio::spawn(async move {
            push_buildings::run(&db, &client, &s.buildings, &CancellationToken::new()).await
        })
    };
    while env.sim.requests().iter().all(|r| r.path != BUILDINGS) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut other =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", env.db_path().display()))
            .await
            .unwrap();
    sqlx::query("PRAGMA busy_timeout = 100")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("INSERT INTO building_queue (name) VALUES ('meanwhile')")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    let took = started.elapsed();

    assert!(took < Duration::from_millis(100), "took {took:?}");
    assert!(!pusher.is_finished(), "the POST was still in flight");
    pusher.await.unwrap().unwrap();
    db.close().await;
}

#[tokio::test]
async fn a_crash_between_the_answer_and_done_resends_the_row_once_more() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let db = env.db().await;
    sql(
        &db,
        "INSERT INTO building_queue (name, address) VALUES ('crash-site', 'x')",
    )
    .await;
    let mut cmd = env.command(&["push"]);
    cmd.env("D42SYNC_FAILPOINT", "push.after_response");

    let crashed = crate::helpers::output(cmd).await;

    assert!(!crashed.status.success());
    assert_eq!(
        env.sim.building_posts("crash-site"),
        1,
        "Device42 answered 2xx"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM building_queue")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "sending", "the outcome was never committed");

    let restarted = env.run(&["push"]).await;

    assert!(restarted.status.success(), "{}", text(&restarted).1);
    let status: String = sqlx::query_scalar("SELECT status FROM building_queue")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.close().await;
    assert_eq!(status, "done");
    assert_eq!(
        env.sim.building_posts("crash-site"),
        2,
        "re-sent once after restart"
    );
    assert_eq!(
        env.sim
            .buildings()
            .iter()
            .filter(|b| b.name == "crash-site")
            .count(),
        1
    );
}

#[tokio::test]
async fn enqueue_building_validates_its_input() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let ok = env
        .run(&[
            "enqueue-building",
            "--name",
            "HQ",
            "--latitude",
            "40.7",
            "--longitude",
            "-74.0",
            "--address",
            "NY",
        ])
        .await;
    assert!(ok.status.success(), "{}", text(&ok).1);
    for bad in [
        vec!["--name", "  "],
        vec!["--name", "X", "--latitude", "north"],
        vec!["--name", "X", "--longitude", "200"],
    ] {
        let mut args = vec!["enqueue-building"];
        args.extend(bad.iter());
        let out = env.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: a usage error");
    }
    let db = env.db().await;
    let rows: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT name, latitude, address FROM building_queue")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(
        rows,
        vec![(
            "HQ".to_string(),
            Some("40.7".to_string()),
            Some("NY".to_string())
        )]
    );
}

#[tokio::test]
async fn done_rows_older_than_their_retention_are_pruned_and_requeue_by_id_needs_a_dead_row() {
    let env = TestEnv::start(SimConfig::default(), "[buildings]\nkeep_done = \"30d\"").await;
    let db = env.db().await;
    sql(&db, "INSERT INTO building_queue (name, status, sent_at) VALUES ('ancient', 'done', '2000-01-01T00:00:00.000Z')").await;
    sql(
        &db,
        "INSERT INTO building_queue (name, status, last_error) VALUES ('gone', 'dead', 'rejected')",
    )
    .await;
    sql(&db, "INSERT INTO building_queue (name) VALUES ('fresh')").await;

    push(&env).await.unwrap();

    let names: Vec<(String, String)> =
        sqlx::query_as("SELECT name, status FROM building_queue ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        names,
        vec![
            ("gone".to_string(), "dead".to_string()),
            ("fresh".to_string(), "done".to_string())
        ]
    );
    let fresh_id: i64 = sqlx::query_scalar("SELECT id FROM building_queue WHERE name = 'fresh'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let dead_id: i64 = sqlx::query_scalar("SELECT id FROM building_queue WHERE name = 'gone'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.close().await;

    let refused = env.run(&["requeue", "--id", &fresh_id.to_string()]).await;
    assert_eq!(refused.status.code(), Some(1), "a done row is not requeued");
    let requeued = env.run(&["requeue", "--id", &dead_id.to_string()]).await;
    assert!(requeued.status.success(), "{}", text(&requeued).1);
    assert_eq!(statuses(&env).await.get("pending"), Some(&1));
}

#[tokio::test]
async fn a_push_tries_each_row_once_however_short_its_backoff() {
    // With a 1 ms backoff a failed row is due again almost at once; the same push must still
    // leave it for the next run rather than hammer a failing appliance in a loop.
    let env = TestEnv::start_with(
        SimConfig::default(),
        "breaker_failures = 0",
        "[buildings]\nretry_base = \"1ms\"\nretry_max = \"1ms\"",
    )
    .await;
    env.sim.inject(FaultRule {
        path_prefix: BUILDINGS.into(),
        method: None,
        fault: Fault::Status(500),
        times: 1_000,
        skip: 0,
    });
    let db = env.db().await;
    for i in 0..5 {
        sql(
            &db,
            &format!("INSERT INTO building_queue (name) VALUES ('once{i}')"),
        )
        .await;
    }
    push(&env).await.unwrap();
    let attempts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, attempts FROM building_queue ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(attempts, vec![("pending".to_string(), 1); 5]);
    assert_eq!(env.sim.building_posts("once0"), 1);
}

#[tokio::test]
async fn an_outage_pauses_the_push_and_costs_the_rows_not_sent_nothing() {
    let env = TestEnv::start_with(
        SimConfig::default(),
        "breaker_failures = 3\nbreaker_probe_interval = \"1s\"",
        "[buildings]\nconcurrency = 1\nretry_base = \"1ms\"\nretry_max = \"1ms\"",
    )
    .await;
    env.sim
        .inject(FaultRule::new(BUILDINGS, Fault::HtmlPage(502)).times(1_000));
    let db = env.db().await;
    for i in 0..20 {
        sql(
            &db,
            &format!("INSERT INTO building_queue (name) VALUES ('o{i}')"),
        )
        .await;
    }
    let (settings, client) = (env.settings(), env.client());
    let push = async || {
        push_buildings::run(&db, &client, &settings.buildings, &CancellationToken::new()).await
    };
    let posts = || {
        env.sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == BUILDINGS)
            .count()
    };
    let attempts = async || -> Vec<(String, i64)> {
        sqlx::query_as("SELECT status, attempts FROM building_queue ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap()
    };

    let first = push().await.unwrap_err().to_string();
    assert!(first.contains("unreachable"), "{first}");
    assert_eq!(posts(), 3, "three failures open the breaker");
    let mut expected = vec![("pending".to_string(), 1); 3];
    expected.extend(vec![("pending".to_string(), 0); 17]);
    assert_eq!(
        attempts().await,
        expected,
        "rows never sent keep their budget"
    );

    let paused = push().await.unwrap();
    assert_eq!(paused.outcome.as_str(), "paused");
    assert_eq!(posts(), 3, "no call before the probe is due");

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(push().await.is_err(), "the probe fails: still down");
    assert_eq!(posts(), 4, "one probe, one row");
    assert_eq!(push().await.unwrap().outcome.as_str(), "paused");

    env.sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let report = push().await.unwrap();
    assert_eq!((report.outcome.as_str(), report.counts.sent), ("ok", 20));
    assert_eq!(posts(), 24);
    let done = attempts().await;
    db.close().await;
    assert!(done.iter().all(|(status, _)| status == "done"), "{done:?}");
    assert_eq!(
        done.iter().map(|(_, n)| n).sum::<i64>(),
        24,
        "an attempt per POST sent, none for the refused ones"
    );
}
