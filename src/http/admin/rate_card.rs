//! `GET`/`PUT /admin/rate-card` and `GET /admin/rate-card/changes`: the operator prices
//! destinations (credits per segment by number prefix) and enables special ranges; every change
//! is recorded with who made it (`messages::rates`).

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiQuery, ApiResult, FieldError, Problem};
use crate::messages::rates::{self, RateCardChange, RateCardView, SpecialRange};

/// The rate card in force: every destination (the home markets 255 and 254 among them), the
/// special ranges and whether each is enabled, and the latest change.
#[utoipa::path(get, path = "/admin/rate-card", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = RateCardView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<RateCardView>> {
    Ok(ApiJson(rates::show(&state.pool).await?))
}

/// One destination as the operator sets it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateInput {
    /// The number's leading digits without `+`: a calling code (`44`) or a longer prefix
    /// (`4479`); the longest prefix that matches a number prices it.
    pub prefix: String,
    /// Credits per SMS segment, 1..=1000.
    pub credits_per_segment: i64,
    /// False refuses this prefix's numbers (default true).
    pub allowed: Option<bool>,
}

/// The whole card: what is not listed is removed (the home markets stay; listed, they must be 1
/// credit per segment and allowed), and the ranges not listed in `enabled_ranges` are disabled.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateCardRequest {
    pub rates: Vec<RateInput>,
    /// Special ranges sent to (they still need a rate): `premium_rate`, `shared_cost`,
    /// `satellite`. Default none.
    #[serde(default)]
    pub enabled_ranges: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RateCardUpdated {
    /// The card after the change.
    pub card: RateCardView,
    /// The change recorded; null when the card already was as asked.
    pub change: Option<RateCardChange>,
}

/// Replaces the rate card. Every field is checked before anything is written (422
/// `validation_failed`, one `errors` entry per problem, e.g. `rates[2].credits_per_segment`); a
/// refused card changes nothing. Messages already accepted keep their price; new ones get the
/// new card at once in this process and within `SETTINGS_RELOAD_MS` in the others.
#[utoipa::path(put, path = "/admin/rate-card", tag = "admin", request_body = RateCardRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = RateCardUpdated),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed (errors per field) or invalid_body (an unknown field, a wrong type)"),
))]
pub async fn put(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<RateCardRequest>,
) -> ApiResult<ApiJson<RateCardUpdated>> {
    let mut edit = rates::Edit {
        set: req
            .rates
            .iter()
            .map(|r| rates::Rate {
                prefix: r.prefix.trim().to_string(),
                credits_per_segment: r.credits_per_segment,
                allowed: r.allowed.unwrap_or(true),
            })
            .collect(),
        ..rates::Edit::default()
    };
    let mut errors: Vec<FieldError> = edit
        .check("rates")
        .into_iter()
        .map(|e| FieldError {
            field: e.field,
            message: e.message,
        })
        .collect();
    let mut enabled = Vec::new();
    for (i, name) in req.enabled_ranges.iter().enumerate() {
        match name.parse::<SpecialRange>() {
            Ok(r) => enabled.push(r),
            Err(m) => errors.push(FieldError {
                field: format!("enabled_ranges[{i}]"),
                message: m,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    // What the card does not list is removed, as read under the change's lock.
    edit.replace = true;
    edit.ranges = SpecialRange::ALL
        .into_iter()
        .map(|r| (r, enabled.contains(&r)))
        .collect();
    let applied = rates::apply(&state.pool, &edit, &admin.principal.actor()).await?;
    state.rates.invalidate();
    tracing::info!(operator = %admin.principal.actor(),
        change = ?applied.change.as_ref().map(|c| c.id), "rate card changed");
    Ok(ApiJson(RateCardUpdated {
        card: applied.card,
        change: applied.change,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes per page, 1..=200 (default 50).
    pub limit: Option<i64>,
    /// Only changes older than this one (the previous page's `next_before`).
    pub before: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RateCardChangePage {
    pub changes: Vec<RateCardChange>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The history of the rate card, newest first: who, when, what changed before and after.
#[utoipa::path(get, path = "/admin/rate-card/changes", tag = "admin", params(ChangesQuery),
    security(("bearer" = [])), responses(
    (status = 200, body = RateCardChangePage),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn changes(
    State(state): State<AppState>,
    _admin: SuperAdmin,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<ApiJson<RateCardChangePage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 200"));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::field("before", "must be a positive change id"));
    }
    let changes = rates::changes(&state.pool, q.before, limit).await?;
    let next_before = (changes.len() as i64 == limit)
        .then(|| changes.last().map(|c| c.id))
        .flatten();
    Ok(ApiJson(RateCardChangePage {
        changes,
        next_before,
    }))
}
