//! `/metrics` (Prometheus text) and `/healthz` for the daemon, on `metrics.listen`.

use super::Context;
use crate::httpd::{self, Request, Response};
use crate::metrics::METRICS;
use futures::FutureExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Binds `addr` and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("metrics.listen: cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    let handler = move |req: Request| {
        let ctx = ctx.clone();
        async move { answer(&req, &ctx) }.boxed()
    };
    Ok(tokio::spawn(httpd::serve(listener, None, handler, stop)))
}

fn answer(req: &Request, ctx: &Context) -> Response {
    if req.method != "GET" {
        return Response::text(405, "method not allowed\n");
    }
    match req.path.as_str() {
        "/metrics" => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            METRICS.render(),
        ),
        "/healthz" => match ctx.healthy() {
            Ok(()) => Response::text(200, "ok\n"),
            Err(why) => Response::text(503, format!("unhealthy: {why}\n")),
        },
        _ => Response::text(404, "not found\n"),
    }
}
