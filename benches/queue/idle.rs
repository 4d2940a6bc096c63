//! Scenario 2: idle pickup.

use super::*;

/// Waits for the next push: 50 ms apart on average, jittered by +-12.5 ms so the pushes do not
/// phase-lock with a 100 ms poll (with exactly 50 ms, every other push would wait the same).
pub(crate) async fn pace(next: &mut tokio::time::Instant) {
    *next += Duration::from_micros(rand::random_range(37_500..=62_500));
    tokio::time::sleep_until(*next).await;
}

pub(crate) async fn pickup(b: &Bench, backend: Backend) -> Result<(f64, f64, f64), String> {
    const PUSHES: u64 = 50;
    let probe = Probe::new(Work::Noop, PUSHES, None);
    let label = format!("idle-{}", uuid::Uuid::new_v4().simple());
    let mut sent = Vec::new();
    let r = match backend {
        Backend::Ours { batch, prefetch } => {
            let queue = format!("tp-{label}");
            let r = async {
                let queues = b.ours().await.map_err(|e| e.to_string())?;
                let w = start_ours(
                    &queues,
                    &queue,
                    ours_config(batch, prefetch),
                    probe.clone(),
                    CONCURRENCY,
                );
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                let producer = b.ours().await.map_err(|e| e.to_string())?.store(&queue);
                let mut next = tokio::time::Instant::now();
                for seq in 0..PUSHES {
                    pace(&mut next).await;
                    let j = new_job(&job(seq));
                    sent.push(Instant::now());
                    producer.enqueue(&[j]).await.map_err(|e| e.to_string())?;
                }
                let r = wait_target(&probe, &w, Duration::from_secs(40)).await;
                w.stop().await;
                r.map(drop)
            }
            .await;
            let _ = b.ours_cleanup(&queue).await;
            r
        }
        Backend::Apalis { batch } => {
            let queue = b.apalis_queue(&label);
            let config = apalis_config(&queue, batch);
            let r = async {
                let conn = b.apalis_conn().await.map_err(|e| e.to_string())?;
                let w = start_apalis(conn, config.clone(), probe.clone(), CONCURRENCY);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                let mut producer =
                    RedisStorage::<SmsJob>::new(b.apalis_conn().await.map_err(|e| e.to_string())?)
                        .with_config(config.clone());
                let mut next = tokio::time::Instant::now();
                for seq in 0..PUSHES {
                    pace(&mut next).await;
                    let j = job(seq);
                    sent.push(Instant::now());
                    producer.push(j).await.map_err(|e| e.to_string())?;
                }
                let r = wait_target(&probe, &w, Duration::from_secs(40)).await;
                w.stop().await;
                r.map(drop)
            }
            .await;
            let _ = b.apalis_cleanup(&queue).await;
            r
        }
    };
    r?;
    let mut ms: Vec<f64> = sent
        .iter()
        .enumerate()
        .map(|(seq, at)| {
            probe
                .start_of(seq as u64)
                .map(|s| s.saturating_duration_since(*at).as_secs_f64() * 1e3)
                .unwrap_or(f64::NAN)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms[ms.len() - 1],
    );
    println!(
        "  {:<34} idle pickup of {PUSHES} pushes: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        backend.label()
    );
    Ok((p50, p99, max))
}

/// Nearest rank on sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
