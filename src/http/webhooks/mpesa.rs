//! `POST /webhooks/mpesa/{token}`: Safaricom's STK callback. Unsigned, so it is only a hint
//! (see `payments::record_mpesa_callback`); the answer is Daraja's conventional acknowledgement.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult};
use crate::payments::{self, CallbackOutcome};
use crate::providers::mpesa::CALLBACK_ACK;

#[utoipa::path(post, path = "/webhooks/mpesa/{token}", tag = "webhooks",
    params(("token" = String, Path, description = "the payment's secret callback token")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 200, description = "stored: {\"ResultCode\":0,\"ResultDesc\":\"Accepted\"}"),
              (status = 400, body = crate::http::problem::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::problem::Problem, content_type = "application/problem+json")))]
pub async fn callback(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let outcome = payments::record_mpesa_callback(&state.pool, &state.queues, &token, &body)
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        CallbackOutcome::Accepted | CallbackOutcome::Duplicate => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            CALLBACK_ACK,
        )
            .into_response()),
        CallbackOutcome::Rejected("malformed") => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "the body is not an STK callback",
        )),
        // Unknown and mismatched callbacks look the same from outside: nothing here.
        CallbackOutcome::Rejected(_) => Err(ApiError::not_found("no such callback")),
    }
}
