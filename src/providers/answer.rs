//! What any SMS route answered about one message, in the send flow's terms: each provider's
//! errors are classified here once (Twilio's codes, the bulk providers' per-recipient answers),
//! and `messages::send` acts on the class, never on a provider's code.

use std::time::Duration;

use rust_decimal::Decimal;

use super::bulk::{BulkError, FailureClass, RecipientAnswer};
use super::twilio::{OPERATOR_ALERT_ERRORS, TwilioError, TwilioMessage, UNSUBSCRIBED};

/// The provider took the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// Its id at the provider (a Twilio SID, Beem's `<request_id>:<our id>`, AT's messageId).
    pub provider_id: String,
    /// The segments the provider counted, when it says.
    pub segments: Option<u32>,
    /// What the provider charged the platform, when it says (a positive amount).
    pub price: Option<Decimal>,
    pub price_currency: Option<String>,
}

/// Why a send did not end with the message taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The provider refused this message for good: release its credits and fail it.
    #[error("refused {code}: {text}")]
    Refused {
        code: String,
        text: String,
        /// The recipient has unsubscribed (record an opt-out).
        opted_out: bool,
        /// Our account or sender is at fault, not the message: the operator must act.
        operator_alert: bool,
    },
    /// The provider refused our credentials: nothing was sent; pause the account.
    #[error("credentials refused: {0}")]
    CredentialsRefused(String),
    /// The provider refused our account's configuration for every message (sender id, balance,
    /// routing): nothing was sent; the route is down until an operator acts, and the message
    /// may take the next route.
    #[error("account or sender refused: {0}")]
    Misconfigured(String),
    /// Too many requests: nothing was sent; come back after `retry_after`.
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    /// The provider failed the request without taking the message (5xx): try again later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The request never reached the provider: safe to send again.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached the provider and no usable answer came: it may have the
    /// message, so it is never sent again until that is known. `provider_id` when the answer
    /// named the message without saying it was taken.
    #[error("no usable answer: {reason}")]
    Ambiguous {
        reason: String,
        provider_id: Option<String>,
    },
}

impl SendError {
    pub fn ambiguous(reason: impl Into<String>) -> Self {
        SendError::Ambiguous {
            reason: reason.into(),
            provider_id: None,
        }
    }

    /// The outcome's name in metrics (`copcca_route_sends_total{outcome}`).
    pub fn label(&self) -> &'static str {
        match self {
            SendError::Refused { .. } => "refused",
            SendError::CredentialsRefused(_) => "credentials",
            SendError::Misconfigured(_) => "misconfigured",
            SendError::RateLimited { .. } => "rate_limited",
            SendError::Unavailable(_) => "unavailable",
            SendError::NotSent(_) => "not_sent",
            SendError::Ambiguous { .. } => "ambiguous",
        }
    }

    /// What the failure says about the route itself, for its circuit.
    pub fn route_health(&self) -> RouteHealth {
        match self {
            // The provider answered about the message: the route works.
            SendError::Refused {
                operator_alert: false,
                ..
            } => RouteHealth::Answered,
            SendError::Refused {
                operator_alert: true,
                ..
            }
            | SendError::CredentialsRefused(_)
            | SendError::Misconfigured(_) => RouteHealth::Misconfigured,
            // Our own pacing's business, not the route's health.
            SendError::RateLimited { .. } => RouteHealth::Unknown,
            // The provider answered, naming the message, without saying whether it took it
            // (Beem counting a group's recipients): the route works.
            SendError::Ambiguous {
                provider_id: Some(_),
                ..
            } => RouteHealth::Answered,
            SendError::Unavailable(_)
            | SendError::NotSent(_)
            | SendError::Ambiguous {
                provider_id: None, ..
            } => RouteHealth::Failing,
        }
    }
}

/// A send's outcome as its route's circuit counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteHealth {
    Answered,
    Failing,
    Misconfigured,
    Unknown,
}

impl From<&TwilioMessage> for Sent {
    fn from(m: &TwilioMessage) -> Self {
        Sent {
            provider_id: m.sid.clone(),
            segments: m.num_segments,
            price: m.price.map(|p| p.abs()),
            price_currency: m.price_unit.clone(),
        }
    }
}

impl From<TwilioError> for SendError {
    fn from(e: TwilioError) -> Self {
        match e {
            TwilioError::Refused { code, message, .. } => SendError::Refused {
                code: code.to_string(),
                text: message,
                opted_out: code == UNSUBSCRIBED,
                operator_alert: OPERATOR_ALERT_ERRORS.contains(&code),
            },
            TwilioError::CredentialsRefused { code, message, .. } => {
                SendError::CredentialsRefused(format!("{code} {message}"))
            }
            TwilioError::RateLimited { retry_after } => SendError::RateLimited { retry_after },
            e @ TwilioError::Server { .. } => SendError::Unavailable(e.to_string()),
            TwilioError::NotSent(reason) => SendError::NotSent(reason),
            TwilioError::Ambiguous(reason) => SendError::ambiguous(reason),
        }
    }
}

impl From<BulkError> for SendError {
    fn from(e: BulkError) -> Self {
        match e {
            // Our request was wrong, not the message or the route: the operator must look.
            BulkError::Invalid(reason) => SendError::Refused {
                code: "invalid_request".into(),
                text: reason,
                opted_out: false,
                operator_alert: true,
            },
            BulkError::NotSent(reason) => SendError::NotSent(reason),
            BulkError::Unavailable {
                status: 429,
                retry_after,
            } => SendError::RateLimited { retry_after },
            e @ BulkError::Unavailable { .. } => SendError::Unavailable(e.to_string()),
            e @ BulkError::Credentials { .. } => SendError::CredentialsRefused(e.to_string()),
            BulkError::Configuration { reason } => SendError::Misconfigured(reason),
            // The whole request refused with a code the provider does not publish (PROTOCOLS.md:
            // terminal): the messages fail, and since a request-level refusal is about our
            // account or sender rather than a number, the operator is told and the route closed.
            BulkError::Refused { code, reason } => SendError::Refused {
                code,
                text: reason,
                opted_out: false,
                operator_alert: true,
            },
            BulkError::Ambiguous(reason) => SendError::ambiguous(reason),
        }
    }
}

/// One recipient's answer within a bulk request.
pub fn from_recipient(answer: RecipientAnswer) -> Result<Sent, SendError> {
    match answer {
        RecipientAnswer::Accepted {
            provider_id,
            segments,
            cost,
        } => Ok(Sent {
            provider_id,
            segments,
            price: cost.as_ref().map(|c| c.amount.abs()),
            price_currency: cost.map(|c| c.currency),
        }),
        RecipientAnswer::Failed {
            class: FailureClass::Permanent,
            code,
            reason,
        } => Err(SendError::Refused {
            code,
            text: reason,
            opted_out: false,
            operator_alert: false,
        }),
        RecipientAnswer::Failed {
            class: FailureClass::Transient,
            code,
            reason,
        } => Err(SendError::Unavailable(format!("{code}: {reason}"))),
        RecipientAnswer::Failed {
            class: FailureClass::Configuration,
            code,
            reason,
        } => Err(SendError::Misconfigured(format!("{code}: {reason}"))),
        RecipientAnswer::UnknownUntilReport { provider_id } => Err(SendError::Ambiguous {
            reason: "the provider did not say whether it took this recipient".into(),
            provider_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_codes_are_classified_once() {
        let refused = |code| TwilioError::Refused {
            status: 400,
            code,
            message: "m".into(),
        };
        assert!(matches!(
            SendError::from(refused(UNSUBSCRIBED)),
            SendError::Refused {
                opted_out: true,
                operator_alert: false,
                ..
            }
        ));
        assert_eq!(
            SendError::from(refused(21606)).route_health(),
            RouteHealth::Misconfigured
        );
        assert_eq!(
            SendError::from(refused(21211)).route_health(),
            RouteHealth::Answered
        );
        assert_eq!(
            SendError::from(TwilioError::Server { status: 503 }).route_health(),
            RouteHealth::Failing
        );
        assert_eq!(
            SendError::from(TwilioError::RateLimited { retry_after: None }).route_health(),
            RouteHealth::Unknown
        );
    }

    #[test]
    fn bulk_answers_keep_their_class() {
        assert!(matches!(
            SendError::from(BulkError::Unavailable {
                status: 429,
                retry_after: None
            }),
            SendError::RateLimited { .. }
        ));
        assert!(matches!(
            SendError::from(BulkError::Unavailable {
                status: 502,
                retry_after: None
            }),
            SendError::Unavailable(_)
        ));
        let unknown = from_recipient(RecipientAnswer::UnknownUntilReport {
            provider_id: Some("9:m".into()),
        });
        assert_eq!(
            unknown.clone().unwrap_err().route_health(),
            RouteHealth::Answered,
            "the provider answered"
        );
        assert_eq!(
            SendError::ambiguous("timeout").route_health(),
            RouteHealth::Failing
        );
        assert_eq!(
            SendError::from(BulkError::Refused {
                code: "111".into(),
                reason: "Invalid Sender Id".into()
            })
            .route_health(),
            RouteHealth::Misconfigured
        );
        assert!(matches!(
            unknown,
            Err(SendError::Ambiguous { provider_id: Some(ref id), .. }) if id == "9:m"
        ));
        let config = from_recipient(RecipientAnswer::Failed {
            class: FailureClass::Configuration,
            code: "405".into(),
            reason: "InsufficientBalance".into(),
        });
        assert_eq!(
            config.unwrap_err().route_health(),
            RouteHealth::Misconfigured
        );
    }
}
