//! No secret anywhere: the key, the secret, every token issued and the Basic credentials never
//! appear in stdout, stderr (at TRACE) or the database, and Debug output redacts them.

use crate::helpers::{TestEnv, text};
use d42sync::sim::{Fault, FaultRule, SimConfig};

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
