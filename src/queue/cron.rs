//! Periodic jobs that fire once per tick across the whole fleet, however many schedulers run:
//! every scheduler turns a tick of its apalis-cron schedule into an enqueue with the
//! idempotency key `cron:<name>:<tick seconds>`, and the enqueue script keeps only the first.

use std::future::Future;
use std::str::FromStr;

use apalis_cron::CronScheduler;
use copcca_jobs::Job;
use futures::StreamExt;

use super::{Enqueued, NewJob, QueueError, Queues};

/// Enqueues `make(tick)` on each tick of `schedule` (cron syntax with seconds first) until
/// `stop` completes. Returns how many ticks this scheduler fired first (the others were
/// deduplicated against another scheduler).
pub async fn run<J: Job>(
    queues: &Queues,
    name: &str,
    schedule: &str,
    make: impl Fn(u64) -> J,
    stop: impl Future<Output = ()>,
) -> Result<u64, QueueError> {
    let schedule =
        cron::Schedule::from_str(schedule).map_err(|e| QueueError::Schedule(e.to_string()))?;
    let mut fired = 0;
    tokio::pin!(stop);
    'outer: loop {
        // apalis-cron yields the same error forever once a tick is missed: rebuild the stream.
        let ticks = CronScheduler::new(schedule.clone()).into_stream();
        tokio::pin!(ticks);
        loop {
            let tick = tokio::select! {
                _ = &mut stop => break 'outer,
                tick = ticks.next() => tick,
            };
            match tick {
                Some(Ok(tick)) => {
                    if fire(queues, name, tick.get_timestamp(), &make).await?.fresh {
                        fired += 1;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(cron = name, error = %e, "cron stream error; restarting it");
                    continue 'outer;
                }
                None => break 'outer,
            }
        }
    }
    Ok(fired)
}

/// Enqueues the job of one tick, once per fleet.
pub async fn fire<J: Job>(
    queues: &Queues,
    name: &str,
    tick_secs: u64,
    make: impl Fn(u64) -> J,
) -> Result<Enqueued, QueueError> {
    let job = make(tick_secs);
    let new = NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        args: serde_json::to_string(&job)?,
        max_attempts: J::MAX_ATTEMPTS,
        idempotency_key: Some(format!("cron:{name}:{tick_secs}")),
        run_at_ms: None,
    };
    Ok(queues.store(J::QUEUE).enqueue(&[new]).await?.remove(0))
}
