//! What `POST /v1/purchases` refuses (precise problems, nothing written), idempotency, and
//! another company's purchases.

use copcca_sms::domain::{Country, Role};
use serde_json::json;
use sqlx::PgPool;

use super::Harness;

async fn payments_count(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(h.pool())
        .await
        .unwrap()
}

#[sqlx::test]
async fn bad_purchases_are_refused_precisely_and_write_nothing(pool: PgPool) {
    let h = Harness::new(pool, Country::KE).await;
    let cases = [
        (
            json!({"package_id": "gigantic", "method": "card"}),
            "package_id",
        ),
        (
            json!({"package_id": "starter", "method": "mpesa", "phone": "0712345678", "currency": "USD"}),
            "currency",
        ),
        (json!({"package_id": "starter", "method": "mpesa"}), "phone"),
        (
            json!({"package_id": "starter", "method": "mpesa", "phone": "0222123456"}),
            "phone",
        ),
        (
            json!({"package_id": "starter", "method": "mpesa", "phone": "+255754123456"}),
            "phone",
        ),
        (
            json!({"package_id": "starter", "method": "card", "phone": "0712345678"}),
            "phone",
        ),
        (
            json!({"package_id": "starter", "method": "card", "currency": "EUR"}),
            "currency",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = h.purchase(body.clone(), None).await;
        assert_eq!(status, 422, "{body}: {v}");
        assert_eq!(v["code"], "validation_failed", "{v}");
        assert!(
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {v}"
        );
    }
    // An unknown method is a JSON shape error, also 422 problem+json.
    let (status, v) = h
        .purchase(json!({"package_id": "starter", "method": "cash"}), None)
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(payments_count(&h).await, 0);
    assert!(h.daraja.pushes().is_empty() && h.stripe.sessions().is_empty());
}

#[sqlx::test]
async fn an_idempotency_key_returns_the_first_purchase(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let body = json!({"package_id": "pro", "method": "card"});
    let (s1, first) = h.purchase(body.clone(), Some("buy-pro-1")).await;
    let (s2, again) = h.purchase(body, Some("buy-pro-1")).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["checkout_url"], again["checkout_url"]);
    assert_eq!(h.stripe.sessions().len(), 1, "one Checkout Session");
    let (s3, v) = h
        .purchase(
            json!({"package_id": "pro", "method": "card", "currency": "USD"}),
            Some("buy-pro-1"),
        )
        .await;
    assert_eq!(
        (s3, v["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{v}"
    );
    // The same price by another method is another purchase, not a replay.
    let (s4, v) = h
        .purchase(
            json!({"package_id": "pro", "method": "bank_transfer"}),
            Some("buy-pro-1"),
        )
        .await;
    assert_eq!(
        (s4, v["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{v}"
    );
    assert_eq!(payments_count(&h).await, 1);
}

#[sqlx::test]
async fn another_companys_purchase_is_not_found(pool: PgPool) {
    let h = Harness::new(pool.clone(), Country::TZ).await;
    let id = h
        .start(json!({"package_id": "starter", "method": "bank_transfer"}))
        .await;
    let other = copcca_sms::accounts::create_company(&pool, "Another", Country::TZ)
        .await
        .unwrap();
    let theirs = h.app.token(Some(other.id), Role::Admin).await;
    let resp = h
        .app
        .client
        .get(h.app.url(&format!("/v1/purchases/{id}")))
        .bearer_auth(&theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let list: serde_json::Value = h
        .app
        .client
        .get(h.app.url("/v1/purchases"))
        .bearer_auth(&theirs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    // The owner sees it, with the bank details.
    let mine: serde_json::Value = h
        .app
        .client
        .get(h.app.url(&format!("/v1/purchases/{id}")))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["status"], "pending");
    assert!(
        mine["bank"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("SMS-")
    );
}
