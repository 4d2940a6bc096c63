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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

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

/// The card held, and when it was read.
type Held = Option<(Instant, Arc<RateCard>)>;

/// The card of this process, read again once it is older than its time to live.
#[derive(Clone)]
pub struct Rates {
    pool: PgPool,
    ttl: Duration,
    cached: Arc<RwLock<Held>>,
}

impl Rates {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Rates {
            pool,
            ttl,
            cached: Arc::default(),
        }
    }

    /// The card, at most `ttl` old. If it cannot be read again, the one held is used (logged)
    /// until it can; without one, the database's error.
    pub async fn card(&self) -> Result<Arc<RateCard>, sqlx::Error> {
        let held = self.cached.read().expect("not poisoned").clone();
        if let Some((at, card)) = &held
            && at.elapsed() < self.ttl
        {
            return Ok(card.clone());
        }
        match load(&self.pool).await {
            Ok(card) => {
                let card = Arc::new(card);
                *self.cached.write().expect("not poisoned") = Some((Instant::now(), card.clone()));
                Ok(card)
            }
            Err(e) => match held {
                Some((_, card)) => {
                    tracing::warn!(error = %e, "the rate card could not be read again; the one held is used");
                    Ok(card)
                }
                None => Err(e),
            },
        }
    }

    /// Forgets the card held: the next question reads it again (after a change here).
    pub fn invalidate(&self) {
        *self.cached.write().expect("not poisoned") = None;
    }
}

// ---- The operator's view and changes ---------------------------------------------------------

/// A destination as the operator sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RateEntry {
    #[serde(flatten)]
    pub rate: Rate,
    /// The home markets (255, 254): 1 credit per segment, not changeable.
    pub home: bool,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A special range and whether it is enabled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RangeEntry {
    pub range: SpecialRange,
    pub enabled: bool,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// The whole card.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RateCardView {
    /// Every destination, by prefix.
    pub rates: Vec<RateEntry>,
    pub special_ranges: Vec<RangeEntry>,
    /// The latest change (null before the first one).
    pub last_change: Option<RateCardChange>,
}

/// One recorded change of the card: who, when, and what changed, before and after
/// (`{"rates": {"44": {"credits_per_segment": 3, "allowed": true} | null}, "special_ranges":
/// {"satellite": false}}`, only what changed).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RateCardChange {
    pub id: i64,
    pub actor: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
    pub changed_at: DateTime<Utc>,
}

pub async fn show(pool: &PgPool) -> Result<RateCardView, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    show_on(&mut conn).await
}

async fn show_on(conn: &mut sqlx::PgConnection) -> Result<RateCardView, sqlx::Error> {
    let rates: Vec<(String, i32, bool, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT prefix, credits_per_segment, allowed, updated_by, updated_at FROM rate_card ORDER BY prefix",
    )
    .fetch_all(&mut *conn)
    .await?;
    let ranges: Vec<(String, bool, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT range, enabled, updated_by, updated_at FROM rate_card_special_ranges ORDER BY range",
    )
    .fetch_all(&mut *conn)
    .await?;
    let last_change = changes_on(conn, None, 1).await?.into_iter().next();
    Ok(RateCardView {
        rates: rates
            .into_iter()
            .map(
                |(prefix, credits, allowed, updated_by, updated_at)| RateEntry {
                    home: HOME_PREFIXES.contains(&prefix.as_str()),
                    rate: Rate {
                        prefix,
                        credits_per_segment: i64::from(credits),
                        allowed,
                    },
                    updated_by,
                    updated_at,
                },
            )
            .collect(),
        special_ranges: ranges
            .into_iter()
            .filter_map(|(range, enabled, updated_by, updated_at)| {
                Some(RangeEntry {
                    range: range.parse().ok()?,
                    enabled,
                    updated_by,
                    updated_at,
                })
            })
            .collect(),
        last_change,
    })
}

/// The recorded changes, newest first, older than `before` if given.
pub async fn changes(
    pool: &PgPool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RateCardChange>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    changes_on(&mut conn, before, limit).await
}

async fn changes_on(
    conn: &mut sqlx::PgConnection,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RateCardChange>, sqlx::Error> {
    let rows: Vec<(
        i64,
        String,
        serde_json::Value,
        serde_json::Value,
        DateTime<Utc>,
    )> = sqlx::query_as(
        "SELECT id, actor, before, after, changed_at FROM rate_card_changes
             WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, actor, before, after, changed_at)| RateCardChange {
            id,
            actor,
            before,
            after,
            changed_at,
        })
        .collect())
}

/// A change the operator asks for: destinations to set (added or replaced), prefixes to remove,
/// special ranges to enable or disable.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub set: Vec<Rate>,
    pub remove: Vec<String>,
    pub ranges: BTreeMap<SpecialRange, bool>,
    /// The card becomes exactly `set` (and the home markets): every other prefix is removed,
    /// as read in the same transaction.
    pub replace: bool,
}

/// A field the operator got wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

/// Checks a prefix: 1 to 15 digits, not starting with 0.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = (1..=15).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && !prefix.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{prefix:?} is not a prefix: 1 to 15 digits of an E.164 number, without +, not starting with 0"
        ))
    }
}

/// Whether `prefix` is a home market's or within one.
fn in_home_market(prefix: &str) -> bool {
    HOME_PREFIXES.iter().any(|h| prefix.starts_with(h))
}

impl Edit {
    /// Every problem with the edit, each naming its field (`field` is the path prefix, e.g.
    /// `rates` for the API's list, and the index is added).
    pub fn check(&self, field: &str) -> Vec<Invalid> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut bad = |at: String, message: String| {
            out.push(Invalid { field: at, message });
        };
        for (i, r) in self.set.iter().enumerate() {
            let at = |f: &str| format!("{field}[{i}].{f}");
            if let Err(m) = check_prefix(&r.prefix) {
                bad(at("prefix"), m);
            } else if !seen.insert(r.prefix.clone()) {
                bad(at("prefix"), format!("{} is given twice", r.prefix));
            } else if in_home_market(&r.prefix)
                && !(HOME_PREFIXES.contains(&r.prefix.as_str())
                    && r.credits_per_segment == 1
                    && r.allowed)
            {
                bad(
                    at("prefix"),
                    format!(
                        "{} is in a home market (255, 254): 1 credit per segment, allowed, and not split into longer prefixes",
                        r.prefix
                    ),
                );
            }
            if !(1..=MAX_CREDITS_PER_SEGMENT).contains(&r.credits_per_segment) {
                bad(
                    at("credits_per_segment"),
                    format!("must be a whole number from 1 to {MAX_CREDITS_PER_SEGMENT}"),
                );
            }
        }
        for (i, p) in self.remove.iter().enumerate() {
            if let Err(m) = check_prefix(p) {
                bad(format!("remove[{i}]"), m);
            } else if HOME_PREFIXES.contains(&p.as_str()) {
                bad(
                    format!("remove[{i}]"),
                    format!("{p} is a home market: it stays on the card"),
                );
            }
        }
        out
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// The card after the change.
    pub card: RateCardView,
    /// The change recorded; null when everything was already as asked.
    pub change: Option<RateCardChange>,
    /// Prefixes asked to be removed that were not on the card.
    pub not_found: Vec<String>,
}

/// Applies a checked edit in one transaction, recording what changed with `actor`. Nothing is
/// written when nothing changes. Callers check the edit first ([`Edit::check`]); the table's
/// CHECKs refuse what slips past.
pub async fn apply(pool: &PgPool, edit: &Edit, actor: &str) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One change at a time, so that each change's "before" is what the previous one left.
    sqlx::query("LOCK TABLE rate_card, rate_card_special_ranges IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let now = show_on(&mut tx).await?;
    let current: HashMap<&str, &Rate> = now
        .rates
        .iter()
        .map(|e| (e.rate.prefix.as_str(), &e.rate))
        .collect();
    let mut before_rates = serde_json::Map::new();
    let mut after_rates = serde_json::Map::new();
    let shown = |r: &Rate| serde_json::json!({"credits_per_segment": r.credits_per_segment, "allowed": r.allowed});
    let mut not_found = Vec::new();
    let unlisted: Vec<String> = if edit.replace {
        current
            .keys()
            .filter(|p| !HOME_PREFIXES.contains(p) && !edit.set.iter().any(|r| r.prefix == **p))
            .map(|p| p.to_string())
            .collect()
    } else {
        Vec::new()
    };
    for p in edit.remove.iter().chain(&unlisted) {
        match current.get(p.as_str()) {
            Some(r) => {
                sqlx::query("DELETE FROM rate_card WHERE prefix = $1")
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
                before_rates.insert(p.clone(), shown(r));
                after_rates.insert(p.clone(), serde_json::Value::Null);
            }
            None => not_found.push(p.clone()),
        }
    }
    for r in &edit.set {
        let old = current.get(r.prefix.as_str());
        if old.is_some_and(|o| *o == r) {
            continue;
        }
        sqlx::query(
            "INSERT INTO rate_card (prefix, credits_per_segment, allowed, updated_by)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (prefix) DO UPDATE SET credits_per_segment = $2, allowed = $3,
                 updated_by = $4, updated_at = now()",
        )
        .bind(&r.prefix)
        .bind(r.credits_per_segment as i32)
        .bind(r.allowed)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        before_rates.insert(
            r.prefix.clone(),
            old.map_or(serde_json::Value::Null, |o| shown(o)),
        );
        after_rates.insert(r.prefix.clone(), shown(r));
    }
    let mut before_ranges = serde_json::Map::new();
    let mut after_ranges = serde_json::Map::new();
    for (range, enabled) in &edit.ranges {
        let was = now
            .special_ranges
            .iter()
            .find(|e| e.range == *range)
            .is_some_and(|e| e.enabled);
        if was == *enabled {
            continue;
        }
        sqlx::query(
            "INSERT INTO rate_card_special_ranges (range, enabled, updated_by) VALUES ($1, $2, $3)
             ON CONFLICT (range) DO UPDATE SET enabled = $2, updated_by = $3, updated_at = now()",
        )
        .bind(range.as_str())
        .bind(enabled)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        before_ranges.insert(range.as_str().into(), was.into());
        after_ranges.insert(range.as_str().into(), (*enabled).into());
    }
    if before_rates.is_empty() && before_ranges.is_empty() {
        tx.commit().await?;
        return Ok(Applied {
            card: now,
            change: None,
            not_found,
        });
    }
    let side = |rates: serde_json::Map<_, _>, ranges: serde_json::Map<_, _>| {
        let mut v = serde_json::Map::new();
        if !rates.is_empty() {
            v.insert("rates".into(), rates.into());
        }
        if !ranges.is_empty() {
            v.insert("special_ranges".into(), ranges.into());
        }
        serde_json::Value::Object(v)
    };
    let before = side(before_rates, before_ranges);
    let after = side(after_rates, after_ranges);
    sqlx::query("INSERT INTO rate_card_changes (actor, before, after) VALUES ($1, $2, $3)")
        .bind(actor)
        .bind(&before)
        .bind(&after)
        .execute(&mut *tx)
        .await?;
    let card = show_on(&mut tx).await?;
    tx.commit().await?;
    Ok(Applied {
        change: card.last_change.clone(),
        card,
        not_found,
    })
}

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

    #[test]
    fn edits_are_checked_field_by_field() {
        let rate = |p: &str, c: i64, a: bool| Rate {
            prefix: p.into(),
            credits_per_segment: c,
            allowed: a,
        };
        let edit = Edit {
            set: vec![
                rate("44", 3, true),
                rate("44", 3, true),
                rate("0", 1, true),
                rate("2557", 1, true),
                rate("255", 2, true),
                rate("1", 0, true),
                rate("33", 1001, true),
            ],
            remove: vec!["254".into(), "x".into()],
            ranges: BTreeMap::new(),
            replace: false,
        };
        let fields: Vec<String> = edit.check("rates").into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "rates[1].prefix",
                "rates[2].prefix",
                "rates[3].prefix",
                "rates[4].prefix",
                "rates[5].credits_per_segment",
                "rates[6].credits_per_segment",
                "remove[0]",
                "remove[1]",
            ]
        );
        assert!(
            Edit {
                set: vec![rate("255", 1, true), rate("1500555", 1, true)],
                ..Edit::default()
            }
            .check("rates")
            .is_empty()
        );
    }
}
