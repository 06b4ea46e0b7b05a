//! What a request that got no HTTP answer says about the connection: a timeout, a refused
//! certificate, another TLS failure, a failed DNS lookup, a refused connection, or a break.
//!
//! The cause is found by type in the error chain (reqwest, hyper, `std::io`, rustls) where the
//! libraries give one, and the message names it in the operator's terms.

use super::error::Error;
use super::tls::describe_certificate_error;
use std::error::Error as StdError;
use std::time::Duration;

/// What the message needs to know about the client's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Whether `device42.ca_file` is set, for the hint on a refused certificate.
    pub ca_file: bool,
    /// `device42.connect_timeout`, reported when connecting timed out.
    pub connect_timeout: Duration,
    /// `device42.request_timeout`, reported when the answer timed out.
    pub request_timeout: Duration,
}

/// The [`Error`] for a request to `endpoint` that failed before or while the answer came in.
pub fn classify(e: &reqwest::Error, endpoint: String, settings: Settings) -> Error {
    if e.is_timeout() {
        let after = if e.is_connect() {
            settings.connect_timeout
        } else {
            settings.request_timeout
        };
        return Error::Timeout { endpoint, after };
    }
    let causes = chain(e);
    if let Some(tls) = causes
        .iter()
        .find_map(|c| c.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(cert) => Error::Certificate {
                endpoint,
                cause: describe_certificate_error(cert, settings.ca_file),
            },
            other => Error::Connect {
                endpoint,
                cause: format!("tls handshake failed: {other}"),
            },
        };
    }
    let innermost = causes.last().map(|c| c.to_string()).unwrap_or_default();
    let host = host_of(e);
    if causes.iter().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    }) {
        return Error::Connect {
            endpoint,
            cause: format!("connection refused by {host}"),
        };
    }
    // hyper-util's resolver error has no public type: its message is the only mark.
    if causes.iter().any(|c| c.to_string() == "dns error") {
        return Error::Connect {
            endpoint,
            cause: format!(
                "dns lookup of {} failed: {innermost}",
                e.url()
                    .and_then(|u| u.host_str())
                    .unwrap_or("the appliance")
            ),
        };
    }
    if e.is_connect() {
        return Error::Connect {
            endpoint,
            cause: innermost,
        };
    }
    Error::Transport {
        endpoint,
        cause: innermost,
    }
}

/// `e` and its causes, outermost first. An `io::Error` that wraps another error is followed
/// into it (its own `source` skips the wrapped error).
fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(cur) = next {
        out.push(cur);
        next = match cur.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => cur.source(),
        };
    }
    out
}

/// `host:port` of the request, never more of the URL.
fn host_of(e: &reqwest::Error) -> String {
    e.url()
        .and_then(|u| {
            let host = u.host_str()?;
            Some(match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            })
        })
        .unwrap_or_else(|| "the appliance".into())
}
