//! Ledger throughput: reserve+commit pairs per second with 16 concurrent tasks, spread over 100
//! companies and all on one company (the worst case: every pair serialises on one balance row).
//! A pair is the send job's two ledger steps for one message, each a batch of one
//! (`ledger::begin_sends`, `ledger::finish_sends`; they also mark the message `sending`, `sent`).
//!
//! Run: `scripts/ensure-services && cargo bench --bench ledger` (BENCH_PAIRS=n to change the
//! work per scenario). Uses its own database, `copcca_sms_bench`, recreated on every run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use copcca_sms::domain::{CompanyId, Country, CreditDelta, Credits, MessageId};
use copcca_sms::ledger::{BeginSend, FinishSend};
use copcca_sms::{accounts, ledger};
use sqlx::PgPool;

mod support;

const TASKS: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pairs = support::env_number("BENCH_PAIRS", 20_000);
    let (pool, _) = support::fresh_database("copcca_sms_bench", (TASKS + 2) as u32).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!(
        "ledger bench: {pairs} reserve+commit pairs per scenario, {TASKS} tasks, {} cores, PostgreSQL {version}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10}",
        "scenario", "pairs/s", "p50 ms", "p99 ms", "seconds"
    );
    for (name, companies) in [("100 companies", 100), ("1 company", 1)] {
        let r = scenario(&pool, companies, pairs).await?;
        println!(
            "{name:<22} {:>10.0} {:>10.2} {:>10.2} {:>10.2}",
            r.rate, r.p50, r.p99, r.secs
        );
    }
    let r = postgres_bound(&pool, pairs).await?;
    println!(
        "{:<22} {:>10.0} {:>10.2} {:>10.2} {:>10.2}",
        "PG bound, 100 rows", r.rate, r.p50, r.p99, r.secs
    );
    println!(
        "(PG bound: two autocommitted single-row UPDATEs per pair, the floor of two durable commits)"
    );
    let audit = ledger::audit(&pool).await?;
    println!(
        "audit after the run: {}",
        if audit.is_clean() {
            "clean"
        } else {
            "VIOLATIONS"
        }
    );
    anyhow::ensure!(audit.is_clean(), "{:?}", audit.violations);
    Ok(())
}

/// The same concurrency doing only what any two-phase charge must: two single-row-update commits.
async fn postgres_bound(pool: &PgPool, pairs: usize) -> anyhow::Result<Figures> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT company_id FROM balances LIMIT 100")
        .fetch_all(pool)
        .await?;
    let ids = Arc::new(ids);
    timed(pairs, |t| {
        let (pool, ids) = (pool.clone(), ids.clone());
        async move {
            let mut latencies = Vec::new();
            for i in (t..pairs).step_by(TASKS) {
                let began = Instant::now();
                for _ in 0..2 {
                    sqlx::query("UPDATE balances SET updated_at = now() WHERE company_id = $1")
                        .bind(ids[i % ids.len()])
                        .execute(&pool)
                        .await?;
                }
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        }
    })
    .await
}

/// Runs `TASKS` copies of `task(t)` at once and summarises their per-pair latencies.
async fn timed<F, Fut>(pairs: usize, task: F) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS).map(|t| tokio::spawn(task(t))).collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    Ok(Figures {
        rate: pairs as f64 / secs,
        p50: pct(0.5),
        p99: pct(0.99),
        secs,
    })
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    secs: f64,
}

async fn scenario(pool: &PgPool, companies: usize, pairs: usize) -> anyhow::Result<Figures> {
    let mut ids: Vec<CompanyId> = Vec::new();
    for _ in 0..companies {
        let c = accounts::create_company(pool, "Bench Co", Country::TZ).await?;
        let grant = CreditDelta::new((pairs / companies + 1) as i64)?;
        ledger::adjust(
            &mut pool.acquire().await.unwrap(),
            uuid::Uuid::now_v7(),
            c.id,
            grant,
            "bench",
            "bench",
        )
        .await?;
        ids.push(c.id);
    }
    // Message rows first (one bulk insert), so only the ledger is timed.
    let messages: Vec<(CompanyId, MessageId)> = (0..pairs)
        .map(|i| (ids[i % companies], MessageId::new()))
        .collect();
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, sender)
         SELECT m, c, '+255754123456', 'bench', 'GSM-7', 1, 1, 'bench' FROM UNNEST($1::uuid[], $2::uuid[]) AS t(m, c)",
    )
    .bind(messages.iter().map(|(_, m)| m.0).collect::<Vec<_>>())
    .bind(messages.iter().map(|(c, _)| c.0).collect::<Vec<_>>())
    .execute(pool)
    .await?;

    let messages = Arc::new(messages);
    timed(pairs, |t| {
        let (pool, messages) = (pool.clone(), messages.clone());
        async move {
            let mut latencies = Vec::new();
            for (company, message) in messages.iter().skip(t).step_by(TASKS) {
                let began = Instant::now();
                let begin = BeginSend {
                    company: *company,
                    message: *message,
                    credits: Credits::new(1)?,
                    ttl: Duration::from_secs(600),
                    seen: None, // a new message, never attempted
                    attempt: uuid::Uuid::now_v7(),
                    account: None,
                };
                let begun = one(ledger::begin_sends(&mut *pool.acquire().await?, &[begin]).await?)?;
                let hold = begun?.ok_or_else(|| anyhow::anyhow!("message {message} settled"))?;
                let finish = FinishSend {
                    hold: hold.value.id,
                    charge: Credits::new(1)?,
                    provider: "bench".into(),
                    provider_id: format!("SM{}", hold.value.id.0.simple()),
                    segments: 1,
                    uncharged: 0,
                    price: None,
                    price_currency: None,
                };
                one(ledger::finish_sends(&mut *pool.acquire().await?, &[finish]).await?)??;
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        }
    })
    .await
}

/// The answer of a batch of one.
fn one<A>(answers: Vec<A>) -> anyhow::Result<A> {
    let [answer] = <[A; 1]>::try_from(answers)
        .map_err(|a| anyhow::anyhow!("{} answers for one item", a.len()))?;
    Ok(answer)
}
