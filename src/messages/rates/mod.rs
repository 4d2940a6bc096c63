//! The rate card: how many credits one segment to a number costs, or why the number is refused.
//! The one owner of that rule (DESIGN.md section 3): accept, batches, sweeps and the template
//! preview all ask [`RateCard::price`]; the send charges what accept stored
//! (`messages.credits`), so a change of the card never reprices a message already accepted.
//!
//! The rule, in order:
//! 1. a number in a special range (premium-rate, shared-cost, satellite) is refused
//!    unless the operator enabled that range;
//! 2. the longest prefix of the number's digits on the card gives its rate; a prefix marked not
//!    allowed refuses the number;
//! 3. a number no prefix matches is refused: the operator prices a destination before it can be
//!    sent to (charging a guess would be wrong one way or the other, and charges are final).
//!
//! The home markets (255, 254) are 1 credit per segment by definition; the table's CHECK keeps
//! them so (`migrations/0028_rate_card.sql`).
//!
//! The card is a few hundred rows at most. [`Rates`] keeps it in memory for `SETTINGS_RELOAD_MS`
//! (a change made through this process's API is seen at once, one made elsewhere within that
//! time), so pricing a message costs a map lookup per prefix length.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::db::cached::Cached;
use crate::domain::{Country, E164};

/// The most credits one segment may cost (the table's CHECK says the same).
pub const MAX_CREDITS_PER_SEGMENT: i64 = 1000;

/// The home markets' calling codes: 1 credit per segment, always.
pub const HOME_PREFIXES: [&str; 2] = ["255", "254"];

/// Kinds of numbers refused unless the operator enables them.
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
#[serde(rename_all = "snake_case")]
pub enum SpecialRange {
    /// Premium-rate numbers (libphonenumber's type), and the international +979.
    PremiumRate,
    /// Shared-cost numbers (libphonenumber's type), and the international +808.
    SharedCost,
    /// Satellite and international networks: +870, +881, +882, +883.
    Satellite,
}

impl SpecialRange {
    pub const ALL: [SpecialRange; 3] = [
        SpecialRange::PremiumRate,
        SpecialRange::SharedCost,
        SpecialRange::Satellite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpecialRange::PremiumRate => "premium_rate",
            SpecialRange::SharedCost => "shared_cost",
            SpecialRange::Satellite => "satellite",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            SpecialRange::PremiumRate => "a premium-rate number",
            SpecialRange::SharedCost => "a shared-cost number",
            SpecialRange::Satellite => "a satellite or international-network number",
        }
    }

    /// The special range `to` is in, if any. Satellite ranges by calling code; the others by
    /// libphonenumber's type of the number where its metadata knows it.
    pub fn of(to: &E164) -> Option<SpecialRange> {
        let digits = to.digits();
        if HOME_PREFIXES.iter().any(|p| digits.starts_with(p)) {
            // Accept only takes home-market mobiles (`E164::parse_sms`).
            return None;
        }
        for (code, range) in [
            ("870", SpecialRange::Satellite),
            ("881", SpecialRange::Satellite),
            ("882", SpecialRange::Satellite),
            ("883", SpecialRange::Satellite),
            ("979", SpecialRange::PremiumRate),
            ("808", SpecialRange::SharedCost),
        ] {
            if digits.starts_with(code) {
                return Some(range);
            }
        }
        let number = phonenumber::parse(None, to.as_str()).ok()?;
        match number.number_type(&phonenumber::metadata::DATABASE) {
            phonenumber::Type::PremiumRate => Some(SpecialRange::PremiumRate),
            phonenumber::Type::SharedCost => Some(SpecialRange::SharedCost),
            _ => None,
        }
    }
}

impl std::fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SpecialRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SpecialRange::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown special range {s:?} (premium_rate, shared_cost, satellite)")
            })
    }
}

/// What a number costs: the prefix that priced it and its credits per segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub prefix: String,
    pub credits_per_segment: i64,
}

/// Why a number is refused. Each is a stable code in the API (`code()`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{to} is in no destination on the rate card: the operator has not priced it, so it cannot be sent to"
    )]
    Unpriced { to: E164 },
    #[error("sending to {to} is not allowed (rate card prefix +{prefix})")]
    Forbidden { to: E164, prefix: String },
    #[error(
        "{to} is {}: sending to {range} numbers is not enabled",
        range.describe()
    )]
    Restricted { to: E164, range: SpecialRange },
}

impl Refusal {
    /// `destination_unpriced`, `destination_forbidden` or `destination_restricted`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unpriced { .. } => "destination_unpriced",
            Refusal::Forbidden { .. } => "destination_forbidden",
            Refusal::Restricted { .. } => "destination_restricted",
        }
    }
}

/// One destination of the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rate {
    /// The number's leading digits without `+`: a calling code (`44`) or longer (`4479`).
    pub prefix: String,
    /// 1..=1000.
    pub credits_per_segment: i64,
    /// False refuses the numbers of this prefix (a longer prefix may allow some back).
    pub allowed: bool,
}

/// The card as it was read: what [`RateCard::price`] answers from.
#[derive(Debug, Clone, Default)]
pub struct RateCard {
    rates: HashMap<String, (i64, bool)>,
    enabled: HashSet<SpecialRange>,
    longest: usize,
}

impl RateCard {
    pub fn new(rates: &[Rate], enabled: impl IntoIterator<Item = SpecialRange>) -> Self {
        RateCard {
            longest: rates.iter().map(|r| r.prefix.len()).max().unwrap_or(0),
            rates: rates
                .iter()
                .map(|r| (r.prefix.clone(), (r.credits_per_segment, r.allowed)))
                .collect(),
            enabled: enabled.into_iter().collect(),
        }
    }

    /// Credits per segment to `to`, or why it is refused (the rule in the module's doc).
    pub fn price(&self, to: &E164) -> Result<Price, Refusal> {
        if let Some(range) = SpecialRange::of(to)
            && !self.enabled.contains(&range)
        {
            return Err(Refusal::Restricted {
                to: to.clone(),
                range,
            });
        }
        let digits = to.digits();
        for len in (1..=digits.len().min(self.longest)).rev() {
            let prefix = &digits[..len];
            if let Some(&(credits_per_segment, allowed)) = self.rates.get(prefix) {
                if !allowed {
                    return Err(Refusal::Forbidden {
                        to: to.clone(),
                        prefix: prefix.to_string(),
                    });
                }
                return Ok(Price {
                    prefix: prefix.to_string(),
                    credits_per_segment,
                });
            }
        }
        Err(Refusal::Unpriced { to: to.clone() })
    }

    /// Credits per segment to a mobile of `country` (a quote made before the number is known):
    /// the home markets' rate.
    pub fn home_rate(&self, country: Country) -> i64 {
        let prefix = match country {
            Country::TZ => "255",
            Country::KE => "254",
        };
        self.rates.get(prefix).map_or(1, |&(credits, _)| credits)
    }
}

/// Reads the card from the database.
pub async fn load(pool: &PgPool) -> Result<RateCard, sqlx::Error> {
    let view = show(pool).await?;
    Ok(RateCard::new(
        &view
            .rates
            .iter()
            .map(|r| r.rate.clone())
            .collect::<Vec<_>>(),
        view.special_ranges
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.range),
    ))
}

/// The card of this process, read again once it is older than its time to live.
#[derive(Clone)]
pub struct Rates {
    pool: PgPool,
    cached: Cached<RateCard>,
}

impl Rates {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Rates {
            pool,
            cached: Cached::new("the rate card", ttl),
        }
    }

    /// The card, at most `ttl` old (`db::cached`).
    pub async fn card(&self) -> Result<Arc<RateCard>, sqlx::Error> {
        self.cached.get(|| load(&self.pool)).await
    }

    /// Forgets the card held: the next question reads it again (after a change here).
    pub fn invalidate(&self) {
        self.cached.invalidate();
    }
}

mod operator;

pub use operator::{
    Applied, Edit, Invalid, RangeEntry, RateCardChange, RateCardView, RateEntry, apply, changes,
    check_prefix, show,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(s: &str) -> E164 {
        E164::parse_sms(s, Country::TZ).unwrap()
    }

    fn card(rates: &[(&str, i64, bool)], enabled: &[SpecialRange]) -> RateCard {
        let rates: Vec<Rate> = rates
            .iter()
            .map(|&(p, c, a)| Rate {
                prefix: p.into(),
                credits_per_segment: c,
                allowed: a,
            })
            .collect();
        RateCard::new(&rates, enabled.iter().copied())
    }

    #[test]
    fn the_longest_prefix_wins_and_an_unpriced_number_is_refused() {
        let c = card(
            &[
                ("255", 1, true),
                ("44", 3, true),
                ("4479", 5, true),
                ("447911", 2, false),
            ],
            &[],
        );
        let price = |n: &str| c.price(&e164(n)).map(|p| (p.prefix, p.credits_per_segment));
        assert_eq!(price("+255754123456"), Ok(("255".into(), 1)));
        assert_eq!(price("+442071838750"), Ok(("44".into(), 3)));
        assert_eq!(price("+447400123456"), Ok(("44".into(), 3)));
        assert_eq!(price("+447912345678"), Ok(("4479".into(), 5)));
        assert_eq!(
            c.price(&e164("+447911123456")).unwrap_err().code(),
            "destination_forbidden"
        );
        assert_eq!(
            c.price(&e164("+12015550123")).unwrap_err().code(),
            "destination_unpriced"
        );
        assert_eq!(c.home_rate(Country::TZ), 1);
    }

    #[test]
    fn special_ranges_are_refused_unless_enabled() {
        let satellite = e164("+881612345678");
        assert_eq!(SpecialRange::of(&satellite), Some(SpecialRange::Satellite));
        let premium = e164("+449012345678");
        assert_eq!(SpecialRange::of(&premium), Some(SpecialRange::PremiumRate));
        assert_eq!(SpecialRange::of(&e164("+447400123456")), None);
        assert_eq!(SpecialRange::of(&e164("+255754123456")), None);

        let priced = [("881", 40, true), ("44", 3, true)];
        let closed = card(&priced, &[]);
        assert_eq!(
            closed.price(&satellite).unwrap_err(),
            Refusal::Restricted {
                to: satellite.clone(),
                range: SpecialRange::Satellite
            }
        );
        assert_eq!(
            closed.price(&premium).unwrap_err().code(),
            "destination_restricted"
        );
        let open = card(
            &priced,
            &[SpecialRange::Satellite, SpecialRange::PremiumRate],
        );
        assert_eq!(open.price(&satellite).unwrap().credits_per_segment, 40);
        assert_eq!(open.price(&premium).unwrap().credits_per_segment, 3);
        // Enabled but not priced: still refused.
        let unpriced = card(&[("44", 3, true)], &[SpecialRange::Satellite]);
        assert_eq!(
            unpriced.price(&satellite).unwrap_err().code(),
            "destination_unpriced"
        );
    }
}
