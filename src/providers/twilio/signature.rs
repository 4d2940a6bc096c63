//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted decoded params)), checked in
//! constant time against the URL as given, without its port, and with the default port, because
//! Twilio signs either (PROTOCOLS.md section 2, with the official vectors below).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use chrono::{DateTime, Utc};

use crate::config::Secret;

fn mac(token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, v) in params {
        sorted.entry(k).or_default().insert(v);
    }
    let mut mac =
        Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, values) in sorted {
        for v in values {
            mac.update(k.as_bytes());
            mac.update(v.as_bytes());
        }
    }
    mac
}

/// The signature Twilio would send for this request.
pub fn compute(token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(token, url, params).finalize().into_bytes())
}

/// The tokens a callback may be signed with: the account's auth token in force and, for a
/// grace period after a rotation, the one it replaced (Twilio signs with the token in force
/// when it sends, callbacks for messages sent before the rotation can arrive after it, and
/// Twilio does not retry a refused callback).
#[derive(Clone)]
pub struct CallbackKeys {
    pub current: Secret,
    /// The previous token and until when it is accepted.
    pub previous: Option<(Secret, DateTime<Utc>)>,
}

/// Which token a valid signature was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedWith {
    Current,
    Previous,
}

impl CallbackKeys {
    /// The token `signature` was made with, if it is one accepted at `now`.
    pub fn verify(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: &str,
        now: DateTime<Utc>,
    ) -> Option<SignedWith> {
        if validate(self.current.expose(), url, params, signature) {
            return Some(SignedWith::Current);
        }
        match &self.previous {
            Some((token, until))
                if now < *until && validate(token.expose(), url, params, signature) =>
            {
                Some(SignedWith::Previous)
            }
            _ => None,
        }
    }
}

/// True when `signature` is valid for the URL in any of its port forms.
pub fn validate(token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let forms = [
        Some(url.to_string()),
        without_port(url),
        with_default_port(url),
    ];
    forms
        .into_iter()
        .flatten()
        .any(|u| mac(token, &u, params).verify_slice(&expected).is_ok())
}

/// Splits `scheme://authority` from the rest, leaving path and query untouched (never re-encoded).
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

fn without_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split(url)?;
    let (host, _port) = authority
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))?;
    Some(format!("{scheme}://{host}{rest}"))
}

fn with_default_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split(url)?;
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    Some(format!("{scheme}://{authority}:{port}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_token_is_accepted_until_its_grace_ends_and_never_after() {
        let url = "https://sms.example.com/webhooks/twilio/status";
        let p = params(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")]);
        let now = Utc::now();
        let keys = CallbackKeys {
            current: Secret::new("new-token"),
            previous: Some((Secret::new("old-token"), now + chrono::Duration::hours(1))),
        };
        let by_new = compute("new-token", url, &p);
        let by_old = compute("old-token", url, &p);
        let by_other = compute("other-token", url, &p);
        assert_eq!(
            keys.verify(url, &p, &by_new, now),
            Some(SignedWith::Current)
        );
        assert_eq!(
            keys.verify(url, &p, &by_old, now),
            Some(SignedWith::Previous)
        );
        assert_eq!(keys.verify(url, &p, &by_other, now), None);
        let later = now + chrono::Duration::hours(1);
        assert_eq!(
            keys.verify(url, &p, &by_old, later),
            None,
            "the grace is over"
        );
        assert_eq!(
            keys.verify(url, &p, &by_new, later),
            Some(SignedWith::Current)
        );
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn call() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn the_official_vectors() {
        assert_eq!(
            compute("12345", URL, &call()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(validate(
            "12345",
            URL,
            &call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(validate(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert_eq!(
            compute(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &call()
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert_eq!(
            compute(
                "12345",
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                &call()
            ),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        );
        assert_eq!(
            compute(
                "12345",
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                &call()
            ),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        // Twilio may sign with the default port while we see the URL without it, and back.
        assert!(validate(
            "12345",
            URL,
            &call(),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        assert!(validate(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn repeated_params_are_deduplicated_and_sorted() {
        let dup = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(compute("12345", URL, &dup), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn a_status_callback_vector() {
        let body = "AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&ApiVersion=2010-04-01&ErrorCode=30003&From=%2B15017122661&MessageSid=SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&MessageStatus=undelivered&RawDlrDoneDate=2608071015&SmsSid=SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&SmsStatus=undelivered&To=%2B255754123456";
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
        let url = "https://crm.example/webhooks/twilio/status?tenant=42";
        assert!(validate(
            "12345",
            url,
            &decoded,
            "DxZpEBqGCATmC2T5EpDCh0NFAKk="
        ));
        assert!(
            !validate("12346", url, &decoded, "DxZpEBqGCATmC2T5EpDCh0NFAKk="),
            "wrong token"
        );
        assert!(
            !validate("12345", url, &decoded[1..], "DxZpEBqGCATmC2T5EpDCh0NFAKk="),
            "a param dropped"
        );
        assert!(!validate("12345", url, &decoded, "not base64!"));
    }
}
