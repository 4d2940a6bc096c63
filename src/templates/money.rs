//! Money as a debtor reads it: the ISO code, thousands grouped with commas, and the decimals
//! the currency is quoted in. `TZS 20,000` (shillings are quoted whole; cents, rare, are shown
//! rather than rounded away), `KES 1,500.00`, `USD 8.00` (always two decimals, rounded half
//! away from zero). The same in English and Swahili: both markets write `20,000`.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::Currency;

/// `amount` in `currency`, e.g. `TZS 20,000`.
pub fn format(amount: Decimal, currency: Currency) -> String {
    let places = match currency {
        Currency::TZS if amount.fract().is_zero() => 0,
        _ => 2,
    };
    let rounded = amount.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.*}", places as usize, rounded.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(currency.code());
    out.push(' ');
    if rounded.is_sign_negative() && !rounded.is_zero() {
        out.push('-');
    }
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// An amount as a caller writes it: digits with an optional decimal point (`20000`,
/// `1500.5`). Grouping commas, signs and exponents are refused rather than guessed at.
pub fn parse_amount(raw: &str) -> Result<Decimal, String> {
    let s = raw.trim();
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (s.contains('.') && fraction.is_empty())
    {
        return Err(format!(
            "{raw:?} is not an amount (digits with an optional decimal point, e.g. 20000 or 1500.50)"
        ));
    }
    s.parse::<Decimal>()
        .map_err(|e| format!("{raw:?} is not an amount: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn tanzanian_shillings_are_whole_with_grouping() {
        assert_eq!(format(d("20000"), Currency::TZS), "TZS 20,000");
        assert_eq!(format(d("20000.00"), Currency::TZS), "TZS 20,000");
        assert_eq!(format(d("1234567"), Currency::TZS), "TZS 1,234,567");
        assert_eq!(format(d("500"), Currency::TZS), "TZS 500");
        assert_eq!(format(d("0"), Currency::TZS), "TZS 0");
        // Cents are shown, never rounded away from what is owed.
        assert_eq!(format(d("20000.5"), Currency::TZS), "TZS 20,000.50");
    }

    #[test]
    fn kenyan_shillings_and_dollars_have_two_decimals() {
        assert_eq!(format(d("1500"), Currency::KES), "KES 1,500.00");
        assert_eq!(format(d("1500.5"), Currency::KES), "KES 1,500.50");
        assert_eq!(format(d("999.995"), Currency::KES), "KES 1,000.00");
        assert_eq!(format(d("8"), Currency::USD), "USD 8.00");
        assert_eq!(format(d("0.5"), Currency::USD), "USD 0.50");
        assert_eq!(format(d("1234567.894"), Currency::USD), "USD 1,234,567.89");
        assert_eq!(format(d("100"), Currency::USD), "USD 100.00");
        assert_eq!(format(d("-8"), Currency::USD), "USD -8.00");
    }

    #[test]
    fn amounts_are_plain_decimals() {
        assert_eq!(parse_amount("20000").unwrap(), d("20000"));
        assert_eq!(parse_amount(" 1500.50 ").unwrap(), d("1500.50"));
        for bad in [
            "", "1,500", "-5", "1e3", "12.", ".5", "abc", "1.2.3", "TZS 5",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?} accepted");
        }
    }
}
