//! `GET /admin`: the operator's status page (super_admin). One self-contained HTML document:
//! balances per company, every queue's depth now, queue depth and send rate over the last hour
//! as inline SVG charts, the latest failed messages and dead letters. [`data`] reads, [`render`]
//! and [`chart`] draw, [`session`] lets a browser in (a `?token=` exchanged for a cookie).
//!
//! Queue depth over time comes from `queue_samples`, written once a minute by `schedule`
//! (`workers::sample_queues`); the send rate is counted from `messages`.

mod chart;
mod data;
mod html;
mod render;
mod session;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::http::problem::{ApiResult, Problem};
pub use session::Viewer;

/// The page: no script may run, nothing is loaded from elsewhere, and it may not be framed.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The operator's status page (HTML). A browser opens `/admin?token=<JWT>` once: the token is
/// exchanged for an HttpOnly, SameSite=Strict session cookie and the browser is redirected to
/// `/admin` (303) without it.
#[utoipa::path(get, path = "/admin", tag = "admin",
    security(("bearer" = [])),
    params(("token" = Option<String>, Query,
        description = "a super_admin's JWT, exchanged for the session cookie (then 303 to /admin)")),
    responses(
    (status = 200, description = "the status page", content_type = "text/html", body = String),
    (status = 303, description = "the token was accepted: the session cookie is set, go to /admin",
        headers(("Location" = String, description = "/admin"),
                ("Set-Cookie" = String, description = "copcca_admin=<JWT>; Path=/admin; HttpOnly; SameSite=Strict"))),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
))]
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> ApiResult<Response> {
    let admin = match viewer {
        Viewer::Admin(admin) => admin,
        Viewer::Login(token) => return login(&state, &token),
    };
    tracing::debug!(actor = %admin.0.principal.actor(), "status page viewed");
    // Together: each part that reads Redis waits for it at most once, in parallel.
    let (snapshot, routes, alerts) = tokio::join!(
        data::gather(&state.pool, &state.queues, chrono::Utc::now()),
        crate::http::admin::routes::statuses(&state),
        alerts(&state),
    );
    let mut snapshot = snapshot?;
    snapshot.routes = routes;
    snapshot.alerts = alerts?;
    snapshot
        .alerts
        .extend(snapshot.routes.iter().filter_map(route_down));
    let html = render::page(&snapshot);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        html,
    )
        .into_response())
}

/// The alert of a route whose circuit is open: new sends skip it.
fn route_down(status: &crate::http::admin::routes::RouteStatus) -> Option<String> {
    let circuit = status.circuit.as_ref()?;
    if circuit.state != crate::routing::CircuitState::Open {
        return None;
    }
    let until = circuit
        .open_until_ms
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map_or_else(String::new, |t| {
            format!(" until {} UTC", t.format("%H:%M:%S"))
        });
    Some(format!(
        "Route {} is down{until} ({}): new sends take the next route of their rule.",
        status.route, circuit.reason
    ))
}

/// 303 to `/admin` with the (already checked) token kept in the session cookie.
fn login(state: &AppState, token: &str) -> ApiResult<Response> {
    let secure = state.config.public_url.is_https();
    let cookie = session::session_cookie(token, secure)?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/admin")),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}

/// What the operator must see first: sending paused because the provider refuses our
/// credentials, sends held as unanswered, and companies with open card disputes.
async fn alerts(state: &AppState) -> ApiResult<Vec<String>> {
    let mut alerts = Vec::new();
    if let Some(account) = state.providers.current().sms.twilio.account() {
        match crate::http::admin::from_redis(state.pauses.status(account)).await {
            Ok(Some(p)) => alerts.push(format!(
                "Sending is paused: Twilio refused our credentials for account {account} since {} UTC ({}). \
                 Store working credentials (PUT /admin/settings/twilio); sending resumes by itself.",
                p.since.format("%Y-%m-%d %H:%M:%S"),
                p.reason
            )),
            Ok(None) => {}
            Err(e) => alerts.push(format!("Whether sending is paused is unknown: {e}")),
        }
    }
    let (unanswered, oldest) = crate::messages::recovery::unanswered(&state.pool, 5).await?;
    if unanswered > 0 {
        let listed: Vec<String> = oldest
            .iter()
            .map(|(id, account)| format!("{id} ({account})"))
            .collect();
        alerts.push(format!(
            "{unanswered} sends got no answer and their provider does not show them: held. Twilio's \
             are sent again after TWILIO_RESEND_UNANSWERED_AFTER_SECS; Beem's and Africa's \
             Talking's wait for their delivery report. Look them up in the provider's console and \
             settle them with POST /admin/messages/{{id}}/resolve. Oldest: {}.",
            listed.join(", ")
        ));
    }
    let disputed: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.name FROM payment_disputes d JOIN companies c ON c.id = d.company_id
         WHERE d.outcome = 'open' ORDER BY c.name",
    )
    .fetch_all(&state.pool)
    .await?;
    if !disputed.is_empty() {
        alerts.push(format!(
            "Card disputes are open for {}: their disputed credits are held back; answer them in \
             Stripe's Dashboard (see Card disputes below).",
            disputed.join(", ")
        ));
    }
    Ok(alerts)
}
