//! Daraja failures, classified once here so callers only ask: give up, retry, or reconcile.
//!
//! * permanent ([`DarajaError::is_permanent`]): Daraja refused this request and will refuse it
//!   again (400.002.02 and other 4xx, a non-"0" ResponseCode, a push that could not lock the
//!   subscriber). No prompt reached the phone; the payment fails.
//! * transient ([`DarajaError::is_transient`]): nothing happened yet (spike arrest, quota, other
//!   5xx, connection refused, no token): retry with backoff.
//! * [`DarajaError::Ambiguous`]: a push was sent and no usable answer came. The phone may be
//!   showing the prompt: never push again; reconcile with the STK Query instead.

use serde::Deserialize;

/// Daraja's synchronous error body `{"requestId","errorCode","errorMessage"}` and its HTTP status
/// (or, for a 200 whose `ResponseCode` is not "0", that code and its description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarajaFault {
    pub http_status: u16,
    pub error_code: String,
    pub error_message: String,
    pub request_id: String,
}

impl std::fmt::Display for DarajaFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} {}: {}",
            self.http_status, self.error_code, self.error_message
        )?;
        if !self.request_id.is_empty() {
            write!(f, " (requestId {})", self.request_id)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DarajaError {
    /// Daraja refused the request; it will refuse it again. No prompt was sent.
    #[error("daraja refused the request: {0}")]
    Refused(DarajaFault),
    /// Daraja could not take the request now (500.003.02 spike arrest, 500.003.03 quota, other
    /// 5xx). Nothing was done: retry with backoff.
    #[error("daraja is unavailable: {0}")]
    Unavailable(DarajaFault),
    /// We would not send this request (amount below 1, a phone number that is not digits, an
    /// empty reference): a bug or bad input, not worth retrying.
    #[error("invalid daraja request: {0}")]
    Invalid(String),
    /// No access token: the OAuth endpoint failed or refused our credentials, or Daraja rejected
    /// a freshly issued token. Retry with backoff; persistent failures need the operator.
    #[error("no daraja access token: {0}")]
    Token(String),
    /// The request never left (connection refused, DNS, TLS): safe to retry.
    #[error("could not reach daraja: {0}")]
    NotSent(String),
    /// A query was sent and no usable answer came. Queries change nothing: retry.
    #[error("no answer from daraja to a query: {0}")]
    Unanswered(String),
    /// A push was sent and no usable answer came (timeout, broken connection, garbled body,
    /// gateway error). The customer may have the prompt: NEVER push again; query instead.
    #[error("no answer from daraja to a push, its outcome is unknown: {0}")]
    Ambiguous(String),
}

impl DarajaError {
    /// Give up: the payment attempt fails and retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DarajaError::Refused(_) | DarajaError::Invalid(_))
    }

    /// Nothing happened at Daraja: the same request may be sent again, with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DarajaError::Unavailable(_)
                | DarajaError::Token(_)
                | DarajaError::NotSent(_)
                | DarajaError::Unanswered(_)
        )
    }

    /// The push may have reached the phone: reconcile by query, never re-push.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, DarajaError::Ambiguous(_))
    }

    /// Daraja's own error details, when it answered with them.
    pub fn fault(&self) -> Option<&DarajaFault> {
        match self {
            DarajaError::Refused(f) | DarajaError::Unavailable(f) => Some(f),
            _ => None,
        }
    }
}

/// The request a call answers, which decides what an unclear answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Push,
    Query,
}

pub(super) const INVALID_ACCESS_TOKEN: &str = "404.001.03";
/// On a push: "Unable to lock subscriber, a transaction is already in process", or wrong
/// credentials / unknown merchant. On a query: "The transaction is being processed".
pub(super) const LOCKED_OR_PROCESSING: &str = "500.001.1001";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    request_id: Option<String>,
    error_code: String,
    #[serde(default)]
    error_message: Option<String>,
}

/// Daraja's error body in `text`, if it is one.
pub(super) fn fault_of(status: u16, text: &str) -> Option<DarajaFault> {
    let body: ErrorBody = serde_json::from_str(text).ok()?;
    Some(DarajaFault {
        http_status: status,
        error_code: body.error_code,
        error_message: body.error_message.unwrap_or_default(),
        request_id: body.request_id.unwrap_or_default(),
    })
}

/// Classifies a non-2xx answer to `call`.
pub(super) fn classify(call: Call, status: u16, text: &str) -> DarajaError {
    let Some(fault) = fault_of(status, text) else {
        // Not Daraja's error body: a gateway or proxy answered.
        let excerpt: String = text.chars().take(200).collect();
        // A 502/504 may come after the backend took the push.
        if call == Call::Push && matches!(status, 502 | 504) {
            return DarajaError::Ambiguous(format!("HTTP {status}: {excerpt}"));
        }
        let fault = DarajaFault {
            http_status: status,
            error_code: String::new(),
            error_message: excerpt,
            request_id: String::new(),
        };
        return if status >= 500 || status == 408 || status == 429 {
            DarajaError::Unavailable(fault)
        } else {
            DarajaError::Refused(fault)
        };
    };
    if fault.error_code == INVALID_ACCESS_TOKEN {
        // Only reached when a freshly fetched token was refused too.
        return DarajaError::Token(fault.to_string());
    }
    if call == Call::Push && fault.error_code == LOCKED_OR_PROCESSING {
        // Another M-Pesa session holds the subscriber (or our shortcode/credentials are wrong):
        // no prompt was sent for this push, and the same push will not get through; the customer
        // may start a new purchase once the other session ends.
        return DarajaError::Refused(fault);
    }
    if status >= 500 || status == 408 || status == 429 {
        DarajaError::Unavailable(fault)
    } else {
        DarajaError::Refused(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> String {
        format!(
            r#"{{"requestId":"6e86-45dd-91ac-fd5d4178ab523408729","errorCode":"{code}","errorMessage":"{message}"}}"#
        )
    }

    #[test]
    fn a_bad_request_is_permanent_and_keeps_the_details() {
        let e = classify(
            Call::Push,
            400,
            &body("400.002.02", "Bad Request - Invalid PhoneNumber"),
        );
        assert!(e.is_permanent() && !e.is_transient() && !e.is_ambiguous());
        let fault = e.fault().unwrap();
        assert_eq!(fault.error_code, "400.002.02");
        assert_eq!(fault.error_message, "Bad Request - Invalid PhoneNumber");
        assert_eq!(fault.request_id, "6e86-45dd-91ac-fd5d4178ab523408729");
        assert!(e.to_string().contains("Invalid PhoneNumber"));
    }

    #[test]
    fn spike_arrest_quota_and_other_server_errors_are_transient() {
        for (status, code) in [
            (500, "500.003.02"),
            (500, "500.003.03"),
            (503, "503.001.01"),
        ] {
            let e = classify(Call::Push, status, &body(code, "System is busy"));
            assert!(e.is_transient() && !e.is_permanent(), "{code}");
        }
        assert!(classify(Call::Query, 503, "<html>busy</html>").is_transient());
        assert!(classify(Call::Query, 429, "").is_transient());
    }

    #[test]
    fn a_locked_subscriber_fails_the_push() {
        let e = classify(
            Call::Push,
            500,
            &body(
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process for the current subscriber",
            ),
        );
        assert!(e.is_permanent());
    }

    #[test]
    fn a_refused_fresh_token_is_a_token_failure() {
        let e = classify(
            Call::Query,
            404,
            &body("404.001.03", "Invalid Access Token"),
        );
        assert!(matches!(e, DarajaError::Token(_)) && e.is_transient());
    }

    #[test]
    fn a_gateway_error_without_daraja_body_leaves_a_push_ambiguous() {
        assert!(classify(Call::Push, 504, "<html>Gateway Timeout</html>").is_ambiguous());
        assert!(classify(Call::Push, 502, "").is_ambiguous());
        assert!(classify(Call::Query, 504, "").is_transient());
        assert!(classify(Call::Push, 503, "").is_transient());
        assert!(classify(Call::Push, 401, "no").is_permanent());
    }
}
