//! Twilio's status callbacks for every message the fake created, as Twilio posts them when it
//! is at its worst: late, twice, and out of order (the final report before `sent`). A post the
//! service does not take (PostgreSQL restarting, a token rotation not picked up yet) is posted
//! again, as Twilio retries, so that every message the fake has gets its final report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use crate::fakes::twilio::FakeTwilio;

/// How long one post is retried before the message is given up (and stays `sent`: a finding).
pub(super) const RETRY_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub struct Counters {
    pub messages: AtomicUsize,
    pub posted: AtomicUsize,
    pub twice: AtomicUsize,
    pub out_of_order: AtomicUsize,
    pub late: AtomicUsize,
    pub refused_then_retried: AtomicUsize,
    pub given_up: AtomicUsize,
    /// Messages whose reports are still to be posted.
    pub in_flight: AtomicUsize,
    /// The service's answers other than 204, by status (0: no answer).
    pub refusals: Mutex<BTreeMap<u16, usize>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallbackFigures {
    pub messages: usize,
    pub posted: usize,
    pub twice: usize,
    pub out_of_order: usize,
    pub late: usize,
    pub refused_then_retried: usize,
    pub given_up: usize,
    pub refusals: BTreeMap<u16, usize>,
}

impl Counters {
    pub fn figures(&self) -> CallbackFigures {
        let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        CallbackFigures {
            messages: get(&self.messages),
            posted: get(&self.posted),
            twice: get(&self.twice),
            out_of_order: get(&self.out_of_order),
            late: get(&self.late),
            refused_then_retried: get(&self.refused_then_retried),
            given_up: get(&self.given_up),
            refusals: self.refusals.lock().expect("lock").clone(),
        }
    }

    /// Every message seen so far has had its reports posted.
    pub fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }
}

/// One message's reports: when, what, in which order.
struct Reports {
    final_status: &'static str,
    error_code: Option<&'static str>,
    sent_after: Duration,
    final_after: Duration,
    twice: bool,
    out_of_order: bool,
    late: bool,
}

impl Reports {
    fn draw(rng: &mut impl Rng) -> Self {
        let (final_status, error_code) = match rng.random_range(0..100) {
            0..6 => ("undelivered", Some("30003")),
            6..10 => ("failed", Some("30008")),
            _ => ("delivered", None),
        };
        let late = rng.random_bool(0.1);
        let sent_after = Duration::from_millis(rng.random_range(0..2_000));
        let final_after = if late {
            Duration::from_millis(rng.random_range(15_000..40_000))
        } else {
            Duration::from_millis(rng.random_range(0..4_000))
        };
        Reports {
            final_status,
            error_code,
            sent_after,
            final_after,
            twice: rng.random_bool(0.15),
            out_of_order: rng.random_bool(0.1),
            late,
        }
    }
}

/// Follows the fake's messages until `stop` turns true, posting each one's reports.
pub async fn drive(
    twilio: FakeTwilio,
    seed: u64,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xca11_bac5);
    let concurrent = Arc::new(Semaphore::new(64));
    let mut seen = 0;
    loop {
        let new = twilio.messages_after(seen);
        seen += new.len();
        for message in new {
            let reports = Reports::draw(&mut rng);
            counters.messages.fetch_add(1, Ordering::Relaxed);
            counters.in_flight.fetch_add(1, Ordering::SeqCst);
            let (twilio, counters, concurrent) =
                (twilio.clone(), counters.clone(), concurrent.clone());
            tokio::spawn(async move {
                post_reports(&twilio, &message.sid, reports, &counters, &concurrent).await;
                counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn post_reports(
    twilio: &FakeTwilio,
    sid: &str,
    r: Reports,
    counters: &Counters,
    concurrent: &Semaphore,
) {
    let sent = ("sent", None);
    let last = (r.final_status, r.error_code);
    let mut order = vec![
        (r.sent_after, sent),
        (r.final_after.max(r.sent_after), last),
    ];
    if r.out_of_order {
        // The final report overtakes `sent`.
        order = vec![
            (r.sent_after, last),
            (r.final_after.max(r.sent_after), sent),
        ];
        counters.out_of_order.fetch_add(1, Ordering::Relaxed);
    }
    if r.twice {
        order.push((Duration::from_millis(500), last));
        counters.twice.fetch_add(1, Ordering::Relaxed);
    }
    if r.late {
        counters.late.fetch_add(1, Ordering::Relaxed);
    }
    for (after, (status, code)) in order {
        tokio::time::sleep(after).await;
        let _permit = concurrent.acquire().await.expect("never closed");
        if !post(twilio, sid, status, code, counters).await {
            counters.given_up.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Posts one report until the service takes it (204), for at most [`RETRY_FOR`].
async fn post(
    twilio: &FakeTwilio,
    sid: &str,
    status: &str,
    code: Option<&str>,
    counters: &Counters,
) -> bool {
    let started = tokio::time::Instant::now();
    let mut refused = false;
    loop {
        counters.posted.fetch_add(1, Ordering::Relaxed);
        let answer = twilio.callback(sid, status, code).await.unwrap_or(0);
        if answer == 204 {
            if refused {
                counters
                    .refused_then_retried
                    .fetch_add(1, Ordering::Relaxed);
            }
            return true;
        }
        *counters
            .refusals
            .lock()
            .expect("lock")
            .entry(answer)
            .or_default() += 1;
        refused = true;
        if started.elapsed() > RETRY_FOR {
            eprintln!("chaos: a {status} report for {sid} was refused for {RETRY_FOR:?}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
