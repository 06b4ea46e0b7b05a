//! TLS trust for the appliance: the system's CAs plus `device42.ca_file`, and appliance
//! certificates as they are made in the field.
//!
//! An appliance's self-signed certificate made the usual way (`openssl req -x509`) is marked
//! CA:TRUE. `curl --cacert` accepts it as the server's own certificate when it is in the CA
//! file; WebPKI refuses any CA certificate in that place (`CaUsedAsEndEntity`). The
//! `ApplianceVerifier` verifies as WebPKI does and, only when WebPKI refuses for that reason
//! and the presented certificate is byte for byte one of `ca_file`'s, accepts it after checking
//! the host name and the validity dates itself. Handshake signatures are always verified.
//!
//! Also here: what a refused certificate tells the operator ([`describe_certificate_error`]).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;

/// The rustls settings for reaching the appliance: WebPKI over the system's CAs and those of
/// `ca_pem` (the contents of `device42.ca_file`), with appliance certificates accepted as
/// described in the module docs. Fails on a CA file rustls cannot use or an empty trust store.
/// Without `https` (an http base_url, loopback only) no TLS connection is ever made, so no
/// trust store is read: a host without one still reaches a local appliance.
pub fn client_config(ca_pem: Option<&[u8]>, https: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up tls: {e}"))?;
    let mut config = if https {
        let verifier = ApplianceVerifier::new(ca_pem, provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        // Trusts nothing: a redirect to https is reported, never followed.
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    // The client speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// WebPKI verification that also accepts an appliance's own CA:TRUE certificate when it is one
/// of `ca_file`'s.
#[derive(Debug)]
struct ApplianceVerifier {
    /// The normal verifier (system CAs and `ca_file`); every decision starts with it.
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `ca_file`, the only ones that may be accepted as the server's own
    /// although WebPKI refuses a CA certificate there.
    pinned: Vec<CertificateDer<'static>>,
}

impl ApplianceVerifier {
    /// Trusts the system's CAs and those of `ca_pem`.
    fn new(
        ca_pem: Option<&[u8]>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, String> {
        let pinned: Vec<CertificateDer<'static>> = match ca_pem {
            Some(pem) => CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("device42.ca_file: cannot read a certificate: {e}"))?,
            None => Vec::new(),
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in &pinned {
            roots
                .add(cert.clone())
                .map_err(|e| format!("device42.ca_file: a certificate cannot be used: {e}"))?;
        }
        // Unreadable system certificates are skipped, as the platform verifier does: the ones
        // that load still count, and ca_file alone is enough to reach an appliance.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            return Err(
                "no trusted certificates: the system store is empty; set device42.ca_file".into(),
            );
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
        Ok(Self { webpki, pinned })
    }
}

impl ServerCertVerifier for ApplianceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let pinned = self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref());
        if !(pinned && is_ca_used_as_end_entity(&refused)) {
            return Err(refused);
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&cert, server_name)?;
        check_validity(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Whether WebPKI refused the certificate for being a CA certificate in the server's place.
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(c) if is_self_signed_ca(c))
}

fn is_self_signed_ca(e: &CertificateError) -> bool {
    match e {
        CertificateError::Other(other) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// The reason a certificate was refused, with what the operator can do about it: `ca_file`
/// says whether `device42.ca_file` is set.
pub fn describe_certificate_error(e: &CertificateError, ca_file: bool) -> String {
    let trust = if ca_file {
        "not signed by device42.ca_file nor by a system CA: put the appliance's certificate or its CA in that file"
    } else {
        "set device42.ca_file to the appliance's certificate or its CA"
    };
    match e {
        CertificateError::UnknownIssuer => format!("unknown issuer ({trust})"),
        CertificateError::BadSignature => format!("bad signature ({trust})"),
        e if is_self_signed_ca(e) => format!("self-signed certificate ({trust})"),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("{e} (use a name the certificate is issued for in device42.base_url)")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("{e} (renew the appliance's certificate)")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("{e} (check this host's clock)")
        }
        e => e.to_string(),
    }
}

/// Refuses a certificate outside its validity period, as WebPKI would.
fn check_validity(der: &[u8], now: UnixTime) -> Result<(), CertificateError> {
    let (not_before, not_after) = validity(der).ok_or(CertificateError::BadEncoding)?;
    if now < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before,
        });
    }
    if now > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after,
        });
    }
    Ok(())
}

/// `notBefore` and `notAfter` of an X.509 certificate (RFC 5280 4.1.2.5).
fn validity(der: &[u8]) -> Option<(UnixTime, UnixTime)> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let (_, cert, _) = tlv(der).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (_, tbs, _) = tlv(cert).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (_, validity, _) = tlv(rest).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (tag, not_before, after) = tlv(validity)?;
    let not_before = time(tag, not_before)?;
    let (tag, not_after, _) = tlv(after)?;
    Some((not_before, time(tag, not_after)?))
}

/// One DER element: tag, contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, tail) = rest.split_at(n);
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, value: &[u8]) -> Option<UnixTime> {
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let yy = digits(&text[..2])? as i32;
            // RFC 5280: 50..99 are 19xx, 00..49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 14) => (digits(&text[..4])? as i32, &text[4..]),
        _ => return None,
    };
    let at = chrono::NaiveDate::from_ymd_opt(year, digits(&rest[..2])?, digits(&rest[2..4])?)?
        .and_hms_opt(
            digits(&rest[4..6])?,
            digits(&rest[6..8])?,
            digits(&rest[8..10])?,
        )?
        .and_utc()
        .timestamp();
    Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at).ok()?,
    )))
}

#[cfg(test)]
mod tests;
