//! The gate: a message waits for its turn (snoozes), it never fails for it.

use std::time::Duration;

use super::Sending;
use crate::domain::QuietHours;
use crate::messages::Message;
use crate::messages::store::SendingRules;
use crate::queue::{JobError, JobResultExt};
use crate::ratelimit::{Decision, Quota};

/// How soon a send held back by a credentials pause tries again.
pub(super) const PAUSED_RETRY: Duration = Duration::from_secs(10);

/// Not while the provider refuses our credentials (`providers::pause`); then quiet hours in
/// the company's time zone (unless the message opted out, like a one-time code), then the
/// company's hourly quota and the account's per-second rate, both fleet-wide.
pub(super) async fn wait_for_its_turn(
    s: &Sending<'_>,
    message: &Message,
    rules: &SendingRules,
) -> Result<(), JobError> {
    while_credentials_refused(s).await?;
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
    let company_key = super::quota::key(message.company_id);
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

/// Snoozes while sending through this account is paused for these very credentials. One run of
/// the fleet per `pause::PROBE_EVERY` checks them with the provider, and lifts the pause when
/// they work again.
async fn while_credentials_refused(s: &Sending<'_>) -> Result<(), JobError> {
    let (Some(account), Some(credentials)) = (s.gateway.account(), s.gateway.credentials()) else {
        return Ok(());
    };
    if s.pauses
        .holding(account, credentials)
        .await
        .retry()?
        .is_none()
    {
        return Ok(());
    }
    if s.pauses.take_probe(account).await.retry()? {
        match s.gateway.check_credentials().await {
            Ok(()) => {
                s.pauses.lift(account, credentials).await.retry()?;
                tracing::warn!(%account, "Twilio accepts our credentials again: sending resumes");
                return Ok(());
            }
            Err(e) => tracing::warn!(%account, error = %e, "Twilio still refuses our credentials"),
        }
    }
    Err(JobError::Snooze(PAUSED_RETRY))
}
