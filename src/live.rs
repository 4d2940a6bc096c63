//! The providers in force, as every running process sees them: built from the environment and
//! the operator's settings (the environment wins, provider by provider, `settings::*_in_force`)
//! and rebuilt when the settings change. Each process polls `settings::version` every
//! `SETTINGS_RELOAD_MS` (5 s by default), so a credential rotation reaches `serve`, `work` and
//! `schedule` within seconds, without a restart. A job run or a request takes one snapshot
//! ([`LiveProviders::current`]) and keeps it to its end: one send, one account.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::config::{AfricasTalkingAccount, BeemAccount, Config};
use crate::payments::PaymentProviders;
use crate::providers::SmsGateway;
use crate::providers::twilio::signature::CallbackKeys;
use crate::providers::twilio::{Sender, TwilioClient};
use crate::routing::SmsRoutes;
use crate::settings::{self, SettingsError, Source, TwilioSettings};

/// One snapshot of the providers in force.
#[derive(Clone)]
pub struct Providers {
    /// Every SMS route's account (Twilio's, or the demo in its place; Beem's; Africa's Talking's).
    pub sms: SmsRoutes,
    /// Verifies `X-Twilio-Signature`; `None`: no Twilio account, every Twilio webhook refused.
    pub twilio_callbacks: Option<CallbackKeys>,
    /// Daraja, Stripe and the bank account, for purchases and their webhooks.
    pub payments: PaymentProviders,
}

impl Providers {
    /// The providers the environment configures, nothing read from the database (tests,
    /// benches, the demo).
    pub fn from_config(config: &Config) -> Self {
        let twilio = config.twilio.as_ref().map(|t| TwilioSettings {
            account_sid: t.account_sid.clone(),
            auth_token: t.auth_token.clone(),
            from: t.from.clone(),
        });
        let bulk = Bulk {
            beem: config.beem.clone(),
            africastalking: config.africastalking.clone(),
        };
        Self::with(
            config,
            twilio,
            None,
            bulk,
            PaymentProviders::from_config(config),
        )
    }

    /// The providers in force now: the environment's, else the operator's settings.
    pub async fn load(pool: &PgPool, config: &Config) -> Result<Self, SettingsError> {
        let twilio = settings::twilio_in_force(pool, config).await?;
        // The previous token counts only for the account in settings: a rotation there is what
        // records it. (Credentials in the environment change with a restart.)
        let previous = match &twilio {
            Some((Source::Settings, _)) => {
                let cipher = config.settings_key.as_ref().map(settings::Cipher::new);
                settings::twilio_previous_token(pool, cipher.as_ref()).await?
            }
            _ => None,
        };
        let bulk = Bulk {
            beem: settings::beem_in_force(pool, config).await?.map(|(_, b)| b),
            africastalking: settings::africastalking_in_force(pool, config)
                .await?
                .map(|(_, a)| a),
        };
        let payments = PaymentProviders::load(pool, config).await?;
        Ok(Self::with(
            config,
            twilio.map(|(_, t)| t),
            previous,
            bulk,
            payments,
        ))
    }

    /// The providers with this SMS gateway and no Twilio callbacks or payment providers
    /// configured beyond the environment's (tests).
    pub fn with_sms(sms: SmsGateway, payments: PaymentProviders) -> Self {
        Self::with_routes(SmsRoutes::twilio_only(sms), payments)
    }

    /// The providers with these SMS routes (tests).
    pub fn with_routes(sms: SmsRoutes, payments: PaymentProviders) -> Self {
        let twilio_callbacks = match &sms.twilio {
            SmsGateway::Twilio(c) => Some(CallbackKeys {
                current: c.auth_token().clone(),
                previous: None,
            }),
            _ => None,
        };
        Providers {
            sms,
            twilio_callbacks,
            payments,
        }
    }

    fn with(
        config: &Config,
        twilio: Option<TwilioSettings>,
        previous: Option<settings::PreviousToken>,
        bulk: Bulk,
        payments: PaymentProviders,
    ) -> Self {
        let routes = |twilio| {
            SmsRoutes::new(
                twilio,
                config,
                bulk.beem.as_ref(),
                bulk.africastalking.as_ref(),
            )
        };
        let Some(t) = twilio else {
            return Providers {
                sms: routes(SmsGateway::Demo),
                twilio_callbacks: None,
                payments,
            };
        };
        let twilio_callbacks = Some(CallbackKeys {
            current: t.auth_token.clone(),
            previous: previous
                .filter(|p| p.token.expose() != t.auth_token.expose())
                .map(|p| {
                    let until = p.accepted_until(config.twilio_timing.token_grace);
                    (p.token, until)
                }),
        });
        let client = TwilioClient::new(
            config.twilio_api_base.clone(),
            &t.account_sid,
            t.auth_token,
            Sender::parse(&t.from),
            &config.public_url,
        )
        .with_validity(config.twilio_timing.validity);
        Providers {
            sms: routes(SmsGateway::Twilio(Box::new(client))),
            twilio_callbacks,
            payments,
        }
    }
}

/// The bulk routes' accounts in force.
struct Bulk {
    beem: Option<BeemAccount>,
    africastalking: Option<AfricasTalkingAccount>,
}

/// The providers in force, kept current; cheap to clone.
#[derive(Clone)]
pub struct LiveProviders(watch::Receiver<Arc<Providers>>);

impl LiveProviders {
    /// Providers that never change (tests, benches, the demo).
    pub fn fixed(providers: Providers) -> Self {
        // The sender may go: a receiver keeps the last value.
        LiveProviders(watch::channel(Arc::new(providers)).1)
    }

    /// The providers in force now, reloaded from settings whenever they change, for as long as
    /// a clone of the handle lives.
    pub async fn start(pool: PgPool, config: Arc<Config>) -> Result<Self, SettingsError> {
        let seen = settings::version(&pool).await?;
        let first = Providers::load(&pool, &config).await?;
        record_report_tokens(&pool, &first).await;
        let (tx, rx) = watch::channel(Arc::new(first));
        tokio::spawn(reload(pool, config, tx, seen));
        Ok(LiveProviders(rx))
    }

    /// The snapshot in force; a run keeps it to its end.
    pub fn current(&self) -> Arc<Providers> {
        self.0.borrow().clone()
    }
}

/// Records the report tokens `providers` serve (`routing::report_tokens`). A failure is
/// logged: the tokens in force work regardless; only a replaced one's grace may start late.
async fn record_report_tokens(pool: &PgPool, providers: &Providers) {
    if let Err(e) = crate::routing::report_tokens::serve(pool, &providers.sms).await {
        tracing::warn!(error = %e, "report tokens in force not recorded");
    }
}

async fn reload(
    pool: PgPool,
    config: Arc<Config>,
    tx: watch::Sender<Arc<Providers>>,
    mut seen: (Option<chrono::DateTime<chrono::Utc>>, i64),
) {
    loop {
        tokio::time::sleep(config.settings_reload).await;
        if tx.is_closed() {
            return; // nobody holds the providers any more
        }
        let version = match settings::version(&pool).await {
            Ok(v) if v == seen => continue,
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the settings' version; trying again");
                continue;
            }
        };
        match Providers::load(&pool, &config).await {
            Ok(providers) => {
                tracing::info!(
                    sms = providers.sms.twilio.name(),
                    account = providers.sms.twilio.account().unwrap_or("-"),
                    "settings changed: providers reloaded"
                );
                seen = version;
                record_report_tokens(&pool, &providers).await;
                tx.send_replace(Arc::new(providers));
            }
            Err(e) => {
                tracing::error!(alert = true, error = %e, "settings changed but cannot be loaded; keeping the providers in force");
            }
        }
    }
}
