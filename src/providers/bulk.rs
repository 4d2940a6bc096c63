//! What a gateway that takes many recipients in one request answers, in terms that do not
//! depend on the provider: per recipient (accepted, failed and why, or not said), for the
//! request as a whole (classified once, here), the price of a message, and a delivery report.
//! Beem and Africa's Talking both speak through these (PROTOCOLS.md section 9).

use std::time::Duration;

use rust_decimal::Decimal;

use crate::domain::{E164, MessageId};

/// One message of a bulk request: our id and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub message: MessageId,
    pub to: E164,
}

/// What a refusal of one recipient means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The recipient cannot get this message (invalid number, blacklisted, do-not-disturb):
    /// final; release the credits.
    Permanent,
    /// The provider could not take it now: retry later with backoff.
    Transient,
    /// Our account or sender is wrong (no balance, sender id not registered, risk hold): pause
    /// the sender and alert the operator; the message itself is not at fault.
    Configuration,
}

/// The provider's answer about one recipient of an answered request.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientAnswer {
    /// Taken for delivery (not delivered: that is the delivery report's to say).
    /// `provider_id` is what the delivery report will name the message by.
    Accepted {
        provider_id: String,
        segments: Option<u32>,
        cost: Option<Price>,
    },
    /// Refused by the provider.
    Failed {
        class: FailureClass,
        code: String,
        reason: String,
    },
    /// The provider answered the request without saying what became of this recipient (Beem
    /// counts `valid` / `invalid` without naming them): it may be on its way. Only the delivery
    /// report (or a pull) settles it; never resend it, never release it on a guess.
    /// `provider_id` is what a report would name it by, when the request got one.
    UnknownUntilReport { provider_id: Option<String> },
}

/// Why a whole request failed, classified once, where the answer is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// Refused here, before anything was sent (too many recipients, one number twice): fix the
    /// batch; nothing left the machine.
    #[error("not a valid request: {0}")]
    Invalid(String),
    /// The request never reached the provider (connection refused, DNS): safe to retry.
    #[error("could not reach the provider: {0}")]
    NotSent(String),
    /// 5xx or 429: nothing was created; retry after `retry_after` when given.
    #[error("the provider is unavailable (HTTP {status})")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Our credentials were refused (HTTP 401 / 403): pause the sender, alert the operator.
    #[error("the provider refused our credentials (HTTP {status}): {reason}")]
    Credentials { status: u16, reason: String },
    /// Our account or sender is wrong for every recipient: pause and alert.
    #[error("the provider refused our account or sender: {reason}")]
    Configuration { reason: String },
    /// The provider refused the request for a reason we do not know to be transient: terminal.
    #[error("the provider refused the request {code}: {reason}")]
    Refused { code: String, reason: String },
    /// Sent, but no usable answer came (timeout, broken or unreadable body): the messages may
    /// have gone. Settle by delivery report or pull; never resend.
    #[error("no usable answer from the provider: {0}")]
    Ambiguous(String),
}

impl BulkError {
    /// The `status` label of `crate::metrics::provider_call`.
    pub fn label(&self) -> &'static str {
        match self {
            BulkError::Invalid(_) => "invalid",
            BulkError::NotSent(_) => "not_sent",
            BulkError::Unavailable { .. } => "unavailable",
            BulkError::Credentials { .. } => "credentials_refused",
            BulkError::Configuration { .. } => "configuration",
            BulkError::Refused { .. } => "refused",
            BulkError::Ambiguous(_) => "ambiguous",
        }
    }

    /// Whether the messages may have left (then only a report may settle them).
    pub fn may_have_sent(&self) -> bool {
        matches!(self, BulkError::Ambiguous(_))
    }
}

/// A price as the aggregators write it: `"KES 0.8000"`, `"TZS 22.0000"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub amount: Decimal,
    pub currency: String,
}

impl Price {
    /// `"<ISO 4217> <decimal>"`; `None` for anything else, such as the bare `"0"` Africa's
    /// Talking writes for a refused recipient.
    pub fn parse(s: &str) -> Option<Price> {
        let (currency, amount) = s.trim().split_once(' ')?;
        let currency_ok = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
        let amount: Decimal = amount.trim().parse().ok()?;
        currency_ok.then(|| Price {
            amount,
            currency: currency.to_string(),
        })
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.currency, self.amount)
    }
}

/// Where a message stands according to a delivery report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    Delivered,
    Failed { reason: String },
    Pending,
}

/// One delivery report, read from the provider's push or pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// As in [`RecipientAnswer::Accepted`]'s `provider_id`.
    pub provider_id: String,
    /// The number as the provider wrote it, with a `+` put in front of bare digits.
    pub to: Option<String>,
    pub state: DeliveryState,
    /// No later report will change this one.
    pub is_final: bool,
}

impl DeliveryReport {
    /// The inbox's dedupe key: the same report, pushed twice or pushed and pulled, is stored
    /// once.
    pub fn inbox_key(&self) -> String {
        format!("{}:{:?}", self.provider_id, self.state)
    }
}

/// A number as a provider writes it (`255754123456` or `+255754123456`) in `+` form.
pub(crate) fn plus_form(number: &str) -> String {
    let n = number.trim();
    if n.starts_with('+') {
        n.to_string()
    } else {
        format!("+{n}")
    }
}

/// Refuses a batch that is empty, too large, or names a number twice (a provider would
/// collapse or mix up the duplicates).
pub(crate) fn check_batch(recipients: &[Recipient], max: usize) -> Result<(), BulkError> {
    if recipients.is_empty() {
        return Err(BulkError::Invalid("no recipients".into()));
    }
    if recipients.len() > max {
        return Err(BulkError::Invalid(format!(
            "{} recipients, at most {max} per request",
            recipients.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for r in recipients {
        if !seen.insert(r.to.as_str()) {
            return Err(BulkError::Invalid(format!(
                "{} appears twice in one request",
                r.to
            )));
        }
    }
    Ok(())
}

/// A transport error: before sending (connect) it is `NotSent`; after, `Ambiguous`.
pub(crate) fn transport_error(e: reqwest::Error) -> BulkError {
    if e.is_connect() || e.is_builder() {
        BulkError::NotSent(e.to_string())
    } else {
        BulkError::Ambiguous(e.to_string())
    }
}

/// The classes every provider shares: 401 / 403 credentials, 429 / 5xx unavailable, except 502
/// and 504: a gateway in front of the provider may have passed the request on before it failed,
/// and with no idempotency key a retry could send it twice, so those are ambiguous.
pub(crate) fn http_class(
    status: u16,
    retry_after: Option<Duration>,
    text: &str,
) -> Option<BulkError> {
    match status {
        401 | 403 => Some(BulkError::Credentials {
            status,
            reason: text.chars().take(200).collect(),
        }),
        502 | 504 => Some(BulkError::Ambiguous(format!(
            "HTTP {status} from a gateway: the request may have been passed on"
        ))),
        429 | 500..=599 => Some(BulkError::Unavailable {
            status,
            retry_after,
        }),
        _ => None,
    }
}

/// `Retry-After` in seconds, when given.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Runs one API call and records its latency and outcome.
pub(crate) async fn timed<T>(
    provider: &str,
    operation: &str,
    call: impl std::future::Future<Output = Result<T, BulkError>>,
) -> Result<T, BulkError> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = result.as_ref().map_or_else(|e| e.label(), |_| "ok");
    crate::metrics::provider_call(provider, operation, status, started.elapsed());
    result
}

use hmac::Mac;

/// The label a route's delivery-report token is derived under.
const REPORT_TOKEN_LABEL: &[u8] = b"copcca-sms delivery reports";

/// The secret last segment of a route's delivery-report URL (the providers do not sign their
/// reports): HMAC-SHA256 under the route's secret, in hex. It reveals nothing of the secret and
/// changes when the secret is rotated.
pub fn report_token(secret: &str) -> String {
    hex::encode(report_mac(secret).finalize().into_bytes())
}

/// Whether `given` is the route's token, compared in constant time.
pub fn report_token_matches(secret: &str, given: &str) -> bool {
    hex::decode(given).is_ok_and(|tag| report_mac(secret).verify_slice(&tag).is_ok())
}

fn report_mac(secret: &str) -> hmac::Hmac<sha2::Sha256> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(REPORT_TOKEN_LABEL);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_error_may_have_passed_the_request_on() {
        for status in [502, 504] {
            assert!(matches!(
                http_class(status, None, ""),
                Some(BulkError::Ambiguous(_))
            ));
        }
        for status in [500, 503, 429] {
            assert!(matches!(
                http_class(status, None, ""),
                Some(BulkError::Unavailable { .. })
            ));
        }
    }

    #[test]
    fn a_report_token_matches_only_its_own_secret() {
        let token = report_token("secret-a");
        assert_eq!(token.len(), 64);
        assert!(report_token_matches("secret-a", &token));
        assert!(!report_token_matches("secret-b", &token));
        assert!(!report_token_matches("secret-a", &token[..62]));
        assert!(!report_token_matches("secret-a", "not hex"));
    }

    #[test]
    fn bulk_prices_parse_only_with_a_currency() {
        assert_eq!(
            Price::parse("KES 0.8000"),
            Some(Price {
                amount: Decimal::new(8, 1),
                currency: "KES".into()
            })
        );
        let tzs = Price::parse("TZS 22.0000").unwrap();
        assert_eq!(
            (tzs.amount, tzs.currency.as_str()),
            (Decimal::new(22, 0), "TZS")
        );
        assert_eq!(Price::parse("0"), None);
        assert_eq!(Price::parse("KES abc"), None);
        assert_eq!(Price::parse("kes 1"), None);
    }

    #[test]
    fn bulk_batches_refuse_duplicates_and_oversize() {
        let r = |n: &str| Recipient {
            message: MessageId::new(),
            to: E164::try_from(n.to_string()).unwrap(),
        };
        assert!(check_batch(&[r("+255754123456"), r("+255754123457")], 2).is_ok());
        assert!(matches!(
            check_batch(&[r("+255754123456"), r("+255754123456")], 5),
            Err(BulkError::Invalid(_))
        ));
        assert!(matches!(
            check_batch(&[r("+255754123456"), r("+255754123457")], 1),
            Err(BulkError::Invalid(_))
        ));
        assert!(matches!(check_batch(&[], 1), Err(BulkError::Invalid(_))));
    }
}
