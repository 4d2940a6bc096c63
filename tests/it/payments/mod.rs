//! Buying credits end to end: the HTTP API, the webhooks, the purchase worker over the real
//! Redis queue and PostgreSQL ledger, and the fake Daraja and Stripe speaking their wire formats.

mod bank;
mod mpesa;
mod requests;
mod stripe;
mod stripe_disputes;
mod stripe_refunds;
mod vodacom;

use std::time::Duration;

use copcca_sms::accounts::{self, Company};
use copcca_sms::domain::{Country, PaymentId, Role};
use copcca_sms::fakes::daraja::{self, FakeDaraja};
use copcca_sms::fakes::stripe::{self as fake_stripe, FakeStripe};
use copcca_sms::fakes::vodacom::{self as fake_vodacom, FakeVodacom};
use copcca_sms::payments::{self, Payment, PaymentProviders};
use copcca_sms::queue::Queues;
use copcca_sms::workers::{Deps, reconcile};
use serde_json::Value;
use sqlx::PgPool;

use crate::support::{TestApp, assert_audit_clean, run_workers_until_idle, spawn_app_with};

pub struct Harness {
    pub app: TestApp,
    pub daraja: FakeDaraja,
    pub stripe: FakeStripe,
    pub vodacom: FakeVodacom,
    pub deps: Deps,
    pub company: Company,
    /// A member of the company.
    pub token: String,
    /// The platform operator.
    pub admin: String,
}

impl Harness {
    /// A company of `country` with no credits, the API with Daraja, Vodacom and Stripe pointed
    /// at the fakes (Vodacom's sessions used as soon as opened), and the workers' dependencies.
    pub async fn new(pool: PgPool, country: Country) -> Self {
        Self::with_env(pool, country, &[]).await
    }

    /// With more configuration variables for the service (`PUBLIC_URL`).
    pub async fn with_env(pool: PgPool, country: Country, env: &[(&str, &str)]) -> Self {
        let daraja = FakeDaraja::start().await.unwrap();
        let stripe = FakeStripe::start().await.unwrap();
        let vodacom = FakeVodacom::start().await.unwrap();
        let vodacom_base = vodacom.base.to_string();
        let prefix = format!("pay-{}", uuid::Uuid::new_v4().simple());
        let (daraja_base, stripe_base) = (daraja.base.to_string(), stripe.base.to_string());
        let mut vars = vec![
            ("REDIS_PREFIX", prefix.as_str()),
            ("MPESA_API_BASE", &daraja_base),
            ("MPESA_CONSUMER_KEY", daraja::CONSUMER_KEY),
            ("MPESA_CONSUMER_SECRET", daraja::CONSUMER_SECRET),
            ("MPESA_SHORTCODE", daraja::SHORTCODE),
            ("MPESA_PASSKEY", daraja::PASSKEY),
            ("STRIPE_API_BASE", &stripe_base),
            ("STRIPE_SECRET_KEY", fake_stripe::SECRET_KEY),
            ("STRIPE_WEBHOOK_SECRET", fake_stripe::WEBHOOK_SECRET),
            ("VODACOM_API_BASE", &vodacom_base),
            ("VODACOM_API_KEY", fake_vodacom::API_KEY),
            ("VODACOM_PUBLIC_KEY", fake_vodacom::PUBLIC_KEY),
            (
                "VODACOM_SERVICE_PROVIDER_CODE",
                fake_vodacom::SERVICE_PROVIDER_CODE,
            ),
            ("VODACOM_SESSION_WAIT_SECS", "0"),
        ];
        vars.extend_from_slice(env);
        let app = spawn_app_with(pool.clone(), &vars).await;
        stripe.set_webhook_url(app.url("/webhooks/stripe").parse().unwrap());
        let queues = Queues::connect(&crate::queue::redis_url(), &prefix)
            .await
            .unwrap();
        let deps = Deps::builder(
            pool.clone(),
            queues,
            copcca_sms::providers::SmsGateway::Demo,
            1_000,
        )
        .payments(PaymentProviders {
            mpesa_recheck: Duration::from_millis(100),
            ..app.state.providers.current().payments.clone()
        })
        .build();
        let company = accounts::create_company(&pool, "Duka la Mama", country)
            .await
            .unwrap();
        let token = app.token(Some(company.id), Role::Member).await;
        let admin = app.token(None, Role::SuperAdmin).await;
        Harness {
            app,
            daraja,
            stripe,
            vodacom,
            deps,
            company,
            token,
            admin,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.deps.pool
    }

    /// `POST /v1/purchases`; the status and the body.
    pub async fn purchase(&self, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .post(self.app.url("/v1/purchases"))
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

    /// Starts a purchase that must succeed; its id.
    pub async fn start(&self, body: Value) -> PaymentId {
        let (status, v) = self.purchase(body, None).await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    /// `POST` as `token` to `path` with a JSON body; the status and the body.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn payment(&self, id: PaymentId) -> Payment {
        payments::find(self.pool(), id).await.unwrap().unwrap()
    }

    pub async fn available(&self) -> i64 {
        crate::support::available(self.pool(), self.company.id).await
    }

    /// Runs the purchase worker until its queue is idle.
    pub async fn drain(&self) {
        run_workers_until_idle(&self.deps, &["purchases"], Duration::from_secs(20)).await;
    }

    /// Moves the payments' expiry into the past: their time is up.
    pub async fn expire(&self, ids: &[PaymentId]) {
        sqlx::query(
            "UPDATE payments SET expires_at = now() - interval '1 minute' WHERE id = ANY($1)",
        )
        .bind(ids.iter().map(|p| p.0).collect::<Vec<_>>())
        .execute(self.pool())
        .await
        .unwrap();
    }

    /// One reconciler pass that looks at every open payment at once, however recent.
    pub async fn sweep(&self) -> reconcile::Report {
        reconcile::reconcile_once(&self.deps, &sweep_now())
            .await
            .unwrap()
    }

    /// The ledger entries that credited `payment` (kind, credits).
    pub async fn entries_of(&self, payment: PaymentId) -> Vec<(String, i64)> {
        sqlx::query_as(
            "SELECT kind, available_delta FROM ledger_entries WHERE payment_id = $1 ORDER BY id",
        )
        .bind(payment)
        .fetch_all(self.pool())
        .await
        .unwrap()
    }

    /// Rejected webhooks of `provider` stored so far, with their reasons.
    pub async fn rejections(&self, provider: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT rejection FROM webhook_events WHERE provider = $1 AND NOT accepted ORDER BY id",
        )
        .bind(provider)
        .fetch_all(self.pool())
        .await
        .unwrap()
    }

    pub async fn audit_clean(&self) {
        assert_audit_clean(self.pool()).await;
    }
}

/// Reconciler settings that check every open payment, however recently it moved.
pub fn sweep_now() -> reconcile::Settings {
    reconcile::Settings {
        stale_payment: Duration::ZERO,
        ..Default::default()
    }
}

/// `refuse_writes` on a payment's `provider_ref` (the push's CheckoutRequestID, the session).
pub const PROVIDER_REF: &str = "BEFORE UPDATE OF provider_ref ON payments FOR EACH ROW";
/// `refuse_writes` on a payment's status history, its move to `pending`.
pub const STATUS_HISTORY: &str =
    "BEFORE INSERT ON payment_events FOR EACH ROW WHEN (NEW.to_status = 'pending')";

/// The next `times` writes of `target` fail as a server that is starting up refuses them
/// (SQLSTATE 57P03, transient); later ones succeed.
pub async fn refuse_writes(pool: &PgPool, target: &str, times: i64) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SEQUENCE write_refusals;
         CREATE TABLE write_refusals_asked AS SELECT {times}::bigint AS times;
         CREATE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF nextval('write_refusals') <= {times} THEN
                 RAISE EXCEPTION 'the database system is starting up' USING ERRCODE = '57P03';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_write {target} EXECUTE FUNCTION refuse_write();"
    )))
    .execute(pool)
    .await
    .unwrap();
}

/// How many writes `refuse_writes` refused.
pub async fn refused_writes(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT least(last_value, (SELECT times FROM write_refusals_asked)) FROM write_refusals",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}
