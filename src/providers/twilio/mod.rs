//! Twilio Messaging (PROTOCOLS.md sections 1 and 2).

mod client;
pub mod signature;

pub use client::{Sender, TwilioClient, TwilioError, TwilioMessage};

/// Twilio error codes that mean the message will never go out as it is (PROTOCOLS.md section 1).
pub const PERMANENT_ERRORS: &[i64] = &[
    20003, 21211, 21408, 21606, 21608, 21610, 21612, 21614, 21617, 21635,
];

/// Codes that mean our account or sender is misconfigured: the operator must act.
pub const OPERATOR_ALERT_ERRORS: &[i64] = &[20003, 21606, 21608, 21408];

/// The recipient replied STOP: record an opt-out.
pub const UNSUBSCRIBED: i64 = 21610;
