//! Africa's Talking (East Africa) bulk SMS (PROTOCOLS.md section 9): `apiKey` header and
//! `username` in the form, many comma-separated numbers per request, and an answer naming every
//! recipient with its own statusCode and cost. No idempotency key: an unanswered send is settled
//! by the delivery reports, never by sending again.

mod client;
mod report;

pub use client::{AfricasTalkingClient, MAX_RECIPIENTS, Recipients, SmsAnswer, classify};
pub use report::{AtReport, ReportError, parse_report};
