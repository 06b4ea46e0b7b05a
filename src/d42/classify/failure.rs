//! What a request that got no HTTP answer says about the connection: a timeout (connecting, or
//! waiting for the answer), a refused certificate, another TLS failure, a failed DNS lookup, a
//! refused connection, or a break.
//!
//! The cause is found by type in the error chain (reqwest, `std::io`, rustls, and the client's
//! own [`LookupFailed`] for DNS), never by an error's text, and the message names it in the
//! operator's terms.

use crate::d42::dns::LookupFailed;
use crate::d42::error::{CertificateRefusal, ConnectCause, Error};
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
        // A connection that was never made sent nothing: a failure to connect, not a request
        // the appliance may have received (which a building POST is charged for).
        if e.is_connect() {
            let after = settings.connect_timeout;
            return Error::Connect {
                endpoint,
                cause: ConnectCause::TimedOut { after },
            };
        }
        let after = settings.request_timeout;
        return Error::Timeout { endpoint, after };
    }
    let causes = chain(e);
    if let Some(tls) = causes
        .iter()
        .find_map(|c| c.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(reason) => Error::Certificate {
                endpoint,
                cause: CertificateRefusal {
                    reason: reason.clone(),
                    ca_file: settings.ca_file,
                },
            },
            other => Error::Connect {
                endpoint,
                cause: ConnectCause::Handshake(other.to_string()),
            },
        };
    }
    let innermost = causes.last().map(|c| c.to_string()).unwrap_or_default();
    if causes.iter().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    }) {
        return Error::Connect {
            endpoint,
            cause: ConnectCause::Refused { host: host_of(e) },
        };
    }
    if let Some(lookup) = causes.iter().find_map(|c| c.downcast_ref::<LookupFailed>()) {
        return Error::Connect {
            endpoint,
            cause: ConnectCause::Dns {
                host: lookup.host.clone(),
                detail: innermost,
            },
        };
    }
    if e.is_connect() {
        return Error::Connect {
            endpoint,
            cause: ConnectCause::Other(innermost),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::d42::dns::SystemResolver;
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    const SETTINGS: Settings = Settings {
        ca_file: false,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
    };

    /// What a GET of `url` that got no answer is classified as, with the client's resolver.
    async fn failure_of(url: &str) -> Error {
        let http = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(SystemResolver))
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let e = http.get(url).send().await.unwrap_err();
        classify(&e, "GET /x".into(), SETTINGS)
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_dns_failure() {
        let e = failure_of("https://appliance.d42sync.invalid/").await;

        let Error::Connect {
            cause: ConnectCause::Dns { host, .. },
            ..
        } = &e
        else {
            panic!("not a dns failure: {e:?}");
        };
        assert_eq!(host, "appliance.d42sync.invalid");
        assert!(
            e.to_string().starts_with(
                "GET /x: cannot connect: dns lookup of appliance.d42sync.invalid failed: "
            ),
            "{e}"
        );
        assert!(e.is_retryable());
    }

    #[tokio::test]
    async fn a_closed_port_is_a_refused_connection() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);

        let e = failure_of(&format!("https://127.0.0.1:{port}/")).await;

        let expected = ConnectCause::Refused {
            host: format!("127.0.0.1:{port}"),
        };
        assert!(
            matches!(&e, Error::Connect { cause, .. } if *cause == expected),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("GET /x: cannot connect: connection refused by 127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn a_connection_not_made_within_the_connect_timeout_is_a_failure_to_connect() {
        // A listener whose accept queue is full drops further SYNs: the next connect hangs.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        while queued.len() < 8 {
            match tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(stream) => queued.push(stream.unwrap()),
                Err(_) => break,
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(300))
            .build()
            .unwrap();

        let e = http
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap_err();
        let e = classify(&e, "POST /api/1.0/buildings/".into(), SETTINGS);

        assert!(
            matches!(
                &e,
                Error::Connect {
                    cause: ConnectCause::TimedOut { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "POST /api/1.0/buildings/: cannot connect: no connection within 5s (device42.connect_timeout)"
        );
        assert!(e.is_retryable());
        drop(listener);
    }

    #[tokio::test]
    async fn plain_http_where_tls_is_expected_is_a_failed_handshake() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        });

        let e = failure_of(&format!("https://127.0.0.1:{port}/")).await;
        server.await.unwrap();

        assert!(
            matches!(
                &e,
                Error::Connect {
                    cause: ConnectCause::Handshake(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("GET /x: cannot connect: tls handshake failed: "),
            "{e}"
        );
    }
}
