//! Reading and writing message rows. Every status change goes through here, or through the send
//! flow's two joint messages-and-ledger steps (`ledger::begin_sends`: `sending`;
//! `ledger::finish_sends`: `sent`), and is a move of `status::TRANSITIONS`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::MessageStatus;
use crate::domain::{CompanyId, Credits, E164, MessageId, TimeZone};

/// A validated message ready to be written as `queued`.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub company: CompanyId,
    /// E.164 (`+255754123456`); the database refuses anything else.
    pub to: &'a str,
    pub body: &'a str,
    pub encoding: &'a str,
    pub segments: i32,
    pub credits: Credits,
    /// Who asked: `user:<id>`, `api_key:<id>`, `sweep`, `demo`.
    pub sender: &'a str,
}

/// Writes the message row in state `queued` and returns its id.
pub async fn insert_queued(
    conn: &mut PgConnection,
    m: &NewMessage<'_>,
) -> Result<MessageId, sqlx::Error> {
    let id = MessageId::new();
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, sender)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(m.company)
    .bind(m.to)
    .bind(m.body)
    .bind(m.encoding)
    .bind(m.segments)
    .bind(m.credits.get())
    .bind(m.sender)
    .execute(conn)
    .await?;
    Ok(id)
}

/// A message as stored: what its company sees of it (`view`, also through `Deref`) and the send
/// flow's own bookkeeping.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Message {
    #[sqlx(flatten)]
    pub view: MessageView,
    pub send_attempt_started_at: Option<DateTime<Utc>>,
    /// The provider account its latest attempt went through (recorded by the claim).
    pub provider_account: Option<String>,
    /// Its latest attempt, and the attempt whose request left (recorded by the routes that
    /// cannot be asked about a send, just before the request leaves: [`mark_request_leaving`]).
    pub send_attempt_id: Option<uuid::Uuid>,
    pub request_left_attempt: Option<uuid::Uuid>,
    pub respect_quiet_hours: bool,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<Vec<u8>>,
}

impl std::ops::Deref for Message {
    type Target = MessageView;
    fn deref(&self) -> &MessageView {
        &self.view
    }
}

/// A message as the API shows it to its company: what it costs the company is `credits`; what
/// the provider charged the platform (`messages.price`, recorded with the charge) is the
/// operator's business and not part of it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct MessageView {
    pub id: MessageId,
    pub company_id: CompanyId,
    #[sqlx(try_from = "String")]
    pub status: MessageStatus,
    #[sqlx(rename = "to_number", try_from = "String")]
    pub to: E164,
    pub body: String,
    pub encoding: String,
    pub segments: i32,
    #[sqlx(try_from = "i64")]
    pub credits: Credits,
    pub provider: Option<String>,
    pub provider_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub debt_id: Option<uuid::Uuid>,
    pub invoice_number: Option<String>,
    /// Whether the message's credits were given back.
    pub refunded: bool,
    pub uncharged_credits: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(super) const COLUMNS: &str = "m.id, m.company_id, m.status, m.to_number, m.body, m.encoding, m.segments, m.credits,
    m.provider, m.provider_id, m.error_code, m.error_message, m.debt_id,
    m.invoice_number, EXISTS (SELECT 1 FROM ledger_entries r WHERE r.message_id = m.id AND r.kind = 'refund') AS refunded,
    m.uncharged_credits, m.send_attempt_started_at, m.provider_account, m.send_attempt_id,
    m.request_left_attempt, m.respect_quiet_hours, m.idempotency_key, m.request_hash,
    m.created_at, m.updated_at";

impl Message {
    /// Whether its latest attempt's request may have left: recorded as leaving, or made before
    /// departures were recorded. Only meaningful for the routes that record them.
    pub fn request_may_have_left(&self) -> bool {
        self.send_attempt_id.is_none() || self.request_left_attempt == self.send_attempt_id
    }
}

/// Records that attempt `attempt` of message `id` is about to leave, if it is still the
/// message's attempt; `false` when another run has taken the message over since (this run must
/// then send nothing). Written by the routes that cannot be asked about a send, so a run that
/// dies before this point leaves a message that is safely sent again.
pub async fn mark_request_leaving(
    pool: &PgPool,
    id: MessageId,
    attempt: uuid::Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE messages SET request_left_attempt = $2
         WHERE id = $1 AND send_attempt_id = $2 AND status = 'sending'",
    )
    .bind(id)
    .bind(attempt)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Takes attempt `attempt` of message `id` from the run that made it, if its request never
/// left: a new attempt id, so that run, should it still live (stalled), can no longer record
/// its request leaving ([`mark_request_leaving`]) nor write an outcome. `false` when the request
/// was recorded as leaving meanwhile, or another run took the message.
pub async fn take_over_unsent_attempt(
    pool: &PgPool,
    id: MessageId,
    attempt: uuid::Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE messages SET send_attempt_id = $3
         WHERE id = $1 AND status = 'sending' AND send_attempt_id = $2
           AND request_left_attempt IS DISTINCT FROM $2",
    )
    .bind(id)
    .bind(attempt)
    .bind(uuid::Uuid::now_v7())
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

pub async fn find(pool: &PgPool, id: MessageId) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The company's rules the send job applies to a message before sending it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendingRules {
    pub sms_per_hour: i32,
    #[sqlx(try_from = "String")]
    pub timezone: TimeZone,
    pub quiet_hours_start: chrono::NaiveTime,
    pub quiet_hours_end: chrono::NaiveTime,
    /// Whether the recipient is on the company's opt-out list now (a STOP may have come in
    /// while the message was queued): the message must not go.
    pub recipient_opted_out: bool,
}

/// What the send job reads first: the message, its company's rules, and how long ago (by the
/// database's clock) its latest send attempt started.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ForSending {
    #[sqlx(flatten)]
    pub message: Message,
    #[sqlx(flatten)]
    pub rules: SendingRules,
    #[sqlx(try_from = "Option<f64>")]
    pub attempt_age: AttemptAge,
}

/// Time since the message's latest send attempt started; `None` if it was never attempted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptAge(pub Option<std::time::Duration>);

impl From<Option<f64>> for AttemptAge {
    fn from(secs: Option<f64>) -> Self {
        AttemptAge(secs.map(|s| std::time::Duration::from_secs_f64(s.max(0.0))))
    }
}

/// Messages and their companies' sending rules, in one read (the send job's first step, grouped
/// across concurrent sends by `SendSteps::read`): one answer per id, in order, `None` for an
/// unknown one. Each row is read on its own: one that cannot be (a company's time zone that is
/// not one) is that message's error, not its batch's.
pub async fn find_for_sending(
    pool: &PgPool,
    ids: &[MessageId],
) -> Result<Vec<Result<Option<ForSending>, sqlx::Error>>, sqlx::Error> {
    use sqlx::{FromRow, Row};
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.n, {COLUMNS}, c.sms_per_hour, c.timezone, c.quiet_hours_start, c.quiet_hours_end,
                EXTRACT(EPOCH FROM now() - m.send_attempt_started_at)::float8 AS attempt_age,
                EXISTS (SELECT 1 FROM opt_outs o WHERE o.company_id = m.company_id
                                                   AND o.phone = m.to_number) AS recipient_opted_out
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)
         JOIN messages m ON m.id = t.id JOIN companies c ON c.id = m.company_id"
    )))
    .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let mut answers: Vec<Result<Option<ForSending>, sqlx::Error>> =
        ids.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let n: i64 = row.try_get("n")?;
        answers[(n - 1) as usize] = ForSending::from_row(&row).map(Some);
    }
    Ok(answers)
}

/// A company's message; `None` for another company's id, exactly as for an unknown one.
pub async fn find_for_company(
    pool: &PgPool,
    company: CompanyId,
    id: MessageId,
) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.id = $1 AND m.company_id = $2"
    )))
    .bind(id)
    .bind(company)
    .fetch_optional(pool)
    .await
}

/// A page of the company's messages, newest first (by acceptance time, then id), optionally of
/// one status or to one number, after the message `before` (a page's last). A `before` that is
/// not one of the company's messages gives an empty page.
///
/// The cost does not grow with the table: one branch per status, each walking
/// `messages_company_status_idx` (company, status, created_at, id) from the cursor and stopping
/// at `limit`, merged in order (migration 0026). No other index gives that order, so no plan
/// walks other companies' messages or sorts all of this one's (as plans of the former single
/// statement did, depending on the statistics). A `to` filter reads `messages_to_idx` (number,
/// company, created_at, id) instead, in the same order.
pub async fn list(
    pool: &PgPool,
    company: CompanyId,
    status: Option<MessageStatus>,
    to: Option<&str>,
    before: Option<MessageId>,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    let cursor = match before {
        None => None,
        Some(id) => {
            let at: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT created_at FROM messages WHERE id = $1 AND company_id = $2",
            )
            .bind(id)
            .bind(company)
            .fetch_optional(pool)
            .await?;
            match at {
                Some(at) => Some((at, id)),
                None => return Ok(Vec::new()),
            }
        }
    };
    let statuses = match status {
        Some(s) => vec![s],
        None => MessageStatus::ALL.to_vec(),
    };
    let sql = list_sql(&statuses, to.is_some(), cursor.is_some(), limit);
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(company);
    if let Some(to) = to {
        query = query.bind(to);
    }
    if let Some((at, id)) = cursor {
        query = query.bind(at).bind(id);
    }
    query.fetch_all(pool).await
}

/// The listing's statement: a branch per status in `statuses` (one branch, without a status
/// condition, for a `to` filter, which `messages_to_idx` serves), parameters in the order
/// company, to (if `to`), the cursor's created_at and id (if `cursor`); `limit` is written in.
///
/// No value is visible to the planner: each is computed at the start (an InitPlan). The plan is
/// the same for every value, so a prepared statement moves to its generic plan and is not
/// planned again. With the values visible, a company with most of a large table's messages made
/// every custom plan look cheaper than the generic one, and each page paid a new plan (0.6-0.8 ms
/// with 1M messages, more than running it). The limit is written into the text for the same
/// reason: the planner reads an unknown limit as a tenth of the rows, and took a plan of 26 ms
/// over that table. (At most 200 page sizes, each a statement of its own.)
pub fn list_sql(statuses: &[MessageStatus], to: bool, cursor: bool, limit: i64) -> String {
    let mut n = 1;
    let mut conditions = String::new();
    if to {
        n += 1;
        conditions.push_str(&format!(" AND m.to_number = (SELECT ${n}::text)"));
    }
    if cursor {
        conditions.push_str(&format!(
            " AND (m.created_at, m.id) < ((SELECT ${}::timestamptz), (SELECT ${}::uuid))",
            n + 1,
            n + 2
        ));
    }
    // A status as a value (an InitPlan) also keeps the partial indexes on status
    // (`messages_failures_idx`, `messages_open_idx`) from being taken, with a sort of every
    // failure in the fleet, for a company the statistics make small.
    let status = |s: &MessageStatus| format!(" AND m.status = (SELECT '{}'::text)", s.as_str());
    let filters: Vec<String> = match (to, statuses) {
        (true, [one]) => vec![status(one)],
        (true, _) => vec![String::new()],
        (false, all) => all.iter().map(status).collect(),
    };
    let branches: Vec<String> = filters
        .iter()
        .map(|status| {
            format!(
                "(SELECT m.* FROM messages m
                  WHERE m.company_id = (SELECT $1::uuid){status}{conditions}
                  ORDER BY m.created_at DESC, m.id DESC LIMIT {limit})"
            )
        })
        .collect();
    // The columns (with the refund flag's lookup) only for the page's rows: inside a branch the
    // planner may hash every refund entry for that lookup, expecting the branch's whole range.
    format!(
        "SELECT {COLUMNS} FROM ({}) AS m ORDER BY m.created_at DESC, m.id DESC LIMIT {limit}",
        branches.join(" UNION ALL ")
    )
}

/// `sending` -> `queued` for a later attempt, only if `attempt` is still the message's latest
/// (no other run has taken the send over). False: nothing written.
pub async fn requeue_attempt(
    conn: &mut PgConnection,
    id: MessageId,
    attempt: uuid::Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'queued', updated_at = now()
         WHERE id = $1 AND status = 'sending' AND send_attempt_id = $2",
    )
    .bind(id)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Locks the message (as the send steps do, before its hold) and says whether `attempt` is still
/// its latest; the caller writes the attempt's outcome in the same transaction only if so.
pub async fn lock_attempt(
    conn: &mut PgConnection,
    id: MessageId,
    attempt: uuid::Uuid,
) -> Result<bool, sqlx::Error> {
    let ours: Option<bool> = sqlx::query_scalar(
        "SELECT send_attempt_id IS NOT DISTINCT FROM $2 FROM messages WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(id)
    .bind(attempt)
    .fetch_optional(conn)
    .await?;
    Ok(ours == Some(true))
}

/// Locks the message (as the send steps do, before its hold) and says whether it is still
/// `queued` or `sending` with the latest attempt started at `seen`, as a run read it before its
/// claim (`None`: never attempted): no other run has claimed it since. The caller writes its
/// outcome in the same transaction only if so.
pub async fn lock_unclaimed(
    conn: &mut PgConnection,
    id: MessageId,
    seen: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let unclaimed: Option<bool> = sqlx::query_scalar(
        "SELECT status IN ('queued', 'sending') AND send_attempt_started_at IS NOT DISTINCT FROM $2
         FROM messages WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(id)
    .bind(seen)
    .fetch_optional(conn)
    .await?;
    Ok(unclaimed == Some(true))
}

/// Any non-final state -> `failed`, with the reason (a provider code or our own).
pub async fn mark_failed(
    conn: &mut PgConnection,
    id: MessageId,
    code: &str,
    message: &str,
    provider: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'failed', error_code = $2, error_message = $3,
             provider = COALESCE($4, provider), updated_at = now()
         WHERE id = $1 AND status IN ('queued', 'sending', 'sent')",
    )
    .bind(id)
    .bind(code)
    .bind(message)
    .bind(provider)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Applies a delivery report for the provider's message `provider_id`, only forward. Returns the
/// message and its previous status when it moved.
pub async fn apply_report(
    conn: &mut PgConnection,
    provider: &str,
    provider_id: &str,
    next: MessageStatus,
    error_code: Option<&str>,
) -> Result<Option<(MessageId, CompanyId, MessageStatus)>, sqlx::Error> {
    let row: Option<(MessageId, CompanyId, MessageStatus)> = sqlx::query_as(
        "SELECT id, company_id, status FROM messages WHERE provider_id = $1 AND provider = $2
         FOR UPDATE",
    )
    .bind(provider_id)
    .bind(provider)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, company, current)) = row else {
        return Ok(None);
    };
    if !current.reported_as(next) {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE messages SET status = $2, error_code = COALESCE($3, error_code), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(next.as_str())
    .bind(error_code)
    .execute(&mut *conn)
    .await?;
    Ok(Some((id, company, current)))
}

/// The message that holds the provider's id `provider_id`, if any.
pub async fn owner_of_provider_id(
    pool: &PgPool,
    provider_id: &str,
) -> Result<Option<MessageId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM messages WHERE provider_id = $1")
        .bind(provider_id)
        .fetch_optional(pool)
        .await
}

/// What a provider id the message did not know yet (an answer or a callback that came after
/// its run gave up on it) did to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateSid {
    /// Recorded on the `queued` or `sending` message: its next run charges it for this send
    /// (reserving again if its hold was released) and never sends it again.
    Adopted,
    /// The message had failed (its hold released, so nothing was charged), yet the provider
    /// took it: recorded on it with its credits as uncharged, for the operator.
    Unbilled,
    /// Nothing to do: the message already has a provider id, or another message has this one.
    Known,
}

/// Records `sid`, a send of message `id` that the provider took, on the message if it has
/// none (see [`LateSid`]).
pub async fn record_late_sid(
    conn: &mut PgConnection,
    id: MessageId,
    sid: &str,
) -> Result<LateSid, sqlx::Error> {
    let updated: Result<Option<MessageStatus>, sqlx::Error> = sqlx::query_scalar(
        "UPDATE messages SET provider_id = $2,
             uncharged_credits = uncharged_credits + CASE WHEN status = 'failed' THEN credits ELSE 0 END,
             updated_at = now()
         WHERE id = $1 AND provider_id IS NULL AND status IN ('queued', 'sending', 'failed')
           AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.provider_id = $2)
         RETURNING status",
    )
    .bind(id)
    .bind(sid)
    .fetch_optional(conn)
    .await;
    match updated {
        Ok(Some(MessageStatus::Failed)) => Ok(LateSid::Unbilled),
        Ok(Some(_)) => Ok(LateSid::Adopted),
        Ok(None) => Ok(LateSid::Known),
        // Another message took this id meanwhile (the unique index).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(LateSid::Known),
        Err(e) => Err(e),
    }
}

/// Marks a `sending` message as unanswered (once): its send got no answer and the provider's
/// list does not show it.
pub async fn mark_unanswered(pool: &PgPool, id: MessageId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET unanswered_since = now()
         WHERE id = $1 AND status = 'sending' AND unanswered_since IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
