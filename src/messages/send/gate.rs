//! The gate: a message waits for its turn (snoozes), it never fails for it.

use super::Sending;
use crate::domain::QuietHours;
use crate::messages::Message;
use crate::messages::store::SendingRules;
use crate::queue::{JobError, JobResultExt};
use crate::ratelimit::{Decision, Quota};

/// Quiet hours in the company's time zone (unless the message opted out, like a one-time
/// code), then the company's hourly quota and the account's per-second rate, both fleet-wide.
pub(super) async fn wait_for_its_turn(
    s: &Sending<'_>,
    message: &Message,
    rules: &SendingRules,
) -> Result<(), JobError> {
    if message.respect_quiet_hours {
        let tz = rules.timezone.tz();
        let now = (s.clock)();
        let quiet = QuietHours {
            tz,
            start: rules.quiet_hours_start,
            end: rules.quiet_hours_end,
        };
        if let Some(until) = quiet.hold_until(now) {
            return Err(JobError::Snooze((until - now).to_std().unwrap_or_default()));
        }
    }
    let company_key = format!("company:{}", message.company_id);
    let account_key = s.gateway.rate_key();
    let limits = [
        (
            company_key.as_str(),
            Quota::per_hour(rules.sms_per_hour as u32),
        ),
        (account_key.as_str(), s.account_rate),
    ];
    match s.limiter.check_all(&limits, 1).await.retry()? {
        Decision::Allowed => Ok(()),
        Decision::Wait(d) => Err(JobError::Snooze(d)),
    }
}
