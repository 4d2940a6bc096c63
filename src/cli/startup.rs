//! Starting while PostgreSQL or Redis is still coming up (a host rebooting, a database failover,
//! a container started before its database): the first connections and the settings load are
//! tried again for `STARTUP_WAIT_SECS`, then the process exits 1 as before, for its supervisor
//! to restart. Any other error (a wrong password, a missing schema) ends it at once.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::http::StateError;
use crate::settings::SettingsError;

const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Runs `step` until it succeeds, fails for another reason than an unreachable PostgreSQL or
/// Redis, or `wait` has passed.
pub async fn when_reachable<T, F, Fut>(what: &str, wait: Duration, step: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match step().await {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(attempt, "{what}: reachable now");
                }
                return Ok(v);
            }
            Err(e) if unreachable(&e) && started.elapsed() + pause <= wait => {
                tracing::warn!(error = %e, attempt, ?pause, "{what}: not reachable yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` says PostgreSQL or Redis cannot be reached now (down, restarting, refusing
/// connections), rather than that something is wrong with what we asked.
fn unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let database = cause.downcast_ref::<sqlx::Error>().or_else(|| {
            match cause.downcast_ref::<SettingsError>().or(
                match cause.downcast_ref::<StateError>() {
                    Some(StateError::Settings(s)) => Some(s),
                    _ => None,
                },
            ) {
                Some(SettingsError::Database(e)) => Some(e),
                _ => None,
            }
        });
        let redis = cause.downcast_ref::<redis::RedisError>().or(
            match cause.downcast_ref::<StateError>() {
                Some(StateError::Redis(e)) => Some(e),
                _ => None,
            },
        );
        database.is_some_and(crate::db::transient)
            || redis.is_some_and(|e| {
                e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.is_timeout()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_or_redis_is_waited_for_and_nothing_else() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(unreachable(&anyhow::Error::from(refused)));
        let in_settings = SettingsError::Database(sqlx::Error::PoolTimedOut);
        assert!(unreachable(&anyhow::Error::from(StateError::Settings(
            in_settings
        ))));
        let redis_down =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(unreachable(&anyhow::Error::from(redis_down)));

        assert!(!unreachable(&anyhow::Error::from(SettingsError::NoKey)));
        assert!(!unreachable(&anyhow::Error::from(sqlx::Error::RowNotFound)));
        assert!(!unreachable(&anyhow::anyhow!("a wrong password")));
    }
}
