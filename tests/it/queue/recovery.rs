//! Crashes and restarts: kill -9 mid-job, restart under the same name, graceful shutdown.

use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;

/// Runs a worker in a child process (this test binary, in child mode) until killed.
fn spawn_child(prefix: &str, name: &str, lease: Duration) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "queue::recovery::child_worker",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("QUEUE_CHILD_PREFIX", prefix)
        .env("QUEUE_CHILD_NAME", name)
        .env("QUEUE_CHILD_LEASE_MS", lease.as_millis().to_string())
        .env("REDIS_URL", redis_url())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the worker process of the recovery tests; does nothing when run directly"]
async fn child_worker() {
    let Ok(prefix) = std::env::var("QUEUE_CHILD_PREFIX") else {
        return;
    };
    let queues = Queues::connect(&redis_url(), &prefix).await.unwrap();
    let mut config = fast_config();
    config.lease = Duration::from_millis(
        std::env::var("QUEUE_CHILD_LEASE_MS")
            .unwrap()
            .parse()
            .unwrap(),
    );
    let _worker = start_worker(
        &queues,
        &std::env::var("QUEUE_CHILD_NAME").unwrap(),
        config,
        4,
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
}

async fn child_holds_the_job(queues: &Queues) {
    wait_for(
        Duration::from_secs(30),
        "the child to take the job",
        async || {
            let s = stats(queues).await;
            s.in_flight == 1 && s.ready == 0
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // well into the job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_job_is_finished_by_another_within_the_lease() {
    let queues = queues().await;
    let lease = Duration::from_secs(2);
    queues
        .store(QUEUE)
        .enqueue(&[new_job(&TestJob {
            n: 1,
            sleep_ms: 1_000,
            ..Default::default()
        })])
        .await
        .unwrap();
    let mut child = spawn_child(queues.prefix(), "doomed", lease);
    child_holds_the_job(&queues).await;
    child.kill().unwrap(); // SIGKILL: no shutdown code runs
    child.wait().unwrap();
    let killed = Instant::now();

    let mut config = fast_config();
    config.lease = lease;
    let worker = start_worker(&queues, "rescuer", config, 4);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(15), "the rescued job", async || {
        probe.done.load(Ordering::SeqCst) == 1
    })
    .await;
    let recovered = killed.elapsed();
    worker.stop().await;
    println!("recovered {recovered:?} after kill -9 (lease {lease:?})");
    // Taken over once its lease lapsed (plus a keeper tick), then run for its 1 s.
    assert!(
        recovered < lease + lease / 3 + Duration::from_millis(1_000 + 1_500),
        "{recovered:?}"
    );
    assert_eq!(stats(&queues).await, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_the_same_name_takes_up_its_jobs_at_once() {
    let queues = queues().await;
    let lease = Duration::from_secs(60); // far longer than the test: no takeover by lease
    queues
        .store(QUEUE)
        .enqueue(&[new_job(&TestJob {
            n: 1,
            sleep_ms: 500,
            ..Default::default()
        })])
        .await
        .unwrap();
    let mut child = spawn_child(queues.prefix(), "web-1", lease);
    child_holds_the_job(&queues).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();

    let mut config = fast_config();
    config.lease = lease;
    let worker = start_worker(&queues, "web-1", config, 4);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "the job, at once", async || {
        probe.done.load(Ordering::SeqCst) == 1
    })
    .await;
    println!(
        "same-name restart finished the job {:?} after the kill",
        killed.elapsed()
    );
    worker.stop().await;
    assert_eq!(stats(&queues).await, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_running_jobs_and_returns_the_rest() {
    let queues = queues().await;
    let jobs: Vec<NewJob> = (0..6)
        .map(|n| {
            new_job(&TestJob {
                n,
                sleep_ms: 700,
                ..Default::default()
            })
        })
        .collect();
    queues.store(QUEUE).enqueue(&jobs).await.unwrap();
    let worker = start_worker(&queues, "w", fast_config(), 1);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "a job running", async || {
        probe.runs.lock().unwrap().len() == 1
    })
    .await;
    worker.stop().await;

    assert_eq!(
        probe.done.load(Ordering::SeqCst),
        1,
        "the running job finished"
    );
    let s = stats(&queues).await;
    assert_eq!(
        (s.ready, s.in_flight, s.delayed),
        (5, 0, 0),
        "the fetched-but-unstarted jobs went back"
    );
    // And another worker runs them at once.
    let next = start_worker(&queues, "w2", fast_config(), 8);
    let probe = next.probe.clone();
    wait_for(Duration::from_secs(5), "the rest", async || {
        probe.done.load(Ordering::SeqCst) == 5
    })
    .await;
    next.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_of_gone_workers_holding_nothing_are_pruned() {
    let queues = queues().await;
    let store = queues.store(QUEUE);
    store
        .enqueue(&[new_job(&TestJob {
            n: 1,
            ..Default::default()
        })])
        .await
        .unwrap();
    let worker = start_worker(&queues, "gone", fast_config(), 1);
    let probe = worker.probe.clone();
    wait_for(Duration::from_secs(5), "job", async || {
        probe.done.load(Ordering::SeqCst) == 1
    })
    .await;
    worker.stop().await;
    // A consumer still holding an entry is kept whatever its age.
    let mut conn = queues.connection();
    let _: redis::Value = redis::cmd("XGROUP")
        .arg(&["CREATECONSUMER", &store.keys.stream, "workers", "holder"])
        .query_async(&mut conn)
        .await
        .unwrap();
    store
        .enqueue(&[new_job(&TestJob {
            n: 2,
            ..Default::default()
        })])
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&[
            "GROUP",
            "workers",
            "holder",
            "COUNT",
            "1",
            "STREAMS",
            &store.keys.stream,
            ">",
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        store
            .prune_consumers(Duration::from_millis(10))
            .await
            .unwrap(),
        1,
        "only 'gone' is pruned"
    );
}
