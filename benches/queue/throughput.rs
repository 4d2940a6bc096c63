//! Scenario 1: throughput.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Ours { batch: usize, prefetch: usize },
    Apalis { batch: usize },
}

impl Backend {
    pub(crate) fn label(&self) -> String {
        match self {
            Backend::Ours { batch, prefetch } => format!("ours batch {batch}/prefetch {prefetch}"),
            Backend::Apalis { batch } => format!("apalis-redis batch_size {batch}"),
        }
    }
}

/// Median, lowest and highest jobs/s of the repeats, or why a run failed.
pub(crate) type Cell = Result<(f64, f64, f64), String>;

/// Each throughput figure is the median of this many runs, each on a fresh queue and backlog.
pub(crate) const REPEATS: usize = 5;

/// Runs `x` and `y` alternately, `REPEATS` times each, so that load from elsewhere on the
/// machine hits both alike; a side stops at its first failure.
pub(crate) async fn pair(
    b: &Bench,
    (x, y): (Backend, Backend),
    backlog: u64,
    target: u64,
    work: Work,
) -> (Cell, Cell) {
    let mut xs: Result<Vec<f64>, String> = Ok(Vec::new());
    let mut ys: Result<Vec<f64>, String> = Ok(Vec::new());
    for _ in 0..REPEATS {
        for (backend, acc) in [(x, &mut xs), (y, &mut ys)] {
            if acc.is_ok() {
                match throughput_once(b, backend, backlog, target, work).await {
                    Ok(rate) => {
                        if let Ok(v) = acc {
                            v.push(rate);
                        }
                    }
                    Err(e) => *acc = Err(e),
                }
            }
        }
    }
    (summarise(xs), summarise(ys))
}

pub(crate) fn summarise(rates: Result<Vec<f64>, String>) -> Cell {
    let mut rates = rates?;
    rates.sort_by(f64::total_cmp);
    Ok((rates[rates.len() / 2], rates[0], rates[rates.len() - 1]))
}

pub(crate) async fn throughput_once(
    b: &Bench,
    backend: Backend,
    backlog: u64,
    target: u64,
    work: Work,
) -> Result<f64, String> {
    let label = format!(
        "{}-{}-{}",
        backlog,
        if work == Work::Http { "http" } else { "noop" },
        uuid::Uuid::new_v4().simple()
    );
    let http = (work == Work::Http).then(|| {
        (
            b.client.clone(),
            format!("{}/2010-04-01/Accounts/{SID}/Messages.json", b.twilio),
        )
    });
    let probe = Probe::new(work, target, http);
    let result = match backend {
        Backend::Ours { batch, prefetch } => {
            let queue = format!("tp-{label}");
            let r = async {
                let queues = b.ours().await.map_err(|e| e.to_string())?;
                let enq = b
                    .enqueue_ours(&queues, &queue, backlog)
                    .await
                    .map_err(|e| format!("enqueue: {e}"))?;
                let cpu0 = Sample::take(&mut b.admin.clone()).await;
                let t0 = Instant::now();
                let w = start_ours(
                    &queues,
                    &queue,
                    ours_config(batch, prefetch),
                    probe.clone(),
                    CONCURRENCY,
                );
                let r = wait_target(&probe, &w, Duration::from_secs(120)).await;
                let cpu1 = Sample::take(&mut b.admin.clone()).await;
                w.stop().await;
                Ok::<_, String>((enq, r.map(|t| t - t0), cpu0, cpu1))
            }
            .await;
            let _ = b.ours_cleanup(&queue).await;
            r
        }
        Backend::Apalis { batch } => {
            let queue = b.apalis_queue(&label);
            let config = apalis_config(&queue, batch);
            let r = async {
                let enq = b
                    .enqueue_apalis(&config, backlog)
                    .await
                    .map_err(|e| format!("enqueue: {e}"))?;
                let conn = b.apalis_conn().await.map_err(|e| e.to_string())?;
                let cpu0 = Sample::take(&mut b.admin.clone()).await;
                let t0 = Instant::now();
                let w = start_apalis(conn, config.clone(), probe.clone(), CONCURRENCY);
                let r = wait_target(&probe, &w, Duration::from_secs(120)).await;
                let cpu1 = Sample::take(&mut b.admin.clone()).await;
                w.stop().await;
                Ok::<_, String>((enq, r.map(|t| t - t0), cpu0, cpu1))
            }
            .await;
            let _ = b.apalis_cleanup(&queue).await;
            r
        }
    };
    let what = format!(
        "{:<34} backlog {:>7}, {:<5} timed {:>6} jobs",
        backend.label(),
        backlog,
        if work == Work::Http { "HTTP" } else { "no-op" },
        target
    );
    match result {
        Ok((enq, Ok(took), cpu0, cpu1)) => {
            let rate = target as f64 / took.as_secs_f64();
            println!(
                "  {what}: {rate:>8.0} jobs/s ({:.2} s; enqueue {enq:.0} jobs/s; {})",
                took.as_secs_f64(),
                cpu1.since(&cpu0)
            );
            Ok(rate)
        }
        Ok((_, Err(e), ..)) | Err(e) => {
            println!("  {what}: FAILED: {e}");
            Err(e)
        }
    }
}
