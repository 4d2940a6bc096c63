//! `POST /webhooks/beem/{token}` and `POST /webhooks/africastalking/{token}`: the delivery
//! reports of the routes whose providers do not sign them. The token in the path is the route's
//! secret (`bulk::report_token`, shown to the operator by `GET /admin/routes`), or one the route
//! served until less than `REPORT_TOKEN_GRACE_SECS` ago (`routing::report_tokens`); a report to
//! any other path is refused and recorded, and a report moves only a message sent through its route.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use copcca_jobs::SendSms;

use crate::domain::MessageId;
use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult};
use crate::messages::{reports, store};
use crate::providers::SmsGateway;
use crate::providers::beem;
use crate::providers::bulk::{DeliveryReport, DeliveryState};
use crate::routing::{RouteName, report_tokens};
use crate::{faults, inbox, metrics};

#[utoipa::path(post, path = "/webhooks/beem/{token}", tag = "webhooks",
    params(("token" = String, Path, description = "the route's secret report token")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 200, description = "stored: {\"request_id\":…,\"successful\":true}"),
              (status = 400, body = crate::http::problem::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::problem::Problem, content_type = "application/problem+json")))]
pub async fn beem(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let report = received(&state, RouteName::Beem, &token, &body).await?;
    let request_id = report
        .provider_id
        .split_once(':')
        .map_or("", |(request, _)| request);
    Ok(Json(beem::acknowledgement(request_id)).into_response())
}

#[utoipa::path(post, path = "/webhooks/africastalking/{token}", tag = "webhooks",
    params(("token" = String, Path, description = "the route's secret report token")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "stored"),
              (status = 400, body = crate::http::problem::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::problem::Problem, content_type = "application/problem+json")))]
pub async fn africastalking(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    received(&state, RouteName::Africastalking, &token, &body).await?;
    Ok(StatusCode::OK.into_response())
}

/// Checks the token, reads and stores the report, and applies it. Refusals are recorded and
/// answered 404 (no such route or token: the two look the same from outside) or 400.
async fn received(
    state: &AppState,
    route: RouteName,
    token: &str,
    body: &Bytes,
) -> Result<DeliveryReport, ApiError> {
    let provider = route.as_str();
    let reject = async |status: StatusCode, code: &'static str, reason: &str| -> ApiError {
        metrics::webhook_rejected(provider, code);
        if let Err(e) = inbox::reject(&state.pool, provider, body, reason).await {
            return ApiError::internal(e);
        }
        ApiError::new(status, code, reason)
    };
    let providers = state.providers.current();
    let current = providers
        .sms
        .get(route)
        .is_some_and(|g| g.report_token_matches(token));
    // The URL before the route's secret changed (or the route was removed) still counts for a
    // while: the provider's portal posts there until the operator updates it.
    let known = current
        || report_tokens::recently_served(
            &state.pool,
            route,
            token,
            state.config.report_token_grace,
        )
        .await?;
    if !known {
        let reason = "no route has this report token";
        return Err(reject(StatusCode::NOT_FOUND, "unknown_token", reason).await);
    }
    let Some(report) = reports::parse_bulk(route, body) else {
        let reason = "the body is not a delivery report of this provider";
        return Err(reject(StatusCode::BAD_REQUEST, "malformed_body", reason).await);
    };
    let payload = String::from_utf8_lossy(body);
    // The report is stored and the send it names adopted in one transaction: a crash between
    // the two would leave the send held for good (Beem cannot be asked about it).
    let mut tx = state.pool.begin().await?;
    let Some(event) = inbox::accept_report(
        &mut tx,
        provider,
        &report.inbox_key(),
        &report.provider_id,
        &payload,
    )
    .await?
    else {
        return Ok(report); // a repeat
    };
    faults::point!(faults::CALLBACK_BEFORE_ADOPT);
    // A final failure does not adopt: the send would be charged for a message that never
    // arrived (as a Twilio `failed` report does not); it stays held for the operator.
    let failed = report.is_final && report.state != DeliveryState::Delivered;
    let adopted = if route == RouteName::Beem && !failed {
        adopt_unanswered(&mut tx, &report).await?
    } else {
        None
    };
    tx.commit().await?;
    if let Some(message) = adopted {
        // Its charge; should this enqueue fail, the reconciler's look at stale sends finds
        // the message with its provider id and charges it the same way.
        let job = SendSms {
            message_id: message.0,
        };
        let key = format!("send_sms:{message}:late_sid:{}", report.provider_id);
        if let Err(e) = state.queues.enqueue_as(&job, &key).await {
            tracing::warn!(%message, error = %e, "could not enqueue its charge; the reconciler will");
        }
    }
    let applied = reports::Report::from_bulk(route, &report);
    reports::apply(&state.pool, &state.queues, event, applied).await?;
    Ok(report)
}

/// A Beem report names our message (its `recipient_id`): one whose send went through Beem and
/// got no usable answer learns its provider id from it, so its send job charges it instead of
/// ever sending it again. The message adopted, if one was.
async fn adopt_unanswered(
    conn: &mut sqlx::PgConnection,
    report: &DeliveryReport,
) -> Result<Option<MessageId>, sqlx::Error> {
    let Some(message) = report
        .provider_id
        .rsplit_once(':')
        .and_then(|(_, ours)| ours.parse::<uuid::Uuid>().ok())
        .map(MessageId)
    else {
        return Ok(None);
    };
    let account: Option<Option<String>> =
        sqlx::query_scalar("SELECT provider_account FROM messages WHERE id = $1")
            .bind(message)
            .fetch_optional(&mut *conn)
            .await?;
    let through_beem = account
        .flatten()
        .is_some_and(|a| SmsGateway::route_of_account(&a) == RouteName::Beem);
    if !through_beem {
        return Ok(None);
    }
    let adopted = store::record_late_sid(conn, message, &report.provider_id).await?
        == store::LateSid::Adopted;
    if adopted {
        tracing::info!(%message, provider_id = %report.provider_id, "a Beem report named a send we never heard back about");
    }
    Ok(adopted.then_some(message))
}
