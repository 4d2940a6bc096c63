use sqlx::PgConnection;

use crate::domain::{CompanyId, Credits, MessageId};

/// A validated message ready to be written as `queued`.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub company: CompanyId,
    /// E.164 (`+255754123456`); the database refuses anything else.
    pub to: &'a str,
    pub body: &'a str,
    pub encoding: &'a str,
    pub segments: i32,
    pub credits: Credits,
    /// Who asked: `user:<id>`, `api_key:<id>`, `sweep`, `demo`.
    pub sender: &'a str,
}

/// Writes the message row in state `queued` and returns its id.
pub async fn insert_queued(
    conn: &mut PgConnection,
    m: &NewMessage<'_>,
) -> Result<MessageId, sqlx::Error> {
    let id = MessageId::new();
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, sender)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(m.company)
    .bind(m.to)
    .bind(m.body)
    .bind(m.encoding)
    .bind(m.segments)
    .bind(m.credits.get())
    .bind(m.sender)
    .execute(conn)
    .await?;
    Ok(id)
}
