//! Who may see the status page. A browser cannot put an `Authorization` header on a plain
//! navigation, so besides the headers every `/admin` endpoint takes (a super_admin's bearer
//! token), the page accepts its JWT from a session cookie. The cookie is made by opening
//! `/admin?token=<JWT>` once: the token is checked (a super_admin's, by our rows), set as an
//! HttpOnly, SameSite=Strict cookie (Secure when PUBLIC_URL is https) scoped to `/admin`, and the
//! browser is sent back to `/admin` with 303, so the token leaves the address bar and history.
//!
//! The cookie holds the JWT itself: each view checks it again (signature, audience, expiry, the
//! user's role now), so it dies with the token, and a demoted user loses the page at once. Only
//! this read-only page reads the cookie; every other `/admin` endpoint still wants the header,
//! so the cookie cannot be used to change anything (and SameSite=Strict keeps it off cross-site
//! requests anyway).

use axum::extract::{FromRequestParts, Query};
use axum::http::header::{AUTHORIZATION, COOKIE, HeaderValue};
use axum::http::request::Parts;
use serde::Deserialize;

use crate::http::AppState;
use crate::http::auth::{Caller, SuperAdmin};
use crate::http::problem::ApiError;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "copcca_admin";

/// The cookie lives at most this long; the token inside may expire sooner, and then it is refused.
const MAX_AGE_SECS: u64 = 8 * 3600;

#[derive(Debug, Deserialize)]
struct Login {
    token: Option<String>,
}

/// How the page was reached by the operator.
pub enum Viewer {
    /// By header or session cookie: show the page.
    Admin(SuperAdmin),
    /// By `?token=`: a checked super_admin token, to be set as the cookie.
    Login(String),
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let login = Query::<Login>::try_from_uri(&parts.uri).map_err(ApiError::from)?;
        if let Some(token) = login.0.token {
            admin_by_token(state, &token).await?;
            return Ok(Viewer::Login(token.trim().to_string()));
        }
        if parts.headers.contains_key(AUTHORIZATION) || parts.headers.contains_key("x-api-key") {
            return Ok(Viewer::Admin(
                SuperAdmin::from_request_parts(parts, state).await?,
            ));
        }
        let Some(token) = session_token(parts) else {
            return Err(ApiError::unauthorized(
                "missing_credentials",
                "send Authorization: Bearer <token>, or open /admin?token=<token> once in a \
                 browser to get a session cookie",
            ));
        };
        admin_by_token(state, token)
            .await
            .map(Viewer::Admin)
            .map_err(|e| {
                if e.status == axum::http::StatusCode::UNAUTHORIZED {
                    ApiError::unauthorized(
                        e.code,
                        "the session has expired or is invalid: open /admin?token=<token> again",
                    )
                } else {
                    e
                }
            })
    }
}

async fn admin_by_token(state: &AppState, token: &str) -> Result<SuperAdmin, ApiError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "the token is empty",
        ));
    }
    SuperAdmin::try_from(Caller::from_credential(state, token).await?)
}

/// The session cookie's value, if the request carries one.
fn session_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that keeps `token` for the page.
pub fn session_cookie(token: &str, secure: bool) -> Result<HeaderValue, ApiError> {
    // A JWT is base64url and dots; anything else would let a value inject cookie attributes.
    let jwt_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !token.chars().all(jwt_chars) {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "the token cannot be kept in a cookie",
        ));
    }
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; Path=/admin; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Strict{secure}"
    ))
    .map_err(|_| ApiError::unauthorized("invalid_token", "the token cannot be kept in a cookie"))
}
