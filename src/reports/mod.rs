//! Reports for the operator, read from the ledger, the payments and the messages.

pub mod revenue;

pub use revenue::{GroupBy, RevenueQuery, RevenueReport, RevenueRow, revenue};
