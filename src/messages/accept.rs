//! Accepting a message from the CRM (DESIGN.md section 5, step 1): validate and normalise, check
//! the opt-out list, write the row `queued`, enqueue `SendSms`.
//!
//! The row is written first and is the truth. If the process dies before the enqueue, or Redis
//! loses the job, the reconciler re-enqueues every message left `queued`: nothing is lost.

use copcca_jobs::SendSms;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::opt_outs;
use super::store::{COLUMNS, Message};
use crate::accounts::Company;
use crate::domain::{BodyError, Country, E164, MessageId, PhoneError, SmsBody};
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
    #[error("{0} has opted out of messages from this company")]
    OptedOut(E164),
    #[error("this Idempotency-Key was used for a different message")]
    KeyReused,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone)]
pub struct Acceptance {
    pub message: Message,
    /// True when the Idempotency-Key had already created this message.
    pub replay: bool,
}

/// Credits per segment for a destination. One credit is one segment to a home-market number;
/// the rate card is flat at 1 until the operator prices other destinations.
pub(crate) fn rate(_to: &E164) -> i64 {
    1
}

/// Credits per segment to a number in `country` (a quote made before the number is known).
pub(crate) fn home_rate(_country: Country) -> i64 {
    1
}

pub async fn accept(
    pool: &PgPool,
    queues: &Queues,
    company: &Company,
    req: AcceptRequest,
) -> Result<Acceptance, AcceptError> {
    let country: Country = company.country.parse().unwrap_or(Country::TZ);
    let to = E164::parse_sms(&req.to, country)?;
    let body = SmsBody::parse(&req.body)?;
    let segments = body.segments();
    let credits = i64::from(segments.count) * rate(&to);
    let hash = request_hash(&to, &body, &req);

    if let Some(key) = &req.idempotency_key
        && let Some(existing) = by_key(pool, company, key).await?
    {
        return replay(existing, &hash);
    }
    // One statement writes the row unless the number opted out (or the key raced another
    // request); only when nothing was written do we ask which.
    let inserted: Option<Message> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH m AS (
             INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, sender, debt_id,
                                   invoice_number, respect_quiet_hours, idempotency_key, request_hash)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
             WHERE NOT EXISTS (SELECT 1 FROM opt_outs WHERE company_id = $2 AND phone = $3)
             ON CONFLICT (company_id, idempotency_key) DO NOTHING
             RETURNING *)
         SELECT {COLUMNS} FROM m"
    )))
    .bind(MessageId::new())
    .bind(company.id)
    .bind(to.as_str())
    .bind(body.as_str())
    .bind(segments.encoding.as_str())
    .bind(segments.count as i32)
    .bind(credits)
    .bind(&req.sender)
    .bind(req.debt_id)
    .bind(&req.invoice_number)
    .bind(req.respect_quiet_hours)
    .bind(&req.idempotency_key)
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let Some(message) = inserted else {
        if opt_outs::is_opted_out(pool, company.id, &to).await? {
            return Err(AcceptError::OptedOut(to));
        }
        // Lost a race with the same key: the other request's row is the answer.
        let key = req.idempotency_key.as_deref().unwrap_or_default();
        let existing = by_key(pool, company, key)
            .await?
            .ok_or(AcceptError::KeyReused)?;
        return replay(existing, &hash);
    };
    if let Err(e) = queues
        .enqueue(&SendSms {
            message_id: message.id.0,
        })
        .await
    {
        // The row is queued; the reconciler enqueues it when Redis is back.
        tracing::warn!(message = %message.id, error = %e, "enqueue failed; the reconciler will retry");
    }
    Ok(Acceptance {
        message,
        replay: false,
    })
}

async fn by_key(
    pool: &PgPool,
    company: &Company,
    key: &str,
) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.company_id = $1 AND m.idempotency_key = $2"
    )))
    .bind(company.id)
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
