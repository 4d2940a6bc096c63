//! The operator API (super_admin only), and its status page at `/admin`.

pub(crate) mod adjustments;
pub(crate) mod companies;
pub(crate) mod held_sends;
pub(crate) mod opt_outs;
pub(crate) mod purchases;
pub(crate) mod rate_card;
pub(crate) mod reports;
pub(crate) mod routes;
pub(crate) mod settings;
pub(crate) mod status;

use axum::Router;
use axum::routing::{get, patch, post};

use super::AppState;

/// How long the operator's pages wait for Redis before showing a figure as unavailable. The
/// pages read Redis concurrently, so a Redis that does not answer costs this once, not per read:
/// they are most wanted when something is broken.
const REDIS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `f`'s answer, or why Redis could not give it within [`REDIS_WAIT`].
pub(crate) async fn from_redis<T>(
    f: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(REDIS_WAIT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("Redis: {e}")),
        Err(_) => Err(format!(
            "Redis did not answer within {} s",
            REDIS_WAIT.as_secs()
        )),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(status::page))
        .route("/companies", get(companies::list))
        .route("/companies/{id}", patch(companies::update))
        .route("/companies/{id}/changes", get(companies::changes))
        .route("/companies/{id}/adjustments", post(adjustments::create))
        .route(
            "/companies/{id}/opt-outs/{phone}",
            axum::routing::delete(opt_outs::remove),
        )
        .route("/messages/{id}/resolve", post(held_sends::resolve))
        .route("/reports/revenue", get(reports::revenue))
        .route("/routes", get(routes::get).put(routes::put))
        .route("/rate-card", get(rate_card::get).put(rate_card::put))
        .route("/rate-card/changes", get(rate_card::changes))
        .route("/purchases/{id}/approve", post(purchases::approve))
        .route("/purchases/{id}/reject", post(purchases::reject))
        .route("/purchases/{id}/refund", post(purchases::refund))
        .route(
            "/settings/twilio",
            get(settings::get_twilio).put(settings::put_twilio),
        )
        .route(
            "/settings/stripe",
            get(settings::get_stripe).put(settings::put_stripe),
        )
        .route(
            "/settings/mpesa",
            get(settings::get_mpesa).put(settings::put_mpesa),
        )
        .route(
            "/settings/vodacom",
            get(settings::get_vodacom).put(settings::put_vodacom),
        )
        .route(
            "/settings/beem",
            get(settings::get_beem).put(settings::put_beem),
        )
        .route(
            "/settings/africastalking",
            get(settings::get_africastalking).put(settings::put_africastalking),
        )
}
