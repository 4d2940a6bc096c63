//! The SMS log: a message row is the truth about one SMS; jobs only carry its id.
//! (Accepting messages from the API, with number and segment rules, arrives with the sending issue.)

mod store;

pub use store::{NewMessage, insert_queued};
