//! Twilio webhooks, signed with `X-Twilio-Signature`: delivery reports
//! (`/webhooks/twilio/status`) and inbound replies (`/webhooks/twilio/inbound`, STOP / START).

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, Uri};

use copcca_jobs::SendSms;

use crate::domain::{Country, E164, MessageId};
use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult};
use crate::messages::opt_outs::{self, Keyword};
use crate::messages::{MessageStatus, reports, store};
use crate::providers::twilio::CALLBACK_MESSAGE_PARAM;
use crate::providers::twilio::signature::SignedWith;
use crate::{inbox, metrics};

type Params = Vec<(String, String)>;

/// Verifies the request and returns its form parameters. Anything that fails is recorded as a
/// rejected webhook and answered 400 (unreadable) or 403 (unsigned, forged, or no account).
async fn verified(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Params, String), ApiError> {
    let payload = String::from_utf8_lossy(body).into_owned();
    let reject = async |status: StatusCode, code: &'static str, reason: &str| -> ApiError {
        metrics::webhook_rejected("twilio", code);
        if let Err(e) = inbox::reject(&state.pool, "twilio", body, reason).await {
            return ApiError::internal(e);
        }
        ApiError::new(status, code, reason)
    };
    let Ok(params) = serde_urlencoded::from_bytes::<Params>(body) else {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "the body is not form-encoded",
        )
        .await);
    };
    let providers = state.providers.current();
    let Some(keys) = &providers.twilio_callbacks else {
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
    // The URL Twilio requested, built as the callback URL given to it was.
    let url =
        (state.config.public_url).route(uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()));
    match keys.verify(url.as_str(), &params, sig, chrono::Utc::now()) {
        Some(SignedWith::Current) => {}
        Some(SignedWith::Previous) => {
            // Signed before Twilio's primary token changed, or a rotation not yet made there.
            metrics::previous_token_callback("twilio");
            tracing::info!(
                "Twilio callback signed with the previous auth token, within its grace period"
            );
        }
        None => {
            return Err(reject(
                StatusCode::FORBIDDEN,
                "bad_signature",
                "X-Twilio-Signature does not match",
            )
            .await);
        }
    }
    Ok((params, payload))
}

/// The message a status callback's URL names (`TwilioClient::status_callback_of`).
fn callback_message(uri: &Uri) -> Option<MessageId> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == CALLBACK_MESSAGE_PARAM)
        .and_then(|(_, v)| v.parse::<uuid::Uuid>().ok())
        .map(MessageId)
}

fn param<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.as_str())
}

/// A Twilio status callback. Forged or unsigned: 403 and nothing changes. Repeated
/// (same MessageSid and MessageStatus): 204 and nothing changes.
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
    let (params, payload) = verified(&state, &uri, &headers, &body).await?;
    let (Some(sid), Some(status)) = (
        param(&params, "MessageSid"),
        param(&params, "MessageStatus"),
    ) else {
        return Err(missing_fields(
            &state,
            &payload,
            "MessageSid and MessageStatus are required",
        )
        .await);
    };
    let mut conn = state.pool.acquire().await?;
    let key = format!("{sid}:{status}");
    let Some(event) = inbox::accept_report(&mut conn, "twilio", &key, sid, &payload).await? else {
        return Ok(StatusCode::NO_CONTENT); // a repeat
    };
    // The StatusCallback URL names the message: a report for a SID we never heard back about
    // gives the message its SID, and its send job charges it instead of sending again.
    if let Some(message) = callback_message(&uri)
        && !matches!(
            MessageStatus::from_twilio(status),
            None | Some(MessageStatus::Failed)
        )
        && store::record_late_sid(&mut conn, message, sid).await? == store::LateSid::Adopted
    {
        tracing::info!(%message, %sid, "a status callback named a send we never heard back about");
        let job = SendSms {
            message_id: message.0,
        };
        let key = format!("send_sms:{message}:late_sid:{sid}");
        if let Err(e) = state.queues.enqueue_as(&job, &key).await {
            tracing::warn!(%message, error = %e, "could not enqueue its charge; the reconciler will");
        }
    }
    drop(conn);
    let report = reports::Report {
        provider: "twilio",
        provider_id: sid,
        next: MessageStatus::from_twilio(status),
        error_code: param(&params, "ErrorCode"),
    };
    reports::apply(&state.pool, &state.queues, event, report).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An inbound SMS to our number. STOP / UNSUBSCRIBE / ACHA puts the sender on the opt-out list of
/// the company that last messaged it; START / ANZA takes it off. Other replies are stored only.
#[utoipa::path(post, path = "/webhooks/twilio/inbound", tag = "webhooks",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    params(("X-Twilio-Signature" = String, Header)),
    responses((status = 204, description = "stored"), (status = 400), (status = 403)))]
pub async fn inbound(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let (params, payload) = verified(&state, &uri, &headers, &body).await?;
    let (Some(sid), Some(from)) = (param(&params, "MessageSid"), param(&params, "From")) else {
        return Err(missing_fields(&state, &payload, "MessageSid and From are required").await);
    };
    let mut conn = state.pool.acquire().await?;
    let Some(event) =
        inbox::accept(&mut conn, "twilio", &format!("{sid}:inbound"), &payload).await?
    else {
        return Ok(StatusCode::NO_CONTENT);
    };
    if let (Some(word), Ok(phone)) = (
        opt_outs::keyword(param(&params, "Body").unwrap_or_default()),
        E164::parse_sms(from, Country::TZ),
    ) && let Some(company) = opt_outs::company_for_reply(&state.pool, &phone).await?
    {
        match word {
            Keyword::Stop => opt_outs::add(&state.pool, company, &phone, "inbound_stop").await?,
            Keyword::Start => opt_outs::remove(&state.pool, company, &phone).await?,
        };
    }
    inbox::mark_processed(&mut conn, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed request without the fields its kind needs: stored as a rejection, answered 400.
async fn missing_fields(state: &AppState, payload: &str, detail: &'static str) -> ApiError {
    metrics::webhook_rejected("twilio", "missing_fields");
    if let Err(e) = inbox::reject(&state.pool, "twilio", payload.as_bytes(), detail).await {
        return ApiError::internal(e);
    }
    ApiError::new(StatusCode::BAD_REQUEST, "missing_fields", detail)
}
