//! Queue depth samples for the status page (run by `schedule`). Redis knows only how deep each
//! queue is now; once a minute this records every queue's figures in `queue_samples`, keyed by
//! the minute (a second scheduler or a restart overwrites, never doubles), and drops samples
//! older than [`KEEP`]. A minute with no scheduler running has no sample: the chart shows a gap
//! rather than a made-up zero.

use std::time::Duration;

use sqlx::PgPool;

use super::reconcile::PassError;
use crate::queue::Queues;

/// How long samples are kept.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);

/// Records the current depth of every queue under the current minute and prunes old samples;
/// the number of queues sampled.
pub async fn sample_once(pool: &PgPool, queues: &Queues) -> Result<usize, PassError> {
    let stats = queues.stats().await?;
    let n = stats.len();
    let (mut names, mut ready, mut in_flight, mut delayed, mut dead) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (queue, s) in stats {
        names.push(queue.to_string());
        ready.push(count(s.ready));
        in_flight.push(count(s.in_flight));
        delayed.push(count(s.delayed));
        dead.push(count(s.dead));
    }
    sqlx::query(
        "INSERT INTO queue_samples (taken_at, queue, ready, in_flight, delayed, dead)
         SELECT date_trunc('minute', now()), q.* FROM
             UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS q
         ON CONFLICT (taken_at, queue) DO UPDATE SET
             ready = EXCLUDED.ready, in_flight = EXCLUDED.in_flight,
             delayed = EXCLUDED.delayed, dead = EXCLUDED.dead",
    )
    .bind(&names)
    .bind(&ready)
    .bind(&in_flight)
    .bind(&delayed)
    .bind(&dead)
    .execute(pool)
    .await?;
    prune(pool, KEEP).await?;
    Ok(n)
}

/// Deletes samples older than `keep`; how many went.
pub async fn prune(pool: &PgPool, keep: Duration) -> sqlx::Result<u64> {
    let done =
        sqlx::query("DELETE FROM queue_samples WHERE taken_at < now() - make_interval(secs => $1)")
            .bind(keep.as_secs_f64())
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Samples every `every` until `shutdown`; a failed pass (Redis or PostgreSQL down) is logged
/// and leaves a gap in the chart.
pub async fn run(
    pool: PgPool,
    queues: Queues,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = sample_once(&pool, &queues).await {
            tracing::warn!(error = %e, "queue sample failed");
        }
    }
}
