//! `POST /admin/purchases/{id}/approve` and `.../reject`: the operator settles bank transfers;
//! `.../refund`: the operator gives a purchase's money back.

use axum::extract::State;
use axum::http::StatusCode;
use copcca_jobs::VerifyPurchase;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::domain::PaymentId;
use crate::http::AppState;
use crate::http::api::purchases::PurchaseView;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::payments::{self, Approval, PaymentError, RefundError};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The amount that arrived, as a decimal string (`"25000.00"`).
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub currency: String,
    /// The bank's reference of the incoming transfer.
    pub bank_reference: String,
    /// Credits to grant instead of the package's; required when less than the price arrived.
    pub credits: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why (1..=500 characters), shown to the company.
    pub reason: String,
}

/// Approves a bank transfer the operator has seen arrive: the payment becomes `paid` and is
/// credited by the purchase worker. Approving it again with the same bank reference changes
/// nothing; an under-payment needs `credits`.
#[utoipa::path(post, path = "/admin/purchases/{id}/approve", tag = "admin",
    params(("id" = String, Path, description = "payment id")), request_body = ApproveRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = PurchaseView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "not a pending transfer"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn approve(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath(id): ApiPath<PaymentId>,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> ApiResult<ApiJson<PurchaseView>> {
    let approval = Approval {
        amount: req.amount,
        currency: req.currency,
        bank_reference: req.bank_reference,
        credits: req.credits,
    };
    let payment = payments::approve_transfer(&state.pool, id, &approval, &admin.principal.actor())
        .await
        .map_err(refusal)?;
    // Should Redis refuse, the sweep credits paid payments itself.
    let job = VerifyPurchase {
        payment_id: id.0,
        trigger: "approval".into(),
    };
    if let Err(e) = state.queues.enqueue(&job).await {
        tracing::error!(payment = %id, error = %e, "verify job not enqueued; the sweep will pick it up");
    }
    Ok(ApiJson(PurchaseView::of(
        payment,
        &state.providers.current().payments.bank,
    )))
}

/// Rejects a bank transfer that will not be honoured; the payment becomes `failed`.
#[utoipa::path(post, path = "/admin/purchases/{id}/reject", tag = "admin",
    params(("id" = String, Path, description = "payment id")), request_body = RejectRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = PurchaseView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "already paid"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn reject(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath(id): ApiPath<PaymentId>,
    ApiJson(req): ApiJson<RejectRequest>,
) -> ApiResult<ApiJson<PurchaseView>> {
    let payment = payments::reject_transfer(&state.pool, id, &req.reason, &admin.principal.actor())
        .await
        .map_err(refusal)?;
    Ok(ApiJson(PurchaseView::of(
        payment,
        &state.providers.current().payments.bank,
    )))
}

/// Gives a credited purchase's money back through its provider (a Vodacom M-Pesa reversal, a
/// Stripe refund) and takes its unspent credits back, never below zero (a shortfall is recorded
/// and flagged); the payment becomes `refunded`. Daraja and bank payments are paid back outside
/// the service.
#[utoipa::path(post, path = "/admin/purchases/{id}/refund", tag = "admin",
    params(("id" = String, Path, description = "payment id")),
    security(("bearer" = [])), responses(
    (status = 200, body = PurchaseView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "not a credited purchase"),
    (status = 422, body = Problem, content_type = "application/problem+json", description = "refund_not_supported (Daraja, bank transfer)"),
    (status = 502, body = Problem, content_type = "application/problem+json", description = "refund_failed: the provider refused, or its answer was lost (the payment is flagged)"),
))]
pub async fn refund(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath(id): ApiPath<PaymentId>,
) -> ApiResult<ApiJson<PurchaseView>> {
    let payment = payments::refund_purchase(
        &state.pool,
        &state.providers.current().payments,
        id,
        &admin.principal.actor(),
    )
    .await
    .map_err(|e| match e {
        RefundError::NotRefundable(..) => ApiError::new(
            StatusCode::CONFLICT,
            "payment_not_refundable",
            e.to_string(),
        ),
        RefundError::Unsupported(detail) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refund_not_supported",
            detail,
        ),
        RefundError::Provider { detail, .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "refund_failed", detail)
        }
        RefundError::Payment(e) => refusal(e),
        RefundError::Database(e) => e.into(),
    })?;
    Ok(ApiJson(PurchaseView::of(
        payment,
        &state.providers.current().payments.bank,
    )))
}

fn refusal(e: PaymentError) -> ApiError {
    match e {
        PaymentError::NotFound(id) => ApiError::not_found(format!("no payment {id}")),
        PaymentError::Transition { .. } => {
            ApiError::new(StatusCode::CONFLICT, "payment_settled", e.to_string())
        }
        PaymentError::Invalid(detail) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "approval_refused", detail)
        }
        e => ApiError::internal(e),
    }
}
