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

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use copcca_sms::config::{Secret, TwilioTiming};
use copcca_sms::db;
use copcca_sms::domain::MessageId;
use copcca_sms::fakes::twilio::{self as fake, Behaviour, FakeTwilio};
use copcca_sms::messages::{MessageStatus, send, store};
use copcca_sms::providers::SmsGateway;
use copcca_sms::providers::twilio::{Sender, TwilioClient};
use copcca_sms::workers::{self, Deps};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Harness, clock_at};
use crate::support::{company_with, message, run_workers_until_idle};

/// Requests give up after this long.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(800);
/// A request held on its way reaches Twilio by then at the latest, as a request that left within
/// its attempt's window does.
const ARRIVAL_LIMIT: Duration = Duration::from_millis(250);
/// An answer the schedule has not delivered by then is lost (cut short), before the client gives
/// up, so that what the proxy records is what the client saw.
const HOLD_LIMIT: Duration = Duration::from_millis(400);
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
/// [`ARRIVAL_LIMIT`]) until the schedule lets it arrive.
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

/// One create request as the proxy saw it.
#[derive(Debug, Clone)]
struct Post {
    at: Instant,
    /// The fake created a message for it.
    created: bool,
    /// Its answer reached the client whole.
    answered: bool,
}

/// Requests and answers held for the schedule, oldest first.
type Held = VecDeque<oneshot::Sender<()>>;

#[derive(Default)]
struct ProxyState {
    outcomes: VecDeque<(Outcome, Arrival)>,
    posts: Vec<Post>,
    held: Held,
    /// Deliver every answer at once (the run-out after the schedule).
    deliver_all: bool,
}

/// The schedule's handle on the provider: the fake Twilio behind a proxy that holds create
/// requests' answers.
#[derive(Clone)]
struct Provider {
    fake: FakeTwilio,
    proxy: url::Url,
    state: Arc<Mutex<ProxyState>>,
}

impl Provider {
    async fn start(outcomes: Vec<(Outcome, Arrival)>) -> Provider {
        let fake = FakeTwilio::start().await.unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            outcomes: outcomes.into(),
            ..ProxyState::default()
        }));
        let provider = ProviderRoute {
            fake: fake.clone(),
            state: state.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(relay).with_state(provider);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Provider { fake, proxy, state }
    }

    fn client(&self, public_url: &copcca_sms::config::PublicUrl) -> SmsGateway {
        let client = TwilioClient::new(
            self.proxy.clone(),
            fake::ACCOUNT_SID,
            Secret::new(fake::AUTH_TOKEN),
            Sender::From(fake::FROM.into()),
            public_url,
        )
        .with_timeout(CLIENT_TIMEOUT);
        SmsGateway::Twilio(Box::new(client))
    }

    /// Requests and answers still held.
    fn held(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.held.retain(|r| !r.is_closed());
        s.held.len()
    }

    /// Lets the oldest held request arrive, or delivers the oldest held answer.
    fn release(&self) {
        let mut s = self.state.lock().unwrap();
        while let Some(release) = s.held.pop_front() {
            if release.send(()).is_ok() {
                return;
            }
        }
    }

    fn release_all(&self) {
        let mut s = self.state.lock().unwrap();
        s.deliver_all = true;
        for release in s.held.drain(..) {
            let _ = release.send(());
        }
    }

    fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }
}

#[derive(Clone)]
struct ProviderRoute {
    fake: FakeTwilio,
    state: Arc<Mutex<ProxyState>>,
    http: reqwest::Client,
}

/// Forwards every request to the fake; a create request travels and gets the case's next
/// outcome, and its answer waits for the schedule.
async fn relay(
    State(p): State<ProviderRoute>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!("{}{}", p.fake.base.as_str().trim_end_matches('/'), uri);
    let forward = || {
        let mut req = p.http.request(method.clone(), &url).body(body.clone());
        for name in ["authorization", "content-type", "accept"] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v);
            }
        }
        req.send()
    };
    if method != Method::POST {
        return relayed(forward().await.unwrap()).await;
    }
    let (outcome, arrival) = p
        .state
        .lock()
        .unwrap()
        .outcomes
        .pop_front()
        .unwrap_or((Outcome::Accept, Arrival::AtOnce));
    let at = Instant::now();
    if arrival == Arrival::Held {
        // Let through by the schedule or, at the latest, by the limit: it arrives either way.
        let _ = tokio::time::timeout(ARRIVAL_LIMIT, p.hold()).await;
    }
    let before = p.fake.messages().len();
    let answer = match outcome {
        Outcome::Invalid => {
            twilio_error(400, 21211, "The 'To' number is not a valid phone number.")
        }
        _ => {
            p.fake.script([match outcome {
                Outcome::RateLimit => Behaviour::RateLimit(1),
                Outcome::ServerError => Behaviour::ServerError(500),
                _ => Behaviour::Accept,
            }]);
            relayed(forward().await.unwrap()).await
        }
    };
    let created = p.fake.messages().len() > before;
    let index = {
        let mut s = p.state.lock().unwrap();
        s.posts.push(Post {
            at,
            created,
            answered: false,
        });
        s.posts.len() - 1
    };
    if !matches!(tokio::time::timeout(HOLD_LIMIT, p.hold()).await, Ok(true)) {
        return broken();
    }
    if outcome == Outcome::AcceptLost {
        return broken();
    }
    p.state.lock().unwrap().posts[index].answered = true;
    answer
}

impl ProviderRoute {
    /// Waits for the schedule to release this request or answer (at once in the run-out).
    async fn hold(&self) -> bool {
        let (release, released) = oneshot::channel();
        {
            let mut s = self.state.lock().unwrap();
            if s.deliver_all {
                return true;
            }
            s.held.push_back(release);
        }
        released.await.is_ok()
    }
}

async fn relayed(r: reqwest::Response) -> Response {
    let mut out = Response::builder().status(r.status().as_u16());
    for name in ["content-type", "retry-after"] {
        if let Some(v) = r.headers().get(name) {
            out = out.header(name, v.as_bytes());
        }
    }
    out.body(Body::from(r.bytes().await.unwrap())).unwrap()
}

fn twilio_error(status: u16, code: i64, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// An answer cut short: the headers promise a body that never comes whole.
fn broken() -> Response {
    let chunks = futures::stream::iter([
        Ok::<_, std::io::Error>(Bytes::from_static(b"{\"sid\": \"SM")),
        Err(std::io::Error::other("connection reset")),
    ]);
    Response::builder()
        .status(StatusCode::CREATED)
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap()
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms_test".into());
    let mut url = url::Url::parse(&base).unwrap();
    let name = format!("copcca_life_{}", uuid::Uuid::new_v4().simple());
    url.set_path(&name);
    let pool = rt.block_on(db::migrate(url.as_str(), "public")).unwrap();
    let h = rt.block_on(Harness::new(pool.clone(), 0));

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

    rt.block_on(async {
        pool.close().await;
        let mut admin = url.clone();
        admin.set_path("/postgres");
        let admin = PgPool::connect(admin.as_str()).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
