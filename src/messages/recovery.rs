//! What the reconciler asks of the SMS log: messages that are not final and that nothing may be
//! working on any more (Redis lost their job, a worker died, a refund was never enqueued).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::MessageStatus;
use crate::domain::MessageId;

/// `queued` messages untouched for `age`, oldest first.
pub async fn stale_queued(
    pool: &PgPool,
    age: Duration,
    limit: i64,
) -> Result<Vec<MessageId>, sqlx::Error> {
    oldest(pool, "status = 'queued' AND updated_at", age, limit).await
}

/// `sending` messages whose latest attempt started `age` ago or more, oldest first.
pub async fn stale_sending(
    pool: &PgPool,
    age: Duration,
    limit: i64,
) -> Result<Vec<MessageId>, sqlx::Error> {
    let since = "status = 'sending' AND COALESCE(send_attempt_started_at, updated_at)";
    oldest(pool, since, age, limit).await
}

/// The messages whose `<status and time>` condition `since` is more than `age` ago, oldest first.
async fn oldest(
    pool: &PgPool,
    since: &'static str,
    age: Duration,
    limit: i64,
) -> Result<Vec<MessageId>, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM messages WHERE {since} < now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT $2"
    )))
    .bind(age.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The message's status, with its row locked as the send steps lock it, so no send can start on
/// it until the caller's transaction ends; `None` if another transaction holds it (someone is
/// working on it) or there is no such message.
pub async fn lock_status_unless_busy(
    conn: &mut PgConnection,
    id: MessageId,
) -> Result<Option<MessageStatus>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM messages WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Charged messages that failed (or were undelivered, where their company refunds that) a
/// minute ago or more and have no refund yet, with that status.
pub async fn unrefunded(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<(MessageId, MessageStatus)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id, m.status FROM messages m JOIN companies c ON c.id = m.company_id
         JOIN holds h ON h.message_id = m.id AND h.status = 'committed'
         WHERE (m.status = 'failed' OR (m.status = 'undelivered' AND c.refund_undelivered))
           AND m.updated_at < now() - interval '1 minute'
           AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.message_id = m.id AND r.kind = 'refund')
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks `sent` messages with no final report after `after` as unconfirmed (once); how many.
pub async fn mark_unconfirmed(pool: &PgPool, after: Duration) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE messages SET unconfirmed_at = now()
         WHERE status = 'sent' AND unconfirmed_at IS NULL AND updated_at < now() - make_interval(secs => $1)",
    )
    .bind(after.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}

/// Messages sent through Twilio account `account` whose outcome is unknown (`sending`): only
/// that account can say what became of them. A message without a recorded account was claimed
/// by a worker older than migration 0018 and went through the account in force.
pub async fn unresolved_on_account(
    conn: &mut PgConnection,
    account: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM messages
         WHERE status = 'sending' AND (provider_account = $1 OR provider_account IS NULL)",
    )
    .bind(account)
    .fetch_one(conn)
    .await
}

/// How many `sending` messages are held as unanswered (their send got no answer and the
/// provider's list does not show them).
pub async fn unanswered(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE status = 'sending' AND unanswered_since IS NOT NULL",
    )
    .fetch_one(pool)
    .await
}
