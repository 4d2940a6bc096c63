//! The provider groups of the configuration: the central Twilio account (credentials, send
//! rate, timing) and the bank account transfers are paid into. Stripe's and M-Pesa's keys are
//! single variables, read where `Config` is built.

use std::time::Duration;

use super::vars::{Vars, bad};
use super::{ConfigError, Secret};

/// Credentials of the one central Twilio account (from the environment; settings come later).
#[derive(Debug, Clone)]
pub struct TwilioEnv {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
}

/// How the sends and callbacks of the Twilio account are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwilioTiming {
    /// `ValidityPeriod` of every send: a message Twilio could not hand on within it fails (30036)
    /// and is refunded, instead of arriving hours late.
    pub validity: Duration,
    /// After an auth token rotation, callbacks signed with the previous token are accepted this
    /// long (Twilio signs with the token in force when it sends, and does not retry).
    pub token_grace: Duration,
    /// A send that got no answer and that Twilio's list does not show is held (unconfirmed, shown
    /// to the operator) this long after its attempt began, and only then sent again. By default
    /// the validity period plus ten minutes: by then Twilio has sent it or dropped it.
    pub resend_unanswered_after: Duration,
}

/// Bank details shown to a company paying by transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BankAccount {
    pub bank: String,
    pub account_name: String,
    pub account_number: String,
}

impl TwilioEnv {
    /// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and `TWILIO_FROM`: all three or none.
    pub(super) fn read(vars: &Vars) -> Result<Option<TwilioEnv>, ConfigError> {
        let Some([sid, token, from]) = vars.all_or_none(
            ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"],
            "TWILIO_*",
        )?
        else {
            return Ok(None);
        };
        if !(sid.len() == 34 && sid.starts_with("AC")) {
            return Err(bad(
                "TWILIO_ACCOUNT_SID",
                "must be AC followed by 32 characters".into(),
            ));
        }
        Ok(Some(TwilioEnv {
            account_sid: sid,
            auth_token: Secret::new(token),
            from,
        }))
    }
}

impl TwilioTiming {
    pub(super) fn read(vars: &Vars) -> Result<TwilioTiming, ConfigError> {
        let validity = vars.secs("TWILIO_VALIDITY_PERIOD_SECS", 3600, 1..=36_000)?;
        Ok(TwilioTiming {
            validity,
            token_grace: vars.secs("TWILIO_TOKEN_GRACE_SECS", 86_400, 0..=30 * 86_400)?,
            resend_unanswered_after: vars.secs(
                "TWILIO_RESEND_UNANSWERED_AFTER_SECS",
                validity.as_secs() as u32 + 600,
                1..=7 * 86_400,
            )?,
        })
    }
}

/// `TWILIO_MAX_PER_SECOND`: the account/sender's send rate.
pub(super) fn twilio_max_per_second(vars: &Vars) -> Result<u32, ConfigError> {
    vars.number("TWILIO_MAX_PER_SECOND", "10", 1..=10_000)
}

/// `BEEM_MAX_PER_SECOND`, `AT_MAX_PER_SECOND`: the bulk routes' send rates, in message
/// segments a second, fleet-wide (neither provider publishes a cap; these keep one company's
/// batch from taking a route whole, as Twilio's does).
pub(super) fn bulk_max_per_second(vars: &Vars, name: &'static str) -> Result<u32, ConfigError> {
    vars.number(name, "50", 1..=10_000)
}

/// `BEEM_MAX_IN_FLIGHT`, `AT_MAX_IN_FLIGHT`: grouped requests in flight to a bulk route's
/// account at most, fleet-wide (each carries up to 100 recipients, so a few suffice).
pub(super) fn bulk_max_in_flight(vars: &Vars, name: &'static str) -> Result<u32, ConfigError> {
    vars.number(name, "2", 1..=100)
}

/// `TWILIO_MAX_IN_FLIGHT`: requests in flight to the Twilio account at most, fleet-wide (its
/// 20429 is about concurrent requests).
pub(super) fn twilio_max_in_flight(vars: &Vars) -> Result<u32, ConfigError> {
    vars.number("TWILIO_MAX_IN_FLIGHT", "25", 1..=1_000)
}

impl BankAccount {
    pub(super) fn read(vars: &Vars) -> BankAccount {
        BankAccount {
            bank: vars.or("BANK_NAME", "CRDB Bank (demo)"),
            account_name: vars.or("BANK_ACCOUNT_NAME", "COPCCA Ltd"),
            account_number: vars.or("BANK_ACCOUNT_NUMBER", "0150000000000"),
        }
    }
}
