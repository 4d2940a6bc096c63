//! End-to-end sending throughput: `POST /v1/messages` (16 concurrent API clients) through the
//! queue, the send workers (concurrency `SEND_CONCURRENCY`), the ledger and the fake Twilio, until every message
//! is committed as `sent`; spread over 100 companies and all on one company. Beside it, the
//! same-run PostgreSQL bound: two single-row-update commits per message at the same concurrency.
//! Also printed: the mean size of the group-commit batches (API-key lookup, accept, read, reserve,
//! charge), and the CPU each message cost this process (API clients, service, workers, fake
//! Twilio), PostgreSQL and Redis, beside what the bound's messages cost and what 0.7x of the bound would leave per
//! message on this machine's cores. Last, the worker path alone: 100 companies' messages
//! accepted while no worker runs, then timed from the workers' start until all are sent.
//!
//! Run: `scripts/ensure-services && cargo bench --bench sending` (BENCH_MESSAGES=n, default 5000;
//! the send workers' concurrency is the service's, `SEND_CONCURRENCY`, default 256).
//! Uses its own database, `copcca_sms_bench_send`, recreated on every run, and its own Redis prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use copcca_sms::domain::CompanyId;
use copcca_sms::fakes::twilio::FakeTwilio;
use copcca_sms::providers::SmsGateway;
use copcca_sms::workers::Deps;
use copcca_sms::{accounts, metrics};
use sqlx::PgPool;

mod support;

use support::cpu::CpuTime;

const CLIENTS: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = support::env_number("BENCH_MESSAGES", 5_000);
    let (pool, url) = support::fresh_database("copcca_sms_bench_send", 40).await?;

    let twilio = FakeTwilio::start().await?;
    let support::Served {
        state,
        public,
        queues,
    } = support::serve(
        &pool,
        &url,
        "send",
        &[
            // The bench measures sending, not the per-company request limit.
            ("API_RATE_PER_SECOND", "0"),
        ],
    )
    .await?;
    let deps = Deps::with_gateway(
        pool.clone(),
        queues.clone(),
        SmsGateway::Twilio(Box::new(twilio.client(&state.config.public_url))),
        1_000_000,
    );

    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!(
        "sending bench: {n} messages per scenario, {CLIENTS} API clients, worker concurrency {}, {} cores, PostgreSQL {version}",
        state.config.send_concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<34} {:>12} {:>12} {:>10}",
        "scenario", "messages/s", "accept/s", "seconds"
    );
    let mut cpu_lines = Vec::new();
    let workers = state.config.send_concurrency;
    let mut run = async |name: &str, companies: usize, path: Path| -> anyhow::Result<f64> {
        let m = scenario(&pool, &public, &deps, workers, companies, n, path).await?;
        cpu_lines.push(format!("  {name}: {}", m.cpu.per(n)));
        let accepted = m.accept_rate.map_or("-".into(), |r| format!("{r:.0}"));
        println!(
            "{name:<34} {:>12.0} {accepted:>12} {:>10.2}",
            m.rate, m.secs
        );
        println!(
            "  mean items per grouped statement: key lookup {:.1}, accept {:.1}, read {:.1}, reserve {:.1}, charge {:.1}",
            m.batches[0], m.batches[1], m.batches[2], m.batches[3], m.batches[4]
        );
        Ok(m.rate)
    };
    let spread = run("100 companies", 100, Path::EndToEnd).await?;
    run("1 company", 1, Path::EndToEnd).await?;
    let before = CpuTime::now();
    let bound = postgres_bound(&pool, workers, n).await?;
    let bound_cpu = CpuTime::now().since(before);
    let worker_path = run("worker path, 100 companies", 100, Path::WorkersOnly).await?;
    println!(
        "{:<34} {bound:>12.0}",
        "PG bound (2 row-update commits/msg)"
    );
    println!("ratio, 100 companies / bound: {:.2}", spread / bound);
    println!("ratio, worker path / bound: {:.2}", worker_path / bound);
    println!("CPU per message:");
    for line in cpu_lines {
        println!("{line}");
    }
    println!("  PG bound: {}", bound_cpu.per(n));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  at 0.7x the bound, {cores} cores leave {:.0} µs per message for everything",
        cores as f64 * 1e6 / (0.7 * bound)
    );
    support::finish(&pool, &queues).await
}

/// What a scenario times.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// From the first API request until every message is sent, with the workers running.
    EndToEnd,
    /// The messages are accepted while no worker runs; timed from the workers' start until
    /// every message is sent.
    WorkersOnly,
}

struct Measured {
    /// Messages sent per second.
    rate: f64,
    /// Messages accepted per second (end to end only).
    accept_rate: Option<f64>,
    secs: f64,
    cpu: CpuTime,
    /// Mean items per grouped statement in this scenario: key lookup, accept, read, reserve,
    /// charge.
    batches: [f64; 5],
}

/// Sends `n` messages over `companies` through the API and the workers, timing `path`.
async fn scenario(
    pool: &PgPool,
    public: &str,
    deps: &Deps,
    workers: usize,
    companies: usize,
    n: usize,
    path: Path,
) -> anyhow::Result<Measured> {
    let companies = Companies::create(pool, companies, n).await?;
    let batches = BatchTotals::now();
    if path == Path::WorkersOnly {
        companies.accept_all(public, n).await?;
    }
    let (cpu_before, started) = (CpuTime::now(), Instant::now());
    let workers = support::Workers::start(deps, workers);
    let mut accept_rate = None;
    if path == Path::EndToEnd {
        companies.accept_all(public, n).await?;
        accept_rate = Some(n as f64 / started.elapsed().as_secs_f64());
    }
    companies.wait_until_sent(pool, n, started).await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = CpuTime::now().since(cpu_before);
    workers.stop().await?;
    let batches = batches.means_since();
    Ok(Measured {
        rate: n as f64 / secs,
        accept_rate,
        secs,
        cpu,
        batches,
    })
}

/// Group-commit totals (items, statements) of the key lookup, accept, read, reserve and charge
/// steps so far.
struct BatchTotals([(f64, f64); 5]);

impl BatchTotals {
    const STEPS: [&str; 5] = [
        "api_key",
        "accept",
        "send_read",
        "send_begin",
        "send_finish",
    ];

    fn now() -> Self {
        BatchTotals(Self::STEPS.map(|step| {
            let read = |what: &str| {
                let series = format!("copcca_group_commit_batch_items_{what}{{step=\"{step}\"}}");
                metrics::process_series(&series).unwrap_or(0.0)
            };
            (read("sum"), read("count"))
        }))
    }

    /// Mean items per statement of each step since `self` was taken.
    fn means_since(&self) -> [f64; 5] {
        let now = BatchTotals::now();
        std::array::from_fn(|i| {
            let (items, statements) = (now.0[i].0 - self.0[i].0, now.0[i].1 - self.0[i].1);
            if statements > 0.0 {
                items / statements
            } else {
                0.0
            }
        })
    }
}

/// A scenario's companies: each with enough credits for its share of `n` messages, and an API key.
struct Companies {
    ids: Vec<CompanyId>,
    keys: Arc<Vec<String>>,
}

impl Companies {
    async fn create(pool: &PgPool, companies: usize, n: usize) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let mut ids: Vec<CompanyId> = Vec::new();
        for _ in 0..companies {
            let c =
                support::unthrottled_company(pool, "Bench Co", (n / companies + 1) as i64).await?;
            keys.push(
                accounts::create_api_key(pool, c.id, "bench")
                    .await?
                    .secret
                    .expose()
                    .to_string(),
            );
            ids.push(c.id);
        }
        Ok(Companies {
            ids,
            keys: Arc::new(keys),
        })
    }

    /// `POST /v1/messages` `n` times, round robin over the companies, from `CLIENTS` clients.
    async fn accept_all(&self, public: &str, n: usize) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let (client, keys, url) = (client.clone(), self.keys.clone(), format!("{public}/v1/messages"));
                tokio::spawn(async move {
                    for i in (t..n).step_by(CLIENTS) {
                        let body = serde_json::json!({"to": format!("07541{:05}", i % 100_000), "body": format!("Reminder {i}: your invoice is due.")});
                        let r = client.post(&url).header("x-api-key", &keys[i % keys.len()]).json(&body).send().await?;
                        anyhow::ensure!(r.status() == 202, "accept failed: {}", r.status());
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        Ok(())
    }

    /// Waits until all `n` of the companies' messages are `sent` (10 minutes at most from `started`).
    async fn wait_until_sent(
        &self,
        pool: &PgPool,
        n: usize,
        started: Instant,
    ) -> anyhow::Result<()> {
        loop {
            let sent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM messages WHERE status = 'sent' AND company_id = ANY($1)",
            )
            .bind(self.ids.iter().map(|c| c.0).collect::<Vec<_>>())
            .fetch_one(pool)
            .await?;
            if sent as usize >= n {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "only {sent} of {n} sent after 10 minutes"
            );
            // Not more often: each look scans the scenario's messages, and its CPU would be
            // counted as theirs (every 20 ms, it was about 50 µs of PostgreSQL's per message).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Two autocommitted single-row updates per message, at the workers' concurrency.
async fn postgres_bound(pool: &PgPool, workers: usize, n: usize) -> anyhow::Result<f64> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT company_id FROM balances LIMIT 100")
        .fetch_all(pool)
        .await?;
    let ids = Arc::new(ids);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|t| {
            let (pool, ids) = (pool.clone(), ids.clone());
            tokio::spawn(async move {
                for i in (t..n).step_by(workers) {
                    for _ in 0..2 {
                        sqlx::query("UPDATE balances SET updated_at = now() WHERE company_id = $1")
                            .bind(ids[i % ids.len()])
                            .execute(&pool)
                            .await?;
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
