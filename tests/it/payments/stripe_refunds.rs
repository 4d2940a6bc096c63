//! Card refunds: Stripe's `charge.refunded` after the credits were spent, money refunded in the
//! revenue report, and an operator's refund through Stripe.

use copcca_sms::domain::{Country, CreditDelta};
use copcca_sms::payments::Status;
use serde_json::json;
use sqlx::PgPool;

use super::Harness;
use super::stripe::checkout;

#[sqlx::test]
async fn a_refund_after_spending_takes_back_what_it_can(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    h.stripe.complete(&session, true).await;
    h.drain().await;
    assert_eq!(h.available().await, 500);
    // The company spends 350 of the 500 credits (an operator adjustment stands in for sending).
    copcca_sms::ledger::adjust(
        &mut h.pool().acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        h.company.id,
        CreditDelta::new(-350).unwrap(),
        "spent",
        "test",
    )
    .await
    .unwrap();

    // Half refunded: 250 credits owed, 150 there to take.
    let half = h.stripe.refund(&session, 1_000_000).await;
    assert_eq!(half.status, 200);
    let p = h.payment(id).await;
    assert_eq!(
        (p.status, p.credits_reversed, p.reversal_shortfall),
        (Status::Credited, 150, 100)
    );
    assert!(p.flagged_reason.unwrap().contains("shortfall"));
    assert_eq!(h.available().await, 0, "never negative");
    // The same notice again takes nothing more.
    h.stripe.redeliver(&half.event_id, 3, true).await;
    // The rest refunded: another 250 owed, nothing left to take.
    assert_eq!(h.stripe.refund(&session, 1_000_000).await.status, 200);
    let p = h.payment(id).await;
    assert_eq!(
        (p.status, p.credits_reversed, p.reversal_shortfall),
        (Status::Refunded, 150, 350)
    );
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn stripe_refunds_are_reported_as_money_refunded_in_the_revenue_report(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    h.stripe.complete(&session, true).await;
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
    let day = chrono::Utc::now().date_naive().to_string();
    let report = |format: &'static str| {
        let url = h.app.url(&format!(
            "/admin/reports/revenue?from={day}&to={day}&format={format}"
        ));
        let request = h.app.client.get(url).bearer_auth(&h.admin).send();
        async move {
            let resp = request.await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let money = |row: &serde_json::Value, field: &str| row[field].to_string();

    // TZS 20000.00 (2_000_000 minor units): a quarter refunded, then the rest.
    let quarter = h.stripe.refund(&session, 500_000).await;
    assert_eq!(quarter.status, 200);
    let rest = h.stripe.refund(&session, 1_500_000).await;
    assert_eq!(rest.status, 200);
    // The first notice again, after the second: the cumulative amount it carries adds nothing.
    h.stripe.redeliver(&quarter.event_id, 2, true).await;
    let refunds: Vec<(rust_decimal::Decimal, String, String)> = sqlx::query_as(
        "SELECT amount, currency, source FROM payment_refunds WHERE payment_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(h.pool())
    .await
    .unwrap();
    let amounts: Vec<String> = refunds.iter().map(|r| r.0.to_string()).collect();
    assert_eq!(amounts, ["5000.00", "15000.00"]);
    assert!(
        refunds
            .iter()
            .all(|r| r.1 == "TZS" && r.2.starts_with("stripe:ch_"))
    );
    assert_eq!(h.payment(id).await.status, Status::Refunded);

    let json: serde_json::Value = serde_json::from_str(&report("json").await).unwrap();
    let row = &json["rows"][0];
    assert_eq!(json["rows"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(money(row, "received"), r#"{"TZS":"20000.00"}"#);
    assert_eq!(money(row, "refunded_amount"), r#"{"TZS":"20000.00"}"#);
    assert_eq!(money(row, "net_received"), r#"{"TZS":"0.00"}"#);
    assert_eq!(money(row, "margin"), r#"{"TZS":"0.00"}"#);
    assert_eq!(row["credits_reversed"], 500);

    let csv = report("csv").await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let line = reader.records().next().unwrap().unwrap();
    let field = |name: &str| {
        let at = header.iter().position(|h| h == name);
        line.get(at.unwrap_or_else(|| panic!("{name} in {header:?}")))
            .unwrap()
            .to_string()
    };
    assert_eq!(field("received_TZS"), "20000.00");
    assert_eq!(field("refunded_amount_TZS"), "20000.00");
    assert_eq!(field("net_received_TZS"), "0.00");

    // The status page's money table shows the refund beside what was received.
    let page = h
        .app
        .client
        .get(h.app.url("/admin"))
        .bearer_auth(&h.admin)
        .send();
    let html = page.await.unwrap().text().await.unwrap();
    let table = &html[html.find(r#"<table id="revenue-money""#).expect("money")..];
    assert!(
        table.contains(r#"<td>TZS</td><td class="n">20000.00</td><td class="n">20000.00</td>"#),
        "{}",
        &table[..table.find("</table>").unwrap()]
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_operator_refund_goes_through_stripe_and_its_event_takes_nothing_more(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, session) = checkout(&h, "business").await;
    h.stripe.complete(&session, true).await;
    h.drain().await;
    copcca_sms::ledger::adjust(
        &mut h.pool().acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        h.company.id,
        CreditDelta::new(-100).unwrap(),
        "spent",
        "test",
    )
    .await
    .unwrap();

    let refund = format!("/admin/purchases/{id}/refund");
    let (status, v) = h.post_as(&h.admin, &refund, json!({})).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("refunded")),
        "{v}"
    );
    let asked: Vec<_> = h
        .stripe
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/refunds")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].idempotency_key, Some(format!("refund:{id}")));
    let pi = h.payment(id).await.payment_intent.unwrap();
    assert_eq!(asked[0].params, vec![("payment_intent".to_string(), pi)]);

    // Stripe's charge.refunded follows; it finds the credits already taken back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_events WHERE provider = 'stripe' AND accepted
                AND processed_at IS NOT NULL AND payload LIKE '%charge.refunded%'",
        )
        .fetch_one(h.pool())
        .await
        .unwrap();
        if seen == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no charge.refunded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let p = h.payment(id).await;
    assert_eq!(
        (p.status, p.credits_reversed, p.reversal_shortfall),
        (Status::Refunded, 400, 100)
    );
    assert_eq!(h.available().await, 0);
    let refunded: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT sum(amount) FROM payment_refunds WHERE payment_id = $1")
            .bind(id)
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(refunded, rust_decimal::Decimal::new(20_000, 0));
    let (status, v) = h.post_as(&h.admin, &refund, json!({})).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("payment_not_refundable")),
        "{v}"
    );
    h.audit_clean().await;
}
