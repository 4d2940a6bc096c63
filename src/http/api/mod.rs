//! The CRM API: a caller sees and spends only its own company's data.

pub(crate) mod balance;
pub(crate) mod packages;

use axum::Router;
use axum::routing::get;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/balance", get(balance::get_balance))
        .route("/ledger", get(balance::get_ledger))
        .route("/packages", get(packages::list))
}
