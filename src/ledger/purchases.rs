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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversed {
    pub payment: PaymentId,
    pub company: CompanyId,
    /// Credits taken back by this call.
    pub taken: i64,
    /// Credits owed that the balance could not cover (spent already), recorded on the payment.
    pub shortfall: i64,
    /// Totals on the payment after this call.
    pub total_reversed: i64,
    pub total_shortfall: i64,
}

/// Takes back a refunded purchase's credits up to `target` in total (the share of the payment
/// the provider has refunded so far), as far as the available balance allows: the balance never
/// goes negative, and what could not be taken is recorded as the payment's shortfall (`reason`
/// on the entry: a refund, a dispute). `target` is cumulative, so a repeated or out-of-date refund notice takes nothing more (`replay`).
pub async fn reverse_purchase(
    conn: &mut PgConnection,
    payment: PaymentId,
    target: i64,
    actor: &str,
    reason: &str,
) -> Result<Applied<Reversed>, LedgerError> {
    let mut tx = conn.begin().await?;
    let row: Option<(CompanyId, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT company_id, status, COALESCE(credits_granted, credits), credits_reversed, reversal_shortfall
         FROM payments WHERE id = $1 FOR UPDATE",
    )
    .bind(payment)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((company, status, credits, reversed, shortfall)) = row else {
        return Err(LedgerError::UnknownPayment(payment));
    };
    if !matches!(status.as_str(), "credited" | "refunded") {
        return Err(LedgerError::PaymentNotPaid { payment, status });
    }
    let owed = target.min(credits) - reversed - shortfall;
    let mut out = Reversed {
        payment,
        company,
        taken: 0,
        shortfall: 0,
        total_reversed: reversed,
        total_shortfall: shortfall,
    };
    if owed <= 0 {
        return Ok(Applied::replayed(out));
    }
    let available: i64 =
        sqlx::query_scalar("SELECT available FROM balances WHERE company_id = $1 FOR UPDATE")
            .bind(company)
            .fetch_one(&mut *tx)
            .await?;
    let taken = owed.min(available.max(0));
    if taken > 0 {
        post(
            &mut tx,
            Posting {
                company,
                kind: EntryKind::PurchaseReversal,
                available_delta: -taken,
                reserved_delta: 0,
                hold: None,
                message: None,
                payment: Some(payment),
                adjustment: None,
                actor,
                reason: Some(reason),
            },
        )
        .await?;
    }
    out.taken = taken;
    out.shortfall = owed - taken;
    out.total_reversed += taken;
    out.total_shortfall += owed - taken;
    sqlx::query(
        "UPDATE payments SET credits_reversed = $2, reversal_shortfall = $3, updated_at = now() WHERE id = $1",
    )
    .bind(payment)
    .bind(out.total_reversed)
    .bind(out.total_shortfall)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Applied::first(out))
}

/// Undoes part of a purchase's reversal: gives `credits` back to the company and forgives
/// `shortfall` of what it owed (a card dispute closed in its favour undoes exactly what opening
/// it took). Never more than the payment's reversal holds. The caller makes it happen once (the
/// dispute's row, locked in the same transaction); the credits given back.
pub async fn restore_reversal(
    conn: &mut PgConnection,
    payment: PaymentId,
    credits: i64,
    shortfall: i64,
    actor: &str,
    reason: &str,
) -> Result<i64, LedgerError> {
    let mut tx = conn.begin().await?;
    let row: Option<(CompanyId, i64, i64)> = sqlx::query_as(
        "SELECT company_id, credits_reversed, reversal_shortfall FROM payments WHERE id = $1 FOR UPDATE",
    )
    .bind(payment)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((company, reversed, owed)) = row else {
        return Err(LedgerError::UnknownPayment(payment));
    };
    let credits = credits.clamp(0, reversed);
    let shortfall = shortfall.clamp(0, owed);
    if credits > 0 {
        post(
            &mut tx,
            Posting {
                company,
                kind: EntryKind::PurchaseReversal,
                available_delta: credits,
                reserved_delta: 0,
                hold: None,
                message: None,
                payment: Some(payment),
                adjustment: None,
                actor,
                reason: Some(reason),
            },
        )
        .await?;
    }
    sqlx::query(
        "UPDATE payments SET credits_reversed = credits_reversed - $2,
                reversal_shortfall = reversal_shortfall - $3, updated_at = now()
         WHERE id = $1",
    )
    .bind(payment)
    .bind(credits)
    .bind(shortfall)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(credits)
}
