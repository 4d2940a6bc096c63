//! The payment providers' settings: Stripe, M-Pesa (Daraja) and Vodacom.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::http::AppState;
use crate::http::auth::SuperAdmin;
use crate::http::problem::{ApiError, ApiJson, ApiResult, Problem};
use crate::settings::{self, Source, mask};

use super::{Checks, Stored, cipher, printable, stored};

// ---- Stripe ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeRequest {
    /// A secret (`sk_...`) or restricted (`rk_...`) API key.
    pub secret_key: String,
    /// The webhook endpoint's signing secret (`whsec_...`).
    pub webhook_secret: String,
}

/// The Stripe credentials in force, masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StripeView {
    /// `environment` (it wins), `settings`, or null: card payments are not configured.
    pub source: Option<Source>,
    pub secret_key: Option<String>,
    pub webhook_secret: Option<String>,
    pub stored: Option<Stored>,
}

async fn stripe_view(state: &AppState) -> ApiResult<StripeView> {
    let in_force = settings::stripe_in_force(&state.pool, &state.config).await?;
    let (source, s) = in_force.map_or((None, None), |(src, s)| (Some(src), Some(s)));
    Ok(StripeView {
        source,
        secret_key: s.as_ref().map(|s| mask(s.secret_key.expose())),
        webhook_secret: s.as_ref().map(|s| mask(s.webhook_secret.expose())),
        stored: stored(state, "stripe").await?,
    })
}

/// The Stripe credentials in force (masked).
#[utoipa::path(get, path = "/admin/settings/stripe", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = StripeView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_stripe(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<StripeView>> {
    Ok(ApiJson(stripe_view(&state).await?))
}

/// Stores the Stripe credentials (their shape is checked, not their validity).
#[utoipa::path(put, path = "/admin/settings/stripe", tag = "admin", request_body = StripeRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = StripeView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_key_missing"),
))]
pub async fn put_stripe(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<StripeRequest>,
) -> ApiResult<ApiJson<StripeView>> {
    let mut checks = Checks::default();
    checks.check(
        printable(&req.secret_key, 255)
            && (req.secret_key.starts_with("sk_") || req.secret_key.starts_with("rk_")),
        "secret_key",
        "must be a Stripe secret key (sk_...) or restricted key (rk_...)",
    );
    checks.check(
        printable(&req.webhook_secret, 255) && req.webhook_secret.starts_with("whsec_"),
        "webhook_secret",
        "must be a webhook signing secret (whsec_...)",
    );
    checks.finish()?;
    let cipher = cipher(&state)?;
    let stripe = settings::StripeSettings {
        secret_key: Secret::new(req.secret_key),
        webhook_secret: Secret::new(req.webhook_secret),
    };
    settings::set_stripe(&state.pool, &cipher, &stripe, &admin.principal.actor()).await?;
    tracing::info!(actor = %admin.principal.actor(), "Stripe settings stored");
    Ok(ApiJson(stripe_view(&state).await?))
}

// ---- M-Pesa ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MpesaRequest {
    /// The Daraja app's consumer key.
    pub consumer_key: String,
    /// The Daraja app's consumer secret.
    pub consumer_secret: String,
    /// The paybill or till number payments go to (digits).
    pub shortcode: String,
    /// The Lipa na M-Pesa Online passkey.
    pub passkey: String,
}

/// The M-Pesa credentials in force, secrets masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MpesaView {
    /// `environment` (it wins), `settings`, or null: M-Pesa payments are not configured.
    pub source: Option<Source>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
    pub shortcode: Option<String>,
    pub passkey: Option<String>,
    pub stored: Option<Stored>,
}

async fn mpesa_view(state: &AppState) -> ApiResult<MpesaView> {
    let in_force = settings::mpesa_in_force(&state.pool, &state.config).await?;
    let (source, m) = in_force.map_or((None, None), |(src, m)| (Some(src), Some(m)));
    Ok(MpesaView {
        source,
        consumer_key: m.as_ref().map(|m| mask(m.consumer_key.expose())),
        consumer_secret: m.as_ref().map(|m| mask(m.consumer_secret.expose())),
        shortcode: m.as_ref().map(|m| m.shortcode.clone()),
        passkey: m.as_ref().map(|m| mask(m.passkey.expose())),
        stored: stored(state, "mpesa").await?,
    })
}

/// The M-Pesa credentials in force (secrets masked).
#[utoipa::path(get, path = "/admin/settings/mpesa", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = MpesaView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_mpesa(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<MpesaView>> {
    Ok(ApiJson(mpesa_view(&state).await?))
}

/// Stores the M-Pesa credentials (their shape is checked, not their validity).
#[utoipa::path(put, path = "/admin/settings/mpesa", tag = "admin", request_body = MpesaRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = MpesaView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_key_missing"),
))]
pub async fn put_mpesa(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<MpesaRequest>,
) -> ApiResult<ApiJson<MpesaView>> {
    let mut checks = Checks::default();
    for (field, value) in [
        ("consumer_key", &req.consumer_key),
        ("consumer_secret", &req.consumer_secret),
        ("passkey", &req.passkey),
    ] {
        checks.check(
            printable(value, 255),
            field,
            "must be 1..=255 printable characters",
        );
    }
    checks.check(
        (5..=10).contains(&req.shortcode.len())
            && req.shortcode.chars().all(|c| c.is_ascii_digit()),
        "shortcode",
        "must be 5 to 10 digits",
    );
    checks.finish()?;
    let cipher = cipher(&state)?;
    let mpesa = settings::MpesaSettings {
        consumer_key: Secret::new(req.consumer_key),
        consumer_secret: Secret::new(req.consumer_secret),
        shortcode: req.shortcode,
        passkey: Secret::new(req.passkey),
    };
    settings::set_mpesa(&state.pool, &cipher, &mpesa, &admin.principal.actor()).await?;
    tracing::info!(actor = %admin.principal.actor(), shortcode = %mpesa.shortcode, "M-Pesa settings stored");
    Ok(ApiJson(mpesa_view(&state).await?))
}

// ---- Vodacom M-Pesa (Tanzania) --------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VodacomRequest {
    /// The application's API key in Vodacom's developer portal.
    pub api_key: String,
    /// The portal's public key: base64 of its DER SubjectPublicKeyInfo.
    pub public_key: String,
    /// `input_ServiceProviderCode`: 4-12 letters or digits.
    pub service_provider_code: String,
    /// `vodacomTZN` (the default, and the only market supported).
    pub market: Option<String>,
}

/// The Vodacom M-Pesa account in force, the API key masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VodacomView {
    /// `environment` (it wins), `settings`, or null: M-Pesa in TZS is not configured.
    pub source: Option<Source>,
    /// `****` and the last four characters.
    pub api_key: Option<String>,
    /// The public key (public: shown whole).
    pub public_key: Option<String>,
    pub service_provider_code: Option<String>,
    pub market: Option<String>,
    pub stored: Option<Stored>,
}

async fn vodacom_view(state: &AppState) -> ApiResult<VodacomView> {
    let in_force = settings::vodacom_in_force(&state.pool, &state.config).await?;
    let (source, v) = in_force.map_or((None, None), |(src, v)| (Some(src), Some(v)));
    Ok(VodacomView {
        source,
        api_key: v.as_ref().map(|v| mask(v.api_key.expose())),
        public_key: v.as_ref().map(|v| v.public_key.clone()),
        service_provider_code: v.as_ref().map(|v| v.service_provider_code.clone()),
        market: v.as_ref().map(|v| v.market.clone()),
        stored: stored(state, "vodacom").await?,
    })
}

/// The Vodacom M-Pesa account in force (the API key masked).
#[utoipa::path(get, path = "/admin/settings/vodacom", tag = "admin",
    security(("bearer" = [])), responses(
    (status = 200, body = VodacomView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 503, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_vodacom(
    State(state): State<AppState>,
    _admin: SuperAdmin,
) -> ApiResult<ApiJson<VodacomView>> {
    Ok(ApiJson(vodacom_view(&state).await?))
}

/// Stores the Vodacom M-Pesa account (the API key encrypted) after checking it: its shape, and
/// then Vodacom itself, by opening a session with it.
#[utoipa::path(put, path = "/admin/settings/vodacom", tag = "admin", request_body = VodacomRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = VodacomView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json", description = "validation_failed, or vodacom_refused: no session opens with them"),
    (status = 503, body = Problem, content_type = "application/problem+json", description = "settings_key_missing"),
))]
pub async fn put_vodacom(
    State(state): State<AppState>,
    SuperAdmin(admin): SuperAdmin,
    ApiJson(req): ApiJson<VodacomRequest>,
) -> ApiResult<ApiJson<VodacomView>> {
    let market = req.market.unwrap_or_else(|| "vodacomTZN".into());
    let mut checks = Checks::default();
    checks.check(
        printable(&req.api_key, 255),
        "api_key",
        "must be 1..=255 printable characters",
    );
    checks.check(
        crate::config::check_vodacom_public_key(&req.public_key).is_ok(),
        "public_key",
        "must be the portal's RSA public key, base64 of its DER SubjectPublicKeyInfo",
    );
    let code = &req.service_provider_code;
    checks.check(
        (4..=12).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()),
        "service_provider_code",
        "must be 4 to 12 letters or digits",
    );
    checks.check(
        market == "vodacomTZN",
        "market",
        "only vodacomTZN is supported",
    );
    checks.finish()?;
    let cipher = cipher(&state)?;
    let account = crate::config::VodacomAccount {
        api_key: Secret::new(req.api_key),
        public_key: req.public_key,
        service_provider_code: req.service_provider_code,
        market,
    };
    let client = crate::payments::vodacom_client(&state.config, account.clone())
        .map_err(|e| ApiError::field("public_key", e))?;
    if let Err(e) = client.check().await {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "vodacom_refused",
            format!("no Vodacom session opens with these credentials: {e}"),
        ));
    }
    settings::set_vodacom(&state.pool, &cipher, &account, &admin.principal.actor()).await?;
    tracing::info!(actor = %admin.principal.actor(), code = %account.service_provider_code, "Vodacom M-Pesa settings stored");
    Ok(ApiJson(vodacom_view(&state).await?))
}
