//! The trust rules on certificates made as appliances make them, and the hints given when one
//! is refused.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, date_time_ymd};
use std::time::Duration;

/// A self-signed certificate for `name`, CA:TRUE as `openssl req -x509` makes it, valid
/// between the two dates (year, month, day), as DER and PEM.
fn appliance_cert(
    name: &str,
    from: (i32, u8, u8),
    until: (i32, u8, u8),
) -> (CertificateDer<'static>, String) {
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(until.0, until.1, until.2);
    let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
    (cert.der().clone(), cert.pem())
}

/// 2027-01-15T00:00:00Z.
const NOW: u64 = 1_799_971_200;
const VALID: ((i32, u8, u8), (i32, u8, u8)) = ((2027, 1, 1), (2027, 2, 1));

/// What the client's verifier says of `presented` for `host`, trusting `ca_file` (PEM).
fn verify(
    ca_file: &str,
    presented: &CertificateDer<'static>,
    host: &str,
) -> Result<ServerCertVerified, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = ApplianceVerifier::new(Some(ca_file.as_bytes()), provider).unwrap();
    verifier.verify_server_cert(
        presented,
        &[],
        &ServerName::try_from(host.to_string()).unwrap(),
        &[],
        UnixTime::since_unix_epoch(Duration::from_secs(NOW)),
    )
}

fn refusal(outcome: Result<ServerCertVerified, rustls::Error>) -> CertificateError {
    match outcome {
        Err(rustls::Error::InvalidCertificate(e)) => e,
        Err(other) => panic!("not a certificate error: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn an_appliance_ca_certificate_in_ca_file_is_accepted_as_the_servers_own() {
    let (cert, pem) = appliance_cert("d42.example.com", VALID.0, VALID.1);

    let outcome = verify(&pem, &cert, "d42.example.com");

    assert!(outcome.is_ok(), "{:?}", outcome.err());
}

#[test]
fn an_appliance_ca_certificate_not_in_ca_file_is_refused() {
    let (served, _) = appliance_cert("d42.example.com", VALID.0, VALID.1);
    let (_, other) = appliance_cert("d42.example.com", VALID.0, VALID.1);

    let e = refusal(verify(&other, &served, "d42.example.com"));

    assert!(is_self_signed_ca(&e), "{e:?}");
    let described = describe_certificate_error(&e, true);
    assert!(
        described.contains("not signed by device42.ca_file"),
        "{described}"
    );
}

#[test]
fn an_appliance_certificate_in_ca_file_is_still_checked_for_the_host_name() {
    let (cert, pem) = appliance_cert("d42.example.com", VALID.0, VALID.1);

    let e = refusal(verify(&pem, &cert, "other.example.com"));

    assert!(
        matches!(e, CertificateError::NotValidForNameContext { .. }),
        "{e:?}"
    );
}

#[test]
fn an_appliance_certificate_in_ca_file_is_still_checked_for_its_dates() {
    let (expired, expired_pem) = appliance_cert("d42.example.com", (2026, 1, 1), (2026, 2, 1));
    let (future, future_pem) = appliance_cert("d42.example.com", (2028, 1, 1), (2028, 2, 1));

    let e = refusal(verify(&expired_pem, &expired, "d42.example.com"));
    assert!(
        matches!(e, CertificateError::ExpiredContext { .. }),
        "{e:?}"
    );
    let e = refusal(verify(&future_pem, &future, "d42.example.com"));
    assert!(
        matches!(e, CertificateError::NotValidYetContext { .. }),
        "{e:?}"
    );
    // The fallback's own check, which WebPKI's happens to precede today.
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW));
    assert!(check_validity(expired.as_ref(), now).is_err());
    assert!(check_validity(future.as_ref(), now).is_err());
    let (valid, _) = appliance_cert("d42.example.com", VALID.0, VALID.1);
    assert_eq!(check_validity(valid.as_ref(), now), Ok(()));
}

#[test]
fn validity_reads_utc_and_generalized_times() {
    let (cert, _) = appliance_cert("a", (2000, 1, 1), (2100, 1, 1));

    let (from, until) = validity(cert.as_ref()).unwrap();

    assert_eq!(from.as_secs(), 946_684_800, "2000-01-01 as UTCTime");
    assert_eq!(
        until.as_secs(),
        4_102_444_800,
        "2100-01-01 as GeneralizedTime"
    );
    assert_eq!(validity(b"\x30\x03\x02\x01"), None);
}

#[test]
fn hints_fit_whether_ca_file_is_set() {
    let without = describe_certificate_error(&CertificateError::UnknownIssuer, false);
    let with = describe_certificate_error(&CertificateError::UnknownIssuer, true);

    assert!(
        without.contains("set device42.ca_file to the appliance's certificate or its CA"),
        "{without}"
    );
    assert!(with.contains("not signed by device42.ca_file"), "{with}");
}
