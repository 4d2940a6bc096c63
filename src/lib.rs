//! copcca-sms: the SMS credits and sending service behind COPCCA CRM.
//!
//! Layers, from the bottom:
//! - foundations: [`domain`], [`config`], [`db`] (pool, migrations, group commit, SQLSTATE
//!   classes), [`metrics`] (the process's series), [`telemetry`], [`faults`] (the named failure
//!   points, compiled in only with the `failpoints` feature);
//! - capabilities: [`ledger`], [`accounts`], [`templates`], [`messages`], [`payments`] (with
//!   its packages), [`sweeps`] (with the debts), [`inbox`] (every webhook stored), [`queue`],
//!   [`ratelimit`], [`settings`], [`providers`] and their [`fakes`];
//! - interfaces: [`http`], [`workers`], [`cli`] (with the demo).
//!
//! Nothing imports upward, and no two modules import each other.

/// Every process (and the benches and tests, which link this crate) allocates with mimalloc:
/// the send path makes many small, short-lived allocations (requests, rows, JSON), and glibc's
/// allocator was about a seventh of this process's CPU in the sending bench (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod accounts;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod errors;
pub mod fakes;
pub mod faults;
pub mod http;
pub mod inbox;
pub mod ledger;
pub mod live;
pub mod messages;
pub mod metrics;
pub mod pacing;
pub mod payments;
pub mod providers;
pub mod queue;
pub mod ratelimit;
pub mod reports;
pub mod routing;
pub mod settings;
pub mod sweeps;
pub mod telemetry;
pub mod templates;
pub mod workers;
