//! The Vodacom Tanzania M-Pesa group (`VODACOM_*`): the OpenAPI account mobile-money payments in
//! TZS go through. `VODACOM_API_KEY`, `VODACOM_PUBLIC_KEY` and `VODACOM_SERVICE_PROVIDER_CODE`
//! are all set or none; the base and the market have defaults.

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use url::Url;

use super::vars::{Vars, bad, parse_url};
use super::{ConfigError, Secret};

/// A Vodacom M-Pesa account: from the environment, or from operator settings (the environment
/// wins).
#[derive(Debug, Clone)]
pub struct VodacomAccount {
    pub api_key: Secret,
    /// The portal's public key, base64 DER SubjectPublicKeyInfo (checked to be an RSA key).
    pub public_key: String,
    pub service_provider_code: String,
    /// `vodacomTZN`.
    pub market: String,
}

/// `VODACOM_SESSION_WAIT_SECS`: how long a new session is left before it is used (the platform
/// takes up to 30 s to make it live).
pub(super) fn session_wait(vars: &Vars) -> Result<std::time::Duration, ConfigError> {
    vars.secs("VODACOM_SESSION_WAIT_SECS", 30, 0..=120)
}

/// `VODACOM_API_BASE`: the host, production's `/openapi` routes unless a path is given
/// (`https://openapi.m-pesa.com/sandbox` for the sandbox).
pub(super) fn api_base(vars: &Vars) -> Result<Url, ConfigError> {
    parse_url(
        "VODACOM_API_BASE",
        &vars.or("VODACOM_API_BASE", "https://openapi.m-pesa.com"),
    )
}

impl VodacomAccount {
    pub(super) fn read(vars: &Vars) -> Result<Option<VodacomAccount>, ConfigError> {
        let market = vars.or("VODACOM_MARKET", "vodacomTZN");
        if market != "vodacomTZN" {
            return Err(bad(
                "VODACOM_MARKET",
                "only vodacomTZN (Tanzania, TZS) is supported".into(),
            ));
        }
        let Some([key, public, code]) = vars.all_or_none(
            [
                "VODACOM_API_KEY",
                "VODACOM_PUBLIC_KEY",
                "VODACOM_SERVICE_PROVIDER_CODE",
            ],
            "VODACOM_*",
        )?
        else {
            return Ok(None);
        };
        check_public_key(&public).map_err(|problem| bad("VODACOM_PUBLIC_KEY", problem))?;
        if !(4..=12).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(
                "VODACOM_SERVICE_PROVIDER_CODE",
                "must be 4-12 letters or digits".into(),
            ));
        }
        Ok(Some(VodacomAccount {
            api_key: Secret::new(key),
            public_key: public,
            service_provider_code: code,
            market,
        }))
    }
}

/// The key must be base64 of a DER SubjectPublicKeyInfo holding an RSA key.
pub fn check_public_key(base64_der: &str) -> Result<(), String> {
    let text: String = base64_der
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "must be the portal's public key in base64".to_string())?;
    rsa::RsaPublicKey::from_public_key_der(&der)
        .map(|_| ())
        .map_err(|e| format!("is not an RSA public key (DER SubjectPublicKeyInfo): {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;

    const KEY: &str = crate::fakes::vodacom::PUBLIC_KEY;

    #[test]
    fn all_three_or_none() {
        let none = config(&[]).unwrap();
        assert!(none.vodacom.is_none());
        assert_eq!(
            none.vodacom_api_base.as_str(),
            "https://openapi.m-pesa.com/"
        );
        let all = config(&[
            ("VODACOM_API_KEY", "k"),
            ("VODACOM_PUBLIC_KEY", KEY),
            ("VODACOM_SERVICE_PROVIDER_CODE", "000000"),
        ])
        .unwrap();
        assert_eq!(all.vodacom.unwrap().market, "vodacomTZN");
        let e = config(&[("VODACOM_API_KEY", "k"), ("VODACOM_PUBLIC_KEY", KEY)]).unwrap_err();
        assert_eq!(e.var, "VODACOM_SERVICE_PROVIDER_CODE");
        let e = config(&[("VODACOM_SERVICE_PROVIDER_CODE", "000000")]).unwrap_err();
        assert_eq!(e.var, "VODACOM_API_KEY");
    }

    #[test]
    fn a_bad_key_code_or_market_names_its_variable() {
        let with = |k: &str, v: &str| {
            let mut vars = vec![
                ("VODACOM_API_KEY", "k"),
                ("VODACOM_PUBLIC_KEY", KEY),
                ("VODACOM_SERVICE_PROVIDER_CODE", "000000"),
            ];
            vars.retain(|(name, _)| *name != k);
            let mut owned: Vec<(&str, String)> =
                vars.into_iter().map(|(a, b)| (a, b.to_string())).collect();
            owned.push((k, v.to_string()));
            let refs: Vec<(&str, &str)> = owned.iter().map(|(a, b)| (*a, b.as_str())).collect();
            config(&refs).unwrap_err().var
        };
        assert_eq!(
            with("VODACOM_PUBLIC_KEY", "bm90IGEga2V5"),
            "VODACOM_PUBLIC_KEY"
        );
        assert_eq!(with("VODACOM_PUBLIC_KEY", "%%%"), "VODACOM_PUBLIC_KEY");
        assert_eq!(
            with("VODACOM_SERVICE_PROVIDER_CODE", "00 00"),
            "VODACOM_SERVICE_PROVIDER_CODE"
        );
        assert_eq!(with("VODACOM_MARKET", "vodacomLES"), "VODACOM_MARKET");
    }
}
