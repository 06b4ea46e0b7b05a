//! No secret anywhere: the key, the secret, every token issued and the Basic credentials never
//! appear in stdout, stderr (at TRACE) or the database, and Debug output redacts them; not even
//! when the appliance echoes the key and secret back in its answers.

use crate::helpers::{TestEnv, text};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::any;
use d42sim::{Fault, FaultRule, SimConfig};
use tokio_util::sync::CancellationToken;

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn the_fault_suite_at_trace_leaks_no_key_secret_or_token() {
    let sim = SimConfig {
        devices: 300,
        client_key: "ck-4158a64aa7274f6-leakcheck".into(),
        secret_key: "sk-9f1e2d3c4b5a-leakcheck".into(),
        ..SimConfig::default()
    };
    let env = TestEnv::start(
        sim.clone(),
        "[log]\nlevel = \"trace\"\n[devices]\npage_size = 100",
    )
    .await;
    let mut captured = String::new();
    let mut run = async |args: &[&str]| {
        let out = env.run(args).await;
        let (stdout, stderr) = text(&out);
        captured.push_str(&stdout);
        captured.push_str(&stderr);
    };
    run(&["check-config", "--connect"]).await;
    env.sim.inject(FaultRule {
        path_prefix: "/api/".into(),
        method: None,
        fault: Fault::Unauthorized,
        times: 1,
        skip: 1,
    });
    env.sim.inject(FaultRule {
        path_prefix: "/api/".into(),
        method: None,
        fault: Fault::Status(500),
        times: 1,
        skip: 2,
    });
    run(&["pull"]).await;
    env.sim.expire_tokens();
    run(&["enqueue-building", "--name", "leak-hq"]).await;
    run(&["push"]).await;
    env.sim.inject(FaultRule {
        path_prefix: "/api/".into(),
        method: None,
        fault: Fault::Unauthorized,
        times: 100,
        skip: 0,
    });
    run(&["pull"]).await;
    run(&["status", "--json"]).await;
    let db = std::fs::read(env.db_path()).unwrap();
    let wal = std::fs::read(format!("{}-wal", env.db_path().display())).unwrap_or_default();
    let stored = String::from_utf8_lossy(&[db, wal].concat()).into_owned();

    assert!(
        captured.contains("TRACE") || captured.contains("\"level\":\"TRACE\""),
        "logging ran at trace"
    );
    let tokens = env.sim.issued_tokens();
    assert!(tokens.len() >= 3, "{tokens:?}");
    let mut secrets = vec![
        sim.client_key.clone(),
        sim.secret_key.clone(),
        base64(format!("{}:{}", sim.client_key, sim.secret_key).as_bytes()),
    ];
    secrets.extend(tokens);
    for secret in &secrets {
        assert!(!captured.contains(secret.as_str()), "output leaks {secret}");
        assert!(!stored.contains(secret.as_str()), "database leaks {secret}");
    }
    let debug = format!("{:?} {:?}", env.settings(), env.client());
    for secret in &secrets[..2] {
        assert!(!debug.contains(secret.as_str()));
    }
    assert!(debug.contains("REDACTED"));
}

/// A Device42 stand-in that echoes the API client's key and secret back in its answers: a
/// device page whose `device_id` is the key, and a building refusal quoting both.
async fn echoing_appliance(key: &str, secret: &str) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let page = serde_json::json!({
        "total_count": 1, "offset": 0, "limit": 1000,
        "Devices": [{"device_id": key, "name": format!("host of {secret}")}],
    })
    .to_string();
    let refusal = serde_json::json!({
        "code": 1,
        "msg": format!("API client {key} (secret {secret}) may not add buildings"),
    })
    .to_string();
    let token = serde_json::json!({
        "code": 0, "token": "tok-echo-0001", "ttl": 10, "token_id": 1,
        "msg": "connected",
        "expires": (chrono::Utc::now() + chrono::Duration::minutes(10))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    })
    .to_string();
    let json = |body: String| ([(CONTENT_TYPE, "application/json")], body);
    let app = Router::new()
        .route(
            "/tauth/1.0/token/",
            any(move || std::future::ready(json(token.clone()))),
        )
        .route(
            "/api/2.0/devices/",
            any(move || std::future::ready(json(page.clone()))),
        )
        .fallback(move || std::future::ready(json(refusal.clone())));
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped.cancelled_owned())
            .await
    });
    (base_url, stop)
}

#[tokio::test]
async fn an_appliance_echoing_the_key_and_secret_gets_them_masked_in_logs_and_rows() {
    // Arrange: key and secret too short to look like tokens, so only knowing them masks them.
    let sim = SimConfig {
        client_key: "ck-echo-7f3a".into(),
        secret_key: "sk-echo-91bd".into(),
        ..SimConfig::default()
    };
    let env = TestEnv::start(sim.clone(), "").await;
    let (appliance, stop) = echoing_appliance(&sim.client_key, &sim.secret_key).await;
    env.write_config(&format!("base_url = \"{appliance}\"\nmax_retries = 0"), "");

    // Act: a pull whose page quotes the key, a push whose refusal quotes both.
    let mut captured = String::new();
    for args in [
        &["pull"][..],
        &["enqueue-building", "--name", "echo-hq"],
        &["push"],
    ] {
        let (stdout, stderr) = text(&env.run(args).await);
        captured.push_str(&stdout);
        captured.push_str(&stderr);
    }
    stop.cancel();

    // Assert: the failures are recorded, with the echoed values masked everywhere.
    let db = env.db().await;
    let (status, run_error) = crate::helpers::last_run(&db, "pull_devices").await;
    let (queue_status, last_error): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM building_queue WHERE name = 'echo-hq'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    db.close().await;
    let run_error = run_error.unwrap_or_default();
    let last_error = last_error.unwrap_or_default();
    assert_eq!((status.as_str(), queue_status.as_str()), ("failed", "dead"));
    assert!(run_error.contains("[redacted]"), "{run_error}");
    assert!(last_error.contains("[redacted]"), "{last_error}");
    let stored = String::from_utf8_lossy(
        &[
            std::fs::read(env.db_path()).unwrap(),
            std::fs::read(format!("{}-wal", env.db_path().display())).unwrap_or_default(),
        ]
        .concat(),
    )
    .into_owned();
    for secret in [&sim.client_key, &sim.secret_key] {
        assert!(
            !captured.contains(secret.as_str()),
            "output leaks {secret}: {captured}"
        );
        assert!(!run_error.contains(secret.as_str()), "{run_error}");
        assert!(!last_error.contains(secret.as_str()), "{last_error}");
        assert!(!stored.contains(secret.as_str()), "database leaks {secret}");
    }
}
