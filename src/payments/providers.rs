//! The payment providers a deployment has: Daraja and Stripe when configured, and the bank
//! account transfers go to. Built once at start-up and shared by the ingress and the workers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::config::{BankAccount, Config, PublicUrl, Secret};
use crate::providers::mpesa::DarajaClient;
use crate::providers::stripe::StripeClient;
use crate::settings::{self, MpesaSettings, SettingsError, StripeSettings};

#[derive(Clone)]
pub struct PaymentProviders {
    pub mpesa: Option<Arc<DarajaClient>>,
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

impl PaymentProviders {
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
        Self::with(config, mpesa, stripe)
    }

    /// The providers in force: the environment's, else the operator's settings (see
    /// `settings::effective_*`; the environment wins, provider by provider).
    pub async fn load(pool: &PgPool, config: &Config) -> Result<Self, SettingsError> {
        let mpesa = settings::effective_mpesa(pool, config).await?;
        let stripe = settings::effective_stripe(pool, config).await?;
        Ok(Self::with(config, mpesa, stripe))
    }

    fn with(config: &Config, mpesa: Option<MpesaSettings>, stripe: Option<StripeSettings>) -> Self {
        PaymentProviders {
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
