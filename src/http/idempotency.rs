//! The `Idempotency-Key` request header: a caller's name for one operation, so a retried request
//! returns the first answer instead of doing it twice.

use axum::http::HeaderMap;

use super::problem::{ApiError, ApiResult};

const MAX_LEN: usize = 200;

/// The key, if the caller sent one: 1 to 200 visible characters, else 422.
pub fn key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(k)) if !k.trim().is_empty() && k.trim().len() <= MAX_LEN => {
            Ok(Some(k.trim().to_string()))
        }
        Some(_) => Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 200 visible characters",
        )),
    }
}

/// Marks a response that repeats the first answer to this key.
pub fn replayed(replay: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if replay {
        headers.insert(
            "idempotent-replayed",
            "true".parse().expect("static header"),
        );
    }
    headers
}
