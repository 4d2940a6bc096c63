//! `GET /admin/reports/revenue`: revenue and margin per day or month and company, in JSON or CSV.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::domain::CompanyId;
use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiQuery, ApiResult, Problem};
use crate::reports::revenue::{self, GroupBy, RevenueQuery, RevenueReport};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevenueParams {
    /// First UTC day (`YYYY-MM-DD`), included.
    #[param(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last UTC day, included (at most 366 days by day, 120 months by month).
    #[param(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// `day` (default) or `month`.
    #[param(inline)]
    pub group_by: Option<GroupBy>,
    /// Only this company.
    pub company: Option<CompanyId>,
    /// `json` (default) or `csv`; `Accept: text/csv` asks for CSV too.
    #[param(inline)]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

/// Credits sold and money received per currency, messages and segments charged, the provider's
/// cost in its own price unit, refunds and the margin per currency, never adding currencies.
#[utoipa::path(get, path = "/admin/reports/revenue", tag = "admin", params(RevenueParams),
    security(("bearer" = [])), responses(
    (status = 200, description = "the report, as JSON or (format=csv or Accept: text/csv) CSV",
     content((RevenueReport = "application/json"), (String = "text/csv"))),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "invalid_query (a malformed date or value) or validation_failed (the range)"),
))]
pub async fn revenue(
    State(state): State<AppState>,
    SuperAdmin(_operator): SuperAdmin,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<RevenueParams>,
) -> ApiResult<Response> {
    let query = RevenueQuery {
        from: p.from,
        to: p.to,
        group_by: p.group_by.unwrap_or(GroupBy::Day),
        company: p.company,
    };
    query
        .check()
        .map_err(|(field, message)| ApiError::field(field, message))?;
    let report = revenue::revenue(&state.pool, &query).await?;
    let csv = match p.format {
        Some(f) => f == Format::Csv,
        None => wants_csv(&headers),
    };
    if !csv {
        return Ok(ApiJson(report).into_response());
    }
    let body = revenue::to_csv(&report).map_err(ApiError::internal)?;
    let filename = file_name(&report);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .map_err(ApiError::internal)?,
            ),
        ],
        body,
    )
        .into_response())
}

/// `Accept` names `text/csv` before (or without) any JSON type.
fn wants_csv(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let position = |kind: &str| accept.find(kind);
    match (position("text/csv"), position("application/json")) {
        (Some(csv), Some(json)) => csv < json,
        (Some(_), None) => true,
        _ => false,
    }
}

fn file_name(r: &RevenueReport) -> String {
    format!("revenue-{}-{}.csv", r.from, r.to)
}
