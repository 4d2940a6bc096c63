//! `POST /webhooks/twilio/status`: delivery reports, signed with `X-Twilio-Signature`.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};

use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult};
use crate::messages::reports;
use crate::providers::twilio::signature;
use crate::webhook_events;

/// A Twilio status callback. Forged or unsigned: 403 and nothing changes. Repeated
/// (same MessageSid and MessageStatus): 200 and nothing changes.
#[utoipa::path(post, path = "/webhooks/twilio/status", tag = "webhooks",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    params(("X-Twilio-Signature" = String, Header)),
    responses((status = 204, description = "stored"), (status = 400), (status = 403)))]
pub async fn status(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let payload = String::from_utf8_lossy(&body).into_owned();
    let reject = async |status: StatusCode, code: &'static str, reason: &str| -> ApiError {
        if let Err(e) = webhook_events::reject(&state.pool, "twilio", &payload, reason).await {
            return ApiError::internal(e);
        }
        ApiError::new(status, code, reason)
    };
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "the body is not form-encoded",
        )
        .await);
    };
    let Some(token) = &state.twilio_token else {
        return Err(reject(
            StatusCode::FORBIDDEN,
            "not_configured",
            "no Twilio account is configured",
        )
        .await);
    };
    let Some(sig) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(reject(
            StatusCode::FORBIDDEN,
            "missing_signature",
            "X-Twilio-Signature is missing",
        )
        .await);
    };
    // The URL Twilio requested: our public base and the raw path and query as received.
    let public = state.config.public_url.as_str().trim_end_matches('/');
    let url = format!(
        "{public}{}",
        uri.path_and_query().map_or(uri.path(), |pq| pq.as_str())
    );
    if !signature::validate(token.expose(), &url, &params, sig) {
        return Err(reject(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "X-Twilio-Signature does not match",
        )
        .await);
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (Some(sid), Some(status)) = (get("MessageSid"), get("MessageStatus")) else {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "missing_fields",
            "MessageSid and MessageStatus are required",
        )
        .await);
    };
    let mut conn = state.pool.acquire().await?;
    let Some(event) =
        webhook_events::accept(&mut conn, "twilio", &format!("{sid}:{status}"), &payload).await?
    else {
        return Ok(StatusCode::NO_CONTENT); // a repeat
    };
    drop(conn);
    reports::apply(
        &state.pool,
        &state.queues,
        event,
        sid,
        status,
        get("ErrorCode"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
