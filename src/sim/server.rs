//! TLS setup for the simulator and the loop of the `d42sync simulate` command.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{SimConfig, Simulator};

/// A TLS acceptor for this certificate chain and key (PEM text), speaking HTTP/1.1.
pub(crate) fn tls_acceptor(cert_pem: &str, key_pem: &str) -> std::io::Result<TlsAcceptor> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("bad certificate pem", &e))?;
    if certs.is_empty() {
        return Err(invalid("bad certificate pem", &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| invalid("bad private key pem", &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls setup failed", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate and key do not fit", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The `simulate` command: starts a simulator (HTTPS when `tls` gives a certificate and key,
/// each either PEM text or the path of a PEM file), prints `listening on <base_url>` as the only
/// line on stdout, and serves until `shutdown` is cancelled.
pub async fn run(
    cfg: SimConfig,
    listen: SocketAddr,
    tls: Option<(String, String)>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sim = match tls {
        None => Simulator::start(cfg, listen).await,
        Some((cert, key)) => {
            let cert = pem_text(&cert).context("cannot read the tls certificate")?;
            let key = pem_text(&key).context("cannot read the tls key")?;
            Simulator::start_tls(cfg, listen, &cert, &key).await
        }
    }
    .with_context(|| format!("cannot start the simulator on {listen}"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", sim.base_url()).context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);
    shutdown.cancelled().await;
    sim.shutdown().await;
    Ok(())
}

/// `value` itself when it is PEM text, else the contents of the file it names.
fn pem_text(value: &str) -> std::io::Result<String> {
    if value.contains("-----BEGIN") {
        Ok(value.to_string())
    } else {
        std::fs::read_to_string(value)
    }
}
