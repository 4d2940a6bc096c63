//! Child processes.

use super::*;

pub(crate) fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is set for a child"))
}

pub(crate) fn env_num(k: &str) -> usize {
    env(k).parse().unwrap_or_else(|_| panic!("{k} is a number"))
}

pub(crate) async fn child(mode: &str) -> anyhow::Result<()> {
    match mode {
        "ours" => {
            let queues =
                Queues::connect(&env("QUEUE_BENCH_URL"), &env("QUEUE_BENCH_PREFIX")).await?;
            let mut config = ours_config(
                env_num("QUEUE_BENCH_BATCH"),
                env_num("QUEUE_BENCH_PREFETCH"),
            );
            config.lease = OURS_LEASE;
            let probe = Probe::new(Work::Announce, u64::MAX, None);
            let _w = start_ours(
                &queues,
                &env("QUEUE_BENCH_QUEUE"),
                config,
                probe,
                CONCURRENCY,
            );
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        "apalis" => {
            let conn = apalis_redis::connect(env("QUEUE_BENCH_URL")).await?;
            let config = apalis_config(&env("QUEUE_BENCH_QUEUE"), env_num("QUEUE_BENCH_BATCH"));
            let probe = Probe::new(Work::Announce, u64::MAX, None);
            let _w = start_apalis(conn, config, probe, CONCURRENCY);
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        "memory" => {
            let start_kib = proc_status_kb("VmRSS");
            let queues =
                Queues::connect(&env("QUEUE_BENCH_URL"), &env("QUEUE_BENCH_PREFIX")).await?;
            let config = ours_config(
                env_num("QUEUE_BENCH_BATCH"),
                env_num("QUEUE_BENCH_PREFETCH"),
            );
            let target = env_num("QUEUE_BENCH_TARGET") as u64;
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?;
            let probe = Probe::new(
                Work::Http,
                target,
                Some((client, env("QUEUE_BENCH_TWILIO"))),
            );
            let t0 = Instant::now();
            let w = start_ours(
                &queues,
                &env("QUEUE_BENCH_QUEUE"),
                config,
                probe.clone(),
                CONCURRENCY,
            );
            let r = wait_target(&probe, &w, Duration::from_secs(150)).await;
            let secs = t0.elapsed().as_secs_f64();
            w.stop().await;
            let error = r
                .err()
                .map(|e| format!(" error={}", e.replace(' ', "_")))
                .unwrap_or_default();
            println!(
                "RESULT processed={} secs={secs:.2} hwm_kib={} start_kib={start_kib}{error}",
                probe.done.load(Ordering::SeqCst),
                proc_status_kb("VmHWM"),
            );
        }
        other => anyhow::bail!("unknown child mode {other}"),
    }
    Ok(())
}
