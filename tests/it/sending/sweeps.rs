//! Overdue-debt sweeps: due debts reminded in their language as one batch, once per run however
//! many sweeps run at once or again, never past the reminder cap, never to an opted-out number.

use std::sync::Arc;

use copcca_jobs::{Job, SweepOverdueDebts};
use copcca_sms::messages::MessageStatus;
use copcca_sms::queue::cron;
use sqlx::PgPool;

use super::*;

/// Sweeps on: overdue by `min` days, not reminded within `interval` days, at most `max` reminders.
async fn enable_sweeps(h: &Harness, min: i32, interval: i32, max: i32) {
    sqlx::query(
        "UPDATE companies SET sweep_enabled = true, sweep_min_overdue_days = $2, sweep_interval_days = $3,
                sweep_max_reminders = $4, payment_link = 'https://pay.duka.co.tz' WHERE id = $1",
    )
    .bind(h.company.id)
    .bind(min)
    .bind(interval)
    .bind(max)
    .execute(h.pool())
    .await
    .unwrap();
}

struct NewDebt<'a> {
    company: copcca_sms::domain::CompanyId,
    name: &'a str,
    phone: &'a str,
    amount: &'a str,
    currency: &'a str,
    overdue_days: u64,
    invoice: Option<&'a str>,
    language: &'a str,
}

impl Harness {
    fn debt<'a>(&self, name: &'a str, phone: &'a str, overdue_days: u64) -> NewDebt<'a> {
        NewDebt {
            company: self.company.id,
            name,
            phone,
            amount: "20000",
            currency: "TZS",
            overdue_days,
            invoice: Some("INV-1"),
            language: "en",
        }
    }

    /// The harness clock's date in Dar es Salaam.
    fn today(&self) -> chrono::NaiveDate {
        (self.deps.clock)()
            .with_timezone(&chrono_tz::Africa::Dar_es_Salaam)
            .date_naive()
    }

    async fn insert(&self, d: NewDebt<'_>) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        let due = self.today() - chrono::Days::new(d.overdue_days);
        sqlx::query(
            "INSERT INTO debts (id, company_id, customer_name, phone, amount, currency, due_date, invoice_number, language)
             VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(d.company)
        .bind(d.name)
        .bind(d.phone)
        .bind(d.amount)
        .bind(d.currency)
        .bind(due)
        .bind(d.invoice)
        .bind(d.language)
        .execute(self.pool())
        .await
        .unwrap();
        id
    }

    /// The workers' dependencies with the clock `days` later.
    fn days_later(&self, days: i64) -> Deps {
        let at = (self.deps.clock)() + chrono::Duration::days(days);
        let mut deps = self.deps.clone();
        deps.clock = Arc::new(move || at);
        deps
    }

    async fn reminders(&self, debt: uuid::Uuid) -> (i32, i64) {
        let count: i32 = sqlx::query_scalar("SELECT reminders_sent FROM debts WHERE id = $1")
            .bind(debt)
            .fetch_one(self.pool())
            .await
            .unwrap();
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE debt_id = $1")
            .bind(debt)
            .fetch_one(self.pool())
            .await
            .unwrap();
        (count, messages)
    }
}

fn run(name: &str) -> SweepOverdueDebts {
    SweepOverdueDebts {
        company_id: None,
        run: Some(name.into()),
    }
}

#[sqlx::test]
async fn concurrent_sweeps_remind_each_due_debt_once_in_its_language(pool: PgPool) {
    let h = Harness::new(pool, 50).await;
    enable_sweeps(&h, 3, 7, 2).await;
    let en = h.insert(h.debt("Asha Mwinyi", "0754000001", 10)).await;
    let sw = h
        .insert(NewDebt {
            language: "sw",
            amount: "150000",
            invoice: Some("INV-2"),
            ..h.debt("Juma Hamisi", "+255754000002", 5)
        })
        .await;
    let not_yet = h.insert(h.debt("Not Yet", "0754000003", 1)).await;
    let paid = h.insert(h.debt("Paid", "0754000004", 20)).await;
    sqlx::query("UPDATE debts SET status = 'paid' WHERE id = $1")
        .bind(paid)
        .execute(h.pool())
        .await
        .unwrap();
    let recent = h.insert(h.debt("Recent", "0754000005", 20)).await;
    sqlx::query("UPDATE debts SET reminders_sent = 1, last_reminded_at = now() - interval '2 days' WHERE id = $1")
        .bind(recent)
        .execute(h.pool())
        .await
        .unwrap();
    let opted = h.insert(h.debt("Opted Out", "0754000006", 20)).await;
    sqlx::query(
        "INSERT INTO opt_outs (company_id, phone, source) VALUES ($1, '+255754000006', 'api')",
    )
    .bind(h.company.id)
    .execute(h.pool())
    .await
    .unwrap();
    let holed = h
        .insert(NewDebt {
            invoice: None,
            ..h.debt("No Invoice", "0754000007", 20)
        })
        .await;

    // Two schedulers with the same tick, and an operator's run, all at once.
    let (tick, operator) = (run("cron:1"), run("admin:1"));
    let (a, b, c) = tokio::join!(
        workers::sweep(&h.deps, &tick),
        workers::sweep(&h.deps, &tick),
        workers::sweep(&h.deps, &operator),
    );
    let reports = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(
        reports.iter().map(|r| r.reminded).sum::<usize>(),
        2,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.batches.len()).sum::<usize>(),
        1,
        "one batch"
    );
    for (debt, expected) in [
        (en, (1, 1)),
        (sw, (1, 1)),
        (not_yet, (0, 0)),
        (paid, (0, 0)),
        (recent, (1, 0)),
        (opted, (0, 0)),
        (holed, (0, 0)),
    ] {
        assert_eq!(h.reminders(debt).await, expected, "debt {debt}");
    }
    let stamped: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_reminded_at FROM debts WHERE id = $1")
            .bind(en)
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(stamped, Some((h.deps.clock)()));

    h.drain(DRAIN).await;
    let mut sent: Vec<(String, String)> = h
        .twilio
        .messages()
        .into_iter()
        .map(|m| (m.to, m.body))
        .collect();
    sent.sort();
    let due = |days: u64| {
        let d = h.today() - chrono::Days::new(days);
        (
            d.format("%-d %b %Y").to_string(),
            d.format("%d/%m/%Y").to_string(),
        )
    };
    assert_eq!(
        sent,
        [
            (
                "+255754000001".to_string(),
                format!(
                    "Hello Asha Mwinyi, this is a reminder that invoice INV-1 for TZS 20,000 was due on {}. Please pay at https://pay.duka.co.tz. If you have already paid, please ignore this message. Thank you, Duka la Mama.",
                    due(10).0
                )
            ),
            (
                "+255754000002".to_string(),
                format!(
                    "Habari Juma Hamisi, tunakukumbusha kuwa ankara namba INV-2 ya TZS 150,000 ilipaswa kulipwa tarehe {}. Tafadhali lipa kupitia https://pay.duka.co.tz. Kama umeshalipa, puuza ujumbe huu. Asante, Duka la Mama.",
                    due(5).1
                )
            ),
        ]
    );
    let logged: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT sent_by, invoice_number FROM sms_logs WHERE debt_id = $1")
            .bind(en)
            .fetch_all(h.pool())
            .await
            .unwrap();
    assert_eq!(logged, [("sweep".to_string(), Some("INV-1".to_string()))]);
    assert_eq!(
        h.available().await,
        50 - 4,
        "two reminders of two segments each"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_rerun_sends_nothing_new_and_the_cap_ends_reminders(pool: PgPool) {
    let h = Harness::new(pool, 50).await;
    enable_sweeps(&h, 1, 7, 2).await;
    let debt = h.insert(h.debt("Asha", "0754000001", 10)).await;

    let first = workers::sweep(&h.deps, &run("cron:100")).await.unwrap();
    assert_eq!(first.reminded, 1);
    // The same run again, at once and after the interval has passed: nothing new.
    for deps in [h.deps.clone(), h.days_later(8)] {
        let again = workers::sweep(&deps, &run("cron:100")).await.unwrap();
        assert_eq!(again.reminded, 0, "{again:?}");
    }
    assert_eq!(h.reminders(debt).await, (1, 1));
    // A later run within the interval: nothing; after it: the second reminder.
    let soon = workers::sweep(&h.days_later(3), &run("cron:200"))
        .await
        .unwrap();
    assert_eq!(soon.reminded, 0);
    let later = workers::sweep(&h.days_later(8), &run("cron:300"))
        .await
        .unwrap();
    assert_eq!(later.reminded, 1);
    // The cap is two: nothing more, however long it stays unpaid.
    for (days, name) in [(16, "cron:400"), (60, "cron:500")] {
        let capped = workers::sweep(&h.days_later(days), &run(name))
            .await
            .unwrap();
        assert_eq!(capped.reminded, 0, "{name}");
    }
    assert_eq!(h.reminders(debt).await, (2, 2));
    // A company whose cap is zero is never reminded.
    sqlx::query("UPDATE companies SET sweep_max_reminders = 0 WHERE id = $1")
        .bind(h.company.id)
        .execute(h.pool())
        .await
        .unwrap();
    let fresh = h.insert(h.debt("Neema", "0754000002", 10)).await;
    let none = workers::sweep(&h.days_later(60), &run("cron:600"))
        .await
        .unwrap();
    assert_eq!((none.reminded, h.reminders(fresh).await), (0, (0, 0)));

    h.drain(DRAIN).await;
    assert_eq!(h.twilio.messages().len(), 2);
    assert_eq!(h.available().await, 50 - 4);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_sweep_rerun_after_a_crash_reminds_nobody_twice(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    enable_sweeps(&h, 1, 7, 3).await;
    let debt = h.insert(h.debt("Asha", "0754000001", 10)).await;
    assert_eq!(
        workers::sweep(&h.deps, &run("cron:7"))
            .await
            .unwrap()
            .reminded,
        1
    );
    // The process dies after the commit, and its SendSms jobs are lost with Redis.
    crate::support::forget_jobs(&h.deps.queues).await;
    // The queue retries the sweep job: nothing new. The reconciler sends the stranded reminder.
    assert_eq!(
        workers::sweep(&h.deps, &run("cron:7"))
            .await
            .unwrap()
            .reminded,
        0
    );
    let report = h.reconcile(Duration::ZERO).await;
    assert_eq!(report.requeued, 1);
    h.drain(DRAIN).await;
    assert_eq!(h.reminders(debt).await, (1, 1));
    let status: String = sqlx::query_scalar("SELECT status FROM messages WHERE debt_id = $1")
        .bind(debt)
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(status, MessageStatus::Sent.as_str());
    assert_eq!(h.twilio.messages().len(), 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_scheduler_enqueues_one_sweep_per_tick_and_the_workers_run_it(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    enable_sweeps(&h, 1, 7, 3).await;
    let ours = h.insert(h.debt("Asha", "0754000001", 10)).await;
    let other = accounts::create_company(h.pool(), "No Sweeps", copcca_sms::domain::Country::TZ)
        .await
        .unwrap();
    let theirs = h
        .insert(NewDebt {
            company: other.id,
            ..h.debt("Baraka", "0754000009", 30)
        })
        .await;

    // Two schedulers fire the same tick: one job.
    let make = |tick: u64| SweepOverdueDebts {
        company_id: None,
        run: Some(format!("cron:{tick}")),
    };
    let tick = 1_800_000_000;
    let first = cron::fire(&h.deps.queues, SweepOverdueDebts::NAME, tick, make)
        .await
        .unwrap();
    let second = cron::fire(&h.deps.queues, SweepOverdueDebts::NAME, tick, make)
        .await
        .unwrap();
    assert!(first.fresh && !second.fresh);
    // An on-demand sweep of the company without sweeps does nothing.
    h.deps
        .queues
        .enqueue(&SweepOverdueDebts {
            company_id: Some(other.id.0),
            run: Some("admin:1".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        h.deps
            .queues
            .store(SweepOverdueDebts::QUEUE)
            .stats()
            .await
            .unwrap()
            .ready,
        2
    );
    h.drain(DRAIN).await;
    assert_eq!(h.reminders(ours).await, (1, 1));
    assert_eq!(h.reminders(theirs).await, (0, 0));
    let sent = h.twilio.messages();
    assert_eq!((sent.len(), sent[0].to.as_str()), (1, "+255754000001"));
    let run: Option<String> =
        sqlx::query_scalar("SELECT sweep_run FROM messages WHERE debt_id = $1")
            .bind(ours)
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(run.as_deref(), Some("cron:1800000000"));
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_operator_sweeps_on_demand_from_the_cli(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    enable_sweeps(&h, 1, 7, 3).await;
    let debt = h.insert(h.debt("Asha", "0754000001", 10)).await;
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(h.pool())
        .await
        .unwrap();
    let mut url = url::Url::parse(&h.app.state.config.database_url).unwrap();
    url.set_path(&db);
    let company = h.company.id.to_string();
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .args(["admin", "--json", "sweep"])
            .args(args)
            .env("DATABASE_URL", url.as_str())
            .env("REDIS_URL", crate::queue::redis_url())
            .env("REDIS_PREFIX", h.deps.queues.prefix())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.success(), v)
    };
    let (ok, v) = admin(&["--company", &company, "--run", "ops-1"]);
    assert!(ok, "{v}");
    assert_eq!(
        (v["fresh"].as_bool(), v["run"].as_str()),
        (Some(true), Some("ops-1"))
    );
    let (_, v) = admin(&["--company", &company, "--run", "ops-1"]);
    assert_eq!(v["fresh"], false, "the same run is the same job");
    let (_, v) = admin(&[]);
    assert!(v["run"].as_str().unwrap().starts_with("admin:"), "{v}");
    let (ok, v) = admin(&["--company", &uuid::Uuid::now_v7().to_string()]);
    assert!(
        !ok && v["error"].as_str().unwrap().contains("no company"),
        "{v}"
    );

    h.drain(DRAIN).await;
    assert_eq!(h.reminders(debt).await, (1, 1), "two sweeps, one reminder");
    assert_eq!(h.twilio.messages().len(), 1);
    h.audit_clean().await;
}

/// A company whose stored time zone nobody knows is skipped by the sweep (and logged), neither
/// swept on Dar es Salaam's calendar nor stopping the sweep of every other company.
#[sqlx::test]
async fn a_company_with_an_unknown_time_zone_is_skipped_and_the_rest_are_swept(pool: PgPool) {
    let h = Harness::new(pool, 50).await;
    enable_sweeps(&h, 3, 7, 2).await;
    let ours = h.insert(h.debt("Asha Mwinyi", "0754000001", 10)).await;
    let lost = accounts::create_company(
        h.pool(),
        "Duka la Atlantis",
        copcca_sms::domain::Country::TZ,
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE companies SET sweep_enabled = true, sweep_min_overdue_days = 3, sweep_interval_days = 7,
                sweep_max_reminders = 2, timezone = 'Africa/Atlantis' WHERE id = $1",
    )
    .bind(lost.id)
    .execute(h.pool())
    .await
    .unwrap();
    let theirs = h
        .insert(NewDebt {
            company: lost.id,
            ..h.debt("Juma Hamisi", "0754000002", 10)
        })
        .await;

    let report = workers::sweep(&h.deps, &run("cron:7")).await.unwrap();
    assert_eq!((report.companies, report.reminded), (1, 1), "{report:?}");
    assert_eq!(h.reminders(ours).await, (1, 1));
    assert_eq!(h.reminders(theirs).await, (0, 0));
}
