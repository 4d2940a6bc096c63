//! `GET /v1/packages`.

use axum::extract::State;

use crate::http::AppState;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiJson, ApiResult, Problem};
use crate::payments::packages::{Package, list_packages};

/// The credit packages on sale, with prices per currency.
#[utoipa::path(get, path = "/v1/packages", tag = "credits", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = Vec<Package>),
    (status = 401, body = Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    _caller: CompanyCaller,
) -> ApiResult<ApiJson<Vec<Package>>> {
    Ok(ApiJson(list_packages(&state.pool).await?))
}
