//! Scenario 3: recovery after kill -9.

use super::*;

pub(crate) const RECOVERY_CAP: Duration = Duration::from_secs(90);
pub(crate) const OURS_LEASE: Duration = Duration::from_secs(10);

pub(crate) fn child_command(mode: &str, envs: &[(&str, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("own path"));
    cmd.env("QUEUE_BENCH_CHILD", mode)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Kills the child with SIGKILL once it prints that it holds job `seq`; returns the kill time.
pub(crate) async fn kill_when_holding(
    child: &mut tokio::process::Child,
    seq: u64,
) -> Result<Instant, String> {
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let wanted = format!("HOLDING {seq}");
    let held = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == wanted {
                return true;
            }
        }
        false
    })
    .await;
    if held != Ok(true) {
        return Err("the child never took the job".into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // well into the job
    child.start_kill().map_err(|e| e.to_string())?; // SIGKILL
    let killed = Instant::now();
    child.wait().await.map_err(|e| e.to_string())?;
    Ok(killed)
}

/// Waits for job `seq` to start in `probe`, up to the cap.
pub(crate) async fn wait_start(probe: &Probe, seq: u64, killed: Instant) -> Option<Duration> {
    loop {
        if let Some(s) = probe.start_of(seq) {
            return Some(s.saturating_duration_since(killed));
        }
        if killed.elapsed() > RECOVERY_CAP {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn recovery_ours(b: &Bench, backend: Backend) -> Result<Option<Duration>, String> {
    let Backend::Ours { batch, prefetch } = backend else {
        unreachable!()
    };
    let queue = format!("recovery-{}", uuid::Uuid::new_v4().simple());
    let r = async {
        let queues = b.ours().await.map_err(|e| e.to_string())?;
        let mut long = job(1);
        long.sleep_ms = 60_000;
        queues
            .store(&queue)
            .enqueue(&[new_job(&long)])
            .await
            .map_err(|e| e.to_string())?;
        let mut child = child_command(
            "ours",
            &[
                ("QUEUE_BENCH_URL", b.url.clone()),
                ("QUEUE_BENCH_PREFIX", b.ours_prefix()),
                ("QUEUE_BENCH_QUEUE", queue.clone()),
                ("QUEUE_BENCH_BATCH", batch.to_string()),
                ("QUEUE_BENCH_PREFETCH", prefetch.to_string()),
            ],
        )
        .spawn()
        .map_err(|e| e.to_string())?;
        let killed = kill_when_holding(&mut child, 1).await?;
        let probe = Probe::new(Work::Noop, 1, None);
        let mut config = ours_config(batch, prefetch);
        config.lease = OURS_LEASE;
        let w = start_ours(&queues, &queue, config, probe.clone(), CONCURRENCY);
        let r = wait_start(&probe, 1, killed).await;
        w.stop().await;
        Ok(r)
    }
    .await;
    let _ = b.ours_cleanup(&queue).await;
    r
}

pub(crate) async fn recovery_apalis(
    b: &Bench,
    backend: Backend,
) -> Result<Option<Duration>, String> {
    let Backend::Apalis { batch } = backend else {
        unreachable!()
    };
    let queue = b.apalis_queue(&format!("recovery-{}", uuid::Uuid::new_v4().simple()));
    let config = apalis_config(&queue, batch);
    let r = async {
        let mut storage =
            RedisStorage::<SmsJob>::new(b.apalis_conn().await.map_err(|e| e.to_string())?)
                .with_config(config.clone());
        let mut long = job(1);
        long.sleep_ms = 60_000;
        storage.push(long).await.map_err(|e| e.to_string())?;
        let mut child = child_command(
            "apalis",
            &[
                ("QUEUE_BENCH_URL", b.url.clone()),
                ("QUEUE_BENCH_QUEUE", queue.clone()),
                ("QUEUE_BENCH_BATCH", batch.to_string()),
            ],
        )
        .spawn()
        .map_err(|e| e.to_string())?;
        let killed = kill_when_holding(&mut child, 1).await?;
        let probe = Probe::new(Work::Noop, 1, None);
        let conn = b.apalis_conn().await.map_err(|e| e.to_string())?;
        let w = start_apalis(conn, config.clone(), probe.clone(), CONCURRENCY);
        let r = wait_start(&probe, 1, killed).await;
        w.stop().await;
        Ok(r)
    }
    .await;
    let _ = b.apalis_cleanup(&queue).await;
    r
}
