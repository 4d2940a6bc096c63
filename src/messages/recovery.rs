//! What the reconciler asks of the SMS log: messages that are not final and that nothing may be
//! working on any more (Redis lost their job, a worker died, a refund was never enqueued).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::MessageStatus;
use crate::domain::MessageId;

/// One of the reconciler's reads of messages that may have lost their job, read a page at a time
/// in `updated_at` order to the end: a pass looks at every such message, so messages that are
/// legitimately waiting (quiet hours, quotas: their jobs are alive in Redis, and enqueueing them
/// again is a no-op) can never fill the pass and hide, from one pass to the next, the messages
/// (any company's) whose job Redis lost.
pub struct StaleMessages {
    /// The `<status and time>` condition that makes a message stale, compared with the cutoff.
    since: &'static str,
    age: Duration,
    /// The last message of the previous page; `None` before the first.
    after: Option<(DateTime<Utc>, MessageId)>,
    finished: bool,
}

impl StaleMessages {
    /// `queued` messages untouched for `age`.
    pub fn queued(age: Duration) -> Self {
        Self::new("status = 'queued' AND updated_at", age)
    }

    /// `sending` messages whose latest attempt started `age` ago or more.
    pub fn sending(age: Duration) -> Self {
        Self::new(
            "status = 'sending' AND COALESCE(send_attempt_started_at, updated_at)",
            age,
        )
    }

    fn new(since: &'static str, age: Duration) -> Self {
        StaleMessages {
            since,
            age,
            after: None,
            finished: false,
        }
    }

    /// The next (up to) `limit` of them, oldest first; `None` once they have all been read.
    pub async fn next_page(
        &mut self,
        pool: &PgPool,
        limit: i64,
    ) -> Result<Option<Vec<MessageId>>, sqlx::Error> {
        if self.finished {
            return Ok(None);
        }
        // The cursor as a range on `updated_at` too, so the index starts where the page does.
        let after = match self.after {
            Some(_) => "AND updated_at >= $3 AND (updated_at, id) > ($3, $4)",
            None => "",
        };
        let sql = format!(
            "SELECT id, updated_at FROM messages
             WHERE {} < now() - make_interval(secs => $1) {after}
             ORDER BY updated_at, id LIMIT $2",
            self.since
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(self.age.as_secs_f64())
            .bind(limit);
        if let Some((at, id)) = self.after {
            query = query.bind(at).bind(id);
        }
        let page: Vec<(MessageId, DateTime<Utc>)> = query.fetch_all(pool).await?;
        self.finished = (page.len() as i64) < limit;
        match page.last() {
            Some(&(id, at)) => self.after = Some((at, id)),
            None => return Ok(None),
        }
        Ok(Some(page.into_iter().map(|(id, _)| id).collect()))
    }
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

/// How far before a pass's horizon the next pass of [`unrefunded`] starts: a failure written
/// by a transaction that began (its `updated_at`) this long before it committed would otherwise
/// be passed over.
const UNREFUNDED_MARK_MARGIN_SECS: f64 = 600.0;

/// Charged messages that failed (or were undelivered, where their company refunds that) at
/// least `after` ago and have no refund yet, with that status, oldest first.
///
/// A pass reads only the failures since the mark the previous pass left in `reconciler_marks`
/// (none at first: all of them), so it does not grow with the history of failed messages: the
/// mark is the oldest message found (its refund may yet fail), or else this pass's horizon less
/// a margin. So a company that starts refunding undelivered messages gets that for those
/// undelivered from then on (less the margin), not for every undelivered message in its past.
pub async fn unrefunded(
    pool: &PgPool,
    after: Duration,
    limit: i64,
) -> Result<Vec<(MessageId, MessageStatus)>, sqlx::Error> {
    let found: Vec<(MessageId, MessageStatus, DateTime<Utc>)> = sqlx::query_as(
        "SELECT m.id, m.status, m.updated_at FROM messages m JOIN companies c ON c.id = m.company_id
         JOIN holds h ON h.message_id = m.id AND h.status = 'committed'
         WHERE m.status IN ('failed', 'undelivered') AND (m.status = 'failed' OR c.refund_undelivered)
           AND m.updated_at <= now() - make_interval(secs => $1)
           AND m.updated_at >= COALESCE((SELECT at FROM reconciler_marks WHERE name = 'unrefunded'),
                                        '-infinity')
           AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.message_id = m.id AND r.kind = 'refund')
         ORDER BY m.updated_at LIMIT $2",
    )
    .bind(after.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    sqlx::query(
        "INSERT INTO reconciler_marks (name, at)
         VALUES ('unrefunded', LEAST($1::timestamptz, now() - make_interval(secs => $2 + $3)))
         ON CONFLICT (name) DO UPDATE SET at = excluded.at",
    )
    .bind(found.first().map(|f| f.2))
    .bind(after.as_secs_f64())
    .bind(UNREFUNDED_MARK_MARGIN_SECS)
    .execute(pool)
    .await?;
    Ok(found
        .into_iter()
        .map(|(id, status, _)| (id, status))
        .collect())
}

/// The statement of [`mark_unconfirmed`] (`$1`: seconds): it reads `messages_open_idx`, which
/// holds only the `sent` messages still to mark (0026), not every `sent` message ever.
pub const MARK_UNCONFIRMED: &str = "UPDATE messages SET unconfirmed_at = now()
     WHERE status = 'sent' AND unconfirmed_at IS NULL AND updated_at < now() - make_interval(secs => $1)";

/// Marks `sent` messages with no final report after `after` as unconfirmed (once); how many.
pub async fn mark_unconfirmed(pool: &PgPool, after: Duration) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(MARK_UNCONFIRMED)
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

/// The `sending` messages held as unanswered (their send got no answer and the provider's list
/// does not show them, or the provider cannot be asked): how many, and the oldest few with the
/// account each went through, for the operator to look up (`POST /admin/messages/{id}/resolve`).
pub async fn unanswered(
    pool: &PgPool,
    oldest: i64,
) -> Result<(i64, Vec<(MessageId, String)>), sqlx::Error> {
    let held: Vec<(MessageId, String, i64)> = sqlx::query_as(
        "SELECT id, COALESCE(provider_account, '-'), count(*) OVER ()
         FROM messages WHERE status = 'sending' AND unanswered_since IS NOT NULL
         ORDER BY unanswered_since LIMIT $1",
    )
    .bind(oldest.max(1))
    .fetch_all(pool)
    .await?;
    let count = held.first().map_or(0, |(_, _, n)| *n);
    Ok((
        count,
        held.into_iter()
            .map(|(id, account, _)| (id, account))
            .collect(),
    ))
}
