//! The HTTP ingress (axum): the CRM API under `/v1`, the operator API under `/admin`, health and
//! the OpenAPI document. Webhooks arrive with the sending and purchase issues.

pub(crate) mod admin;
pub(crate) mod api;
pub mod auth;
mod health;
pub(crate) mod idempotency;
mod openapi;
pub mod problem;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, Secret};
use crate::payments::PaymentProviders;
use crate::queue::Queues;
pub use auth::JwtKeys;
pub use openapi::ApiDoc;

/// Everything a handler may use.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: redis::Client,
    /// Connects on first use: the ingress starts (and answers /readyz) while Redis is down.
    pub queues: Queues,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    /// Verifies `X-Twilio-Signature`; without it every Twilio webhook is refused.
    pub twilio_token: Option<Secret>,
    /// Daraja, Stripe and the bank account, for purchases and their webhooks.
    pub payments: PaymentProviders,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config) -> anyhow::Result<Self> {
        let redis = redis::Client::open(config.redis_url.as_str())?;
        let queues = Queues::connect_lazy(&config.redis_url, &config.redis_prefix)?;
        let jwt = Arc::new(JwtKeys::new(&config));
        let twilio_token = config.twilio.as_ref().map(|t| t.auth_token.clone());
        let payments = PaymentProviders::from_config(&config);
        Ok(AppState {
            pool,
            redis,
            queues,
            config: Arc::new(config),
            jwt,
            twilio_token,
            payments,
        })
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(openapi::routes())
        .nest("/v1", api::routes())
        .nest("/admin", admin::routes())
        .nest("/webhooks", webhooks::routes())
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
