//! What an operator sees: `/metrics`, JSON logs with request and job ids, and secrets never
//! in an answer or a log line. Log tests run the real binary as a child process with
//! `LOG_FORMAT=json` and read what it prints.

mod logs;
mod metrics;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The URL of the test's own database (made by `#[sqlx::test]`).
pub async fn database_url(pool: &PgPool) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms_test".into()),
    )
    .unwrap();
    url.set_path(&db);
    url.to_string()
}

/// `copcca-sms <command>` running as a child process on a free port, its stdout and stderr
/// collected line by line.
pub struct Service {
    child: Child,
    pub base: String,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Starts `command` (`serve` or `run`) over the test's database with `env`, and waits until
    /// it answers `/healthz`.
    pub async fn start(pool: &PgPool, command: &str, env: &[(&str, &str)]) -> Service {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_copcca-sms"));
        cmd.arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url(pool).await)
            .env("REDIS_URL", crate::queue::redis_url())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_URL", &base)
            .env("LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        readers.push(collect(BufReader::new(stdout), output.clone()));
        readers.push(collect(BufReader::new(stderr), output.clone()));
        let service = Service {
            child,
            base,
            output,
            readers,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(service.url("/healthz")).send().await
                && r.status() == 200
            {
                return service;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "copcca-sms {command} did not start: {:?}",
                service.lines()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Stops the process and returns everything it printed.
    pub async fn stop(mut self) -> Vec<String> {
        if let Some(pid) = self.child.id() {
            // SIGTERM: the graceful path, as an orchestrator stops it.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let exited = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        if exited.is_err() {
            let _ = self.child.kill().await;
        }
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        self.lines()
    }
}

fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: BufReader<R>,
    into: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = reader.lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    })
}

/// The lines that are JSON objects (all of them with `LOG_FORMAT=json`).
pub fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

/// Waits until `check` holds, polling; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
