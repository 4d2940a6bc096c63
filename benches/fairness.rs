//! Fair share and exact pacing at one Twilio sender (issue: a company's single reminder must not
//! wait behind another's batch). The whole service runs in this process: the HTTP API, the send
//! workers (concurrency `SEND_CONCURRENCY`, default 256) over the real Redis queue and PostgreSQL ledger, and the fake Twilio,
//! which answers every request after 150 ms and refuses (429 / 20429) past 25 concurrent ones,
//! as the real account does. The sender's cap is 20 segments a second.
//!
//! Two scenarios, each for BENCH_TRIALS trials (default 3):
//! - **1 × batch + 1**: company A posts one batch of BENCH_FAIR_BATCH messages (default 1,000);
//!   company B posts a single message 2 s later and every 2.5 s after, while A's batch is sent.
//! - **10 companies + 1**: ten companies post a batch of BENCH_FAIR_EACH messages each (default
//!   100; the 500 on demand) at once; B as above.
//!
//! Printed beside each target, from this one run: B's wait from its request until its message
//! reached Twilio (p50, p99, max), the batch's completion time over (messages sent / cap), the
//! most requests in any 1 s window at Twilio, the share of the cap used while work waited, and
//! Twilio's 429s.
//!
//! Run: `scripts/ensure-services && cargo bench --bench fairness`. Uses its own database,
//! `copcca_sms_bench_fair`, recreated on every run, and its own Redis prefix.

use std::time::{Duration, Instant};

use copcca_sms::accounts;
use copcca_sms::fakes::twilio::FakeTwilio;
use copcca_sms::providers::SmsGateway;
use copcca_sms::workers::Deps;
use sqlx::PgPool;

mod support;

const CAP: u32 = 20;
const IN_FLIGHT: usize = 25;
const TWILIO_LATENCY: Duration = Duration::from_millis(150);
/// B's numbers: told apart from the batches' at the fake by this prefix.
const B_PREFIX: &str = "+2557159";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let trials = support::env_number("BENCH_TRIALS", 3);
    let batch = support::env_number("BENCH_FAIR_BATCH", 1_000);
    let each = support::env_number("BENCH_FAIR_EACH", 100);
    let (pool, url) = support::fresh_database("copcca_sms_bench_fair", 20).await?;

    let twilio = FakeTwilio::start().await?;
    twilio.answer_after(TWILIO_LATENCY);
    twilio.limit_in_flight(Some(IN_FLIGHT));
    let support::Served {
        state,
        public,
        queues,
    } = support::serve(&pool, &url, "fair", &[("API_RATE_PER_SECOND", "0")]).await?;
    let deps = Deps::builder(
        pool.clone(),
        queues.clone(),
        SmsGateway::Twilio(Box::new(twilio.client(&state.config.public_url))),
        CAP,
    )
    .max_in_flight(IN_FLIGHT as u32)
    .build();
    let stop = support::Workers::start(&deps, state.config.send_concurrency);

    println!(
        "fairness bench: cap {CAP}/s, Twilio answers after {} ms and allows {IN_FLIGHT} in flight, worker concurrency {}, {trials} trials, {} cores",
        TWILIO_LATENCY.as_millis(),
        state.config.send_concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let scenarios = [
        (format!("1 x {batch} batch + 1"), vec![batch]),
        (format!("10 companies x {each} + 1"), vec![each; 10]),
    ];
    let mut rows = Vec::new();
    for (name, batches) in &scenarios {
        let mut all = Trial::default();
        for t in 0..trials {
            let trial = run_trial(&pool, &public, &twilio, batches).await?;
            println!(
                "  {name}, trial {}: B waited max {:.2} s over {} sends; batch {:.3}x; busiest second {}; cap used {:.3}; 429s {}",
                t + 1,
                trial.b_waits.iter().cloned().fold(0.0, f64::max),
                trial.b_waits.len(),
                trial.completion_ratio,
                trial.busiest,
                trial.cap_used,
                trial.refusals
            );
            all.merge(trial);
        }
        rows.push((name.clone(), all));
    }
    stop.stop().await?;

    println!();
    println!(
        "{:<32} {:>26} {:>26} {:>10}",
        "figure", scenarios[0].0, scenarios[1].0, "target"
    );
    let col = |f: &dyn Fn(&Trial) -> String| (f(&rows[0].1), f(&rows[1].1));
    let line = |figure: &str, f: &dyn Fn(&Trial) -> String, target: &str| {
        let (a, b) = col(f);
        println!("{figure:<32} {a:>26} {b:>26} {target:>10}");
    };
    line(
        "B's wait p50 (s)",
        &|t| format!("{:.2}", percentile(&t.b_waits, 0.50)),
        "",
    );
    line(
        "B's wait p99 (s)",
        &|t| format!("{:.2}", percentile(&t.b_waits, 0.99)),
        "<= 1",
    );
    line("B's sends measured", &|t| t.b_waits.len().to_string(), "");
    line(
        "batch completion / (n / cap)",
        &|t| format!("{:.3}", t.completion_ratio),
        "<= 1.05",
    );
    line(
        "most requests in any 1 s",
        &|t| t.busiest.to_string(),
        &format!("<= {CAP}"),
    );
    line(
        "cap used while work waits",
        &|t| format!("{:.3}", t.cap_used),
        ">= 0.95",
    );
    line("429s from Twilio", &|t| t.refusals.to_string(), "0");
    println!("(batch completion and cap used: the worst trial; waits: all trials together)");
    support::finish(&pool, &queues).await
}

/// What one trial measured (or, merged, the worst of several and every wait).
#[derive(Default)]
struct Trial {
    b_waits: Vec<f64>,
    completion_ratio: f64,
    busiest: usize,
    cap_used: f64,
    refusals: usize,
}

impl Trial {
    fn merge(&mut self, t: Trial) {
        self.b_waits.extend(t.b_waits);
        self.completion_ratio = self.completion_ratio.max(t.completion_ratio);
        self.busiest = self.busiest.max(t.busiest);
        self.cap_used = if self.cap_used == 0.0 {
            t.cap_used
        } else {
            self.cap_used.min(t.cap_used)
        };
        self.refusals += t.refusals;
    }
}

/// Posts the batches at once, B's single messages 2 s later and every 2.5 s while the batches
/// last, and waits until every message reached Twilio.
async fn run_trial(
    pool: &PgPool,
    public: &str,
    twilio: &FakeTwilio,
    batches: &[usize],
) -> anyhow::Result<Trial> {
    let client = reqwest::Client::new();
    let total: usize = batches.iter().sum();
    let mut keys = Vec::new();
    for n in batches {
        keys.push(company_key(pool, *n as i64).await?);
    }
    let b_key = company_key(pool, 1_000).await?;
    let seen = twilio.requests().len();
    let refused_before = twilio.concurrency_refusals();
    let started = Instant::now();
    let posts: Vec<_> = keys
        .iter()
        .zip(batches)
        .enumerate()
        .map(|(c, (key, n))| {
            let messages: Vec<_> = (0..*n)
                .map(|i| serde_json::json!({"to": format!("+255754{c:02}{i:04}"), "body": format!("Reminder {i}: your invoice is due.")}))
                .collect();
            client
                .post(format!("{public}/v1/messages/batch"))
                .header("x-api-key", key)
                .json(&serde_json::json!({ "messages": messages }))
                .send()
        })
        .collect();
    for r in futures::future::join_all(posts).await {
        let r = r?;
        anyhow::ensure!(r.status() == 202, "batch refused: {}", r.status());
    }
    // B's single messages, while the batches are being sent.
    let mut b_sent: Vec<(String, Instant)> = Vec::new();
    let mut next_b = started + Duration::from_secs(2);
    let expected = total as f64 / f64::from(CAP);
    loop {
        let arrived = twilio.requests().len() - seen;
        if arrived >= total + b_sent.len() {
            break;
        }
        anyhow::ensure!(
            started.elapsed().as_secs_f64() < 3.0 * expected + 60.0,
            "only {arrived} of {} reached Twilio",
            total + b_sent.len()
        );
        if Instant::now() >= next_b && started.elapsed().as_secs_f64() < expected - 2.0 {
            let to = format!("{B_PREFIX}{:05}", b_sent.len());
            let at = Instant::now();
            let r = client
                .post(format!("{public}/v1/messages"))
                .header("x-api-key", &b_key)
                .json(&serde_json::json!({"to": to, "body": "Your reminder."}))
                .send()
                .await?;
            anyhow::ensure!(r.status() == 202, "B refused: {}", r.status());
            b_sent.push((to, at));
            next_b += Duration::from_millis(2_500);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every request at Twilio in this trial, with when it came.
    let requests: Vec<(Instant, String)> = twilio
        .request_times()
        .into_iter()
        .zip(twilio.requests())
        .skip(seen)
        .map(|(at, params)| {
            let to = params
                .iter()
                .find(|(k, _)| k == "To")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (at, to)
        })
        .collect();
    let b_waits = b_sent
        .iter()
        .filter_map(|(to, at)| {
            let reached = requests.iter().find(|(_, t)| t == to)?.0;
            Some(reached.duration_since(*at).as_secs_f64())
        })
        .collect();
    let times: Vec<Instant> = requests.iter().map(|(at, _)| *at).collect();
    let (first, last) = (times[0], *times.last().expect("requests"));
    let span = last.duration_since(first).as_secs_f64();
    let completion = last.duration_since(started).as_secs_f64();
    Ok(Trial {
        b_waits,
        completion_ratio: completion / (times.len() as f64 / f64::from(CAP)),
        busiest: busiest_second(&times),
        // Between the first request and the last, work was always waiting.
        cap_used: (times.len() - 1) as f64 / (span * f64::from(CAP)),
        refusals: twilio.concurrency_refusals() - refused_before,
    })
}

/// The most requests whose arrival falls in any window of one second.
fn busiest_second(times: &[Instant]) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| t.duration_since(sorted[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

/// A company that may send `credits` messages, nothing else holding it back; its API key.
async fn company_key(pool: &PgPool, credits: i64) -> anyhow::Result<String> {
    let c = support::unthrottled_company(pool, "Fair Co", credits).await?;
    Ok(accounts::create_api_key(pool, c.id, "bench")
        .await?
        .secret
        .expose()
        .to_string())
}
