//! Accepting a batch (up to 10,000 messages in one request): each item is validated on its own,
//! the accepted ones are written in one transaction (bulk insert) and enqueued with bulk pushes.
//! When the company's credits cannot cover them the whole batch is refused up front, unless the
//! caller allows partial sending, which accepts items in order while credits last.
//!
//! An item is an explicit body or a template name with values, rendered here (a missing value
//! refuses that item, naming the variable). The steps are public ([`prepare`],
//! [`Prepared::fit_credits`], [`write`], [`enqueue`]) so the overdue-debt sweep sends its
//! reminders through the same path, adding its own claim on the debts to the transaction.

use std::collections::HashSet;

use copcca_jobs::SendSms;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use super::rates::RateCard;
use crate::accounts::Company;
use crate::domain::{CompanyId, E164, SmsBody};
use crate::ledger;
use crate::queue::Queues;
use crate::templates::{Language, Vars};
use texts::Texts;

mod report;
mod texts;

pub use report::{BatchReport, REPORT_SQL, report};

pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone)]
pub struct BatchItem {
    pub to: String,
    pub content: Content,
    /// The debt the message is about (sweeps set it; it shows in `sms_logs`).
    pub debt_id: Option<uuid::Uuid>,
    pub invoice_number: Option<String>,
}

/// What an item's text is made of.
#[derive(Debug, Clone)]
pub enum Content {
    Body(String),
    /// Rendered from the company's template (or the default) with these values.
    Template {
        name: String,
        language: Language,
        vars: Vars,
    },
    /// An item the caller shaped wrongly (say, both a body and a template), refused as is.
    Refused {
        code: &'static str,
        detail: String,
    },
}

impl BatchItem {
    pub fn body(to: impl Into<String>, body: impl Into<String>) -> Self {
        BatchItem {
            to: to.into(),
            content: Content::Body(body.into()),
            debt_id: None,
            invoice_number: None,
        }
    }
}

/// One refused item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Rejected {
    pub index: usize,
    /// `invalid_to`, `destination_unpriced`, `destination_forbidden`, `destination_restricted`,
    /// `invalid_body`, `unknown_template`, `missing_variable`, `invalid_variable`,
    /// `recipient_opted_out`, `insufficient_credits`.
    pub code: String,
    /// Names the variable for `missing_variable` and `invalid_variable`.
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct BatchAcceptance {
    pub batch_id: uuid::Uuid,
    pub accepted: usize,
    /// The accepted messages' credits, each segments x its destination's rate.
    pub credits: i64,
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
    debt_id: Option<uuid::Uuid>,
    invoice_number: Option<String>,
}

/// A batch checked item by item: what will be written, and what was refused (by index).
pub struct Prepared {
    valid: Vec<Valid>,
    rejected: Vec<Rejected>,
    hash: Vec<u8>,
}

impl Prepared {
    pub fn accepted(&self) -> usize {
        self.valid.len()
    }

    /// The accepted items' credits.
    pub fn credits(&self) -> i64 {
        self.valid.iter().map(|v| v.credits).sum()
    }

    pub fn rejected(&self) -> &[Rejected] {
        &self.rejected
    }

    /// Rewrites refusals' details (a sweep names the debt in them).
    pub fn annotate_rejected(&mut self, f: impl Fn(&Rejected) -> String) {
        for r in &mut self.rejected {
            r.detail = f(r);
        }
    }

    /// The debts the accepted items remind of.
    pub fn debt_ids(&self) -> Vec<uuid::Uuid> {
        self.valid.iter().filter_map(|v| v.debt_id).collect()
    }

    /// Keeps only the items about `debts` (those a sweep could claim); the others are dropped
    /// silently: another run is reminding them.
    pub fn retain_debts(&mut self, debts: &HashSet<uuid::Uuid>) {
        self.valid
            .retain(|v| v.debt_id.is_some_and(|d| debts.contains(&d)));
    }

    /// Compares the accepted items' credits with `available`: all of them fit, or (partial) the
    /// first ones that fit are kept and the rest refused, or the whole batch is refused.
    pub fn fit_credits(&mut self, available: i64, allow_partial: bool) -> Result<(), BatchError> {
        let needed: i64 = self.valid.iter().map(|v| v.credits).sum();
        if needed > available {
            if !allow_partial {
                return Err(BatchError::InsufficientCredits { needed, available });
            }
            let mut left = available;
            let rejected = &mut self.rejected;
            self.valid.retain(|v| {
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
        self.rejected.sort_by_key(|r| r.index);
        Ok(())
    }
}

/// How the batch row is recorded.
pub struct NewBatch<'a> {
    pub allow_partial: bool,
    pub idempotency_key: Option<&'a str>,
    /// `user:<id>`, `api_key:<id>`, `sweep`: the batch's creator and its messages' sender.
    pub sender: &'a str,
    /// The sweep run that makes these reminders (at most one message per debt and run).
    pub sweep_run: Option<&'a str>,
}

/// What [`write`] stored.
pub struct Written {
    pub batch_id: uuid::Uuid,
    pub message_ids: Vec<uuid::Uuid>,
}

/// Accepts a batch from the API: check (pricing each item on `card`), fit to the credits, write,
/// enqueue.
#[allow(clippy::too_many_arguments)]
pub async fn accept_batch(
    pool: &PgPool,
    queues: &Queues,
    card: &RateCard,
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
    let mut prepared = prepare(pool, card, company, items).await?;
    prepared.hash = hash;
    let available = ledger::balance(pool, company.id).await?.available.get();
    prepared.fit_credits(available, allow_partial)?;

    let mut tx = pool.begin().await?;
    let header = NewBatch {
        allow_partial,
        idempotency_key: idempotency_key.as_deref(),
        sender,
        sweep_run: None,
    };
    let Some(written) = write(&mut tx, company.id, &prepared, &header).await? else {
        drop(tx); // lost a race with the same key: the other request's batch is the answer
        let key = idempotency_key.as_deref().unwrap_or_default();
        return existing(pool, company, key, &prepared.hash)
            .await?
            .ok_or(BatchError::KeyReused);
    };
    tx.commit().await?;
    enqueue(queues, &written).await;
    Ok(BatchAcceptance {
        batch_id: written.batch_id,
        accepted: written.message_ids.len(),
        credits: prepared.credits(),
        rejected: prepared.rejected,
        replay: false,
    })
}

/// Checks every item on its own: the number and its price on `card`, the text (rendering
/// templates), then the opt-out list in one query.
pub async fn prepare(
    pool: &PgPool,
    card: &RateCard,
    company: &Company,
    items: Vec<BatchItem>,
) -> Result<Prepared, BatchError> {
    let country = company.country;
    let mut texts = Texts::new(pool, company);
    let mut rejected = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let refuse = |code: &str, detail: String| Rejected {
            index,
            code: code.into(),
            detail,
        };
        let to = match E164::parse_sms(&item.to, country) {
            Ok(t) => t,
            Err(e) => {
                rejected.push(refuse("invalid_to", e.to_string()));
                continue;
            }
        };
        let price = match card.price(&to) {
            Ok(p) => p,
            Err(refusal) => {
                rejected.push(refuse(refusal.code(), refusal.to_string()));
                continue;
            }
        };
        let text = match texts.text(item.content).await? {
            Ok(t) => t,
            Err((code, detail)) => {
                rejected.push(refuse(code, detail));
                continue;
            }
        };
        let body = match SmsBody::parse(&text) {
            Ok(b) => b,
            Err(e) => {
                rejected.push(refuse("invalid_body", e.to_string()));
                continue;
            }
        };
        let seg = body.segments();
        let credits = i64::from(seg.count) * price.credits_per_segment;
        valid.push(Valid {
            index,
            encoding: seg.encoding.as_str(),
            segments: seg.count as i32,
            credits,
            to,
            body,
            debt_id: item.debt_id,
            invoice_number: item.invoice_number,
        });
    }
    let numbers: Vec<&str> = valid.iter().map(|v| v.to.as_str()).collect();
    let opted: HashSet<String> =
        sqlx::query_scalar("SELECT phone FROM opt_outs WHERE company_id = $1 AND phone = ANY($2)")
            .bind(company.id)
            .bind(&numbers)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    valid.retain(|v| {
        let out = opted.contains(v.to.as_str());
        if out {
            rejected.push(Rejected {
                index: v.index,
                code: "recipient_opted_out".into(),
                detail: format!("{} has opted out", v.to),
            });
        }
        !out
    });
    rejected.sort_by_key(|r| r.index);
    Ok(Prepared {
        valid,
        rejected,
        hash: Vec::new(),
    })
}

/// Writes the batch row and its messages (one bulk insert) on `conn`, inside the caller's
/// transaction. `None` when a batch with the same idempotency key exists already.
pub async fn write(
    conn: &mut PgConnection,
    company: CompanyId,
    prepared: &Prepared,
    batch: &NewBatch<'_>,
) -> Result<Option<Written>, sqlx::Error> {
    let batch_id = uuid::Uuid::now_v7();
    let valid = &prepared.valid;
    let ids: Vec<uuid::Uuid> = valid.iter().map(|_| uuid::Uuid::now_v7()).collect();
    let inserted = sqlx::query(
        "INSERT INTO message_batches (id, company_id, total, accepted, rejected, allow_partial, created_by, idempotency_key, request_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (company_id, idempotency_key) DO NOTHING",
    )
    .bind(batch_id)
    .bind(company)
    .bind((valid.len() + prepared.rejected.len()) as i32)
    .bind(valid.len() as i32)
    .bind(serde_json::to_value(&prepared.rejected).expect("serialisable"))
    .bind(batch.allow_partial)
    .bind(batch.sender)
    .bind(batch.idempotency_key)
    .bind(&prepared.hash)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO messages (id, company_id, batch_id, to_number, body, encoding, segments, credits, sender,
                               debt_id, invoice_number, sweep_run)
         SELECT id, $1, $2, to_number, body, encoding, segments, credits, $3, debt_id, invoice_number, $4
         FROM UNNEST($5::uuid[], $6::text[], $7::text[], $8::text[], $9::int[], $10::bigint[], $11::uuid[], $12::text[])
              AS t(id, to_number, body, encoding, segments, credits, debt_id, invoice_number)",
    )
    .bind(company)
    .bind(batch_id)
    .bind(batch.sender)
    .bind(batch.sweep_run)
    .bind(&ids)
    .bind(valid.iter().map(|v| v.to.as_str()).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.body.as_str()).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.encoding).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.segments).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.credits).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.debt_id).collect::<Vec<_>>())
    .bind(valid.iter().map(|v| v.invoice_number.as_deref()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(Some(Written {
        batch_id,
        message_ids: ids,
    }))
}

/// Enqueues the written messages with bulk pushes. A failure is only logged: the rows are
/// `queued` and the reconciler enqueues them.
pub async fn enqueue(queues: &Queues, written: &Written) {
    let jobs: Vec<SendSms> = written
        .message_ids
        .iter()
        .map(|id| SendSms { message_id: *id })
        .collect();
    if let Err(e) = queues.enqueue_bulk(&jobs, None).await {
        tracing::warn!(batch = %written.batch_id, error = %e, "batch enqueue failed; the reconciler will retry");
    }
}

async fn existing(
    pool: &PgPool,
    company: &Company,
    key: &str,
    hash: &[u8],
) -> Result<Option<BatchAcceptance>, BatchError> {
    type Found = (uuid::Uuid, i32, serde_json::Value, Option<Vec<u8>>, i64);
    let row: Option<Found> = sqlx::query_as(
        "SELECT b.id, b.accepted, b.rejected, b.request_hash,
                (SELECT COALESCE(sum(m.credits), 0)::bigint FROM messages m WHERE m.batch_id = b.id)
         FROM message_batches b WHERE b.company_id = $1 AND b.idempotency_key = $2",
    )
    .bind(company.id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((_, _, _, stored, _)) if stored.as_deref() != Some(hash) => Err(BatchError::KeyReused),
        Some((batch_id, accepted, rejected, _, credits)) => Ok(Some(BatchAcceptance {
            batch_id,
            accepted: accepted as usize,
            credits,
            rejected: serde_json::from_value(rejected).unwrap_or_default(),
            replay: true,
        })),
    }
}

/// What makes two batch requests "the same batch": every item's number and content, in order.
fn request_hash(items: &[BatchItem], allow_partial: bool) -> Vec<u8> {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update(s.as_bytes());
        h.update([0u8]);
    };
    for item in items {
        field(&item.to);
        match &item.content {
            Content::Body(b) => field(b),
            Content::Template {
                name,
                language,
                vars,
            } => {
                field("\u{1}template");
                field(name);
                field(language.as_str());
                // A BTreeMap: sorted, so the order the caller wrote them in does not matter.
                for (k, v) in vars {
                    field(k);
                    field(v);
                }
            }
            Content::Refused { code, detail } => {
                field("\u{1}refused");
                field(code);
                field(detail);
            }
        }
        field(&item.debt_id.map(|d| d.to_string()).unwrap_or_default());
        field(item.invoice_number.as_deref().unwrap_or_default());
        field("\u{2}");
    }
    h.update([u8::from(allow_partial)]);
    h.finalize().to_vec()
}
