//! Group commit: concurrent callers (API requests accepting a message, send jobs reserving or
//! charging credits) hand their step to a runner, which executes everything waiting as one
//! statement, so N concurrent messages cost one round trip and one commit instead of N. Nothing waits on a timer: while up to
//! `in_flight` batches are running, new requests queue up and form the next batch, so batches
//! grow with the load and a lone request runs at once.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::sqlstate::caused_by_an_item;

type Reply<O> = oneshot::Sender<Result<O, Arc<sqlx::Error>>>;

/// A handle to a running group-commit runner; cheap to clone. The runner stops when the last
/// handle is dropped.
pub struct GroupCommit<I, O> {
    requests: mpsc::Sender<(I, Reply<O>)>,
}

impl<I, O> Clone for GroupCommit<I, O> {
    fn clone(&self) -> Self {
        GroupCommit {
            requests: self.requests.clone(),
        }
    }
}

/// Why a grouped step did not run: the batch's statement failed (the whole batch did nothing),
/// or the runner is gone.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("the batch failed: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("the group-commit runner stopped")]
    Stopped,
}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts a runner for `step` (its name in metrics), on the current tokio runtime, that runs at most `max_batch` requests per
    /// call of `run` and at most `in_flight` calls at a time. `run` answers in request order.
    pub fn start<F, Fut>(step: &'static str, max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, sqlx::Error>> + Send + 'static,
    {
        let (requests, mut waiting) = mpsc::channel::<(I, Reply<O>)>(max_batch * in_flight);
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let run = Arc::new(run);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                if waiting.recv_many(&mut batch, max_batch).await == 0 {
                    return; // every handle is gone
                }
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.drain(..).unzip();
                crate::metrics::group_commit_batch(step, items.len());
                let run = run.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    match run(items).await {
                        Ok(answers) => {
                            // A missing answer drops its reply: that caller sees `Stopped`.
                            for (reply, answer) in replies.into_iter().zip(answers) {
                                let _ = reply.send(Ok(answer));
                            }
                        }
                        Err(e) => {
                            let e = Arc::new(e);
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                });
            }
        });
        GroupCommit { requests }
    }

    /// Runs `item` in the next batch and returns its answer.
    pub async fn run(&self, item: I) -> Result<O, GroupError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((item, reply))
            .await
            .map_err(|_| GroupError::Stopped)?;
        match answer.await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => Err(GroupError::Database(e)),
            Err(_) => Err(GroupError::Stopped),
        }
    }
}

/// Runs `items` with `run` in one go. If PostgreSQL refused that for something an item can
/// cause (a constraint, bad data, a raised exception; or a deadlock, which a rerun resolves)
/// and there were several items, runs each alone, so the error reaches only the item that
/// caused it (`failed` makes it that item's answer) and the others are not held back by it.
/// Any other error fails the whole group, and its callers retry later: a lost connection, and
/// a lock timeout, which one by one would cost every item behind the same lock the full wait
/// again, in series, while the group's runner is held.
pub async fn together_or_alone<I, O, F, Fut>(
    items: Vec<I>,
    run: F,
    failed: impl Fn(sqlx::Error) -> O,
) -> Result<Vec<O>, sqlx::Error>
where
    I: Clone,
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, sqlx::Error>>,
{
    if items.len() < 2 {
        return run(items).await;
    }
    match run(items.clone()).await {
        Err(sqlx::Error::Database(e)) if caused_by_an_item(&*e) => {
            tracing::warn!(items = items.len(), error = %e, "a grouped statement failed; running its items one by one");
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                answers.push(match run(vec![item]).await {
                    Ok(mut one) if one.len() == 1 => one.remove(0),
                    Ok(_) => {
                        return Err(sqlx::Error::Protocol(
                            "a grouped statement answered a single item with other than one row"
                                .into(),
                        ));
                    }
                    Err(e) => failed(e),
                });
            }
            Ok(answers)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::db::testing::Refused;

    use super::*;

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_get_their_own_answers() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let group = GroupCommit::start("test", 8, 1, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(items.into_iter().map(|n| n * 10).collect())
            }
        });
        let calls: Vec<_> = (0..20)
            .map(|n| {
                let group = group.clone();
                tokio::spawn(async move { group.run(n).await.unwrap() })
            })
            .collect();
        for (n, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), n as u32 * 10);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|s| *s <= 8), "{sizes:?}");
        assert!(sizes.len() < 20, "no request shared a batch: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_request_in_it() {
        let group = GroupCommit::start("test", 8, 1, |_items: Vec<u32>| async {
            Err::<Vec<u32>, _>(sqlx::Error::PoolTimedOut)
        });
        let err = group.run(1).await.unwrap_err();
        assert!(matches!(err, GroupError::Database(_)), "{err}");
    }

    #[tokio::test]
    async fn a_refused_group_is_run_one_by_one_and_only_the_culprit_fails() {
        let calls = Mutex::new(Vec::new());
        let answers = together_or_alone(
            vec![1u32, 13, 2],
            |items: Vec<u32>| {
                calls.lock().unwrap().push(items.len());
                async move {
                    if items.contains(&13) {
                        // What PostgreSQL says to a statement it refuses.
                        Err(sqlx::Error::Database(Box::new(Refused(UNIQUE_VIOLATION))))
                    } else {
                        Ok(items.into_iter().map(Ok).collect())
                    }
                }
            },
            |e| Err(e.to_string()),
        )
        .await
        .unwrap();
        assert_eq!(answers[0], Ok(1));
        assert!(answers[1].is_err());
        assert_eq!(answers[2], Ok(2));
        assert_eq!(*calls.lock().unwrap(), vec![3, 1, 1, 1]);
    }

    #[tokio::test]
    async fn a_lost_connection_fails_the_group_without_retrying_each_item() {
        let calls = Mutex::new(0);
        let result = together_or_alone(
            vec![1u32, 2],
            |_items: Vec<u32>| {
                *calls.lock().unwrap() += 1;
                async { Err::<Vec<Result<u32, String>>, _>(sqlx::Error::PoolTimedOut) }
            },
            |e| Err(e.to_string()),
        )
        .await;
        assert!(matches!(result, Err(sqlx::Error::PoolTimedOut)));
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_lock_timeout_fails_the_group_without_retrying_each_item() {
        let calls = Mutex::new(0);
        let result = together_or_alone(
            vec![1u32, 2, 3],
            |_items: Vec<u32>| {
                *calls.lock().unwrap() += 1;
                async {
                    Err::<Vec<Result<u32, String>>, _>(sqlx::Error::Database(Box::new(Refused(
                        LOCK_NOT_AVAILABLE,
                    ))))
                }
            },
            |e| Err(e.to_string()),
        )
        .await;
        assert!(matches!(result, Err(sqlx::Error::Database(_))));
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    const UNIQUE_VIOLATION: &str = "23505";
    const LOCK_NOT_AVAILABLE: &str = "55P03";

    #[tokio::test]
    async fn a_missing_answer_is_an_error_not_a_hang() {
        let group = GroupCommit::start("test", 8, 1, |_items: Vec<u32>| async {
            Ok(Vec::<u32>::new())
        });
        assert!(matches!(group.run(1).await, Err(GroupError::Stopped)));
    }
}
