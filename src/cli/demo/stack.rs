//! The demo's running parts: a fresh database, the fake providers, the HTTP service and
//! the workers, all in this process, and their orderly stop.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use super::fakes::FakeProviders;
use crate::config::Config;
use crate::fakes::africastalking::FakeAfricasTalking;
use crate::fakes::beem::FakeBeem;
use crate::fakes::daraja::FakeDaraja;
use crate::fakes::stripe::FakeStripe;
use crate::fakes::twilio::FakeTwilio;
use crate::fakes::vodacom::FakeVodacom;
use crate::http::{self, AppState};
use crate::payments::PaymentProviders;
use crate::providers::SmsGateway;
use crate::queue::{ConsumerConfig, Queues, RetryPolicy};
use crate::routing::RouteName;
use crate::{db, workers};

/// How long after a send the bulk routes' fakes post its delivery report (after our charge).
const REPORT_AFTER: Duration = Duration::from_secs(2);

/// The database the demo owns (dropped and created again on every run).
pub const DATABASE: &str = "copcca_sms_demo";

pub struct Stack {
    pub pool: PgPool,
    pub state: AppState,
    /// `http://127.0.0.1:port/`
    pub base: Url,
    pub client: reqwest::Client,
    pub twilio: FakeTwilio,
    /// Serves the STK Push the demo makes (its state lives as long as the stack).
    _daraja: FakeDaraja,
    /// Serves the Vodacom payment the demo makes in TZS.
    _vodacom: FakeVodacom,
    pub stripe: FakeStripe,
    /// The Tanzanian and Kenyan SMS routes beside Twilio; they post their delivery reports.
    pub beem: FakeBeem,
    pub africastalking: FakeAfricasTalking,
    pub queues: Queues,
    stop_http: oneshot::Sender<()>,
    stop_workers: oneshot::Sender<()>,
    http: JoinHandle<()>,
    workers: JoinHandle<()>,
}

impl Stack {
    pub async fn start(base: &Config) -> anyhow::Result<Self> {
        let database_url = fresh_database(&base.database_url, DATABASE).await?;
        db::migrate(&database_url, &base.database_schema)
            .await?
            .close()
            .await;
        let pool = db::connect(&database_url, &base.database_schema, 40).await?;

        let fakes = FakeProviders::start().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let public = Url::parse(&format!("http://{}/", listener.local_addr()?))?;
        let prefix = format!("demo-{}", uuid::Uuid::new_v4().simple());
        let overrides: HashMap<&str, String> = [
            ("DATABASE_URL", database_url.clone()),
            ("PUBLIC_URL", public.to_string()),
            ("REDIS_PREFIX", prefix.clone()),
            ("TWILIO_MAX_PER_SECOND", "1000".into()),
            // One local caller polling its own batch: the per-company API limit is not the point.
            ("API_RATE_PER_SECOND", "0".into()),
        ]
        .into_iter()
        .chain(fakes.env())
        .collect();
        let config =
            Config::from_lookup(|k| overrides.get(k).cloned().or_else(|| std::env::var(k).ok()))?;
        let FakeProviders {
            twilio,
            daraja,
            stripe,
            vodacom,
            beem,
            africastalking,
        } = fakes;
        stripe.set_webhook_url(config.public_url.route("/webhooks/stripe"));

        let state = AppState::new(pool.clone(), config.clone())?;
        let (stop_http, http_stopped) = oneshot::channel::<()>();
        let served = state.clone();
        let http = tokio::spawn(async move {
            let shutdown = async move {
                let _ = http_stopped.await;
            };
            if let Err(e) = http::serve(listener, served, shutdown).await {
                tracing::error!(error = %e, "demo HTTP server stopped");
            }
        });

        let queues = Queues::connect(&config.redis_url, &prefix).await?;
        let deps = workers::Deps::builder(
            pool.clone(),
            queues.clone(),
            SmsGateway::Twilio(Box::new(twilio.client(&config.public_url))),
            config.twilio_max_per_second,
        )
        .payments(PaymentProviders {
            mpesa_recheck: Duration::from_millis(200),
            ..state.providers.current().payments.clone()
        })
        .build();
        // Beem and Africa's Talking as the configuration has them (the fakes), each posting its
        // delivery reports to its route's secret URL a moment after the send.
        let mut deps = deps;
        let routes = state.providers.current().sms.clone();
        let report_url = |route: RouteName| {
            let token = routes
                .get(route)
                .and_then(|g| g.report_token())
                .expect("the demo configures every route");
            config
                .public_url
                .route(&format!("/webhooks/{route}/{token}"))
                .to_string()
        };
        beem.report_to(Some(&report_url(RouteName::Beem)), REPORT_AFTER);
        africastalking.report_to(Some(&report_url(RouteName::Africastalking)), REPORT_AFTER);
        deps.change_providers(|p| {
            p.sms.beem = routes.beem.clone();
            p.sms.africastalking = routes.africastalking.clone();
        });
        let mut consumer = ConsumerConfig::new(RetryPolicy::new(
            8,
            Duration::from_millis(50),
            Duration::from_secs(1),
        ));
        consumer.lease = Duration::from_secs(10);
        let (stop_workers, workers_stopped) = oneshot::channel::<()>();
        let concurrency = config.send_concurrency;
        let workers = tokio::spawn(async move {
            let shutdown = async move {
                let _ = workers_stopped.await;
            };
            if let Err(e) = workers::run(deps, consumer, concurrency, shutdown).await {
                tracing::error!(error = %e, "demo workers stopped");
            }
        });

        Ok(Stack {
            pool,
            state,
            base: public,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            twilio,
            _daraja: daraja,
            _vodacom: vodacom,
            stripe,
            beem,
            africastalking,
            queues,
            stop_http,
            stop_workers,
            http,
            workers,
        })
    }

    pub fn url(&self, path: &str) -> String {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("a path")
            .to_string()
    }

    /// Stops the workers and the server, and removes the demo's Redis keys.
    pub async fn stop(self) {
        let _ = self.stop_workers.send(());
        let _ = self.workers.await;
        let _ = self.stop_http.send(());
        let _ = self.http.await;
        if let Err(e) = self.queues.delete_all().await {
            tracing::warn!(error = %e, "demo Redis keys not removed");
        }
        self.pool.close().await;
    }
}

/// Drops database `name` on `base`'s server, so that every run (of the demo, or the chaos run)
/// starts from nothing; its URL, for `db::migrate` to create it.
pub(in crate::cli) async fn fresh_database(base: &str, name: &str) -> anyhow::Result<String> {
    use sqlx::migrate::MigrateDatabase;
    let mut url = Url::parse(base)?;
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    if sqlx::Postgres::database_exists(&url).await? {
        sqlx::Postgres::force_drop_database(&url).await?;
    }
    Ok(url)
}
