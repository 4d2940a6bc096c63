//! Card disputes: Stripe's `charge.dispute.*` take the disputed credits back, flag the company,
//! give the credits back when won, count the money as refunded when lost, in any order and however
//! often the events come.

use copcca_sms::domain::{Country, CreditDelta, PaymentId};
use copcca_sms::payments::Status;
use serde_json::Value;

use super::Harness;
use super::stripe::checkout;

/// A company that bought the business pack (500 credits for TZS 20,000) by card.
async fn credited(pool: sqlx::PgPool) -> (Harness, PaymentId, String) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    h.stripe.complete(&session, true).await;
    h.drain().await;
    assert_eq!(h.available().await, 500);
    (h, id, session)
}

/// Spends `credits` of the company's balance (an adjustment stands in for sending).
async fn spend(h: &Harness, credits: i64) {
    copcca_sms::ledger::adjust(
        &mut h.pool().acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        h.company.id,
        CreditDelta::new(-credits).unwrap(),
        "spent",
        "test",
    )
    .await
    .unwrap();
}

/// The dispute's row: (outcome, Stripe's status, its share of the credits).
async fn dispute_row(h: &Harness, id: &str) -> (String, String, i64) {
    sqlx::query_as(
        "SELECT outcome, stripe_status, credits_share FROM payment_disputes WHERE id = $1",
    )
    .bind(id)
    .fetch_one(h.pool())
    .await
    .unwrap()
}

/// The company as `GET /admin/companies` lists it.
async fn listed(h: &Harness) -> Value {
    let v: Value = h
        .app
        .client
        .get(h.app.url("/admin/companies"))
        .bearer_auth(&h.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == h.company.id.to_string())
        .cloned()
        .unwrap()
}

async fn status_page(h: &Harness) -> String {
    let page = h
        .app
        .client
        .get(h.app.url("/admin"))
        .bearer_auth(&h.admin)
        .send();
    page.await.unwrap().text().await.unwrap()
}

#[sqlx::test]
async fn a_dispute_takes_the_unspent_credits_back_and_winning_it_gives_them_back(
    pool: sqlx::PgPool,
) {
    let (h, id, session) = credited(pool).await;
    spend(&h, 350).await;

    // A chargeback of the whole charge: 500 held back, 150 there to take; `funds_withdrawn`
    // follows.
    let (dispute, created) = h
        .stripe
        .dispute(&session, 2_000_000, "fraudulent", false)
        .await;
    assert_eq!(created.status, 200);
    assert_eq!(h.available().await, 0, "never negative");
    assert_eq!(
        dispute_row(&h, &dispute).await,
        ("open".into(), "needs_response".into(), 500)
    );
    let p = h.payment(id).await;
    assert_eq!(
        (p.status, p.credits_reversed, p.reversal_shortfall),
        (Status::Credited, 150, 350)
    );
    assert!(p.flagged_reason.unwrap().contains(&dispute));
    // The company is flagged: in the operator's list and on the status page, with an alert.
    let company = listed(&h).await;
    assert_eq!(
        (
            company["disputes_open"].as_i64(),
            company["disputes_lost"].as_i64()
        ),
        (Some(1), Some(0))
    );
    let html = status_page(&h).await;
    assert!(html.contains(&format!(
        r#"<tr data-dispute="{dispute}" data-company="{}" data-payment="{id}" data-outcome="open">"#,
        h.company.id
    )));
    assert!(html.contains("Card disputes are open for"), "the alert");

    // Stripe's retries of the opening take nothing more, even all at once.
    let statuses = h.stripe.redeliver(&created.event_id, 5, true).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(h.entries_of(id).await.len(), 2, "purchase and one reversal");
    h.stripe.submit_dispute_evidence(&dispute).await;
    assert_eq!(dispute_row(&h, &dispute).await.1, "under_review");

    // Won: exactly what was taken comes back, and the shortfall is forgiven.
    let closed = h.stripe.close_dispute(&dispute, "won").await;
    assert_eq!(closed.status, 200);
    assert_eq!(h.available().await, 150);
    assert_eq!(
        dispute_row(&h, &dispute).await,
        ("won".into(), "won".into(), 500)
    );
    let p = h.payment(id).await;
    assert_eq!((p.credits_reversed, p.reversal_shortfall), (0, 0));
    h.stripe.redeliver(&closed.event_id, 5, true).await;
    assert_eq!(h.available().await, 150, "given back once");
    assert_eq!(
        h.entries_of(id).await,
        [
            ("purchase".into(), 500),
            ("purchase_reversal".into(), -150),
            ("purchase_reversal".into(), 150)
        ]
    );
    assert_eq!(listed(&h).await["disputes_open"], 0);
    assert!(!status_page(&h).await.contains("Card disputes are open for"));
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_lost_partial_dispute_keeps_its_share_and_counts_the_money_as_refunded(
    pool: sqlx::PgPool,
) {
    let (h, id, session) = credited(pool).await;
    // Half the charge disputed: 250 credits.
    let (dispute, _) = h
        .stripe
        .dispute(&session, 1_000_000, "product_not_received", false)
        .await;
    assert_eq!(h.available().await, 250);
    h.stripe.close_dispute(&dispute, "lost").await;
    assert_eq!(h.available().await, 250, "the credits stay taken");
    assert_eq!(
        dispute_row(&h, &dispute).await,
        ("lost".into(), "lost".into(), 250)
    );
    let refunds: Vec<(rust_decimal::Decimal, String, String)> = sqlx::query_as(
        "SELECT amount, currency, source FROM payment_refunds WHERE payment_id = $1",
    )
    .bind(id)
    .fetch_all(h.pool())
    .await
    .unwrap();
    assert_eq!(
        refunds,
        [(
            "10000.00".parse().unwrap(),
            "TZS".into(),
            format!("stripe:{dispute}")
        )]
    );
    let company = listed(&h).await;
    assert_eq!(
        (
            company["disputes_open"].as_i64(),
            company["disputes_lost"].as_i64()
        ),
        (Some(0), Some(1))
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_closing_that_comes_before_the_opening_still_acts_once(pool: sqlx::PgPool) {
    let (h, id, session) = credited(pool).await;
    // Hold the events back (nothing listens there), then deliver them newest first.
    h.stripe
        .set_webhook_url("http://127.0.0.1:9/webhooks/stripe".parse().unwrap());
    let (dispute, created) = h
        .stripe
        .dispute(&session, 2_000_000, "fraudulent", false)
        .await;
    assert_eq!(created.status, 0, "not delivered");
    let closed = h.stripe.close_dispute(&dispute, "won").await;
    h.stripe
        .set_webhook_url(h.app.url("/webhooks/stripe").parse().unwrap());
    let mut events = h.stripe.events();
    events.reverse();
    for e in events
        .iter()
        .filter(|e| e.kind.starts_with("charge.dispute."))
    {
        assert_eq!(
            h.stripe.redeliver(&e.id, 1, false).await,
            [200],
            "{}",
            e.kind
        );
    }
    assert_eq!(closed.status, 0);
    // The closing opened and closed it; the late opening and `funds_withdrawn` change nothing,
    // not even the status the closing recorded.
    assert_eq!(h.available().await, 500);
    assert_eq!(
        dispute_row(&h, &dispute).await,
        ("won".into(), "won".into(), 500)
    );
    assert_eq!(h.payment(id).await.credits_reversed, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_inquiry_closed_without_a_chargeback_gives_the_credits_back(pool: sqlx::PgPool) {
    let (h, _, session) = credited(pool).await;
    let (dispute, _) = h.stripe.dispute(&session, 2_000_000, "general", true).await;
    assert_eq!(h.available().await, 0);
    assert_eq!(dispute_row(&h, &dispute).await.1, "warning_needs_response");
    h.stripe.close_dispute(&dispute, "warning_closed").await;
    assert_eq!(h.available().await, 500);
    assert_eq!(dispute_row(&h, &dispute).await.0, "won");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_dispute_of_another_integrations_charge_changes_nothing(pool: sqlx::PgPool) {
    let (h, id, _) = credited(pool).await;
    let body = serde_json::json!({
        "id": "evt_other_dispute", "object": "event", "type": "charge.dispute.created",
        "created": chrono::Utc::now().timestamp(),
        "data": {"object": {"id": "dp_other", "object": "dispute", "amount": 2_000_000,
                 "charge": "ch_other", "currency": "tzs", "payment_intent": "pi_not_ours",
                 "reason": "fraudulent", "status": "needs_response"}}
    })
    .to_string();
    let header = copcca_sms::providers::stripe::signature::sign(
        copcca_sms::fakes::stripe::WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    assert_eq!(h.stripe.deliver(&body, Some(header)).await, 200);
    assert_eq!(h.available().await, 500);
    assert_eq!(h.entries_of(id).await.len(), 1);
    let disputes: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_disputes")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(disputes, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_refund_after_an_inquiry_is_not_undone_when_the_inquiry_closes(pool: sqlx::PgPool) {
    let (h, id, session) = credited(pool).await;
    // The bank asks (the whole charge held back), the company refunds the buyer in full, and
    // the inquiry then closes without a chargeback: the refund still holds the credits.
    let (dispute, _) = h.stripe.dispute(&session, 2_000_000, "general", true).await;
    assert_eq!(h.available().await, 0);
    assert_eq!(h.stripe.refund(&session, 2_000_000).await.status, 200);
    let p = h.payment(id).await;
    assert_eq!((p.status, p.credits_reversed), (Status::Refunded, 500));
    h.stripe.close_dispute(&dispute, "warning_closed").await;
    assert_eq!(h.available().await, 0, "nothing given back");
    assert_eq!(h.entries_of(id).await.len(), 2, "purchase and one reversal");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_dispute_and_a_refund_of_the_rest_add_up_in_either_order(pool: sqlx::PgPool) {
    let (h, id, session) = credited(pool).await;
    // Half refunded, the other half disputed; Stripe delivers the dispute first.
    h.stripe
        .set_webhook_url("http://127.0.0.1:9/webhooks/stripe".parse().unwrap());
    let refund = h.stripe.refund(&session, 1_000_000).await;
    let (dispute, created) = h
        .stripe
        .dispute(&session, 1_000_000, "fraudulent", false)
        .await;
    h.stripe
        .set_webhook_url(h.app.url("/webhooks/stripe").parse().unwrap());
    assert_eq!(h.stripe.redeliver(&created.event_id, 1, false).await, [200]);
    assert_eq!(h.available().await, 250);
    assert_eq!(h.stripe.redeliver(&refund.event_id, 1, false).await, [200]);
    assert_eq!(
        h.available().await,
        0,
        "the refund's share and the dispute's"
    );
    // The refunded money is recorded whole though the dispute came first.
    let refunded: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT sum(amount) FROM payment_refunds WHERE payment_id = $1 AND kind = 'refund'",
    )
    .bind(id)
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(refunded.to_string(), "10000.00");
    // Won: only the dispute's share comes back.
    h.stripe.close_dispute(&dispute, "won").await;
    assert_eq!(h.available().await, 250);
    assert_eq!(h.payment(id).await.credits_reversed, 250);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_dispute_before_the_payment_is_credited_holds_its_share_once_it_is(pool: sqlx::PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    // Paid; the check that credits it has not run yet when the dispute comes.
    assert_eq!(h.stripe.complete(&session, true).await.status, 200);
    let (dispute, created) = h
        .stripe
        .dispute(&session, 2_000_000, "fraudulent", false)
        .await;
    assert_eq!(created.status, 200);
    assert_eq!(dispute_row(&h, &dispute).await.2, 500);
    assert_eq!(h.available().await, 0);
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!((p.status, p.credits_reversed), (Status::Credited, 500));
    assert_eq!(h.available().await, 0, "credited and held back in one step");
    h.stripe.close_dispute(&dispute, "won").await;
    assert_eq!(h.available().await, 500);
    h.audit_clean().await;
}
