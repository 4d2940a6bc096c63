//! Credits in and back: refunds, purchases, operator adjustments.

use copcca_sms::domain::CreditDelta;
use copcca_sms::ledger::{self, LedgerError};
use sqlx::PgPool;

use super::TTL;
use super::script::{Op::*, Step, Then::*, run};
use crate::support::*;

#[sqlx::test]
async fn refund_returns_the_charge_exactly_once(pool: PgPool) {
    let company = company_with(&pool, 10).await.id;
    let m = message(&pool, company, 3).await;
    let mut conn = pool.acquire().await.unwrap();
    let hold = reserve_one(&mut conn, company, m, credits(3), TTL)
        .await
        .unwrap()
        .expect("a hold")
        .value;
    commit_one(&mut conn, hold.id, credits(2)).await.unwrap();
    assert_eq!(available(&pool, company).await, 8);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                ledger::refund(&mut pool.acquire().await.unwrap(), m, "undelivered", "test")
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.value.credits, 2);
        firsts += usize::from(!r.replay);
    }
    assert_eq!(firsts, 1);
    let b = ledger::balance(&pool, company).await.unwrap();
    assert_eq!((b.available.get(), b.total_refunded), (10, 2));
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn refund_of_an_uncharged_message_is_refused(pool: PgPool) {
    #[rustfmt::skip]
    let steps: &[Step] = &[
        // operation     outcome      available reserved
        (Refund(0),      NotCharged,  10, 0),
        (Reserve(0, 1),  Done,         9, 1),
        (Refund(0),      NotCharged,   9, 1),
        (Release(0),     Done,        10, 0),
        (Refund(0),      NotCharged,  10, 0),
    ];
    run(&pool, 10, steps).await;
}

#[sqlx::test]
async fn a_purchase_is_credited_once_however_often_it_is_confirmed(pool: PgPool) {
    let company = company_with(&pool, 0).await.id;
    let payment = paid_payment(&pool, company, 100).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                ledger::credit_purchase(&mut pool.acquire().await.unwrap(), payment, "test")
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        let c = t.await.unwrap();
        assert_eq!((c.value.credits, c.value.company), (100, company));
        firsts += usize::from(!c.replay);
    }
    assert_eq!(firsts, 1);
    assert!(
        ledger::credit_purchase(&mut pool.acquire().await.unwrap(), payment, "test")
            .await
            .unwrap()
            .replay
    );
    let b = ledger::balance(&pool, company).await.unwrap();
    assert_eq!((b.available.get(), b.total_purchased), (100, 100));
    let (status, events): (String, i64) = sqlx::query_as(
        "SELECT p.status, (SELECT count(*) FROM payment_events e WHERE e.payment_id = p.id) FROM payments p WHERE id = $1",
    )
    .bind(payment)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), events), ("credited", 1));
    let entry_payment: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT payment_id FROM ledger_entries WHERE kind = 'purchase'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(entry_payment, Some(payment.0));
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn an_unpaid_purchase_is_not_credited(pool: PgPool) {
    let company = company_with(&pool, 0).await.id;
    let payment = paid_payment(&pool, company, 100).await;
    sqlx::query("UPDATE payments SET status = 'pending' WHERE id = $1")
        .bind(payment)
        .execute(&pool)
        .await
        .unwrap();
    let err = ledger::credit_purchase(&mut pool.acquire().await.unwrap(), payment, "test")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::PaymentNotPaid { status, .. } if status == "pending"),
        "{err}"
    );
    assert_eq!(available(&pool, company).await, 0);
    let unknown = ledger::credit_purchase(
        &mut pool.acquire().await.unwrap(),
        copcca_sms::domain::PaymentId::new(),
        "test",
    )
    .await
    .unwrap_err();
    assert!(matches!(unknown, LedgerError::UnknownPayment(_)));
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn adjustments_are_idempotent_and_never_overdraw(pool: PgPool) {
    let company = company_with(&pool, 0).await.id;
    let key = uuid::Uuid::now_v7();
    let delta = CreditDelta::new(30).unwrap();
    assert!(
        !ledger::adjust(
            &mut pool.acquire().await.unwrap(),
            key,
            company,
            delta,
            "goodwill",
            "op"
        )
        .await
        .unwrap()
        .replay
    );
    assert!(
        ledger::adjust(
            &mut pool.acquire().await.unwrap(),
            key,
            company,
            delta,
            "goodwill",
            "op"
        )
        .await
        .unwrap()
        .replay
    );
    let conflict = ledger::adjust(
        &mut pool.acquire().await.unwrap(),
        key,
        company,
        CreditDelta::new(31).unwrap(),
        "goodwill",
        "op",
    )
    .await;
    assert!(matches!(conflict, Err(LedgerError::AdjustmentConflict(_))));
    assert_eq!(available(&pool, company).await, 30);

    let take = ledger::adjust(
        &mut pool.acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        company,
        CreditDelta::new(-31).unwrap(),
        "x",
        "op",
    )
    .await;
    assert!(matches!(
        take,
        Err(LedgerError::InsufficientCredits {
            needed: 31,
            available: 30
        })
    ));
    ledger::adjust(
        &mut pool.acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        company,
        CreditDelta::new(-30).unwrap(),
        "x",
        "op",
    )
    .await
    .unwrap();
    let b = ledger::balance(&pool, company).await.unwrap();
    assert_eq!((b.available.get(), b.total_adjusted), (0, 0));
    assert_audit_clean(&pool).await;
}
