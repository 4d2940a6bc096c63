//! `copcca-sms demo`: the whole product in one process on a fresh database of its own, against
//! the built-in fake Twilio, Daraja and Stripe. It buys credits once by each method, sends a
//! reminder batch in English and Swahili (with a few invalid numbers and a few delivery
//! failures), and prints what happened and the ledger audit. Nothing leaves the machine and
//! nothing is left running.

mod fakes;
mod scenario;
mod stack;
mod summary;

use std::process::ExitCode;
use std::time::Instant;

use crate::config::Config;

pub use fakes::FakeProviders;
pub(super) use stack::fresh_database;

/// Runs the demo; `json` prints the summary as one JSON object instead of a table.
pub async fn run(base: Config, json: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let stack = stack::Stack::start(&base).await?;
    let outcome = scenario::play(&stack).await;
    let summary = match outcome {
        Ok(progress) => summary::collect(&stack, progress, started.elapsed()).await,
        Err(e) => Err(e),
    };
    stack.stop().await;
    let summary = summary?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        summary.print();
    }
    Ok(if summary.audit_clean && summary.adds_up() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
