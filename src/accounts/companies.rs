use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::domain::{CompanyId, Country, Currency, TimeZone};

/// A company and the settings the operator may change (`PATCH /admin/companies/{id}`,
/// `admin update-company`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub country: Country,
    #[sqlx(try_from = "String")]
    pub currency: Currency,
    #[sqlx(try_from = "String")]
    pub timezone: TimeZone,
    /// Messages per hour, fleet-wide.
    pub sms_per_hour: i32,
    /// Start of the nightly quiet hours (`HH:MM`, in `timezone`); equal to the end: none.
    #[serde(with = "hh_mm")]
    #[schema(value_type = String, example = "21:00")]
    pub quiet_hours_start: NaiveTime,
    #[serde(with = "hh_mm")]
    #[schema(value_type = String, example = "08:00")]
    pub quiet_hours_end: NaiveTime,
    /// Whether overdue-debt sweeps run for this company.
    pub sweep_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, country, currency, timezone, sms_per_hour, quiet_hours_start, \
                       quiet_hours_end, sweep_enabled, created_at, updated_at";

/// The most messages per hour a company may be given (the column is an `integer`).
pub const MAX_SMS_PER_HOUR: i64 = 1_000_000;

/// A change of settings as asked for (raw values, as they come from a request or the command
/// line); [`CompanyPatch::validate`] turns it into a [`SettingsChange`] or says what is wrong
/// with each field. Absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    /// 1..=200 characters (trimmed).
    pub name: Option<String>,
    /// Messages per hour, 1..=1000000.
    pub sms_per_hour: Option<i64>,
    /// An IANA time zone, e.g. `Africa/Nairobi`.
    pub timezone: Option<String>,
    /// `HH:MM` (24 h). Equal start and end turn quiet hours off.
    pub quiet_hours_start: Option<String>,
    /// `HH:MM` (24 h).
    pub quiet_hours_end: Option<String>,
    pub sweep_enabled: Option<bool>,
}

/// One refused field of a [`CompanyPatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    pub field: &'static str,
    pub message: String,
}

/// A validated change: every value is well-formed; absent ones stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    name: Option<String>,
    sms_per_hour: Option<i32>,
    timezone: Option<TimeZone>,
    quiet_hours_start: Option<NaiveTime>,
    quiet_hours_end: Option<NaiveTime>,
    sweep_enabled: Option<bool>,
}

impl CompanyPatch {
    /// Checks every field (all of them, so every problem is reported at once).
    pub fn validate(&self) -> Result<SettingsChange, Vec<InvalidSetting>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, verdict: Result<(), String>| {
            if let Err(message) = verdict {
                errors.push(InvalidSetting { field, message });
            }
        };
        let name = self.name.as_deref().map(str::trim).map(str::to_string);
        check(
            "name",
            match &name {
                Some(n) if !(1..=200).contains(&n.chars().count()) => {
                    Err("must be 1 to 200 characters".into())
                }
                _ => Ok(()),
            },
        );
        let sms_per_hour = self.sms_per_hour.map(|n| {
            i32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_SMS_PER_HOUR).contains(&i64::from(*n)))
        });
        check(
            "sms_per_hour",
            match sms_per_hour {
                Some(None) => Err(format!("must be between 1 and {MAX_SMS_PER_HOUR}")),
                _ => Ok(()),
            },
        );
        let timezone = self.timezone.as_deref().map(str::parse::<TimeZone>);
        check(
            "timezone",
            match &timezone {
                Some(Err(e)) => Err(e.to_string()),
                _ => Ok(()),
            },
        );
        let time = |value: &Option<String>| {
            value.as_deref().map(|v| {
                parse_hh_mm(v).ok_or_else(|| format!("{v:?} is not a time HH:MM (00:00-23:59)"))
            })
        };
        let quiet_hours_start = time(&self.quiet_hours_start);
        let quiet_hours_end = time(&self.quiet_hours_end);
        for (field, t) in [
            ("quiet_hours_start", &quiet_hours_start),
            ("quiet_hours_end", &quiet_hours_end),
        ] {
            if let Some(Err(e)) = t {
                check(field, Err(e.clone()));
            }
        }
        let change = SettingsChange {
            name,
            sms_per_hour: sms_per_hour.flatten(),
            timezone: timezone.and_then(Result::ok),
            quiet_hours_start: quiet_hours_start.and_then(Result::ok),
            quiet_hours_end: quiet_hours_end.and_then(Result::ok),
            sweep_enabled: self.sweep_enabled,
        };
        if errors.is_empty() && change == SettingsChange::default() {
            errors.push(InvalidSetting {
                field: "body",
                message: "names no setting to change (name, sms_per_hour, timezone, \
                          quiet_hours_start, quiet_hours_end, sweep_enabled)"
                    .into(),
            });
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }
}

impl SettingsChange {
    /// Whether the hourly quota is among the changes.
    pub fn sets_quota(&self) -> bool {
        self.sms_per_hour.is_some()
    }

    fn apply(&self, to: &Company) -> Company {
        Company {
            name: self.name.clone().unwrap_or_else(|| to.name.clone()),
            sms_per_hour: self.sms_per_hour.unwrap_or(to.sms_per_hour),
            timezone: self.timezone.unwrap_or(to.timezone),
            quiet_hours_start: self.quiet_hours_start.unwrap_or(to.quiet_hours_start),
            quiet_hours_end: self.quiet_hours_end.unwrap_or(to.quiet_hours_end),
            sweep_enabled: self.sweep_enabled.unwrap_or(to.sweep_enabled),
            ..to.clone()
        }
    }
}

/// `HH:MM`, two digits each, 00:00 to 23:59.
fn parse_hh_mm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

mod hh_mm {
    use chrono::NaiveTime;

    pub fn serialize<S: serde::Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format("%H:%M"))
    }
}

/// One recorded change of a company's settings: only what changed, before and after.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CompanyChange {
    pub id: i64,
    pub company_id: CompanyId,
    /// Who: `user:<uuid>` (the API) or `cli:admin`.
    pub actor: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
    pub changed_at: DateTime<Utc>,
}

/// What [`update_company`] did.
#[derive(Debug, Clone)]
pub struct Updated {
    pub company: Company,
    /// The change recorded; `None` when every value was already as asked (nothing written).
    pub change: Option<CompanyChange>,
}

/// Applies `change` to company `id` and records it (who, when, before, after) in the same
/// transaction, with the company's row locked, so concurrent changes each see the other's
/// result as their "before". `None`: no such company.
pub async fn update_company(
    pool: &PgPool,
    id: CompanyId,
    change: &SettingsChange,
    actor: &str,
) -> Result<Option<Updated>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(before): Option<Company> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM companies WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let wanted = change.apply(&before);
    let (old, new) = differences(&before, &wanted);
    if old.is_empty() {
        tx.rollback().await?;
        return Ok(Some(Updated {
            company: before,
            change: None,
        }));
    }
    let company: Company = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE companies SET name = $2, sms_per_hour = $3, timezone = $4,
                quiet_hours_start = $5, quiet_hours_end = $6, sweep_enabled = $7, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&wanted.name)
    .bind(wanted.sms_per_hour)
    .bind(wanted.timezone.name())
    .bind(wanted.quiet_hours_start)
    .bind(wanted.quiet_hours_end)
    .bind(wanted.sweep_enabled)
    .fetch_one(&mut *tx)
    .await?;
    let change: CompanyChange = sqlx::query_as(
        "INSERT INTO company_changes (company_id, actor, before, after) VALUES ($1, $2, $3, $4)
         RETURNING id, company_id, actor, before, after, changed_at",
    )
    .bind(id)
    .bind(actor)
    .bind(serde_json::Value::Object(old))
    .bind(serde_json::Value::Object(new))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Updated {
        company,
        change: Some(change),
    }))
}

/// The settings that differ between two versions of a company, as their JSON: (before, after).
fn differences(
    before: &Company,
    after: &Company,
) -> (
    serde_json::Map<String, serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    let as_map = |c: &Company| match serde_json::to_value(c).expect("serialisable") {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a struct serialises to an object"),
    };
    let (b, a) = (as_map(before), as_map(after));
    let mut old = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    for (key, value) in a {
        if key != "updated_at" && b.get(&key) != Some(&value) {
            old.insert(key.clone(), b[&key].clone());
            new.insert(key, value);
        }
    }
    (old, new)
}

/// A company's recorded changes, newest first: at most `limit`, older than change `before`.
pub async fn company_changes(
    pool: &PgPool,
    id: CompanyId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CompanyChange>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, company_id, actor, before, after, changed_at FROM company_changes
         WHERE company_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A company with its balance, as the operator's list shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CompanyListing {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub company: Company,
    /// Credits that can be spent now.
    pub available: i64,
    /// Credits held for messages in flight.
    pub reserved: i64,
    pub total_purchased: i64,
    pub total_sent: i64,
    /// Card disputes still open, and lost: the company is flagged while either is above zero.
    pub disputes_open: i64,
    pub disputes_lost: i64,
}

/// Companies in id order (creation order: ids are UUIDv7) after `after`, whose name contains
/// `search` (case-insensitive; a full company id also matches), with their balances.
pub async fn list_companies(
    pool: &PgPool,
    search: Option<&str>,
    after: Option<CompanyId>,
    limit: i64,
) -> Result<Vec<CompanyListing>, sqlx::Error> {
    let pattern = search.map(|s| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {cols}, b.available, b.reserved, b.total_purchased, b.total_sent,
                d.open AS disputes_open, d.lost AS disputes_lost
         FROM companies c JOIN balances b ON b.company_id = c.id
         CROSS JOIN LATERAL (
             SELECT count(*) FILTER (WHERE outcome = 'open') AS open,
                    count(*) FILTER (WHERE outcome = 'lost') AS lost
             FROM payment_disputes WHERE company_id = c.id) d
         WHERE ($1::text IS NULL OR c.name ILIKE $1 OR c.id::text = $2)
           AND ($3::uuid IS NULL OR c.id > $3)
         ORDER BY c.id LIMIT $4",
        cols = COLUMNS
            .split(", ")
            .map(|c| format!("c.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(pattern)
    .bind(search.map(str::trim))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Creates a company with an empty balance (both in one transaction).
pub async fn create_company(
    pool: &PgPool,
    name: &str,
    country: Country,
) -> Result<Company, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let company: Company = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO companies (id, name, country, currency, timezone) VALUES ($1, $2, $3, $4, $5)
         RETURNING {COLUMNS}"
    )))
    .bind(CompanyId::new())
    .bind(name.trim())
    .bind(country.code())
    .bind(country.currency().code())
    .bind(country.default_timezone())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO balances (company_id) VALUES ($1)")
        .bind(company.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(company)
}

pub async fn find_company(pool: &PgPool, id: CompanyId) -> Result<Option<Company>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM companies WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Each company's country, read once per company by this process: the accept path needs it for
/// every message (to read local numbers), and a company's country is set when it is created
/// and never changed (no update writes it), so a copy is never stale. Companies are never
/// deleted either. Unknown ids are not held: a company created later is found then.
#[derive(Clone, Default)]
pub struct Countries {
    known: Arc<RwLock<HashMap<CompanyId, Country>>>,
}

impl Countries {
    /// More companies than any deployment has; past it the copies are dropped and read again.
    const HELD_AT_MOST: usize = 100_000;

    /// The company's country; `None` if there is no such company.
    pub async fn of(&self, pool: &PgPool, id: CompanyId) -> Result<Option<Country>, sqlx::Error> {
        if let Some(country) = self.known.read().expect("not poisoned").get(&id) {
            return Ok(Some(*country));
        }
        let Some(company) = find_company(pool, id).await? else {
            return Ok(None);
        };
        let mut known = self.known.write().expect("not poisoned");
        if known.len() >= Self::HELD_AT_MOST {
            known.clear();
        }
        known.insert(id, company.country);
        Ok(Some(company.country))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_two_digit_hours_and_minutes() {
        assert_eq!(parse_hh_mm("21:00"), NaiveTime::from_hms_opt(21, 0, 0));
        assert_eq!(parse_hh_mm("00:00"), NaiveTime::from_hms_opt(0, 0, 0));
        assert_eq!(parse_hh_mm("23:59"), NaiveTime::from_hms_opt(23, 59, 0));
        for bad in [
            "24:00", "9:00", "21:60", "21:00:00", "2100", "", "ab:cd", "+1:00", "21:0",
        ] {
            assert_eq!(parse_hh_mm(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_named_and_an_empty_patch_is_refused() {
        let patch = CompanyPatch {
            name: Some("  ".into()),
            sms_per_hour: Some(0),
            timezone: Some("Mars/Olympus".into()),
            quiet_hours_start: Some("25:00".into()),
            quiet_hours_end: Some("8".into()),
            sweep_enabled: None,
        };
        let fields: Vec<_> = patch
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "sms_per_hour",
                "timezone",
                "quiet_hours_start",
                "quiet_hours_end"
            ]
        );
        let empty = CompanyPatch::default().validate().unwrap_err();
        assert_eq!(empty[0].field, "body");
    }
}
