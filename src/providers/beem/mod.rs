//! Beem (Tanzania) bulk SMS (PROTOCOLS.md section 9): one request carries up to 100 numbers,
//! Basic auth with the API key and secret, JSON both ways. Its answer counts valid and invalid
//! recipients without naming them, and it has no idempotency key: an unanswered send is settled
//! by delivery reports (pushed unsigned, or pulled), never by sending again.

mod client;
mod report;

pub use client::{BeemClient, MAX_RECIPIENTS, SUBMITTED, SendAnswer};
pub use report::{
    BeemReport, ReportError, acknowledgement, as_push, parse_report, provider_id, state_of,
};
