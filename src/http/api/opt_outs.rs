//! `GET` / `POST /v1/opt-outs`, `DELETE /v1/opt-outs/{phone}`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::domain::{CompanyId, E164};
use crate::http::AppState;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Problem};
use crate::messages::opt_outs::{self, CompanyRemoval, OptOut};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// E.164 or a local number of the company's country.
    pub phone: String,
}

/// `raw` read as a number of `company`'s country (404 for an unknown company, 422 for no number).
pub(crate) async fn number(state: &AppState, company: CompanyId, raw: &str) -> ApiResult<E164> {
    let company = accounts::find_company(&state.pool, company)
        .await?
        .ok_or_else(|| ApiError::not_found("no company"))?;
    let country = company.country;
    E164::parse_sms(raw, country).map_err(|e| ApiError::field("phone", e.to_string()))
}

/// Adds a number to the caller's opt-out list (201; 200 if it was there already).
#[utoipa::path(post, path = "/v1/opt-outs", tag = "opt-outs", request_body = OptOutRequest,
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 201, body = OptOut), (status = 200, body = OptOut),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn add(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiJson(req): ApiJson<OptOutRequest>,
) -> ApiResult<(StatusCode, ApiJson<OptOut>)> {
    let phone = number(&state, caller.company, &req.phone).await?;
    let added = opt_outs::add(&state.pool, caller.company, &phone, "api").await?;
    let row = opt_outs::find(&state.pool, caller.company, &phone)
        .await?
        .ok_or_else(|| ApiError::internal("an opt-out just added is gone"))?;
    Ok((
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        ApiJson(row),
    ))
}

/// Removes a number from the caller's opt-out list, unless the recipient opted out itself (its
/// STOP): that only the recipient's START, or an operator, undoes.
#[utoipa::path(delete, path = "/v1/opt-outs/{phone}", tag = "opt-outs", params(("phone" = String, Path)),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json",
     description = "opted_out_by_recipient: the recipient's own STOP, which only its START or an operator undoes"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed: the path is not a phone number"),
))]
pub async fn remove(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiPath(phone): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let phone = number(&state, caller.company, &phone).await?;
    match opt_outs::remove_for_company(&state.pool, caller.company, &phone).await? {
        CompanyRemoval::Removed => Ok(StatusCode::NO_CONTENT),
        CompanyRemoval::NotListed => Err(ApiError::not_found(format!(
            "{phone} is not on the opt-out list"
        ))),
        CompanyRemoval::ByTheRecipient { source } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "opted_out_by_recipient",
            format!(
                "{phone} opted out itself ({source}); only its START reply, or the operator, removes it"
            ),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1..=500 (default 100).
    pub limit: Option<i64>,
    /// The previous page's `next_after`.
    pub after: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OptOutPage {
    pub opt_outs: Vec<OptOut>,
    pub next_after: Option<String>,
}

/// The caller's opt-out list, by number.
#[utoipa::path(get, path = "/v1/opt-outs", tag = "opt-outs", params(ListQuery),
    security(("bearer" = []), ("api_key" = [])), responses((status = 200, body = OptOutPage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<OptOutPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 500"));
    }
    let opt_outs = opt_outs::list(&state.pool, caller.company, limit, q.after.as_deref()).await?;
    let next_after = if opt_outs.len() as i64 == limit {
        opt_outs.last().map(|o| o.phone.clone())
    } else {
        None
    };
    Ok(ApiJson(OptOutPage {
        opt_outs,
        next_after,
    }))
}
