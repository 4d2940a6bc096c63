//! `POST /webhooks/stripe`: events signed with `Stripe-Signature` over the raw body (see
//! `payments::handle_stripe_event`). A forged, stale or unsigned event is answered 400 and
//! changes nothing; Stripe retries anything that is not 2xx.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult};
use crate::payments::{self, StripeOutcome};

#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header)),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 200, description = "stored"),
              (status = 400, body = crate::http::problem::Problem, content_type = "application/problem+json")))]
pub async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = payments::handle_stripe_event(
        &state.pool,
        &state.queues,
        &state.providers.current().payments,
        signature,
        &body,
    )
    .await
    .map_err(ApiError::internal)?;
    match outcome {
        StripeOutcome::Rejected(reason) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "webhook_rejected",
            format!("event refused: {reason}"),
        )),
        StripeOutcome::Accepted => Ok(Json(serde_json::json!({ "received": true }))),
        StripeOutcome::Duplicate => Ok(Json(
            serde_json::json!({ "received": true, "duplicate": true }),
        )),
        StripeOutcome::Ignored => Ok(Json(
            serde_json::json!({ "received": true, "ignored": true }),
        )),
    }
}
