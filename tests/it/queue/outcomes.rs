//! Retry with exponential backoff, snooze without using attempts, dead letters and re-drive.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_exponentially_then_the_job_is_dead() {
    let queues = queues().await;
    queues
        .store(QUEUE)
        .enqueue(&[new_job(&TestJob {
            n: 1,
            mode: "retry".into(),
            ..Default::default()
        })])
        .await
        .unwrap();
    let worker = start_worker(&queues, "w", fast_config(), 2);
    let store = queues.store(QUEUE);
    wait_for(Duration::from_secs(20), "the dead letter", async || {
        store.stats().await.unwrap().dead == 1
    })
    .await;
    let runs = worker.probe.runs_of(1);
    worker.stop().await;

    // Five attempts (the job's cap), numbered 1..=5 as the handler saw them.
    assert_eq!(
        runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    // Base 100 ms doubling, capped at 2 s; jitter adds up to one more nominal delay.
    let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1].1 - w[0].1).collect();
    for (k, gap) in gaps.iter().enumerate() {
        let nominal = Duration::from_millis(100 * (1 << k)).min(Duration::from_secs(2));
        assert!(
            *gap >= nominal && *gap <= nominal * 2 + Duration::from_millis(300),
            "gap {k}: {gap:?} for {nominal:?}; {gaps:?}"
        );
    }
    let dead = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].error.contains("gave up after 5 attempts"),
        "{}",
        dead[0].error
    );
    assert_eq!(dead[0].job.attempt, 5);
    let s = store.stats().await.unwrap();
    assert_eq!((s.ready, s.in_flight, s.delayed), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snoozing_does_not_use_attempts() {
    let queues = queues().await;
    // Snoozed seven times with a cap of two attempts: still succeeds.
    let job = NewJob {
        max_attempts: 2,
        ..new_job(&TestJob {
            n: 1,
            mode: "snooze:7".into(),
            ..Default::default()
        })
    };
    queues.store(QUEUE).enqueue(&[job]).await.unwrap();
    let worker = start_worker(&queues, "w", fast_config(), 2);
    let probe = worker.probe.clone();
    wait_for(
        Duration::from_secs(10),
        "success after snoozes",
        async || probe.done.load(Ordering::SeqCst) == 1,
    )
    .await;
    worker.stop().await;
    let attempts: Vec<usize> = probe.runs_of(1).iter().map(|r| r.0).collect();
    assert_eq!(attempts, [1; 8]);
    assert_eq!(stats(&queues).await, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_dead_at_once_and_can_be_redriven() {
    let queues = queues().await;
    let store = queues.store(QUEUE);
    store
        .enqueue(&[new_job(&TestJob {
            n: 7,
            mode: "broken".into(),
            ..Default::default()
        })])
        .await
        .unwrap();
    let worker = start_worker(&queues, "w", fast_config(), 2);
    wait_for(Duration::from_secs(5), "dead letter", async || {
        store.stats().await.unwrap().dead == 1
    })
    .await;
    assert_eq!(
        worker.probe.runs_of(7).len(),
        1,
        "a permanent failure is not retried"
    );

    let dead = store.dead_letters(None, 10).await.unwrap().remove(0);
    assert_eq!(dead.error, "not yet");
    let inspected = store.dead_letter(&dead.entry).await.unwrap().unwrap();
    assert_eq!(inspected.job.id, dead.job.id);
    assert!(inspected.job.args.contains("broken"));

    worker.probe.fixed.store(true, Ordering::SeqCst);
    assert_eq!(
        store.redrive(&dead.entry).await.unwrap(),
        Some(dead.job.id.clone())
    );
    assert_eq!(
        store.redrive(&dead.entry).await.unwrap(),
        None,
        "a dead letter is re-driven once"
    );
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "re-driven job done", async || {
        probe.done.load(Ordering::SeqCst) == 1
    })
    .await;
    worker.stop().await;
    assert_eq!(store.stats().await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_job_is_dead_lettered_and_the_worker_goes_on() {
    let queues = queues().await;
    let store = queues.store(QUEUE);
    let bad = NewJob {
        args: "{not json".into(),
        ..new_job(&TestJob::default())
    };
    store
        .enqueue(&[
            bad,
            new_job(&TestJob {
                n: 2,
                ..Default::default()
            }),
        ])
        .await
        .unwrap();
    let worker = start_worker(&queues, "w", fast_config(), 2);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "the good job", async || {
        probe.done.load(Ordering::SeqCst) == 1
    })
    .await;
    wait_for(Duration::from_secs(5), "the bad one dead", async || {
        store.stats().await.unwrap().dead == 1
    })
    .await;
    worker.stop().await;
    let dead = store.dead_letters(None, 10).await.unwrap();
    assert!(dead[0].error.contains("undecodable"), "{}", dead[0].error);
}

/// A dead job is not live: its idempotency key no longer turns away the same work (the
/// reconciler's next enqueue of a message PostgreSQL still has `queued`). A finished job keeps
/// its key, and a re-driven dead letter takes its key back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_gives_up_its_idempotency_key_and_a_done_job_keeps_it() {
    let queues = queues().await;
    let store = queues.store(QUEUE);
    let keyed = |n: u64, mode: &str, key: &str| NewJob {
        idempotency_key: Some(key.into()),
        ..new_job(&TestJob {
            n,
            mode: mode.into(),
            ..Default::default()
        })
    };
    store
        .enqueue(&[keyed(1, "broken", "work:1"), keyed(2, "ok", "work:2")])
        .await
        .unwrap();
    let worker = start_worker(&queues, "w", fast_config(), 2);
    wait_for(Duration::from_secs(5), "one dead, one done", async || {
        let s = store.stats().await.unwrap();
        s.dead == 1 && s.ready + s.in_flight + s.delayed == 0
    })
    .await;

    // The same work enqueued again: the dead job's key is free, the done job's is not.
    let again = store
        .enqueue(&[keyed(1, "broken", "work:1"), keyed(2, "ok", "work:2")])
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|e| e.fresh).collect::<Vec<_>>(),
        [true, false]
    );
    wait_for(
        Duration::from_secs(5),
        "the second try dead too",
        async || store.stats().await.unwrap().dead == 2,
    )
    .await;
    assert_eq!(worker.probe.runs_of(2).len(), 1, "done work is not redone");

    // Re-driven, the first dead letter holds its key again: a third enqueue is turned away.
    worker.probe.fixed.store(true, Ordering::SeqCst);
    let first = store.dead_letters(None, 1).await.unwrap().remove(0);
    assert_eq!(
        store.redrive(&first.entry).await.unwrap(),
        Some(first.job.id.clone())
    );
    let third = store
        .enqueue(&[keyed(1, "broken", "work:1")])
        .await
        .unwrap();
    assert_eq!(
        third[0],
        copcca_sms::queue::Enqueued {
            id: first.job.id.clone(),
            fresh: false
        }
    );
    let probe = worker.probe.clone();
    wait_for(
        Duration::from_secs(5),
        "the re-driven job done",
        async || probe.done.load(Ordering::SeqCst) == 2,
    )
    .await;
    worker.stop().await;
}

/// One settle call for many entries: each is settled once, by the consumer that holds it. An
/// entry another consumer took over is left to its new owner, and an entry given twice in the
/// same call is settled (here: dead-lettered) only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_batch_touches_only_the_entries_its_consumer_still_holds() {
    use copcca_sms::queue::{Delivery, Settle, now_ms};

    let queues = queues().await;
    let store = queues.store(QUEUE);
    store.ensure_group().await.unwrap();
    let jobs: Vec<NewJob> = (0..4)
        .map(|n| {
            new_job(&TestJob {
                n,
                ..Default::default()
            })
        })
        .collect();
    store.enqueue(&jobs).await.unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let delivered = store.read(&mut conn, "a", 10, None, None).await.unwrap();
    assert_eq!(delivered.len(), 4);
    // Consumer b takes over every entry idle for 50 ms: all four; a takes three back.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let taken = store
        .reclaim("b", Duration::from_millis(50), 4)
        .await
        .unwrap();
    assert_eq!(taken.len(), 4);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let back = store
        .reclaim("a", Duration::from_millis(50), 3)
        .await
        .unwrap();
    assert_eq!(back.len(), 3);
    let b_holds = &delivered
        .iter()
        .find(|d| back.iter().all(|x| x.entry != d.entry))
        .unwrap()
        .entry;
    let a_holds: Vec<&Delivery> = back.iter().collect();

    let dead = Settle::Dead {
        job: a_holds[1].job.clone(),
        error: "broken".into(),
        at_ms: now_ms(),
    };
    let items = vec![
        (a_holds[0].entry.clone(), Settle::Done),
        (b_holds.clone(), Settle::Done),
        (a_holds[1].entry.clone(), dead.clone()),
        (a_holds[1].entry.clone(), dead),
        (
            a_holds[2].entry.clone(),
            Settle::Later {
                at_ms: now_ms() + 60_000,
                job: a_holds[2].job.clone(),
            },
        ),
    ];
    let settled = store.settle("a", &items).await.unwrap();
    assert_eq!(settled, vec![true, false, true, false, true]);
    let s = stats(&queues).await;
    assert_eq!(
        (s.ready, s.in_flight, s.delayed, s.dead),
        (0, 1, 1, 1),
        "b's entry still in flight, one retry scheduled, one dead letter"
    );
    // What b holds is b's to settle.
    assert_eq!(
        store
            .settle("b", &[(b_holds.clone(), Settle::Done)])
            .await
            .unwrap(),
        vec![true]
    );
    assert_eq!(stats(&queues).await.in_flight, 0);
}
