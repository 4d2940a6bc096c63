//! `POST /v1/messages/batch`, `GET /v1/batches/{id}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::http::{AppState, idempotency};
use crate::messages::batch::{self, BatchError, BatchItem, BatchReport, Rejected};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    pub to: String,
    pub body: Option<String>,
    /// Templates arrive with the templates work; an item naming one is refused for now.
    pub template: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)] // read once templates land
    pub vars: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1..=10,000 messages.
    pub messages: Vec<BatchEntry>,
    /// Accept what the credits cover, in order, instead of refusing the whole batch.
    #[serde(default)]
    pub allow_partial: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    pub batch_id: uuid::Uuid,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
}

/// Accepts up to 10,000 messages; each item is validated on its own.
#[utoipa::path(post, path = "/v1/messages/batch", tag = "messages", request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 202, body = BatchAccepted),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "insufficient_credits, with needed and available"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    caller: CompanyCaller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<(StatusCode, HeaderMap, ApiJson<BatchAccepted>)> {
    let key = idempotency::key(&headers)?;
    let company = accounts::find_company(&state.pool, caller.company)
        .await?
        .ok_or_else(|| ApiError::not_found("no company"))?;
    let mut unsupported = Vec::new();
    let mut items = Vec::with_capacity(req.messages.len());
    for (index, entry) in req.messages.into_iter().enumerate() {
        match (entry.body, entry.template) {
            (Some(body), None) => items.push(BatchItem { to: entry.to, body }),
            // Kept in place (so indexes hold) and refused as an empty body would be.
            (_, Some(_)) => {
                unsupported.push(index);
                items.push(BatchItem {
                    to: entry.to,
                    body: String::new(),
                });
            }
            (None, None) => items.push(BatchItem {
                to: entry.to,
                body: String::new(),
            }),
        }
    }
    let mut accepted = batch::accept_batch(
        &state.pool,
        &state.queues,
        &company,
        items,
        req.allow_partial,
        key,
        &caller.caller.principal.actor(),
    )
    .await
    .map_err(refusal)?;
    for r in &mut accepted.rejected {
        if unsupported.contains(&r.index) {
            r.code = "template_not_supported".into();
            r.detail = "templates are not available yet; send an explicit body".into();
        }
    }
    let out = idempotency::replayed(accepted.replay);
    Ok((
        StatusCode::ACCEPTED,
        out,
        ApiJson(BatchAccepted {
            batch_id: accepted.batch_id,
            accepted: accepted.accepted,
            rejected: accepted.rejected,
        }),
    ))
}

fn refusal(e: BatchError) -> ApiError {
    match e {
        BatchError::Size(_) => ApiError::field("messages", e.to_string()),
        BatchError::InsufficientCredits { needed, available } => {
            ApiError::new(StatusCode::CONFLICT, "insufficient_credits", e.to_string())
                .with("needed", needed)
                .with("available", available)
        }
        BatchError::KeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            e.to_string(),
        ),
        BatchError::Ledger(l) => l.into(),
        BatchError::Database(db) => ApiError::internal(db),
    }
}

/// A batch's progress: counts by status and credits charged (net of refunds).
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "messages", params(("id" = String, Path)),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = BatchReport),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<ApiJson<BatchReport>> {
    batch::report(&state.pool, caller.company, id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found(format!("no batch {id}")))
}
