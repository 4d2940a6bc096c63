//! The SMS log: a message row is the truth about one SMS; jobs only carry its id.

mod accept;
pub mod batch;
pub mod eta;
pub mod opt_outs;
pub mod prices;
pub mod rates;
pub mod recovery;
pub mod report_pulls;
pub mod reports;
pub mod resolve;
pub mod send;
mod status;
pub mod store;

pub use accept::{AcceptError, AcceptRequest, Acceptance, Acceptor, accept};
pub use status::MessageStatus;
pub use store::{Message, MessageView, NewMessage, insert_queued};
