//! `POST /v1/messages/batch`, `GET /v1/batches/{id}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::domain::CompanyId;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::http::{AppState, idempotency};
use crate::messages::batch::{self, BatchError, BatchItem, BatchReport, Content, Rejected};
use crate::messages::eta::{self, Estimate};
use crate::pacing::Pacer;
use crate::routing::RoutePaces;
use crate::telemetry::{self, Subject};
use crate::templates::{self, Language};

/// The batch endpoint's body limit (the general `MAX_BODY_BYTES` is for single requests):
/// room for 10,000 items of full-length bodies.
pub const MAX_BODY_BYTES: usize = 24 * 1024 * 1024;

/// One message: an explicit `body`, or a `template` with its `vars`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    pub to: String,
    pub body: Option<String>,
    /// A template name (`payment_reminder`): the company's own, else the default.
    pub template: Option<String>,
    /// The template's values, strings or numbers: `{"customer_name": "Asha", "amount": 20000,
    /// "due_date": "2026-11-24", ...}`. `company_name`, `currency` and `payment_link` default
    /// to the company's.
    #[schema(value_type = Option<Object>)]
    pub vars: Option<serde_json::Value>,
    /// `en` (default) or `sw`.
    pub language: Option<String>,
}

impl BatchEntry {
    fn into_item(self) -> BatchItem {
        let refused = |code, detail: String| Content::Refused { code, detail };
        let mut invoice_number = None;
        let content = match (self.body, self.template) {
            (Some(_), Some(_)) => {
                refused("invalid_body", "give a body or a template, not both".into())
            }
            (Some(body), None) => Content::Body(body),
            (None, None) => Content::Body(String::new()),
            (None, Some(name)) => {
                let language = self
                    .language
                    .as_deref()
                    .map(str::parse::<Language>)
                    .transpose();
                let vars = match &self.vars {
                    None => Ok(templates::Vars::new()),
                    Some(serde_json::Value::Object(map)) => templates::vars_from_json(map),
                    Some(_) => Err("vars must be an object".to_string()),
                };
                match (language, vars) {
                    (Err(e), _) => refused("unknown_template", e.to_string()),
                    (_, Err(e)) => refused("invalid_variable", e),
                    (Ok(language), Ok(vars)) => {
                        invoice_number = vars.get("invoice_number").cloned();
                        Content::Template {
                            name,
                            language: language.unwrap_or_default(),
                            vars,
                        }
                    }
                }
            }
        };
        BatchItem {
            to: self.to,
            content,
            debt_id: None,
            invoice_number,
        }
    }
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
    /// The accepted messages' credits: each one's segments x its destination's rate.
    pub credits: i64,
    /// Refused items by index; a destination the rate card refuses is `destination_unpriced`,
    /// `destination_forbidden` or `destination_restricted`.
    pub rejected: Vec<Rejected>,
    /// When the batch is expected to be sent, from the company's quota, quiet hours, its share
    /// of the sender's cap and the cap (`null` when nothing was accepted or no estimate could be
    /// made now). `GET /v1/batches/{id}` gives the current one.
    pub estimate: Option<Estimate>,
}

/// Accepts up to 10,000 messages (explicit bodies or templates); each item is validated on its
/// own and refusals come back by index.
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
    let items = req
        .messages
        .into_iter()
        .map(BatchEntry::into_item)
        .collect();
    let card = state.rates.card().await?;
    let accepted = batch::accept_batch(
        &state.pool,
        &state.queues,
        &card,
        &company,
        items,
        req.allow_partial,
        key,
        &caller.caller.principal.actor(),
    )
    .await
    .map_err(refusal)?;
    telemetry::record_subject(Subject::Batch(accepted.batch_id));
    let estimate = estimate(&state, caller.company, accepted.batch_id).await;
    let out = idempotency::replayed(accepted.replay);
    Ok((
        StatusCode::ACCEPTED,
        out,
        ApiJson(BatchAccepted {
            batch_id: accepted.batch_id,
            accepted: accepted.accepted,
            credits: accepted.credits,
            rejected: accepted.rejected,
            estimate,
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
    let mut report = batch::report(&state.pool, caller.company, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no batch {id}")))?;
    if report.by_status.contains_key("queued") {
        report.estimate = estimate(&state, caller.company, id).await;
    }
    Ok(ApiJson(report))
}

/// The batch's estimate now; `None` (logged) when Redis or the database cannot give one: an
/// estimate never fails the request it rides on.
async fn estimate(state: &AppState, company: CompanyId, batch: uuid::Uuid) -> Option<Estimate> {
    let table = state
        .routing
        .table()
        .await
        .inspect_err(|e| tracing::warn!(%batch, error = %e, "no estimate: routing table unread"))
        .ok()?;
    let providers = state.providers.current();
    let senders = eta::Senders {
        table: &table,
        routes: &providers.sms,
        paces: RoutePaces::from_config(&state.config),
    };
    let pacer = Pacer::new(state.queues.connection(), state.queues.prefix());
    eta::for_batch(
        &state.pool,
        &state.api_limiter,
        &pacer,
        &senders,
        company,
        batch,
    )
    .await
    .inspect_err(|e| tracing::warn!(%batch, error = %e, "no estimate for the batch now"))
    .ok()
    .flatten()
}
