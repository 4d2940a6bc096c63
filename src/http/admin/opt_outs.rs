//! `DELETE /admin/companies/{id}/opt-outs/{phone}`: the operator removes any opt-out, the
//! recipient's own STOP included (a company cannot remove that one, `DELETE /v1/opt-outs`).

use axum::extract::State;
use axum::http::StatusCode;

use crate::domain::CompanyId;
use crate::http::AppState;
use crate::http::api::opt_outs::number;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiPath, ApiResult, Problem};
use crate::messages::opt_outs;

/// Removes a number from a company's opt-out list, whoever put it there.
#[utoipa::path(delete, path = "/admin/companies/{id}/opt-outs/{phone}", tag = "admin",
    params(("id" = String, Path, description = "company id"), ("phone" = String, Path)),
    security(("bearer" = [])), responses(
    (status = 204),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json",
     description = "no such company, or the number is not on its list"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed: the path is not a phone number"),
))]
pub async fn remove(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath((company, phone)): ApiPath<(CompanyId, String)>,
) -> ApiResult<StatusCode> {
    let phone = number(&state, company, &phone).await?;
    if !opt_outs::remove(&state.pool, company, &phone).await? {
        return Err(ApiError::not_found(format!(
            "{phone} is not on the opt-out list"
        )));
    }
    tracing::info!(operator = %admin.principal.actor(), %company, %phone, "operator removed an opt-out");
    Ok(StatusCode::NO_CONTENT)
}
