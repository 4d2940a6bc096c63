//! Parse-don't-validate types shared by every layer: ids, credits, money, countries, roles.
//! Nothing here touches the database or the network.

mod credits;
mod ids;
mod money;
mod people;
mod phone;
mod quiet_hours;
mod sms;

pub use credits::{CreditDelta, Credits, CreditsError};
pub use ids::{ApiKeyId, CompanyId, HoldId, MessageId, PaymentId, UserId};
pub use money::{Currency, Money, UnknownCurrency};
pub use people::{Country, Role, UnknownCountry, UnknownRole};
pub use phone::{E164, PhoneError};
pub use quiet_hours::{QuietHours, TimeZone, UnknownTimeZone};
pub use sms::{BodyError, Encoding, MAX_BODY_CHARS, Segments, SmsBody};
