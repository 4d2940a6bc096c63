//! The job handlers, one file per job, and the process that runs them (`copcca-sms work`).
//! Every handler is idempotent: the database row is the truth and a second run has the effect
//! of one.

pub mod reconcile;
mod refund;
pub mod sample_queues;
mod send_sms;
mod sweep;
mod verify_purchase;

use std::time::Duration;

use apalis::prelude::*;
use copcca_jobs::{Refund, SendSms, SweepOverdueDebts, VerifyPurchase};
use sqlx::PgPool;

use std::sync::Arc;

use crate::config::{Config, TwilioTiming};
use crate::live::{LiveProviders, Providers};
use crate::messages::send::SendSteps;
use crate::pacing::{Pace, Pacer};
use crate::payments::PaymentProviders;
use crate::providers::SmsGateway;
use crate::providers::pause::AuthPauses;
use crate::queue::{ConsumerConfig, Queues, RetryPolicy, worker_name};
use crate::ratelimit::RateLimiter;
use crate::routing::{CircuitSettings, Circuits, RoutePaces, Tables};
use crate::settings::SettingsError;

pub use refund::refund;
pub use send_sms::send_sms;
pub use sweep::{sweep, sweep_overdue_debts};
pub use verify_purchase::verify_purchase;

/// The overdue-debt sweep's cron (for `copcca-sms schedule`).
pub use sweep::schedule as schedule_sweeps;

/// What the handlers need.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub queues: Queues,
    /// The SMS gateway and the payment providers in force (reloaded when settings change).
    pub providers: LiveProviders,
    /// Fleet-wide pauses of accounts whose credentials the provider refused.
    pub pauses: AuthPauses,
    /// ValidityPeriod, the token grace, when an unanswered send may be sent again.
    pub twilio_timing: TwilioTiming,
    /// Companies' hourly quotas.
    pub limiter: RateLimiter,
    /// Fair, paced turns at the provider's sender; its account's requests in flight.
    pub pacer: Pacer,
    /// Each route's slots at its sender, from its per-second cap.
    pub paces: RoutePaces,
    /// Requests in flight to the provider account at most (`TWILIO_MAX_IN_FLIGHT`).
    pub max_in_flight: u32,
    /// How long a reservation may stay open before the reconciler looks at it.
    pub hold_ttl: Duration,
    /// The time quiet hours are judged by (tests set it; otherwise the system clock).
    pub clock: Clock,
    /// The send job's reserve and charge steps, grouped across concurrent jobs.
    pub steps: SendSteps,
    /// The operator's routing table, as this process holds it.
    pub routing: Tables,
    /// Every route's circuit, fleet-wide.
    pub circuits: Circuits,
}

/// A source of the current time.
pub type Clock = std::sync::Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

impl Deps {
    /// The providers in force (the environment's, else the operator's settings, else the demo
    /// provider), kept current as settings change.
    pub async fn load(
        pool: PgPool,
        queues: Queues,
        config: &Config,
    ) -> Result<Self, SettingsError> {
        let providers = LiveProviders::start(pool.clone(), Arc::new(config.clone())).await?;
        Ok(
            Self::builder(pool, queues, SmsGateway::Demo, config.twilio_max_per_second)
                .live(providers)
                .timing(config.twilio_timing)
                .max_in_flight(config.twilio_max_in_flight)
                .routing_ttl(config.settings_reload)
                .bulk_paces(RoutePaces::from_config(config))
                .build(),
        )
    }

    /// From now on, the providers in force as `change` leaves them (tests; in production a
    /// settings change does this).
    pub fn change_providers(&mut self, change: impl FnOnce(&mut Providers)) {
        let mut providers = (*self.providers.current()).clone();
        change(&mut providers);
        self.providers = LiveProviders::fixed(providers);
    }

    /// Deps that send through `gateway` at most `per_second` messages a second, with the system
    /// clock and no payment provider.
    pub fn with_gateway(
        pool: PgPool,
        queues: Queues,
        gateway: SmsGateway,
        per_second: u32,
    ) -> Self {
        Self::builder(pool, queues, gateway, per_second).build()
    }

    /// Deps that send through `gateway` at most `per_second` messages a second; the builder's
    /// methods set the rest, [`DepsBuilder::build`] makes them.
    pub fn builder(
        pool: PgPool,
        queues: Queues,
        gateway: SmsGateway,
        per_second: u32,
    ) -> DepsBuilder {
        DepsBuilder {
            pool,
            queues,
            gateway,
            per_second,
            clock: std::sync::Arc::new(chrono::Utc::now),
            payments: None,
            live: None,
            timing: Config::from_lookup(|_| None)
                .expect("the defaults are a valid config")
                .twilio_timing,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            routing_ttl: Duration::from_secs(1),
            circuits: CircuitSettings::default(),
            bulk_paces: RoutePaces::from_config(
                &Config::from_lookup(|_| None).expect("the defaults are a valid config"),
            ),
        }
    }
}

/// [`Deps`] being put together: what they send through is given, the clock and the payment
/// providers may be set.
#[must_use]
pub struct DepsBuilder {
    pool: PgPool,
    queues: Queues,
    gateway: SmsGateway,
    per_second: u32,
    clock: Clock,
    payments: Option<PaymentProviders>,
    live: Option<LiveProviders>,
    timing: TwilioTiming,
    max_in_flight: u32,
    routing_ttl: Duration,
    circuits: CircuitSettings,
    /// The bulk routes' paces (Twilio's is `per_second`).
    bulk_paces: RoutePaces,
}

/// Requests in flight to the provider account at most, unless configured
/// (`TWILIO_MAX_IN_FLIGHT`).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 25;

impl DepsBuilder {
    /// The time quiet hours are judged by (by default the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Daraja and Stripe, to confirm purchases (by default none).
    pub fn payments(mut self, payments: PaymentProviders) -> Self {
        self.payments = Some(payments);
        self
    }

    /// Providers kept current from settings, instead of the given gateway and payments.
    pub fn live(mut self, providers: LiveProviders) -> Self {
        self.live = Some(providers);
        self
    }

    /// ValidityPeriod, the token grace, when an unanswered send is sent again (by default the
    /// configuration's defaults).
    pub fn timing(mut self, timing: TwilioTiming) -> Self {
        self.timing = timing;
        self
    }

    /// Requests in flight to the provider account at most (by default
    /// [`DEFAULT_MAX_IN_FLIGHT`]).
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.max_in_flight = max;
        self
    }

    /// How old the routing table held may be (by default 1 s; `SETTINGS_RELOAD_MS` in
    /// production).
    pub fn routing_ttl(mut self, ttl: Duration) -> Self {
        self.routing_ttl = ttl;
        self
    }

    /// The bulk routes' paces (by default `BEEM_MAX_PER_SECOND`'s and `AT_MAX_PER_SECOND`'s
    /// defaults; Twilio's is the builder's `per_second`).
    pub fn bulk_paces(mut self, paces: RoutePaces) -> Self {
        self.bulk_paces = paces;
        self
    }

    /// When routes' circuits open and for how long (by default `CircuitSettings::default`).
    pub fn circuits(mut self, settings: CircuitSettings) -> Self {
        self.circuits = settings;
        self
    }

    /// The deps, with the send steps' group-commit runners started.
    pub fn build(self) -> Deps {
        let limiter = RateLimiter::new(self.queues.connection(), self.queues.prefix());
        let pacer = Pacer::new(self.queues.connection(), self.queues.prefix());
        let payments = self.payments.unwrap_or_else(|| {
            PaymentProviders::from_config(
                &Config::from_lookup(|_| None).expect("the defaults are a valid config"),
            )
        });
        Deps {
            steps: SendSteps::start(&self.pool),
            routing: Tables::new(self.pool.clone(), self.routing_ttl),
            circuits: Circuits::new(
                self.queues.connection(),
                self.queues.prefix(),
                self.circuits,
            ),
            pauses: AuthPauses::new(self.queues.connection(), self.queues.prefix()),
            pool: self.pool,
            queues: self.queues,
            providers: self.live.unwrap_or_else(|| {
                LiveProviders::fixed(Providers::with_sms(self.gateway, payments))
            }),
            twilio_timing: self.timing,
            limiter,
            pacer,
            paces: RoutePaces {
                twilio: Pace::per_second(self.per_second),
                ..self.bulk_paces
            },
            max_in_flight: self.max_in_flight,
            hold_ttl: Duration::from_secs(3600),
            clock: self.clock,
        }
    }
}

/// Queue settings of the send and refund queues.
pub fn consumer_config() -> ConsumerConfig {
    ConsumerConfig::new(RetryPolicy::new(
        8,
        Duration::from_secs(5),
        Duration::from_secs(600),
    ))
}

/// Runs the workers until `shutdown` completes, then stops them gracefully.
pub async fn run(
    deps: Deps,
    config: ConsumerConfig,
    concurrency: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), MonitorError> {
    let (sms, refunds, purchases, sweeps) = (
        deps.queues.backend_for::<SendSms>(config),
        deps.queues.backend_for::<Refund>(config),
        deps.queues.backend_for::<VerifyPurchase>(config),
        deps.queues.backend_for::<SweepOverdueDebts>(config),
    );
    let (d1, d2, d3, d4) = (deps.clone(), deps.clone(), deps.clone(), deps);
    Monitor::new()
        .register(move |_| {
            WorkerBuilder::new(worker_name("sms"))
                .backend(sms.clone())
                .data(d1.clone())
                .concurrency(concurrency)
                .build(send_sms)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name("refunds"))
                .backend(refunds.clone())
                .data(d2.clone())
                .concurrency(8)
                .build(refund)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name("purchases"))
                .backend(purchases.clone())
                .data(d3.clone())
                .concurrency(8)
                .build(verify_purchase)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name("sweeps"))
                .backend(sweeps.clone())
                .data(d4.clone())
                .concurrency(1)
                .build(sweep_overdue_debts)
        })
        .shutdown_timeout(Duration::from_secs(30))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await
}
