//! Loopback stand-ins for the providers, speaking their real wire formats, for the tests and the
//! demo. Production code never starts them; the provider clients cannot tell them apart from the
//! real hosts except by URL.

pub mod africastalking;
pub mod beem;
pub mod daraja;
pub mod stripe;
pub mod traffic;
pub mod twilio;
pub mod vodacom;
