//! `GET` and `PUT /admin/routes`: the operator's routing table (destination, optionally one
//! company, to an ordered list of provider routes) and each route's circuit.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiResult, FieldError, Problem};
use crate::routing::{
    self, Circuit, CircuitSettings, Circuits, ReplaceError, RouteName, RouteRule, RoutingTable,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Routes {
    /// The rules, in the order they were set. The most specific matching rule decides (a
    /// company's own before everybody's, then the longest prefix).
    pub rules: Vec<RouteRule>,
    /// The routes a message takes when no rule matches.
    pub default: Vec<RouteName>,
    /// Every route: whether this deployment has its account, and its circuit.
    pub routes: Vec<RouteStatus>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteStatus {
    pub route: RouteName,
    /// Its account is configured (`TWILIO_*`, `BEEM_*`, `AT_*`, or settings); a route without
    /// one is skipped like one whose circuit is open.
    pub configured: bool,
    /// Absent when Redis did not answer.
    pub circuit: Option<Circuit>,
    /// Where its provider must post delivery reports (set it in Beem's portal or Africa's
    /// Talking's dashboard): its last segment is the route's secret, derived from its account's
    /// secret, so it changes when that is rotated. Absent for Twilio (each message names its
    /// own, signed) and for a route without an account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutesUpdate {
    /// The whole new table (replaces the old one; `[]` restores Twilio for everything).
    pub rules: Vec<RouteRule>,
}

/// The routing table and every route's circuit.
#[utoipa::path(get, path = "/admin/routes", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, body = Routes),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get(
    State(state): State<AppState>,
    SuperAdmin(_operator): SuperAdmin,
) -> ApiResult<ApiJson<Routes>> {
    let table = routing::load(&state.pool).await?;
    Ok(ApiJson(routes(&state, table).await))
}

/// Replaces the routing table; the change is recorded with who made it.
#[utoipa::path(put, path = "/admin/routes", tag = "admin", request_body = RoutesUpdate,
    security(("bearer" = [])), responses(
    (status = 200, body = Routes),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed: a malformed rule (named by its position), a route named twice, two rules for one destination and company, or an unknown company"),
))]
pub async fn put(
    State(state): State<AppState>,
    SuperAdmin(operator): SuperAdmin,
    ApiJson(update): ApiJson<RoutesUpdate>,
) -> ApiResult<ApiJson<Routes>> {
    let table = RoutingTable::new(update.rules).map_err(|e| {
        ApiError::validation(vec![FieldError {
            field: format!("rules[{}]", e.index),
            message: e.reason,
        }])
    })?;
    let actor = operator.principal.actor();
    match routing::replace(&state.pool, &table, &actor).await {
        Ok(_) => {}
        Err(ReplaceError::UnknownCompany(i)) => {
            return Err(ApiError::field(
                &format!("rules[{i}].company_id"),
                "no such company",
            ));
        }
        Err(ReplaceError::Database(e)) => return Err(e.into()),
    }
    // This process's estimates follow at once; other processes within SETTINGS_RELOAD_MS.
    state.routing.invalidate();
    tracing::info!(operator = %actor, rules = table.rules.len(), "routing table replaced");
    Ok(ApiJson(routes(&state, table).await))
}

async fn routes(state: &AppState, table: RoutingTable) -> Routes {
    Routes {
        rules: table.rules,
        default: routing::DEFAULT_ROUTES.to_vec(),
        routes: statuses(state).await,
    }
}

/// Every route: configured or not, its circuit, its report URL (also on the status page). The
/// circuits are read together, so Redis down costs one wait, and never holds the answer (a PUT
/// has already been stored).
pub(crate) async fn statuses(state: &AppState) -> Vec<RouteStatus> {
    let circuits = Circuits::new(
        state.queues.connection(),
        state.queues.prefix(),
        CircuitSettings::default(),
    );
    let providers = state.providers.current();
    let states = futures::future::join_all(
        RouteName::ALL.map(|route| super::from_redis(circuits.state(route))),
    )
    .await;
    RouteName::ALL
        .into_iter()
        .zip(states)
        .map(|(route, circuit)| {
            let report_url = providers
                .sms
                .get(route)
                .and_then(|g| g.report_token())
                .map(|token| {
                    let path = format!("/webhooks/{route}/{token}");
                    state.config.public_url.route(&path).to_string()
                });
            RouteStatus {
                route,
                configured: providers.sms.configured(route),
                circuit: circuit
                    .inspect_err(|e| tracing::warn!(error = %e, %route, "route circuit not read"))
                    .ok(),
                report_url,
            }
        })
        .collect()
}
