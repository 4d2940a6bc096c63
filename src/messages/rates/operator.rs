//! The rate card as the operator sees and changes it (`/admin/rate-card`, `admin rate-card`):
//! the card with its special ranges, its history, and checked edits applied in one transaction.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::*;

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
