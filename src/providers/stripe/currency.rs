//! Amounts on Stripe's wire are integers in the currency's minor unit (PROTOCOLS.md section 4).
//! TZS and KES are *two*-decimal there (KES 500 -> 50000), whatever their everyday use.

use rust_decimal::Decimal;

/// Currencies Stripe treats as zero-decimal: the amount is sent as is.
pub const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Three-decimal currencies: sent ×1000, and Stripe requires the last digit to be 0.
pub const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MinorUnitsError {
    #[error("currency {0:?} is not a three-letter ISO code")]
    BadCurrency(String),
    #[error("amount must be positive")]
    NotPositive,
    #[error("{amount} {currency} is not a whole number of units Stripe accepts")]
    Fractional { amount: Decimal, currency: String },
    #[error("amount too large")]
    Overflow,
}

/// `amount` in Stripe's minor units of `currency` (any case): TZS 25000 -> 2500000, USD 8.00 -> 800,
/// JPY 500 -> 500. Refuses amounts that do not land on a whole unit Stripe accepts (USD 8.005, ISK
/// with øre, KWD ending in a non-zero third decimal) rather than rounding someone's money.
pub fn minor_units(amount: Decimal, currency: &str) -> Result<i64, MinorUnitsError> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(MinorUnitsError::BadCurrency(currency.to_string()));
    }
    let code = currency.to_ascii_uppercase();
    if amount <= Decimal::ZERO {
        return Err(MinorUnitsError::NotPositive);
    }
    let (factor, step) = factor_and_step(&code);
    let minor = amount
        .checked_mul(Decimal::from(factor))
        .ok_or(MinorUnitsError::Overflow)?;
    let fractional = || MinorUnitsError::Fractional {
        amount,
        currency: code.clone(),
    };
    if !minor.fract().is_zero() {
        return Err(fractional());
    }
    let minor: i64 = minor.try_into().map_err(|_| MinorUnitsError::Overflow)?;
    if minor % step != 0 {
        return Err(fractional());
    }
    Ok(minor)
}

/// An amount Stripe gives in minor units of `currency` (any case) as the amount itself: TZS
/// 2500000 -> 25000.00, JPY 500 -> 500. The inverse of [`minor_units`]; zero is zero.
pub fn from_minor_units(minor: i64, currency: &str) -> Result<Decimal, MinorUnitsError> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(MinorUnitsError::BadCurrency(currency.to_string()));
    }
    if minor < 0 {
        return Err(MinorUnitsError::NotPositive);
    }
    let (factor, _) = factor_and_step(&currency.to_ascii_uppercase());
    let scale = factor.ilog10();
    Ok(Decimal::new(minor, scale))
}

/// (minor units per unit, the granularity Stripe accepts in minor units) of an upper-case code.
fn factor_and_step(code: &str) -> (i64, i64) {
    if ZERO_DECIMAL.contains(&code) {
        (1, 1)
    } else if THREE_DECIMAL.contains(&code) {
        (1000, 10)
    } else if code == "ISK" {
        // Two-decimal in the API, but only whole krónur are accepted.
        (100, 100)
    } else {
        (100, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn the_currencies_we_sell_in_are_two_decimal() {
        assert_eq!(minor_units(dec("25000"), "TZS"), Ok(2_500_000));
        assert_eq!(minor_units(dec("500"), "KES"), Ok(50_000));
        assert_eq!(minor_units(dec("8.00"), "USD"), Ok(800));
        assert_eq!(minor_units(dec("8.5"), "usd"), Ok(850));
    }

    #[test]
    fn minor_units_read_back() {
        assert_eq!(from_minor_units(2_500_000, "tzs"), Ok(dec("25000.00")));
        assert_eq!(from_minor_units(1_000_000, "TZS"), Ok(dec("10000")));
        assert_eq!(from_minor_units(850, "usd"), Ok(dec("8.50")));
        assert_eq!(from_minor_units(500, "JPY"), Ok(dec("500")));
        assert_eq!(from_minor_units(1250, "KWD"), Ok(dec("1.25")));
        assert_eq!(from_minor_units(0, "USD"), Ok(Decimal::ZERO));
        assert_eq!(
            from_minor_units(-1, "USD"),
            Err(MinorUnitsError::NotPositive)
        );
        assert!(matches!(
            from_minor_units(1, "US"),
            Err(MinorUnitsError::BadCurrency(_))
        ));
    }

    #[test]
    fn zero_and_three_decimal_currencies() {
        assert_eq!(minor_units(dec("500"), "JPY"), Ok(500));
        assert_eq!(minor_units(dec("1000"), "ugx"), Ok(1000));
        assert!(matches!(
            minor_units(dec("10.5"), "JPY"),
            Err(MinorUnitsError::Fractional { .. })
        ));
        assert_eq!(minor_units(dec("1.25"), "KWD"), Ok(1250));
        assert!(matches!(
            minor_units(dec("1.255"), "KWD"),
            Err(MinorUnitsError::Fractional { .. })
        ));
        assert_eq!(minor_units(dec("300"), "ISK"), Ok(30000));
        assert!(matches!(
            minor_units(dec("300.50"), "ISK"),
            Err(MinorUnitsError::Fractional { .. })
        ));
    }

    #[test]
    fn fractional_minor_units_are_refused_not_rounded() {
        assert!(matches!(
            minor_units(dec("8.005"), "USD"),
            Err(MinorUnitsError::Fractional { .. })
        ));
        assert_eq!(minor_units(dec("8.000"), "USD"), Ok(800));
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(
            minor_units(dec("0"), "USD"),
            Err(MinorUnitsError::NotPositive)
        );
        assert_eq!(
            minor_units(dec("-1"), "USD"),
            Err(MinorUnitsError::NotPositive)
        );
        assert!(matches!(
            minor_units(dec("1"), "US"),
            Err(MinorUnitsError::BadCurrency(_))
        ));
        assert_eq!(
            minor_units(Decimal::MAX, "USD"),
            Err(MinorUnitsError::Overflow)
        );
    }
}
