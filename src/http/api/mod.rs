//! The CRM API: a caller sees and spends only its own company's data.

pub(crate) mod balance;
pub(crate) mod batches;
pub(crate) mod messages;
pub(crate) mod opt_outs;
pub(crate) mod packages;
pub(crate) mod purchases;
pub(crate) mod templates;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/balance", get(balance::get_balance))
        .route("/ledger", get(balance::get_ledger))
        .route("/packages", get(packages::list))
        .route("/purchases", post(purchases::create).get(purchases::list))
        .route("/purchases/{id}", get(purchases::get_one))
        .route("/payment-methods", get(purchases::methods))
        .route("/messages", post(messages::create).get(messages::list))
        // 10,000 messages of up to 1,600 characters do not fit the general body limit.
        .route(
            "/messages/batch",
            post(batches::create).layer(DefaultBodyLimit::max(batches::MAX_BODY_BYTES)),
        )
        .route("/batches/{id}", get(batches::get_one))
        .route("/messages/{id}", get(messages::get_one))
        .route("/opt-outs", post(opt_outs::add).get(opt_outs::list))
        .route("/opt-outs/{phone}", axum::routing::delete(opt_outs::remove))
        .route("/templates", get(templates::list))
        .route("/templates/preview", post(templates::preview))
        .route(
            "/templates/{name}",
            get(templates::get_one).put(templates::save),
        )
}
