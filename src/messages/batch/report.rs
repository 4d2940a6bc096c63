//! A batch's progress (`GET /v1/batches/{id}`): counts by status, refunds, credits charged.

use serde::Serialize;
use sqlx::PgPool;

/// Counts by status and credits charged, for `GET /v1/batches/{id}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    pub batch_id: uuid::Uuid,
    pub total: i32,
    pub accepted: i32,
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Messages whose credits were given back (failed or undelivered after being sent).
    pub refunded: i64,
    /// Messages not yet final or sent: `queued` or `sending`.
    pub remaining: i64,
    pub credits_charged: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the rest is expected to be sent (`messages::eta`); `null` once nothing is queued, or
    /// when it cannot be estimated now.
    pub estimate: Option<crate::messages::eta::Estimate>,
}

/// Per status of the batch's messages: how many, how many were refunded, and the credits charged
/// net of refunds. One pass over the batch's rows (by `messages_batch_idx`), each message's
/// committed hold and refund looked up by its own index, so the cost follows the batch's size,
/// not the tables'. (Joins let the planner hash every refund, or every hold, in the fleet for a
/// small table.) The batch is a value computed at the start, as in the listing
/// (`messages::store::list_sql`): the plan cannot depend on it, so a prepared report moves to
/// its generic plan instead of being planned for every request. (`OFFSET 0` keeps the inner
/// select whole, so each message's refund is looked up once, not once per use.)
pub const REPORT_SQL: &str = "SELECT status, count(*)::bigint, count(refund)::bigint,
        (COALESCE(sum(charged), 0) - COALESCE(sum(refund), 0))::bigint
   FROM (SELECT m.status,
                (SELECT sum(h.charged) FROM holds h
                  WHERE h.message_id = m.id AND h.status = 'committed') AS charged,
                (SELECT r.available_delta FROM ledger_entries r
                  WHERE r.message_id = m.id AND r.kind = 'refund') AS refund
           FROM messages m WHERE m.batch_id = (SELECT $1::uuid)
         OFFSET 0) AS b
  GROUP BY status";

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
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(REPORT_SQL)
        .bind(batch)
        .fetch_all(pool)
        .await?;
    let refunded = rows.iter().map(|r| r.2).sum();
    let charged = rows.iter().map(|r| r.3).sum();
    let counts = rows.into_iter().map(|(status, n, _, _)| (status, n));
    let by_status: std::collections::BTreeMap<String, i64> = counts.collect();
    let remaining = ["queued", "sending"]
        .iter()
        .filter_map(|s| by_status.get(*s))
        .sum();
    Ok(Some(BatchReport {
        batch_id: batch,
        total,
        accepted,
        by_status,
        refunded,
        remaining,
        credits_charged: charged,
        created_at,
        estimate: None,
    }))
}
