//! The engine behind one worker's backend: four tasks around a bounded channel.
//! - The **fetcher** reads new entries (XREADGROUP BLOCK, so an idle worker sees a push at
//!   once), never more than the channel has room for: the backlog stays in Redis, not in the
//!   worker.
//! - The **promoter** moves delayed jobs into the stream when they fall due (in bounded chunks),
//!   waking exactly then for the retries and snoozes this worker scheduled, and looking at least
//!   once a second for the rest; the XADD wakes whichever worker is blocked reading.
//! - The **keeper** renews the lease of every entry this consumer holds, and takes over entries
//!   whose consumer stopped renewing them (it died), dead-lettering a job delivered too often.
//! - The **settler** records outcomes in batches: done, later (retry or snooze, with the run
//!   time in Redis) or dead. It retries Redis errors and never drops an outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::outcome::{Disposition, JobError, RetryPolicy, dispose};
use super::store::{Delivery, JobRecord, QueueStore, Settle, now_ms};

/// How a worker consumes its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Entries read per XREADGROUP.
    pub batch: usize,
    /// Entries held in the worker, fetched but not yet started.
    pub prefetch: usize,
    /// Longest wait of one blocking read (also bounds how long shutdown waits for the fetcher).
    pub block: Duration,
    /// How often the promoter looks for due delayed jobs it was not told about.
    pub promote_every: Duration,
    /// An entry not renewed for this long is taken over by another consumer.
    pub lease: Duration,
    pub retry: RetryPolicy,
    /// Delay promotions move at most this many jobs per script call.
    pub promote_chunk: usize,
}

impl ConsumerConfig {
    pub fn new(retry: RetryPolicy) -> Self {
        ConsumerConfig {
            batch: 100,
            prefetch: 200,
            block: Duration::from_secs(1),
            promote_every: Duration::from_secs(1),
            lease: Duration::from_secs(20),
            retry,
            promote_chunk: 1_000,
        }
    }
}

/// The outcome of one run, as the worker's ack layer reports it.
#[derive(Debug)]
pub enum Ack {
    Finished {
        entry: String,
        attempt: u32,
        result: Result<(), JobError>,
    },
    /// Answered once every outcome sent before it has been recorded in Redis.
    Flush(oneshot::Sender<()>),
}

type InFlight = Arc<Mutex<HashMap<String, JobRecord>>>;

/// The earliest time (ms) a delayed job is known to fall due, and a bell to ring when it moves
/// earlier.
#[derive(Default)]
struct NextDue {
    at_ms: AtomicU64,
    bell: Notify,
}

impl NextDue {
    fn earlier(&self, at_ms: u64) {
        if self.at_ms.fetch_min(at_ms, Ordering::SeqCst) > at_ms {
            self.bell.notify_one();
        }
    }
}

pub struct Consumer {
    pub deliveries: mpsc::Receiver<Delivery>,
    acks: mpsc::UnboundedSender<Ack>,
    store: QueueStore,
    name: String,
    stop: watch::Sender<bool>,
    fetcher: Option<JoinHandle<()>>,
    keeper: JoinHandle<()>,
    promoter: JoinHandle<()>,
    settler: JoinHandle<()>,
    in_flight: InFlight,
}

impl Consumer {
    /// Creates the group if needed and starts the three tasks for consumer `name`.
    pub async fn start(
        store: QueueStore,
        client: &redis::Client,
        name: &str,
        config: ConsumerConfig,
        acks: (mpsc::UnboundedSender<Ack>, mpsc::UnboundedReceiver<Ack>),
    ) -> redis::RedisResult<Self> {
        store.ensure_group().await?;
        // A blocked read holds its connection, so the fetcher has one of its own, whose response
        // timeout outlasts the block.
        let conn = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new()
                    .set_response_timeout(Some(config.block + Duration::from_secs(10))),
            )
            .await?;
        let (tx, rx) = mpsc::channel(config.prefetch.max(1));
        let (stop, stopped) = watch::channel(false);
        let in_flight: InFlight = Arc::default();
        let next_due = Arc::new(NextDue::default());
        let fetcher = tokio::spawn(fetch(
            store.clone(),
            conn,
            name.to_string(),
            config,
            tx.clone(),
            in_flight.clone(),
            stopped.clone(),
        ));
        let keeper = tokio::spawn(keep(
            store.clone(),
            name.to_string(),
            config,
            tx,
            acks.0.clone(),
            in_flight.clone(),
            stopped.clone(),
        ));
        let promoter = tokio::spawn(promote(store.clone(), config, next_due.clone(), stopped));
        let settler = tokio::spawn(settle(
            store.clone(),
            name.to_string(),
            config.retry,
            acks.1,
            in_flight.clone(),
            next_due,
        ));
        Ok(Consumer {
            deliveries: rx,
            acks: acks.0,
            store,
            name: name.to_string(),
            stop,
            fetcher: Some(fetcher),
            keeper,
            promoter,
            settler,
            in_flight,
        })
    }

    /// Reports the outcome of an entry that could not even be started (e.g. undecodable).
    pub fn reject(&self, entry: String, attempt: u32, error: String) {
        let _ = self.acks.send(Ack::Finished {
            entry,
            attempt,
            result: Err(JobError::fail(error)),
        });
    }

    /// Graceful stop: no more fetching; entries fetched but not started go back to the stream
    /// at once; every outcome already reported is recorded before this returns.
    pub async fn close(mut self) -> redis::RedisResult<()> {
        let _ = self.stop.send(true);
        if let Some(f) = self.fetcher.take() {
            let _ = f.await;
        }
        self.keeper.abort();
        self.promoter.abort();
        self.deliveries.close();
        let mut unstarted = Vec::new();
        while let Ok(d) = self.deliveries.try_recv() {
            unstarted.push(d.entry);
        }
        let returned = self.store.give_back(&self.name, &unstarted).await?;
        {
            let mut held = self.in_flight.lock().expect("lock");
            for e in &unstarted {
                held.remove(e);
            }
        }
        tracing::info!(queue = %self.store.name, consumer = %self.name, returned, "consumer closing");
        let (done, flushed) = oneshot::channel();
        let _ = self.acks.send(Ack::Flush(done));
        let _ = flushed.await;
        self.settler.abort();
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.keeper.abort();
        self.promoter.abort();
    }
}

async fn fetch(
    store: QueueStore,
    mut conn: redis::aio::MultiplexedConnection,
    me: String,
    config: ConsumerConfig,
    tx: mpsc::Sender<Delivery>,
    in_flight: InFlight,
    stopped: watch::Receiver<bool>,
) {
    let mut pending_after = Some("0".to_string());
    let mut failures = 0u32;
    while !*stopped.borrow() {
        // Wait for room: never hold more than `prefetch` unstarted entries.
        let room = match tx.reserve().await {
            Ok(permit) => {
                drop(permit);
                tx.capacity().clamp(1, config.batch)
            }
            Err(_) => return,
        };
        let read = store
            .read(
                &mut conn,
                &me,
                room,
                Some(config.block),
                pending_after.as_deref(),
            )
            .await;
        match read {
            Ok(batch) => {
                failures = 0;
                if let Some(after) = &mut pending_after {
                    // Own pending entries first (restart under the same name), then new ones.
                    match batch.last() {
                        Some(last) => *after = last.entry.clone(),
                        None => pending_after = None,
                    }
                }
                for d in batch {
                    in_flight
                        .lock()
                        .expect("lock")
                        .insert(d.entry.clone(), d.job.clone());
                    if tx.send(d).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    // Redis lost the stream (flush, failover): recreate and go on.
                    let _ = store.ensure_group().await;
                } else {
                    failures += 1;
                    tracing::warn!(queue = %store.name, error = %e, "read failed");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(30))))
                        .await;
                }
            }
        }
    }
}

async fn promote(
    store: QueueStore,
    config: ConsumerConfig,
    next_due: Arc<NextDue>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let now = now_ms();
        if next_due.at_ms.load(Ordering::SeqCst) <= now {
            // Take the mark before promoting, so a retry scheduled meanwhile is not forgotten.
            next_due.at_ms.store(u64::MAX, Ordering::SeqCst);
            crate::metrics::queue_promote_scan(&store.name);
            match store.promote(config.promote_chunk).await {
                Ok((moved, _)) if moved as usize == config.promote_chunk => next_due.earlier(0),
                Ok((_, next)) => next_due.earlier(next.unwrap_or(u64::MAX)),
                Err(e) => {
                    tracing::warn!(queue = %store.name, error = %e, "promote failed");
                    next_due.earlier(now + 1_000);
                }
            }
        }
        let due = next_due.at_ms.load(Ordering::SeqCst);
        let wait = Duration::from_millis(due.saturating_sub(now_ms())).min(config.promote_every);
        let slept_through = tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = next_due.bell.notified() => false,
            _ = stopped.changed() => return,
        };
        if slept_through && wait == config.promote_every {
            // The periodic look: mark it due without ringing the bell. Ringing it here after
            // being woken early by it left a permit nobody was waiting for, which cut the next
            // sleep short, and so on: after one snoozed job the promoter ran its script
            // thousands of times a second.
            next_due.at_ms.fetch_min(now_ms(), Ordering::SeqCst);
        }
    }
}

async fn keep(
    store: QueueStore,
    me: String,
    config: ConsumerConfig,
    tx: mpsc::Sender<Delivery>,
    acks: mpsc::UnboundedSender<Ack>,
    in_flight: InFlight,
    mut stopped: watch::Receiver<bool>,
) {
    let every = (config.lease / 3).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(every);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        ticks += 1;
        if ticks % 1_000 == 1 {
            // Names of workers gone for an hour, holding nothing, are forgotten.
            let idle = (config.lease * 10).max(Duration::from_secs(3600));
            if let Err(e) = store.prune_consumers(idle).await {
                tracing::warn!(queue = %store.name, error = %e, "pruning consumers failed");
            }
        }
        let held: Vec<String> = in_flight.lock().expect("lock").keys().cloned().collect();
        if let Err(e) = store.extend(&me, &held).await {
            tracing::warn!(queue = %store.name, error = %e, "lease renewal failed");
        }
        if tx.capacity() == 0 {
            continue;
        }
        match store
            .reclaim(&me, config.lease, tx.capacity().min(config.batch))
            .await
        {
            Ok(taken) => {
                for d in taken {
                    tracing::info!(queue = %store.name, job = %d.job.id, deliveries = d.deliveries, "took over an abandoned job");
                    in_flight
                        .lock()
                        .expect("lock")
                        .insert(d.entry.clone(), d.job.clone());
                    // A job that keeps killing its workers is dead-lettered rather than run forever.
                    if d.deliveries > u64::from(config.retry.max_attempts) + 1 {
                        let error = format!(
                            "abandoned by {} workers without finishing",
                            d.deliveries - 1
                        );
                        let _ = acks.send(Ack::Finished {
                            entry: d.entry,
                            attempt: u32::MAX,
                            result: Err(JobError::fail(error)),
                        });
                    } else if tx.send(d).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!(queue = %store.name, error = %e, "reclaim failed"),
        }
    }
}

async fn settle(
    store: QueueStore,
    me: String,
    retry: RetryPolicy,
    mut acks: mpsc::UnboundedReceiver<Ack>,
    in_flight: InFlight,
    next_due: Arc<NextDue>,
) {
    let mut buf = Vec::with_capacity(512);
    while acks.recv_many(&mut buf, 512).await > 0 {
        let mut items = Vec::new();
        let mut flushes = Vec::new();
        let now = now_ms();
        for ack in buf.drain(..) {
            match ack {
                Ack::Flush(done) => flushes.push(done),
                Ack::Finished {
                    entry,
                    attempt,
                    result,
                } => {
                    let Some(mut job) = in_flight.lock().expect("lock").get(&entry).cloned() else {
                        continue;
                    };
                    // The cap is the job's own (set per kind at enqueue); the backoff the queue's.
                    let policy = RetryPolicy {
                        max_attempts: job.max,
                        ..retry
                    };
                    let settle = match dispose(result.as_ref().map(|_| ()), attempt, &policy, now) {
                        Disposition::Done => Settle::Done,
                        Disposition::Later {
                            at_ms,
                            attempts_used,
                        } => {
                            next_due.earlier(at_ms);
                            job.attempt = attempts_used;
                            Settle::Later { at_ms, job }
                        }
                        Disposition::Dead { error } => {
                            job.attempt = attempt.min(job.max);
                            Settle::Dead {
                                job,
                                error,
                                at_ms: now,
                            }
                        }
                    };
                    items.push((entry, settle));
                }
            }
        }
        let mut failures = 0u32;
        loop {
            match store.settle(&me, &items).await {
                Ok(settled) => {
                    let lost = settled.iter().filter(|s| !**s).count();
                    if lost > 0 {
                        tracing::warn!(queue = %store.name, lost, "outcomes for entries whose lease was lost; their new owner runs them");
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(queue = %store.name, error = %e, "settling failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(50))))
                        .await;
                }
            }
        }
        {
            let mut held = in_flight.lock().expect("lock");
            for (entry, _) in &items {
                held.remove(entry);
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
