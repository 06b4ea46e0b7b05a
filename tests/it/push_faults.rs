//! The push when the fault is ours or the appliance's, not the row's: a token request that
//! fails, a process killed mid-POST, an absurd `Retry-After`. Only Device42's answer about a
//! row may cost it an attempt or dead-letter it.

use crate::helpers::{TestEnv, last_run, log_lines, text};
use d42sim::{Fault, FaultRule, SimConfig, Simulator};
use d42sync::jobs::push_buildings;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BUILDINGS: &str = "/api/1.0/buildings/";
const TOKEN: &str = "/tauth/1.0/token/";

/// `(name, status, attempts, next_attempt_at)` of every queue row, in id order.
async fn rows(env: &TestEnv) -> Vec<(String, String, i64, Option<String>)> {
    let db = env.db().await;
    let rows = sqlx::query_as(
        "SELECT name, status, attempts, next_attempt_at FROM building_queue ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    db.close().await;
    rows
}

async fn enqueue(env: &TestEnv, names: &[&str]) {
    let db = env.db().await;
    for name in names {
        sqlx::query("INSERT INTO building_queue (name) VALUES (?)")
            .bind(name)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    db.close().await;
}

/// `d42sync push` against `base_url` instead of the simulator the config names.
async fn push_to(env: &TestEnv, base_url: &str) -> Output {
    let mut cmd = env.command(&["push"]);
    cmd.env("D42SYNC_DEVICE42__BASE_URL", base_url);
    crate::helpers::output(cmd).await
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_push_whose_token_request_fails_leaves_every_row_pending_and_uncharged() {
    let self_signed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let untrusted = Simulator::start_tls(
        SimConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
        &self_signed.cert.pem(),
        &self_signed.signing_key.serialize_pem(),
    )
    .await
    .unwrap();
    // (case, the fault the token request meets, the base URL, what the error names)
    let cases: [(&str, Option<Fault>, Option<String>, &str); 5] = [
        ("wrong base path", None, Some("/d42".into()), "HTTP 404"),
        ("token 503", Some(Fault::Status(503)), None, "HTTP 503"),
        (
            "refused credentials",
            Some(Fault::PermissionDenied),
            None,
            "authentication failed",
        ),
        (
            "connection refused",
            None,
            Some(format!("http://127.0.0.1:{}", closed_port())),
            "connect",
        ),
        (
            "untrusted certificate",
            None,
            Some(untrusted.base_url()),
            "certificate",
        ),
    ];
    for (case, fault, base_url, cause) in cases {
        let env = TestEnv::start(SimConfig::default(), "").await;
        enqueue(&env, &["a", "b", "c", "d", "e", "f"]).await;
        if let Some(fault) = fault.clone() {
            env.sim
                .inject(FaultRule::new(TOKEN, fault).method("POST").times(1_000));
        }
        let base_url = match base_url {
            Some(url) if url.starts_with('/') => format!("{}{url}", env.sim.base_url()),
            Some(url) => url,
            None => env.sim.base_url(),
        };

        let out = push_to(&env, &base_url).await;

        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        for (name, status, attempts, due) in rows(&env).await {
            assert_eq!(
                (status.as_str(), attempts, due),
                ("pending", 0, None),
                "{case}: row {name}"
            );
        }
        let db = env.db().await;
        let (status, error) = last_run(&db, "push_buildings").await;
        db.close().await;
        assert_eq!(status, "failed", "{case}");
        assert!(
            error.as_deref().is_some_and(|e| e.contains(cause)),
            "{case}: {error:?}"
        );
        // d42sync's own lines: a dependency's, forwarded from the `log` crate, carry its
        // `log.target` (rustls-platform-verifier logs each failed handshake at ERROR).
        let errors: Vec<&str> = log_lines(&stderr, "ERROR")
            .into_iter()
            .filter(|line| !line.contains("\"log.target\""))
            .collect();
        assert_eq!(errors.len(), 1, "{case}: one ERROR line: {stderr}");
        assert!(errors[0].contains(cause), "{case}: {}", errors[0]);
        if fault.is_some() {
            assert_eq!(env.sim.token_requests(), 1, "{case}: one token request");
        }
        assert!(
            !stderr.contains("dead-lettered"),
            "{case}: no row was given up: {stderr}"
        );
        assert_eq!(env.sim.building_posts("a"), 0, "{case}");
    }
}

#[tokio::test]
async fn a_push_whose_buildings_post_cannot_connect_leaves_the_row_uncharged() {
    // The token is fetched while the appliance is up; then the appliance goes away, so the
    // buildings POST itself never connects.
    let env = TestEnv::start(SimConfig::default(), "").await;
    enqueue(&env, &["gone-before", "gone-after"]).await;
    let (settings, client) = (env.settings(), env.client());
    client.connect().await.unwrap();
    env.sim.shutdown().await;

    let db = env.db().await;
    let result =
        push_buildings::run(&db, &client, &settings.buildings, &CancellationToken::new()).await;
    db.close().await;

    let error = format!("{:#}", result.unwrap_err());
    assert!(error.contains("connect"), "{error}");
    assert_eq!(
        rows(&env).await,
        vec![
            ("gone-before".into(), "pending".into(), 0, None),
            ("gone-after".into(), "pending".into(), 0, None),
        ]
    );
}

/// Starts `d42sync push`, waits until the simulator has received POST number `posts` for
/// `name`, and SIGKILLs it while that POST waits for its answer.
async fn kill_push_mid_post(env: &TestEnv, name: &str, posts: usize) {
    let mut child = env
        .command(&["push"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while env.sim.building_posts(name) < posts {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "POST {posts} never arrived"
        );
        assert!(child.try_wait().unwrap().is_none(), "push ended on its own");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn six_kills_mid_post_then_a_500_leave_the_row_pending_and_it_ends_done() {
    let env = TestEnv::start(
        SimConfig::default(),
        "[buildings]\nmax_attempts = 3\nretry_base = \"1ms\"\nretry_max = \"1ms\"",
    )
    .await;
    enqueue(&env, &["killed"]).await;
    env.sim.set_post_delay(Duration::from_secs(60));
    for kill in 1..=6 {
        kill_push_mid_post(&env, "killed", kill).await;
    }
    env.sim.set_post_delay(Duration::ZERO);
    env.sim
        .inject(FaultRule::new(BUILDINGS, Fault::Status(500)).method("POST"));

    let after_500 = env.run(&["push"]).await;

    assert!(after_500.status.success(), "{}", text(&after_500).1);
    let (_, status, attempts, _) = rows(&env).await.remove(0);
    assert_eq!(
        (status.as_str(), attempts),
        ("pending", 1),
        "six kills cost nothing, the 500 one attempt"
    );

    let answered = env.run(&["push"]).await;

    assert!(answered.status.success(), "{}", text(&answered).1);
    let (_, status, attempts, _) = rows(&env).await.remove(0);
    assert_eq!((status.as_str(), attempts), ("done", 2));
    assert_eq!(env.sim.building_posts("killed"), 8);
    assert_eq!(
        env.sim
            .buildings()
            .iter()
            .filter(|b| b.name == "killed")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_huge_retry_after_on_a_push_is_capped_and_the_row_waits_for_it() {
    let env = TestEnv::start_with(SimConfig::default(), "max_retry_after = \"1m\"", "").await;
    enqueue(&env, &["throttled"]).await;
    env.sim.inject(
        FaultRule::new(
            BUILDINGS,
            Fault::TooManyRequests {
                retry_after: Some("99999999999999999".into()),
            },
        )
        .method("POST"),
    );
    let (settings, client) = (env.settings(), env.client());
    let db = env.db().await;
    let push = async || {
        push_buildings::run(&db, &client, &settings.buildings, &CancellationToken::new()).await
    };
    let before = chrono::Utc::now();

    push().await.unwrap();

    let after = chrono::Utc::now();
    let (_, status, attempts, due) = rows(&env).await.remove(0);
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    let due = due.unwrap();
    let at = d42sync::time::parse_iso(&due).unwrap_or_else(|| panic!("not a timestamp: {due}"));
    let cap = chrono::Duration::minutes(1);
    assert!(
        at >= before + cap && at <= after + cap,
        "due {due}: at most max_retry_after ahead"
    );

    push().await.unwrap();
    db.close().await;

    assert_eq!(
        env.sim.building_posts("throttled"),
        1,
        "not sent again before {due}"
    );
}
