//! `Stripe-Signature`: `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`, where each `v1` is
//! hex(HMAC-SHA256(endpoint secret, "{t}.{raw body}")) (PROTOCOLS.md section 4).
//!
//! The key is the endpoint secret string exactly as Stripe shows it, *including* `whsec_` (no
//! base64 decoding). Any one matching `v1` is enough (Stripe sends several while a secret is being
//! rolled); `v0` is ignored. Verify the raw bytes before parsing any JSON.
//!
//! Stricter than Stripe's libraries: they refuse only timestamps older than the tolerance, we
//! also refuse ones more than the tolerance in the future, so a leaked header signed with a
//! forward-dated timestamp cannot be replayed for longer than the window.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's libraries' default tolerance (`Webhook.DEFAULT_TOLERANCE`), in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a `Stripe-Signature` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No usable `t=` (missing, repeated or not an integer).
    #[error("unable to extract timestamp and signatures from header")]
    Malformed,
    #[error("no signatures found with expected scheme v1")]
    NoV1,
    #[error("no signatures found matching the expected signature for payload")]
    Mismatch,
    #[error("timestamp older than the tolerance")]
    TooOld,
    #[error("timestamp further in the future than the tolerance")]
    TooNew,
}

impl SignatureError {
    /// A stable snake_case label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::Malformed => "malformed",
            SignatureError::NoV1 => "no_v1",
            SignatureError::Mismatch => "mismatch",
            SignatureError::TooOld => "too_old",
            SignatureError::TooNew => "too_new",
        }
    }
}

fn mac(secret: &str, t: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The header Stripe would send for `payload` signed at `t` (for the fake and the tests).
pub fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
    let v1 = hex::encode(mac(secret, t, payload).finalize().into_bytes());
    format!("t={t},v1={v1}")
}

/// Checks `header` against the raw `payload`; on success returns the signed timestamp.
///
/// `now` is the current unix time; the timestamp must lie within `now ± tolerance_secs`.
/// The signature is checked before the time, so a forged header reports `Mismatch` whatever its
/// timestamp. Comparison is constant time (`verify_slice`).
pub fn verify(
    header: &str,
    payload: &[u8],
    secret: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1);
    }
    let expected = mac(secret, t, payload);
    // A value that is not hex cannot match; it does not spoil the others.
    let matched = v1
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let tolerance = tolerance_secs.max(0);
    if t < now.saturating_sub(tolerance) {
        return Err(SignatureError::TooOld);
    }
    if t > now.saturating_add(tolerance) {
        return Err(SignatureError::TooNew);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const T: i64 = 1492774577;
    const PAYLOAD_A: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const V1_A: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";
    const PAYLOAD_B: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\",\n  \"data\": { \"object\": { \"id\": \"rdr_123\", \"object\": \"terminal.reader\" } }\n}";
    const V1_B: &str = "d21d91b425674689e03346536b8fec6384a8721d43ebe269a1689a3ad22cba9c";

    #[test]
    fn sign_reproduces_both_stripe_python_vectors() {
        assert_eq!(sign(SECRET, T, PAYLOAD_A), format!("t={T},v1={V1_A}"));
        assert_eq!(sign(SECRET, T, PAYLOAD_B), format!("t={T},v1={V1_B}"));
    }

    #[test]
    fn both_vectors_verify_at_their_time() {
        assert_eq!(
            verify(&format!("t={T},v1={V1_A}"), PAYLOAD_A, SECRET, T, 300),
            Ok(T)
        );
        assert_eq!(
            verify(&format!("t={T},v1={V1_B}"), PAYLOAD_B, SECRET, T + 299, 300),
            Ok(T)
        );
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let header = format!("t={T},v1=bad,v1={V1_A}");
        assert_eq!(verify(&header, PAYLOAD_A, SECRET, T, 300), Ok(T));
        let with_v0 = format!(
            "t={T}, v1={V1_A}, v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        );
        assert_eq!(verify(&with_v0, PAYLOAD_A, SECRET, T, 300), Ok(T));
        assert_eq!(
            verify(&format!("t={T},v0={V1_A}"), PAYLOAD_A, SECRET, T, 300),
            Err(SignatureError::NoV1)
        );
        assert_eq!(
            verify(
                &format!("t={T},v1=bad,v1={V1_B}"),
                PAYLOAD_A,
                SECRET,
                T,
                300
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_vector_is_outside_the_tolerance_today() {
        let header = format!("t={T},v1=bad,v1={V1_A}");
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            verify(&header, PAYLOAD_A, SECRET, now, 300),
            Err(SignatureError::TooOld)
        );
        assert_eq!(
            verify(&header, PAYLOAD_A, SECRET, T + 301, 300),
            Err(SignatureError::TooOld)
        );
        assert_eq!(verify(&header, PAYLOAD_A, SECRET, T + 300, 300), Ok(T));
    }

    #[test]
    fn timestamps_too_far_in_the_future_are_refused() {
        let header = sign(SECRET, T, PAYLOAD_A);
        assert_eq!(
            verify(&header, PAYLOAD_A, SECRET, T - 301, 300),
            Err(SignatureError::TooNew)
        );
        assert_eq!(verify(&header, PAYLOAD_A, SECRET, T - 300, 300), Ok(T));
    }

    #[test]
    fn wrong_secret_fails() {
        let header = format!("t={T},v1={V1_A}");
        assert_eq!(
            verify(&header, PAYLOAD_A, "whsec_other_secret", T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_secret_without_its_prefix_fails() {
        let header = format!("t={T},v1={V1_A}");
        assert_eq!(
            verify(&header, PAYLOAD_A, "test_secret", T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_body_or_timestamp_fails() {
        let header = format!("t={T},v1={V1_A}");
        let tampered = br#"{"id":"evt_test_webhook","object":"event" }"#;
        assert_eq!(
            verify(&header, tampered, SECRET, T, 300),
            Err(SignatureError::Mismatch)
        );
        let moved = format!("t={},v1={V1_A}", T + 1);
        assert_eq!(
            verify(&moved, PAYLOAD_A, SECRET, T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "garbage",
            &format!("v1={V1_A}"),
            &format!("t=abc,v1={V1_A}"),
            &format!("t={T},t={T},v1={V1_A}"),
        ] {
            assert_eq!(
                verify(header, PAYLOAD_A, SECRET, T, 300),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
        assert_eq!(
            verify(&format!("t={T}"), PAYLOAD_A, SECRET, T, 300),
            Err(SignatureError::NoV1)
        );
    }

    #[test]
    fn reasons_are_stable_labels() {
        assert_eq!(SignatureError::TooOld.reason(), "too_old");
        assert_eq!(SignatureError::Mismatch.reason(), "mismatch");
    }
}
