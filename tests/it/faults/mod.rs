//! One test per named failure point (`copcca_sms::faults`): the real `copcca-sms` binary runs
//! with `FAILPOINTS=<point>=crash` and stops there as if SIGKILLed; a fresh worker (in this
//! process, no fail point) finishes; then the message or payment is final, charged or credited
//! at most once (exactly once where it should be), Twilio got one request per message, and the
//! ledger audit is clean.

mod purchases;
mod reconciler;
mod sending;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use copcca_sms::fakes::twilio::{self as fake, FakeTwilio};
use copcca_sms::workers::Deps;
use sqlx::PgPool;
use tokio::process::Command;

use crate::observability::database_url;

/// The signal `std::process::abort` ends a process with.
const SIGABRT: i32 = 6;

/// The jobs of a process that died are taken over once they have been idle this long.
const LEASE: Duration = Duration::from_secs(1);

/// `copcca-sms <command>` armed to crash at one point.
pub struct Crashing {
    point: &'static str,
    child: tokio::process::Child,
}

impl Crashing {
    /// Starts `copcca-sms <command>` over the test's database and `deps`' Redis prefix with
    /// `FAILPOINTS=<point>=crash` and `env`.
    pub async fn start(
        pool: &PgPool,
        deps: &Deps,
        command: &str,
        point: &'static str,
        env: &[(&str, &str)],
    ) -> Crashing {
        Self::armed(pool, deps, command, point, "crash", env).await
    }

    /// As [`Crashing::start`], with `actions` at the point instead of `crash` (`1*sleep(400)`:
    /// the first run through it stalls).
    pub async fn armed(
        pool: &PgPool,
        deps: &Deps,
        command: &str,
        point: &'static str,
        actions: &str,
        env: &[(&str, &str)],
    ) -> Crashing {
        let child = Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .arg(command)
            .env("DATABASE_URL", database_url(pool).await)
            .env("REDIS_URL", crate::queue::redis_url())
            .env("REDIS_PREFIX", deps.queues.prefix())
            .env("RUST_LOG", "warn")
            .env("FAILPOINTS", format!("{point}={actions}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Crashing { point, child }
    }

    /// Waits until the process has stopped at its point: killed by `abort`, its last words
    /// naming the point. Panics if it exits otherwise or is still running after 30 s.
    pub async fn crashed(self) {
        let point = self.point;
        let out = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("the process never reached {point}"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(SIGABRT),
            "expected a crash at {point}, got {}: {stderr}",
            out.status
        );
        assert!(
            stderr.contains(&format!("fail point {point}: crash")),
            "{stderr}"
        );
    }
}

/// The environment that points a child's Twilio client at `twilio`, with callbacks to
/// `public_url`.
pub fn twilio_env<'a>(twilio: &'a str, public_url: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
        ("TWILIO_FROM", fake::FROM),
        ("TWILIO_API_BASE", twilio),
        ("PUBLIC_URL", public_url),
    ]
}

/// A free loopback port, and its base URL, for a child `serve`.
pub fn free_port() -> (u16, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (port, format!("http://127.0.0.1:{port}"))
}

/// Waits until a child `serve` at `base` answers `/healthz`.
pub async fn serving(base: &str) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while !client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh worker over `deps` (no fail point) runs `queues` until they are idle, taking over
/// the dead process's jobs after `LEASE`.
pub async fn fresh_worker(deps: &Deps, queues: &[&str]) {
    crate::support::run_leased_workers_until_idle(deps, queues, Duration::from_secs(30), LEASE)
        .await;
}

/// Twilio's create requests per destination number: each must be 1.
pub fn requests_per_number(twilio: &FakeTwilio) -> std::collections::BTreeMap<String, usize> {
    let mut per = std::collections::BTreeMap::new();
    for request in twilio.requests() {
        let to = request
            .iter()
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        *per.entry(to).or_default() += 1;
    }
    per
}

/// Ledger entries of `kind` for `message`.
pub async fn entries(pool: &PgPool, message: uuid::Uuid, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE message_id = $1 AND kind = $2")
        .bind(message)
        .bind(kind)
        .fetch_one(pool)
        .await
        .unwrap()
}
