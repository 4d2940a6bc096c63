//! Fleet-wide rate limits and fleet-once cron.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use copcca_sms::queue::cron;
use copcca_sms::ratelimit::{Decision, Quota, RateLimiter};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_two_independent_limiters() {
    // Two limiters with their own connections and local state, as two worker processes have:
    // only Redis is shared.
    let a = queues().await;
    let b = Queues::connect(&redis_url(), a.prefix()).await.unwrap();
    let quota = Quota {
        count: 10,
        period: Duration::from_secs(1),
        burst: 2,
    };
    let allowed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run = Duration::from_millis(2_000);
    let mut tasks = Vec::new();
    for q in [a, b] {
        let (limiter, allowed) = (
            RateLimiter::new(q.connection(), q.prefix()),
            allowed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < run {
                match limiter.check("company:acme", quota, 1).await.unwrap() {
                    Decision::Allowed => {
                        allowed.fetch_add(1, Ordering::SeqCst);
                    }
                    Decision::Wait(d) => {
                        tokio::time::sleep(d.min(run.saturating_sub(started.elapsed()))).await
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 10 per second for 2 s plus the burst of 2: at most 22, whatever the two do together.
    let n = allowed.load(Ordering::SeqCst);
    println!("two limiters together were allowed {n} in {run:?} (quota 10/s, burst 2)");
    assert!((18..=22).contains(&n), "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_charges_its_cost_and_says_how_long_to_wait() {
    let q = queues().await;
    let limiter = RateLimiter::new(q.connection(), q.prefix());
    let quota = Quota::per_hour(100);
    assert_eq!(
        limiter.check("company:c", quota, 60).await.unwrap(),
        Decision::Allowed
    );
    assert_eq!(
        limiter.check("company:c", quota, 40).await.unwrap(),
        Decision::Allowed
    );
    match limiter.check("company:c", quota, 1).await.unwrap() {
        Decision::Wait(d) => assert!(
            d > Duration::from_secs(30) && d <= Duration::from_secs(36),
            "{d:?}"
        ),
        other => panic!("{other:?}"),
    }
    // Another key has its own budget.
    assert_eq!(
        limiter.check("company:d", quota, 1).await.unwrap(),
        Decision::Allowed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_once_per_tick_with_two_schedulers() {
    let a = queues().await;
    let b = Queues::connect(&redis_url(), a.prefix()).await.unwrap();
    let run = Duration::from_millis(3_500);
    let mut tasks = Vec::new();
    for q in [a.clone(), b] {
        tasks.push(tokio::spawn(async move {
            let make = |_tick| copcca_jobs::SweepOverdueDebts {
                company_id: None,
                run: None,
            };
            cron::run(&q, "sweep", "* * * * * *", make, tokio::time::sleep(run))
                .await
                .unwrap()
        }));
    }
    let mut fired = 0;
    for t in tasks {
        fired += t.await.unwrap();
    }
    let queued = a
        .store(<copcca_jobs::SweepOverdueDebts as copcca_jobs::Job>::QUEUE)
        .stats()
        .await
        .unwrap()
        .ready;
    println!("two schedulers over {run:?}: {fired} ticks fired, {queued} jobs queued");
    assert!((3..=4).contains(&queued), "{queued}");
    assert_eq!(
        fired, queued,
        "each tick enqueued once across both schedulers"
    );
}

/// The handler of the rate-limited child workers: one send per permit, fleet-wide; a refused job
/// snoozes. Each run that got through is recorded in Redis as `<worker>:<ms>`.
async fn limited(
    _job: TestJob,
    ctx: apalis::prelude::Data<Arc<(RateLimiter, redis::aio::ConnectionManager, String, String)>>,
) -> Result<(), JobError> {
    let (limiter, conn, log, name) = &**ctx;
    let quota = Quota {
        count: 10,
        period: Duration::from_secs(1),
        burst: 2,
    };
    match limiter
        .check("company:acme", quota, 1)
        .await
        .map_err(JobError::retry)?
    {
        Decision::Wait(d) => Err(JobError::Snooze(d)),
        Decision::Allowed => {
            let _: i64 = redis::cmd("RPUSH")
                .arg(log)
                .arg(format!("{name}:{}", copcca_sms::queue::now_ms()))
                .query_async(&mut conn.clone())
                .await
                .map_err(JobError::retry)?;
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of the rate-limit test; does nothing when run directly"]
async fn child_limited_worker() {
    let Ok(prefix) = std::env::var("QUEUE_LIMIT_PREFIX") else {
        return;
    };
    let name = std::env::var("QUEUE_LIMIT_NAME").unwrap();
    let queues = Queues::connect(&redis_url(), &prefix).await.unwrap();
    let ctx = Arc::new((
        RateLimiter::new(queues.connection(), &prefix),
        queues.connection(),
        format!("{prefix}:ran"),
        name.clone(),
    ));
    let backend = queues.backend::<TestJob>(QUEUE, fast_config(), 5);
    Monitor::new()
        .register(move |_| {
            WorkerBuilder::new(name.clone())
                .backend(backend.clone())
                .data(ctx.clone())
                .concurrency(8)
                .build(limited)
        })
        .run()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_two_worker_processes() {
    let queues = queues().await;
    let jobs: Vec<NewJob> = (0..200)
        .map(|n| {
            new_job(&TestJob {
                n,
                ..Default::default()
            })
        })
        .collect();
    queues.store(QUEUE).enqueue(&jobs).await.unwrap();
    let spawn = |name: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "queue::limits::child_limited_worker",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env("QUEUE_LIMIT_PREFIX", queues.prefix())
            .env("QUEUE_LIMIT_NAME", name)
            .env("REDIS_URL", redis_url())
            .spawn()
            .unwrap()
    };
    let mut children = [spawn("limited-a"), spawn("limited-b")];
    tokio::time::sleep(Duration::from_secs(4)).await;
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let runs: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{}:ran", queues.prefix()))
        .arg(0)
        .arg(-1)
        .query_async(&mut queues.connection())
        .await
        .unwrap();
    let times: Vec<u64> = runs
        .iter()
        .map(|r| r.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let span = (times.iter().max().unwrap() - times.iter().min().unwrap()) as f64 / 1000.0;
    let allowed = (2.0 + 10.0 * span).floor() as usize;
    println!(
        "two worker processes ran {} jobs over {span:.2} s (quota 10/s, burst 2: at most {allowed})",
        runs.len()
    );
    assert!(runs.len() <= allowed + 1, "{} runs in {span} s", runs.len());
    assert!(runs.len() >= 15, "the workers barely ran: {}", runs.len());
    for name in ["limited-a", "limited-b"] {
        assert!(
            runs.iter().any(|r| r.starts_with(name)),
            "{name} never got a permit"
        );
    }
}
