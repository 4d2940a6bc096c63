//! The send flow's steps grouped across concurrent sends (group commit, see `db::group_commit`):
//! its first read (the message and its company's rules, `store::find_for_sending`), and its two
//! joint messages-and-ledger steps, the claim (reserve the credits + mark `sending`,
//! `ledger::begin_sends`) and the charge (commit the hold + mark `sent`, `ledger::finish_sends`).
//! Each is one SQL statement per batch (migrations/README.md names the current definitions of
//! the two writes, the only writes of a message's status outside `messages::store`).

use sqlx::PgPool;

use crate::db::group_commit::{GroupCommit, together_or_alone};
use crate::domain::MessageId;
use crate::ledger::{self, BeginSend, Begun, FinishSend, Finished, LedgerError};
use crate::messages::store::{self, ForSending};

/// The runners of the three steps; cheap to clone (handles).
#[derive(Clone)]
pub struct SendSteps {
    /// One round trip for every send starting meanwhile, instead of one each (measured: about
    /// a tenth of PostgreSQL's CPU per message went to these reads one by one).
    pub read: GroupCommit<MessageId, Result<Option<ForSending>, sqlx::Error>>,
    pub begin: GroupCommit<BeginSend, Begun>,
    pub finish: GroupCommit<FinishSend, Finished>,
}

impl SendSteps {
    pub fn start(pool: &PgPool) -> Self {
        let reader = pool.clone();
        SendSteps {
            read: GroupCommit::start("send_read", BATCH, IN_FLIGHT, move |ids: Vec<MessageId>| {
                let pool = reader.clone();
                async move { store::find_for_sending(&pool, &ids).await }
            }),
            begin: step("send_begin", pool, |pool, items| async move {
                ledger::begin_sends(&mut *pool.acquire().await?, &items).await
            }),
            finish: step("send_finish", pool, |pool, items| async move {
                ledger::finish_sends(&mut *pool.acquire().await?, &items).await
            }),
        }
    }
}

/// Up to 64 messages per statement, one statement at a time per step: while it runs the next
/// batch forms (measured: 8-9 messages per batch and ~1.4x the messages/s of three at a time,
/// whose batches were half the size).
const BATCH: usize = 64;
const IN_FLIGHT: usize = 1;

/// One write step's runner: every waiting item in one statement, or each alone if PostgreSQL
/// refused the statement for something an item can cause (`together_or_alone`).
fn step<I, T, F, Fut>(
    name: &'static str,
    pool: &PgPool,
    statement: F,
) -> GroupCommit<I, Result<T, LedgerError>>
where
    I: Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(PgPool, Vec<I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Result<T, LedgerError>>, sqlx::Error>> + Send + 'static,
{
    let pool = pool.clone();
    GroupCommit::start(name, BATCH, IN_FLIGHT, move |items| {
        let (pool, statement) = (pool.clone(), statement.clone());
        async move {
            let run = |items: Vec<I>| statement(pool.clone(), items);
            together_or_alone(items, run, |e| Err(LedgerError::Database(e))).await
        }
    })
}
