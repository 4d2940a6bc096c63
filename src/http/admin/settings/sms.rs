//! The SMS providers' settings: the central Twilio account and the Beem and Africa's Talking
//! routes.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiResult, Problem};
use crate::providers::africastalking::AfricasTalkingClient;
use crate::providers::beem::BeemClient;
use crate::providers::bulk::BulkError;
use crate::providers::twilio::{Sender, TwilioClient, TwilioError};
use crate::settings::{self, Cipher, Source, mask};

use super::{Checks, Stored, cipher, printable, stored};

// ---- Twilio ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioRequest {
    /// `AC` followed by 32 characters.
    pub account_sid: String,
    /// The account's primary auth token.
    pub auth_token: String,
    /// An E.164 number, an alphanumeric sender id, or a Messaging Service SID (`MG...`).
    pub from: String,
}

/// The Twilio account in force, its token masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TwilioView {
    /// `environment` (it wins), `settings`, or null: no account, messages are not really sent.
    pub source: Option<Source>,
    pub account_sid: Option<String>,
    pub from: Option<String>,
    /// `****` and the last four characters.
    pub auth_token: Option<String>,
    /// The last write to the stored settings (which the environment may override).
    pub stored: Option<Stored>,
    /// Until when callbacks signed with the token before the latest rotation are accepted;
    /// null when none is (no rotation, or its grace is over).
    pub previous_token_accepted_until: Option<chrono::DateTime<chrono::Utc>>,
}

async fn twilio_view(state: &AppState) -> ApiResult<TwilioView> {
    let in_force = settings::twilio_in_force(&state.pool, &state.config).await?;
    let (source, t) = in_force.map_or((None, None), |(s, t)| (Some(s), Some(t)));
    let previous_token_accepted_until = match source {
        Some(Source::Settings) => {
            let cipher = state.config.settings_key.as_ref().map(Cipher::new);
            settings::twilio_previous_token(&state.pool, cipher.as_ref())
                .await?
                .map(|p| p.accepted_until(state.config.twilio_timing.token_grace))
                .filter(|until| *until > chrono::Utc::now())
        }
        _ => None,
    };
    Ok(TwilioView {
        source,
        account_sid: t.as_ref().map(|t| t.account_sid.clone()),
        from: t.as_ref().map(|t| t.from.clone()),
        auth_token: t.as_ref().map(|t| mask(t.auth_token.expose())),
        stored: stored(state, "twilio").await?,
        previous_token_accepted_until,
    })
}

/// The central Twilio account in force (token masked).
#[utoipa::path(get, path = "/admin/settings/twilio", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = TwilioView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_undecryptable"),
))]
pub async fn get_twilio(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<TwilioView>> {
    Ok(ApiJson(twilio_view(&state).await?))
}

/// Stores the central Twilio account after Twilio accepts the credentials
/// (`GET /2010-04-01/Accounts/{sid}.json`). Refused credentials are not stored (422
/// `credentials_refused`); Twilio unreachable: 502 `provider_unavailable`. A new auth token
/// keeps the old one for callbacks for `TWILIO_TOKEN_GRACE_SECS`; a new account SID while the
/// stored account has unresolved sends: 409 `account_in_use`. Every running process uses the
/// new credentials within `SETTINGS_RELOAD_MS`.
#[utoipa::path(put, path = "/admin/settings/twilio", tag = "admin", request_body = TwilioRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = TwilioView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "account_in_use: the stored account still has unresolved sends"),
    (status = 422, body = Problem, content_type = "application/problem+json", description = "validation_failed or credentials_refused"),
    (status = 502, body = Problem, content_type = "application/problem+json", description = "provider_unavailable"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_key_missing"),
))]
pub async fn put_twilio(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<TwilioRequest>,
) -> ApiResult<ApiJson<TwilioView>> {
    let mut checks = Checks::default();
    checks.check(
        req.account_sid.len() == 34
            && req.account_sid.starts_with("AC")
            && req.account_sid.chars().all(|c| c.is_ascii_alphanumeric()),
        "account_sid",
        "must be AC followed by 32 letters or digits",
    );
    checks.check(
        printable(&req.auth_token, 200),
        "auth_token",
        "must be 1..=200 printable characters",
    );
    checks.check(
        printable(&req.from, 34) || (req.from.len() <= 11 && !req.from.trim().is_empty()),
        "from",
        "must be an E.164 number, an alphanumeric sender id or an MG... SID",
    );
    checks.finish()?;
    let cipher = cipher(&state)?;
    let account = settings::TwilioSettings {
        account_sid: req.account_sid,
        auth_token: Secret::new(req.auth_token),
        from: req.from.trim().to_string(),
    };
    TwilioClient::new(
        state.config.twilio_api_base.clone(),
        &account.account_sid,
        account.auth_token.clone(),
        Sender::parse(&account.from),
        &state.config.public_url,
    )
    .check_account()
    .await
    .map_err(|e| match e {
        TwilioError::Refused { code, message, .. }
        | TwilioError::CredentialsRefused { code, message, .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "credentials_refused",
            format!("Twilio refused these credentials: {code} {message}"),
        ),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            format!("Twilio could not check the credentials: {other}"),
        ),
    })?;
    settings::set_twilio(&state.pool, &cipher, &account, &admin.principal.actor()).await?;
    tracing::info!(actor = %admin.principal.actor(), account_sid = %account.account_sid, "Twilio settings stored");
    Ok(ApiJson(twilio_view(&state).await?))
}

// ---- SMS routes: Beem and Africa's Talking --------------------------------------------------

/// A bulk provider's answer to a credentials check: a refusal is 422 `credentials_refused`, no
/// answer 502 `provider_unavailable`; either way nothing is stored.
fn check_failed(provider: &str, e: BulkError) -> ApiError {
    match e {
        BulkError::Credentials { .. }
        | BulkError::Configuration { .. }
        | BulkError::Refused { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "credentials_refused",
            format!("{provider} refused these credentials: {e}"),
        ),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            format!("{provider} could not check the credentials: {other}"),
        ),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeemRequest {
    /// The API key of Beem's key pair.
    pub api_key: String,
    /// The secret key of Beem's key pair.
    pub secret_key: String,
    /// The sender name registered with TCRA through Beem (at most 11 letters or digits), or a
    /// short code.
    pub source_addr: String,
}

/// The Beem account in force, both keys masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BeemView {
    /// `environment` (it wins), `settings`, or null: the Beem route has no account.
    pub source: Option<Source>,
    /// `****` and at most the last four characters.
    pub api_key: Option<String>,
    pub secret_key: Option<String>,
    pub source_addr: Option<String>,
    pub stored: Option<Stored>,
}

async fn beem_view(state: &AppState) -> ApiResult<BeemView> {
    let in_force = settings::beem_in_force(&state.pool, &state.config).await?;
    let (source, b) = in_force.map_or((None, None), |(src, b)| (Some(src), Some(b)));
    Ok(BeemView {
        source,
        api_key: b.as_ref().map(|b| mask(b.api_key.expose())),
        secret_key: b.as_ref().map(|b| mask(b.secret_key.expose())),
        source_addr: b.as_ref().map(|b| b.source_addr.clone()),
        stored: stored(state, "beem").await?,
    })
}

/// The Beem route's account in force (keys masked).
#[utoipa::path(get, path = "/admin/settings/beem", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = BeemView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_beem(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<BeemView>> {
    Ok(ApiJson(beem_view(&state).await?))
}

/// Stores the Beem route's account after Beem accepts the key pair (its balance answers, on
/// `BEEM_API_BASE`). Refused: 422 `credentials_refused`; Beem unreachable: 502
/// `provider_unavailable`; nothing stored either way. Every running process sends through the
/// new account within `SETTINGS_RELOAD_MS`, unless `BEEM_*` sets one (it wins).
#[utoipa::path(put, path = "/admin/settings/beem", tag = "admin", request_body = BeemRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = BeemView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json", description = "validation_failed or credentials_refused"),
    (status = 502, body = Problem, content_type = "application/problem+json", description = "provider_unavailable"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_key_missing"),
))]
pub async fn put_beem(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<BeemRequest>,
) -> ApiResult<ApiJson<BeemView>> {
    let mut checks = Checks::default();
    for (field, value) in [("api_key", &req.api_key), ("secret_key", &req.secret_key)] {
        checks.check(
            printable(value, 255),
            field,
            "must be 1..=255 printable characters",
        );
    }
    if let Err(message) = crate::config::check_sender(&req.source_addr) {
        checks.check(false, "source_addr", message);
    }
    checks.finish()?;
    let cipher = cipher(&state)?;
    let account = settings::BeemSettings {
        api_key: Secret::new(req.api_key),
        secret_key: Secret::new(req.secret_key),
        source_addr: req.source_addr,
    };
    BeemClient::new(
        state.config.beem_api_base.clone(),
        state.config.beem_dlr_base.clone(),
        account.api_key.expose(),
        account.secret_key.clone(),
        &account.source_addr,
    )
    .check_credentials()
    .await
    .map_err(|e| check_failed("Beem", e))?;
    settings::set_beem(&state.pool, &cipher, &account, &admin.principal.actor()).await?;
    tracing::info!(actor = %admin.principal.actor(), source_addr = %account.source_addr, "Beem settings stored");
    Ok(ApiJson(beem_view(&state).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfricasTalkingRequest {
    /// The application's username (`sandbox` on the sandbox host).
    pub username: String,
    /// The application's API key.
    pub api_key: String,
    /// The registered sender id (at most 11 letters or digits) or short code.
    pub sender_id: String,
}

/// The Africa's Talking account in force, the API key masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AfricasTalkingView {
    /// `environment` (it wins), `settings`, or null: the Africa's Talking route has no account.
    pub source: Option<Source>,
    pub username: Option<String>,
    /// `****` and the last four characters.
    pub api_key: Option<String>,
    pub sender_id: Option<String>,
    pub stored: Option<Stored>,
}

async fn africastalking_view(state: &AppState) -> ApiResult<AfricasTalkingView> {
    let in_force = settings::africastalking_in_force(&state.pool, &state.config).await?;
    let (source, a) = in_force.map_or((None, None), |(src, a)| (Some(src), Some(a)));
    Ok(AfricasTalkingView {
        source,
        username: a.as_ref().map(|a| a.username.clone()),
        api_key: a.as_ref().map(|a| mask(a.api_key.expose())),
        sender_id: a.as_ref().map(|a| a.sender_id.clone()),
        stored: stored(state, "africastalking").await?,
    })
}

/// The Africa's Talking route's account in force (the API key masked).
#[utoipa::path(get, path = "/admin/settings/africastalking", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = AfricasTalkingView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_africastalking(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<AfricasTalkingView>> {
    Ok(ApiJson(africastalking_view(&state).await?))
}

/// Stores the Africa's Talking route's account after Africa's Talking accepts the username and
/// API key (its user data answers, on `AT_API_BASE`). Refused: 422 `credentials_refused`;
/// unreachable: 502 `provider_unavailable`; nothing stored either way. Every running process
/// sends through the new account within `SETTINGS_RELOAD_MS`, unless `AT_*` sets one (it wins).
#[utoipa::path(put, path = "/admin/settings/africastalking", tag = "admin",
    request_body = AfricasTalkingRequest, security(("bearer" = [])), responses(
    (status = 200, body = AfricasTalkingView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json", description = "validation_failed or credentials_refused"),
    (status = 502, body = Problem, content_type = "application/problem+json", description = "provider_unavailable"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_key_missing"),
))]
pub async fn put_africastalking(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<AfricasTalkingRequest>,
) -> ApiResult<ApiJson<AfricasTalkingView>> {
    let mut checks = Checks::default();
    if let Err(message) = crate::config::check_at_username(&req.username) {
        checks.check(false, "username", message);
    }
    checks.check(
        printable(&req.api_key, 255),
        "api_key",
        "must be 1..=255 printable characters",
    );
    if let Err(message) = crate::config::check_sender(&req.sender_id) {
        checks.check(false, "sender_id", message);
    }
    checks.finish()?;
    let cipher = cipher(&state)?;
    let account = settings::AfricasTalkingSettings {
        username: req.username,
        api_key: Secret::new(req.api_key),
        sender_id: req.sender_id,
    };
    AfricasTalkingClient::new(
        state.config.africastalking_api_base.clone(),
        &account.username,
        account.api_key.clone(),
        Some(account.sender_id.clone()),
    )
    .check_credentials()
    .await
    .map_err(|e| check_failed("Africa's Talking", e))?;
    settings::set_africastalking(&state.pool, &cipher, &account, &admin.principal.actor()).await?;
    tracing::info!(actor = %admin.principal.actor(), username = %account.username, "Africa's Talking settings stored");
    Ok(ApiJson(africastalking_view(&state).await?))
}
