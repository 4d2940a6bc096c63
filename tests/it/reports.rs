//! The revenue report: scripted purchases in two currencies, messages sent through the fake
//! Twilio whose prices the reconciler fetches once they are final, refunds; JSON and CSV over
//! HTTP, and `admin report revenue`.

use std::collections::HashMap;
use std::time::Duration;

use copcca_sms::domain::{CompanyId, Country, PaymentId, Role};
use copcca_sms::fakes::twilio::PRICE_PER_SEGMENT;
use copcca_sms::ledger;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;

use crate::sending::Harness;

/// A purchase of `credits` paid `amount` in `currency`, credited as the purchase worker does.
async fn purchase(pool: &PgPool, company: CompanyId, credits: i64, amount: &str, currency: &str) {
    let id = PaymentId::new();
    sqlx::query(
        "INSERT INTO payments (id, company_id, package_id, method, status, credits, amount,
                               amount_received, currency, requested_by)
         VALUES ($1, $2, 'business', 'bank_transfer', 'paid', $3, $4::numeric, $4::numeric, $5, 'test')",
    )
    .bind(id)
    .bind(company)
    .bind(credits)
    .bind(amount)
    .bind(currency)
    .execute(pool)
    .await
    .unwrap();
    ledger::credit_purchase(&mut pool.acquire().await.unwrap(), id, "test")
        .await
        .unwrap();
}

/// Runs the binary with `args` against `pool`'s database, off the test's runtime.
pub(crate) async fn binary(pool: &PgPool, args: &[&str]) -> std::process::Output {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms_test".into()),
    )
    .unwrap();
    url.set_path(&db);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .args(&args)
            .env("DATABASE_URL", url.to_string())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A money map of the report (`{"USD": "0.02250"}`) as decimals.
fn money(v: &Value) -> HashMap<String, Decimal> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(c, a)| (c.clone(), dec(a.as_str().unwrap())))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, Decimal> {
    pairs.iter().map(|(c, a)| (c.to_string(), dec(a))).collect()
}

/// Two companies: the harness's (TZ) buys in TZS and USD and sends three messages through the
/// fake Twilio (one delivered, one of two segments undelivered, one failed; the last two
/// refunded), whose prices the reconciler fetches; a KES company only buys.
struct Scripted {
    h: Harness,
    kenyan: CompanyId,
    operator: String,
    today: String,
}

async fn scripted(pool: PgPool) -> Scripted {
    let h = Harness::new(pool.clone(), 0).await;
    purchase(&pool, h.company.id, 1000, "25000.00", "TZS").await;
    purchase(&pool, h.company.id, 500, "8.00", "USD").await;
    let kenyan = copcca_sms::accounts::create_company(&pool, "Soko, \"Nairobi\"", Country::KE)
        .await
        .unwrap()
        .id;
    purchase(&pool, kenyan, 500, "1040.00", "KES").await;

    let delivered = h.accept("+255754123456", "Kumbusho: ankara 1").await;
    let long = "Habari, tunakukumbusha kuwa ankara yako ya mwezi huu bado haijalipwa. Tafadhali \
                lipa kupitia M-Pesa Paybill 400200 kabla ya tarehe ya mwisho. Asante sana kwa \
                kuwa mteja wetu.";
    let undelivered = h.accept("+255754123457", long).await;
    let failed = h.accept("+255754123458", "Kumbusho: ankara 3").await;
    h.drain(Duration::from_secs(20)).await;
    assert_eq!(h.message(undelivered).await.segments, 2);
    for (id, status, code) in [
        (delivered, "delivered", None),
        (undelivered, "undelivered", Some("30003")),
        (failed, "failed", Some("30008")),
    ] {
        let sid = h.message(id).await.provider_id.clone().unwrap();
        let status_code = h.twilio.callback(&sid, status, code).await.unwrap();
        assert_eq!(status_code, 204);
    }
    h.drain(Duration::from_secs(20)).await;

    // Twilio's create answer has no price: the reconciler fetches it once the message is final.
    let pass = h.reconcile(Duration::from_secs(3600)).await;
    assert_eq!(pass.prices.recorded, 3, "{pass:?}");
    let again = h.reconcile(Duration::from_secs(3600)).await;
    assert_eq!(
        again.prices.recorded + again.prices.not_yet,
        0,
        "each fetched once"
    );

    let user = copcca_sms::accounts::create_user(h.pool(), None, Role::SuperAdmin, None)
        .await
        .unwrap();
    let operator = h.app.state.jwt.issue(user.id, chrono::Duration::hours(1));
    let today = chrono::Utc::now().date_naive().to_string();
    Scripted {
        h,
        kenyan,
        operator,
        today,
    }
}

impl Scripted {
    async fn get(&self, query: &str, accept: Option<&str>) -> reqwest::Response {
        let mut req = self
            .h
            .app
            .client
            .get(self.h.app.url(&format!("/admin/reports/revenue?{query}")))
            .bearer_auth(&self.operator);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        req.send().await.unwrap()
    }

    async fn json(&self, query: &str) -> Value {
        let resp = self.get(query, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        resp.json().await.unwrap()
    }
}

#[sqlx::test]
async fn the_report_adds_up_purchases_messages_prices_and_refunds_per_currency(pool: PgPool) {
    let s = scripted(pool.clone()).await;
    let day = &s.today;
    let report = s.json(&format!("from={day}&to={day}&group_by=day")).await;
    assert!(report["note"].as_str().unwrap().contains("exchange rate"));
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    let tz = rows
        .iter()
        .find(|r| r["company_id"] == s.h.company.id.to_string())
        .unwrap();
    let ke = rows
        .iter()
        .find(|r| r["company_id"] == s.kenyan.to_string())
        .unwrap();

    let per_segment = dec(PRICE_PER_SEGMENT);
    // Delivered (1 segment) and undelivered (2) are billed; failed costs nothing.
    let cost = per_segment * Decimal::from(3);
    assert_eq!(tz["period"], *day);
    assert_eq!(tz["credits_sold"], 1500);
    assert_eq!(
        money(&tz["received"]),
        map(&[("TZS", "25000.00"), ("USD", "8.00")])
    );
    assert_eq!(
        (
            &tz["messages_sent"],
            &tz["segments_sent"],
            &tz["credits_charged"]
        ),
        (&Value::from(3), &Value::from(4), &Value::from(4))
    );
    assert_eq!(
        money(&tz["provider_cost"]),
        HashMap::from([("USD".to_string(), cost)])
    );
    assert_eq!(tz["unpriced_messages"], 0);
    assert_eq!(
        (&tz["messages_refunded"], &tz["credits_refunded"]),
        (&Value::from(2), &Value::from(3)),
        "the undelivered (2 credits) and the failed (1)"
    );
    // Never across currencies: TZS keeps its whole amount, the USD cost comes off USD only.
    assert_eq!(
        money(&tz["margin"]),
        HashMap::from([
            ("TZS".to_string(), dec("25000.00")),
            ("USD".to_string(), dec("8.00") - cost)
        ])
    );
    assert_eq!(ke["company_name"], "Soko, \"Nairobi\"");
    assert_eq!(money(&ke["received"]), map(&[("KES", "1040.00")]));
    assert_eq!(money(&ke["margin"]), map(&[("KES", "1040.00")]));
    assert_eq!(ke["messages_sent"], 0);

    // The stored prices are Twilio's, as positive costs in its unit.
    let prices: Vec<(Option<Decimal>, Option<String>)> = sqlx::query_as(
        "SELECT price, price_currency FROM messages WHERE company_id = $1 ORDER BY segments, status",
    )
    .bind(s.h.company.id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        prices,
        [
            (Some(per_segment), Some("USD".into())),
            (Some(Decimal::ZERO), Some("USD".into())),
            (Some(per_segment * Decimal::from(2)), Some("USD".into())),
        ]
    );

    // By month, and for one company.
    let month = &day[..7];
    let monthly = s
        .json(&format!(
            "from={day}&to={day}&group_by=month&company={}",
            s.kenyan
        ))
        .await;
    let rows = monthly["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["period"], month);
    assert_eq!(rows[0]["credits_sold"], 500);

    // A day with nothing has no rows.
    let empty = s.json("from=2020-01-01&to=2020-01-31").await;
    assert_eq!(empty["rows"], Value::Array(Vec::new()));
    s.h.audit_clean().await;
}

#[sqlx::test]
async fn the_report_as_csv_has_a_column_per_currency(pool: PgPool) {
    let s = scripted(pool).await;
    let day = &s.today;
    for (query, accept) in [
        (format!("from={day}&to={day}&format=csv"), None),
        (format!("from={day}&to={day}"), Some("text/csv")),
        (
            format!("from={day}&to={day}"),
            Some("text/csv, application/json;q=0.5"),
        ),
    ] {
        let resp = s.get(&query, accept).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=\"revenue-")
        );
        let text = resp.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        for column in [
            "period",
            "company_id",
            "company_name",
            "credits_sold",
            "messages_sent",
            "segments_sent",
            "credits_refunded",
            "received_KES",
            "received_TZS",
            "received_USD",
            "provider_cost_USD",
            "margin_KES",
            "margin_TZS",
            "margin_USD",
        ] {
            assert!(
                header.contains(&column.to_string()),
                "{column} in {header:?}"
            );
        }
        assert!(
            !header.iter().any(|c| c == "provider_cost_TZS"),
            "no cost in TZS"
        );
        let rows: Vec<HashMap<String, String>> = reader
            .records()
            .map(|r| {
                header
                    .iter()
                    .cloned()
                    .zip(r.unwrap().iter().map(String::from))
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 2);
        let ke = rows
            .iter()
            .find(|r| r["company_id"] == s.kenyan.to_string())
            .unwrap();
        assert_eq!(
            ke["company_name"], "Soko, \"Nairobi\"",
            "quoted and read back"
        );
        assert_eq!(dec(&ke["received_KES"]), dec("1040.00"));
        assert_eq!(ke["received_TZS"], "", "no TZS for this company");
        let tz = rows
            .iter()
            .find(|r| r["company_id"] == s.h.company.id.to_string())
            .unwrap();
        assert_eq!(tz["segments_sent"], "4");
        assert_eq!(dec(&tz["received_TZS"]), dec("25000.00"));
        assert_eq!(
            dec(&tz["provider_cost_USD"]),
            dec(PRICE_PER_SEGMENT) * Decimal::from(3)
        );
    }
    // JSON stays the default, and wins when preferred.
    let resp = s
        .get(
            &format!("from={day}&to={day}"),
            Some("application/json, text/csv"),
        )
        .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
}

#[sqlx::test]
async fn bad_ranges_and_values_are_refused_and_only_the_operator_may_read(pool: PgPool) {
    let h = Harness::new(pool, 0).await;
    let user = copcca_sms::accounts::create_user(h.pool(), None, Role::SuperAdmin, None)
        .await
        .unwrap();
    let operator = h.app.state.jwt.issue(user.id, chrono::Duration::hours(1));
    let get = |query: &str, token: &str| {
        h.app
            .client
            .get(h.app.url(&format!("/admin/reports/revenue?{query}")))
            .bearer_auth(token)
            .send()
    };
    for (query, code, field) in [
        (
            "from=2026-02-01&to=2026-01-31",
            "validation_failed",
            Some("to"),
        ),
        (
            "from=2024-01-01&to=2026-01-31&group_by=day",
            "validation_failed",
            Some("to"),
        ),
        ("from=2026-01-01", "invalid_query", None),
        ("from=2026-13-01&to=2026-12-31", "invalid_query", None),
        (
            "from=2026-01-01&to=2026-01-31&group_by=week",
            "invalid_query",
            None,
        ),
        (
            "from=2026-01-01&to=2026-01-31&format=xml",
            "invalid_query",
            None,
        ),
        (
            "from=2026-01-01&to=2026-01-31&company=acme",
            "invalid_query",
            None,
        ),
    ] {
        let resp = get(query, &operator).await.unwrap();
        assert_eq!(resp.status(), 422, "{query}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], code, "{query}: {body}");
        if let Some(f) = field {
            assert_eq!(body["errors"][0]["field"], f, "{query}");
        }
    }
    let resp = get("from=2026-01-01&to=2026-01-31", &h.token)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "a member");
}

#[sqlx::test]
async fn admin_report_revenue_prints_the_report_as_json_or_csv(pool: PgPool) {
    let s = scripted(pool.clone()).await;
    let day = s.today.clone();
    let report = crate::cli::run_admin_json(
        &pool,
        &[
            "report",
            "revenue",
            "--from",
            &day,
            "--to",
            &day,
            "--group-by",
            "month",
        ],
    )
    .await;
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    assert_eq!(report["group_by"], "month");
    let sold: i64 = rows
        .iter()
        .map(|r| r["credits_sold"].as_i64().unwrap())
        .sum();
    assert_eq!(sold, 2000);

    let company = s.kenyan.to_string();
    let out = binary(
        &pool,
        &[
            "admin",
            "report",
            "revenue",
            "--from",
            &day,
            "--to",
            &day,
            "--company",
            &company,
            "--csv",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the one company: {text}");
    assert!(lines[0].starts_with("period,company_id,company_name,credits_sold,"));
    assert!(
        lines[1].contains("\"Soko, \"\"Nairobi\"\"\""),
        "{}",
        lines[1]
    );

    let refused = binary(
        &pool,
        &[
            "admin",
            "--json",
            "report",
            "revenue",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
        ],
    )
    .await;
    assert!(!refused.status.success());
    let err: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert!(err["error"].as_str().unwrap().contains("--to"), "{err}");
}

#[sqlx::test]
async fn the_status_page_charts_the_credits_of_the_last_days_and_tables_the_money(pool: PgPool) {
    let s = scripted(pool).await;
    let resp =
        s.h.app
            .client
            .get(s.h.app.url("/admin"))
            .bearer_auth(&s.operator)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let chart = &html[html.find(r#"<svg id="chart-credits""#).expect("the chart")..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    let day = &s.today;
    for (series, value) in [("sold", 2000), ("charged", 4), ("refunded", 3)] {
        let group = &chart[chart
            .find(&format!(r#"data-series="{series}""#))
            .unwrap_or_else(|| panic!("{series}"))..];
        let group = &group[..group.find("</g>").unwrap()];
        assert!(
            group.contains(&format!(r#"data-day="{day}" data-value="{value}""#)),
            "{series}: {group}"
        );
    }
    let table = &html[html
        .find(r#"<table id="revenue-money""#)
        .expect("the money")..];
    let table = &table[..table.find("</table>").unwrap()];
    for currency in ["KES", "TZS", "USD"] {
        assert!(table.contains(&format!("<td>{currency}</td>")), "{table}");
    }
    assert!(table.contains("25000.00"), "{table}");
    assert!(
        !table.contains("<td>TZS</td><td class=\"n\">25000.00</td><td class=\"n\">0"),
        "no TZS cost"
    );
}
