//! The operator API (super_admin only).

pub(crate) mod adjustments;

use axum::Router;
use axum::routing::post;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/companies/{id}/adjustments", post(adjustments::create))
}
