//! The Device42 client against the simulator: token lifecycle, retries, timeouts, TLS.

use crate::helpers::{TestEnv, text};
use d42sim::{Fault, FaultRule, SimConfig};
use d42sync::d42::Error;
use std::time::{Duration, Instant};

const DEVICES: &str = "/api/2.0/devices/";

fn page() -> Vec<(&'static str, String)> {
    vec![("limit", "10".to_string()), ("offset", "0".to_string())]
}

fn rule(fault: Fault, times: u32) -> FaultRule {
    FaultRule {
        path_prefix: DEVICES.into(),
        method: None,
        fault,
        times,
        skip: 0,
    }
}

fn gets(env: &TestEnv) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.path == DEVICES)
        .count()
}

#[tokio::test]
async fn one_token_serves_many_requests() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let client = env.client();
    for _ in 0..20 {
        client.get(DEVICES, &page()).await.unwrap();
    }
    assert_eq!(env.sim.token_requests(), 1);
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_before_it_expires() {
    let env = TestEnv::start(
        SimConfig {
            token_ttl: Duration::from_secs(5),
            ..SimConfig::default()
        },
        "",
    )
    .await;
    let client = env.client();
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < Duration::from_secs(20) {
        client.get(DEVICES, &page()).await.unwrap();
        requests += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(requests > 100);
    assert_eq!(
        env.sim.unauthorized_responses(),
        0,
        "no request may meet an expired token"
    );
    assert!(
        env.sim.token_requests() >= 5,
        "20 s of 5 s tokens: {} token requests",
        env.sim.token_requests()
    );
}

#[tokio::test]
async fn fifty_requests_meeting_an_expired_token_cause_one_token_request() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let client = env.client();
    client.get(DEVICES, &page()).await.unwrap();
    env.sim.expire_tokens();
    let before = env.sim.token_requests();

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get(DEVICES, &page()).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }

    assert_eq!(env.sim.token_requests() - before, 1);
    assert!(
        env.sim.unauthorized_responses() <= 50,
        "each request retried at most once"
    );
}

#[tokio::test]
async fn a_401_after_renewal_is_an_auth_error_without_a_loop() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    env.sim.inject(rule(Fault::Unauthorized, 100));
    let err = env.client().get(DEVICES, &page()).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err}");
    assert_eq!(
        gets(&env),
        2,
        "the first try and one retry with a renewed token"
    );
    assert_eq!(env.sim.token_requests(), 2);
}

#[tokio::test]
async fn a_bearer_call_refused_with_the_permission_500_renews_the_token_once_and_succeeds() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    env.sim.inject(rule(Fault::PermissionDenied, 1));

    let body = env.client().get(DEVICES, &page()).await;

    assert!(body.is_ok(), "{:?}", body.err());
    assert_eq!(gets(&env), 2, "the refused try and one with a new token");
    assert_eq!(env.sim.token_requests(), 2);
}

#[tokio::test]
async fn a_permission_500_after_renewal_is_an_auth_error_without_a_loop() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    env.sim.inject(rule(Fault::PermissionDenied, 100));

    let err = env.client().get(DEVICES, &page()).await.unwrap_err();

    assert!(matches!(err, Error::Auth { status: 500, .. }), "{err}");
    assert!(err.to_string().contains("permission"), "{err}");
    assert_eq!(gets(&env), 2);
    assert_eq!(env.sim.token_requests(), 2);
}

#[tokio::test]
async fn bad_credentials_give_one_auth_error_and_no_retry_storm() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    let mut settings = env.settings();
    settings.device42.secret_key = d42sync::config::SecretKey::Loaded("wrong".to_string().into());
    let client = d42sync::d42::Client::new(&settings.device42, Default::default()).unwrap();
    let err = client.get(DEVICES, &page()).await.unwrap_err();
    assert!(matches!(err, Error::Auth { status: 500, .. }), "{err}");
    assert!(err.to_string().contains("permission"), "{err}");
    assert_eq!(env.sim.token_requests(), 1);
    assert_eq!(gets(&env), 0);
}

#[tokio::test]
async fn transient_failures_are_retried_until_they_succeed() {
    let faults = [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Unavailable { retry_after: None },
        Fault::TooManyRequests { retry_after: None },
        Fault::Reset,
        Fault::Truncate,
    ];
    for fault in faults {
        let env = TestEnv::start(SimConfig::default(), "").await;
        env.sim.inject(rule(fault.clone(), 2));
        let body = env.client().get(DEVICES, &page()).await;
        assert!(body.is_ok(), "{fault:?}: {:?}", body.err());
        assert_eq!(gets(&env), 3, "{fault:?}: two failures, then success");
    }
}

#[tokio::test]
async fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    for as_date in [false, true] {
        let env = TestEnv::start(SimConfig::default(), "").await;
        // An HTTP date has whole seconds: two seconds ahead is at least one second away.
        let retry_after = match as_date {
            false => "1".to_string(),
            true => httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2)),
        };
        env.sim.inject(rule(
            Fault::TooManyRequests {
                retry_after: Some(retry_after.clone()),
            },
            1,
        ));
        let started = Instant::now();
        env.client().get(DEVICES, &page()).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{retry_after}: retried after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_permanent_400_is_not_retried() {
    let env = TestEnv::start(SimConfig::default(), "").await;
    env.sim.inject(rule(Fault::Status(400), 1));
    let err = env.client().get(DEVICES, &page()).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { status: 400, .. }), "{err}");
    assert_eq!(gets(&env), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_timeout() {
    let env = TestEnv::start_with(
        SimConfig::default(),
        "max_retries = 0\nrequest_timeout = \"1s\"",
        "",
    )
    .await;
    let client = env.client();
    client.get(DEVICES, &page()).await.unwrap();
    for fault in [Fault::Hang, Fault::Dribble] {
        env.sim.inject(rule(fault.clone(), 1));
        let started = Instant::now();
        let err = client.get(DEVICES, &page()).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{fault:?}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{fault:?}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn an_html_502_page_is_reported_with_status_and_content_type() {
    let env = TestEnv::start_with(SimConfig::default(), "max_retries = 0", "").await;
    env.sim.inject(rule(Fault::HtmlPage(502), 1));
    let err = env
        .client()
        .get(DEVICES, &page())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("502") && err.contains("text/html") && err.contains("offset 0"),
        "{err}"
    );
    assert!(err.len() < 400, "one short line: {err}");
}

/// A private CA and a "localhost" certificate it signed, as PEM (ca, cert, key).
fn private_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn tls_needs_the_ca_file_or_an_explicit_insecure_setting() {
    let (ca, cert, key) = private_ca();
    let sim = d42sim::Simulator::start_tls(
        SimConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
        &cert,
        &key,
    )
    .await
    .unwrap();
    let env = TestEnv::start(SimConfig::default(), "").await;
    let ca_path = env.dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let url = format!("D42SYNC_DEVICE42__BASE_URL={}", sim.base_url());
    let (var, value) = url.split_once('=').unwrap();
    let check = |extra: Vec<(&'static str, String)>| {
        let mut cmd = env.command(&["check-config", "--connect"]);
        cmd.env(var, value);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        crate::helpers::output(cmd)
    };

    let default = check(vec![]).await;
    assert_eq!(default.status.code(), Some(1));
    assert!(
        text(&default).1.contains("certificate verification failed"),
        "{}",
        text(&default).1
    );

    let with_ca = check(vec![(
        "D42SYNC_DEVICE42__CA_FILE",
        ca_path.display().to_string(),
    )])
    .await;
    assert!(with_ca.status.success(), "{}", text(&with_ca).1);

    let insecure = check(vec![(
        "D42SYNC_DEVICE42__INSECURE_SKIP_TLS_VERIFY",
        "true".to_string(),
    )])
    .await;
    assert!(insecure.status.success(), "{}", text(&insecure).1);
    let warnings = crate::helpers::log_lines(&text(&insecure).1, "WARN").join("\n");
    assert!(
        warnings.contains("insecure_skip_tls_verify"),
        "{}",
        text(&insecure).1
    );
}

/// A self-signed "localhost" certificate marked CA:TRUE, as `openssl req -x509` makes an
/// appliance's certificate, as PEM (cert, key).
fn appliance_cert() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A simulator serving `cert` over HTTPS and a config pointing at it, with `ca_pem` (if any)
/// as `device42.ca_file`.
async fn tls_env(cert: &str, key: &str, ca_pem: Option<&str>) -> (d42sim::Simulator, TestEnv) {
    let sim = d42sim::Simulator::start_tls(
        SimConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
        cert,
        key,
    )
    .await
    .unwrap();
    let env = TestEnv::start(SimConfig::default(), "").await;
    let ca_line = match ca_pem {
        Some(pem) => {
            let path = env.dir.path().join("ca.pem");
            std::fs::write(&path, pem).unwrap();
            format!("ca_file = \"{}\"", path.display())
        }
        None => String::new(),
    };
    env.write_config(&format!("base_url = \"{}\"\n{ca_line}", sim.base_url()), "");
    (sim, env)
}

#[tokio::test]
async fn an_appliance_certificate_marked_as_a_ca_is_trusted_when_given_as_ca_file() {
    let (cert, key) = appliance_cert();
    let (sim, env) = tls_env(&cert, &key, Some(&cert)).await;

    let outcome = env.client().get(DEVICES, &page()).await;

    assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    assert_eq!(sim.token_requests(), 1);
}

#[tokio::test]
async fn a_self_signed_certificate_that_is_not_in_ca_file_is_refused() {
    let (cert, key) = appliance_cert();
    let (other, _) = appliance_cert();
    let (sim, env) = tls_env(&cert, &key, Some(&other)).await;

    let err = env.client().get(DEVICES, &page()).await.unwrap_err();

    assert!(matches!(err, Error::Certificate { .. }), "{err}");
    assert!(
        err.to_string().contains("not signed by device42.ca_file"),
        "{err}"
    );
    assert_eq!(sim.token_requests(), 0);
}

/// Runs `pull` with `log.level` set to `level` and returns (exit code, stderr).
async fn pull_at(env: &TestEnv, level: &str) -> (Option<i32>, String) {
    let mut cmd = env.command(&["pull"]);
    cmd.env("D42SYNC_LOG__LEVEL", level);
    let out = crate::helpers::output(cmd).await;
    (out.status.code(), text(&out).1)
}

/// Lines that come from inside the TLS and HTTP libraries rather than from d42sync.
fn library_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("log.target")
                || l.contains(".cargo/registry")
                || l.contains("rustls")
                || l.contains("hyper")
        })
        .collect()
}

#[tokio::test]
async fn a_pull_refused_by_certificate_verification_logs_one_error_with_a_fitting_hint() {
    let (_ca, cert, key) = private_ca();
    let (_sim, env) = tls_env(&cert, &key, None).await;

    for level in ["info", "debug"] {
        let (code, stderr) = pull_at(&env, level).await;

        assert_eq!(code, Some(1), "{stderr}");
        let errors = crate::helpers::log_lines(&stderr, "ERROR");
        assert_eq!(errors.len(), 1, "{level}: {stderr}");
        assert!(
            errors[0].contains("certificate verification failed")
                && errors[0]
                    .contains("set device42.ca_file to the appliance's certificate or its CA"),
            "{level}: {}",
            errors[0]
        );
        assert_eq!(library_lines(&stderr), Vec::<&str>::new(), "{level}");
    }
}

#[tokio::test]
async fn a_pull_refused_despite_ca_file_says_the_certificate_is_not_signed_by_it() {
    let (_ca, cert, key) = private_ca();
    let (other_ca, _, _) = private_ca();
    let (_sim, env) = tls_env(&cert, &key, Some(&other_ca)).await;

    let (code, stderr) = pull_at(&env, "info").await;

    assert_eq!(code, Some(1), "{stderr}");
    let errors = crate::helpers::log_lines(&stderr, "ERROR");
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("certificate verification failed")
            && errors[0].contains("not signed by device42.ca_file"),
        "{}",
        errors[0]
    );
    assert_eq!(library_lines(&stderr), Vec::<&str>::new());
}

/// WARN lines about retries, per endpoint.
fn retry_warnings(stderr: &str) -> std::collections::BTreeMap<String, usize> {
    let mut per_endpoint = std::collections::BTreeMap::new();
    for line in crate::helpers::log_lines(stderr, "WARN") {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["message"].as_str().unwrap_or("").contains("retrying") {
            let endpoint = v["endpoint"].as_str().unwrap_or("");
            let endpoint = endpoint.split(" (offset").next().unwrap_or("").to_string();
            *per_endpoint.entry(endpoint).or_insert(0) += 1;
        }
    }
    per_endpoint
}

/// Runs `pull` against `base_url` and checks it fails with one ERROR naming `cause`, after at
/// most one retry WARN per endpoint.
async fn assert_unreachable_pull(base_url: &str, cause: &str) {
    let env = TestEnv::start_with(
        SimConfig::default(),
        &format!("base_url = \"{base_url}\"\nbreaker_failures = 0"),
        "[devices]\nconcurrency = 4",
    )
    .await;

    let (code, stderr) = pull_at(&env, "info").await;

    assert_eq!(code, Some(1), "{stderr}");
    let errors = crate::helpers::log_lines(&stderr, "ERROR");
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].to_ascii_lowercase().contains(cause),
        "{cause}: {}",
        errors[0]
    );
    let warnings = retry_warnings(&stderr);
    assert!(!warnings.is_empty(), "the retries are reported: {stderr}");
    assert!(
        warnings.values().all(|n| *n == 1),
        "one WARN per endpoint: {warnings:?}\n{stderr}"
    );
}

#[tokio::test]
async fn a_pull_against_a_closed_port_names_the_refused_connection_and_warns_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);

    assert_unreachable_pull(&format!("https://127.0.0.1:{port}"), "connection refused").await;
}

#[tokio::test]
async fn a_pull_against_a_host_name_that_does_not_resolve_names_dns_and_warns_once() {
    assert_unreachable_pull("https://appliance.d42sync.invalid", "dns").await;
}

#[tokio::test]
async fn a_pull_whose_retries_meet_the_breaker_names_the_root_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = TestEnv::start_with(
        SimConfig::default(),
        &format!("base_url = \"https://127.0.0.1:{port}\"\nbreaker_failures = 3"),
        "[devices]\nconcurrency = 4",
    )
    .await;

    let (code, stderr) = pull_at(&env, "info").await;

    assert_eq!(code, Some(1), "{stderr}");
    let errors = crate::helpers::log_lines(&stderr, "ERROR");
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0]
            .to_ascii_lowercase()
            .contains("connection refused"),
        "{}",
        errors[0]
    );
    assert!(
        retry_warnings(&stderr).values().all(|n| *n == 1),
        "{stderr}"
    );
}
