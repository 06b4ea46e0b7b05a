//! The Device42 client against the simulator: token lifecycle, retries, timeouts, TLS.

use crate::helpers::{TestEnv, text};
use d42sync::d42::Error;
use d42sync::sim::{Fault, FaultRule, SimConfig};
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
    settings.device42.secret_key = "wrong".to_string().into();
    let client = d42sync::d42::Client::new(&settings.device42).unwrap();
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
    let sim = d42sync::sim::Simulator::start_tls(
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
