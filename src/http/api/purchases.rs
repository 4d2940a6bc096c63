//! `POST /v1/purchases`, `GET /v1/purchases/{id}`, `GET /v1/purchases`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::config::BankAccount;
use crate::domain::PaymentId;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError, Problem};
use crate::http::{AppState, idempotency};
use crate::payments::{self, Method, Payment, PaymentError, PurchaseRequest, StartError, Status};
use crate::telemetry::{self, Subject};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// `starter`, `business`, `pro`, `enterprise` or `mega` (see `GET /v1/packages`).
    pub package_id: String,
    pub method: Method,
    /// The M-Pesa wallet to prompt: a Tanzanian mobile number for TZS (Vodacom, `0754123456` or
    /// `+255754123456`), a Kenyan one for KES (Daraja, `0712345678` or `+254712345678`).
    pub phone: Option<String>,
    /// `USD`, `TZS` or `KES`; defaults to the company's currency (M-Pesa: TZS or KES only).
    pub currency: Option<String>,
}

/// Where to send a bank transfer, and the reference to quote.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BankInstructions {
    pub bank: String,
    pub account_name: String,
    pub account_number: String,
    /// `SMS-{COMPANY}-{TIMESTAMP}`: quote it so the operator can match the transfer.
    pub reference: String,
}

/// A purchase as the company sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurchaseView {
    pub id: PaymentId,
    /// `initiated`, `pending`, `paid`, `credited`, `failed`, `cancelled`, `expired` or `refunded`.
    pub status: Status,
    pub method: Method,
    pub package_id: String,
    /// Credits the purchase gives (or gave: an operator may grant fewer for an under-payment).
    pub credits: i64,
    /// Decimal string, e.g. `"25000.00"`.
    pub amount: String,
    pub currency: String,
    /// Stripe Checkout page to send the buyer to (card).
    pub checkout_url: Option<String>,
    /// Bank details and reference (bank transfer).
    pub bank: Option<BankInstructions>,
    /// The wallet prompted (M-Pesa), E.164.
    pub phone: Option<String>,
    /// The M-Pesa receipt, Stripe PaymentIntent or bank reference, once paid.
    pub receipt: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PurchaseView {
    pub fn of(p: Payment, bank: &BankAccount) -> Self {
        PurchaseView {
            id: p.id,
            status: p.status,
            method: p.method,
            package_id: p.package_id,
            credits: p.credits_granted.unwrap_or(p.credits),
            amount: p.amount.to_string(),
            currency: p.currency,
            checkout_url: p.checkout_url,
            bank: p.transfer_reference.map(|reference| BankInstructions {
                bank: bank.bank.clone(),
                account_name: bank.account_name.clone(),
                account_number: bank.account_number.clone(),
                reference,
            }),
            phone: p.phone,
            receipt: p.receipt,
            failure_reason: p.failure_reason,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Buys a credit package. M-Pesa prompts the phone (the payment is `pending` until the customer
/// answers); card returns a Stripe Checkout URL; bank transfer returns the bank details and the
/// reference to quote. Credits arrive once the provider (or the operator) confirms the money.
/// An `Idempotency-Key` makes a retry return the same purchase.
#[utoipa::path(post, path = "/v1/purchases", tag = "credits", request_body = PurchaseBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "at most 200 characters")),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 201, body = PurchaseView),
    (status = 200, body = PurchaseView, description = "replay of an Idempotency-Key"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed, method_not_available or idempotency_key_reused"),
    (status = 502, body = Problem, content_type = "application/problem+json",
     description = "mpesa_rejected or stripe_rejected: the provider refused; the payment is failed"),
    (status = 503, body = Problem, content_type = "application/problem+json",
     description = "mpesa_unavailable or stripe_unavailable: try again later"),
))]
pub async fn create(
    State(state): State<AppState>,
    caller: CompanyCaller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PurchaseBody>,
) -> ApiResult<(StatusCode, HeaderMap, ApiJson<PurchaseView>)> {
    let key = idempotency::key(&headers)?;
    let company = accounts::find_company(&state.pool, caller.company)
        .await?
        .ok_or_else(|| ApiError::not_found("your company no longer exists"))?;
    let request = PurchaseRequest {
        package_id: req.package_id,
        method: req.method,
        phone: req.phone,
        currency: req.currency,
    };
    let started = payments::start_purchase(
        &state.pool,
        &state.providers.current().payments,
        &company,
        &request,
        &caller.caller.principal.actor(),
        key.as_deref(),
    )
    .await
    .map_err(refusal)?;
    telemetry::record_subject(Subject::Payment(started.payment.id));
    payments::enqueue_start(&state.queues, &started.payment).await;
    let status = if started.replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        idempotency::replayed(started.replay),
        ApiJson(PurchaseView::of(
            started.payment,
            &state.providers.current().payments.bank,
        )),
    ))
}

fn refusal(e: StartError) -> ApiError {
    match e {
        StartError::Invalid(errors) => ApiError::validation(
            errors
                .into_iter()
                .map(|(field, message)| FieldError {
                    field: field.into(),
                    message,
                })
                .collect(),
        ),
        StartError::NotConfigured {
            method,
            currency: None,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "method_not_available",
            format!("{method} payments are not configured on this service"),
        )
        .with("method", method),
        StartError::NotConfigured {
            method,
            currency: Some(currency),
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "method_not_available",
            format!(
                "{method} payments in {currency} are not configured on this service (see GET /v1/payment-methods)"
            ),
        )
        .with("method", method)
        .with("currency", currency),
        StartError::KeyReused(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different purchase",
        ),
        StartError::Provider {
            payment,
            code,
            detail,
            retryable,
        } => {
            let status = if retryable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            };
            ApiError::new(status, code, detail).with("payment_id", payment.id.to_string())
        }
        // A database that is down or restarting is 503 with Retry-After (`From<sqlx::Error>`).
        StartError::Database(e) | StartError::Payment(PaymentError::Database(e)) => e.into(),
        StartError::Payment(e) => ApiError::internal(e),
    }
}

/// One of the caller's purchases, with its current status.
#[utoipa::path(get, path = "/v1/purchases/{id}", tag = "credits", params(("id" = String, Path)),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = PurchaseView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiPath(id): ApiPath<PaymentId>,
) -> ApiResult<ApiJson<PurchaseView>> {
    payments::find_for_company(&state.pool, caller.company, id)
        .await?
        .map(|p| {
            ApiJson(PurchaseView::of(
                p,
                &state.providers.current().payments.bank,
            ))
        })
        .ok_or_else(|| ApiError::not_found(format!("no purchase {id}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurchaseQuery {
    /// Only purchases in this status.
    pub status: Option<String>,
    /// 1..=200 (default 50).
    pub limit: Option<i64>,
}

/// The caller's purchases, newest first.
#[utoipa::path(get, path = "/v1/purchases", tag = "credits", params(PurchaseQuery),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = Vec<PurchaseView>),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiQuery(q): ApiQuery<PurchaseQuery>,
) -> ApiResult<ApiJson<Vec<PurchaseView>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    let status = match q.status {
        None => None,
        Some(s) => Some(Status::try_from(s).map_err(|_| {
            ApiError::field(
                "status",
                "must be one of initiated, pending, paid, credited, failed, cancelled, expired, refunded",
            )
        })?),
    };
    let list = payments::list_for_company(&state.pool, caller.company, status, limit).await?;
    Ok(ApiJson(
        list.into_iter()
            .map(|p| PurchaseView::of(p, &state.providers.current().payments.bank))
            .collect(),
    ))
}

/// The payment methods and currencies this service takes now: M-Pesa is Vodacom for TZS
/// (Tanzanian wallets) and Daraja for KES (Kenyan wallets), each only when configured; a card
/// needs Stripe; a bank transfer is always possible.
#[utoipa::path(get, path = "/v1/payment-methods", tag = "credits",
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = Vec<payments::Offered>),
    (status = 401, body = Problem, content_type = "application/problem+json"),
))]
pub async fn methods(
    State(state): State<AppState>,
    _caller: CompanyCaller,
) -> ApiJson<Vec<payments::Offered>> {
    ApiJson(state.providers.current().payments.offered())
}
