//! Sending end to end: the HTTP API, the real workers over the real Redis queue and
//! PostgreSQL ledger, and the fake Twilio speaking the wire format.

mod accepting;
mod batches;
mod callbacks;
mod flows;
mod life_model;
mod operations;
mod opt_outs;
mod outage;
mod quiet_hours;
mod rate_card;
mod recovery;
mod routes;
mod settings;
mod sweeps;
mod templates;

use std::time::Duration;

use copcca_sms::accounts::{self, Company};
use copcca_sms::domain::{CreditDelta, MessageId, Role};
use copcca_sms::fakes::twilio::{self as fake, FakeTwilio};
use copcca_sms::ledger;
use copcca_sms::messages::{Message, rates, store};
use copcca_sms::providers::SmsGateway;
use copcca_sms::queue::Queues;
use copcca_sms::workers::{self, Deps};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, assert_audit_clean, reserve_one, spawn_app_with};

/// An edit of the rate card that prices `prefix` at `credits` per segment.
pub fn price_edit(prefix: &str, credits: i64) -> rates::Edit {
    rates::Edit {
        set: vec![rates::Rate {
            prefix: prefix.into(),
            credits_per_segment: credits,
            allowed: true,
        }],
        ..rates::Edit::default()
    }
}

pub struct Harness {
    pub app: TestApp,
    pub twilio: FakeTwilio,
    pub deps: Deps,
    pub company: Company,
    pub token: String,
}

impl Harness {
    /// A TZ company holding `credits`, the API, the fake Twilio, and workers' dependencies.
    pub async fn new(pool: PgPool, credits: i64) -> Self {
        Self::with_client_timeout(pool, credits, None).await
    }

    pub async fn with_client_timeout(
        pool: PgPool,
        credits: i64,
        timeout: Option<Duration>,
    ) -> Self {
        Self::build(pool.clone(), pool, credits, timeout, &[]).await
    }

    /// As `with_client_timeout`, with the workers (and the reconciler) on `worker_pool`, the API
    /// and the test's own reads on `pool`.
    pub async fn with_worker_pool(
        pool: PgPool,
        worker_pool: PgPool,
        credits: i64,
        timeout: Option<Duration>,
    ) -> Self {
        Self::build(pool, worker_pool, credits, timeout, &[]).await
    }

    /// With more configuration variables for the service (`PUBLIC_URL`, limits).
    pub async fn with_env(pool: PgPool, credits: i64, env: &[(&str, &str)]) -> Self {
        Self::build(pool.clone(), pool, credits, None, env).await
    }

    async fn build(
        pool: PgPool,
        worker_pool: PgPool,
        credits: i64,
        timeout: Option<Duration>,
        env: &[(&str, &str)],
    ) -> Self {
        let twilio = FakeTwilio::start().await.unwrap();
        let prefix = format!("send-{}", uuid::Uuid::new_v4().simple());
        let base = twilio.base.to_string();
        let mut vars = vec![
            ("REDIS_PREFIX", prefix.as_str()),
            ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
            ("TWILIO_FROM", fake::FROM),
            ("TWILIO_API_BASE", &base),
        ];
        vars.extend_from_slice(env);
        let app = spawn_app_with(pool.clone(), &vars).await;
        let mut client = twilio.client(&app.state.config.public_url);
        if let Some(t) = timeout {
            client = client.with_timeout(t);
        }
        let queues = Queues::connect(&crate::queue::redis_url(), &prefix)
            .await
            .unwrap();
        let deps = Deps::builder(
            worker_pool,
            queues,
            SmsGateway::Twilio(Box::new(client)),
            1_000,
        )
        // Mid-morning in Dar es Salaam, whatever time the tests run: outside quiet hours.
        .clock(clock_at(10, 0))
        .build();
        let company =
            accounts::create_company(&pool, "Duka la Mama", copcca_sms::domain::Country::TZ)
                .await
                .unwrap();
        if credits > 0 {
            let mut conn = pool.acquire().await.unwrap();
            ledger::adjust(
                &mut conn,
                uuid::Uuid::now_v7(),
                company.id,
                CreditDelta::new(credits).unwrap(),
                "test",
                "test",
            )
            .await
            .unwrap();
        }
        // Twilio's magic test numbers (+1 500 555 ...) that these tests send to, at 1 credit
        // per segment: nothing outside the home markets is priced by default.
        rates::apply(&pool, &price_edit("1500555", 1), "test")
            .await
            .unwrap();
        let token = app.token(Some(company.id), Role::Member).await;
        Harness {
            app,
            twilio,
            deps,
            company,
            token,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.app.state.pool
    }

    /// Puts `prefix` on the rate card at `credits` per segment, as the operator's API does (the
    /// service sees it at once).
    pub async fn price(&self, prefix: &str, credits: i64) {
        rates::apply(self.pool(), &price_edit(prefix, credits), "test")
            .await
            .unwrap();
        self.app.state.rates.invalidate();
    }

    /// `POST /v1/messages`; returns the status and the body.
    pub async fn send(&self, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .post(self.app.url("/v1/messages"))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// Sends one message and returns its id.
    pub async fn accept(&self, to: &str, body: &str) -> uuid::Uuid {
        let (status, v) = self.send(json!({"to": to, "body": body}), None).await;
        assert_eq!(status, 202, "{v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn message(&self, id: uuid::Uuid) -> Message {
        store::find(self.pool(), copcca_sms::domain::MessageId(id))
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn available(&self) -> i64 {
        ledger::balance(self.pool(), self.company.id)
            .await
            .unwrap()
            .available
            .get()
    }

    /// Runs the workers until the send, refund and sweep queues are empty (or `limit` passes).
    pub async fn drain(&self, limit: Duration) {
        crate::support::run_workers_until_idle(&self.deps, &["sms", "refunds", "sweeps"], limit)
            .await;
    }

    /// Turns quiet hours off for the harness's company: for tests whose outcome must not depend
    /// on the time of day they run at (a worker process of their own runs on the real clock).
    pub async fn without_quiet_hours(&self) {
        sqlx::query(
            "UPDATE companies SET quiet_hours_start = '00:00', quiet_hours_end = '00:00' WHERE id = $1",
        )
        .bind(self.company.id)
        .execute(self.pool())
        .await
        .unwrap();
    }

    pub async fn audit_clean(&self) {
        assert_audit_clean(self.pool()).await;
    }

    /// The message went to Twilio once, is `sent` with that message's SID, the company has
    /// `available` credits left (charged once), and the ledger audit is clean.
    pub async fn assert_sent_once(&self, id: uuid::Uuid, available: i64) {
        let sent = self.twilio.messages();
        assert_eq!(sent.len(), 1, "sent once");
        let m = self.message(id).await;
        assert_eq!(
            (m.status, m.provider_id.as_deref()),
            (
                copcca_sms::messages::MessageStatus::Sent,
                Some(sent[0].sid.as_str())
            ),
            "sent with Twilio's SID"
        );
        assert_eq!(self.available().await, available, "charged once");
        self.audit_clean().await;
    }

    /// One reconciler pass that treats a message `queued` for `stale_queued` as having lost its
    /// job (other settings as in production).
    pub async fn reconcile(&self, stale_queued: Duration) -> workers::reconcile::Report {
        let settings = workers::reconcile::Settings {
            stale_queued,
            ..Default::default()
        };
        workers::reconcile::reconcile_once(&self.deps, &settings)
            .await
            .unwrap()
    }

    /// Reserves the message's credit as a send step would (a hold of `ttl`), sending nothing:
    /// the step's attempt is then put back (`requeue_attempt`, as a retry does), so the message
    /// is `queued` again with its hold.
    pub async fn hold(&self, id: uuid::Uuid, ttl: Duration) -> ledger::Hold {
        let mut conn = self.pool().acquire().await.unwrap();
        let one = copcca_sms::domain::Credits::new(1).unwrap();
        let hold = reserve_one(&mut conn, self.company.id, MessageId(id), one, ttl)
            .await
            .unwrap()
            .expect("a hold")
            .value;
        let attempt: uuid::Uuid =
            sqlx::query_scalar("SELECT send_attempt_id FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert!(
            store::requeue_attempt(&mut conn, MessageId(id), attempt)
                .await
                .unwrap()
        );
        hold
    }
}

/// Marks the message `sending` with an attempt started `ago`, as a send step's claim does.
pub async fn mark_sending(conn: &mut sqlx::PgConnection, id: uuid::Uuid, ago: Duration) {
    sqlx::query(
        "UPDATE messages SET status = 'sending',
             send_attempt_started_at = now() - make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id)
    .bind(ago.as_secs_f64())
    .execute(conn)
    .await
    .unwrap();
}

/// This process's `copcca_send_interruptions_total` of `kind` so far.
pub fn interruptions(kind: &str) -> u64 {
    crate::support::process_counter(&format!(
        "copcca_send_interruptions_total{{kind=\"{kind}\"}}"
    ))
}

/// A clock stopped at `h:m` today, Dar es Salaam time.
pub fn clock_at(h: u32, m: u32) -> workers::Clock {
    use chrono::TimeZone;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Africa::Dar_es_Salaam)
        .date_naive();
    let local = today.and_hms_opt(h, m, 0).unwrap();
    let at = chrono_tz::Africa::Dar_es_Salaam
        .from_local_datetime(&local)
        .unwrap()
        .with_timezone(&chrono::Utc);
    std::sync::Arc::new(move || at)
}

pub const DRAIN: Duration = Duration::from_secs(20);
