//! A small HTTP/1.1 server on tokio, used by the Device42 simulator.
//!
//! It owns connection handling only: parsing request heads with `httparse`, reading
//! `Content-Length` bodies, keep-alive, optional TLS, and the ways a response can be delivered
//! (normally, or broken on purpose so that clients can be tested against misbehaving servers).
//! What a request means is the handler's business.
//!
//! Limits are deliberate: a request head is at most [`MAX_HEAD_BYTES`], a body at most
//! [`MAX_BODY_BYTES`], chunked request bodies are refused with 411, and an idle keep-alive
//! connection is closed after [`IDLE_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Largest request head (request line and headers) accepted; larger ones get 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted; larger ones get 413. Building posts are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long a keep-alive connection may sit idle between requests. Longer than reqwest's default
/// pool idle timeout (90 s), so that the client, not the server, closes an idle pooled connection
/// and a request never races a server-side close.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client may take to send the rest of a request once it has started one.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused request's connection keeps reading before it closes (see
/// `drain_before_close`); long enough for a client to finish sending a request that is too big.
const LINGER_ON_REFUSAL: Duration = Duration::from_secs(2);
/// Most headers a request may carry; more get 431.
const MAX_HEADERS: usize = 100;

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method as sent, e.g. `GET`.
    pub method: String,
    /// The path part of the request target, still percent-encoded, without the query.
    pub path: String,
    /// The query string after `?`, still encoded; empty when there is none.
    pub query: String,
    /// Headers in arrival order, names as sent (look them up with [`Request::header`]).
    pub headers: Vec<(String, String)>,
    /// The body, read in full according to `Content-Length`.
    pub body: Vec<u8>,
}

/// The first header called `name` (compared case-insensitively) in a header list.
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first parameter `key` of a query string, percent- and `+`-decoded.
pub fn query_param_in(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Request {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The first query parameter with this key, percent- and `+`-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        query_param_in(&self.query, key)
    }

    /// The body read as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// How a response reaches the client. Everything but [`Delivery::Normal`] closes the connection
/// afterwards; those variants exist so that clients can be tested against broken servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Send the whole response.
    Normal,
    /// Send the head with the full `Content-Length`, then only `keep` body bytes, then close.
    Truncate {
        /// How many body bytes are sent before the close.
        keep: usize,
    },
    /// Send nothing and close with `SO_LINGER` 0, so that the client sees a connection reset.
    Reset,
    /// Send nothing and keep the connection open until the client leaves or the server stops.
    Hang,
    /// Send the head at once, then the body slowly.
    Dribble {
        /// Body bytes per second.
        bytes_per_sec: u32,
    },
}

/// One HTTP response, built by a handler.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Headers to send; `content-length`, `date` and `connection` are added by the server.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// How the response is sent.
    pub delivery: Delivery,
}

impl Response {
    /// A response with this content type and body, delivered normally.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
            delivery: Delivery::Normal,
        }
    }

    /// An `application/json` response whose body is already-serialized JSON text.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    /// An `application/json` response serialized from a value.
    pub fn json_value(status: u16, value: &serde_json::Value) -> Response {
        Response::json(status, value.to_string())
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// A `text/html` response.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/html; charset=utf-8", body.into())
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same response, delivered differently.
    pub fn with_delivery(mut self, delivery: Delivery) -> Response {
        self.delivery = delivery;
        self
    }
}

/// What answers requests: any async function from [`Request`] to [`Response`].
pub trait Handler: Fn(Request) -> BoxFuture<'static, Response> + Send + Sync + 'static {}
impl<F> Handler for F where F: Fn(Request) -> BoxFuture<'static, Response> + Send + Sync + 'static {}

/// Serves HTTP (or HTTPS when `tls` is given) on `listener` until `shutdown` is cancelled, then
/// stops accepting, ends every open connection and returns once they are all gone.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: CancellationToken,
) {
    let handler = Arc::new(handler);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors or a connection reset before accept: keep serving.
                    tokio::task::yield_now().await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (handler, tls, shutdown) = (handler.clone(), tls.clone(), shutdown.clone());
                connections.spawn(async move {
                    match tls {
                        None => serve_connection(stream, handler, shutdown).await,
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                            if let Ok(Ok(stream)) = handshake.await {
                                serve_connection(stream, handler, shutdown).await;
                            }
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// A connection the server can answer on and, when asked, reset.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket underneath, to set `SO_LINGER` on.
    fn tcp(&self) -> &TcpStream;
}

impl Connection for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Connection for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Why reading a request stopped without a request.
enum ReadOutcome {
    /// A complete request, and whether the client wants the connection kept open.
    Request(Request, bool),
    /// The client closed, went idle too long, or the server is stopping: close quietly.
    Close,
    /// The request was bad: answer with this and close.
    Reject(Response),
}

/// Answers requests on one connection until it closes.
async fn serve_connection<C: Connection, H: Handler>(
    mut conn: C,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (request, keep_alive) = match read_request(&mut conn, &mut buf, &shutdown).await {
            ReadOutcome::Request(request, keep_alive) => (request, keep_alive),
            ReadOutcome::Close => return,
            ReadOutcome::Reject(response) => {
                if write_response(&mut conn, response, false, &shutdown)
                    .await
                    .is_ok()
                {
                    drain_before_close(&mut conn, &shutdown).await;
                }
                return;
            }
        };
        let response = tokio::select! {
            _ = shutdown.cancelled() => return,
            response = handler(request) => response,
        };
        let keep_alive = keep_alive && response.delivery == Delivery::Normal;
        match write_response(&mut conn, response, keep_alive, &shutdown).await {
            Ok(true) if keep_alive => continue,
            _ => return,
        }
    }
}

/// Reads one request head and body from `conn`, keeping any bytes of a following request in `buf`.
async fn read_request<C: Connection>(
    conn: &mut C,
    buf: &mut Vec<u8>,
    shutdown: &CancellationToken,
) -> ReadOutcome {
    let (head_len, request, keep_alive, body_len) = loop {
        if let Some(parsed) = parse_head(buf) {
            match parsed {
                Ok(parsed) => break parsed,
                Err(response) => return ReadOutcome::Reject(response),
            }
        }
        if buf.len() > MAX_HEAD_BYTES {
            return ReadOutcome::Reject(Response::text(431, "request head too large\n"));
        }
        let wait = if buf.is_empty() {
            IDLE_TIMEOUT
        } else {
            READ_TIMEOUT
        };
        if !read_more(conn, buf, wait, shutdown).await {
            return ReadOutcome::Close;
        }
    };
    buf.drain(..head_len);
    let expects_continue = request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && buf.len() < body_len {
        // curl waits a second for this before sending a large body.
        if conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
        {
            return ReadOutcome::Close;
        }
    }
    while buf.len() < body_len {
        if !read_more(conn, buf, READ_TIMEOUT, shutdown).await {
            return ReadOutcome::Close;
        }
    }
    let body: Vec<u8> = buf.drain(..body_len).collect();
    ReadOutcome::Request(Request { body, ..request }, keep_alive)
}

/// Reads whatever arrives next into `buf`; false when the connection should close instead.
async fn read_more<C: Connection>(
    conn: &mut C,
    buf: &mut Vec<u8>,
    wait: Duration,
    shutdown: &CancellationToken,
) -> bool {
    buf.reserve(8192);
    tokio::select! {
        _ = shutdown.cancelled() => false,
        read = tokio::time::timeout(wait, conn.read_buf(buf)) => matches!(read, Ok(Ok(n)) if n > 0),
    }
}

/// A parsed head: its length in bytes, the request without body, keep-alive, and the body length.
type ParsedHead = (usize, Request, bool, usize);

/// Parses a request head from the start of `buf`: `None` while incomplete, an error response when
/// it is malformed or asks for something this server refuses.
fn parse_head(buf: &[u8]) -> Option<Result<ParsedHead, Response>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Partial) => return None,
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD_BYTES => n,
        Ok(httparse::Status::Complete(_)) => {
            return Some(Err(Response::text(431, "request head too large\n")));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Some(Err(Response::text(431, "too many headers\n")));
        }
        Err(_) => return Some(Err(Response::text(400, "malformed request\n"))),
    };
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        method: parsed.method.unwrap_or("GET").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Some(Err(Response::text(
            411,
            "chunked request bodies are not supported\n",
        )));
    }
    let body_len = match request
        .header("content-length")
        .map(|v| v.trim().parse::<usize>())
    {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY_BYTES => n,
        Some(Ok(_)) => return Some(Err(Response::text(413, "request body too large\n"))),
        Some(Err(_)) => return Some(Err(Response::text(400, "bad content-length\n"))),
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let keep_alive = match parsed.version {
        Some(1) => !connection.contains("close"),
        _ => connection.contains("keep-alive"),
    };
    Some(Ok((head_len, request, keep_alive, body_len)))
}

/// Writes `response` as its delivery says; true when the connection may carry another request.
async fn write_response<C: Connection>(
    conn: &mut C,
    response: Response,
    keep_alive: bool,
    shutdown: &CancellationToken,
) -> std::io::Result<bool> {
    match response.delivery {
        Delivery::Reset => {
            conn.tcp().set_zero_linger()?;
            return Ok(false);
        }
        Delivery::Hang => {
            hang(conn, shutdown).await;
            return Ok(false);
        }
        _ => {}
    }
    let head = render_head(&response, keep_alive);
    conn.write_all(head.as_bytes()).await?;
    match response.delivery {
        Delivery::Truncate { keep } => {
            let keep = keep.min(response.body.len());
            conn.write_all(&response.body[..keep]).await?;
            conn.flush().await?;
            conn.shutdown().await?;
            Ok(false)
        }
        Delivery::Dribble { bytes_per_sec } => {
            dribble(conn, &response.body, bytes_per_sec, shutdown).await?;
            Ok(false)
        }
        _ => {
            conn.write_all(&response.body).await?;
            conn.flush().await?;
            Ok(keep_alive)
        }
    }
}

/// The status line and headers of `response`, ending with the blank line.
fn render_head(response: &Response, keep_alive: bool) -> String {
    use std::fmt::Write;
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if !matches!(response.status, 100..=199 | 204 | 304) {
        let _ = write!(head, "content-length: {}\r\n", response.body.len());
    }
    let _ = write!(
        head,
        "date: {}\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    head.push_str(if keep_alive {
        "connection: keep-alive\r\n\r\n"
    } else {
        "connection: close\r\n\r\n"
    });
    head
}

/// After refusing a request, reads and discards what the client still sends for a moment before
/// closing: closing with unread input makes the kernel send a reset, which can destroy the refusal
/// before the client reads it.
async fn drain_before_close<C: Connection>(conn: &mut C, shutdown: &CancellationToken) {
    let _ = conn.shutdown().await;
    let _ = tokio::time::timeout(LINGER_ON_REFUSAL, hang(conn, shutdown)).await;
}

/// Keeps the connection open without answering until the client leaves or the server stops.
async fn hang<C: Connection>(conn: &mut C, shutdown: &CancellationToken) {
    let mut scratch = [0u8; 1024];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            read = conn.read(&mut scratch) => if !matches!(read, Ok(n) if n > 0) { return },
        }
    }
}

/// Sends `body` at about `bytes_per_sec`, in pieces ten times a second (one byte at a time when
/// slower), until done, the client leaves or the server stops.
async fn dribble<C: Connection>(
    conn: &mut C,
    body: &[u8],
    bytes_per_sec: u32,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let bytes_per_sec = bytes_per_sec.max(1) as usize;
    let piece = (bytes_per_sec / 10).max(1);
    let period = Duration::from_secs_f64(piece as f64 / bytes_per_sec as f64);
    let mut ticks = tokio::time::interval(period);
    for chunk in body.chunks(piece) {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        conn.write_all(chunk).await?;
        conn.flush().await?;
    }
    conn.shutdown().await
}

/// The reason phrase for the status codes this project sends.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
