//! The `payments` rows and their history. Status changes go through [`set_status`], which
//! refuses backward moves and records who or what made each one.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::{Method, PaymentError, Status};
use crate::domain::{CompanyId, PaymentId};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Payment {
    pub id: PaymentId,
    pub company_id: CompanyId,
    pub package_id: String,
    #[sqlx(try_from = "String")]
    pub method: Method,
    #[sqlx(try_from = "String")]
    pub status: Status,
    /// Credits the package gives.
    pub credits: i64,
    /// Credits an operator granted instead (an accepted under-payment).
    pub credits_granted: Option<i64>,
    pub amount: Decimal,
    pub currency: String,
    pub amount_received: Option<Decimal>,
    pub phone: Option<String>,
    /// M-Pesa CheckoutRequestID or Stripe Checkout Session id.
    pub provider_ref: Option<String>,
    /// Proof the money arrived: M-Pesa receipt, Stripe PaymentIntent, bank reference.
    pub receipt: Option<String>,
    pub transfer_reference: Option<String>,
    pub checkout_url: Option<String>,
    pub payment_intent: Option<String>,
    pub callback_result_code: Option<i32>,
    pub callback_result_desc: Option<String>,
    pub callback_amount: Option<Decimal>,
    pub callback_receipt: Option<String>,
    pub callback_at: Option<DateTime<Utc>>,
    pub credits_reversed: i64,
    pub reversal_shortfall: i64,
    pub failure_reason: Option<String>,
    pub flagged_reason: Option<String>,
    pub bank_reference: Option<String>,
    pub requested_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// Whether the payment's time is up (its push, session or transfer window has passed).
    pub fn past_expiry(&self) -> bool {
        self.expires_at.is_some_and(|at| at < Utc::now())
    }

    /// An M-Pesa payment in Tanzania, through Vodacom's OpenAPI (Daraja takes only KES).
    pub fn is_vodacom(&self) -> bool {
        self.method == Method::Mpesa && self.currency == "TZS"
    }

    /// Credits this payment is worth once paid.
    pub fn credits_due(&self) -> i64 {
        self.credits_granted.unwrap_or(self.credits)
    }
}

const COLUMNS: &str = "id, company_id, package_id, method, status, credits, credits_granted, amount, currency,
    amount_received, phone, provider_ref, receipt, transfer_reference, checkout_url, payment_intent,
    callback_result_code, callback_result_desc, callback_amount, callback_receipt, callback_at,
    credits_reversed, reversal_shortfall, failure_reason, flagged_reason, bank_reference, requested_by,
    expires_at, created_at, updated_at";

/// One recorded status change.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PaymentEvent {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub detail: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// A new payment, before anything is asked of a provider.
pub(super) struct NewPayment<'a> {
    pub id: PaymentId,
    pub company: CompanyId,
    pub package_id: &'a str,
    pub method: Method,
    pub credits: i64,
    pub amount: Decimal,
    pub currency: &'a str,
    pub phone: Option<&'a str>,
    pub callback_token_hash: Option<&'a [u8]>,
    pub transfer_reference: Option<&'a str>,
    pub requested_by: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Inserts `p` as `initiated` with its first event. `None` when the company already used
/// this idempotency key (the caller returns that payment instead).
pub(super) async fn insert(
    conn: &mut PgConnection,
    p: &NewPayment<'_>,
) -> Result<Option<Payment>, PaymentError> {
    let row: Option<Payment> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (id, company_id, package_id, method, credits, amount, currency, phone,
             callback_token_hash, transfer_reference, requested_by, idempotency_key, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (company_id, idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(p.id)
    .bind(p.company)
    .bind(p.package_id)
    .bind(p.method.as_str())
    .bind(p.credits)
    .bind(p.amount)
    .bind(p.currency)
    .bind(p.phone)
    .bind(p.callback_token_hash)
    .bind(p.transfer_reference)
    .bind(p.requested_by)
    .bind(p.idempotency_key)
    .bind(p.expires_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(payment) = &row {
        record(
            conn,
            payment.id,
            None,
            Status::Initiated,
            p.requested_by,
            None,
        )
        .await?;
    }
    Ok(row)
}

pub async fn find(pool: &PgPool, id: PaymentId) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The payment if it belongs to `company` (another company's id reads as missing).
pub async fn find_for_company(
    pool: &PgPool,
    company: CompanyId,
    id: PaymentId,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 AND company_id = $2"
    )))
    .bind(id)
    .bind(company)
    .fetch_optional(pool)
    .await
}

pub(super) async fn find_by_key(
    conn: &mut PgConnection,
    company: CompanyId,
    key: &str,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE company_id = $1 AND idempotency_key = $2"
    )))
    .bind(company)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Newest first, optionally only one status.
pub async fn list_for_company(
    pool: &PgPool,
    company: CompanyId,
    status: Option<Status>,
    limit: i64,
) -> Result<Vec<Payment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE company_id = $1 AND ($2::text IS NULL OR status = $2)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )))
    .bind(company)
    .bind(status.map(Status::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The payment's history, oldest first.
pub async fn events(pool: &PgPool, id: PaymentId) -> Result<Vec<PaymentEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT from_status, to_status, actor, detail, created_at FROM payment_events
         WHERE payment_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Notes that a provider's event said the payment is paid (the first time only), so that the
/// reconciler checks it if it stays open (`due_for_check`).
pub(super) async fn note_said_paid(
    conn: &mut PgConnection,
    id: PaymentId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET said_paid_at = COALESCE(said_paid_at, now()) WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the Stripe PaymentIntent a signed event names for the payment, unless one is recorded.
pub(super) async fn note_payment_intent(
    conn: &mut PgConnection,
    id: PaymentId,
    payment_intent: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET payment_intent = COALESCE(payment_intent, $2) WHERE id = $1")
        .bind(id)
        .bind(payment_intent)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reads and locks the payment for the rest of the caller's transaction: every change of a
/// payment happens under this lock, so concurrent callbacks and jobs take turns.
pub(super) async fn lock(conn: &mut PgConnection, id: PaymentId) -> Result<Payment, PaymentError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(PaymentError::NotFound(id))
}

/// Moves a locked payment to `to` (forward only) and records it.
pub(super) async fn set_status(
    conn: &mut PgConnection,
    p: &mut Payment,
    to: Status,
    actor: &str,
    detail: serde_json::Value,
) -> Result<(), PaymentError> {
    if !p.status.can_move_to(to) {
        return Err(PaymentError::Transition {
            id: p.id,
            from: p.status.as_str(),
            to: to.as_str(),
        });
    }
    sqlx::query("UPDATE payments SET status = $2, updated_at = now() WHERE id = $1")
        .bind(p.id)
        .bind(to.as_str())
        .execute(&mut *conn)
        .await?;
    record(conn, p.id, Some(p.status), to, actor, Some(detail)).await?;
    if matches!(to, Status::Failed | Status::Cancelled | Status::Expired) {
        tracing::info!(payment = %p.id, from = p.status.as_str(), to = to.as_str(), actor, "payment ended");
    }
    p.status = to;
    Ok(())
}

/// Ends an open payment with `to` and a reason; an already ended or paid one is left alone
/// (a late or repeated signal). Returns whether it moved.
pub(super) async fn end(
    conn: &mut PgConnection,
    p: &mut Payment,
    to: Status,
    reason: &str,
    actor: &str,
) -> Result<bool, PaymentError> {
    if !p.status.is_open() {
        return Ok(false);
    }
    sqlx::query("UPDATE payments SET failure_reason = $2 WHERE id = $1")
        .bind(p.id)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    p.failure_reason = Some(reason.to_string());
    set_status(conn, p, to, actor, serde_json::json!({ "reason": reason })).await?;
    Ok(true)
}

/// Marks a payment for the operator (an amount that does not match, a refund shortfall).
pub(super) async fn flag(
    conn: &mut PgConnection,
    p: &mut Payment,
    reason: &str,
) -> Result<(), sqlx::Error> {
    tracing::error!(payment = %p.id, company = %p.company_id, reason, "payment flagged for the operator");
    sqlx::query("UPDATE payments SET flagged_reason = $2, updated_at = now() WHERE id = $1")
        .bind(p.id)
        .bind(reason)
        .execute(conn)
        .await?;
    p.flagged_reason = Some(reason.to_string());
    Ok(())
}

async fn record(
    conn: &mut PgConnection,
    id: PaymentId,
    from: Option<Status>,
    to: Status,
    actor: &str,
    detail: Option<serde_json::Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_events (payment_id, from_status, to_status, actor, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(actor)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Payments the sweep should have checked: M-Pesa pushes with no result after `quiet_for`
/// (lost callbacks are settled through the STK Push Query), checkouts past their expiry or
/// still open `quiet_for` after Stripe said they were paid (the check's job lost), and paid
/// payments not credited after `quiet_for` (a crash between approval and its job).
pub async fn due_for_check(
    pool: &PgPool,
    quiet_for: std::time::Duration,
    limit: i64,
) -> Result<Vec<PaymentId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM payments
         WHERE (status IN ('initiated', 'pending') AND method = 'mpesa'
                AND updated_at < now() - make_interval(secs => $1))
            OR (status IN ('initiated', 'pending') AND method = 'card'
                AND (expires_at < now() OR said_paid_at < now() - make_interval(secs => $1)))
            OR (status = 'paid' AND updated_at < now() - make_interval(secs => $1))
         ORDER BY updated_at LIMIT $2",
    )
    .bind(quiet_for.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}
