//! Logging: human-readable by default, JSON lines with `LOG_FORMAT=json`; level from `RUST_LOG`.

use std::borrow::Cow;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::domain::{MessageId, PaymentId};

/// The filter when `RUST_LOG` is unset, for the long-running processes.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// `default_filter` applies when `RUST_LOG` is unset (the demo keeps its terminal quiet).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: tests and the demo may initialise more than once.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What a request or a job is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Message(MessageId),
    Batch(uuid::Uuid),
    Payment(PaymentId),
}

/// Records `subject` on the current span: the `http` span of a request (which then links the
/// caller's request id to what it created) or the `job` span of a job (whose every line, its
/// outcome too, then names it). Both spans declare the fields; elsewhere this does nothing.
pub fn record_subject(subject: Subject) {
    let span = tracing::Span::current();
    match subject {
        Subject::Message(id) => span.record("message_id", tracing::field::display(id)),
        Subject::Batch(id) => span.record("batch_id", tracing::field::display(id)),
        Subject::Payment(id) => span.record("payment_id", tracing::field::display(id)),
    };
}

/// Paths whose segment after the prefix is a credential: the M-Pesa and Vodacom callback tokens
/// (an unsigned callback is believed for the payment whose URL it came to) and the unsigned
/// routes' report tokens (a report is believed for the route whose URL it came to).
const SECRET_PATHS: [&str; 4] = [
    "/webhooks/mpesa/",
    "/webhooks/vodacom/",
    "/webhooks/beem/",
    "/webhooks/africastalking/",
];

/// A request path as it may be logged: the credential in it, if any, replaced by `***`.
pub fn redacted_path(path: &str) -> Cow<'_, str> {
    for prefix in SECRET_PATHS {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return Cow::Owned(format!("{prefix}***{tail}"));
        }
    }
    Cow::Borrowed(path)
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn callback_and_report_tokens_are_not_in_a_logged_path() {
        assert_eq!(
            redacted_path("/webhooks/mpesa/Zm9vYmFy-token_0123"),
            "/webhooks/mpesa/***"
        );
        assert_eq!(
            redacted_path("/webhooks/mpesa/tok/extra"),
            "/webhooks/mpesa/***/extra"
        );
        assert_eq!(redacted_path("/webhooks/mpesa/"), "/webhooks/mpesa/");
        for route in ["vodacom", "beem", "africastalking"] {
            assert_eq!(
                redacted_path(&format!("/webhooks/{route}/0123abcd")),
                format!("/webhooks/{route}/***")
            );
        }
        assert_eq!(
            redacted_path("/webhooks/twilio/status"),
            "/webhooks/twilio/status"
        );
        assert_eq!(redacted_path("/v1/messages/abc"), "/v1/messages/abc");
    }
}
