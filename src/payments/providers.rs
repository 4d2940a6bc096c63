//! The payment providers a deployment has: Daraja and Stripe when configured, and the bank
//! account transfers go to. Built once at start-up and shared by the ingress and the workers.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::config::{BankAccount, Config, Secret};
use crate::providers::mpesa::DarajaClient;
use crate::providers::stripe::StripeClient;

#[derive(Clone)]
pub struct PaymentProviders {
    pub mpesa: Option<Arc<DarajaClient>>,
    pub stripe: Option<Arc<StripeClient>>,
    /// Verifies `Stripe-Signature`; without it every Stripe webhook is refused.
    pub stripe_webhook_secret: Option<Secret>,
    pub bank: BankAccount,
    /// Base of the M-Pesa callback URLs.
    pub public_url: Url,
    pub checkout_success_url: String,
    pub checkout_cancel_url: String,
    /// How soon to ask M-Pesa again about a push it is still processing.
    pub mpesa_recheck: Duration,
}

impl PaymentProviders {
    /// The providers whose credentials the environment holds.
    pub fn from_config(config: &Config) -> Self {
        let mpesa = match (
            &config.mpesa_consumer_key,
            &config.mpesa_consumer_secret,
            &config.mpesa_shortcode,
            &config.mpesa_passkey,
        ) {
            (Some(key), Some(secret), Some(shortcode), Some(passkey)) => {
                Some(Arc::new(DarajaClient::new(
                    config.mpesa_api_base.clone(),
                    key.clone(),
                    secret.clone(),
                    shortcode.clone(),
                    passkey.clone(),
                )))
            }
            _ => None,
        };
        let stripe = config.stripe_secret_key.as_ref().map(|key| {
            Arc::new(StripeClient::new(
                config.stripe_api_base.clone(),
                key.clone(),
            ))
        });
        PaymentProviders {
            mpesa,
            stripe,
            stripe_webhook_secret: config.stripe_webhook_secret.clone(),
            bank: config.bank.clone(),
            public_url: config.public_url.clone(),
            checkout_success_url: config.checkout_success_url.clone(),
            checkout_cancel_url: config.checkout_cancel_url.clone(),
            mpesa_recheck: Duration::from_secs(20),
        }
    }
}
