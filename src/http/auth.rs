//! Who is calling: an HS256 JWT whose `sub` is a `users.id` (the CRM's Supabase tokens), or a
//! company API key. Company and role always come from our rows, never from the token's claims.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::problem::ApiError;
use crate::accounts;
use crate::config::Config;
use crate::domain::{ApiKeyId, CompanyId, Role, UserId};
use crate::ratelimit::Decision;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// A string or a list (RFC 7519); checked by `Validation`, kept here only for issuing.
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
}

/// Signs and checks tokens with `JWT_SECRET`; only HS256 is accepted (so `alg: none` is not).
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    audience: String,
}

impl JwtKeys {
    pub fn new(config: &Config) -> Self {
        let secret = config.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 30;
        // A token that says it is not valid yet is not.
        validation.validate_nbf = true;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            audience: config.jwt_audience.clone(),
        }
    }

    /// A token for `user` valid for `ttl`.
    pub fn issue(&self, user: UserId, ttl: chrono::Duration) -> String {
        let now = Utc::now();
        let claims = Claims {
            sub: user.to_string(),
            aud: self.audience.clone().into(),
            iat: Some(now.timestamp()),
            exp: (now + ttl).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    fn subject(&self, token: &str) -> Result<UserId, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                ApiError::unauthorized(
                    "invalid_token",
                    format!("the bearer token was refused: {e}"),
                )
            })?;
        data.claims.sub.parse().map_err(|_| {
            ApiError::unauthorized("invalid_token", "the token's sub is not a user id")
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    User(UserId),
    ApiKey(ApiKeyId),
}

impl Principal {
    /// How the caller is recorded as an actor (`user:<id>`, `api_key:<id>`).
    pub fn actor(&self) -> String {
        match self {
            Principal::User(id) => format!("user:{id}"),
            Principal::ApiKey(id) => format!("api_key:{id}"),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub company: Option<CompanyId>,
    pub role: Role,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = credential(parts)?;
        Caller::from_credential(state, credential).await
    }
}

impl Caller {
    /// The caller a bearer token or API key stands for (as sent in a header, or kept in the
    /// status page's session cookie).
    pub async fn from_credential(state: &AppState, credential: &str) -> Result<Self, ApiError> {
        if credential.starts_with(accounts::KEY_PREFIX) {
            let key = state.api_keys.find(credential).await?.ok_or_else(|| {
                ApiError::unauthorized("invalid_api_key", "the API key is unknown or revoked")
            })?;
            // API keys are for producers: they act inside their company, never as an operator.
            return Ok(Caller {
                principal: Principal::ApiKey(key.id),
                company: Some(key.company_id),
                role: Role::Member,
            });
        }
        let user_id = state.jwt.subject(credential)?;
        let user = accounts::find_user(&state.pool, user_id)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("unknown_user", "the token's user does not exist")
            })?;
        Ok(Caller {
            principal: Principal::User(user.id),
            company: user.company_id,
            role: user.role(),
        })
    }
}

fn credential(parts: &Parts) -> Result<&str, ApiError> {
    if let Some(key) = parts.headers.get("x-api-key") {
        return key.to_str().map_err(|_| {
            ApiError::unauthorized("invalid_api_key", "the X-API-Key header is not text")
        });
    }
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized(
            "missing_credentials",
            "send Authorization: Bearer <token> or X-API-Key",
        )
    })?;
    let value = header.to_str().map_err(|_| {
        ApiError::unauthorized("invalid_token", "the Authorization header is not text")
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "the Authorization header must be 'Bearer <token>'",
        ));
    }
    Ok(token.trim())
}

/// A caller acting for a company: every `/v1` endpoint. The company is the caller's own.
#[derive(Debug, Clone)]
pub struct CompanyCaller {
    pub company: CompanyId,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for CompanyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let company = caller
            .company
            .ok_or_else(|| ApiError::forbidden("no_company", "this user belongs to no company"))?;
        within_rate(state, company).await?;
        Ok(CompanyCaller { company, caller })
    }
}

/// The company's request budget (`API_RATE_PER_SECOND`, `API_RATE_BURST`), one GCRA key per
/// company in Redis shared by every `serve` process. When Redis does not answer in time the
/// request goes through (logged): the limit protects the service, it is not worth an outage.
async fn within_rate(state: &AppState, company: CompanyId) -> Result<(), ApiError> {
    let Some(quota) = state.api_quota else {
        return Ok(());
    };
    let key = format!("api:{company}");
    let checked = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        state.api_limiter.check(&key, quota, 1),
    )
    .await;
    match checked {
        Ok(Ok(Decision::Allowed)) => Ok(()),
        Ok(Ok(Decision::Wait(wait))) => Err(ApiError::rate_limited(wait)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "API rate limit unavailable; request let through");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("API rate limit timed out; request let through");
            Ok(())
        }
    }
}

/// The platform operator: every `/admin` endpoint.
#[derive(Debug, Clone)]
pub struct SuperAdmin(pub Caller);

impl FromRequestParts<AppState> for SuperAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        SuperAdmin::try_from(caller)
    }
}

impl TryFrom<Caller> for SuperAdmin {
    type Error = ApiError;

    /// 403 unless the caller's role (from our rows) is super_admin.
    fn try_from(caller: Caller) -> Result<Self, ApiError> {
        if caller.role != Role::SuperAdmin {
            return Err(ApiError::forbidden(
                "forbidden",
                "this endpoint is for the platform operator (super_admin)",
            ));
        }
        Ok(SuperAdmin(caller))
    }
}
