//! The aggregator routes' groups: Beem (`BEEM_*`) and Africa's Talking (`AT_*`). Each group's
//! credentials are all set or none; the hosts have defaults (the real ones) and stay
//! configuration, whichever account is in force (the environment's or the operator's settings).

use url::Url;

use super::vars::{Vars, bad, parse_url};
use super::{ConfigError, Secret};

/// The Beem account messages to Tanzania can go through: from the environment, or from
/// operator settings (the environment wins).
#[derive(Debug, Clone)]
pub struct BeemAccount {
    /// Both halves of Beem's Basic credentials are kept secret.
    pub api_key: Secret,
    pub secret_key: Secret,
    /// The sender name registered with the regulator (TCRA) through Beem.
    pub source_addr: String,
}

/// The Africa's Talking account messages across East Africa can go through: from the
/// environment, or from operator settings (the environment wins).
#[derive(Debug, Clone)]
pub struct AfricasTalkingAccount {
    pub username: String,
    pub api_key: Secret,
    /// The registered sender id or short code.
    pub sender_id: String,
}

/// `BEEM_API_BASE`: sending and balance.
pub(super) fn beem_api_base(vars: &Vars) -> Result<Url, ConfigError> {
    parse_url(
        "BEEM_API_BASE",
        &vars.or("BEEM_API_BASE", "https://apisms.beem.africa"),
    )
}

/// `BEEM_DLR_BASE`: the delivery-report pull (another host).
pub(super) fn beem_dlr_base(vars: &Vars) -> Result<Url, ConfigError> {
    parse_url(
        "BEEM_DLR_BASE",
        &vars.or("BEEM_DLR_BASE", "https://dlrapi.beem.africa"),
    )
}

/// `AT_API_BASE` (`https://api.sandbox.africastalking.com` with username `sandbox`).
pub(super) fn africastalking_api_base(vars: &Vars) -> Result<Url, ConfigError> {
    parse_url(
        "AT_API_BASE",
        &vars.or("AT_API_BASE", "https://api.africastalking.com"),
    )
}

impl BeemAccount {
    pub(super) fn read(vars: &Vars) -> Result<Option<BeemAccount>, ConfigError> {
        let Some([api_key, secret_key, source_addr]) = vars.all_or_none(
            ["BEEM_API_KEY", "BEEM_SECRET_KEY", "BEEM_SOURCE_ADDR"],
            "BEEM_*",
        )?
        else {
            return Ok(None);
        };
        check_sender(&source_addr).map_err(|p| bad("BEEM_SOURCE_ADDR", p.into()))?;
        Ok(Some(BeemAccount {
            api_key: Secret::new(api_key),
            secret_key: Secret::new(secret_key),
            source_addr,
        }))
    }
}

impl AfricasTalkingAccount {
    pub(super) fn read(vars: &Vars) -> Result<Option<AfricasTalkingAccount>, ConfigError> {
        let Some([username, api_key, sender_id]) =
            vars.all_or_none(["AT_USERNAME", "AT_API_KEY", "AT_SENDER_ID"], "AT_*")?
        else {
            return Ok(None);
        };
        check_at_username(&username).map_err(|p| bad("AT_USERNAME", p.into()))?;
        check_sender(&sender_id).map_err(|p| bad("AT_SENDER_ID", p.into()))?;
        Ok(Some(AfricasTalkingAccount {
            username,
            api_key: Secret::new(api_key),
            sender_id,
        }))
    }
}

/// An Africa's Talking application's username (the environment's or a setting's).
pub fn check_at_username(username: &str) -> Result<(), &'static str> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    ok.then_some(())
        .ok_or("must be the application's username (letters, digits, _ - .)")
}

/// A sender as the networks carry it: an alphanumeric name of at most 11 characters, or a short
/// code or number of at most 15 digits.
pub fn check_sender(s: &str) -> Result<(), &'static str> {
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    let name = s.len() <= 11 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ');
    if !s.trim().is_empty() && ((digits && s.len() <= 15) || name) {
        Ok(())
    } else {
        Err("must be a registered sender name (at most 11 letters or digits) or a short code")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::config;

    const BEEM: [(&str, &str); 3] = [
        ("BEEM_API_KEY", "k"),
        ("BEEM_SECRET_KEY", "s"),
        ("BEEM_SOURCE_ADDR", "COPCCA"),
    ];
    const AT: [(&str, &str); 3] = [
        ("AT_USERNAME", "copcca"),
        ("AT_API_KEY", "atsk_x"),
        ("AT_SENDER_ID", "COPCCA"),
    ];

    #[test]
    fn each_route_is_all_or_none_with_real_hosts_by_default() {
        let none = config(&[]).unwrap();
        assert!(none.beem.is_none() && none.africastalking.is_none());
        let both = config(&[BEEM.as_slice(), AT.as_slice()].concat()).unwrap();
        assert_eq!(none.beem_api_base.as_str(), "https://apisms.beem.africa/");
        assert_eq!(none.beem_dlr_base.as_str(), "https://dlrapi.beem.africa/");
        assert_eq!(
            none.africastalking_api_base.as_str(),
            "https://api.africastalking.com/"
        );
        let beem = both.beem.unwrap();
        assert_eq!(beem.source_addr, "COPCCA");
        let at = both.africastalking.unwrap();
        assert_eq!(
            (at.username.as_str(), at.sender_id.as_str()),
            ("copcca", "COPCCA")
        );
        let part = config(&BEEM[..2]).unwrap_err();
        assert_eq!(part.var, "BEEM_SOURCE_ADDR");
        let part = config(&AT[1..]).unwrap_err();
        assert_eq!(part.var, "AT_USERNAME");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let with = |extra: (&'static str, &'static str), base: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.retain(|(k, _)| *k != extra.0);
            v.push(extra);
            config(&v).unwrap_err().var
        };
        assert_eq!(
            with(("BEEM_SOURCE_ADDR", "COPCCA-CRM-LTD"), &BEEM),
            "BEEM_SOURCE_ADDR"
        );
        assert_eq!(with(("BEEM_API_BASE", "ftp://x"), &BEEM), "BEEM_API_BASE");
        assert_eq!(with(("AT_USERNAME", "a b"), &AT), "AT_USERNAME");
        assert_eq!(with(("AT_SENDER_ID", "!!"), &AT), "AT_SENDER_ID");
        // A short code is a sender too.
        let mut v = AT.to_vec();
        v[2] = ("AT_SENDER_ID", "15001");
        assert!(config(&v).is_ok());
    }
}
