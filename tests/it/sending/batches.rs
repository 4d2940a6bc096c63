//! Reminder batches: up to 10,000 messages in one request, validated item by item.

use std::time::{Duration, Instant};

use copcca_sms::messages::MessageStatus;
use sqlx::PgPool;

use super::*;

fn numbers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("07{}{:07}", [5, 6, 7][i % 3], i))
        .collect()
}

impl Harness {
    async fn batch(&self, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .post(self.app.url("/v1/messages/batch"))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

#[sqlx::test]
async fn ten_thousand_messages_in_one_request_are_all_sent_and_charged_once(pool: PgPool) {
    let h = Harness::new(pool, 10_000).await;
    // The default quota (100 per hour) would spread this batch over 100 hours, as designed.
    sqlx::query("UPDATE companies SET sms_per_hour = 1000000 WHERE id = $1")
        .bind(h.company.id)
        .execute(h.pool())
        .await
        .unwrap();
    let messages: Vec<Value> = numbers(10_000)
        .into_iter()
        .map(|to| json!({"to": to, "body": "Kumbusho: ankara yako imepita tarehe."}))
        .collect();
    let started = Instant::now();
    let (status, v) = h.batch(json!({"messages": messages}), None).await;
    let accepted_in = started.elapsed();
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        (
            v["accepted"].as_i64(),
            v["rejected"].as_array().map(Vec::len)
        ),
        (Some(10_000), Some(0))
    );
    println!("10,000-message batch accepted and enqueued in {accepted_in:?}");

    // A bound on waiting, not a speed target (that is `cargo bench --bench batch`'s): a debug
    // build sends the 10,000 in about 37 s alone here and 52 s beside the rest of the suite on
    // two cores (before a run that missed its slot kept its claim, runs that only missed slots
    // could take it past 900 s).
    h.drain(Duration::from_secs(900)).await;
    let id = v["batch_id"].as_str().unwrap();
    let report: Value = h
        .app
        .client
        .get(h.app.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["by_status"]["sent"], 10_000, "{report}");
    assert_eq!(report["credits_charged"], 10_000);
    println!(
        "10,000-message batch fully sent {:?} after the request",
        started.elapsed()
    );
    assert_eq!(h.available().await, 0);
    assert_eq!(h.twilio.messages().len(), 10_000);
    h.audit_clean().await;
}

#[sqlx::test]
async fn invalid_items_are_refused_by_index_and_the_rest_sent(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (status, v) = h
        .batch(
            json!({"messages": [
                {"to": "0754123456", "body": "ok"},
                {"to": "12", "body": "bad number"},
                {"to": "0754123457", "body": ""},
                {"to": "0754123458", "template": "payment_reminder", "vars": {"customer_name": "Asha"}},
                {"to": "0754123459", "body": "ok too"},
            ]}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["accepted"], 2);
    let rejected: Vec<(i64, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_i64().unwrap(),
                r["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "invalid_to".into()),
            (2, "invalid_body".into()),
            (3, "missing_variable".into())
        ]
    );
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 8);
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE status = 'sent'")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(sent, 2);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_batch_larger_than_the_balance_is_refused_up_front_or_sent_in_part(pool: PgPool) {
    let h = Harness::new(pool, 3).await;
    let messages: Vec<Value> = numbers(5)
        .into_iter()
        .map(|to| json!({"to": to, "body": "Reminder"}))
        .collect();
    let (status, v) = h.batch(json!({"messages": messages.clone()}), None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("insufficient_credits"))
    );
    assert_eq!(
        (v["needed"].as_i64(), v["available"].as_i64()),
        (Some(5), Some(3))
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing written");

    let (status, v) = h
        .batch(json!({"messages": messages, "allow_partial": true}), None)
        .await;
    assert_eq!(status, 202);
    assert_eq!(v["accepted"], 3);
    let codes: Vec<&str> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["insufficient_credits", "insufficient_credits"]);
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_retried_batch_returns_the_same_batch(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let body =
        json!({"messages": [{"to": "0754123456", "body": "x"}, {"to": "0754123457", "body": "y"}]});
    let (_, a) = h.batch(body.clone(), Some("batch-1")).await;
    let (status, b) = h.batch(body, Some("batch-1")).await;
    assert_eq!((status, &a["batch_id"]), (202, &b["batch_id"]));
    let (status, c) = h
        .batch(
            json!({"messages": [{"to": "0754123456", "body": "z"}]}),
            Some("batch-1"),
        )
        .await;
    assert_eq!(
        (status, c["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(count, 2);
    let (status, _) = h.batch(json!({"messages": []}), None).await;
    assert_eq!(status, 422);
    // Another company cannot see the batch.
    let other = accounts::create_company(h.pool(), "Other", copcca_sms::domain::Country::TZ)
        .await
        .unwrap();
    let token = h.app.token(Some(other.id), Role::Member).await;
    let id = a["batch_id"].as_str().unwrap();
    let r = h
        .app
        .client
        .get(h.app.url(&format!("/v1/batches/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    h.drain(DRAIN).await;
    let report: Value = h
        .app
        .client
        .get(h.app.url(&format!("/v1/batches/{id}")))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            report["total"].as_i64(),
            report["by_status"]["sent"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let _ = MessageStatus::Sent;
}

#[sqlx::test]
async fn a_batch_answers_when_it_will_be_sent_and_shows_its_progress(pool: PgPool) {
    let h = Harness::new(pool, 200).await;
    // No quiet hours, so the estimate does not depend on when the test runs; the default quota
    // of 100 an hour.
    h.without_quiet_hours().await;
    let messages: Vec<Value> = numbers(150)
        .into_iter()
        .map(|to| json!({"to": to, "body": "Kumbusho"}))
        .collect();
    let before = chrono::Utc::now();
    let (status, v) = h.batch(json!({"messages": messages}), None).await;
    assert_eq!(status, 202, "{v}");
    // 100 go at once under the quota, the other 50 one every 36 s: half an hour. The sender's
    // share (10/s at 97%, alone there) would take 15.5 s.
    let estimate = &v["estimate"];
    assert_eq!(estimate["bounded_by"], "quota", "{v}");
    assert_eq!(estimate["sending_seconds"].as_f64(), Some(1800.0), "{v}");
    assert_eq!(estimate["held_by_quiet_hours"], false);
    let completes: chrono::DateTime<chrono::Utc> =
        estimate["completes_at"].as_str().unwrap().parse().unwrap();
    let expected = before + chrono::Duration::seconds(1800);
    assert!(
        (completes - expected).num_seconds().abs() <= 5,
        "{completes} against {expected}"
    );
    let batch = v["batch_id"].as_str().unwrap().to_string();
    let progress = |h: &Harness| {
        let (client, url, token) = (
            h.app.client.clone(),
            h.app.url(&format!("/v1/batches/{batch}")),
            h.token.clone(),
        );
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let p = progress(&h).await;
    assert_eq!(
        (
            p["remaining"].as_i64(),
            p["by_status"]["queued"].as_i64(),
            p["refunded"].as_i64()
        ),
        (Some(150), Some(150), Some(0)),
        "{p}"
    );
    assert_eq!(p["estimate"]["bounded_by"], "quota", "{p}");

    // The operator raises the quota: the sender's share bounds it now.
    sqlx::query("UPDATE companies SET sms_per_hour = 1000000 WHERE id = $1")
        .bind(h.company.id)
        .execute(h.pool())
        .await
        .unwrap();
    let p = progress(&h).await;
    assert_eq!(p["estimate"]["bounded_by"], "sender", "{p}");
    let seconds = p["estimate"]["sending_seconds"].as_f64().unwrap();
    assert!((seconds - 150.0 / 9.7).abs() < 0.1, "{p}");

    h.drain(DRAIN).await;
    let p = progress(&h).await;
    assert_eq!(
        (
            p["remaining"].as_i64(),
            p["by_status"]["sent"].as_i64(),
            p["credits_charged"].as_i64()
        ),
        (Some(0), Some(150), Some(150)),
        "{p}"
    );
    assert!(p["estimate"].is_null(), "nothing left to estimate: {p}");

    // One message fails after it was sent: refunded, and the batch says so.
    let sid = h.twilio.messages()[0].sid.clone();
    assert_eq!(
        h.twilio
            .callback(&sid, "undelivered", Some("30003"))
            .await
            .unwrap(),
        204
    );
    h.drain(DRAIN).await;
    let p = progress(&h).await;
    assert_eq!(
        (
            p["refunded"].as_i64(),
            p["by_status"]["undelivered"].as_i64(),
            p["credits_charged"].as_i64()
        ),
        (Some(1), Some(1), Some(149)),
        "{p}"
    );
    h.audit_clean().await;
}
