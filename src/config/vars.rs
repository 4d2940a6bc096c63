//! Reading variables: empty values count as unset, numbers must fall in their range, URLs and
//! the settings key must parse; every failure is a [`ConfigError`] naming the variable.

use std::ops::RangeInclusive;
use std::time::Duration;

use url::Url;

use super::ConfigError;

/// The variables, read through a lookup (the process environment, or a test's map).
pub(super) struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub(super) fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars { get }
    }

    /// The trimmed value; `None` when unset or empty.
    pub(super) fn var(&self, k: &str) -> Option<String> {
        (self.get)(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn or(&self, k: &str, default: &str) -> String {
        self.var(k).unwrap_or_else(|| default.to_string())
    }

    /// A group of variables that are set together or not at all (credentials): all their values,
    /// or `None` when none is set; a group set in part names the first one missing.
    pub(super) fn all_or_none<const N: usize>(
        &self,
        names: [&'static str; N],
        group: &str,
    ) -> Result<Option<[String; N]>, ConfigError> {
        let values = names.map(|k| self.var(k));
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(i) = values.iter().position(Option::is_none) {
            return Err(bad(
                names[i],
                format!("is required when any {group} credential is set"),
            ));
        }
        Ok(Some(values.map(|v| v.expect("checked above"))))
    }

    /// A whole number in `range`, `default` when unset.
    pub(super) fn number(
        &self,
        k: &'static str,
        default: &str,
        range: RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        self.or(k, default)
            .parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                bad(
                    k,
                    format!(
                        "must be a number between {} and {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    }

    /// A number of seconds in `range`, `default` when unset.
    pub(super) fn secs(
        &self,
        k: &'static str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> Result<Duration, ConfigError> {
        self.number(k, &default.to_string(), range)
            .map(|n| Duration::from_secs(n.into()))
    }
}

pub(super) fn bad(var: &'static str, problem: String) -> ConfigError {
    ConfigError { var, problem }
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

pub(super) fn parse_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| bad(var, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(var, "must be an http:// or https:// URL".into()));
    }
    Ok(url)
}

pub(super) fn parse_key(value: &str) -> Result<[u8; 32], ConfigError> {
    parse_settings_key(value).map_err(|problem| bad("SETTINGS_KEY", problem))
}

/// A 32-byte AES key written as 64 hex characters or as standard base64 (44 characters).
pub fn parse_settings_key(value: &str) -> Result<[u8; 32], String> {
    use base64::Engine;
    let value = value.trim();
    let bytes = if value.len() == 64 {
        hex::decode(value).map_err(|_| "64 characters but not hex".to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| "must be 64 hex characters or base64 of 32 bytes".to_string())?
    };
    bytes
        .try_into()
        .map_err(|_| "must be 32 bytes (64 hex characters or 44 base64 characters)".to_string())
}
