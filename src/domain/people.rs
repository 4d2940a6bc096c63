//! Who a company is (its home country) and what a user may do (its role).

use serde::{Deserialize, Serialize};

use super::Currency;

/// A company's home market: decides how local numbers are read and the default currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Country {
    TZ,
    KE,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown country {0:?} (expected TZ or KE)")]
pub struct UnknownCountry(pub String);

impl Country {
    pub fn code(self) -> &'static str {
        match self {
            Country::TZ => "TZ",
            Country::KE => "KE",
        }
    }

    pub fn currency(self) -> Currency {
        match self {
            Country::TZ => Currency::TZS,
            Country::KE => Currency::KES,
        }
    }

    pub fn default_timezone(self) -> &'static str {
        match self {
            Country::TZ => "Africa/Dar_es_Salaam",
            Country::KE => "Africa/Nairobi",
        }
    }
}

impl std::str::FromStr for Country {
    type Err = UnknownCountry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "TZ" => Ok(Country::TZ),
            "KE" => Ok(Country::KE),
            _ => Err(UnknownCountry(s.to_string())),
        }
    }
}

impl TryFrom<String> for Country {
    type Error = UnknownCountry;
    fn try_from(s: String) -> Result<Self, UnknownCountry> {
        s.parse()
    }
}

/// A user's role. `super_admin` is the platform operator.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    SuperAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected member, admin or super_admin)")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "super_admin" => Ok(Role::SuperAdmin),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}
