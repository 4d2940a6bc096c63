//! The HTTP ingress (axum): the CRM API under `/v1`, the operator API under `/admin`, health and
//! the OpenAPI document. Webhooks arrive with the sending and purchase issues.

pub(crate) mod admin;
pub(crate) mod api;
pub mod auth;
mod health;
pub(crate) mod idempotency;
mod metrics;
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
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::accounts;
use crate::config::Config;
use crate::live::{LiveProviders, Providers};
use crate::messages::Acceptor;
use crate::messages::rates::Rates;
use crate::providers::pause::AuthPauses;
use crate::queue::Queues;
use crate::ratelimit::{Quota, RateLimiter};
use crate::routing;
use crate::settings::SettingsError;
pub use auth::JwtKeys;
pub use metrics::serve_process as serve_process_metrics;
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
    /// The providers in force (Twilio's callback tokens, Daraja, Stripe, the bank account),
    /// reloaded when the operator's settings change.
    pub providers: LiveProviders,
    /// Fleet-wide pauses of accounts whose credentials the provider refused (status page).
    pub pauses: AuthPauses,
    /// Per-company request budget of the `/v1` API, fleet-wide; `None` when turned off.
    pub api_quota: Option<Quota>,
    pub api_limiter: RateLimiter,
    /// Finds the API keys of `/v1` requests in groups (one statement per batch of requests).
    pub api_keys: accounts::ApiKeys,
    /// Writes accepted messages in groups (one insert and one commit per batch of requests).
    pub acceptor: Acceptor,
    /// Companies' countries, for reading the local numbers of the messages they send.
    pub countries: accounts::Countries,
    /// The rate card, held for `SETTINGS_RELOAD_MS` (prices every accepted message).
    pub rates: Rates,
    /// The routing table, held as long (a batch's estimate follows its messages' routes).
    pub routing: routing::Tables,
    /// The per-address flood limit of `/webhooks`, in this process.
    pub webhook_flood: webhooks::FloodLimit,
    /// The PostgreSQL figures of `/metrics`, kept between scrapes.
    pub fleet_tables: metrics::TableCache,
}

/// Why the state could not be built: a bad Redis URL, or operator settings that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

impl AppState {
    /// The state with the providers the environment configures, nothing read from the database
    /// (tests, benches and the demo).
    pub fn new(pool: PgPool, config: Config) -> Result<Self, StateError> {
        let providers = LiveProviders::fixed(Providers::from_config(&config));
        Self::with_providers(pool, config, providers)
    }

    /// The state `serve` runs: each provider from the environment when it sets it, else from the
    /// operator's settings, kept current as the settings change.
    pub async fn load(pool: PgPool, config: Config) -> Result<Self, StateError> {
        let providers = LiveProviders::start(pool.clone(), Arc::new(config.clone())).await?;
        Self::with_providers(pool, config, providers)
    }

    fn with_providers(
        pool: PgPool,
        config: Config,
        providers: LiveProviders,
    ) -> Result<Self, StateError> {
        let redis = redis::Client::open(config.redis_url.as_str())?;
        let queues = Queues::connect_lazy(&config.redis_url, &config.redis_prefix)?;
        let jwt = Arc::new(JwtKeys::new(&config));
        let api_quota = (config.api_rate_per_second > 0).then(|| Quota {
            count: config.api_rate_per_second,
            period: std::time::Duration::from_secs(1),
            burst: config.api_rate_burst,
        });
        let api_limiter = RateLimiter::new(queues.connection(), queues.prefix());
        let acceptor = Acceptor::start(pool.clone(), queues.clone());
        let api_keys = accounts::ApiKeys::start(pool.clone());
        let rates = Rates::new(pool.clone(), config.settings_reload);
        let routing = routing::Tables::new(pool.clone(), config.settings_reload);
        let pauses = AuthPauses::new(queues.connection(), queues.prefix());
        let webhook_flood = webhooks::FloodLimit::new(&config);
        let fleet_tables = metrics::TableCache::new(config.metrics_cache);
        Ok(AppState {
            countries: accounts::Countries::default(),
            webhook_flood,
            fleet_tables,
            acceptor,
            api_keys,
            rates,
            routing,
            pool,
            redis,
            queues,
            config: Arc::new(config),
            jwt,
            providers,
            pauses,
            api_quota,
            api_limiter,
        })
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(openapi::routes())
        .merge(metrics::routes())
        .nest("/v1", api::routes())
        .nest("/admin", admin::routes())
        // Flood-limited per client address before any handler reads a body or the database.
        .nest(
            "/webhooks",
            webhooks::routes().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                webhooks::flood::limit,
            )),
        )
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .route_layer(axum::middleware::from_fn(metrics::record))
        .layer(axum::middleware::from_fn(problem::ensure_problem))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // What the request created, recorded by its handler (`record_subject`), so that
                    // its line links the request id to the message, batch or payment.
                    tracing::info_span!("http", method = %req.method(), path = %crate::telemetry::redacted_path(req.uri().path()), request_id = %id,
                                        message_id = tracing::field::Empty, batch_id = tracing::field::Empty,
                                        payment_id = tracing::field::Empty)
                })
                // One line per request at INFO (status, latency), inside the span: the request id
                // is on it.
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // With the peer's address: the webhook flood limit is keyed by it.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
