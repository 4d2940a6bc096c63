//! The operator API (super_admin only), and its status page at `/admin`.

pub(crate) mod adjustments;
pub(crate) mod opt_outs;
pub(crate) mod purchases;
pub(crate) mod settings;
pub(crate) mod status;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(status::page))
        .route("/companies/{id}/adjustments", post(adjustments::create))
        .route(
            "/companies/{id}/opt-outs/{phone}",
            axum::routing::delete(opt_outs::remove),
        )
        .route("/purchases/{id}/approve", post(purchases::approve))
        .route("/purchases/{id}/reject", post(purchases::reject))
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
}
