//! Job outcomes. A handler returns `Result<_, JobError>`; the queue, not the handler, decides
//! what happens next, and records it in Redis before acknowledging:
//! - `Retry`: a transient failure; runs again after an exponential backoff with jitter and a cap,
//!   using one attempt; after the kind's last attempt the job becomes a dead letter.
//! - `Snooze(d)`: not now and not a failure (rate limited, provider asked us to wait); runs again
//!   after `d` without using an attempt.
//! - `Fail`: permanent; straight to the dead letters.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The error behind a `Retry` or a `Fail`, kept whole (with its source chain) for the log line
/// and the dead letter. Shared, because the queue hands one outcome to both.
pub type Cause = Arc<dyn Error + Send + Sync>;

/// How a run of a job ended, when not in success: the handler decides which, where the error
/// arises (`?` on an error type with a `From` conversion, or [`JobResultExt`]); the queue
/// decides what follows.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    #[error("transient failure, will retry: {0}")]
    Retry(Cause),
    #[error("snoozed for {0:?}")]
    Snooze(Duration),
    #[error("permanent failure: {0}")]
    Fail(Cause),
}

impl JobError {
    /// A transient failure: `e` is an error, or a message.
    pub fn retry(e: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        JobError::Retry(Arc::from(e.into()))
    }

    /// A permanent failure: `e` is an error, or a message.
    pub fn fail(e: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        JobError::Fail(Arc::from(e.into()))
    }
}

/// Classifies an error where it arises, for an error type without its own `From` conversion
/// (or against it, when this call site knows better): `store.read().await.retry()?`.
pub trait JobResultExt<T> {
    /// An error here is transient: the job runs again after a backoff.
    fn retry(self) -> Result<T, JobError>;
    /// An error here is permanent: the job goes to the dead letters.
    fn fail(self) -> Result<T, JobError>;
}

impl<T, E: Into<Box<dyn Error + Send + Sync>>> JobResultExt<T> for Result<T, E> {
    fn retry(self) -> Result<T, JobError> {
        self.map_err(JobError::retry)
    }

    fn fail(self) -> Result<T, JobError> {
        self.map_err(JobError::fail)
    }
}

/// Attempts and backoff of one job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second run; doubles each time.
    pub base: Duration,
    /// No delay is longer.
    pub cap: Duration,
}

impl RetryPolicy {
    pub const fn new(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        RetryPolicy {
            max_attempts,
            base,
            cap,
        }
    }

    /// The wait before run `attempt + 1`, given that `attempt` runs (1-based) have failed:
    /// `base * 2^(attempt-1)` capped, with jitter (backon's exponential builder).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

/// What the queue does with a finished run.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Done,
    /// Run again at this time (ms since the epoch) with this many attempts used.
    Later {
        at_ms: u64,
        attempts_used: u32,
    },
    Dead {
        error: String,
    },
}

/// Decides the fate of a run: `attempt` is this run's number (1-based), `now_ms` the clock.
pub fn dispose(
    result: Result<(), &JobError>,
    attempt: u32,
    policy: &RetryPolicy,
    now_ms: u64,
) -> Disposition {
    match result {
        Ok(()) => Disposition::Done,
        Err(JobError::Snooze(d)) => Disposition::Later {
            at_ms: now_ms + d.as_millis() as u64,
            attempts_used: attempt.saturating_sub(1),
        },
        Err(JobError::Fail(e)) => Disposition::Dead {
            error: e.to_string(),
        },
        Err(JobError::Retry(e)) if attempt >= policy.max_attempts => Disposition::Dead {
            error: format!("gave up after {attempt} attempts: {e}"),
        },
        Err(JobError::Retry(_)) => Disposition::Later {
            at_ms: now_ms + policy.delay_after(attempt).as_millis() as u64,
            attempts_used: attempt,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy =
        RetryPolicy::new(5, Duration::from_secs(1), Duration::from_secs(10));

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        for attempt in 1..=8u32 {
            let d = POLICY.delay_after(attempt);
            let nominal = (POLICY.base * 2u32.pow(attempt - 1)).min(POLICY.cap);
            // backon's jitter adds up to one more nominal delay; the cap always holds.
            assert!(
                d >= nominal.min(POLICY.cap) && d <= POLICY.cap,
                "attempt {attempt}: {d:?} vs {nominal:?}"
            );
        }
    }

    #[test]
    fn snooze_keeps_the_attempt_and_retry_uses_one() {
        let snooze = dispose(
            Err(&JobError::Snooze(Duration::from_secs(3))),
            2,
            &POLICY,
            1_000,
        );
        assert_eq!(
            snooze,
            Disposition::Later {
                at_ms: 4_000,
                attempts_used: 1
            }
        );
        match dispose(Err(&JobError::retry("x")), 2, &POLICY, 1_000) {
            Disposition::Later {
                attempts_used: 2,
                at_ms,
            } => assert!(at_ms >= 3_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_last_attempt_and_permanent_failures_go_to_the_dead_letters() {
        assert!(matches!(
            dispose(Err(&JobError::retry("x")), 5, &POLICY, 0),
            Disposition::Dead { .. }
        ));
        assert!(matches!(
            dispose(Err(&JobError::fail("bad number")), 1, &POLICY, 0),
            Disposition::Dead { .. }
        ));
        assert_eq!(dispose(Ok(()), 1, &POLICY, 0), Disposition::Done);
    }
}
