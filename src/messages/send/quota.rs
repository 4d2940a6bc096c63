//! A company's hourly quota changed: the new one applies to the messages already waiting, at
//! once, not after the waits the old one gave them.

use copcca_jobs::SendSms;
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::{CompanyId, MessageId};
use crate::queue::{QueueError, Queues};
use crate::ratelimit::RateLimiter;

/// The fleet-wide budget of a company's hourly quota (`ratelimit`'s key).
pub fn key(company: CompanyId) -> String {
    format!("company:{company}")
}

/// What [`quota_changed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuotaRestart {
    /// The company's `queued` messages given a send job now.
    pub messages_requeued: usize,
}

/// Starts the company's quota budget afresh (what it owed was counted at the old rate) and gives
/// each of its `queued` messages a send job now, keyed by `change` so a repeat adds none. The
/// jobs the old quota snoozed stay; whichever runs second finds the message sent (running a
/// send twice never sends twice). Messages beyond the new budget snooze again, at its rate.
pub async fn quota_changed(
    pool: &PgPool,
    queues: &Queues,
    limiter: &RateLimiter,
    company: CompanyId,
    change: i64,
) -> Result<QuotaRestart, QuotaError> {
    limiter.reset(&key(company)).await?;
    let mut restart = QuotaRestart::default();
    let mut after: Option<MessageId> = None;
    loop {
        let page: Vec<MessageId> = sqlx::query_scalar(
            "SELECT id FROM messages WHERE company_id = $1 AND status = 'queued'
               AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT 1000",
        )
        .bind(company)
        .bind(after)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last().copied() else {
            return Ok(restart);
        };
        let jobs: Vec<SendSms> = page.iter().map(|id| SendSms { message_id: id.0 }).collect();
        let enqueued = queues
            .enqueue_bulk_as(&jobs, |j| {
                format!("send_sms:{}:quota:{change}", j.message_id)
            })
            .await?;
        restart.messages_requeued += enqueued.iter().filter(|e| e.fresh).count();
        after = Some(last);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}
