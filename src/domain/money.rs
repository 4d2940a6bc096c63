//! Money is a `Decimal` amount with its ISO 4217 currency; never a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The currencies packages are priced in. TZS and KES are two-decimal in ISO 4217 (and at Stripe).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Currency {
    USD,
    TZS,
    KES,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?} (expected USD, TZS or KES)")]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::USD, Currency::TZS, Currency::KES];

    pub fn code(self) -> &'static str {
        match self {
            Currency::USD => "USD",
            Currency::TZS => "TZS",
            Currency::KES => "KES",
        }
    }

    /// Digits after the decimal point in the minor unit (ISO 4217).
    pub fn minor_digits(self) -> u32 {
        2
    }
}

impl std::str::FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| UnknownCurrency(s.to_string()))
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;
    fn try_from(s: String) -> Result<Self, UnknownCurrency> {
        s.parse()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    /// The amount in minor units (cents), as Stripe expects; `None` if it has sub-minor digits.
    pub fn to_minor_units(self) -> Option<i64> {
        let scaled = self.amount * Decimal::from(10i64.pow(self.currency.minor_digits()));
        if scaled.fract().is_zero() {
            scaled.trunc().try_into().ok()
        } else {
            None
        }
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:.2}", self.currency, self.amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn minor_units_are_exact_or_refused() {
        let m = Money::new(Decimal::from_str("20000").unwrap(), Currency::TZS);
        assert_eq!(m.to_minor_units(), Some(2_000_000));
        let m = Money::new(Decimal::from_str("8.00").unwrap(), Currency::USD);
        assert_eq!(m.to_minor_units(), Some(800));
        let m = Money::new(Decimal::from_str("8.001").unwrap(), Currency::USD);
        assert_eq!(m.to_minor_units(), None);
    }

    #[test]
    fn currency_codes_round_trip() {
        for c in Currency::ALL {
            assert_eq!(Currency::from_str(c.code()).unwrap(), c);
        }
        assert!(Currency::from_str("EUR").is_err());
    }
}
