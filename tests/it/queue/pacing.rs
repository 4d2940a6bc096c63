//! The sender's fair, paced schedule (`pacing`) driven by a clock the test controls: every run
//! asks at the time the schedule told it to come back, and the test reads off when each message
//! would be sent.

use std::collections::BTreeMap;
use std::time::Duration;

use copcca_sms::domain::{CompanyId, MessageId};
use copcca_sms::pacing::{JoinQuota, Pace, Pacer, Turn};
use copcca_sms::ratelimit::{Quota, RateLimiter};

use super::*;

const SENDER: &str = "twilio:ACtest:+15005550006";

/// One message waiting to be sent: whose, how many segments, when its run asks next.
struct Pending {
    company: usize,
    message: MessageId,
    cost: u32,
    asks_at: u64,
}

/// A send the schedule allowed: when, for which company.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: u64,
    company: usize,
    asked_first: u64,
}

/// A quota no test here reaches, for the schedules that test pacing alone.
const PLENTY: Quota = Quota {
    count: 1_000_000,
    period: Duration::from_secs(3600),
    burst: 1_000_000,
};

/// Runs the schedule until every message has its slot: each run asks when the schedule told it
/// to (its company's quota always allows it here). `arrivals` are (time ms, company, segments).
async fn simulate(pacer: &Pacer, pace: Pace, arrivals: &[(u64, usize, u32)]) -> Vec<Sent> {
    let companies: BTreeMap<usize, CompanyId> = arrivals
        .iter()
        .map(|(_, c, _)| (*c, CompanyId::new()))
        .collect();
    let mut pending: Vec<(Pending, u64)> = arrivals
        .iter()
        .map(|&(at, company, cost)| {
            (
                Pending {
                    company,
                    message: MessageId::new(),
                    cost,
                    asks_at: at,
                },
                at,
            )
        })
        .collect();
    let mut sent = Vec::new();
    while !pending.is_empty() {
        // The earliest run next (the first created among equals: the queue's order).
        let i = (0..pending.len())
            .min_by_key(|&i| (pending[i].0.asks_at, i))
            .unwrap();
        let (p, first) = &mut pending[i];
        let now = p.asks_at;
        let company = companies[&p.company];
        let key = format!("test-quota:{company}");
        let quota = JoinQuota {
            key: &key,
            quota: PLENTY,
        };
        let turn = pacer
            .ask_at(SENDER, pace, company, p.message, p.cost, quota, Some(now))
            .await
            .unwrap();
        match turn {
            Turn::Go(ms) => {
                assert!(
                    ms >= -(pace.late_ms as i64),
                    "a slot {ms} ms gone handed out"
                );
                sent.push(Sent {
                    at: (now as i64 + ms.max(0)) as u64,
                    company: p.company,
                    asked_first: *first,
                });
                pending.swap_remove(i);
            }
            Turn::Later(after) => {
                assert!(after > Duration::ZERO, "a run told to come back at once");
                p.asks_at = now + after.as_millis() as u64;
            }
            Turn::OverQuota(_) => panic!("a ticket refused within its quota"),
        }
    }
    sent.sort_by_key(|s| s.at);
    sent
}

/// The most sends in any window of `window` ms.
fn busiest(sent: &[Sent], window: u64) -> usize {
    (0..sent.len())
        .map(|i| {
            sent[i..]
                .iter()
                .take_while(|s| s.at < sent[i].at + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

const T0: u64 = 1_800_000_000_000;

#[tokio::test]
async fn one_companys_backlog_is_sent_one_interval_apart_never_above_the_cap() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let pace = Pace::per_second(20);
    let arrivals: Vec<_> = (0..200).map(|_| (T0, 0, 1)).collect();
    let sent = simulate(&pacer, pace, &arrivals).await;
    assert_eq!(sent.len(), 200);
    for pair in sent.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            (pace.interval_ms.floor() as u64..=pace.interval_ms.ceil() as u64).contains(&gap),
            "slots {gap} ms apart, interval {}",
            pace.interval_ms
        );
    }
    assert!(busiest(&sent, 1000) <= 20, "{}", busiest(&sent, 1000));
    // The cap is used: 200 sends take 200 intervals (at 97% of the cap), no more.
    let span = sent.last().unwrap().at - T0;
    assert!(
        (span as f64) <= 200.0 * pace.interval_ms,
        "200 sends took {span} ms"
    );
}

#[tokio::test]
async fn a_company_that_comes_late_is_served_within_a_horizon_not_behind_a_batch() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let pace = Pace::per_second(20);
    // A's 1,000-message batch, then B's single reminder 2 s later, and another 20 s later.
    let mut arrivals: Vec<_> = (0..1000).map(|_| (T0, 0, 1)).collect();
    arrivals.push((T0 + 2_000, 1, 1));
    arrivals.push((T0 + 20_000, 1, 1));
    let sent = simulate(&pacer, pace, &arrivals).await;
    let waits: Vec<u64> = sent
        .iter()
        .filter(|s| s.company == 1)
        .map(|s| s.at - s.asked_first)
        .collect();
    assert_eq!(waits.len(), 2);
    let bound = pace.horizon_ms + 2 * pace.interval_ms.ceil() as u64;
    for wait in &waits {
        assert!(
            *wait <= bound,
            "B waited {wait} ms behind A's batch (bound {bound})"
        );
    }
    // A's batch is not slowed beyond the slots B took.
    let last = sent.last().unwrap().at - T0;
    assert!(
        (last as f64) <= 1002.0 * pace.interval_ms,
        "the batch took {last} ms"
    );
    assert!(busiest(&sent, 1000) <= 20);
}

#[tokio::test]
async fn companies_with_work_waiting_take_turns() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let pace = Pace::per_second(20);
    // Ten companies of 50 messages each, all at once, and one single message a second later.
    let mut arrivals: Vec<_> = (0..50).flat_map(|_| (0..10).map(|c| (T0, c, 1))).collect();
    arrivals.sort_by_key(|a| a.1);
    arrivals.push((T0 + 1_000, 10, 1));
    let sent = simulate(&pacer, pace, &arrivals).await;
    // Round robin: however far the schedule gets, no company is more than the slots handed ahead
    // of time (the first company's head start) plus one ahead of another (first come, first
    // served would put all of company 0's 50 first).
    let ahead = pace.horizon_ms as f64 / pace.interval_ms + 1.0;
    let mut counts = [0usize; 10];
    for s in sent.iter().filter(|s| s.company != 10) {
        counts[s.company] += 1;
        let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
        assert!(
            spread as f64 <= ahead + 1.0,
            "after {} sends the companies had {counts:?}",
            counts.iter().sum::<usize>()
        );
    }
    let single = sent.iter().find(|s| s.company == 10).unwrap();
    let bound = pace.horizon_ms + 12 * pace.interval_ms.ceil() as u64;
    assert!(
        single.at - single.asked_first <= bound,
        "the single message waited {} ms (bound {bound})",
        single.at - single.asked_first
    );
}

#[tokio::test]
async fn a_message_of_several_segments_takes_as_many_slots() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let pace = Pace::per_second(10);
    let sent = simulate(&pacer, pace, &[(T0, 0, 3), (T0, 0, 1), (T0, 0, 1)]).await;
    let gaps: Vec<u64> = sent.windows(2).map(|p| p[1].at - p[0].at).collect();
    let interval = pace.interval_ms;
    assert!(
        (gaps[0] as f64 - 3.0 * interval).abs() <= 1.0,
        "{gaps:?}, interval {interval}"
    );
    assert!((gaps[1] as f64 - interval).abs() <= 1.0, "{gaps:?}");
}

#[tokio::test]
async fn a_send_joins_only_within_its_companys_quota_and_then_keeps_its_ticket() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let limiter = RateLimiter::new(q.connection(), q.prefix());
    let pace = Pace::per_second(1);
    let a = CompanyId::new();
    let (m1, m2, m3) = (MessageId::new(), MessageId::new(), MessageId::new());
    let budget = copcca_sms::messages::send::quota_key(a);
    let key = limiter.budget_key(&budget);
    let quota = JoinQuota {
        key: &key,
        quota: Quota::per_hour(2),
    };
    let ask = |m, now| pacer.ask_at(SENDER, pace, a, m, 1, quota, Some(now));
    assert_eq!(ask(m1, T0).await.unwrap(), Turn::Go(0));
    let first = ask(m2, T0).await.unwrap();
    // Two an hour are taken: a third message takes no ticket, and comes back when the quota
    // allows one, in half an hour.
    match ask(m3, T0).await.unwrap() {
        Turn::OverQuota(wait) => assert!(
            wait > Duration::from_secs(1790) && wait <= Duration::from_secs(1800),
            "{wait:?}"
        ),
        other => panic!("{other:?}"),
    }
    // The second message keeps its ticket with the quota spent: asking again (a second run of the
    // same job) neither needs the quota again nor moves it back.
    let again = ask(m2, T0 + 10).await.unwrap();
    match (first, again) {
        (Turn::Later(_) | Turn::Go(_), Turn::Later(_) | Turn::Go(_)) => {}
        other => panic!("{other:?}"),
    }
    // Its slot is one interval after the first's.
    let slot = (T0 as f64 + pace.interval_ms).ceil() as u64;
    assert_eq!(ask(m2, slot - 50).await.unwrap(), Turn::Go(50));
    // A run back just after its slot began is told how long ago, so it cannot leave later than
    // the grace allows.
    assert_eq!(ask(m2, slot + 10).await.unwrap(), Turn::Go(-10));
    // The refused message took nothing: once the quota is started afresh (an operator changed
    // it), it joins, and the budget holds exactly its one.
    assert_eq!(limiter.free_now(&budget, quota.quota).await.unwrap(), 0);
    limiter.reset(&budget).await.unwrap();
    assert!(matches!(
        ask(m3, slot + 20).await.unwrap(),
        Turn::Later(_) | Turn::Go(_)
    ));
    assert_eq!(limiter.free_now(&budget, quota.quota).await.unwrap(), 1);
}

#[tokio::test]
async fn a_run_that_misses_its_slot_waits_at_the_head_not_behind_its_company() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let pace = Pace::per_second(20);
    let a = CompanyId::new();
    let messages: Vec<MessageId> = (0..50).map(|_| MessageId::new()).collect();
    let key = format!("test-quota:{a}");
    let quota = JoinQuota {
        key: &key,
        quota: PLENTY,
    };
    let ask = |m, now| pacer.ask_at(SENDER, pace, a, m, 1, quota, Some(now));
    for m in &messages {
        ask(*m, T0).await.unwrap();
    }
    // The first message was handed the first slot; its run does not come until long after.
    let late = T0 + 1_000;
    let turn = ask(messages[0], late).await.unwrap();
    // The slots handed since go in order; the late run is next, not after the 49 others.
    let later_ones = ask(messages[49], late).await.unwrap();
    let wait = |turn: Turn| match turn {
        Turn::Go(ms) => Duration::from_millis(ms.max(0) as u64),
        Turn::Later(after) => after,
        Turn::OverQuota(_) => panic!("{turn:?}"),
    };
    let (mine, theirs) = (wait(turn), wait(later_ones));
    assert!(
        mine < theirs,
        "the late run waits {mine:?}, the company's last message {theirs:?}"
    );
    assert!(
        mine <= Duration::from_millis(pace.horizon_ms + 2 * pace.interval_ms.ceil() as u64),
        "{mine:?}"
    );
}

#[tokio::test]
async fn leases_cap_the_requests_in_flight_and_lapse_when_not_given_back() {
    let q = queues().await;
    let pacer = Pacer::new(q.connection(), q.prefix());
    let hold = Duration::from_secs(10);
    let take = |lease: &'static str, now| pacer.take_lease_at("ACx", lease, 2, hold, Some(now));
    assert_eq!(take("a", T0).await.unwrap(), Ok(()));
    assert_eq!(take("b", T0 + 1).await.unwrap(), Ok(()));
    // Two in flight: a third waits until the first would lapse.
    assert_eq!(
        take("c", T0 + 2).await.unwrap(),
        Err(Duration::from_millis(9_998))
    );
    // Taking a lease one holds renews it.
    assert_eq!(take("a", T0 + 3).await.unwrap(), Ok(()));
    pacer.release_lease("ACx", "b").await.unwrap();
    assert_eq!(take("c", T0 + 4).await.unwrap(), Ok(()));
    // A worker that died holding "a" frees its place once the lease lapses.
    assert!(take("d", T0 + 5).await.unwrap().is_err());
    assert_eq!(take("d", T0 + 3 + 10_001).await.unwrap(), Ok(()));
    // Another account has its own cap.
    assert_eq!(
        pacer
            .take_lease_at("ACy", "a", 2, hold, Some(T0))
            .await
            .unwrap(),
        Ok(())
    );
}
