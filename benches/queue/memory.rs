//! Scenario 4: peak memory of our worker (child process).

use super::*;

pub(crate) struct Memory {
    pub(crate) peak_kib: u64,
    pub(crate) start_kib: u64,
    pub(crate) processed: u64,
    pub(crate) secs: f64,
    pub(crate) error: Option<String>,
}

pub(crate) async fn memory_ours(
    b: &Bench,
    backend: Backend,
    backlog: u64,
) -> Result<Memory, String> {
    let Backend::Ours { batch, prefetch } = backend else {
        unreachable!()
    };
    let queue = format!("memory-{}", uuid::Uuid::new_v4().simple());
    let r = async {
        let queues = b.ours().await.map_err(|e| e.to_string())?;
        b.enqueue_ours(&queues, &queue, backlog)
            .await
            .map_err(|e| e.to_string())?;
        let child = child_command(
            "memory",
            &[
                ("QUEUE_BENCH_URL", b.url.clone()),
                ("QUEUE_BENCH_PREFIX", b.ours_prefix()),
                ("QUEUE_BENCH_QUEUE", queue.clone()),
                ("QUEUE_BENCH_BATCH", batch.to_string()),
                ("QUEUE_BENCH_PREFETCH", prefetch.to_string()),
                ("QUEUE_BENCH_TARGET", backlog.to_string()),
                (
                    "QUEUE_BENCH_TWILIO",
                    format!("{}/2010-04-01/Accounts/{SID}/Messages.json", b.twilio),
                ),
            ],
        )
        .spawn()
        .map_err(|e| e.to_string())?;
        let out = tokio::time::timeout(Duration::from_secs(200), child.wait_with_output())
            .await
            .map_err(|_| "the memory child did not finish within 200 s".to_string())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .ok_or_else(|| format!("the memory child printed no result ({})", out.status))?;
        let kv: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|p| p.split_once('='))
            .collect();
        let num = |k: &str| kv.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        Ok(Memory {
            peak_kib: num("hwm_kib") as u64,
            start_kib: num("start_kib") as u64,
            processed: num("processed") as u64,
            secs: num("secs"),
            error: line.split_once("error=").map(|(_, e)| e.replace('_', " ")),
        })
    }
    .await;
    let _ = b.ours_cleanup(&queue).await;
    r
}
