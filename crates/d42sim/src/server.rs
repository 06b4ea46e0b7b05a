//! The simulator's HTTP server: axum on hyper, over plain TCP or TLS.
//!
//! axum turns each request into a [`Request`] for the endpoints and their [`Response`] back into
//! an HTTP answer. The accept loop and the connections are hyper's, driven here rather than by
//! `axum::serve`, for the control some faults need below HTTP: a connection reset instead of an
//! answer (see [`Resettable`]), and TLS on the same socket.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::endpoints;
use crate::http::{Delivery, Request, Response};
use crate::state::Shared;

/// Largest request body accepted; larger ones get 413. Building posts are a few hundred bytes.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long a keep-alive connection may sit idle between requests (hyper's header read timeout
/// runs while it waits for the next request). Longer than reqwest's default pool idle timeout
/// (90 s), so that the client, not the server, closes an idle pooled connection and a request
/// never races a server-side close.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the simulator on `listener` (HTTPS when `tls` is given) until `stop` is cancelled,
/// then stops accepting, ends every open connection and returns once they are all gone.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let app = Router::new().fallback(answer).with_state(shared);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors or a connection reset before accept: keep serving.
                    tokio::task::yield_now().await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(stream, tls.clone(), app.clone(), stop.clone()));
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection: the TLS handshake when asked for, then HTTP/1.1 until either side ends it.
async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    stop: CancellationToken,
) {
    let reset = ResetSwitch::default();
    let stream = Resettable {
        tcp: stream,
        reset: reset.clone(),
    };
    match tls {
        None => http(stream, reset, app, stop).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            if let Ok(Ok(stream)) = handshake.await {
                http(stream, reset, app, stop).await;
            }
        }
    }
}

/// Serves HTTP/1.1 on `stream` with `app`, each request carrying the connection's reset switch.
async fn http<S>(stream: S, reset: ResetSwitch, app: Router, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(reset.clone());
        app.clone().call(request)
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = served => {}
        _ = stop.cancelled() => {}
    }
}

/// The one axum handler: reads the request, lets the endpoints answer, delivers the answer.
async fn answer(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Answer {
    let reset = request.extensions().get::<ResetSwitch>().cloned();
    let (head, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return build(Response::text(413, "request body too large\n")),
    };
    let request = Request {
        method: head.method.to_string(),
        path: head.uri.path().to_string(),
        query: head.uri.query().unwrap_or_default().to_string(),
        headers: head
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect(),
        body: body.to_vec(),
    };
    let response = endpoints::handle(shared, request).await;
    match response.delivery {
        Delivery::Reset => {
            if let Some(reset) = reset {
                reset.flip();
            }
            build(response)
        }
        // Dropped with the connection, when the client leaves or the server stops.
        Delivery::Hang => std::future::pending().await,
        _ => build(response),
    }
}

/// An HTTP answer as axum sends it.
type Answer = axum::response::Response;

/// The HTTP answer for `response`, its body sent as its delivery says.
fn build(response: Response) -> Answer {
    let mut answer = Answer::new(Body::empty());
    *answer.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = answer.headers_mut();
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    let full_length = HeaderValue::from(response.body.len());
    let close = HeaderValue::from_static("close");
    *answer.body_mut() = match response.delivery {
        Delivery::Normal | Delivery::Reset | Delivery::Hang => Body::from(response.body),
        Delivery::Truncate { keep } => {
            headers.insert(axum::http::header::CONTENT_LENGTH, full_length);
            headers.insert(axum::http::header::CONNECTION, close);
            truncated(response.body, keep)
        }
        Delivery::Dribble { bytes_per_sec } => {
            headers.insert(axum::http::header::CONTENT_LENGTH, full_length);
            headers.insert(axum::http::header::CONNECTION, close);
            dribbled(response.body, bytes_per_sec)
        }
    };
    answer
}

/// The first `keep` bytes of `body`, then a failure, which makes hyper close the connection
/// short of the `Content-Length` it announced. The failure waits one turn of the scheduler, so
/// that hyper writes out the bytes it holds before it learns of it.
fn truncated(mut body: Vec<u8>, keep: usize) -> Body {
    use futures::StreamExt;
    body.truncate(keep);
    let kept = futures::stream::iter([Ok(Bytes::from(body))]);
    let failure = futures::stream::once(async {
        tokio::task::yield_now().await;
        Err(io::Error::other("truncated on purpose"))
    });
    Body::from_stream(kept.chain(failure))
}

/// `body` at about `bytes_per_sec`, in pieces ten times a second (one byte at a time when
/// slower).
fn dribbled(body: Vec<u8>, bytes_per_sec: u32) -> Body {
    let bytes_per_sec = bytes_per_sec.max(1) as usize;
    let piece = (bytes_per_sec / 10).max(1);
    let period = Duration::from_secs_f64(piece as f64 / bytes_per_sec as f64);
    let pieces: Vec<Bytes> = body.chunks(piece).map(Bytes::copy_from_slice).collect();
    let ticks = tokio::time::interval(period);
    let stream = futures::stream::unfold(
        (pieces.into_iter(), ticks),
        |(mut pieces, mut ticks)| async move {
            let piece = pieces.next()?;
            ticks.tick().await;
            Some((Ok::<_, Infallible>(piece), (pieces, ticks)))
        },
    );
    Body::from_stream(stream)
}

/// Set on a connection when its answer is to be a reset.
#[derive(Debug, Clone, Default)]
struct ResetSwitch(Arc<AtomicBool>);

impl ResetSwitch {
    fn flip(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A TCP stream that, once its switch is on, refuses to write and sets `SO_LINGER` 0, so that
/// dropping it (as hyper does after the failed write) sends the client a reset instead of an
/// answer. Below TLS, so that no TLS record of the answer leaves either.
struct Resettable {
    /// The connection.
    tcp: TcpStream,
    /// Flipped by the handler whose answer is a reset.
    reset: ResetSwitch,
}

impl Resettable {
    /// The error every write gets once the switch is on.
    fn refuse(&self) -> io::Error {
        let _ = self.tcp.set_zero_linger();
        io::ErrorKind::ConnectionReset.into()
    }
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.reset.is_on() {
            return Poll::Ready(Err(self.refuse()));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset.is_on() {
            return Poll::Ready(Err(self.refuse()));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset.is_on() {
            return Poll::Ready(Err(self.refuse()));
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
