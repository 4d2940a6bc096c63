//! `GET /metrics` after some traffic: fleet figures from this test's database and Redis
//! prefix, and the process's counters and histograms.

use std::collections::HashMap;

use copcca_sms::queue::QUEUES;
use sqlx::PgPool;

use crate::sending::{DRAIN, Harness};
use crate::support::{paid_payment, spawn_app_with};

/// `series{labels}` -> value, from OpenMetrics text.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

async fn scrape(client: &reqwest::Client, url: String) -> (String, HashMap<String, f64>) {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let series = parse(&text);
    (text, series)
}

#[sqlx::test]
async fn metrics_show_queues_messages_credits_payments_and_provider_calls(pool: PgPool) {
    let h = Harness::new(pool.clone(), 10).await;
    for n in 0..3 {
        h.accept(&format!("075412345{n}"), "Habari").await;
    }
    h.drain(DRAIN).await;
    paid_payment(&pool, h.company.id, 100).await;
    // A forged Twilio callback is refused and counted.
    let r = h
        .app
        .client
        .post(h.app.url("/webhooks/twilio/status"))
        .header("x-twilio-signature", "forged")
        .form(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (text, m) = scrape(&h.app.client, h.app.url("/metrics")).await;
    let get = |s: &str| {
        *m.get(s)
            .unwrap_or_else(|| panic!("{s} missing from:\n{text}"))
    };
    // Fleet: this test's database and queues.
    assert_eq!(get(r#"copcca_messages{status="sent"}"#), 3.0);
    assert_eq!(get(r#"copcca_messages{status="failed"}"#), 0.0);
    assert_eq!(
        get(r#"copcca_ledger_credits_total{operation="reserved"}"#),
        3.0
    );
    assert_eq!(
        get(r#"copcca_ledger_credits_total{operation="committed"}"#),
        3.0
    );
    assert_eq!(
        get(r#"copcca_ledger_credits_total{operation="released"}"#),
        0.0
    );
    assert_eq!(
        get(r#"copcca_ledger_credits_total{operation="refunded"}"#),
        0.0
    );
    assert_eq!(
        get(r#"copcca_ledger_credits_total{operation="adjusted_up"}"#),
        10.0
    );
    assert_eq!(get(r#"copcca_credits_balance{bucket="available"}"#), 7.0);
    assert_eq!(get(r#"copcca_credits_balance{bucket="reserved"}"#), 0.0);
    assert_eq!(
        get(r#"copcca_payments{method="bank_transfer",state="paid"}"#),
        1.0
    );
    assert_eq!(
        get(r#"copcca_payments{method="mpesa",state="pending"}"#),
        0.0
    );
    for queue in QUEUES {
        for state in ["ready", "in_flight", "delayed", "dead"] {
            assert_eq!(
                get(&format!(
                    r#"copcca_queue_jobs{{queue="{queue}",state="{state}"}}"#
                )),
                0.0,
                "drained"
            );
        }
    }
    assert_eq!(get(r#"copcca_scrape_source_up{source="postgres"}"#), 1.0);
    assert_eq!(get(r#"copcca_scrape_source_up{source="redis"}"#), 1.0);
    // Process series (shared by the tests of this binary: at least ours).
    assert!(
        get(r#"copcca_webhook_rejections_total{provider="twilio",reason="bad_signature"}"#) >= 1.0
    );
    assert!(
        get(
            r#"copcca_provider_request_duration_seconds_count{provider="twilio",operation="messages.create",status="ok"}"#
        ) >= 3.0
    );
    assert!(text.contains(r#"copcca_provider_request_duration_seconds_bucket{le="0.05",provider="twilio",operation="messages.create",status="ok"}"#), "{text}");
    assert!(
        get(
            r#"copcca_http_request_duration_seconds_count{method="POST",route="/v1/messages",status="202"}"#
        ) >= 3.0
    );
    assert!(text.contains("# TYPE copcca_provider_request_duration_seconds histogram"));
    assert!(text.contains("# TYPE copcca_ledger_credits counter"));

    // Jobs waiting show as depth at once; the database figures are those of the first scrape
    // until METRICS_CACHE_SECS (30 s here) have passed.
    h.accept("0754123999", "Habari tena").await;
    let (_, m) = scrape(&h.app.client, h.app.url("/metrics")).await;
    assert_eq!(m[r#"copcca_queue_jobs{queue="sms",state="ready"}"#], 1.0);
    assert_eq!(m[r#"copcca_messages{status="queued"}"#], 0.0);
    assert_eq!(m[r#"copcca_messages{status="sent"}"#], 3.0);
}

#[sqlx::test]
async fn scrapes_within_the_cache_period_read_the_tables_once(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("METRICS_CACHE_SECS", "2")]).await;
    let company =
        copcca_sms::accounts::create_company(&pool, "Duka", copcca_sms::domain::Country::TZ)
            .await
            .unwrap();
    let paid = r#"copcca_payments{method="bank_transfer",state="paid"}"#;
    let (_, first) = scrape(&app.client, app.url("/metrics")).await;
    assert_eq!(first[paid], 0.0);
    paid_payment(&pool, company.id, 100).await;
    // Concurrent scrapes too: all of them are answered from the one read.
    let scrapes =
        futures::future::join_all((0..5).map(|_| scrape(&app.client, app.url("/metrics")))).await;
    for (_, m) in &scrapes {
        assert_eq!(
            m[paid], 0.0,
            "the table changed, the figures are the cached ones"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, later) = scrape(&app.client, app.url("/metrics")).await;
    assert_eq!(later[paid], 1.0, "read again once the period is over");
}

#[sqlx::test]
async fn metrics_answer_without_redis_and_say_so(pool: PgPool) {
    let app = spawn_app_with(pool, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let (text, m) = scrape(&app.client, app.url("/metrics")).await;
    assert_eq!(m[r#"copcca_scrape_source_up{source="redis"}"#], 0.0);
    assert_eq!(m[r#"copcca_scrape_source_up{source="postgres"}"#], 1.0);
    assert!(!text.contains("copcca_queue_jobs{"), "{text}");
    assert_eq!(m[r#"copcca_messages{status="sent"}"#], 0.0);
}
