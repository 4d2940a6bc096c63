//! Integration tests against the real PostgreSQL (one throwaway database per test, created by
//! `#[sqlx::test]` on DATABASE_URL's server) and Redis. One binary, a module per feature.

pub mod cli;
mod demo;
// The named failure points' tests, only in builds that have the points.
#[cfg(feature = "failpoints")]
mod faults;
mod growth;
pub mod http_api;
mod ingress;
mod ledger;
mod ledger_props;
pub mod observability;
mod payments;
mod payments_mpesa_client;
mod payments_stripe_client;
mod payments_vodacom_client;
mod proxy;
pub mod queue;
mod reports;
mod row_security;
mod sending;
mod sms_routes;
mod status_page;
mod support;
