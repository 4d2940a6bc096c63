//! Integration tests against the real PostgreSQL (one throwaway database per test, created by
//! `#[sqlx::test]` on DATABASE_URL's server) and Redis. One binary, a module per feature.

mod cli;
mod http_api;
mod ledger;
mod ledger_props;
pub mod observability;
pub mod queue;
mod sending;
mod support;
