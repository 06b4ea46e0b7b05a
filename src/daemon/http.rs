//! `/metrics` (OpenMetrics text) and `/healthz` for the daemon, on `metrics.listen`, served by
//! axum. Any other path is 404; a method other than GET (or HEAD, which axum answers as GET
//! without the body) is 405.

use crate::metrics::{self, Metrics};
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The daemon's health check: `Err` with the reason while it is unhealthy.
pub type Health = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the endpoint answers from.
#[derive(Clone)]
pub struct Endpoint {
    /// The daemon's metrics, rendered for `/metrics`.
    pub metrics: Metrics,
    /// Asked on every `/healthz`.
    pub health: Health,
}

/// Binds `addr` and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    endpoint: Endpoint,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("metrics.listen: cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    Ok(spawn(listener, endpoint, stop))
}

/// Serves on `listener` until `stop`; open connections are then closed once their request is
/// answered.
pub fn spawn(listener: TcpListener, endpoint: Endpoint, stop: CancellationToken) -> JoinHandle<()> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(health))
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(endpoint);
    tokio::spawn(async move {
        // axum's server ends only through the shutdown signal, and then without an error.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    })
}

async fn render_metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        endpoint.metrics.render(),
    )
}

async fn health(State(endpoint): State<Endpoint>) -> (StatusCode, String) {
    match (endpoint.health)() {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {why}\n"),
        ),
    }
}

/// 404 for a GET of a path not served, 405 for any other method, as for the paths served.
async fn unknown_path(method: Method) -> (StatusCode, &'static str) {
    if method == Method::GET {
        (StatusCode::NOT_FOUND, "not found\n")
    } else {
        method_not_allowed().await
    }
}

async fn method_not_allowed() -> (StatusCode, &'static str) {
    (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
}

#[cfg(test)]
mod tests;
