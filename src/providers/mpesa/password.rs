//! The STK Password and Timestamp (PROTOCOLS.md section 5): every push and query carries
//! `Password = base64(BusinessShortCode + Passkey + Timestamp)` next to the same Timestamp.

use base64::Engine;
use chrono::{DateTime, Utc};
use chrono_tz::Africa::Nairobi;

/// `base64(shortcode + passkey + timestamp)`. The result proves knowledge of the passkey: treat it
/// as a secret (never log it).
pub fn stk_password(shortcode: &str, passkey: &str, timestamp: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{shortcode}{passkey}{timestamp}"))
}

/// `yyyyMMddHHmmss` in East Africa Time, the conventional zone of Daraja timestamps (Daraja does
/// not appear to check the zone, but EAT matches the TransactionDate it sends back).
pub fn stk_timestamp(now: DateTime<Utc>) -> String {
    now.with_timezone(&Nairobi)
        .format("%Y%m%d%H%M%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SANDBOX_PASSKEY: &str =
        "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

    #[test]
    fn the_password_matches_safaricoms_sample_request() {
        assert_eq!(
            stk_password("174379", SANDBOX_PASSKEY, "20160216165627"),
            "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3"
        );
    }

    #[test]
    fn the_timestamp_is_nairobi_local_time() {
        // 13:56:27 UTC is 16:56:27 EAT (UTC+3, no daylight saving).
        let now = Utc.with_ymd_and_hms(2016, 2, 16, 13, 56, 27).unwrap();
        assert_eq!(stk_timestamp(now), "20160216165627");
        // Crossing midnight moves the date too.
        let late = Utc.with_ymd_and_hms(2024, 12, 31, 22, 0, 5).unwrap();
        assert_eq!(stk_timestamp(late), "20250101010005");
    }
}
