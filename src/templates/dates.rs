//! Dates as a debtor reads them. Both markets write the day first, so a date is never read the
//! American way: Swahili `24/11/2026` (numeric, as on Tanzanian and Kenyan documents), English
//! `24 Nov 2026` (the month spelled out, unambiguous to any English reader).

use chrono::NaiveDate;

use super::Language;

/// `date` in `language`'s form.
pub fn format(date: NaiveDate, language: Language) -> String {
    match language {
        Language::Sw => date.format("%d/%m/%Y").to_string(),
        Language::En => date.format("%-d %b %Y").to_string(),
    }
}

/// A date as a caller gives it: ISO 8601 (`2026-11-24`).
pub fn parse(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{raw:?} is not an ISO date (YYYY-MM-DD, e.g. 2026-11-24)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_first_in_both_languages() {
        let d = parse("2026-11-24").unwrap();
        assert_eq!(format(d, Language::Sw), "24/11/2026");
        assert_eq!(format(d, Language::En), "24 Nov 2026");
        let d = parse("2027-01-05").unwrap();
        assert_eq!(format(d, Language::Sw), "05/01/2027");
        assert_eq!(format(d, Language::En), "5 Jan 2027");
    }

    #[test]
    fn only_iso_dates_are_read() {
        for bad in ["24/11/2026", "2026-13-01", "2026-02-30", "tomorrow", ""] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
