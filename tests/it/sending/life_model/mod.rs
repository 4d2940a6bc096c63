//! Model-based property test of one message's life (issue 16): random interleavings of two runs
//! of its send job with the provider's outcomes, late or lost answers, status callbacks
//! (duplicated, out of order, before the service knows the SID), refunds and reconciler passes;
//! then everything is let finish, and the message's history is checked against what the provider
//! really did:
//!
//! - the provider created at most one message for it, and after a request that created it no
//!   request was ever made again;
//! - after a request whose answer was lost or late (that may have been processed), another was
//!   made only once the unanswered send's resend deadline had passed;
//! - it was charged at most once and refunded at most once: charged exactly when the provider
//!   created it, refunded exactly when it then failed;
//! - it ends final, nothing stays reserved, the balance adds up and the ledger audit is clean.
//!
//! The provider is the fake Twilio behind a proxy that the schedule controls: each create request
//! reaches the fake at once or is held on the way (never past a quarter of the client's timeout:
//! a request that left within its attempt's window reaches Twilio within it), gets the outcome
//! the case gives it, and its answer is held until the schedule delivers it; an answer held too
//! long is lost, as a slow answer is.

mod provider;

use std::time::{Duration, Instant};

use copcca_sms::config::TwilioTiming;
use copcca_sms::domain::MessageId;
use copcca_sms::messages::{MessageStatus, send, store};
use copcca_sms::workers::{self, Deps};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::PgPool;
use tokio::task::JoinHandle;

use super::{Harness, clock_at};
use crate::support::{OwnDatabase, company_with, message, run_workers_until_idle};
use provider::Provider;

/// Requests give up after this long.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(800);
/// An unanswered send the provider does not show is sent again after this long (production:
/// the validity period plus ten minutes).
const RESEND_UNANSWERED_AFTER: Duration = Duration::from_secs(2);
const CREDITS: i64 = 10;

/// What the provider does with the nth create request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Creates the message; answers 201.
    Accept,
    /// Creates the message; the answer is cut short on the way.
    AcceptLost,
    /// 429: creates nothing.
    RateLimit,
    /// 500: creates nothing (DESIGN.md: a 5xx is retried).
    ServerError,
    /// 400 21211, an invalid number: creates nothing, permanently.
    Invalid,
}

/// How the nth create request travels: straight to Twilio, or held on the way (up to
/// [`provider::ARRIVAL_LIMIT`]) until the schedule lets it arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    AtOnce,
    Held,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Another run of the message's job starts (at most two in the schedule).
    Run,
    /// The oldest held request reaches Twilio, or the oldest held answer is delivered.
    Release,
    /// The provider posts a status callback for the message it created (if any).
    Callback(&'static str),
    /// The refund queue is worked off.
    Refunds,
    /// One reconciler pass that treats every queued or sending message as stale.
    Reconcile,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Accept),
        2 => Just(Outcome::AcceptLost),
        2 => Just(Outcome::RateLimit),
        1 => Just(Outcome::ServerError),
        1 => Just(Outcome::Invalid),
    ]
}

fn arrival() -> impl Strategy<Value = Arrival> {
    prop_oneof![2 => Just(Arrival::AtOnce), 1 => Just(Arrival::Held)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Run),
        3 => Just(Step::Release),
        1 => Just(Step::Callback("sent")),
        1 => Just(Step::Callback("delivered")),
        1 => Just(Step::Callback("undelivered")),
        1 => Just(Step::Callback("failed")),
        1 => Just(Step::Refunds),
        1 => Just(Step::Reconcile),
    ]
}

/// One case: a new company and message, a new provider, the schedule, the run-out, the checks.
async fn run_case(
    h: &Harness,
    outcomes: Vec<(Outcome, Arrival)>,
    steps: Vec<Step>,
) -> Result<(), TestCaseError> {
    let pool = h.pool().clone();
    let company = company_with(&pool, CREDITS).await;
    let id = message(&pool, company.id, 1).await;
    let provider = Provider::start(outcomes).await;
    let deps = Deps::builder(
        pool.clone(),
        h.deps.queues.clone(),
        provider.client(&h.app.state.config.public_url),
        1_000,
    )
    .clock(clock_at(10, 0))
    .timing(TwilioTiming {
        validity: Duration::from_secs(3600),
        token_grace: Duration::from_secs(60),
        resend_unanswered_after: RESEND_UNANSWERED_AFTER,
    })
    .build();

    let mut runs: Vec<JoinHandle<()>> = Vec::new();
    let mut started = 0;
    for step in steps {
        match step {
            Step::Run if started < 2 => {
                started += 1;
                runs.push(spawn_run(&deps, id, started));
            }
            Step::Run => {}
            Step::Release => provider.release(),
            Step::Callback(status) => callback(&provider, status).await,
            Step::Refunds => {
                run_workers_until_idle(&deps, &["refunds"], Duration::from_secs(3)).await
            }
            Step::Reconcile => reconcile(&deps).await,
        }
        settle(&provider, &runs).await;
    }

    // The run-out: answers flow, the remaining runs finish, the queue and the reconciler bring
    // the message to its end, and the provider reports it delivered if it has not said more
    // (a report is never repeated: Twilio posts each status once).
    provider.release_all();
    for run in runs {
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .map_err(|_| TestCaseError::fail("a run did not finish"))?
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 3;
    loop {
        let m = store::find(&pool, id).await.unwrap().unwrap();
        // A second message at the provider is the failure itself, whatever else follows.
        let created = provider.fake.messages().len();
        prop_assert!(created <= 1, "the provider created {created} messages");
        let refunding = refund_pending(&pool, id).await;
        if m.status.is_final() && !refunding {
            break;
        }
        if Instant::now() >= deadline {
            let events: Vec<(String, bool)> = sqlx::query_as(
                "SELECT event_key, processed_at IS NOT NULL FROM webhook_events
                 WHERE event_key LIKE $1",
            )
            .bind(format!("{}%", m.provider_id.clone().unwrap_or_default()))
            .fetch_all(&pool)
            .await
            .unwrap();
            let fake: Vec<_> = provider
                .fake
                .messages()
                .into_iter()
                .map(|f| (f.sid, f.status))
                .collect();
            return Err(TestCaseError::fail(format!(
                "message still {:?} (refund pending: {refunding}) after the run-out; {:?}; \
                 reports {events:?}; provider {fake:?}; requests {:?}",
                m.status,
                m,
                provider.posts()
            )));
        }
        match m.status {
            MessageStatus::Queued | MessageStatus::Sending => {
                let providers = deps.providers.current();
                let _ = send::send(&deps.sending(&providers.sms), id, attempt).await;
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            MessageStatus::Sent => callback_once(&provider, "delivered").await,
            _ => {}
        }
        run_workers_until_idle(&deps, &["sms", "refunds"], Duration::from_secs(5)).await;
        // As `schedule` does every minute: reports that came before the charge are applied,
        // lost jobs enqueued again.
        reconcile(&deps).await;
    }

    check(&pool, &provider, id, company.id).await
}

fn spawn_run(deps: &Deps, id: MessageId, attempt: u32) -> JoinHandle<()> {
    let deps = deps.clone();
    tokio::spawn(async move {
        let providers = deps.providers.current();
        // Whatever the run says (done, retry later, give up): the run-out finishes the message.
        let _ = send::send(&deps.sending(&providers.sms), id, attempt).await;
    })
}

/// Lets the runs get as far as they can: each is finished or waiting for a held answer (or,
/// briefly, waiting out another run's attempt, which the next steps may overtake).
async fn settle(provider: &Provider, runs: &[JoinHandle<()>]) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(300) {
        let running = runs.iter().filter(|r| !r.is_finished()).count();
        if running <= provider.held() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn callback(provider: &Provider, status: &str) {
    let created = provider.fake.messages();
    if let Some(m) = created.first() {
        let code = matches!(status, "undelivered" | "failed").then_some("30003");
        let answer = provider.fake.callback(&m.sid, status, code).await.unwrap();
        assert!(answer < 500, "the status callback got {answer}");
    }
}

/// The callback unless the provider has reported its message in that status already.
async fn callback_once(provider: &Provider, status: &str) {
    if provider
        .fake
        .messages()
        .first()
        .is_some_and(|m| m.status != status)
    {
        callback(provider, status).await;
    }
}

async fn reconcile(deps: &Deps) {
    // Time compressed: everything the reconciler looks at is stale at once.
    let settings = workers::reconcile::Settings {
        stale_queued: Duration::ZERO,
        stale_sending: CLIENT_TIMEOUT,
        pending_report_after: Duration::ZERO,
        unrefunded_after: Duration::ZERO,
        ..Default::default()
    };
    workers::reconcile::reconcile_once(deps, &settings)
        .await
        .unwrap();
}

/// A message charged and not refunded yet that its company's policy refunds (its refund job is
/// on its way).
async fn refund_pending(pool: &PgPool, id: MessageId) -> bool {
    let (charged, refunded) = entries(pool, id).await;
    charged > refunded && refunds_its_end(pool, id).await
}

/// Whether the message's final status is one its company is refunded for: failed always,
/// undelivered if the company's `refund_undelivered` says so.
async fn refunds_its_end(pool: &PgPool, id: MessageId) -> bool {
    sqlx::query_scalar(
        "SELECT m.status = 'failed' OR (m.status = 'undelivered' AND c.refund_undelivered)
         FROM messages m JOIN companies c ON c.id = m.company_id WHERE m.id = $1",
    )
    .bind(id.0)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The message's charge and refund entries.
async fn entries(pool: &PgPool, id: MessageId) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE kind = 'commit'), count(*) FILTER (WHERE kind = 'refund')
         FROM ledger_entries WHERE message_id = $1",
    )
    .bind(id.0)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn check(
    pool: &PgPool,
    provider: &Provider,
    id: MessageId,
    company: copcca_sms::domain::CompanyId,
) -> Result<(), TestCaseError> {
    let posts = provider.posts();
    let created = provider.fake.messages();
    prop_assert!(
        created.len() <= 1,
        "the provider created {} messages",
        created.len()
    );
    for (i, post) in posts.iter().enumerate().skip(1) {
        let before = &posts[..i];
        prop_assert!(
            !before.iter().any(|p| p.created),
            "request {i} was made after an earlier one had created the message: {posts:?}"
        );
        if let Some(unanswered) = before.iter().rfind(|p| !p.answered) {
            prop_assert!(
                post.at.duration_since(unanswered.at) >= RESEND_UNANSWERED_AFTER,
                "request {i} came {:?} after an unanswered one: {posts:?}",
                post.at.duration_since(unanswered.at)
            );
        }
    }

    let m = store::find(pool, id).await.unwrap().unwrap();
    let (charged, refunded) = entries(pool, id).await;
    prop_assert!(
        charged <= 1 && refunded <= 1,
        "charged {charged}, refunded {refunded}"
    );
    let failed = refunds_its_end(pool, id).await;
    if let Some(sent) = created.first() {
        prop_assert_eq!(m.provider_id.as_deref(), Some(sent.sid.as_str()));
        prop_assert_eq!(charged, 1, "created at the provider, so charged once");
        prop_assert_eq!(
            refunded,
            i64::from(failed),
            "refunded exactly when its end is refunded"
        );
    } else {
        prop_assert_eq!(m.status, MessageStatus::Failed, "never created, so failed");
        prop_assert_eq!(
            (charged, refunded),
            (0, 0),
            "never created, so never charged"
        );
    }
    let balance = copcca_sms::ledger::balance(pool, company).await.unwrap();
    prop_assert_eq!(balance.reserved.get(), 0, "nothing stays reserved");
    prop_assert_eq!(balance.available.get(), CREDITS - charged + refunded);
    let audit = copcca_sms::ledger::audit(pool).await.unwrap();
    prop_assert!(audit.is_clean(), "audit: {audit:?}");
    Ok(())
}

/// A database of its own for the whole property run (proptest drives a synchronous closure).
#[test]
fn one_messages_life_under_any_interleaving_is_charged_and_sent_at_most_once() {
    let db = OwnDatabase::create("copcca_life");
    let rt = &db.rt;
    let h = rt.block_on(Harness::new(db.pool.clone(), 0));

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut runner = TestRunner::new(Config {
        cases,
        // Each case takes seconds; shrinking a failure is worth a few minutes, not an hour.
        max_shrink_iters: 24,
        ..Config::default()
    });
    let case = (
        prop::collection::vec((outcome(), arrival()), 1..4),
        prop::collection::vec(step(), 1..10),
    );
    let started = Instant::now();
    let result = runner.run(&case, |(outcomes, steps)| {
        rt.block_on(run_case(&h, outcomes, steps))
    });
    eprintln!("{cases} cases in {:?}", started.elapsed());

    db.drop_database();
    if let Err(e) = result {
        panic!("{e}");
    }
}
