//! What can go wrong talking to Stripe, classified once here (STYLE.md "classify once").
//!
//! Retrying is the caller's job: the client never loops. Retrying a create is safe because the
//! caller reuses the same `Idempotency-Key`, so Stripe returns the first result instead of
//! creating a second session.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error (any status but 429). `kind` is `error.type`
    /// (`invalid_request_error`, `api_error`, `idempotency_error`, …), `code` is `error.code`.
    /// `should_retry` is the `Stripe-Should-Retry` header when Stripe sent one.
    #[error("stripe refused ({status}) {kind}: {message}")]
    Api {
        status: u16,
        kind: String,
        code: Option<String>,
        message: String,
        should_retry: Option<bool>,
    },
    /// 429, or the legacy 400 with `code: rate_limit`: try again later (not a failure of ours).
    #[error("stripe rate limited us")]
    RateLimited,
    /// No usable answer. `sent: false`: the request never left (connection refused, DNS);
    /// `sent: true`: it may have reached Stripe (connection dropped mid-answer).
    #[error("could not talk to stripe (sent: {sent}): {detail}")]
    Transport { sent: bool, detail: String },
    /// Sent, but no answer within the timeout: Stripe may have acted on it.
    #[error("stripe did not answer in time")]
    Timeout,
    /// A success status with a body we cannot read (retrying with the same key would replay it).
    #[error("unreadable answer from stripe: {detail}")]
    Decode { detail: String },
}

impl StripeError {
    /// Whether the same request (same `Idempotency-Key`) may succeed later, following the official
    /// libraries: 409, 429, ≥500 and connection problems, unless Stripe said
    /// `Stripe-Should-Retry: false` (`true` forces a retry).
    pub fn is_retryable(&self) -> bool {
        match self {
            StripeError::Api {
                status,
                should_retry,
                ..
            } => should_retry.unwrap_or(*status == 409 || *status >= 500),
            StripeError::RateLimited | StripeError::Transport { .. } | StripeError::Timeout => true,
            StripeError::Decode { .. } => false,
        }
    }

    /// A stable snake_case label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            StripeError::Api { .. } => "api",
            StripeError::RateLimited => "rate_limited",
            StripeError::Transport { sent: false, .. } => "not_sent",
            StripeError::Transport { sent: true, .. } => "transport",
            StripeError::Timeout => "timeout",
            StripeError::Decode { .. } => "decode",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Classifies a non-2xx answer from its status, `Stripe-Should-Retry` header and body.
pub(crate) fn from_response(status: u16, should_retry: Option<bool>, body: &str) -> StripeError {
    let parsed = serde_json::from_str::<Envelope>(body).ok().map(|e| e.error);
    let code = parsed.as_ref().and_then(|b| b.code.clone());
    if status == 429 || (status == 400 && code.as_deref() == Some("rate_limit")) {
        return StripeError::RateLimited;
    }
    match parsed {
        Some(b) => StripeError::Api {
            status,
            kind: b.kind.unwrap_or_else(|| "unknown".into()),
            code,
            message: b.message.unwrap_or_default(),
            should_retry,
        },
        // A proxy's HTML page or an empty body.
        None => StripeError::Api {
            status,
            kind: "unknown".into(),
            code: None,
            message: format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ),
            should_retry,
        },
    }
}

/// `Stripe-Should-Retry: true|false`.
pub(crate) fn should_retry_header(headers: &reqwest::header::HeaderMap) -> Option<bool> {
    match headers.get("stripe-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

pub(crate) fn from_reqwest(e: reqwest::Error) -> StripeError {
    if e.is_timeout() {
        StripeError::Timeout
    } else {
        StripeError::Transport {
            sent: !(e.is_connect() || e.is_builder()),
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_carry_type_code_and_message() {
        let e = from_response(
            400,
            None,
            r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#,
        );
        assert!(matches!(
            &e,
            StripeError::Api { status: 400, kind, code: None, .. } if kind == "idempotency_error"
        ));
        assert!(!e.is_retryable());
        let missing = from_response(
            404,
            None,
            r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such checkout.session: 'cs_x'","param":"session"}}"#,
        );
        assert!(matches!(
            &missing,
            StripeError::Api { code: Some(c), .. } if c == "resource_missing"
        ));
        assert!(!missing.is_retryable());
    }

    #[test]
    fn retryability_follows_the_official_libraries() {
        let api = |status, should_retry| {
            from_response(status, should_retry, r#"{"error":{"type":"api_error"}}"#)
        };
        assert!(api(500, None).is_retryable());
        assert!(api(503, None).is_retryable());
        assert!(api(409, None).is_retryable());
        assert!(!api(500, Some(false)).is_retryable());
        assert!(api(400, Some(true)).is_retryable());
        assert!(!api(401, None).is_retryable());
        assert!(!api(402, None).is_retryable());
        assert!(matches!(api(429, None), StripeError::RateLimited));
        assert!(StripeError::RateLimited.is_retryable());
        let legacy = from_response(
            400,
            None,
            r#"{"error":{"type":"invalid_request_error","code":"rate_limit"}}"#,
        );
        assert!(matches!(legacy, StripeError::RateLimited));
        assert!(StripeError::Timeout.is_retryable());
        assert!(
            StripeError::Transport {
                sent: false,
                detail: String::new()
            }
            .is_retryable()
        );
        assert!(
            !StripeError::Decode {
                detail: String::new()
            }
            .is_retryable()
        );
    }

    #[test]
    fn an_unreadable_error_body_keeps_the_status() {
        let e = from_response(502, None, "<html>Bad Gateway</html>");
        assert!(
            matches!(&e, StripeError::Api { status: 502, message, .. } if message.contains("Bad Gateway"))
        );
        assert!(e.is_retryable());
    }
}
