//! Error policy for the HTTP layer: every error leaves as `application/problem+json` (RFC 9457)
//! with a stable snake_case `code`. Bad input is 4xx with a precise detail; only a failure of our
//! own (database down, bug) is a 5xx, and its detail never leaks internals (it is logged instead).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::group_commit::GroupError;
use crate::ledger::LedgerError;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:copcca-sms:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid_token`, `insufficient_credits`.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members for some codes (e.g. `needed`, `available` for `insufficient_credits`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: None,
        }
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 422 with one entry per invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value.into());
        self
    }

    /// 429: the caller's company is over its request rate; `Retry-After` (whole seconds, at least
    /// 1) says when to come back, and so does the problem's `retry_after` member.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self::too_many("for this company", wait)
    }

    /// 429 as [`ApiError::rate_limited`], for a client address over the webhook rate.
    pub fn webhook_flood(wait: std::time::Duration) -> Self {
        Self::too_many("from this address", wait)
    }

    fn too_many(whose: &str, wait: std::time::Duration) -> Self {
        let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests {whose}; retry in {secs} s"),
        )
        .with("retry_after", secs)
    }

    /// A failure of ours: logged in full, answered without detail.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let waits = matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        );
        let retry_after = waits
            .then(|| self.extensions.as_ref()?.get("retry_after")?.as_u64())
            .flatten();
        let problem = Problem {
            type_: format!("urn:copcca-sms:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
            errors: self.errors,
            extensions: self.extensions,
        };
        let mut response = (self.status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Middleware: an error answered by something other than our handlers (a body-limit or form
/// rejection inside a webhook, a layer) leaves as problem+json too, with a code from its status
/// and its text as the detail.
pub async fn ensure_problem(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    };
    let detail = if status.is_server_error() || text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut answer = ApiError::new(status, code, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

impl From<sqlx::Error> for ApiError {
    /// A database that is down, restarting or out of connections (`db::transient`) is 503 with
    /// `Retry-After`: the failing transaction was rolled back, and the same request (with its
    /// idempotency key) is the retry. Anything else the database says is our failure.
    fn from(e: sqlx::Error) -> Self {
        ApiError::database(&e)
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Database(e) => ApiError::database(&e),
            GroupError::Stopped => ApiError::internal(e),
        }
    }
}

impl ApiError {
    /// What the database's refusal `e` is for the caller (see `From<sqlx::Error>`), for an
    /// error shared by the requests of a grouped statement.
    pub fn database(e: &sqlx::Error) -> Self {
        if crate::db::transient(e) {
            tracing::warn!(error = %e, "database unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                format!("the database is unavailable; retry in {DATABASE_RETRY_SECS} s"),
            )
            .with("retry_after", DATABASE_RETRY_SECS);
        }
        ApiError::internal(e)
    }
}

/// What a 503 `database_unavailable` asks the caller to wait: a restart or failover of
/// PostgreSQL takes seconds.
const DATABASE_RETRY_SECS: u64 = 2;

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match &r {
            JsonRejection::JsonDataError(_) => "invalid_body",
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            _ => "unreadable_body",
        };
        // A data error (wrong field type, missing field) is a validation failure: 422.
        ApiError::new(r.status(), code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        // A malformed id names no resource.
        ApiError::not_found(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            r.body_text(),
        )
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        use LedgerError as L;
        match e {
            L::InsufficientCredits { needed, available } => {
                ApiError::new(StatusCode::CONFLICT, "insufficient_credits", e.to_string())
                    .with("needed", needed)
                    .with("available", available)
            }
            L::UnknownCompany(_)
            | L::UnknownMessage(_)
            | L::UnknownHold(_)
            | L::UnknownPayment(_) => ApiError::not_found(e.to_string()),
            L::AdjustmentConflict(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                e.to_string(),
            ),
            L::AlreadyCharged { .. }
            | L::HoldReleased(_)
            | L::HoldCommitted { .. }
            | L::NotCharged(_)
            | L::PaymentNotPaid { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            L::CommitOutOfRange { .. } | L::NothingToReserve => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_credits",
                e.to_string(),
            ),
            L::Database(db) => ApiError::internal(db),
        }
    }
}

/// `Json<T>` whose rejections are problem+json. A string holding NUL (`\u0000`) is refused with
/// 422 `invalid_body`: PostgreSQL text cannot store it, so it would otherwise fail later as a 500.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        // The content type, size and syntax checks are axum's; the text is kept for the NUL scan.
        let axum::Json(raw) =
            axum::Json::<Box<serde_json::value::RawValue>>::from_request(req, state).await?;
        if has_nul_escape(raw.get().as_bytes()) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "strings must not contain the NUL character (\\u0000)",
            ));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(raw.get().as_bytes())?;
        Ok(ApiJson(value))
    }
}

/// Whether valid JSON text holds a `\u0000` escape (the only way NUL can appear in it), telling
/// it apart from an escaped backslash followed by `u0000`.
fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `Path<T>` whose rejections are problem+json. A path holding NUL (`%00`) names nothing: 404.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if has_nul_percent(parts.uri.path()) {
            return Err(ApiError::not_found("the path holds a NUL character"));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// `Query<T>` whose rejections are problem+json. A query holding NUL (`%00`) is refused with 422
/// `invalid_query`, as for the body.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(has_nul_percent) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_query",
                "the query must not contain the NUL character (%00)",
            ));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// Whether a percent-encoded path or query decodes to something holding NUL.
fn has_nul_percent(encoded: &str) -> bool {
    encoded.contains("%00")
}

/// Answers unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Answers a known route called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_database_that_is_down_is_503_with_retry_after_and_other_database_errors_are_500() {
        use crate::db::sqlstate::testing::Refused;
        for unavailable in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            Refused::error("57P01"), // admin_shutdown: the server is restarting
            Refused::error("08006"),
        ] {
            let response = ApiError::from(unavailable).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        }
        for ours in [
            Refused::error("42P01"), // undefined_table
            sqlx::Error::RowNotFound,
        ] {
            let response = ApiError::from(ours).into_response();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(response.headers().get(header::RETRY_AFTER).is_none());
        }
    }

    #[test]
    fn rate_limited_rounds_the_wait_up_to_whole_seconds_in_the_header_and_the_body() {
        for (wait, secs) in [
            (Duration::from_millis(300), "1"),
            (Duration::from_millis(1000), "1"),
            (Duration::from_millis(1001), "2"),
            (Duration::ZERO, "1"),
        ] {
            let response = ApiError::rate_limited(wait).into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[header::RETRY_AFTER], secs, "{wait:?}");
        }
        let plain = ApiError::not_found("x").into_response();
        assert!(!plain.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn a_nul_escape_is_found_and_an_escaped_backslash_before_u0000_is_not() {
        for (json, nul) in [
            (r#"{"a":"x\u0000y"}"#, true),
            (r#"["\u0000"]"#, true),
            (r#"{"\u0000":1}"#, true),
            (r#"{"a":"\\\u0000"}"#, true),
            (r#"{"a":"\\u0000"}"#, false),
            (r#"{"a":"\u00001"}"#, true),
            (r#"{"a":"\u0001 u0000"}"#, false),
            (r#"{"a":"\"\\"}"#, false),
            (r#"{"a":"\u"}"#, false),
        ] {
            assert_eq!(has_nul_escape(json.as_bytes()), nul, "{json}");
        }
    }

    #[tokio::test]
    async fn a_body_with_nul_in_a_string_is_refused_with_422_and_a_clean_one_is_read() {
        use axum::extract::FromRequest;
        let request = |body: &'static str| {
            axum::http::Request::builder()
                .method("POST")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(body))
                .unwrap()
        };
        let err = ApiJson::<serde_json::Value>::from_request(request(r#"{"a":"x\u0000"}"#), &())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        let ApiJson(v) =
            ApiJson::<serde_json::Value>::from_request(request(r#"{"a":"\\u0000"}"#), &())
                .await
                .unwrap();
        assert_eq!(v["a"], "\\u0000");
        // axum's own checks still apply.
        let err = ApiJson::<u32>::from_request(request(r#""x""#), &())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        let err = ApiJson::<u32>::from_request(request("{"), &())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::BAD_REQUEST, "malformed_json")
        );
    }

    #[tokio::test]
    async fn a_query_or_path_with_nul_is_refused_before_it_reaches_the_database() {
        use axum::extract::FromRequestParts;
        let parts = |uri: &str| {
            axum::http::Request::builder()
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        type Q = std::collections::HashMap<String, String>;
        let err = ApiQuery::<Q>::from_request_parts(&mut parts("/x?after=a%00b"), &())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query")
        );
        let ApiQuery(q) = ApiQuery::<Q>::from_request_parts(&mut parts("/x?after=a%2500b"), &())
            .await
            .unwrap();
        assert_eq!(q["after"], "a%00b");

        // Path<T> needs the router's matched parameters; without them it is a 404 anyway, so the
        // NUL check is seen by its message.
        let err = ApiPath::<String>::from_request_parts(&mut parts("/v1/opt-outs/%00"), &())
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::NOT_FOUND);
        assert!(err.detail.contains("NUL"), "{}", err.detail);
    }
}
