//! Which provider routes a message may take (issue 19): an operator-set table from destination
//! (a country calling code or a longer number prefix, optionally for one company) to an ordered
//! list of routes, and each route's circuit (`circuit`), which takes a failing route out of the
//! list for a while.
//!
//! The most specific rule wins: one for the message's company before one for everybody, then the
//! longest prefix; `*` matches every number. With no rule at all, every message goes through
//! Twilio, as before routes existed.

mod circuit;
mod gateways;
pub mod report_tokens;
mod store;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use circuit::{Circuit, CircuitSettings, CircuitState, Circuits};
pub use gateways::{RoutePaces, SmsRoutes};
pub use store::{ReplaceError, Tables, load, replace};

use crate::domain::{CompanyId, E164};

/// A provider account messages can go through.
#[derive(
    Debug,
    Clone,
    Copy,
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
pub enum RouteName {
    Twilio,
    Beem,
    Africastalking,
}

impl RouteName {
    pub const ALL: [RouteName; 3] = [
        RouteName::Twilio,
        RouteName::Beem,
        RouteName::Africastalking,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteName::Twilio => "twilio",
            RouteName::Beem => "beem",
            RouteName::Africastalking => "africastalking",
        }
    }

    /// Whether the route's provider can be asked what became of a send (Twilio's list of
    /// messages to a number). The others' sends record when their request leaves instead
    /// (`store::mark_request_leaving`), so one that never left is known to be safe to resend.
    pub fn can_be_asked(self) -> bool {
        self == RouteName::Twilio
    }
}

impl fmt::Display for RouteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RouteName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RouteName::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown route {s:?} (routes: twilio, beem, africastalking)"))
    }
}

/// The route list when no rule matches.
pub const DEFAULT_ROUTES: [RouteName; 1] = [RouteName::Twilio];

/// The longest list a rule may hold (every route once).
pub const MAX_ROUTES_PER_RULE: usize = RouteName::ALL.len();

/// The most rules the table may hold.
pub const MAX_RULES: usize = 1000;

/// One rule: numbers starting with `destination` (digits without `+`, or `*` for any), of
/// `company` or of everybody, go through `routes`, the first available first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// A country calling code or longer prefix, digits only (`255`, `25575`), or `*`.
    pub destination: String,
    /// Only this company's messages; everybody's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "uuid")]
    pub company_id: Option<CompanyId>,
    /// In order of preference; each route once.
    pub routes: Vec<RouteName>,
}

/// Why a table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {index}: {reason}")]
pub struct InvalidRule {
    /// The rule's position in the table (0-based).
    pub index: usize,
    pub reason: String,
}

impl RouteRule {
    /// `+255` is read as `255`; anything but digits (1 to 15) or `*` is refused.
    fn normalized(mut self, index: usize) -> Result<Self, InvalidRule> {
        let invalid = |reason: String| InvalidRule { index, reason };
        let d = self.destination.trim().trim_start_matches('+').to_string();
        if d != "*" && (d.is_empty() || d.len() > 15 || !d.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(format!(
                "destination {:?} must be a calling code or number prefix (digits) or *",
                self.destination
            )));
        }
        if d.starts_with('0') {
            return Err(invalid(format!(
                "destination {d:?}: international prefixes do not start with 0"
            )));
        }
        self.destination = d;
        if self.routes.is_empty() {
            return Err(invalid("routes must name at least one route".into()));
        }
        let mut seen = self.routes.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.routes.len() {
            return Err(invalid("routes must name each route once".into()));
        }
        Ok(self)
    }

    fn matches(&self, company: CompanyId, to: &E164) -> bool {
        self.company_id.is_none_or(|c| c == company)
            && (self.destination == "*" || to.digits().starts_with(&self.destination))
    }

    /// Higher is more specific: a company's own rule first, then the longest prefix.
    fn specificity(&self) -> (bool, usize) {
        let len = if self.destination == "*" {
            0
        } else {
            self.destination.len()
        };
        (self.company_id.is_some(), len)
    }
}

/// The whole table, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoutingTable {
    pub rules: Vec<RouteRule>,
}

impl RoutingTable {
    /// Validates `rules`: each well formed, no two for the same destination and company.
    pub fn new(rules: Vec<RouteRule>) -> Result<Self, InvalidRule> {
        if rules.len() > MAX_RULES {
            return Err(InvalidRule {
                index: MAX_RULES,
                reason: format!("at most {MAX_RULES} rules"),
            });
        }
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.normalized(i))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, r) in rules.iter().enumerate() {
            if rules[..i]
                .iter()
                .any(|o| o.destination == r.destination && o.company_id == r.company_id)
            {
                return Err(InvalidRule {
                    index: i,
                    reason: format!(
                        "a second rule for destination {} and the same company",
                        r.destination
                    ),
                });
            }
        }
        Ok(RoutingTable { rules })
    }

    /// The routes a message of `company` to `to` may take, in order.
    pub fn routes_for(&self, company: CompanyId, to: &E164) -> &[RouteName] {
        self.rules
            .iter()
            .filter(|r| r.matches(company, to))
            .max_by_key(|r| r.specificity())
            .map_or(&DEFAULT_ROUTES[..], |r| &r.routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RouteName::*;

    fn rule(destination: &str, company: Option<CompanyId>, routes: &[RouteName]) -> RouteRule {
        RouteRule {
            destination: destination.into(),
            company_id: company,
            routes: routes.to_vec(),
        }
    }

    fn to(n: &str) -> E164 {
        E164::try_from(n.to_string()).unwrap()
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let (a, b) = (CompanyId::new(), CompanyId::new());
        let table = RoutingTable::new(vec![
            rule("*", None, &[Twilio]),
            rule("+255", None, &[Beem, Twilio]),
            rule("25574", None, &[Africastalking, Beem]),
            rule("254", None, &[Africastalking, Twilio]),
            rule("255", Some(a), &[Twilio]),
        ])
        .unwrap();
        assert_eq!(table.routes_for(b, &to("+255754123456")), [Beem, Twilio]);
        assert_eq!(
            table.routes_for(b, &to("+255744123456")),
            [Africastalking, Beem]
        );
        assert_eq!(
            table.routes_for(b, &to("+254711123456")),
            [Africastalking, Twilio]
        );
        assert_eq!(table.routes_for(b, &to("+14155550100")), [Twilio]);
        // A company's own rule beats a longer prefix for everybody.
        assert_eq!(table.routes_for(a, &to("+255744123456")), [Twilio]);
        assert_eq!(
            table.routes_for(a, &to("+254711123456")),
            [Africastalking, Twilio]
        );
    }

    #[test]
    fn with_no_rule_everything_goes_through_twilio() {
        let table = RoutingTable::default();
        assert_eq!(
            table.routes_for(CompanyId::new(), &to("+255754123456")),
            [Twilio]
        );
    }

    #[test]
    fn malformed_and_duplicate_rules_are_refused_by_position() {
        let bad = |rules: Vec<RouteRule>| RoutingTable::new(rules).unwrap_err();
        assert_eq!(bad(vec![rule("25x", None, &[Beem])]).index, 0);
        assert_eq!(
            bad(vec![rule("*", None, &[]), rule("255", None, &[Beem])]).index,
            0
        );
        assert!(
            bad(vec![rule("255", None, &[Beem, Beem])])
                .reason
                .contains("once")
        );
        assert!(bad(vec![rule("0255", None, &[Beem])]).reason.contains("0"));
        assert!(
            bad(vec![rule("1234567890123456", None, &[Beem])])
                .reason
                .contains("digits")
        );
        let dup = bad(vec![
            rule("255", None, &[Beem]),
            rule("+255", None, &[Twilio]),
        ]);
        assert_eq!(dup.index, 1);
        let c = CompanyId::new();
        assert!(
            RoutingTable::new(vec![
                rule("255", None, &[Beem]),
                rule("255", Some(c), &[Twilio])
            ])
            .is_ok()
        );
    }
}
