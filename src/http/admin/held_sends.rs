//! `POST /admin/messages/{id}/resolve`: the operator settles a send held as unanswered, having
//! looked in the provider's console (`messages::resolve`), without SQL.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::domain::MessageId;
use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiResult, Problem};
use crate::messages::resolve::{self, Resolution, ResolveError};
use crate::routing::RouteName;

/// What the provider's console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// The provider has it: charged (never sent again); `provider_id` names it.
    Sent,
    /// The provider never had it: failed, its credits released.
    NotSent,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub outcome: Found,
    /// The provider's id of the message (Twilio's `SM…` SID; Beem's `<request_id>:<message id>`;
    /// Africa's Talking's `ATXid_…`), required when `outcome` is `sent`.
    pub provider_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resolved {
    pub message_id: MessageId,
    pub outcome: Found,
}

/// Settles a send held as unanswered as the provider's console shows it: `sent` (with its id)
/// charges it, exactly as when a delivery report names it, and it is never sent again;
/// `not_sent` fails it and releases its credits.
#[utoipa::path(post, path = "/admin/messages/{id}/resolve", tag = "admin",
    params(("id" = String, Path, description = "message id")), request_body = ResolveRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = Resolved),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json",
     description = "not_held: the message is not held as unanswered; attempt_in_flight: it is being sent again now; provider_id_in_use"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed: provider_id missing for sent, given for not_sent, or malformed"),
))]
pub async fn resolve(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiPath(id): ApiPath<MessageId>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<ApiJson<Resolved>> {
    let resolution = match (req.outcome, req.provider_id) {
        (Found::Sent, Some(provider_id)) => {
            let provider_id = provider_id.trim().to_string();
            if provider_id.is_empty()
                || provider_id.len() > 100
                || provider_id.chars().any(char::is_control)
            {
                return Err(ApiError::field(
                    "provider_id",
                    "1 to 100 printable characters",
                ));
            }
            Resolution::Sent { provider_id }
        }
        (Found::Sent, None) => {
            return Err(ApiError::field(
                "provider_id",
                "required when outcome is sent",
            ));
        }
        (Found::NotSent, Some(_)) => {
            return Err(ApiError::field("provider_id", "only for outcome sent"));
        }
        (Found::NotSent, None) => Resolution::NotSent,
    };
    let providers = state.providers.current();
    let longest_send = RouteName::ALL
        .into_iter()
        .filter_map(|route| providers.sms.get(route))
        .map(|gateway| gateway.longest_send())
        .max()
        .unwrap_or_default();
    resolve::resolve(
        &state.pool,
        &state.queues,
        id,
        &resolution,
        longest_send * 3,
    )
    .await
    .map_err(|e| match e {
        ResolveError::NotFound(_) => ApiError::not_found(e.to_string()),
        ResolveError::NotHeld(_) => ApiError::new(StatusCode::CONFLICT, "not_held", e.to_string()),
        ResolveError::InFlight(_) => {
            ApiError::new(StatusCode::CONFLICT, "attempt_in_flight", e.to_string())
        }
        ResolveError::ProviderIdInUse(_) => {
            ApiError::new(StatusCode::CONFLICT, "provider_id_in_use", e.to_string())
        }
        ResolveError::Database(e) => e.into(),
        ResolveError::Ledger(e) => ApiError::internal(e),
    })?;
    tracing::info!(operator = %admin.principal.actor(), message = %id, outcome = ?req.outcome,
        "operator resolved a held send");
    Ok(ApiJson(Resolved {
        message_id: id,
        outcome: req.outcome,
    }))
}
