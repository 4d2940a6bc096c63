//! A company's opt-out list: numbers that must not receive its messages. Added by the API, by an
//! inbound STOP / UNSUBSCRIBE / ACHA reply, or by Twilio error 21610 (the recipient's STOP at
//! Twilio); removed by START or an operator, and by the company unless the recipient made it
//! (the recipient's own choice is not the company's to undo).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::{CompanyId, E164};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OptOut {
    /// E.164.
    pub phone: String,
    /// `api`, `inbound_stop`, `twilio_21610` or `operator`.
    pub source: String,
    pub created_at: DateTime<Utc>,
}

/// The sources of the recipient's own opt-outs (its STOP, to us or to Twilio): the company
/// cannot remove them.
const BY_THE_RECIPIENT: [&str; 2] = ["inbound_stop", "twilio_21610"];

/// Adds `phone`; false when nothing changed (it was on the list already). The recipient's
/// opt-out replaces one made another way (true), so that the company can no longer remove it.
pub async fn add(
    pool: &PgPool,
    company: CompanyId,
    phone: &E164,
    source: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO opt_outs (company_id, phone, source) VALUES ($1, $2, $3)
         ON CONFLICT (company_id, phone) DO UPDATE SET source = EXCLUDED.source
             WHERE EXCLUDED.source = ANY ($4) AND opt_outs.source <> ALL ($4)",
    )
    .bind(company)
    .bind(phone.as_str())
    .bind(source)
    .bind(&BY_THE_RECIPIENT[..])
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes `phone`, whoever made the opt-out (the recipient's START, an operator); false when it
/// was not on the list.
pub async fn remove(pool: &PgPool, company: CompanyId, phone: &E164) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM opt_outs WHERE company_id = $1 AND phone = $2")
        .bind(company)
        .bind(phone.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// What a company's request to remove an opt-out came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompanyRemoval {
    Removed,
    NotListed,
    /// Kept: the recipient made it (`source`); only its START or an operator removes it.
    ByTheRecipient {
        source: String,
    },
}

/// Removes `phone` at the company's request, unless the recipient made the opt-out.
pub async fn remove_for_company(
    pool: &PgPool,
    company: CompanyId,
    phone: &E164,
) -> Result<CompanyRemoval, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let source: Option<String> = sqlx::query_scalar(
        "SELECT source FROM opt_outs WHERE company_id = $1 AND phone = $2 FOR UPDATE",
    )
    .bind(company)
    .bind(phone.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    match source {
        None => Ok(CompanyRemoval::NotListed),
        Some(source) if BY_THE_RECIPIENT.contains(&source.as_str()) => {
            Ok(CompanyRemoval::ByTheRecipient { source })
        }
        Some(_) => {
            sqlx::query("DELETE FROM opt_outs WHERE company_id = $1 AND phone = $2")
                .bind(company)
                .bind(phone.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(CompanyRemoval::Removed)
        }
    }
}

/// One opt-out of the company's list.
pub async fn find(
    pool: &PgPool,
    company: CompanyId,
    phone: &E164,
) -> Result<Option<OptOut>, sqlx::Error> {
    sqlx::query_as(
        "SELECT phone, source, created_at FROM opt_outs WHERE company_id = $1 AND phone = $2",
    )
    .bind(company)
    .bind(phone.as_str())
    .fetch_optional(pool)
    .await
}

pub async fn list(
    pool: &PgPool,
    company: CompanyId,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<OptOut>, sqlx::Error> {
    sqlx::query_as(
        "SELECT phone, source, created_at FROM opt_outs WHERE company_id = $1 AND ($2::text IS NULL OR phone > $2)
         ORDER BY phone LIMIT $3",
    )
    .bind(company)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What an inbound reply asks for, by its first word (English and Swahili keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Stop,
    Start,
}

pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "ACHA" => {
            Some(Keyword::Stop)
        }
        "START" | "UNSTOP" | "ANZA" => Some(Keyword::Start),
        _ => None,
    }
}

/// The company an inbound reply from `phone` answers: the last one that sent it a message (one
/// central sender serves every company, so the conversation decides).
pub async fn company_for_reply(
    pool: &PgPool,
    phone: &E164,
) -> Result<Option<CompanyId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT company_id FROM messages WHERE to_number = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(phone.as_str())
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_start_keywords_in_english_and_swahili() {
        assert_eq!(keyword("STOP"), Some(Keyword::Stop));
        assert_eq!(keyword("  acha tafadhali"), Some(Keyword::Stop));
        assert_eq!(keyword("Unsubscribe."), Some(Keyword::Stop));
        assert_eq!(keyword("start"), Some(Keyword::Start));
        assert_eq!(keyword("Asante, nimelipa"), None);
        assert_eq!(keyword(""), None);
    }
}
