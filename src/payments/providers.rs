//! The payment providers a deployment has: Daraja and Stripe when configured, and the bank
//! account transfers go to. Built once at start-up and shared by the ingress and the workers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::Method;
use crate::config::{BankAccount, Config, PublicUrl, Secret, VodacomAccount};
use crate::domain::Currency;
use crate::providers::mpesa::DarajaClient;
use crate::providers::stripe::StripeClient;
use crate::providers::vodacom::{SessionStore, VodacomClient};
use crate::settings::{self, MpesaSettings, SettingsError, StripeSettings};

#[derive(Clone)]
pub struct PaymentProviders {
    /// M-Pesa in Kenya (KES): Safaricom Daraja.
    pub mpesa: Option<Arc<DarajaClient>>,
    /// M-Pesa in Tanzania (TZS): Vodacom's OpenAPI.
    pub vodacom: Option<Arc<VodacomClient>>,
    pub stripe: Option<Arc<StripeClient>>,
    /// Verifies `Stripe-Signature`; without it every Stripe webhook is refused.
    pub stripe_webhook_secret: Option<Secret>,
    pub bank: BankAccount,
    /// Base of the M-Pesa callback URLs.
    pub public_url: PublicUrl,
    pub checkout_success_url: String,
    pub checkout_cancel_url: String,
    /// How soon to ask M-Pesa again about a push it is still processing.
    pub mpesa_recheck: Duration,
}

/// A way to pay this deployment takes now (`GET /v1/payment-methods`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Offered {
    pub method: Method,
    /// `vodacom`, `daraja`, `stripe` or `bank`.
    pub provider: &'static str,
    /// ISO codes.
    pub currencies: Vec<&'static str>,
}

impl PaymentProviders {
    /// Who takes `method` in `currency` here, if anyone: M-Pesa is Vodacom for TZS and Daraja for
    /// KES; a card is Stripe; a bank transfer is always taken.
    pub fn provider_for(&self, method: Method, currency: Currency) -> Option<&'static str> {
        match (method, currency) {
            (Method::Mpesa, Currency::TZS) => self.vodacom.is_some().then_some("vodacom"),
            (Method::Mpesa, Currency::KES) => self.mpesa.is_some().then_some("daraja"),
            (Method::Mpesa, _) => None,
            (Method::Card, _) => self.stripe.is_some().then_some("stripe"),
            (Method::BankTransfer, _) => Some("bank"),
        }
    }

    /// Every method and currency configured now, grouped by provider.
    pub fn offered(&self) -> Vec<Offered> {
        let mut offered: Vec<Offered> = Vec::new();
        for method in [Method::Mpesa, Method::Card, Method::BankTransfer] {
            for currency in Currency::ALL {
                let Some(provider) = self.provider_for(method, currency) else {
                    continue;
                };
                match offered
                    .iter_mut()
                    .find(|o| o.method == method && o.provider == provider)
                {
                    Some(o) => o.currencies.push(currency.code()),
                    None => offered.push(Offered {
                        method,
                        provider,
                        currencies: vec![currency.code()],
                    }),
                }
            }
        }
        offered
    }

    /// The providers whose credentials the environment holds (no database needed).
    pub fn from_config(config: &Config) -> Self {
        let mpesa = match (
            &config.mpesa_consumer_key,
            &config.mpesa_consumer_secret,
            &config.mpesa_shortcode,
            &config.mpesa_passkey,
        ) {
            (Some(key), Some(secret), Some(shortcode), Some(passkey)) => Some(MpesaSettings {
                consumer_key: key.clone(),
                consumer_secret: secret.clone(),
                shortcode: shortcode.clone(),
                passkey: passkey.clone(),
            }),
            _ => None,
        };
        let stripe = match (&config.stripe_secret_key, &config.stripe_webhook_secret) {
            (Some(key), Some(webhook)) => Some(StripeSettings {
                secret_key: key.clone(),
                webhook_secret: webhook.clone(),
            }),
            _ => None,
        };
        Self::with(config, mpesa, stripe, config.vodacom.clone())
    }

    /// The providers in force: the environment's, else the operator's settings (see
    /// `settings::effective_*`; the environment wins, provider by provider).
    pub async fn load(pool: &PgPool, config: &Config) -> Result<Self, SettingsError> {
        let mpesa = settings::effective_mpesa(pool, config).await?;
        let stripe = settings::effective_stripe(pool, config).await?;
        let vodacom = settings::effective_vodacom(pool, config).await?;
        Ok(Self::with(config, mpesa, stripe, vodacom))
    }

    fn with(
        config: &Config,
        mpesa: Option<MpesaSettings>,
        stripe: Option<StripeSettings>,
        vodacom: Option<VodacomAccount>,
    ) -> Self {
        PaymentProviders {
            vodacom: vodacom.and_then(|account| match vodacom_client(config, account) {
                Ok(client) => Some(Arc::new(client)),
                Err(e) => {
                    tracing::error!(error = %e, "the Vodacom M-Pesa account cannot be used");
                    None
                }
            }),
            mpesa: mpesa.map(|m| {
                Arc::new(DarajaClient::new(
                    config.mpesa_api_base.clone(),
                    m.consumer_key,
                    m.consumer_secret,
                    m.shortcode,
                    m.passkey,
                ))
            }),
            stripe_webhook_secret: stripe.as_ref().map(|s| s.webhook_secret.clone()),
            stripe: stripe.map(|s| {
                Arc::new(StripeClient::new(
                    config.stripe_api_base.clone(),
                    s.secret_key,
                ))
            }),
            bank: config.bank.clone(),
            public_url: config.public_url.clone(),
            checkout_success_url: config.checkout_success_url.clone(),
            checkout_cancel_url: config.checkout_cancel_url.clone(),
            mpesa_recheck: Duration::from_secs(20),
        }
    }
}

/// The Vodacom client of `account`, its session kept in this deployment's Redis.
pub fn vodacom_client(config: &Config, account: VodacomAccount) -> Result<VodacomClient, String> {
    let sessions = SessionStore::new(&config.redis_url, &config.redis_prefix, &account.api_key)?;
    Ok(
        VodacomClient::new(config.vodacom_api_base.clone(), account, sessions)?
            .with_session_wait(config.vodacom_session_wait),
    )
}
