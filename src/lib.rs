//! copcca-sms: the SMS credits and sending service behind COPCCA CRM.
//!
//! Layers, from the bottom: foundations ([`domain`], [`config`], [`db`]), capabilities
//! ([`ledger`], [`accounts`], [`packages`], [`templates`], [`messages`], [`debts`]), interfaces
//! ([`http`], [`cli`], [`workers`]).
//! Nothing imports upward.

pub mod accounts;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod fakes;
pub mod http;
pub mod inbox;
pub mod ledger;
pub mod messages;
pub mod metrics;
pub mod payments;
pub mod providers;
pub mod queue;
pub mod ratelimit;
pub mod settings;
pub mod sweeps;
pub mod telemetry;
pub mod templates;
pub mod workers;
