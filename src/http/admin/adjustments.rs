//! `POST /admin/companies/{id}/adjustments`: credits given or taken by the operator.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::domain::{CompanyId, CreditDelta};
use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiResult, FieldError, Problem};
use crate::ledger::{self, Balance};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Credits to add (positive) or remove (negative); never zero.
    pub credits: i64,
    /// Why, for the audit trail (1..=500 characters).
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdjustmentResponse {
    pub adjustment_id: uuid::Uuid,
    pub company_id: CompanyId,
    pub credits: i64,
    pub entry_id: i64,
    /// True when this Idempotency-Key was already applied and nothing changed now.
    pub replay: bool,
    pub balance: Balance,
}

/// Adjusts a company's credits. An `Idempotency-Key` header (a UUID) makes a retry safe.
#[utoipa::path(post, path = "/admin/companies/{id}/adjustments", tag = "admin",
    params(("id" = String, Path, description = "company id"),
           ("Idempotency-Key" = Option<String>, Header, description = "UUID; repeats apply once")),
    request_body = AdjustmentRequest, security(("bearer" = [])), responses(
    (status = 201, body = AdjustmentResponse),
    (status = 200, body = AdjustmentResponse, description = "replay of an applied Idempotency-Key"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "insufficient_credits"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath(company): ApiPath<CompanyId>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AdjustmentRequest>,
) -> ApiResult<(StatusCode, ApiJson<AdjustmentResponse>)> {
    let mut errors = Vec::new();
    let delta = CreditDelta::new(req.credits)
        .map_err(|e| {
            errors.push(FieldError {
                field: "credits".into(),
                message: e.to_string(),
            })
        })
        .ok();
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        errors.push(FieldError {
            field: "reason".into(),
            message: "must be 1 to 500 characters".into(),
        });
    }
    let key = match headers.get("idempotency-key") {
        None => Some(uuid::Uuid::now_v7()),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
            .or_else(|| {
                errors.push(FieldError {
                    field: "Idempotency-Key".into(),
                    message: "must be a UUID".into(),
                });
                None
            }),
    };
    let (Some(delta), Some(key), true) = (delta, key, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    if accounts::find_company(&state.pool, company)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!("no company {company}")));
    }
    let applied = ledger::adjust(
        &mut *state.pool.acquire().await?,
        key,
        company,
        delta,
        reason,
        &admin.principal.actor(),
    )
    .await?;
    let balance = ledger::balance(&state.pool, company).await?;
    let status = if applied.replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        ApiJson(AdjustmentResponse {
            adjustment_id: key,
            company_id: company,
            credits: applied.value.delta,
            entry_id: applied.value.entry_id,
            replay: applied.replay,
            balance,
        }),
    ))
}
