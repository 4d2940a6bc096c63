//! Accepting a batch (up to 10,000 messages in one request): each item is validated on its own,
//! the accepted ones are written in one transaction (bulk insert) and enqueued with bulk pushes.
//! When the company's credits cannot cover them the whole batch is refused up front, unless the
//! caller allows partial sending, which accepts items in order while credits last.

use copcca_jobs::SendSms;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::accept::rate;
use crate::accounts::Company;
use crate::domain::{Country, E164, SmsBody};
use crate::ledger;
use crate::queue::Queues;

pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone)]
pub struct BatchItem {
    pub to: String,
    pub body: String,
}

/// One refused item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Rejected {
    pub index: usize,
    /// `invalid_to`, `invalid_body`, `recipient_opted_out`, `insufficient_credits`.
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct BatchAcceptance {
    pub batch_id: uuid::Uuid,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    pub replay: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("a batch holds 1 to {MAX_BATCH} messages, not {0}")]
    Size(usize),
    #[error("the batch needs {needed} credits and {available} are available")]
    InsufficientCredits { needed: i64, available: i64 },
    #[error("this Idempotency-Key was used for a different batch")]
    KeyReused,
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

struct Valid {
    index: usize,
    to: E164,
    body: SmsBody,
    encoding: &'static str,
    segments: i32,
    credits: i64,
}

pub async fn accept_batch(
    pool: &PgPool,
    queues: &Queues,
    company: &Company,
    items: Vec<BatchItem>,
    allow_partial: bool,
    idempotency_key: Option<String>,
    sender: &str,
) -> Result<BatchAcceptance, BatchError> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(BatchError::Size(items.len()));
    }
    let hash = request_hash(&items, allow_partial);
    if let Some(key) = &idempotency_key
        && let Some(found) = existing(pool, company, key, &hash).await?
    {
        return Ok(found);
    }
    let country: Country = company.country.parse().unwrap_or(Country::TZ);
    let mut rejected = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let to = match E164::parse_sms(&item.to, country) {
            Ok(t) => t,
            Err(e) => {
                rejected.push(Rejected {
                    index,
                    code: "invalid_to".into(),
                    detail: e.to_string(),
                });
                continue;
            }
        };
        let body = match SmsBody::parse(&item.body) {
            Ok(b) => b,
            Err(e) => {
                rejected.push(Rejected {
                    index,
                    code: "invalid_body".into(),
                    detail: e.to_string(),
                });
                continue;
            }
        };
        let seg = body.segments();
        let credits = i64::from(seg.count) * rate(&to);
        valid.push(Valid {
            index,
            encoding: seg.encoding.as_str(),
            segments: seg.count as i32,
            credits,
            to,
            body,
        });
    }
    let numbers: Vec<&str> = valid.iter().map(|v| v.to.as_str()).collect();
    let opted: Vec<String> =
        sqlx::query_scalar("SELECT phone FROM opt_outs WHERE company_id = $1 AND phone = ANY($2)")
            .bind(company.id)
            .bind(&numbers)
            .fetch_all(pool)
            .await?;
    valid.retain(|v| {
        let out = opted.iter().any(|p| p == v.to.as_str());
        if out {
            rejected.push(Rejected {
                index: v.index,
                code: "recipient_opted_out".into(),
                detail: format!("{} has opted out", v.to),
            });
        }
        !out
    });

    let available = ledger::balance(pool, company.id).await?.available.get();
    let needed: i64 = valid.iter().map(|v| v.credits).sum();
    if needed > available {
        if !allow_partial {
            return Err(BatchError::InsufficientCredits { needed, available });
        }
        let mut left = available;
        valid.retain(|v| {
            let fits = v.credits <= left;
            if fits {
                left -= v.credits;
            } else {
                rejected.push(Rejected {
                    index: v.index,
                    code: "insufficient_credits".into(),
                    detail: "not enough credits left".into(),
                });
            }
            fits
        });
    }
    rejected.sort_by_key(|r| r.index);

    let batch_id = uuid::Uuid::now_v7();
    let ids: Vec<uuid::Uuid> = valid.iter().map(|_| uuid::Uuid::now_v7()).collect();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO message_batches (id, company_id, total, accepted, rejected, allow_partial, created_by, idempotency_key, request_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (company_id, idempotency_key) DO NOTHING",
    )
    .bind(batch_id)
    .bind(company.id)
    .bind((valid.len() + rejected.len()) as i32)
    .bind(valid.len() as i32)
    .bind(serde_json::to_value(&rejected).expect("serialisable"))
    .bind(allow_partial)
    .bind(sender)
    .bind(&idempotency_key)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        drop(tx); // lost a race with the same key: the other request's batch is the answer
        let key = idempotency_key.as_deref().unwrap_or_default();
        return existing(pool, company, key, &hash)
            .await?
            .ok_or(BatchError::KeyReused);
    }
    sqlx::query(
        "INSERT INTO messages (id, company_id, batch_id, to_number, body, encoding, segments, credits, sender)
         SELECT id, $1, $2, to_number, body, encoding, segments, credits, $3
         FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[])
              AS t(id, to_number, body, encoding, segments, credits)",
    )
    .bind(company.id)
    .bind(batch_id)
    .bind(sender)
    .bind(&ids)
    .bind(valid.iter().map(|v| v.to.as_str()).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.body.as_str()).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.encoding).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.segments).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.credits).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let jobs: Vec<SendSms> = ids.iter().map(|id| SendSms { message_id: *id }).collect();
    if let Err(e) = queues.enqueue_bulk(&jobs, None).await {
        tracing::warn!(batch = %batch_id, error = %e, "batch enqueue failed; the reconciler will retry");
    }
    Ok(BatchAcceptance {
        batch_id,
        accepted: ids.len(),
        rejected,
        replay: false,
    })
}

async fn existing(
    pool: &PgPool,
    company: &Company,
    key: &str,
    hash: &[u8],
) -> Result<Option<BatchAcceptance>, BatchError> {
    let row: Option<(uuid::Uuid, i32, serde_json::Value, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT id, accepted, rejected, request_hash FROM message_batches WHERE company_id = $1 AND idempotency_key = $2",
    )
    .bind(company.id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((_, _, _, stored)) if stored.as_deref() != Some(hash) => Err(BatchError::KeyReused),
        Some((batch_id, accepted, rejected, _)) => Ok(Some(BatchAcceptance {
            batch_id,
            accepted: accepted as usize,
            rejected: serde_json::from_value(rejected).unwrap_or_default(),
            replay: true,
        })),
    }
}

fn request_hash(items: &[BatchItem], allow_partial: bool) -> Vec<u8> {
    let mut h = Sha256::new();
    for item in items {
        h.update(item.to.as_bytes());
        h.update([0u8]);
        h.update(item.body.as_bytes());
        h.update([1u8]);
    }
    h.update([u8::from(allow_partial)]);
    h.finalize().to_vec()
}

/// Counts by status and credits charged, for `GET /v1/batches/{id}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    pub batch_id: uuid::Uuid,
    pub total: i32,
    pub accepted: i32,
    #[schema(value_type = Object)]
    pub by_status: std::collections::BTreeMap<String, i64>,
    pub credits_charged: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn report(
    pool: &PgPool,
    company: crate::domain::CompanyId,
    batch: uuid::Uuid,
) -> Result<Option<BatchReport>, sqlx::Error> {
    let head: Option<(i32, i32, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT total, accepted, created_at FROM message_batches WHERE id = $1 AND company_id = $2",
    )
    .bind(batch)
    .bind(company)
    .fetch_optional(pool)
    .await?;
    let Some((total, accepted, created_at)) = head else {
        return Ok(None);
    };
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM messages WHERE batch_id = $1 GROUP BY status")
            .bind(batch)
            .fetch_all(pool)
            .await?;
    let charged: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(h.charged), 0)::bigint - COALESCE((SELECT sum(r.available_delta) FROM ledger_entries r
                 JOIN messages m2 ON m2.id = r.message_id WHERE m2.batch_id = $1 AND r.kind = 'refund'), 0)::bigint
         FROM holds h JOIN messages m ON m.id = h.message_id WHERE m.batch_id = $1 AND h.status = 'committed'",
    )
    .bind(batch)
    .fetch_one(pool)
    .await?;
    Ok(Some(BatchReport {
        batch_id: batch,
        total,
        accepted,
        by_status: counts.into_iter().collect(),
        credits_charged: charged,
        created_at,
    }))
}
