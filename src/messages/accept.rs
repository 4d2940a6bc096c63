//! Accepting a message from the CRM (DESIGN.md section 5, step 1): validate and normalise, check
//! the opt-out list, write the row `queued`, enqueue `SendSms`.
//!
//! The row is written first and is the truth. If the process dies before the enqueue, or Redis
//! loses the job, the reconciler re-enqueues every message left `queued`: nothing is lost.

use std::collections::HashMap;
use std::sync::Arc;

use copcca_jobs::SendSms;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::rates::{RateCard, Refusal};
use super::store::{COLUMNS, Message};
use crate::db::group_commit::{GroupCommit, GroupError, together_or_alone};
use crate::domain::{BodyError, CompanyId, Country, E164, MessageId, PhoneError, SmsBody};
use crate::queue::Queues;

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct AcceptRequest {
    pub to: String,
    pub body: String,
    pub debt_id: Option<uuid::Uuid>,
    pub invoice_number: Option<String>,
    /// False for messages that must go out even at night (an OTP).
    pub respect_quiet_hours: bool,
    pub idempotency_key: Option<String>,
    /// `user:<id>`, `api_key:<id>`, `sweep`...
    pub sender: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("to: {0}")]
    To(#[from] PhoneError),
    #[error("body: {0}")]
    Body(#[from] BodyError),
    /// The rate card refuses the destination (unpriced, not allowed, or a special range).
    #[error(transparent)]
    Destination(#[from] Refusal),
    #[error("{0} has opted out of messages from this company")]
    OptedOut(E164),
    #[error("this Idempotency-Key was used for a different message")]
    KeyReused,
    /// Shared by the requests of a group whose statement failed; its class (`db::transient`)
    /// decides the answer (503 or 500).
    #[error(transparent)]
    Database(Arc<sqlx::Error>),
}

impl From<sqlx::Error> for AcceptError {
    fn from(e: sqlx::Error) -> Self {
        AcceptError::Database(Arc::new(e))
    }
}

#[derive(Debug, Clone)]
pub struct Acceptance {
    pub message: Message,
    /// True when the Idempotency-Key had already created this message.
    pub replay: bool,
}

/// Writes accepted messages and enqueues their `SendSms` jobs, grouping concurrent requests:
/// one multi-row insert (one commit) and one enqueue per batch (see `group_commit`).
#[derive(Clone)]
pub struct Acceptor {
    group: GroupCommit<Row, Result<Option<Message>, Arc<sqlx::Error>>>,
}

/// One message to write, validated and priced.
#[derive(Debug, Clone)]
struct Row {
    id: MessageId,
    company: CompanyId,
    to: String,
    body: String,
    encoding: &'static str,
    segments: i32,
    credits: i64,
    sender: String,
    debt_id: Option<uuid::Uuid>,
    invoice_number: Option<String>,
    respect_quiet_hours: bool,
    idempotency_key: Option<String>,
    request_hash: Vec<u8>,
}

impl Acceptor {
    /// Up to 64 messages per insert, two inserts at a time (on the current tokio runtime): with
    /// one, the API's clients queued behind it and fewer messages/s came through.
    pub fn start(pool: PgPool, queues: Queues) -> Self {
        let group = GroupCommit::start("accept", 64, 2, move |rows: Vec<Row>| {
            let (pool, queues) = (pool.clone(), queues.clone());
            async move {
                let run = |rows: Vec<Row>| {
                    let (pool, queues) = (pool.clone(), queues.clone());
                    async move {
                        let written = write(&pool, &queues, &rows).await?;
                        Ok(written.into_iter().map(Ok).collect())
                    }
                };
                together_or_alone(rows, run, |e| Err(Arc::new(e))).await
            }
        });
        Acceptor { group }
    }
}

/// Accepts one message priced by `card` (a refused destination writes nothing).
pub async fn accept(
    acceptor: &Acceptor,
    pool: &PgPool,
    card: &RateCard,
    company: CompanyId,
    country: Country,
    req: AcceptRequest,
) -> Result<Acceptance, AcceptError> {
    let to = E164::parse_sms(&req.to, country)?;
    let body = SmsBody::parse(&req.body)?;
    let segments = body.segments();
    let hash = request_hash(&to, &body, &req);

    // A replay answers the message accepted then, at its price then, whatever the card says now.
    if let Some(key) = &req.idempotency_key
        && let Some(existing) = by_key(pool, company, key).await?
    {
        return replay(existing, &hash);
    }
    let price = card.price(&to)?;
    let credits = i64::from(segments.count) * price.credits_per_segment;
    let written = acceptor
        .group
        .run(Row {
            id: MessageId::new(),
            company,
            to: to.as_str().to_string(),
            body: body.as_str().to_string(),
            encoding: segments.encoding.as_str(),
            segments: segments.count as i32,
            credits,
            sender: req.sender.clone(),
            debt_id: req.debt_id,
            invoice_number: req.invoice_number.clone(),
            respect_quiet_hours: req.respect_quiet_hours,
            idempotency_key: req.idempotency_key.clone(),
            request_hash: hash.clone(),
        })
        .await
        .map_err(|e| match e {
            GroupError::Database(e) => AcceptError::Database(e),
            GroupError::Stopped => sqlx::Error::PoolClosed.into(),
        })?
        .map_err(AcceptError::Database)?;
    let Some(message) = written else {
        // Nothing written: the key was taken (by a request that raced this one), or else the
        // number was opted out when the insert ran. Deduced, not read again: an opt-out removed
        // since must not turn this answer into something else. Messages are never deleted, so
        // a taken key is still there.
        if let Some(key) = &req.idempotency_key
            && let Some(existing) = by_key(pool, company, key).await?
        {
            return replay(existing, &hash);
        }
        return Err(AcceptError::OptedOut(to));
    };
    Ok(Acceptance {
        message,
        replay: false,
    })
}

/// Inserts `rows` (skipping opted-out numbers and Idempotency-Keys already taken), then
/// enqueues a `SendSms` for each written one. Answers per row: the message, or `None`.
///
/// The rows are written first and are the truth: if the enqueue fails, or the process dies
/// before it, the reconciler enqueues every message left `queued`.
async fn write(
    pool: &PgPool,
    queues: &Queues,
    rows: &[Row],
) -> Result<Vec<Option<Message>>, sqlx::Error> {
    let written: Vec<Message> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH m AS (
             INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, sender, debt_id,
                                   invoice_number, respect_quiet_hours, idempotency_key, request_hash)
             SELECT t.* FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[],
                                    $7::bigint[], $8::text[], $9::uuid[], $10::text[], $11::bool[],
                                    $12::text[], $13::bytea[])
                 AS t(id, company_id, to_number, body, encoding, segments, credits, sender, debt_id,
                      invoice_number, respect_quiet_hours, idempotency_key, request_hash)
             WHERE NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.company_id = t.company_id AND o.phone = t.to_number)
             -- The predicate lets a partial unique index (of the keys given) take the
             -- full one's place in a later release; the full one satisfies it too.
             ON CONFLICT (company_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING *)
         SELECT {COLUMNS} FROM m"
    )))
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.company).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.to.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.encoding).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.segments).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.credits).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.sender.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.debt_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.invoice_number.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.respect_quiet_hours).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.idempotency_key.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.request_hash.as_slice()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let jobs: Vec<SendSms> = written
        .iter()
        .map(|m| SendSms { message_id: m.id.0 })
        .collect();
    if !jobs.is_empty()
        && let Err(e) = queues.enqueue_bulk(&jobs, None).await
    {
        tracing::warn!(messages = jobs.len(), error = %e, "enqueue failed; the reconciler will retry");
    }
    let mut by_id: HashMap<MessageId, Message> = written.into_iter().map(|m| (m.id, m)).collect();
    Ok(rows.iter().map(|r| by_id.remove(&r.id)).collect())
}

async fn by_key(
    pool: &PgPool,
    company: CompanyId,
    key: &str,
) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.company_id = $1 AND m.idempotency_key = $2"
    )))
    .bind(company)
    .bind(key)
    .fetch_optional(pool)
    .await
}

fn replay(existing: Message, hash: &[u8]) -> Result<Acceptance, AcceptError> {
    if existing.request_hash.as_deref() == Some(hash) {
        Ok(Acceptance {
            message: existing,
            replay: true,
        })
    } else {
        Err(AcceptError::KeyReused)
    }
}

/// What makes two requests "the same message": destination, body and references.
fn request_hash(to: &E164, body: &SmsBody, req: &AcceptRequest) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [
        to.as_str(),
        body.as_str(),
        &req.debt_id.map(|d| d.to_string()).unwrap_or_default(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(req.invoice_number.as_deref().unwrap_or_default().as_bytes());
    h.update([u8::from(req.respect_quiet_hours)]);
    h.finalize().to_vec()
}
