//! `GET /metrics`: the fleet's figures (queues read now; messages, credits, payments at most
//! `METRICS_CACHE_SECS` old), and this process's counters and latency histograms, in
//! OpenMetrics text for Prometheus.

mod fleet;

pub use fleet::TableCache;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::metrics;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// Prometheus metrics (OpenMetrics text; series listed in the README).
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
))]
pub async fn scrape(State(state): State<AppState>) -> Response {
    let fleet = fleet::snapshot(&state.pool, &state.queues, &state.fleet_tables).await;
    let mut registry = metrics::registry();
    fleet.register(&mut registry);
    metrics::register_process(&mut registry);
    (
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&registry),
    )
        .into_response()
}

/// Middleware: times every request by method, route template (never the raw path, so ids do not
/// multiply series) and status.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    metrics::http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Serves this process's series alone at `/metrics` on `listener`: what `work` and `schedule`
/// expose on `METRICS_ADDR` (the fleet series come from the HTTP process). Runs until the task
/// is dropped.
pub async fn serve_process(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
                metrics::render_process(),
            )
        }),
    );
    axum::serve(listener, app).await
}
