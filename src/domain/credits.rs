//! Credits are whole SMS segments: an integer, never a float and never money.

use serde::{Deserialize, Serialize};

/// A non-negative number of credits.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
#[schema(value_type = i64)]
pub struct Credits(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    #[error("credits cannot be negative (got {0})")]
    Negative(i64),
    #[error("a credit adjustment cannot be zero")]
    ZeroDelta,
}

impl Credits {
    pub const ZERO: Credits = Credits(0);

    pub fn new(n: i64) -> Result<Self, CreditsError> {
        if n < 0 {
            Err(CreditsError::Negative(n))
        } else {
            Ok(Credits(n))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<i64> for Credits {
    type Error = CreditsError;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Credits::new(n)
    }
}

impl From<Credits> for i64 {
    fn from(c: Credits) -> i64 {
        c.0
    }
}

impl std::fmt::Display for Credits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A signed, non-zero change of credits made by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct CreditDelta(i64);

impl CreditDelta {
    pub fn new(n: i64) -> Result<Self, CreditsError> {
        if n == 0 {
            Err(CreditsError::ZeroDelta)
        } else {
            Ok(CreditDelta(n))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for CreditDelta {
    type Error = CreditsError;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        CreditDelta::new(n)
    }
}

impl From<CreditDelta> for i64 {
    fn from(c: CreditDelta) -> i64 {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_refuse_negative_and_deltas_refuse_zero() {
        assert_eq!(Credits::new(-1), Err(CreditsError::Negative(-1)));
        assert_eq!(Credits::new(0).unwrap().get(), 0);
        assert_eq!(CreditDelta::new(0), Err(CreditsError::ZeroDelta));
        assert_eq!(CreditDelta::new(-5).unwrap().get(), -5);
        assert!(serde_json::from_str::<Credits>("-3").is_err());
        assert_eq!(serde_json::from_str::<Credits>("7").unwrap().get(), 7);
    }
}
