//! Queue benchmark: our Redis backend (`src/queue/`) beside apalis-redis 1.0.0, on the same job,
//! the same handlers and the same apalis worker (`WorkerBuilder` + `Monitor`, concurrency 64).
//!
//! Run: `scripts/ensure-services && cargo bench --bench queue` (`REDIS_URL`, default
//! redis://127.0.0.1:6379). Every run uses key prefixes of its own (`qbench-<run>`), deletes the
//! keys it created at the end (SCAN + UNLINK on those prefixes, never FLUSHDB) and takes about
//! five minutes, 90 s of which wait for apalis-redis to recover a killed worker.
//!
//! Scenarios, each on a fresh queue:
//! 1. throughput: enqueue a backlog with bulk pushes, then start one worker and time from the start
//!    of its monitor to the return of the handler of the Nth job (the whole backlog for 5k and 20k,
//!    the first 20k for 300k), with a no-op handler and with an HTTP POST to a local mock of
//!    Twilio's Messages endpoint (axum, in this process; one shared reqwest client);
//! 2. idle pickup: an idle worker, then 50 single pushes 50 ms apart from another connection;
//!    latency = handler start - push start (the push's own round trip included);
//! 3. recovery after kill -9: a worker in a child process (this binary, `QUEUE_BENCH_CHILD`) takes a
//!    60 s job and is killed with SIGKILL; a fresh worker starts here at once; time from the kill
//!    to the job's next start;
//! 4. peak resident memory (VmHWM) of a child process running our worker at concurrency 64 with
//!    the HTTP handler through a whole 300k backlog.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_redis::{Config as ApalisConfig, RedisStorage};
use copcca_sms::queue::{ConsumerConfig, JobError, NewJob, Queues, RetryPolicy, worker_name};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, oneshot};

// One module per part of the bench; each sees the shared imports above and its siblings' items
// through `use super::*`.
mod child;
mod configs;
mod handlers;
mod idle;
mod memory;
mod mock_twilio;
mod plumbing;
mod recovery;
mod throughput;
mod workers;

use configs::*;
use handlers::*;
use plumbing::*;
use throughput::*;
use workers::*;
// The bench's own `Backend` (which of the two is measured), not apalis' trait.
use child::*;
use idle::*;
use memory::*;
use mock_twilio::*;
use recovery::*;
use throughput::Backend;

pub(crate) const CONCURRENCY: usize = 64;
pub(crate) const SID: &str = "AC00000000000000000000000000000000";
pub(crate) const APALIS_CHUNK: usize = 1_000;
pub(crate) const OURS_CHUNK: usize = 5_000;
/// apalis-redis' fetch script unpacks every due job at once and breaks past ~8,000
/// (APALIS.md §1.12): the bench moves them scheduled -> active beforehand, 5,000 per call.
pub(crate) const APALIS_PROMOTE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return #ids
";

/// About the size of a real `SendSms` payload with its text (~170 bytes of JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SmsJob {
    pub(crate) company_id: uuid::Uuid,
    pub(crate) to: String,
    pub(crate) body: String,
    pub(crate) seq: u64,
    #[serde(default)]
    pub(crate) sleep_ms: u64,
}

pub(crate) fn job(seq: u64) -> SmsJob {
    SmsJob {
        company_id: uuid::Uuid::from_u128(0x5eed_0000 + u128::from(seq % 100)),
        to: format!("+2557{:08}", seq % 100_000_000),
        body: format!("Reminder: invoice INV-{seq:07} of TZS 150,000 is due on 31 Dec 2026."),
        seq,
        sleep_ms: 0,
    }
}

pub(crate) fn new_job(j: &SmsJob) -> NewJob {
    NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        args: serde_json::to_string(j).expect("jobs serialise"),
        max_attempts: 5,
        idempotency_key: None,
        run_at_ms: None,
    }
}

// The run

fn geo_mean(a: &Cell, b: &Cell) -> f64 {
    match (a, b) {
        (Ok((x, ..)), Ok((y, ..))) => (x * y).sqrt(),
        _ => 0.0,
    }
}

fn rate_cell(c: &Cell) -> String {
    match c {
        Ok((median, low, high)) => format!("{median:.0} ({low:.0}-{high:.0})"),
        Err(_) => "FAILED (see note)".into(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(mode) = std::env::var("QUEUE_BENCH_CHILD") {
        return child(&mode).await;
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut admin = admin_connection(&url).await?;
    let bench = Bench {
        url,
        run,
        admin: admin.clone(),
        twilio: mock_twilio().await?,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        apalis_queues: Mutex::default(),
    };
    let server = redis_info(&mut admin, "server").await;
    let persistence = redis_info(&mut admin, "persistence").await;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown CPU");
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
        / 1024.0;
    println!(
        "queue bench (run {}): {} cores ({model}), {mem_gib:.0} GiB; Redis {} at {} (aof_enabled {}, {} clients connected); tokio {} worker threads",
        bench.run,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        server.get("redis_version").map_or("?", String::as_str),
        bench.url,
        persistence.get("aof_enabled").map_or("?", String::as_str),
        redis_info(&mut admin, "clients")
            .await
            .get("connected_clients")
            .map_or("?", String::as_str),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "worker: apalis WorkerBuilder + Monitor, concurrency {CONCURRENCY}; HTTP = form POST to a local axum mock of Twilio's Messages.json (201 + JSON), one shared reqwest client, same process"
    );
    println!(
        "load average at the start: {} (other work on the machine skews the figures)",
        loadavg()
    );
    let started = Instant::now();
    let result = run_all(&bench).await;
    match bench.cleanup_all().await {
        Ok(n) => println!("cleanup: {n} leftover keys of this run deleted"),
        Err(e) => println!("cleanup failed: {e}"),
    }
    println!(
        "total {:.0} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    result
}

async fn run_all(b: &Bench) -> anyhow::Result<()> {
    // Tuning pass: 20k backlog, whole backlog timed, each backend's two candidate settings.
    println!(
        "\ntuning (20k backlog, all 20k timed; median of {REPEATS}, the two candidates alternating):"
    );
    let mut best_ours = (
        Backend::Ours {
            batch: 100,
            prefetch: 200,
        },
        -1.0,
    );
    let mut best_apalis = (Backend::Apalis { batch: 10 }, -1.0);
    for (candidates, best) in [
        (
            (
                Backend::Ours {
                    batch: 100,
                    prefetch: 200,
                },
                Backend::Ours {
                    batch: 200,
                    prefetch: 400,
                },
            ),
            &mut best_ours,
        ),
        (
            (
                Backend::Apalis { batch: 10 },
                Backend::Apalis { batch: 100 },
            ),
            &mut best_apalis,
        ),
    ] {
        let noop = pair(b, candidates, 20_000, 20_000, Work::Noop).await;
        let http = pair(b, candidates, 20_000, 20_000, Work::Http).await;
        for (backend, noop, http) in [
            (candidates.0, &noop.0, &http.0),
            (candidates.1, &noop.1, &http.1),
        ] {
            let score = geo_mean(noop, http);
            println!(
                "  => {:<34} no-op {}, HTTP {}",
                backend.label(),
                rate_cell(noop),
                rate_cell(http)
            );
            if score > best.1 {
                *best = (backend, score);
            }
        }
    }
    let (ours, apalis) = (best_ours.0, best_apalis.0);
    println!(
        "kept (higher geometric mean of no-op and HTTP): {} and {}",
        ours.label(),
        apalis.label()
    );

    println!("\nthroughput (median of {REPEATS} per cell; ours and apalis-redis alternating):");
    let mut rows: Vec<(String, Cell, Cell)> = Vec::new();
    let mut failures = Vec::new();
    for (backlog, target, name) in [
        (5_000u64, 5_000u64, "5k"),
        (20_000, 20_000, "20k"),
        (300_000, 20_000, "300k"),
    ] {
        for work in [Work::Noop, Work::Http] {
            let (o, a) = pair(b, (ours, apalis), backlog, target, work).await;
            let row = format!(
                "{name} backlog, {}{}",
                if work == Work::Http {
                    "HTTP POST"
                } else {
                    "no-op"
                },
                if backlog == target {
                    String::new()
                } else {
                    " (first 20k)".into()
                }
            );
            if let Err(e) = &o {
                failures.push(format!("ours, {row}: {e}"));
            }
            if let Err(e) = &a {
                failures.push(format!("apalis-redis, {row}: {e}"));
            }
            rows.push((row, o, a));
        }
    }

    println!("\nidle pickup:");
    let ours_pickup = pickup(b, ours).await;
    let apalis_pickup = pickup(b, apalis).await;

    println!(
        "\nrecovery after kill -9 (ours: lease {} s; apalis-redis: default heartbeat, capped at {} s; both at once):",
        OURS_LEASE.as_secs(),
        RECOVERY_CAP.as_secs()
    );
    let (ours_rec, apalis_rec) = tokio::join!(recovery_ours(b, ours), recovery_apalis(b, apalis));
    let rec_cell = |r: &Result<Option<Duration>, String>| match r {
        Ok(Some(d)) => format!("{:.1}", d.as_secs_f64()),
        Ok(None) => format!("> {}", RECOVERY_CAP.as_secs()),
        Err(e) => format!("FAILED: {e}"),
    };
    println!(
        "  ours: {} s; apalis-redis: {} s",
        rec_cell(&ours_rec),
        rec_cell(&apalis_rec)
    );

    println!("\npeak memory (our worker in a child process, HTTP handler, whole 300k backlog):");
    let mem = memory_ours(b, ours, 300_000).await;
    let mem_cell = match &mem {
        Ok(m) => {
            println!(
                "  processed {} jobs in {:.1} s ({:.0} jobs/s); VmRSS at start {:.1} MiB, VmHWM {:.1} MiB{}",
                m.processed,
                m.secs,
                m.processed as f64 / m.secs.max(1e-9),
                m.start_kib as f64 / 1024.0,
                m.peak_kib as f64 / 1024.0,
                m.error
                    .as_ref()
                    .map(|e| format!(" (stopped early: {e})"))
                    .unwrap_or_default()
            );
            format!("{:.1} MiB", m.peak_kib as f64 / 1024.0)
        }
        Err(e) => {
            println!("  FAILED: {e}");
            "FAILED".into()
        }
    };

    // The table.
    println!();
    println!(
        "{:<36} {:>22} {:>24}",
        "scenario", "ours jobs/s", "apalis-redis jobs/s"
    );
    for (row, o, a) in &rows {
        println!("{row:<36} {:>22} {:>24}", rate_cell(o), rate_cell(a));
    }
    let pick = |p: &Result<(f64, f64, f64), String>| match p {
        Ok((p50, p99, _)) => format!("{p50:.1} / {p99:.1}"),
        Err(_) => "FAILED".into(),
    };
    println!(
        "{:<36} {:>22} {:>24}",
        "idle pickup p50 / p99 (ms)",
        pick(&ours_pickup),
        pick(&apalis_pickup)
    );
    println!(
        "{:<36} {:>22} {:>24}",
        "recovery after kill -9 (s)",
        rec_cell(&ours_rec),
        rec_cell(&apalis_rec)
    );
    println!(
        "{:<36} {:>22} {:>24}",
        "peak RSS, c=64, 300k backlog", mem_cell, "not measured"
    );
    println!();
    println!(
        "settings: ours = {}, lease 30 s (10 s in the recovery scenario); apalis-redis = Config::default().queue(..).lock_tasks(false).batch_size({}), poll_with_interval(100 ms), default heartbeat (30 s x 10 missed), due jobs promoted scheduled -> active by the bench in chunks of 5,000 before the worker starts (APALIS.md 1.12 defect 1).",
        ours.label(),
        match apalis {
            Backend::Apalis { batch } => batch,
            _ => 0,
        },
    );
    println!(
        "jobs/s: median of {REPEATS} runs (lowest-highest), each on a fresh queue; timed from the start of the worker's Monitor (registration / consumer-group setup included) to the return of the handler of the Nth job (N = the whole backlog for 5k and 20k, the first 20,000 of 300k); enqueueing (bulk: ours 5,000 per call in script chunks of 1,000, apalis push_bulk of 1,000) is before and not timed."
    );
    println!(
        "idle pickup: worker idle 1.5 s, then 50 single pushes from another connection, 50 ms apart on average (uniform 37.5-62.5 ms, so they cannot phase-lock with apalis' 100 ms poll); latency = handler start - instant before the push call. recovery: SIGKILL of a child worker 0.5 s into a 60 s job, a fresh worker started here at once; time from the kill to the job's next handler start. peak RSS: VmHWM of the child at the end."
    );
    for f in &failures {
        println!("note: {f}");
    }
    if let Err(e) = &ours_pickup {
        println!("note: ours idle pickup failed: {e}");
    }
    if let Err(e) = &apalis_pickup {
        println!("note: apalis-redis idle pickup failed: {e}");
    }
    Ok(())
}
