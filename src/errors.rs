//! Error policy: which error type is used where.
//!
//! - **Capabilities** (ledger, messages, payments, providers, settings, ...) return their own
//!   `thiserror` enums, whose variants say what happened in the domain's words (`LedgerError::
//!   InsufficientCredits`, `TwilioError::Ambiguous`). A database error stays a `sqlx::Error`
//!   inside them; whether it may pass if tried again is decided by one classification,
//!   `db::transient`.
//! - **HTTP** maps every error to problem+json once, at the boundary (`http::problem`), with a
//!   stable snake_case code. Nothing below it knows about status codes.
//! - **Jobs** end in a [`JobError`] (`Retry`, `Snooze`, `Fail`), which keeps the error it came
//!   from. The conversions below classify each capability's errors once: `?` in a handler
//!   applies them. A call site that knows better says so where the error arises, with
//!   `.retry()?` or `.fail()?` ([`JobResultExt`](crate::queue::JobResultExt)).
//! - **The CLI's catch-all error** only in `cli/` and `main.rs`, where an error ends the process
//!   with a message.

use crate::ledger::LedgerError;
use crate::payments::PaymentError;
use crate::queue::JobError;

/// A database error in a handler is transient: the job runs again (within its attempts).
impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::retry(e)
    }
}

/// Only the database can change its answer; every other refusal of the ledger would recur.
impl From<LedgerError> for JobError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Database(_) => JobError::retry(e),
            _ => JobError::fail(e),
        }
    }
}

/// A provider that could not answer, or a database error, may do better later; an invalid
/// payment or a refusal will not.
impl From<PaymentError> for JobError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Database(_)
            | PaymentError::Provider {
                retryable: true, ..
            }
            | PaymentError::Ledger(LedgerError::Database(_)) => JobError::retry(e),
            _ => JobError::fail(e),
        }
    }
}
