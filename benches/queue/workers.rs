//! Workers under apalis' Monitor.

use super::*;

pub(crate) struct Running {
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) handle: tokio::task::JoinHandle<()>,
    pub(crate) error: Arc<Mutex<Option<String>>>,
}

impl Running {
    pub(crate) fn last_error(&self) -> Option<String> {
        self.error.lock().expect("lock").clone()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(20), &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
        }
    }
}

pub(crate) fn monitor() -> (Monitor, Arc<Mutex<Option<String>>>) {
    let error = Arc::new(Mutex::new(None));
    let seen = error.clone();
    let monitor = Monitor::new()
        .on_event(move |_, ev| {
            if let Event::Error(e) = ev {
                *seen.lock().expect("lock") = Some(e.to_string());
            }
        })
        .shutdown_timeout(Duration::from_secs(15));
    (monitor, error)
}

pub(crate) fn spawn_monitor(monitor: Monitor, error: Arc<Mutex<Option<String>>>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let seen = error.clone();
    let handle = tokio::spawn(async move {
        let res = monitor
            .run_with_signal(async move {
                let _ = stopped.await;
                Ok(())
            })
            .await;
        if let Err(e) = res {
            *seen.lock().expect("lock") = Some(e.to_string());
        }
    });
    Running {
        stop: Some(stop),
        handle,
        error,
    }
}

pub(crate) fn start_ours(
    queues: &Queues,
    queue: &str,
    config: ConsumerConfig,
    probe: Arc<Probe>,
    concurrency: usize,
) -> Running {
    let backend = queues.backend::<SmsJob>(queue, config, 5);
    let (monitor, error) = monitor();
    let monitor = monitor.register(move |_| {
        WorkerBuilder::new(worker_name("bench"))
            .backend(backend.clone())
            .data(probe.clone())
            .concurrency(concurrency)
            .build(ours_handler)
    });
    spawn_monitor(monitor, error)
}

pub(crate) fn start_apalis(
    conn: ConnectionManager,
    config: ApalisConfig,
    probe: Arc<Probe>,
    concurrency: usize,
) -> Running {
    let (monitor, error) = monitor();
    let monitor = monitor.register(move |_| {
        let storage = RedisStorage::<SmsJob>::new(conn.clone())
            .with_config(config.clone())
            .poll_with_interval(Duration::from_millis(100));
        WorkerBuilder::new(worker_name("bench-apalis"))
            .backend(storage)
            .data(probe.clone())
            .concurrency(concurrency)
            .build(apalis_handler)
    });
    spawn_monitor(monitor, error)
}

/// Waits for the probe's target; fails when the worker exits, stalls for 20 s, or `limit` passes.
pub(crate) async fn wait_target(
    p: &Probe,
    w: &Running,
    limit: Duration,
) -> Result<Instant, String> {
    let began = Instant::now();
    let mut last = (0u64, Instant::now());
    loop {
        if let Some(t) = p.reached.get() {
            return Ok(*t);
        }
        tokio::select! {
            _ = p.bell.notified() => continue,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let done = p.done.load(Ordering::SeqCst);
        if done != last.0 {
            last = (done, Instant::now());
        }
        let why = if w.handle.is_finished() {
            Some("the worker exited".to_string())
        } else if last.1.elapsed() > Duration::from_secs(20) {
            Some("no progress for 20 s".to_string())
        } else if began.elapsed() > limit {
            Some(format!("not done within {} s", limit.as_secs()))
        } else {
            None
        };
        if let Some(why) = why {
            if let Some(t) = p.reached.get() {
                return Ok(*t);
            }
            let error = w.last_error().map(|e| format!("; {e}")).unwrap_or_default();
            return Err(format!("{why} after {done}/{} jobs{error}", p.target));
        }
    }
}
