//! Templates in PostgreSQL: a company's own rows over the global defaults. A company's
//! template of the same name and language wins; without one the default is used.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::{Language, Template};
use crate::domain::CompanyId;

/// Where a template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
// Named apart from the settings' `Source`: one component name would stand for both enums.
#[schema(as = TemplateSource)]
pub enum Source {
    /// Saved by the company.
    Company,
    /// The service's default, used while the company has none of that name and language.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub name: String,
    pub language: Language,
    pub body: String,
    pub source: Source,
    pub updated_at: DateTime<Utc>,
}

type Row = (String, String, String, bool, DateTime<Utc>);

fn from_row((name, language, body, own, updated_at): Row) -> StoredTemplate {
    StoredTemplate {
        name,
        // The column's CHECK allows only these two.
        language: language.parse().unwrap_or_default(),
        body,
        source: if own {
            Source::Company
        } else {
            Source::Default
        },
        updated_at,
    }
}

/// The company's templates and the defaults it has not replaced, by name and language.
const EFFECTIVE: &str =
    "SELECT name, language, body, true, updated_at FROM templates WHERE company_id = $1
     UNION ALL
     SELECT d.name, d.language, d.body, false, d.updated_at FROM template_defaults d
     WHERE NOT EXISTS (SELECT 1 FROM templates t
                       WHERE t.company_id = $1 AND t.name = d.name AND t.language = d.language)";

/// Every template the company can use.
pub async fn list(pool: &PgPool, company: CompanyId) -> Result<Vec<StoredTemplate>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({EFFECTIVE}) e ORDER BY 1, 2"
    )))
    .bind(company)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The template `name` in each language the company has it in (empty if in none).
pub async fn by_name(
    pool: &PgPool,
    company: CompanyId,
    name: &str,
) -> Result<Vec<StoredTemplate>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({EFFECTIVE}) e WHERE e.name = $2 ORDER BY 2"
    )))
    .bind(company)
    .bind(name)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The template a message of `name` in `language` is made from: the company's, else the default.
pub async fn effective(
    conn: &mut PgConnection,
    company: CompanyId,
    name: &str,
    language: Language,
) -> Result<Option<StoredTemplate>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({EFFECTIVE}) e WHERE e.name = $2 AND e.language = $3"
    )))
    .bind(company)
    .bind(name)
    .bind(language.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(from_row))
}

/// Saves the company's template (a checked one only); true when it did not exist before.
pub async fn save(
    pool: &PgPool,
    company: CompanyId,
    name: &str,
    language: Language,
    template: &Template,
) -> Result<(StoredTemplate, bool), sqlx::Error> {
    let (name, language, body, updated_at, created): (String, String, String, DateTime<Utc>, bool) =
        sqlx::query_as(
            "INSERT INTO templates (company_id, name, language, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (company_id, name, language) DO UPDATE SET body = EXCLUDED.body, updated_at = now()
             RETURNING name, language, body, updated_at, (xmax = 0)",
        )
        .bind(company)
        .bind(name)
        .bind(language.as_str())
        .bind(template.body())
        .fetch_one(pool)
        .await?;
    Ok((from_row((name, language, body, true, updated_at)), created))
}

/// Where the company's debtors pay, when a message gives no `{payment_link}` of its own.
pub async fn company_payment_link(
    conn: &mut PgConnection,
    company: CompanyId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT payment_link FROM companies WHERE id = $1")
        .bind(company)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// Loads and checks each template once, for the many messages of a batch.
pub struct Loader {
    company: CompanyId,
    cache: HashMap<(String, Language), Option<Template>>,
}

impl Loader {
    pub fn new(company: CompanyId) -> Self {
        Loader {
            company,
            cache: HashMap::new(),
        }
    }

    /// The checked template, or `None` if the company has no template `name` in `language`.
    pub async fn get(
        &mut self,
        conn: &mut PgConnection,
        name: &str,
        language: Language,
    ) -> Result<Option<&Template>, sqlx::Error> {
        let key = (name.to_string(), language);
        if !self.cache.contains_key(&key) {
            let stored = effective(conn, self.company, name, language).await?;
            let checked = stored.and_then(|s| match Template::parse(&s.body) {
                Ok(t) => Some(t),
                Err(e) => {
                    // Saved templates were checked; only a hand-edited row gets here.
                    tracing::error!(template = name, %language, errors = ?e, "stored template does not parse");
                    None
                }
            });
            self.cache.insert(key.clone(), checked);
        }
        Ok(self.cache[&key].as_ref())
    }
}
