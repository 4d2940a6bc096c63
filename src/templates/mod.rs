//! Message templates: per company, named, in English or Swahili, with `{variable}` placeholders.
//!
//! A template is checked when it is saved ([`Template::parse`]: unknown variables and stray
//! braces are refused) and rendered when a message is made ([`Template::render`]: a missing or
//! malformed value is refused, naming the variable). A message is never sent with a hole.
//! Money and dates are formatted here, by currency and by language ([`money`], [`dates`]).

pub mod dates;
pub mod money;
mod render;
pub mod store;

use serde::{Deserialize, Serialize};

pub use render::{
    Context, Problem, RenderError, SyntaxError, Template, Variable, Vars, vars_from_json,
};
pub use store::{Source, StoredTemplate};

/// The template the overdue-debt sweep sends, in the debt's language.
pub const PAYMENT_REMINDER: &str = "payment_reminder";

/// A template's language. Without one, a request means English (as a debt does by default).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Sw,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?} (expected en or sw)")]
pub struct UnknownLanguage(pub String);

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Sw => "sw",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = UnknownLanguage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(Language::En),
            "sw" => Ok(Language::Sw),
            _ => Err(UnknownLanguage(s.to_string())),
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A template name: 1 to 64 characters, lower-case letters, digits and `_`, starting with a
/// letter (`payment_reminder`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}
