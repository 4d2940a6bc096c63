//! M-Pesa through Safaricom Daraja (PROTOCOLS.md section 5): STK Push, STK Push Query, and the
//! unsigned STK callback. The callback is only a hint: credit after a query says ResultCode 0.

mod callback;
mod client;
mod error;
mod password;
mod token;

pub use callback::{CALLBACK_ACK, CallbackError, StkCallback};
pub use client::{
    ACCOUNT_REFERENCE_MAX, DarajaClient, StkAccepted, StkPush, StkQuery, TRANSACTION_DESC_MAX,
};
pub use error::{DarajaError, DarajaFault};
pub use password::{stk_password, stk_timestamp};
