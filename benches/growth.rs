//! Cost as the tables grow: p50/p99 of the API's reads and writes, one reconciler pass, the
//! `/metrics` read, the full ledger audit and the audit since a checkpoint, with 10k and then 1M messages already in the tables
//! (10M on demand), each beside its target: flat within 1.5x of the smallest size.
//!
//! The history is generated in SQL, newest first, so that every size holds the same newest
//! messages and a larger size only adds older history: 11 companies (one big one with 60 % of the
//! messages, ten small ones), messages 3 s apart in every status (a fixed few queued and sending,
//! the rest delivered, sent, failed after a charge and refunded, failed at the provider with the
//! hold released, failed for want of credits, undelivered and refunded), their holds and ledger
//! entries (reserve, commit, release, refund) and credits (operator adjustments) such that the
//! audit is clean, and the big company's messages in batches of about 1,200. After each growth
//! step the tables are vacuumed and analysed (as autovacuum would). No worker runs: the service
//! answers the API and `/metrics` (`METRICS_CACHE_SECS=0`, so every scrape reads the tables);
//! the reconciler pass and the audit are called directly.
//!
//! Run: `scripts/ensure-services && cargo bench --bench growth` (about 5 minutes on 2 cores).
//! `BENCH_GROWTH_SIZES=10000,1000000` (messages; add 10000000 for 10M, about 10x longer and
//! 8 GB of disk), `BENCH_REQUESTS=n` (timed requests per HTTP figure, default 200),
//! `BENCH_GROWTH_KEEP=1` keeps the database for EXPLAIN afterwards. Uses its own database,
//! `copcca_sms_bench_growth`, recreated on every run and dropped at the end, and its own Redis
//! prefix.

use std::future::Future;
use std::time::{Duration, Instant};

use copcca_sms::accounts;
use copcca_sms::domain::{CompanyId, Country};
use copcca_sms::fakes::twilio::{self, FakeTwilio};
use copcca_sms::providers::SmsGateway;
use copcca_sms::workers::{Deps, reconcile};
use sqlx::PgPool;

mod support;

const DATABASE: &str = "copcca_sms_bench_growth";
/// Messages generated per transaction.
const CHUNK: i64 = 1_000_000;
/// The target: each figure at the largest size within this factor of the smallest size's.
const FLAT: f64 = 1.5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sizes: Vec<i64> = std::env::var("BENCH_GROWTH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    sizes.sort_unstable();
    anyhow::ensure!(
        sizes.first().is_some_and(|&s| s >= 1_000),
        "BENCH_GROWTH_SIZES: at least 1000 messages"
    );
    let requests = support::env_number("BENCH_REQUESTS", 200);
    let (pool, url) = support::fresh_database(DATABASE, 8).await?;

    let fake = FakeTwilio::start().await?;
    let support::Served {
        state,
        public,
        queues,
    } = support::serve(
        &pool,
        &url,
        "growth",
        &[
            // Every scrape reads the tables: the bench measures that read, not the cache.
            ("METRICS_CACHE_SECS", "0"),
            // The bench measures the reads, not the per-company request limit.
            ("API_RATE_PER_SECOND", "0"),
        ],
    )
    .await?;
    let deps = Deps::with_gateway(
        pool.clone(),
        queues.clone(),
        SmsGateway::Twilio(Box::new(fake.client(&state.config.public_url))),
        1_000_000,
    );

    let history = History::create(&pool).await?;
    let key = accounts::create_api_key(&pool, history.big, "bench")
        .await?
        .secret
        .expose()
        .to_string();
    let api = Api {
        client: reqwest::Client::new(),
        base: public.clone(),
        key,
    };

    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!(
        "growth bench: sizes {sizes:?} messages, {requests} requests per HTTP figure, {} cores, PostgreSQL {version}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let mut results: Vec<(i64, Vec<Figure>)> = Vec::new();
    let mut generated = 0;
    for &size in &sizes {
        let started = Instant::now();
        history.grow(&pool, generated, size).await?;
        generated = size;
        let rows: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM holds), (SELECT count(*) FROM ledger_entries)",
        )
        .fetch_one(&pool)
        .await?;
        println!(
            "\n{size} messages generated in {:.1} s: {} messages, {} holds, {} ledger entries",
            started.elapsed().as_secs_f64(),
            rows.0,
            rows.1,
            rows.2
        );
        let figures = measure(&pool, &api, &deps, &history, requests).await?;
        for f in &figures {
            println!("  {f}");
        }
        results.push((size, figures));
    }

    summary(&results);
    queues.delete_all().await?;
    pool.close().await;
    if std::env::var("BENCH_GROWTH_KEEP").is_err() {
        support::drop_database(DATABASE).await?;
    } else {
        println!("database {DATABASE} kept (BENCH_GROWTH_KEEP)");
    }
    Ok(())
}

/// One operation's latencies at one size.
struct Figure {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    /// Rows per second, for the audit.
    note: Option<String>,
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<40} p50 {:>9} p99 {:>9}",
            self.name,
            ms(self.p50),
            ms(self.p99)
        )?;
        if let Some(note) = &self.note {
            write!(f, "  {note}")?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Times `n` runs of `op` one after another (after a few untimed ones), p50 and p99.
async fn time<F, Fut>(n: usize, mut op: F) -> anyhow::Result<(Duration, Duration)>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for i in 0..n.min(3) {
        op(usize::MAX - i).await?;
    }
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        op(i).await?;
        took.push(started.elapsed());
    }
    took.sort_unstable();
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    Ok((at(0.50), at(0.99)))
}

/// The service's HTTP API as the big company's producer calls it.
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "GET {path}: {}", r.status());
        r.bytes().await?;
        Ok(())
    }

    async fn send(&self, i: usize) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "to": format!("07{}{:07}", [5, 6, 7][i % 3], i % 10_000_000),
            "body": format!("Reminder {i}: your invoice is due."),
        });
        let r = self
            .client
            .post(format!("{}/v1/messages", self.base))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 202, "POST /v1/messages: {}", r.status());
        r.bytes().await?;
        Ok(())
    }
}

/// Every figure at the current size.
async fn measure(
    pool: &PgPool,
    api: &Api,
    deps: &Deps,
    history: &History,
    requests: usize,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut add = |name, (p50, p99): (Duration, Duration)| {
        figures.push(Figure {
            name,
            p50,
            p99,
            note: None,
        })
    };
    add("POST /v1/messages", time(requests, |i| api.send(i)).await?);
    add(
        "GET /v1/messages?limit=50",
        time(requests, |_| api.get("/v1/messages?limit=50")).await?,
    );
    add(
        "GET /v1/messages?status=failed&limit=50",
        time(requests, |_| api.get("/v1/messages?status=failed&limit=50")).await?,
    );
    // One message was sent to this number, long ago at 1M (a filter checked on the rows walked).
    add(
        "GET /v1/messages?to=...&limit=50",
        time(requests.min(50), |_| {
            api.get("/v1/messages?to=%2B255700002001&limit=50")
        })
        .await?,
    );
    let batch = format!("/v1/batches/{}", history.batch);
    add(
        "GET /v1/batches/{id} (1,200 messages)",
        time(requests, |_| api.get(&batch)).await?,
    );
    add(
        "GET /v1/balance",
        time(requests, |_| api.get("/v1/balance")).await?,
    );
    add(
        "GET /metrics (cache off)",
        time(requests, |_| api.get("/metrics")).await?,
    );
    let settings = &reconcile::Settings::default();
    add(
        "one reconciler pass",
        time(10, |_| async move {
            reconcile::reconcile_once(deps, settings).await?;
            Ok(())
        })
        .await?,
    );
    let entries = &std::cell::Cell::new(0);
    let (p50, p99) = time(3, |_| async move {
        let report = copcca_sms::ledger::audit(pool).await?;
        anyhow::ensure!(report.is_clean(), "audit: {:?}", report.violations);
        entries.set(report.entries);
        Ok(())
    })
    .await?;
    let entries = entries.get();
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(pool)
        .await?;
    figures.push(Figure {
        name: "admin audit (full, clean)",
        p50,
        p99,
        note: Some(format!(
            "{:.0} ledger entries/s, {:.0} messages/s",
            entries as f64 / p50.as_secs_f64(),
            messages as f64 / p50.as_secs_f64()
        )),
    });
    figures.push(audit_since_checkpoint(pool, history, requests).await?);
    Ok(figures)
}

/// Rounds of the audit since a checkpoint: each round first sends a share of the messages the
/// POST figure accepted, in the ledger (credits added by the operator, then a reserve and a
/// commit per message, as a send would write them), then times the audit, which reads those
/// entries and the holds and messages they name, and records the next checkpoint.
async fn audit_since_checkpoint(
    pool: &PgPool,
    history: &History,
    requests: usize,
) -> anyhow::Result<Figure> {
    use copcca_sms::domain::CreditDelta;
    use copcca_sms::ledger::{self, BeginSend, FinishSend, Scope};

    let first = ledger::audit_and_checkpoint(pool, Scope::Full).await?;
    anyhow::ensure!(first.checkpoint.is_some(), "no checkpoint: {first:?}");
    const ROUNDS: usize = 5;
    let per_round = (requests / ROUNDS).max(1) as i64;
    let (mut took, mut entries) = (Vec::new(), 0);
    for _ in 0..ROUNDS {
        let queued: Vec<(copcca_sms::domain::MessageId, i64)> = sqlx::query_as(
            "SELECT id, credits FROM messages WHERE company_id = $1 AND status = 'queued'
             ORDER BY created_at DESC LIMIT $2",
        )
        .bind(history.big)
        .bind(per_round)
        .fetch_all(pool)
        .await?;
        let mut conn = pool.acquire().await?;
        let needed = queued.iter().map(|(_, c)| c).sum::<i64>().max(1);
        ledger::adjust(
            &mut conn,
            uuid::Uuid::new_v4(),
            history.big,
            CreditDelta::new(needed)?,
            "bench: credits for the round",
            "bench",
        )
        .await?;
        let begins: Vec<BeginSend> = queued
            .iter()
            .map(|&(message, credits)| {
                Ok(BeginSend {
                    company: history.big,
                    message,
                    credits: copcca_sms::domain::Credits::new(credits)?,
                    ttl: Duration::from_secs(3600),
                    seen: None,
                    attempt: uuid::Uuid::now_v7(),
                    account: None,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut finishes = Vec::new();
        for begun in ledger::begin_sends(&mut conn, &begins).await? {
            let Some(hold) = begun? else { continue };
            finishes.push(FinishSend {
                hold: hold.value.id,
                charge: hold.value.credits,
                provider: "twilio".into(),
                provider_id: format!("SM{}", hold.value.id.0.simple()),
                segments: 1,
                uncharged: 0,
                price: None,
                price_currency: None,
            });
        }
        for finished in ledger::finish_sends(&mut conn, &finishes).await? {
            finished?;
        }
        drop(conn);
        let started = Instant::now();
        let report = ledger::audit_and_checkpoint(pool, Scope::SinceCheckpoint).await?;
        took.push(started.elapsed());
        anyhow::ensure!(report.is_clean(), "audit: {:?}", report.violations);
        entries = report.entries;
    }
    took.sort_unstable();
    Ok(Figure {
        name: "admin audit (since checkpoint)",
        p50: took[ROUNDS / 2],
        p99: took[ROUNDS - 1],
        note: Some(format!("{entries} new ledger entries a round")),
    })
}

/// Each figure at every size beside the smallest size's, against the target.
fn summary(results: &[(i64, Vec<Figure>)]) {
    let Some((smallest, base)) = results.first() else {
        return;
    };
    println!("\nsummary: each size against {smallest} messages, target <= {FLAT}x (p50 and p99)");
    for (size, figures) in &results[1..] {
        println!("{size} messages:");
        for (f, b) in figures.iter().zip(base) {
            let r50 = f.p50.as_secs_f64() / b.p50.as_secs_f64();
            let r99 = f.p99.as_secs_f64() / b.p99.as_secs_f64();
            let verdict = if f.name == "admin audit (full, clean)" {
                "(full audit: grows with the rows by nature; see rows/s)"
            } else if r50 <= FLAT && r99 <= FLAT {
                "met"
            } else {
                "NOT MET"
            };
            println!(
                "  {:<40} p50 {:>9} -> {:>9} ({r50:.2}x)  p99 {:>9} -> {:>9} ({r99:.2}x)  {verdict}",
                f.name,
                ms(b.p50),
                ms(f.p50),
                ms(b.p99),
                ms(f.p99)
            );
        }
    }
}

/// The generated history's companies and the batch the bench reads.
struct History {
    /// The company with 60 % of the messages, whose API key the bench uses.
    big: CompanyId,
    small: Vec<CompanyId>,
    /// One of the big company's batches among the newest messages (in every size).
    batch: uuid::Uuid,
    /// "Now" for the history: message `i` was created `3 i` seconds before it.
    now: chrono::DateTime<chrono::Utc>,
}

impl History {
    async fn create(pool: &PgPool) -> anyhow::Result<Self> {
        let big = support::unthrottled_company(pool, "Duka Kubwa", 1_000)
            .await?
            .id;
        let mut small = Vec::new();
        for i in 0..10 {
            let country = if i % 2 == 0 { Country::TZ } else { Country::KE };
            small.push(
                accounts::create_company(pool, &format!("Duka {i}"), country)
                    .await?
                    .id,
            );
        }
        let batch: uuid::Uuid = sqlx::query_scalar("SELECT md5('batch' || 1)::uuid")
            .fetch_one(pool)
            .await?;
        Ok(History {
            big,
            small,
            batch,
            now: chrono::Utc::now(),
        })
    }

    /// Adds messages `from..to` (older than those before them), with their holds, entries and
    /// credits, then vacuums and analyses.
    async fn grow(&self, pool: &PgPool, from: i64, to: i64) -> anyhow::Result<()> {
        let mut start = from;
        while start < to {
            let end = (start + CHUNK).min(to);
            let mut tx = pool.begin().await?;
            sqlx::query(GENERATE)
                .bind(start)
                .bind(end)
                .bind(self.big)
                .bind(self.small.iter().map(|c| c.0).collect::<Vec<_>>())
                .bind(self.now)
                .execute(&mut *tx)
                .await?;
            for sql in INSERTS {
                let sql = sql.replace("{account}", twilio::ACCOUNT_SID);
                let query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                let query = if sql.contains("$1") {
                    query.bind(self.big)
                } else {
                    query
                };
                query.execute(&mut *tx).await?;
            }
            sqlx::query(BALANCES).execute(&mut *tx).await?;
            tx.commit().await?;
            start = end;
        }
        for table in [
            "messages",
            "holds",
            "ledger_entries",
            "balances",
            "message_batches",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

/// Messages `$1..$2` of the history (message `i` created `3 i` s before `$5`), one row each with
/// what follows from its status: big company `$3`, small ones `$4`.
const GENERATE: &str = "
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT i, t.created,
       (lpad(to_hex((extract(epoch FROM t.created) * 1000)::bigint), 12, '0') || '7'
        || lpad(to_hex(i % 4096), 3, '0') || '8' || lpad(to_hex(i), 15, '0'))::uuid AS id,
       CASE WHEN i % 5 < 3 THEN $3::uuid
            ELSE ($4::uuid[])[1 + (i / 5) % cardinality($4::uuid[])] END AS company,
       CASE WHEN i < 50 THEN 'queued' WHEN i < 100 THEN 'sending'
            WHEN i % 100 < 70 OR i % 100 >= 95 THEN 'delivered'
            WHEN i % 100 < 80 THEN 'sent'
            WHEN i % 100 < 92 THEN 'failed'
            ELSE 'undelivered' END AS status,
       CASE WHEN i < 50 THEN 'none' WHEN i < 100 THEN 'active'
            WHEN i % 100 BETWEEN 85 AND 89 THEN 'released'
            WHEN i % 100 BETWEEN 90 AND 91 THEN 'none'
            ELSE 'committed' END AS hold,
       (i >= 100 AND (i % 100 BETWEEN 80 AND 84 OR i % 100 BETWEEN 92 AND 94)) AS refunded,
       CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END AS segments
FROM generate_series($1::bigint, $2::bigint - 1) AS i,
     LATERAL (SELECT $5::timestamptz - i * interval '3 seconds' AS created) AS t";

/// The rows that follow from `gen` (`$1`: the big company, whose messages are in batches;
/// `{account}`: the fake Twilio account the sends went through).
const INSERTS: &[&str] = &[
    "INSERT INTO message_batches (id, company_id, total, accepted, created_by, created_at)
     SELECT md5('batch' || (i / 2000))::uuid, company, count(*), count(*), 'api_key:bench', min(created)
     FROM gen WHERE company = $1 GROUP BY i / 2000, company
     ON CONFLICT (id) DO UPDATE SET total = message_batches.total + excluded.total,
                                    accepted = message_batches.accepted + excluded.accepted",
    "INSERT INTO messages (id, company_id, batch_id, to_number, body, encoding, segments, credits,
                           status, provider, provider_id, provider_account, error_code, error_message,
                           price, price_currency, sender, send_attempt_started_at, send_attempt_id,
                           unconfirmed_at, created_at, updated_at)
     SELECT id, company, CASE WHEN company = $1 THEN md5('batch' || (i / 2000))::uuid END,
            '+2557' || lpad((i % 100000000)::text, 8, '0'),
            CASE WHEN segments = 2 THEN repeat('Kumbusho: ankara ya TZS 20,000 imepita tarehe. ', 4)
                 ELSE 'Reminder ' || i || ': your invoice is due.' END,
            'GSM-7', segments, segments, status,
            CASE WHEN hold <> 'none' THEN 'twilio' END,
            CASE WHEN hold = 'committed' THEN 'SM' || md5(i::text) END,
            CASE WHEN hold <> 'none' THEN '{account}' END,
            CASE WHEN status = 'undelivered' THEN '30003'
                 WHEN status = 'failed' AND hold = 'committed' THEN '30008'
                 WHEN status = 'failed' AND hold = 'released' THEN '21211'
                 WHEN status = 'failed' THEN 'insufficient_credits' END,
            CASE WHEN status = 'undelivered' THEN 'Unreachable destination handset'
                 WHEN status = 'failed' AND hold = 'committed' THEN 'Unknown error'
                 WHEN status = 'failed' AND hold = 'released' THEN 'The To number is not valid'
                 WHEN status = 'failed' THEN 'Not enough credits' END,
            CASE WHEN hold = 'committed' AND status IN ('delivered', 'undelivered', 'failed') THEN 0.0079 END,
            CASE WHEN hold = 'committed' AND status IN ('delivered', 'undelivered', 'failed') THEN 'USD' END,
            'api_key:bench',
            CASE WHEN hold <> 'none' THEN created + interval '1 second' END,
            CASE WHEN hold <> 'none' THEN md5('attempt' || i)::uuid END,
            CASE WHEN status = 'sent' AND created < now() - interval '72 hours'
                 THEN created + interval '72 hours' END,
            created,
            created + CASE status WHEN 'queued' THEN interval '0' WHEN 'sending' THEN interval '1 second'
                                  WHEN 'sent' THEN interval '2 seconds' ELSE interval '9 seconds' END
     FROM gen",
    "INSERT INTO holds (id, company_id, message_id, credits, status, charged, expires_at, created_at,
                        resolved_at)
     SELECT md5('hold' || i)::uuid, company, id, segments, hold,
            CASE WHEN hold = 'committed' THEN segments END,
            CASE WHEN hold = 'active' THEN now() + interval '1 day' ELSE created + interval '10 minutes' END,
            created + interval '1 second',
            CASE WHEN hold <> 'active' THEN created + interval '2 seconds' END
     FROM gen WHERE hold <> 'none'",
    "INSERT INTO ledger_entries (company_id, kind, available_delta, reserved_delta, adjustment_id,
                                 actor, reason, created_at)
     SELECT company, 'adjustment', sum(segments) + 100, 0, gen_random_uuid(), 'bench', 'bench credits',
            min(created) - interval '1 minute'
     FROM gen GROUP BY company",
    "INSERT INTO ledger_entries (company_id, kind, available_delta, reserved_delta, hold_id, message_id,
                                 actor, created_at)
     SELECT company, e.kind, e.a, e.r, CASE WHEN e.kind <> 'refund' THEN md5('hold' || i)::uuid END,
            id, 'ledger', created + e.after
     FROM gen, LATERAL (VALUES ('reserve', -segments, segments, interval '1 second', hold <> 'none'),
                               ('commit', 0, -segments, interval '2 seconds', hold = 'committed'),
                               ('release', segments, -segments, interval '2 seconds', hold = 'released'),
                               ('refund', segments, 0, interval '10 seconds', refunded))
                   AS e(kind, a, r, after, present)
     WHERE e.present
     ORDER BY created, e.after",
];

/// Every balance recomputed from the entries (the generated rows bypass the ledger functions).
const BALANCES: &str = "
UPDATE balances b SET available = s.a, reserved = s.r, total_purchased = s.p, total_sent = s.s,
                      total_refunded = s.f, total_adjusted = s.j, updated_at = now()
FROM (SELECT company_id, sum(available_delta) AS a, sum(reserved_delta) AS r,
             COALESCE(sum(available_delta) FILTER (WHERE kind IN ('purchase', 'purchase_reversal')), 0) AS p,
             COALESCE(sum(-(available_delta + reserved_delta)) FILTER (WHERE kind = 'commit'), 0) AS s,
             COALESCE(sum(available_delta) FILTER (WHERE kind = 'refund'), 0) AS f,
             COALESCE(sum(available_delta) FILTER (WHERE kind = 'adjustment'), 0) AS j
      FROM ledger_entries GROUP BY company_id) AS s
WHERE b.company_id = s.company_id";
