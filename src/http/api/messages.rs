//! `POST /v1/messages`, `GET /v1/messages/{id}`, `GET /v1/messages`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::domain::{Credits, E164, MessageId};
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError, Problem};
use crate::http::{AppState, idempotency};
use crate::messages::rates::Refusal;
use crate::messages::{self, AcceptError, AcceptRequest, MessageStatus, MessageView};
use crate::telemetry::{self, Subject};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// E.164, or a local number read in the company's country (`0754123456`).
    pub to: String,
    /// 1..=1600 characters.
    pub body: String,
    pub debt_id: Option<uuid::Uuid>,
    pub invoice_number: Option<String>,
    /// False lets a message go out during quiet hours (e.g. a one-time code). Default true.
    pub quiet_hours: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Queued {
    pub id: MessageId,
    pub status: MessageStatus,
    pub to: E164,
    pub segments: i32,
    /// What the message costs: `segments` x `credits_per_segment`, reserved at send.
    pub credits: Credits,
    /// The destination's rate on the rate card when the message was accepted (1 for the home
    /// markets).
    pub credits_per_segment: i64,
    /// `GSM-7` or `UCS-2`.
    pub encoding: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Accepts one message for sending. An `Idempotency-Key` makes a retry return the same message;
/// the same key with a different message is refused.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = SendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "at most 200 characters")),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 202, body = Queued),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed, destination_unpriced, destination_forbidden, destination_restricted (the rate card refuses the number; nothing written), recipient_opted_out or idempotency_key_reused"),
))]
pub async fn create(
    State(state): State<AppState>,
    caller: CompanyCaller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<(StatusCode, HeaderMap, ApiJson<Queued>)> {
    let idempotency_key = idempotency::key(&headers)?;
    let country = state
        .countries
        .of(&state.pool, caller.company)
        .await?
        .ok_or_else(|| ApiError::not_found("your company no longer exists"))?;
    let request = AcceptRequest {
        to: req.to,
        body: req.body,
        debt_id: req.debt_id,
        invoice_number: req.invoice_number,
        respect_quiet_hours: req.quiet_hours.unwrap_or(true),
        idempotency_key,
        sender: caller.caller.principal.actor(),
    };
    let card = state.rates.card().await?;
    let accepted = messages::accept(
        &state.acceptor,
        &state.pool,
        &card,
        caller.company,
        country,
        request,
    )
    .await
    .map_err(refusal)?;
    let m = accepted.message.view;
    telemetry::record_subject(Subject::Message(m.id));
    let response_headers = idempotency::replayed(accepted.replay);
    let body = Queued {
        id: m.id,
        status: m.status,
        to: m.to,
        segments: m.segments,
        credits_per_segment: m.credits.get() / i64::from(m.segments.max(1)),
        credits: m.credits,
        encoding: m.encoding,
        created_at: m.created_at,
    };
    Ok((StatusCode::ACCEPTED, response_headers, ApiJson(body)))
}

fn refusal(e: AcceptError) -> ApiError {
    match e {
        AcceptError::To(p) => ApiError::validation(vec![FieldError {
            field: "to".into(),
            message: p.to_string(),
        }]),
        AcceptError::Body(b) => ApiError::validation(vec![FieldError {
            field: "body".into(),
            message: b.to_string(),
        }]),
        AcceptError::Destination(refusal) => destination_refused(&refusal),
        AcceptError::OptedOut(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient_opted_out",
            e.to_string(),
        ),
        AcceptError::KeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            e.to_string(),
        ),
        AcceptError::Database(db) => ApiError::database(&db),
    }
}

/// 422 with the rate card's reason (`destination_unpriced`, `destination_forbidden`,
/// `destination_restricted`), the number in `to` and an `errors` entry for the field.
pub(crate) fn destination_refused(refusal: &Refusal) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        refusal.code(),
        refusal.to_string(),
    );
    e.errors = vec![FieldError {
        field: "to".into(),
        message: refusal.to_string(),
    }];
    let to = match refusal {
        Refusal::Unpriced { to }
        | Refusal::Forbidden { to, .. }
        | Refusal::Restricted { to, .. } => to,
    };
    let e = e.with("to", to.as_str());
    match refusal {
        Refusal::Forbidden { prefix, .. } => e.with("prefix", prefix.as_str()),
        Refusal::Restricted { range, .. } => e.with("range", range.as_str()),
        Refusal::Unpriced { .. } => e,
    }
}

/// One of the caller's messages.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", params(("id" = String, Path)),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = MessageView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiPath(id): ApiPath<MessageId>,
) -> ApiResult<ApiJson<MessageView>> {
    messages::store::find_for_company(&state.pool, caller.company, id)
        .await?
        .map(|m| ApiJson(m.view))
        .ok_or_else(|| ApiError::not_found(format!("no message {id}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only messages in this status.
    pub status: Option<String>,
    /// Only messages to this E.164 number.
    pub to: Option<String>,
    /// 1..=200 (default 50).
    pub limit: Option<i64>,
    /// The previous page's `next_before`.
    pub before: Option<MessageId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    pub next_before: Option<MessageId>,
}

/// The caller's messages, newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", params(ListQuery),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = MessagePage),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<MessagePage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(MessageStatus::parse(s).ok_or_else(|| {
            ApiError::field(
                "status",
                "must be one of queued, sending, sent, delivered, undelivered, failed",
            )
        })?),
    };
    let messages = messages::store::list(
        &state.pool,
        caller.company,
        status,
        q.to.as_deref(),
        q.before,
        limit,
    )
    .await?;
    let next_before = if messages.len() as i64 == limit {
        messages.last().map(|m| m.id)
    } else {
        None
    };
    Ok(ApiJson(MessagePage {
        messages: messages.into_iter().map(|m| m.view).collect(),
        next_before,
    }))
}
