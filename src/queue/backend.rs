//! Our Redis backend for apalis 1.0: `WorkerBuilder::new(name).backend(RedisBackend::new(..))`.
//!
//! apalis drives it through `Backend` (poll_ready / poll_next / poll_close) and wraps every
//! handler call in the [`AckLayer`] this backend supplies, which reports the handler's typed
//! [`JobError`] (Retry / Snooze / Fail) to the settler. The Redis work itself runs in the
//! [`Consumer`](super::consumer::Consumer) tasks; this file only adapts them to apalis' polling.
//! Producers push through `TaskSink` (`push`, `push_bulk`, `push_task`) or, typed, through
//! [`Producer`](super::Producer).

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use apalis_core::backend::future::BoxSyncFuture;
use apalis_core::backend::{Backend, BackendConfig, finalize::Ephemeral};
use apalis_core::error::BoxDynError;
use apalis_core::layers::{Layer, Service};
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;
use futures::future::BoxFuture;
use futures::{FutureExt, Sink, ready};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::consumer::{Ack, Consumer, ConsumerConfig};
use super::outcome::JobError;
use super::store::{NewJob, QueueStore};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job arguments do not serialise: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the backend was polled after it closed")]
    Closed,
    #[error("bad cron schedule: {0}")]
    Schedule(String),
}

type Pending<T> = BoxSyncFuture<Result<T, QueueError>>;

/// One queue as an apalis backend. Clone it per worker: each clone consumes under the name of
/// the worker that runs it.
pub struct RedisBackend<Args> {
    store: QueueStore,
    client: redis::Client,
    config: ConsumerConfig,
    max_attempts: u32,
    acks: Option<(mpsc::UnboundedSender<Ack>, mpsc::UnboundedReceiver<Ack>)>,
    ack_tx: mpsc::UnboundedSender<Ack>,
    consumer: Option<Consumer>,
    starting: Option<Pending<Consumer>>,
    closing: Option<Pending<()>>,
    outbox: Vec<NewJob>,
    flushing: Option<Pending<()>>,
    _args: PhantomData<fn() -> Args>,
}

impl<Args> RedisBackend<Args> {
    /// `max_attempts` caps the jobs pushed through this backend's `TaskSink`.
    pub fn new(
        store: QueueStore,
        client: redis::Client,
        config: ConsumerConfig,
        max_attempts: u32,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        RedisBackend {
            store,
            client,
            config,
            max_attempts,
            ack_tx: tx.clone(),
            acks: Some((tx, rx)),
            consumer: None,
            starting: None,
            closing: None,
            outbox: Vec::new(),
            flushing: None,
            _args: PhantomData,
        }
    }

    pub fn store(&self) -> &QueueStore {
        &self.store
    }
}

impl<Args> Clone for RedisBackend<Args> {
    /// A fresh, unstarted backend on the same queue (apalis also clones to restart a worker).
    fn clone(&self) -> Self {
        RedisBackend::new(
            self.store.clone(),
            self.client.clone(),
            self.config,
            self.max_attempts,
        )
    }
}

impl<Args: DeserializeOwned + Unpin + Send + 'static> Backend for RedisBackend<Args> {
    type Task = Task<Args>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        if self.consumer.is_some() {
            return Poll::Ready(Ok(()));
        }
        if self.starting.is_none() {
            let Some(acks) = self.acks.take() else {
                return Poll::Ready(Err(QueueError::Closed));
            };
            let (store, client, config, name) = (
                self.store.clone(),
                self.client.clone(),
                self.config,
                worker.name().to_string(),
            );
            self.starting = Some(BoxSyncFuture::new(
                async move { Ok(Consumer::start(store, &client, &name, config, acks).await?) }
                    .boxed(),
            ));
        }
        let started = ready!(self.starting.as_mut().expect("set above").poll_unpin(cx));
        self.starting = None;
        self.consumer = Some(started?);
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Option<Result<Task<Args>, QueueError>>> {
        let Some(consumer) = self.consumer.as_mut() else {
            return Poll::Pending;
        };
        loop {
            let Some(delivery) = ready!(consumer.deliveries.poll_recv(cx)) else {
                return Poll::Ready(None);
            };
            match serde_json::from_str::<Args>(&delivery.job.args) {
                Ok(args) => {
                    let task = TaskBuilder::new(args)
                        .data(JobId(delivery.job.id.clone()))
                        .task_id(TaskId::from_string(delivery.entry))
                        .attempt(delivery.job.attempt as usize)
                        .max_attempts(delivery.job.max as usize)
                        .build();
                    return Poll::Ready(Some(Ok(task)));
                }
                // An error here would end the worker: a bad payload is dead-lettered instead.
                Err(e) => consumer.reject(
                    delivery.entry,
                    delivery.job.attempt + 1,
                    format!("undecodable arguments: {e}"),
                ),
            }
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        if self.closing.is_none() {
            let Some(consumer) = self.consumer.take() else {
                return Poll::Ready(Ok(()));
            };
            self.closing = Some(BoxSyncFuture::new(
                async move { Ok(consumer.close().await?) }.boxed(),
            ));
        }
        let closed = ready!(self.closing.as_mut().expect("set above").poll_unpin(cx));
        self.closing = None;
        Poll::Ready(closed)
    }
}

impl<Args> BackendConfig for RedisBackend<Args> {
    type Args = Args;
    type Id = String;
    type Kind = Ephemeral;
    type Config = ConsumerConfig;
    type Layer = AckLayer;

    fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> AckLayer {
        AckLayer {
            acks: self.ack_tx.clone(),
            queue: self.store.name.clone(),
        }
    }
}

/// Our id of a delivered job (the one `enqueue` returned), in the task's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobId(pub String);

/// Runs each job inside a `job` span (queue, job id, stream entry, attempt), so every log line
/// of a handler names its job; then reports the run's outcome to the backend, with the
/// handler's `JobError` intact.
#[derive(Clone)]
pub struct AckLayer {
    acks: mpsc::UnboundedSender<Ack>,
    queue: String,
}

#[derive(Clone)]
pub struct AckService<S> {
    inner: S,
    acks: mpsc::UnboundedSender<Ack>,
    queue: String,
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;
    fn layer(&self, inner: S) -> AckService<S> {
        AckService {
            inner,
            acks: self.acks.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<S, Args> Service<Task<Args>> for AckService<S>
where
    S: Service<Task<Args>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: Send,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let ctx = task.ctx().clone();
        let acks = self.acks.clone();
        let span = tracing::info_span!(
            "job",
            queue = %self.queue,
            job_id = ctx.data().get::<JobId>().map_or("-", |j| j.0.as_str()),
            entry = ctx.task_id().map(|id| id.to_string()).unwrap_or_default(),
            attempt = ctx.attempt(),
            // What the job is about, recorded by its handler (`record_subject`), so that every
            // line of the job, its outcome too, names it.
            message_id = tracing::field::Empty,
            payment_id = tracing::field::Empty,
        );
        let run = {
            let _entered = span.enter();
            self.inner.call(task)
        };
        async move {
            let started = std::time::Instant::now();
            let result = run.await.map_err(Into::into);
            let outcome = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(classify(e.as_ref())),
            };
            let ms = started.elapsed().as_millis() as u64;
            match &outcome {
                Ok(()) => tracing::debug!(ms, "job done"),
                Err(JobError::Snooze(wait)) => tracing::debug!(ms, ?wait, "job snoozed"),
                Err(e @ JobError::Retry(_)) => {
                    tracing::warn!(ms, error = %e, "job failed; will retry")
                }
                Err(e @ JobError::Fail(_)) => {
                    tracing::error!(ms, error = %e, "job failed for good")
                }
            }
            if let Some(entry) = ctx.task_id().map(|id| id.to_string()) {
                let _ = acks.send(Ack::Finished {
                    entry,
                    attempt: ctx.attempt() as u32,
                    result: outcome,
                });
            }
            result
        }
        .instrument(span)
        .boxed()
    }
}

/// Finds our `JobError` in the error chain; anything else (a timeout, a panic) is transient.
fn classify(e: &(dyn std::error::Error + 'static)) -> JobError {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(j) = err.downcast_ref::<JobError>() {
            return j.clone();
        }
        cur = err.source();
    }
    JobError::retry(e.to_string())
}

/// `TaskSink` support: `push`, `push_bulk` and `push_task` enqueue through the same script as
/// [`Producer`](super::Producer), honouring `run_at` (seconds), `idempotency_key` and `max_attempts`.
impl<Args: Serialize + Unpin> Sink<Task<Args>> for RedisBackend<Args> {
    type Error = QueueError;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), QueueError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, task: Task<Args>) -> Result<(), QueueError> {
        let this = self.get_mut();
        this.outbox.push(NewJob {
            id: uuid::Uuid::now_v7().to_string(),
            args: serde_json::to_string(&task.args)?,
            max_attempts: task.max_attempts().map_or(this.max_attempts, |m| m as u32),
            idempotency_key: task.idempotency_key().map(str::to_string),
            run_at_ms: task.run_at().map(|s| s * 1000),
        });
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), QueueError>> {
        let this = self.get_mut();
        if this.flushing.is_none() {
            if this.outbox.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let (store, jobs) = (this.store.clone(), std::mem::take(&mut this.outbox));
            this.flushing = Some(BoxSyncFuture::new(
                async move { store.enqueue(&jobs).await.map(drop).map_err(Into::into) }.boxed(),
            ));
        }
        let flushed = ready!(this.flushing.as_mut().expect("set above").poll_unpin(cx));
        this.flushing = None;
        Poll::Ready(flushed)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), QueueError>> {
        self.poll_flush(cx)
    }
}
