//! `copcca-sms demo`: until the sending and purchase issues land, the demo shows the ledger on a
//! database of its own: a seeded company, a grant of credits, messages reserved and committed,
//! one released, one refunded, then the balance and the audit.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use url::Url;

use super::output;
use crate::config::Config;
use crate::domain::{CompanyId, CreditDelta, Credits};
use crate::messages::{NewMessage, insert_queued};
use crate::{db, ledger};

/// The seeded demo company (fixed, so re-runs reuse it).
const DEMO_COMPANY: uuid::Uuid = uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_de30);
/// The one-off starting grant (fixed key: granted once however often the demo runs).
const DEMO_GRANT: uuid::Uuid = uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_61a7);

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let mut url = Url::parse(&config.database_url)?;
    url.set_path("/copcca_sms_demo");
    let pool = db::migrate(url.as_str(), &config.database_schema).await?;
    let company = CompanyId(DEMO_COMPANY);
    sqlx::query(
        "INSERT INTO companies (id, name, country, currency) VALUES ($1, 'Demo Traders Ltd', 'TZ', 'TZS')
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(company)
    .execute(&pool)
    .await?;
    sqlx::query("INSERT INTO balances (company_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(company)
        .execute(&pool)
        .await?;
    ledger::adjust(
        &mut *pool.acquire().await?,
        DEMO_GRANT,
        company,
        CreditDelta::new(500)?,
        "demo starting credits",
        "demo",
    )
    .await?;

    let bodies = [
        "Habari! Deni lako la TZS 20,000 kwa ankara INV-1001 limepita tarehe ya malipo.",
        "Reminder: invoice INV-1002 for TZS 45,000 is overdue. Please pay at your earliest convenience.",
        "Reminder: invoice INV-1003 for TZS 12,500 is due tomorrow.",
    ];
    let mut conn = pool.acquire().await?;
    let mut holds = Vec::new();
    for body in bodies {
        let message = NewMessage {
            company,
            to: "+255754123456",
            body,
            encoding: "GSM-7",
            segments: 1,
            credits: Credits::new(1)?,
            sender: "demo",
        };
        let id = insert_queued(&mut conn, &message).await?;
        holds.push(
            ledger::reserve(
                &mut conn,
                company,
                id,
                message.credits,
                Duration::from_secs(600),
            )
            .await?
            .value,
        );
    }
    ledger::commit(&mut conn, holds[0].id, Credits::new(1)?).await?;
    ledger::commit(&mut conn, holds[1].id, Credits::new(1)?).await?;
    ledger::release(&mut conn, holds[2].id).await?;
    ledger::refund(
        &mut conn,
        holds[1].message_id,
        "demo: delivery failed",
        "demo",
    )
    .await?;

    let balance = ledger::balance(&pool, company).await?;
    let audit = ledger::audit(&pool).await?;
    eprintln!(
        "copcca-sms demo (ledger only: purchases and sending through fake providers arrive with issues #4, #5 and #7)"
    );
    output::print(
        false,
        &json!({
            "database": url.path().trim_start_matches('/'),
            "company": { "id": company, "name": "Demo Traders Ltd", "country": "TZ" },
            "this_run": { "messages": 3, "committed": 2, "released": 1, "refunded": 1 },
            "balance": balance,
            "audit": if audit.is_clean() { "clean".to_string() } else { format!("{} violation(s)", audit.violations.len()) },
        }),
    );
    Ok(if audit.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
