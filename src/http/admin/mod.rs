//! The operator API (super_admin only).

pub(crate) mod adjustments;
pub(crate) mod purchases;

use axum::Router;
use axum::routing::post;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/companies/{id}/adjustments", post(adjustments::create))
        .route("/purchases/{id}/approve", post(purchases::approve))
        .route("/purchases/{id}/reject", post(purchases::reject))
}
