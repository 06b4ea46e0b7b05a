//! The simulator over HTTPS with a self-signed certificate for `localhost`.

use std::time::Duration;

use super::loopback;
use crate::{SimConfig, Simulator};

/// A self-signed certificate and key for `localhost`, as PEM.
fn localhost_cert() -> (String, String) {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (issued.cert.pem(), issued.signing_key.serialize_pem())
}

/// A client trusting only `ca_pem` (or the usual roots when `None`).
fn tls_client(ca_pem: Option<&str>) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10));
    let builder = match ca_pem {
        Some(pem) => {
            builder.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        }
        None => builder,
    };
    builder.build().unwrap()
}

#[tokio::test]
async fn a_client_trusting_the_certificate_gets_a_token_over_https() {
    let (cert, key) = localhost_cert();
    let sim = Simulator::start_tls(SimConfig::default(), loopback(), &cert, &key)
        .await
        .unwrap();

    let response = tls_client(Some(&cert))
        .post(format!("{}/tauth/1.0/token/", sim.base_url()))
        .basic_auth("sim-client-key", Some("sim-secret-key"))
        .send()
        .await
        .unwrap();

    assert!(sim.base_url().starts_with("https://localhost:"));
    assert_eq!(response.status(), 200);
    assert_eq!(sim.issued_tokens().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let (cert, key) = localhost_cert();
    let sim = Simulator::start_tls(SimConfig::default(), loopback(), &cert, &key)
        .await
        .unwrap();
    let (other_cert, _) = localhost_cert();

    let outcome = tls_client(Some(&other_cert))
        .post(format!("{}/tauth/1.0/token/", sim.base_url()))
        .send()
        .await;

    assert!(outcome.unwrap_err().is_connect());
    assert_eq!(sim.token_requests(), 0);
}

#[tokio::test]
async fn a_bad_key_pem_is_refused_at_start() {
    let (cert, _) = localhost_cert();

    let outcome = Simulator::start_tls(SimConfig::default(), loopback(), &cert, "not a key").await;

    assert_eq!(
        outcome.unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}
