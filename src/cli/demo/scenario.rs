//! What the demo does, through the public HTTP API as the CRM and the operator would: buy
//! credits by M-Pesa, card and bank transfer, route Tanzanian Vodacom numbers through Beem and
//! Kenyan ones through Africa's Talking (the rest through Twilio), send a reminder batch in English
//! and Swahili, and let the fake providers report deliveries (a few of them failures, which are
//! refunded).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::stack::Stack;
use crate::accounts;
use crate::domain::{Country, Role};

/// Messages in the batch, invalid numbers included.
pub const BATCH_SIZE: usize = 300;
/// Items with a number no phone can have: refused one by one, the rest sent.
const INVALID_AT: [usize; 5] = [17, 73, 140, 211, 288];
/// Every n-th sent message is reported failed / undelivered by the fake Twilio.
const FAIL_EVERY: usize = 50;
const UNDELIVERED_EVERY: usize = 60;
/// Items `i` with `i % BULK_UNDELIVERED_EVERY` equal to these are reported undelivered by
/// Beem (a `+25575` number) and Africa's Talking (a Kenyan one).
const BULK_UNDELIVERED_EVERY: usize = 45;
const BEEM_UNDELIVERED_AT: usize = 1;
const AT_UNDELIVERED_AT: usize = 3;
const WAIT: Duration = Duration::from_secs(40);

/// What the scenario did, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub company: Option<crate::domain::CompanyId>,
    pub purchases: Vec<(String, String)>,
    pub batch_id: String,
    pub accepted: i64,
    pub rejected: i64,
    pub reported_failed: usize,
    pub reported_undelivered: usize,
}

pub async fn play(stack: &Stack) -> anyhow::Result<Progress> {
    let mut progress = Progress::default();
    let company = accounts::create_company(&stack.pool, "Demo Traders Ltd", Country::KE).await?;
    // The demo runs at any hour: no quiet hours, and a quota that does not spread the batch out.
    sqlx::query(
        "UPDATE companies SET sms_per_hour = 1000000, quiet_hours_start = '00:00', quiet_hours_end = '00:00',
             payment_link = 'M-Pesa Paybill 174379'
         WHERE id = $1",
    )
    .bind(company.id)
    .execute(&stack.pool)
    .await?;
    progress.company = Some(company.id);
    let member = accounts::create_user(&stack.pool, Some(company.id), Role::Member, None).await?;
    let operator = accounts::create_user(&stack.pool, None, Role::SuperAdmin, None).await?;
    let token = stack.state.jwt.issue(member.id, chrono::Duration::hours(1));
    let admin = stack
        .state
        .jwt
        .issue(operator.id, chrono::Duration::hours(1));
    let api = Api {
        stack,
        token: &token,
    };

    // M-Pesa: the fake prompts the phone, the customer pays, the callback comes, the query confirms.
    let mpesa = api
        .post(
            "/v1/purchases",
            json!({"package_id": "business", "method": "mpesa", "phone": "0712345678"}),
            201,
        )
        .await?;
    progress
        .purchases
        .push(("mpesa".into(), api.credited(&mpesa).await?));

    // M-Pesa in Tanzania, in TZS: Vodacom's OpenAPI. The purchase job prompts the phone (the
    // customer enters the PIN) and the status query confirms.
    let vodacom = api
        .post(
            "/v1/purchases",
            json!({"package_id": "business", "method": "mpesa", "phone": "+255754123456", "currency": "TZS"}),
            201,
        )
        .await?;
    progress
        .purchases
        .push(("mpesa_tzs".into(), api.credited(&vodacom).await?));

    // Card: Stripe Checkout; the buyer pays and Stripe's signed event arrives.
    let card = api
        .post(
            "/v1/purchases",
            json!({"package_id": "pro", "method": "card"}),
            201,
        )
        .await?;
    let session: String =
        sqlx::query_scalar("SELECT provider_ref FROM payments WHERE id = $1::uuid")
            .bind(id_of(&card)?)
            .fetch_one(&stack.pool)
            .await?;
    stack.stripe.complete(&session, true).await;
    progress
        .purchases
        .push(("card".into(), api.credited(&card).await?));

    // Bank transfer: the operator sees the money arrive and approves it.
    let bank = api
        .post(
            "/v1/purchases",
            json!({"package_id": "business", "method": "bank_transfer"}),
            201,
        )
        .await?;
    let operator_api = Api {
        stack,
        token: &admin,
    };
    operator_api
        .post(
            &format!("/admin/purchases/{}/approve", id_of(&bank)?),
            json!({"amount": bank["amount"], "currency": bank["currency"], "bank_reference": "DEMO-BANK-0001"}),
            200,
        )
        .await?;
    progress
        .purchases
        .push(("bank_transfer".into(), api.credited(&bank).await?));

    // The operator's routing table: Vodacom Tanzania numbers through Beem, Kenyan numbers through
    // Africa's Talking, each falling back to Twilio; everything else through Twilio.
    operator_api
        .put(
            "/admin/routes",
            json!({"rules": [
                {"destination": "25575", "routes": ["beem", "twilio"]},
                {"destination": "254", "routes": ["africastalking", "twilio"]},
            ]}),
        )
        .await?;
    for i in 0..BATCH_SIZE {
        let to = number(i);
        match i % BULK_UNDELIVERED_EVERY {
            BEEM_UNDELIVERED_AT => stack
                .beem
                .final_status(to.trim_start_matches('+'), "UNDELIVERED"),
            AT_UNDELIVERED_AT => {
                let kenyan = format!("+254{}", &to[1..]);
                stack
                    .africastalking
                    .final_report(&kenyan, "Failed", Some("DeliveryFailure"));
            }
            _ => continue,
        }
        progress.reported_undelivered += 1;
    }

    // The reminder batch.
    let batch = api
        .post(
            "/v1/messages/batch",
            json!({ "messages": reminders() }),
            202,
        )
        .await?;
    progress.batch_id = batch["batch_id"].as_str().context("batch_id")?.to_string();
    progress.accepted = batch["accepted"].as_i64().context("accepted")?;
    progress.rejected = batch["rejected"].as_array().map_or(0, |r| r.len() as i64);

    let bar = ProgressBar::new(progress.accepted as u64).with_style(
        ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message("sending");
    let path = format!("/v1/batches/{}", progress.batch_id);
    api.wait_until(&bar, &path, |by| {
        progress.accepted - by_status(by, &["queued", "sending"])
    })
    .await?;

    // Delivery reports, as Twilio would post them, a few of them failures.
    bar.set_position(0);
    bar.set_message("delivery reports");
    let sids: Vec<String> = stack.twilio.messages().into_iter().map(|m| m.sid).collect();
    let reports: Vec<(String, &str, Option<&str>)> = sids
        .into_iter()
        .enumerate()
        .map(|(i, sid)| match i + 1 {
            n if n % FAIL_EVERY == 0 => (sid, "failed", Some("30008")),
            n if n % UNDELIVERED_EVERY == 0 => (sid, "undelivered", Some("30003")),
            _ => (sid, "delivered", None),
        })
        .collect();
    progress.reported_failed = reports.iter().filter(|r| r.1 == "failed").count();
    progress.reported_undelivered += reports.iter().filter(|r| r.1 == "undelivered").count();
    let statuses: Vec<reqwest::Result<u16>> = futures::stream::iter(reports.iter())
        .map(|(sid, status, code)| stack.twilio.callback(sid, status, *code))
        .buffer_unordered(16)
        .collect()
        .await;
    if let Some(bad) = statuses.iter().find(|s| !matches!(s, Ok(204))) {
        bail!("a delivery report was not accepted: {bad:?}");
    }
    api.wait_until(&bar, &path, |by| {
        by_status(by, &["delivered", "undelivered", "failed"])
    })
    .await?;
    bar.finish_and_clear();

    // Refunds of the failed and undelivered messages run in the background: wait for them.
    let refunds_due = (progress.reported_failed + progress.reported_undelivered) as i64;
    let started = Instant::now();
    loop {
        let refunded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'refund' AND company_id = $1",
        )
        .bind(company.id)
        .fetch_one(&stack.pool)
        .await?;
        if refunded >= refunds_due {
            break;
        }
        if started.elapsed() > WAIT {
            bail!("only {refunded} of {refunds_due} refunds after {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(progress)
}

/// Item `i`'s number: in turn a Kenyan one (Africa's Talking), a Vodacom Tanzania one (Beem) and
/// an Airtel Tanzania one (Twilio); a few cannot be right.
fn number(i: usize) -> String {
    const INVALID: [&str; 5] = ["0712", "+999123456", "hello", "07123456789012", "+25571"];
    if let Some(k) = INVALID_AT.iter().position(|&at| at == i) {
        return INVALID[k].to_string();
    }
    match i % 3 {
        0 => format!("07{:08}", 10_000_000 + i),
        1 => format!("+25575{:07}", 1_000_000 + i),
        _ => format!("+25568{:07}", 1_000_000 + i),
    }
}

/// The reminder batch: customers of a Kenyan shop, half in English and half in Swahili through
/// the default `payment_reminder` template, with a few numbers that cannot be right.
fn reminders() -> Vec<Value> {
    const NAMES: [&str; 8] = [
        "Amina", "Baraka", "Neema", "Otieno", "Wanjiru", "Juma", "Zawadi", "Kamau",
    ];
    (0..BATCH_SIZE)
        .map(|i| {
            let to = number(i);
            let due = chrono::NaiveDate::from_ymd_opt(2026, 11, 1 + (i % 28) as u32)
                .expect("a date in November");
            json!({
                "to": to,
                "template": "payment_reminder",
                "language": if i % 2 == 0 { "en" } else { "sw" },
                "vars": {
                    "customer_name": NAMES[i % NAMES.len()],
                    "amount": (500 + (i % 20) * 250).to_string(),
                    "currency": "KES",
                    "due_date": due.to_string(),
                    "invoice_number": format!("INV-{:05}", 1000 + i),
                },
            })
        })
        .collect()
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    Ok(v["id"].as_str().context("an id")?.to_string())
}

fn by_status(batch: &Value, statuses: &[&str]) -> i64 {
    statuses
        .iter()
        .map(|s| batch["by_status"][s].as_i64().unwrap_or(0))
        .sum()
}

struct Api<'a> {
    stack: &'a Stack,
    token: &'a str,
}

impl Api<'_> {
    async fn post(&self, path: &str, body: Value, expect: u16) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, body, expect).await
    }

    async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, path, body, 200).await
    }

    /// `method path` with a JSON body; its JSON answer, or an error unless its status is `expect`.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let resp = self
            .stack
            .client
            .request(method.clone(), self.stack.url(path))
            .bearer_auth(self.token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status != expect {
            bail!("{method} {path} answered {status}: {v}");
        }
        Ok(v)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .stack
            .client
            .get(self.stack.url(path))
            .bearer_auth(self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(resp.json().await?)
    }

    /// Waits until the purchase is credited; its final status.
    async fn credited(&self, purchase: &Value) -> anyhow::Result<String> {
        let path = format!("/v1/purchases/{}", id_of(purchase)?);
        let started = Instant::now();
        loop {
            let now = self.get(&path).await?;
            let status = now["status"].as_str().unwrap_or_default().to_string();
            if status == "credited" {
                return Ok(status);
            }
            if matches!(status.as_str(), "failed" | "cancelled" | "expired")
                || started.elapsed() > WAIT
            {
                bail!("purchase {path} ended {status}: {now}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the batch until `done(batch)` reaches the bar's length.
    async fn wait_until(
        &self,
        bar: &ProgressBar,
        path: &str,
        done: impl Fn(&Value) -> i64,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let batch = self.get(path).await?;
            let n = done(&batch).max(0) as u64;
            bar.set_position(n);
            if n >= bar.length().unwrap_or(0) {
                return Ok(());
            }
            if started.elapsed() > WAIT {
                bail!("batch not finished after {WAIT:?}: {batch}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
