//! Tests of the HTTP server over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Delivery, Request, Response, serve};

/// A running server for one test.
struct Server {
    /// Where it listens.
    addr: SocketAddr,
    /// Cancels it.
    shutdown: CancellationToken,
    /// Ends when `serve` returns.
    task: JoinHandle<()>,
}

/// Starts a server whose handler answers every request with `answer(request)`.
async fn start(answer: fn(Request) -> Response) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handler = move |request: Request| async move { answer(request) }.boxed();
    let task = tokio::spawn(serve(listener, None, handler, shutdown.clone()));
    Server {
        addr,
        shutdown,
        task,
    }
}

/// A client that never uses a proxy and gives up quickly.
fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Echoes method, path, decoded query parameter `q`, header `x-probe` and the body.
fn echo(request: Request) -> Response {
    let text = format!(
        "{} {} q={} probe={} body={}",
        request.method,
        request.path,
        request.query_param("q").unwrap_or_default(),
        request.header("X-PROBE").unwrap_or_default(),
        String::from_utf8_lossy(&request.body)
    );
    Response::text(200, text)
}

/// Sends raw bytes and reads until the server closes or a second passes.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_request_reaches_the_handler_with_decoded_query_headers_and_body() {
    let server = start(echo).await;

    let response = client(Duration::from_secs(5))
        .post(format!("http://{}/some/path?q=a%20b%2Bc&x=1", server.addr))
        .header("x-probe", "yes")
        .body("hello")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "POST /some/path q=a b+c probe=yes body=hello"
    );
}

#[tokio::test]
async fn keep_alive_answers_several_requests_on_one_connection() {
    let server = start(echo).await;
    let one = "GET /one HTTP/1.1\r\nhost: x\r\n\r\n";
    let two = "POST /two HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc";

    let out = raw_exchange(server.addr, format!("{one}{two}").as_bytes()).await;

    assert!(out.contains("GET /one q= probe= body="), "{out}");
    assert!(out.contains("POST /two q= probe= body=abc"), "{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
}

#[tokio::test]
async fn chunked_request_bodies_are_refused_with_411() {
    let server = start(echo).await;

    let out = raw_exchange(
        server.addr,
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;

    assert!(out.starts_with("HTTP/1.1 411"), "{out}");
}

#[tokio::test]
async fn a_request_head_over_64_kib_is_refused_with_431() {
    let server = start(echo).await;
    let huge = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70 * 1024));

    let out = raw_exchange(server.addr, huge.as_bytes()).await;

    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
}

#[tokio::test]
async fn a_truncated_body_makes_the_client_fail_reading_it() {
    let server = start(|_| {
        Response::json(200, "{\"a\": \"0123456789\"}").with_delivery(Delivery::Truncate { keep: 5 })
    })
    .await;

    let response = client(Duration::from_secs(5))
        .get(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();

    assert_eq!(response.content_length(), Some(19));
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn a_reset_makes_the_client_see_a_connection_error() {
    let server = start(|_| Response::text(200, "never sent").with_delivery(Delivery::Reset)).await;

    let outcome = client(Duration::from_secs(5))
        .get(format!("http://{}/", server.addr))
        .send()
        .await;

    let error = outcome.unwrap_err();
    assert!(!error.is_timeout(), "{error:?}");
}

#[tokio::test]
async fn a_hang_makes_a_client_with_a_short_timeout_time_out() {
    let server = start(|_| Response::text(200, "never sent").with_delivery(Delivery::Hang)).await;

    let outcome = client(Duration::from_millis(300))
        .get(format!("http://{}/", server.addr))
        .send()
        .await;

    assert!(outcome.unwrap_err().is_timeout());
}

#[tokio::test]
async fn a_dribbled_body_arrives_whole_but_slowly() {
    let server = start(|_| {
        Response::text(200, "0123456789").with_delivery(Delivery::Dribble { bytes_per_sec: 40 })
    })
    .await;
    let started = Instant::now();

    let response = client(Duration::from_secs(5))
        .get(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();

    assert_eq!(body, "0123456789");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_ends_open_connections() {
    let server = start(|_| Response::text(200, "never sent").with_delivery(Delivery::Hang)).await;
    let mut hanging = TcpStream::connect(server.addr).await.unwrap();
    hanging
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();

    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();

    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), hanging.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the hanging connection was not ended");
    assert!(TcpStream::connect(server.addr).await.is_err());
}
