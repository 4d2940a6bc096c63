//! Twilio Messaging (PROTOCOLS.md sections 1 and 2).

mod client;
pub mod signature;

pub use client::{
    CALLBACK_MESSAGE_PARAM, LIST_PAGES, Sender, TwilioClient, TwilioError, TwilioMessage,
};

/// Codes that mean our account or sender is misconfigured: the operator must act. (20003, our
/// credentials refused, is not a refusal of the message: `TwilioError::CredentialsRefused`.)
pub const OPERATOR_ALERT_ERRORS: &[i64] = &[21606, 21608, 21408];

/// The recipient replied STOP: record an opt-out.
pub const UNSUBSCRIBED: i64 = 21610;
