//! A 10,000-message reminder batch: the time `POST /v1/messages/batch` takes to accept and
//! enqueue it (one HTTP request: validation, rendering, one bulk insert, bulk pushes), and the
//! time until every message is committed `sent` by the send workers (concurrency `SEND_CONCURRENCY`, default 256) through
//! the ledger and the fake Twilio. Two batches: explicit bodies, and the `payment_reminder`
//! template in Swahili with values per item. The bench company's quota is raised and its quiet
//! hours switched off.
//!
//! Run: `scripts/ensure-services && cargo bench --bench batch` (BENCH_MESSAGES=n, default 10000).
//! Uses its own database, `copcca_sms_bench_batch`, recreated on every run, and its own Redis prefix.

use std::time::{Duration, Instant};

use copcca_sms::accounts;
use copcca_sms::fakes::twilio::FakeTwilio;
use copcca_sms::providers::SmsGateway;
use copcca_sms::workers::Deps;
use serde_json::{Value, json};
use sqlx::PgPool;

mod support;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = support::env_number("BENCH_MESSAGES", 10_000);
    let (pool, url) = support::fresh_database("copcca_sms_bench_batch", 40).await?;

    let twilio = FakeTwilio::start().await?;
    let support::Served {
        state,
        public,
        queues,
    } = support::serve(&pool, &url, "batch", &[]).await?;
    let deps = Deps::with_gateway(
        pool.clone(),
        queues.clone(),
        SmsGateway::Twilio(Box::new(twilio.client(&state.config.public_url))),
        1_000_000,
    );
    let running = support::Workers::start(&deps, state.config.send_concurrency);

    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!(
        "batch bench: {n} messages in one request, worker concurrency {}, {} cores, PostgreSQL {version}",
        state.config.send_concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<22} {:>10} {:>10} {:>14} {:>12} {:>12}",
        "batch", "request", "segments", "accept+enqueue", "all sent", "messages/s"
    );
    for (name, item) in [
        ("explicit bodies", body_item as fn(usize) -> Value),
        ("template (sw)", template_item),
    ] {
        let (bytes, segments, accepted, sent) = scenario(&pool, &public, n, item).await?;
        println!(
            "{name:<22} {:>8.1}MB {segments:>10} {:>13.2}s {:>11.2}s {:>12.0}",
            bytes as f64 / 1e6,
            accepted.as_secs_f64(),
            sent.as_secs_f64(),
            n as f64 / sent.as_secs_f64()
        );
    }
    running.stop().await?;
    support::finish(&pool, &queues).await
}

fn number(i: usize) -> String {
    format!("07{}{:07}", [5, 6, 7][i % 3], i)
}

fn body_item(i: usize) -> Value {
    json!({"to": number(i), "body": format!("Kumbusho: ankara INV-{i:05} ya TZS 20,000 imepita tarehe. Tafadhali lipa leo.")})
}

fn template_item(i: usize) -> Value {
    json!({"to": number(i), "template": "payment_reminder", "language": "sw", "vars": {
        "customer_name": "Juma Hamisi", "invoice_number": format!("INV-2026-{i:05}"), "amount": 150000,
        "due_date": "2026-11-24", "payment_link": format!("https://pay.duka.co.tz/i/{i}"),
    }})
}

/// One company, one batch request of `n` items; returns the request's size, the segments
/// charged, the time to the 202, and the time until every message is `sent`.
async fn scenario(
    pool: &PgPool,
    public: &str,
    n: usize,
    item: fn(usize) -> Value,
) -> anyhow::Result<(usize, i64, Duration, Duration)> {
    let company = support::unthrottled_company(pool, "Duka la Mama", n as i64 * 4).await?;
    let key = accounts::create_api_key(pool, company.id, "bench").await?;
    let body = serde_json::to_vec(&json!({"messages": (0..n).map(item).collect::<Vec<_>>()}))?;
    let bytes = body.len();

    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{public}/v1/messages/batch"))
        .header("x-api-key", key.secret.expose())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    let accepted_in = started.elapsed();
    anyhow::ensure!(
        status == 202 && answer["accepted"] == n,
        "batch refused: {status} {answer}"
    );
    loop {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE status = 'sent' AND company_id = $1",
        )
        .bind(company.id)
        .fetch_one(pool)
        .await?;
        if sent as usize >= n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "only {sent} of {n} sent after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent_in = started.elapsed();
    let segments: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(segments), 0)::bigint FROM messages WHERE company_id = $1",
    )
    .bind(company.id)
    .fetch_one(pool)
    .await?;
    Ok((bytes, segments, accepted_in, sent_in))
}
