//! M-Pesa in Tanzania through Vodacom's OpenAPI (market `vodacomTZN`, PROTOCOLS.md sections 5
//! and 8): a session opened with the API key, every call authorised by the session id, both
//! RSA-encrypted with the portal's public key; the C2B single-stage payment (which holds until
//! the customer enters the PIN or the prompt times out); the transaction status query, which is
//! what a payment is credited on; and the unsigned asynchronous result, only ever a hint.

mod answers;
mod bearer;
mod client;
mod codes;
mod error;
mod result;
mod session;

pub use answers::{C2bAccepted, QueryAnswer, TxnStatus};
pub use bearer::{BearerKey, KeyError};
pub use client::{C2bPayment, REFERENCE_MAX, VodacomClient};
pub use codes::{InsClass, classify_code};
pub use error::{InsFault, VodacomError};
pub use result::{AsyncResult, result_ack};
pub use session::SessionStore;

/// The production host; `/openapi/ipg/v2/{market}/` under it.
pub const DEFAULT_API_BASE: &str = "https://openapi.m-pesa.com";
/// Tanzania.
pub const DEFAULT_MARKET: &str = "vodacomTZN";
