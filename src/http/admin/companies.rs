//! `GET /admin/companies`, `PATCH /admin/companies/{id}` and `GET /admin/companies/{id}/changes`:
//! the operator finds companies and changes their settings, every change recorded.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, Company, CompanyChange, CompanyListing, CompanyPatch};
use crate::domain::CompanyId;
use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError, Problem};
use crate::messages::send::quota_changed;
use crate::ratelimit::RateLimiter;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Part of the name (case-insensitive), or a whole company id.
    pub search: Option<String>,
    /// Companies per page, 1..=200 (default 50).
    pub limit: Option<i64>,
    /// Only companies after this one (the previous page's `next_after`).
    pub after: Option<CompanyId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyPage {
    pub companies: Vec<CompanyListing>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<CompanyId>,
}

/// Companies in creation order, with their balances; `search` narrows by name or id.
#[utoipa::path(get, path = "/admin/companies", tag = "admin", params(ListQuery),
    security(("bearer" = [])), responses(
    (status = 200, body = CompanyPage),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    SuperAdmin(_operator): SuperAdmin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<CompanyPage>> {
    let limit = page_limit(q.limit)?;
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::field("search", "must be at most 200 characters"));
    }
    let companies = accounts::list_companies(&state.pool, search, q.after, limit).await?;
    let next_after = (companies.len() as i64 == limit)
        .then(|| companies.last().map(|c| c.company.id))
        .flatten();
    Ok(ApiJson(CompanyPage {
        companies,
        next_after,
    }))
}

fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    Ok(limit)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyUpdated {
    pub company: Company,
    /// The change recorded; null when every value was already as asked (nothing changed).
    pub change: Option<CompanyChange>,
    /// With a new `sms_per_hour`: the company's queued messages given a send job at once, so the
    /// new quota applies to them now. Null when the quota did not change, or Redis did not answer
    /// (then each waits out the delay the old quota gave it).
    pub messages_requeued: Option<usize>,
}

/// Changes a company's settings: name, hourly quota, time zone, quiet hours, sweeps. Every field
/// is checked before anything is written; a refused field changes nothing. Each change is
/// recorded with who made it and the values before and after.
#[utoipa::path(patch, path = "/admin/companies/{id}", tag = "admin",
    params(("id" = String, Path, description = "company id")), request_body = CompanyPatch,
    security(("bearer" = [])), responses(
    (status = 200, body = CompanyUpdated),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed (errors per field) or invalid_body (an unknown field, a wrong type)"),
))]
pub async fn update(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath(id): ApiPath<CompanyId>,
    ApiJson(patch): ApiJson<CompanyPatch>,
) -> ApiResult<ApiJson<CompanyUpdated>> {
    let change = patch.validate().map_err(|errors| {
        ApiError::validation(
            errors
                .into_iter()
                .map(|e| FieldError {
                    field: e.field.into(),
                    message: e.message,
                })
                .collect(),
        )
    })?;
    let updated = accounts::update_company(&state.pool, id, &change, &admin.principal.actor())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no company {id}")))?;
    let mut messages_requeued = None;
    if let (true, Some(recorded)) = (change.sets_quota(), &updated.change) {
        let limiter = RateLimiter::new(state.queues.connection(), state.queues.prefix());
        match quota_changed(&state.pool, &state.queues, &limiter, id, recorded.id).await {
            Ok(restart) => messages_requeued = Some(restart.messages_requeued),
            Err(e) => tracing::warn!(company = %id, error = %e,
                "new quota saved; its queued messages keep the old quota's waits"),
        }
    }
    tracing::info!(operator = %admin.principal.actor(), company = %id,
        change = ?updated.change.as_ref().map(|c| c.id), "company settings changed");
    Ok(ApiJson(CompanyUpdated {
        company: updated.company,
        change: updated.change,
        messages_requeued,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes per page, 1..=200 (default 50).
    pub limit: Option<i64>,
    /// Only changes older than this one (the previous page's `next_before`).
    pub before: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangePage {
    pub changes: Vec<CompanyChange>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The history of a company's settings, newest first: who, when, the values before and after.
#[utoipa::path(get, path = "/admin/companies/{id}/changes", tag = "admin",
    params(("id" = String, Path, description = "company id"), ChangesQuery),
    security(("bearer" = [])), responses(
    (status = 200, body = ChangePage),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn changes(
    State(state): State<AppState>,
    SuperAdmin(_operator): SuperAdmin,
    ApiPath(id): ApiPath<CompanyId>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<ApiJson<ChangePage>> {
    let limit = page_limit(q.limit)?;
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::field("before", "must be a positive change id"));
    }
    if accounts::find_company(&state.pool, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no company {id}")));
    }
    let changes = accounts::company_changes(&state.pool, id, q.before, limit).await?;
    let next_before = (changes.len() as i64 == limit)
        .then(|| changes.last().map(|c| c.id))
        .flatten();
    Ok(ApiJson(ChangePage {
        changes,
        next_before,
    }))
}
