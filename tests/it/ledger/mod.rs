//! The ledger's operations, their idempotency and their behaviour under concurrent callers.

mod batches;
mod checkpoints;
mod credits;
mod holds;
mod integrity;
mod script;

use std::time::Duration;

/// Long enough never to expire during a test.
const TTL: Duration = Duration::from_secs(600);
