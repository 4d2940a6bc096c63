//! The send job's outcomes: success, Twilio's errors, rate limits, outages, insufficient
//! credits, segments, quotas.

use std::time::Duration;

use copcca_sms::fakes::twilio::Behaviour;
use copcca_sms::messages::MessageStatus;
use serde_json::json;
use sqlx::PgPool;

use super::*;

#[sqlx::test]
async fn a_message_is_sent_and_charged_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (status, v) = h
        .send(
            json!({"to": "0754123456", "body": "Habari! Deni lako ni TZS 20,000."}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["to"].as_str()),
        (Some("queued"), Some("+255754123456"))
    );
    assert_eq!(
        (
            v["segments"].as_i64(),
            v["credits"].as_i64(),
            v["encoding"].as_str()
        ),
        (Some(1), Some(1), Some("GSM-7"))
    );
    let id: uuid::Uuid = v["id"].as_str().unwrap().parse().unwrap();

    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert!(m.provider_id.as_deref().unwrap().starts_with("SM"));
    assert_eq!(m.provider.as_deref(), Some("twilio"));
    assert_eq!(h.available().await, 9);

    let requests = h.twilio.requests();
    assert_eq!(requests.len(), 1);
    let get = |k: &str| {
        requests[0]
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("To").as_deref(), Some("+255754123456"));
    assert_eq!(
        get("From").as_deref(),
        Some(copcca_sms::fakes::twilio::FROM)
    );
    // The callback URL names the message, so a callback for an unanswered send finds it.
    assert_eq!(
        get("StatusCallback"),
        Some(format!(
            "{}/webhooks/twilio/status?message={id}",
            h.app.base
        ))
    );
    // A late reminder expires at Twilio (30036) rather than arriving hours late.
    assert_eq!(get("ValidityPeriod").as_deref(), Some("3600"));
    assert_eq!(
        m.provider_account.as_deref(),
        Some(copcca_sms::fakes::twilio::ACCOUNT_SID),
        "the account it went through"
    );

    // Read back through the API, and invisible to another company.
    let got: Value = h
        .app
        .client
        .get(h.app.url(&format!("/v1/messages/{id}")))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (got["status"].as_str(), got["refunded"].as_bool()),
        (Some("sent"), Some(false))
    );
    let other = accounts::create_company(h.pool(), "Other", copcca_sms::domain::Country::KE)
        .await
        .unwrap();
    let other_token = h.app.token(Some(other.id), Role::Member).await;
    let r = h
        .app
        .client
        .get(h.app.url(&format!("/v1/messages/{id}")))
        .bearer_auth(other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    h.audit_clean().await;
}

#[sqlx::test]
async fn each_magic_number_fails_with_its_code_and_charges_nothing(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let cases = [
        ("+15005550001", "21211"),
        ("+15005550002", "21612"),
        ("+15005550003", "21408"),
        ("+15005550004", "21610"),
        ("+15005550009", "21614"),
    ];
    let mut ids = Vec::new();
    for (to, _) in cases {
        ids.push(h.accept(to, "Reminder").await);
    }
    h.drain(DRAIN).await;
    for ((to, code), id) in cases.iter().zip(ids) {
        let m = h.message(id).await;
        assert_eq!(
            (m.status, m.error_code.as_deref()),
            (MessageStatus::Failed, Some(*code)),
            "{to}"
        );
        assert!(m.error_message.is_some());
    }
    assert_eq!(
        h.available().await,
        10,
        "failed sends are released, not charged"
    );
    // 21610: the number is now opted out, and refused at accept time.
    let (status, v) = h
        .send(json!({"to": "+15005550004", "body": "again"}), None)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("recipient_opted_out"))
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_429_snoozes_then_the_message_goes_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio.script([Behaviour::RateLimit(1)]);
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    assert_eq!(h.twilio.requests().len(), 2);
    assert_eq!(h.twilio.messages().len(), 1);
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_twilio_outage_until_the_attempt_cap_releases_and_dead_letters(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio
        .script(std::iter::repeat_n(Behaviour::ServerError(500), 8));
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Failed, Some("provider_unavailable"))
    );
    assert_eq!(h.twilio.requests().len(), 8);
    assert_eq!(h.available().await, 10);
    assert_eq!(h.deps.queues.store("sms").stats().await.unwrap().dead, 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn insufficient_credits_fail_the_message_without_a_send(pool: PgPool) {
    let h = Harness::new(pool, 0).await;
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Failed, Some("insufficient_credits"))
    );
    assert!(h.twilio.requests().is_empty());
    assert_eq!(
        h.deps.queues.store("sms").stats().await.unwrap().dead,
        0,
        "not retried"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn long_and_unicode_messages_are_charged_by_segments(pool: PgPool) {
    let h = Harness::new(pool, 20).await;
    let swahili = "Habari Bw. Juma, tunakukumbusha kuwa ankara yako namba INV-2024-0117 ya kiasi cha TZS 450,000 \
                   imepita tarehe ya mwisho ya malipo. Tafadhali lipa kupitia M-Pesa au benki leo ili kuepuka usumbufu. Asante.";
    let (_, v) = h
        .send(json!({"to": "0754123456", "body": swahili}), None)
        .await;
    assert_eq!(
        (
            v["encoding"].as_str(),
            v["segments"].as_i64(),
            v["credits"].as_i64()
        ),
        (Some("GSM-7"), Some(2), Some(2))
    );
    let emoji = "Asante sana! 🙏 Malipo yako yamepokelewa, karibu tena dukani kwetu kwa bidhaa mpya za msimu huu.";
    let (_, u) = h
        .send(json!({"to": "0754123457", "body": emoji}), None)
        .await;
    assert_eq!(
        (u["encoding"].as_str(), u["segments"].as_i64()),
        (Some("UCS-2"), Some(2))
    );
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 20 - 2 - 2);
    for v in [v, u] {
        let m = h.message(v["id"].as_str().unwrap().parse().unwrap()).await;
        assert_eq!((m.status, m.segments), (MessageStatus::Sent, 2));
    }
    h.audit_clean().await;
}

#[sqlx::test]
async fn more_segments_than_reserved_are_recorded_not_charged(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio.report_segments(Some(3));
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.segments, m.uncharged_credits),
        (MessageStatus::Sent, 3, 2)
    );
    assert_eq!(h.available().await, 9, "charged what was reserved");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_company_over_its_hourly_quota_waits_rather_than_fails(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    sqlx::query("UPDATE companies SET sms_per_hour = 2 WHERE id = $1")
        .bind(h.company.id)
        .execute(h.pool())
        .await
        .unwrap();
    let ids = [
        h.accept("0754123456", "a").await,
        h.accept("0754123457", "b").await,
        h.accept("0754123458", "c").await,
    ];
    h.drain(Duration::from_secs(3)).await;
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(h.message(id).await.status);
    }
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(
        statuses,
        [
            MessageStatus::Queued,
            MessageStatus::Sent,
            MessageStatus::Sent
        ]
    );
    let s = h.deps.queues.store("sms").stats().await.unwrap();
    assert_eq!(
        (s.delayed, s.dead),
        (1, 0),
        "the third is snoozed (about 30 minutes at 2 per hour), not failed"
    );
    assert_eq!(h.available().await, 8);
}

#[sqlx::test]
async fn a_company_sees_its_credits_not_the_providers_price(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    // What Twilio charged the platform, as its records give it.
    sqlx::query("UPDATE messages SET price = 0.0075, price_currency = 'USD' WHERE id = $1")
        .bind(id)
        .execute(h.pool())
        .await
        .unwrap();

    let get = |path: String| {
        let req = h.app.client.get(h.app.url(&path)).bearer_auth(&h.token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let one = get(format!("/v1/messages/{id}")).await;
    let listed = get("/v1/messages".to_string()).await;
    for m in [&one, &listed["messages"][0]] {
        assert_eq!(
            (m["status"].as_str(), m["credits"].as_i64()),
            (Some("sent"), Some(1)),
            "{m}"
        );
        for field in ["price", "price_currency"] {
            assert!(m.get(field).is_none(), "{field} shown to the company: {m}");
        }
    }
    let doc = get("/openapi.json".to_string()).await;
    let schema = &doc["components"]["schemas"]["Message"]["properties"];
    assert!(schema["credits"].is_object(), "{schema}");
    assert!(schema.get("price").is_none() && schema.get("price_currency").is_none());
}

#[sqlx::test]
async fn sends_never_have_more_requests_in_flight_than_the_account_allows(pool: PgPool) {
    let mut h = Harness::new(pool, 20).await;
    // Twilio allows this account two concurrent requests and answers each after 200 ms; the
    // workers run many sends at once.
    h.twilio.limit_in_flight(Some(2));
    h.twilio.answer_after(Duration::from_millis(200));
    h.deps.max_in_flight = 2;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(h.accept(&format!("+25575412{n:04}"), "Reminder").await);
    }
    h.drain(DRAIN).await;
    assert_eq!(
        h.twilio.concurrency_refusals(),
        0,
        "a request went past the account's concurrency cap"
    );
    for id in ids {
        assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    }
    assert_eq!(h.twilio.messages().len(), 12, "each sent once");
    assert_eq!(h.available().await, 8);
    h.audit_clean().await;
}
