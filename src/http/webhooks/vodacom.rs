//! `POST /webhooks/vodacom/{token}`: the asynchronous result of a Vodacom M-Pesa payment.
//! Unsigned, so only a hint (see `payments::record_vodacom_result`); the answer is the
//! platform's acknowledgement.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult};
use crate::payments::{self, CallbackOutcome};
use crate::providers::vodacom::result_ack;

#[utoipa::path(post, path = "/webhooks/vodacom/{token}", tag = "webhooks",
    params(("token" = String, Path, description = "the payment's secret callback token")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 200, description = "stored: {\"output_ResponseCode\":\"0\",\"output_ResponseDesc\":\"Successfully Accepted Result\",...}"),
              (status = 400, body = crate::http::problem::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::problem::Problem, content_type = "application/problem+json")))]
pub async fn result(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let (outcome, result) =
        payments::record_vodacom_result(&state.pool, &state.queues, &token, &body)
            .await
            .map_err(ApiError::internal)?;
    match (outcome, result) {
        (CallbackOutcome::Accepted | CallbackOutcome::Duplicate, Some(result)) => {
            Ok((StatusCode::OK, Json(result_ack(&result))).into_response())
        }
        (CallbackOutcome::Rejected("malformed"), _) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "the body is not a Vodacom M-Pesa result",
        )),
        // Unknown and mismatched results look the same from outside: nothing here.
        _ => Err(ApiError::not_found("no such callback")),
    }
}
