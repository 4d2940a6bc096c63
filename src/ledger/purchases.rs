//! Crediting a paid purchase.

use sqlx::{Connection, PgConnection};

use super::posting::{Posting, post};
use super::{Applied, EntryKind, LedgerError};
use crate::domain::{CompanyId, PaymentId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credited {
    pub payment: PaymentId,
    pub company: CompanyId,
    pub credits: i64,
    pub entry_id: i64,
}

/// Credits a `paid` payment to its company exactly once and moves it to `credited`, recording
/// the state change with `actor`. Crediting it again is a replay; a payment that is not (yet)
/// paid is refused with `PaymentNotPaid` and nothing changes.
pub async fn credit_purchase(
    conn: &mut PgConnection,
    payment: PaymentId,
    actor: &str,
) -> Result<Applied<Credited>, LedgerError> {
    let mut tx = conn.begin().await?;
    let row: Option<(CompanyId, String, i64)> = sqlx::query_as(
        "SELECT company_id, status, COALESCE(credits_granted, credits) FROM payments WHERE id = $1 FOR UPDATE",
    )
    .bind(payment)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((company, status, credits)) = row else {
        return Err(LedgerError::UnknownPayment(payment));
    };

    let existing: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, available_delta FROM ledger_entries WHERE payment_id = $1 AND kind = 'purchase'",
    )
    .bind(payment)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((entry_id, credits)) = existing {
        return Ok(Applied::replayed(Credited {
            payment,
            company,
            credits,
            entry_id,
        }));
    }
    if status != "paid" {
        return Err(LedgerError::PaymentNotPaid { payment, status });
    }

    let entry_id = post(
        &mut tx,
        Posting {
            company,
            kind: EntryKind::Purchase,
            available_delta: credits,
            reserved_delta: 0,
            hold: None,
            message: None,
            payment: Some(payment),
            adjustment: None,
            actor,
            reason: None,
        },
    )
    .await?;
    sqlx::query("UPDATE payments SET status = 'credited', updated_at = now() WHERE id = $1")
        .bind(payment)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO payment_events (payment_id, from_status, to_status, actor, detail)
         VALUES ($1, 'paid', 'credited', $2, jsonb_build_object('credits', $3::bigint, 'entry_id', $4::bigint))",
    )
    .bind(payment)
    .bind(actor)
    .bind(credits)
    .bind(entry_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Applied::first(Credited {
        payment,
        company,
        credits,
        entry_id,
    }))
}
