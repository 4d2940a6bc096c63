//! Throughput at backlog sizes that broke apalis-redis 1.0.0, instant pickup, idempotency.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use copcca_sms::queue::now_ms;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_due_jobs_are_processed_without_error() {
    // apalis-redis 1.0.0 failed every fetch once ~8,000 jobs were due at once.
    let queues = queues().await;
    let store = queues.store(QUEUE);
    let due_soon = now_ms() + 300;
    let jobs: Vec<NewJob> = (0..20_000)
        .map(|n| NewJob {
            run_at_ms: (n % 2 == 0).then_some(due_soon),
            ..new_job(&TestJob {
                n,
                ..Default::default()
            })
        })
        .collect();
    store.enqueue(&jobs).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // 10,000 delayed jobs now due at once
    let worker = start_worker(&queues, "w", fast_config(), 64);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(120), "20,000 jobs done", async || {
        probe.done.load(Ordering::SeqCst) == 20_000
    })
    .await;
    worker.stop().await;
    assert_eq!(stats(&queues).await, Default::default());
    assert!(
        (0..20_000).all(|n| probe.runs_of(n).len() == 1),
        "a job ran twice or never"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_job_backlog_drains_at_a_steady_rate() {
    let queues = queues().await;
    let jobs: Vec<NewJob> = (0..100_000)
        .map(|n| {
            new_job(&TestJob {
                n,
                ..Default::default()
            })
        })
        .collect();
    queues.store(QUEUE).enqueue(&jobs).await.unwrap();
    assert_eq!(stats(&queues).await.ready, 100_000);

    let worker = start_worker(&queues, "w", fast_config(), 64);
    let probe = worker.probe.clone();
    let started = Instant::now();
    wait_for(Duration::from_secs(60), "first 10,000", async || {
        probe.done.load(Ordering::SeqCst) >= 10_000
    })
    .await;
    let first = started.elapsed();
    wait_for(Duration::from_secs(300), "all 100,000", async || {
        probe.done.load(Ordering::SeqCst) == 100_000
    })
    .await;
    let all = started.elapsed();
    worker.stop().await;
    // The cost per job does not grow with the backlog: the whole drain takes about ten times
    // the first tenth (apalis-redis 1.0.0's per-job LREM made it quadratic).
    println!("backlog drain: first 10k in {first:?}, 100k in {all:?}");
    assert!(all < first * 25, "first 10k in {first:?}, all in {all:?}");
    assert_eq!(stats(&queues).await, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_picks_up_a_push_from_another_process_at_once() {
    let queues = queues().await;
    let worker = start_worker(&queues, "w", fast_config(), 4);
    tokio::time::sleep(Duration::from_millis(300)).await; // idle, blocked in XREADGROUP

    let mut latencies = Vec::new();
    for n in 0..5 {
        // The push comes from another process: redis-cli, knowing nothing of this one.
        let pushed = Instant::now();
        let args = serde_json::to_string(&TestJob {
            n,
            ..Default::default()
        })
        .unwrap();
        let out = std::process::Command::new("redis-cli")
            .args([
                "-u",
                &redis_url(),
                "XADD",
                &queues.store(QUEUE).keys.stream,
                "*",
                "id",
                &format!("cli-{n}"),
            ])
            .args([
                "args", &args, "attempt", "0", "max", "5", "idem", "", "enq", "0",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let probe = worker.probe.clone();
        wait_for(Duration::from_secs(1), "pickup", async || {
            !probe.runs_of(n).is_empty()
        })
        .await;
        latencies.push(worker.probe.runs_of(n)[0].1 - pushed);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("idle pickup latencies: {latencies:?}");
    assert!(
        latencies.iter().all(|l| *l < Duration::from_millis(500)),
        "{latencies:?}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_enqueued_twice_runs_once() {
    let queues = queues().await;
    let store = queues.store(QUEUE);
    let keyed = |n| NewJob {
        idempotency_key: Some("send_sms:42".into()),
        ..new_job(&TestJob {
            n,
            ..Default::default()
        })
    };
    let first = store.enqueue(&[keyed(1)]).await.unwrap().remove(0);
    let second = store.enqueue(&[keyed(2), keyed(3)]).await.unwrap();
    assert!(first.fresh);
    assert!(
        second.iter().all(|e| !e.fresh && e.id == first.id),
        "{second:?}"
    );

    let worker = start_worker(&queues, "w", fast_config(), 4);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "job 1", async || {
        probe.done.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    assert_eq!(
        (
            probe.runs_of(1).len(),
            probe.runs_of(2).len(),
            probe.runs_of(3).len()
        ),
        (1, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_producers_and_the_task_sink_enqueue_the_same_way() {
    use apalis::prelude::TaskSink;
    let queues = queues().await;
    let mut backend = queues.backend::<TestJob>(QUEUE, fast_config(), 5);
    backend
        .push(TestJob {
            n: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    backend
        .push_bulk(vec![
            TestJob {
                n: 2,
                ..Default::default()
            },
            TestJob {
                n: 3,
                ..Default::default()
            },
        ])
        .await
        .unwrap();
    let task = apalis_core::task::builder::TaskBuilder::new(TestJob {
        n: 4,
        ..Default::default()
    })
    .run_after(Duration::from_secs(1))
    .idempotency_key("four")
    .build();
    backend.push_task(task).await.unwrap();
    let s = stats(&queues).await;
    assert_eq!((s.ready, s.delayed), (3, 1));

    let worker = start_worker(&queues, "w", fast_config(), 4);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "four jobs", async || {
        probe.done.load(Ordering::SeqCst) == 4
    })
    .await;
    worker.stop().await;
}

/// A worker with nothing due looks for due delayed jobs about once a second (`promote_every`),
/// not in a loop: each look is a Redis script call, on every queue of every worker. (After one
/// snooze the promoter used to spin: 12,748 looks in these 3.2 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_looks_for_due_jobs_about_once_a_second() {
    let queues = queues().await;
    let series = format!("copcca_queue_promote_scans_total{{queue=\"{QUEUE}\"}}");
    let before = crate::support::process_counter(&series);
    let worker = start_worker(&queues, "w", fast_config(), 4);
    // A job snoozed once: its settlement rings the promoter's bell for an early look.
    let job = new_job(&TestJob {
        n: 1,
        mode: "snooze:1".into(),
        ..Default::default()
    });
    queues.store(QUEUE).enqueue(&[job]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(
        worker.probe.runs_of(1).len(),
        2,
        "the snoozed job ran again"
    );
    let scans = crate::support::process_counter(&series) - before;
    worker.stop().await;
    // One at start, then one per second: 4, with slack for timer jitter.
    assert!((2..=6).contains(&scans), "{scans} promote scans in 3.2 s");
}
