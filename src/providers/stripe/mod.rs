//! Stripe Checkout (PROTOCOLS.md section 4): the Checkout Sessions client, the webhook event
//! envelope, `Stripe-Signature` and Stripe's minor units.

mod client;
mod currency;
mod error;
mod event;
pub mod signature;

pub use client::{CheckoutRequest, CheckoutSession, StripeClient, StripeRefund};
pub use currency::{MinorUnitsError, THREE_DECIMAL, ZERO_DECIMAL, from_minor_units, minor_units};
pub use error::StripeError;
pub use event::{Charge, Dispute, Event, EventData};
