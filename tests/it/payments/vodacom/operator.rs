//! The operator's side of Vodacom: refunding a purchase by reversal, and the account in
//! operator settings.

use super::*;

#[sqlx::test]
async fn an_operator_refund_reverses_the_payment_and_takes_back_only_unspent_credits(pool: PgPool) {
    let h = tanzanian(pool).await;
    let id = h.start(business()).await;
    h.drain().await;
    let transaction = h.payment(id).await.receipt.unwrap();
    // 200 of the 500 credits are spent meanwhile (an operator adjustment stands in for sends).
    let (status, v) = h
        .post_as(
            &h.admin,
            &format!("/admin/companies/{}/adjustments", h.company.id),
            json!({"credits": -200, "reason": "spent on reminders"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");

    let refund = format!("/admin/purchases/{id}/refund");
    let (status, v) = h.post_as(&h.token, &refund, json!({})).await;
    assert_eq!(status, 403, "operators only: {v}");
    let (status, v) = h.post_as(&h.admin, &refund, json!({})).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("refunded")),
        "{v}"
    );
    let reversals = h.vodacom.reversals();
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        (
            reversals[0].transaction_id.as_str(),
            reversals[0].amount.as_str()
        ),
        (transaction.as_str(), "20000")
    );
    let p = h.payment(id).await;
    assert_eq!((p.credits_reversed, p.reversal_shortfall), (300, 200));
    assert!(p.flagged_reason.unwrap().contains("shortfall"));
    assert_eq!(h.available().await, 0, "never below zero");
    let refunded: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT sum(amount) FROM payment_refunds WHERE payment_id = $1 AND currency = 'TZS'",
    )
    .bind(id)
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(refunded, rust_decimal::Decimal::new(20_000, 0));

    // Again: nothing more is reversed or taken.
    let (status, v) = h.post_as(&h.admin, &refund, json!({})).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("payment_not_refundable")),
        "{v}"
    );
    assert_eq!(h.vodacom.reversals().len(), 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_account_in_operator_settings_is_checked_by_opening_a_session_then_used(pool: PgPool) {
    use copcca_sms::fakes::vodacom as fake;
    const SETTINGS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let h = Harness::with_env(
        pool,
        Country::TZ,
        &[
            ("VODACOM_API_KEY", ""),
            ("VODACOM_PUBLIC_KEY", ""),
            ("VODACOM_SERVICE_PROVIDER_CODE", ""),
            ("SETTINGS_KEY", SETTINGS_KEY),
        ],
    )
    .await;
    let put = |body: Value| {
        let req = h
            .app
            .client
            .put(h.app.url("/admin/settings/vodacom"))
            .bearer_auth(&h.admin)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let good = json!({"api_key": fake::API_KEY, "public_key": fake::PUBLIC_KEY,
        "service_provider_code": fake::SERVICE_PROVIDER_CODE});
    let mut wrong_key = good.clone();
    wrong_key["api_key"] = json!("not-the-api-key");
    let (status, v) = put(wrong_key).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("vodacom_refused")),
        "{v}"
    );
    let mut bad_public = good.clone();
    bad_public["public_key"] = json!("bm90IGEga2V5");
    let (status, v) = put(bad_public).await;
    assert_eq!(
        (status, v["errors"][0]["field"].as_str()),
        (422, Some("public_key")),
        "{v}"
    );
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM system_settings WHERE key LIKE 'vodacom.%'")
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(count, 0, "nothing stored that does not work");

    let (status, v) = put(good).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["source"], "settings");
    assert_eq!(v["market"], "vodacomTZN");
    let masked = v["api_key"].as_str().unwrap();
    assert!(
        masked.starts_with("****") && !masked.contains("fake-vodacom"),
        "{masked}"
    );
    let encrypted: bool =
        sqlx::query_scalar("SELECT encrypted FROM system_settings WHERE key = 'vodacom.api_key'")
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert!(encrypted);

    // The providers in force now include it: a TZS purchase goes through Vodacom.
    let providers = payments::PaymentProviders::load(h.pool(), &h.app.state.config)
        .await
        .unwrap();
    assert!(providers.vodacom.is_some());
    assert_eq!(
        providers.provider_for(payments::Method::Mpesa, copcca_sms::domain::Currency::TZS),
        Some("vodacom")
    );
    h.audit_clean().await;
}
