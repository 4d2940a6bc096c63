//! `GET /v1/balance` and `GET /v1/ledger`.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::http::AppState;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiQuery, ApiResult, Problem};
use crate::ledger::{self, Balance, Entry};

/// The caller's company balance.
#[utoipa::path(get, path = "/v1/balance", tag = "credits", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = Balance),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_balance(
    State(state): State<AppState>,
    caller: CompanyCaller,
) -> ApiResult<ApiJson<Balance>> {
    Ok(ApiJson(ledger::balance(&state.pool, caller.company).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Entries per page, 1..=200 (default 50).
    pub limit: Option<i64>,
    /// Only entries older than this entry id (the previous page's `next_before`).
    pub before: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerPage {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The caller's ledger entries, newest first.
#[utoipa::path(get, path = "/v1/ledger", tag = "credits", params(LedgerQuery), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = LedgerPage),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_ledger(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> ApiResult<ApiJson<LedgerPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::field("before", "must be a positive entry id"));
    }
    let entries = ledger::entries(&state.pool, caller.company, q.before, limit).await?;
    let next_before = if entries.len() as i64 == limit {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(ApiJson(LedgerPage {
        entries,
        next_before,
    }))
}
