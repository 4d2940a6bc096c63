//! The queue against the real Redis. Every test uses its own key prefix (no FLUSHDB), so tests
//! run in parallel. Workers run in-process under apalis' Monitor, or as a child process (this
//! test binary re-executed in "child" mode) when a test needs to kill -9 one.

mod delivery;
mod limits;
mod outcomes;
mod pacing;
mod recovery;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use copcca_sms::queue::{ConsumerConfig, JobError, NewJob, QueueStats, Queues, RetryPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub const QUEUE: &str = "test";

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Queues under a prefix of this test's own.
pub async fn queues() -> Queues {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    Queues::connect(&redis_url(), &prefix).await.unwrap()
}

/// What a test job does when run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestJob {
    pub n: u64,
    #[serde(default)]
    pub sleep_ms: u64,
    /// `ok`, `retry`, `fail`, or `snooze:N` (snooze N times, then succeed).
    #[serde(default)]
    pub mode: String,
}

pub fn new_job(job: &TestJob) -> NewJob {
    NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        args: serde_json::to_string(job).unwrap(),
        max_attempts: 5,
        idempotency_key: None,
        run_at_ms: None,
    }
}

/// Records what ran: per job number, the attempt numbers and times seen by the handler.
#[derive(Default)]
pub struct Probe {
    pub runs: Mutex<HashMap<u64, Vec<(usize, Instant)>>>,
    pub done: std::sync::atomic::AtomicU64,
    /// Jobs in mode `broken` fail permanently until this is set.
    pub fixed: std::sync::atomic::AtomicBool,
}

impl Probe {
    pub fn runs_of(&self, n: u64) -> Vec<(usize, Instant)> {
        self.runs
            .lock()
            .unwrap()
            .get(&n)
            .cloned()
            .unwrap_or_default()
    }
}

pub async fn handler(
    job: TestJob,
    attempt: Attempt,
    probe: Data<Arc<Probe>>,
) -> Result<(), JobError> {
    let runs = {
        let mut runs = probe.runs.lock().unwrap();
        let list = runs.entry(job.n).or_default();
        list.push((attempt.current(), Instant::now()));
        list.len()
    };
    if job.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
    }
    let result = match job.mode.as_str() {
        "retry" => Err(JobError::retry("provider answered 503")),
        "fail" => Err(JobError::fail("invalid number")),
        "broken" if !probe.fixed.load(std::sync::atomic::Ordering::SeqCst) => {
            Err(JobError::fail("not yet"))
        }
        m if m.starts_with("snooze:") => {
            let times: usize = m[7..].parse().unwrap();
            if runs <= times {
                Err(JobError::Snooze(Duration::from_millis(50)))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    };
    if result.is_ok() {
        probe.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    result
}

pub fn fast_config() -> ConsumerConfig {
    let mut c = ConsumerConfig::new(RetryPolicy::new(
        5,
        Duration::from_millis(100),
        Duration::from_secs(2),
    ));
    c.lease = Duration::from_secs(5);
    c
}

/// A worker running in this process until `stop()`.
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
    pub probe: Arc<Probe>,
}

impl RunningWorker {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("worker stops")
            .unwrap();
    }
}

pub fn start_worker(
    queues: &Queues,
    name: &str,
    config: ConsumerConfig,
    concurrency: usize,
) -> RunningWorker {
    start_worker_with(
        queues,
        name,
        config,
        concurrency,
        Arc::new(Probe::default()),
    )
}

pub fn start_worker_with(
    queues: &Queues,
    name: &str,
    config: ConsumerConfig,
    concurrency: usize,
    probe: Arc<Probe>,
) -> RunningWorker {
    let backend = queues.backend::<TestJob>(QUEUE, config, 5);
    let (stop, stopped) = oneshot::channel::<()>();
    let (name, p) = (name.to_string(), probe.clone());
    let handle = tokio::spawn(async move {
        Monitor::new()
            .register(move |_| {
                WorkerBuilder::new(name.clone())
                    .backend(backend.clone())
                    .data(p.clone())
                    .concurrency(concurrency)
                    .build(handler)
            })
            .shutdown_timeout(Duration::from_secs(15))
            .run_with_signal(async move {
                let _ = stopped.await;
                Ok(())
            })
            .await
            .unwrap();
    });
    RunningWorker {
        stop: Some(stop),
        handle,
        probe,
    }
}

/// Waits until `check` holds, up to `limit`; panics with `what` otherwise.
pub async fn wait_for(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

pub async fn stats(queues: &Queues) -> QueueStats {
    queues.store(QUEUE).stats().await.unwrap()
}
