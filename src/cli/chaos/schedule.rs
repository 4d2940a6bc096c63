//! The fault schedule: every fault the chaos run injects and when, derived from the seed and the
//! run's shape alone, so that a seed names a run and a failing run can be replayed.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL the `work` process in this slot, and start a new one after `restart_after_ms`.
    KillWorker { slot: usize, restart_after_ms: u64 },
    /// Delete every Redis key of the run: queued jobs, leases, rate limits, pauses.
    FlushRedis,
    /// Crash-restart PostgreSQL (`pg_ctl stop -m immediate`), down this long before it starts.
    RestartPostgres { down_ms: u64 },
    /// The fake Twilio answers the next `count` create requests this way.
    Twilio { answer: TwilioAnswer, count: u32 },
    /// The operator rotates the Twilio auth token: at Twilio first, in settings right after.
    RotateTwilioToken,
    /// The fake Beem answers the next `count` send requests this way.
    Beem { answer: BeemAnswer, count: u32 },
    /// The fake Beem answers 503 to the next `sends` send requests: more failures in a row than
    /// open its circuit, so that Vodacom Tanzania's messages fail over to Twilio meanwhile.
    BeemOutage { sends: u32 },
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::KillWorker { .. } => "kill_worker",
            Fault::FlushRedis => "flush_redis",
            Fault::RestartPostgres { .. } => "restart_postgres",
            Fault::Twilio { answer, .. } => answer.name(),
            Fault::RotateTwilioToken => "rotate_twilio_token",
            Fault::Beem { answer, .. } => answer.name(),
            Fault::BeemOutage { .. } => "beem_outage",
        }
    }
}

/// How the fake Twilio misbehaves for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TwilioAnswer {
    /// 429 (20429) with `Retry-After: 1`.
    RateLimit,
    /// 500 (20500), nothing created.
    ServerError,
    /// Creates the message and answers after the client has given up.
    Hang,
    /// Creates the message and cuts its answer short.
    DropAnswer,
}

impl TwilioAnswer {
    const ALL: [TwilioAnswer; 4] = [
        TwilioAnswer::RateLimit,
        TwilioAnswer::ServerError,
        TwilioAnswer::Hang,
        TwilioAnswer::DropAnswer,
    ];

    fn name(self) -> &'static str {
        match self {
            TwilioAnswer::RateLimit => "twilio_429",
            TwilioAnswer::ServerError => "twilio_500",
            TwilioAnswer::Hang => "twilio_hang",
            TwilioAnswer::DropAnswer => "twilio_drop_answer",
        }
    }
}

/// How the fake Beem misbehaves for a few sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BeemAnswer {
    /// 429 with `Retry-After: 1`, nothing sent.
    RateLimit,
    /// 500, nothing sent.
    ServerError,
    /// Sends (its reports follow) and answers after the client has given up.
    Hang,
    /// Sends and cuts its answer short.
    DropAnswer,
}

impl BeemAnswer {
    const ALL: [BeemAnswer; 4] = [
        BeemAnswer::RateLimit,
        BeemAnswer::ServerError,
        BeemAnswer::Hang,
        BeemAnswer::DropAnswer,
    ];

    fn name(self) -> &'static str {
        match self {
            BeemAnswer::RateLimit => "beem_429",
            BeemAnswer::ServerError => "beem_500",
            BeemAnswer::Hang => "beem_hang",
            BeemAnswer::DropAnswer => "beem_drop_answer",
        }
    }
}

/// A fault and its offset from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

impl Planned {
    pub fn at(&self) -> Duration {
        Duration::from_millis(self.at_ms)
    }
}

/// What the schedule depends on besides the seed.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub duration: Duration,
    pub workers: usize,
    pub pg_restarts: bool,
}

/// Faults per minute of run, by kind (at least one of each kind in any run).
const KILLS_PER_MINUTE: f64 = 6.0;
const FLUSHES_PER_MINUTE: f64 = 1.0;
const PG_RESTARTS_PER_MINUTE: f64 = 1.0;
const TWILIO_FAULTS_PER_MINUTE: f64 = 12.0;
const ROTATIONS_PER_MINUTE: f64 = 0.5;
const BEEM_FAULTS_PER_MINUTE: f64 = 6.0;
const BEEM_OUTAGES_PER_MINUTE: f64 = 1.0;
/// Seeds the stream of Beem's faults (xored with the run's seed).
const BEEM_STREAM: u64 = 0xbee0_0002;
/// Sends refused in a row by an outage: past the circuit's 5 (`CircuitSettings`), to 3 times it.
const BEEM_OUTAGE_SENDS: std::ops::RangeInclusive<u32> = 8..=15;

/// The schedule of `seed`, in time order. Faults fall between 5% and 85% of the run, so that the
/// run itself sees the recovery from the last of them.
pub fn plan(seed: u64, shape: Shape) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let span = shape.duration.as_millis().max(1) as u64;
    let minutes = span as f64 / 60_000.0;
    let count = |per_minute: f64| (minutes * per_minute).ceil().max(1.0) as usize;
    let workers = shape.workers.max(1);

    let mut faults = Vec::new();
    for _ in 0..count(KILLS_PER_MINUTE) {
        faults.push(Fault::KillWorker {
            slot: rng.random_range(0..workers),
            restart_after_ms: rng.random_range(0..=3_000),
        });
    }
    for _ in 0..count(FLUSHES_PER_MINUTE) {
        faults.push(Fault::FlushRedis);
    }
    if shape.pg_restarts {
        for _ in 0..count(PG_RESTARTS_PER_MINUTE) {
            faults.push(Fault::RestartPostgres {
                down_ms: rng.random_range(500..=4_000),
            });
        }
    }
    for _ in 0..count(TWILIO_FAULTS_PER_MINUTE) {
        faults.push(Fault::Twilio {
            answer: TwilioAnswer::ALL[rng.random_range(0..TwilioAnswer::ALL.len())],
            count: rng.random_range(1..=5),
        });
    }
    for _ in 0..count(ROTATIONS_PER_MINUTE) {
        faults.push(Fault::RotateTwilioToken);
    }
    let (from, to) = (span / 20, span * 85 / 100);
    let mut planned: Vec<Planned> = faults
        .into_iter()
        .map(|fault| Planned {
            at_ms: rng.random_range(from..=to),
            fault,
        })
        .collect();
    // Beem's faults come from a stream of their own, so that the other faults of a seed stay
    // what they were before the second route.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ BEEM_STREAM);
    let mut beem = Vec::new();
    for _ in 0..count(BEEM_FAULTS_PER_MINUTE) {
        beem.push(Fault::Beem {
            answer: BeemAnswer::ALL[rng.random_range(0..BeemAnswer::ALL.len())],
            count: rng.random_range(1..=2),
        });
    }
    for _ in 0..count(BEEM_OUTAGES_PER_MINUTE) {
        beem.push(Fault::BeemOutage {
            sends: rng.random_range(BEEM_OUTAGE_SENDS),
        });
    }
    planned.extend(beem.into_iter().map(|fault| Planned {
        at_ms: rng.random_range(from..=to),
        fault,
    }));
    planned.sort_by_key(|p| p.at_ms);
    planned
}

/// How many faults of each kind the schedule holds.
pub fn counts(planned: &[Planned]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for p in planned {
        *counts.entry(p.fault.name()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pg_restarts: bool) -> Shape {
        Shape {
            duration: Duration::from_secs(120),
            workers: 3,
            pg_restarts,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        assert_eq!(plan(42, shape(true)), plan(42, shape(true)));
        assert_ne!(plan(42, shape(true)), plan(43, shape(true)));
    }

    #[test]
    fn a_seed_names_the_same_schedule_on_every_platform_and_release() {
        // ChaCha8 is specified, unlike StdRng: seed 1 of a 30 s run must keep meaning this, or
        // the seeds in bug reports and the README would replay other runs. (Beem's faults,
        // added later, come from their own stream and left these as they were.)
        let planned: Vec<Planned> = plan(
            1,
            Shape {
                duration: Duration::from_secs(30),
                workers: 3,
                pg_restarts: true,
            },
        )
        .into_iter()
        .filter(|p| !matches!(p.fault, Fault::Beem { .. } | Fault::BeemOutage { .. }))
        .collect();
        assert_eq!(planned.len(), 12);
        assert_eq!(
            planned[..2],
            [
                Planned {
                    at_ms: 2380,
                    fault: Fault::RestartPostgres { down_ms: 3698 },
                },
                Planned {
                    at_ms: 2976,
                    fault: Fault::Twilio {
                        answer: TwilioAnswer::DropAnswer,
                        count: 1,
                    },
                },
            ]
        );
    }

    #[test]
    fn every_kind_of_fault_is_scheduled_in_time_order_inside_the_window() {
        let planned = plan(9, shape(true));
        let kinds = counts(&planned);
        for kind in [
            "kill_worker",
            "flush_redis",
            "restart_postgres",
            "rotate_twilio_token",
            "beem_outage",
        ] {
            assert!(kinds.contains_key(kind), "{kind} missing from {kinds:?}");
        }
        assert!(kinds.keys().any(|k| k.starts_with("twilio_")), "{kinds:?}");
        assert!(
            kinds
                .keys()
                .any(|k| k.starts_with("beem_") && *k != "beem_outage"),
            "{kinds:?}"
        );
        assert_eq!(kinds["kill_worker"], 12, "6 a minute over two minutes");
        assert!(planned.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(planned.iter().all(|p| (6_000..=102_000).contains(&p.at_ms)));
        assert!(planned.iter().all(|p| match p.fault {
            Fault::KillWorker { slot, .. } => slot < 3,
            _ => true,
        }));
    }

    #[test]
    fn without_postgres_restarts_none_is_scheduled() {
        let planned = plan(9, shape(false));
        assert!(!counts(&planned).contains_key("restart_postgres"));
        assert!(counts(&planned).contains_key("flush_redis"));
    }

    #[test]
    fn the_ci_seed_breaks_beem_with_an_outage_and_a_few_bad_answers() {
        // CI's run (seed 2, a minute): Beem's faults are part of the schedule, drawn the same
        // way every time.
        let planned = plan(
            2,
            Shape {
                duration: Duration::from_secs(60),
                workers: 3,
                pg_restarts: true,
            },
        );
        let beem: Vec<Planned> = planned
            .into_iter()
            .filter(|p| matches!(p.fault, Fault::Beem { .. } | Fault::BeemOutage { .. }))
            .collect();
        assert_eq!(beem.len(), 7, "6 spells and 1 outage: {beem:?}");
        assert_eq!(
            beem[0],
            Planned {
                at_ms: 12_153,
                fault: Fault::BeemOutage { sends: 12 },
            }
        );
    }
}
