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
    /// Credits given back by this call (a claim withdrawn: a dispute won).
    pub given_back: i64,
    /// Credits owed that the balance could not cover (spent already), added by this call.
    pub shortfall: i64,
    /// Totals on the payment after this call.
    pub total_reversed: i64,
    pub total_shortfall: i64,
}

/// Moves a credited purchase's reversal (credits taken back plus those owed but already spent)
/// to `target`: what its claims (refunds, open or lost disputes) add up to now, never more than
/// it credited. Up, the credits are taken back as far as the available balance allows (never
/// below zero) and the rest recorded as the payment's shortfall; down, the shortfall is forgiven
/// first and the rest given back. `reason` goes on the entry. Calling it again with the same
/// target changes nothing (`replay`): the caller computes the target from the claims under the
/// payment's lock.
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
    let target = target.clamp(0, credits);
    let mut out = Reversed {
        payment,
        company,
        taken: 0,
        given_back: 0,
        shortfall: 0,
        total_reversed: reversed,
        total_shortfall: shortfall,
    };
    let now = reversed + shortfall;
    if target == now {
        return Ok(Applied::replayed(out));
    }
    let delta = if target > now {
        let owed = target - now;
        let available: i64 =
            sqlx::query_scalar("SELECT available FROM balances WHERE company_id = $1 FOR UPDATE")
                .bind(company)
                .fetch_one(&mut *tx)
                .await?;
        out.taken = owed.min(available.max(0));
        out.shortfall = owed - out.taken;
        out.total_shortfall += out.shortfall;
        out.total_reversed += out.taken;
        -out.taken
    } else {
        let returned = now - target;
        let forgiven = returned.min(shortfall);
        out.given_back = returned - forgiven;
        out.total_shortfall -= forgiven;
        out.total_reversed -= out.given_back;
        out.given_back
    };
    if delta != 0 {
        post(
            &mut tx,
            Posting {
                company,
                kind: EntryKind::PurchaseReversal,
                available_delta: delta,
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
