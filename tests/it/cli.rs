//! The binary's admin commands: one JSON object with --json, honest exit codes.

use std::process::{Command, Output};

use serde_json::{Value, json};
use sqlx::PgPool;

fn database_url(name: &str) -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/copcca_sms_test".into());
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(name);
    url.to_string()
}

async fn cli(pool: &PgPool, args: &[&str]) -> Output {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
        .args(args)
        .env("DATABASE_URL", database_url(&db))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs `copcca-sms admin --json <args>` against `pool`'s database off the test's runtime (so
/// in-process servers keep answering) and returns its one JSON object; panics if it fails.
pub async fn run_admin_json(pool: &PgPool, args: &[&str]) -> Value {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut full = vec!["admin".to_string(), "--json".to_string()];
    full.extend(args.iter().map(|a| a.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .args(&full)
            .env("DATABASE_URL", database_url(&db))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

fn json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "expected one JSON line, got {stdout:?}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[sqlx::test]
async fn admin_commands_print_one_json_object(pool: PgPool) {
    let out = cli(
        &pool,
        &[
            "admin",
            "--json",
            "create-company",
            "--name",
            "Duka Bora",
            "--country",
            "TZ",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let company = json(&out);
    assert_eq!(
        (company["country"].as_str(), company["currency"].as_str()),
        (Some("TZ"), Some("TZS"))
    );
    let id = company["id"].as_str().unwrap().to_string();

    let user = json(
        &cli(
            &pool,
            &[
                "admin",
                "--json",
                "create-user",
                "--company",
                &id,
                "--role",
                "admin",
            ],
        )
        .await,
    );
    assert!(
        user["token"].as_str().unwrap().split('.').count() == 3,
        "{user}"
    );
    assert_eq!(user["company_id"].as_str(), Some(id.as_str()));

    let key = json(
        &cli(
            &pool,
            &[
                "admin",
                "--json",
                "create-api-key",
                "--company",
                &id,
                "--name",
                "crm",
            ],
        )
        .await,
    );
    assert!(key["key"].as_str().unwrap().starts_with("csk_"));

    let adj = json(
        &cli(
            &pool,
            &[
                "admin",
                "--json",
                "adjust",
                "--company",
                &id,
                "--credits",
                "40",
                "--reason",
                "trial",
            ],
        )
        .await,
    );
    assert_eq!(adj["balance"]["available"], 40);
    let out = cli(
        &pool,
        &[
            "admin",
            "--json",
            "adjust",
            "--company",
            &id,
            "--credits",
            "-41",
            "--reason",
            "x",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap()
            .contains("insufficient credits")
    );

    let balance = json(&cli(&pool, &["admin", "--json", "balance", "--company", &id]).await);
    assert_eq!(
        (balance["available"].as_i64(), balance["reserved"].as_i64()),
        (Some(40), Some(0))
    );

    let out = cli(&pool, &["admin", "--json", "audit"]).await;
    assert!(out.status.success());
    let full = json(&out);
    assert_eq!(full["clean"], true);
    let checkpoint = full["checkpoint"]
        .as_i64()
        .expect("a clean audit records a checkpoint");
    // Since that checkpoint: nothing new to read.
    let out = cli(&pool, &["admin", "--json", "audit", "--since-checkpoint"]).await;
    assert!(out.status.success());
    let since = json(&out);
    assert_eq!(
        (
            &since["since_entry"],
            &since["entries"],
            &since["checkpoint"]
        ),
        (&json!(checkpoint), &json!(0), &json!(checkpoint))
    );
}

#[sqlx::test]
async fn audit_exits_non_zero_when_an_invariant_fails(pool: PgPool) {
    let company = crate::support::company_with(&pool, 5).await.id;
    sqlx::query("UPDATE balances SET available = 99 WHERE company_id = $1")
        .bind(company)
        .execute(&pool)
        .await
        .unwrap();
    let out = cli(&pool, &["admin", "--json", "audit"]).await;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["clean"], false);
    assert_eq!(
        report["violations"][0]["invariant"],
        "balance_equals_entries"
    );
}

#[sqlx::test]
async fn work_runs_until_sigterm_and_bad_config_names_the_variable(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
        .arg("work")
        .env("DATABASE_URL", database_url(&db))
        .env(
            "REDIS_PREFIX",
            format!("cli-{}", uuid::Uuid::new_v4().simple()),
        )
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "work exited on its own"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "work did not stop cleanly on SIGTERM: {status}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
        .arg("migrate")
        .env("REDIS_URL", "http://nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_URL"));
}

#[sqlx::test]
async fn work_started_while_postgresql_is_unreachable_waits_for_it_then_runs(pool: PgPool) {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    // PostgreSQL behind a proxy that refuses every connection for now.
    let proxy = crate::proxy::CuttableProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    proxy.cut();
    let mut url = url::Url::parse(&database_url(&db)).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let start = |wait: &str| {
        Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .arg("work")
            .env("DATABASE_URL", url.as_str())
            .env("STARTUP_WAIT_SECS", wait)
            .env(
                "REDIS_PREFIX",
                format!("cli-{}", uuid::Uuid::new_v4().simple()),
            )
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "text")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };

    // With no patience it gives up, as a supervisor expects: exit 1, naming the cause.
    // (Waited for off the runtime: the proxy's tasks run on it.)
    let impatient = start("0");
    let impatient = tokio::task::spawn_blocking(move || impatient.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(impatient.status.code(), Some(1));

    let mut child = start("30");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "work gave up while PostgreSQL was unreachable"
    );
    proxy.restore();
    // Its log says when the workers run; both streams are read, wherever the log goes.
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let started = Instant::now();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("workers running")) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "work never started: {seen:#?}"
        );
        match rx.try_recv() {
            Ok(line) => seen.push(line),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("not reachable yet")),
        "{seen:#?}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn dead_letters_are_listed_shown_and_redriven_from_the_cli() {
    use redis::AsyncCommands;
    let prefix = format!("cli-{}", uuid::Uuid::new_v4().simple());
    let queues = copcca_sms::queue::Queues::connect(&crate::queue::redis_url(), &prefix)
        .await
        .unwrap();
    let store = queues.store("sms");
    let _: String = queues
        .connection()
        .xadd(
            &store.keys.dead,
            "*",
            &[
                ("id", "job-1"),
                ("args", r#"{"message_id":"x"}"#),
                ("attempt", "8"),
                ("max", "8"),
                ("idem", ""),
                ("enq", "0"),
                ("error", "gave up"),
                ("failed_at", "1"),
            ],
        )
        .await
        .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .args(args)
            .env("REDIS_PREFIX", &prefix)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let listed = json(&run(&["admin", "--json", "jobs", "dead"]));
    let id = listed["dead"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sms/"), "{listed}");
    assert_eq!(listed["dead"][0]["error"], "gave up");
    let shown = json(&run(&["admin", "--json", "jobs", "show", &id]));
    assert_eq!(shown["job"]["id"], "job-1");

    let out = run(&["admin", "--json", "jobs", "retry", &id]);
    assert!(out.status.success());
    assert_eq!(json(&out)["job_id"], "job-1");
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.ready, stats.dead), (1, 0));
    let again = run(&["admin", "--json", "jobs", "retry", &id]);
    assert!(!again.status.success(), "a dead letter is re-driven once");
    let stats = json(&run(&["admin", "--json", "jobs", "stats"]));
    assert_eq!(stats["queues"]["sms"]["ready"], 1);
}

#[sqlx::test]
async fn in_production_work_and_run_refuse_to_start_without_an_sms_provider(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    for command in ["work", "run"] {
        let out = Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .arg(command)
            .env("DATABASE_URL", database_url(&db))
            .env("COPCCA_ENV", "production")
            .env(
                "JWT_SECRET",
                "a-production-jwt-secret-of-enough-length-0123456789",
            )
            .env(
                "SETTINGS_KEY",
                "0001020304050607080910111213141516171819202122232425262728293031",
            )
            .env_remove("TWILIO_ACCOUNT_SID")
            .env_remove("TWILIO_AUTH_TOKEN")
            .env_remove("TWILIO_FROM")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{command}: {stderr}");
        assert!(
            stderr.contains("no SMS provider") && stderr.contains("TWILIO_ACCOUNT_SID"),
            "{command}: {stderr}"
        );
    }
}

#[sqlx::test]
async fn the_rate_card_is_shown_set_and_removed_from_the_cli(pool: PgPool) {
    let card = run_admin_json(&pool, &["rate-card", "show"]).await;
    let prefixes = |card: &Value| -> Vec<(String, i64, bool)> {
        card["rates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["prefix"].as_str().unwrap().to_string(),
                    r["credits_per_segment"].as_i64().unwrap(),
                    r["allowed"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        prefixes(&card),
        [("254".into(), 1, true), ("255".into(), 1, true)]
    );
    assert!(
        card["special_ranges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["enabled"] == false)
    );

    let set = run_admin_json(
        &pool,
        &["rate-card", "set", "--prefix", "+44", "--credits", "3"],
    )
    .await;
    assert_eq!(set["change"]["actor"], "cli:admin");
    assert_eq!(
        set["change"]["after"],
        serde_json::json!({"rates": {"44": {"credits_per_segment": 3, "allowed": true}}})
    );
    run_admin_json(
        &pool,
        &[
            "rate-card",
            "set",
            "--prefix",
            "4474",
            "--credits",
            "1",
            "--forbid",
        ],
    )
    .await;
    let enabled = run_admin_json(&pool, &["rate-card", "enable-range", "satellite"]).await;
    assert_eq!(
        enabled["change"]["after"],
        serde_json::json!({"special_ranges": {"satellite": true}})
    );
    let removed = run_admin_json(&pool, &["rate-card", "remove", "--prefix", "44"]).await;
    assert_eq!(
        prefixes(&removed["card"]),
        [
            ("254".into(), 1, true),
            ("255".into(), 1, true),
            ("4474".into(), 1, false)
        ]
    );
    assert_eq!(
        removed["change"]["after"],
        serde_json::json!({"rates": {"44": null}})
    );
    let history = run_admin_json(&pool, &["rate-card", "changes"]).await;
    assert_eq!(history["changes"].as_array().unwrap().len(), 4);

    // Refused: nothing written, exit 1, the reason on one JSON line.
    for args in [
        &["rate-card", "set", "--prefix", "255", "--credits", "2"][..],
        &["rate-card", "set", "--prefix", "33", "--credits", "0"],
        &["rate-card", "remove", "--prefix", "254"],
        &["rate-card", "remove", "--prefix", "33"],
    ] {
        let mut full = vec!["admin", "--json"];
        full.extend_from_slice(args);
        let out = cli(&pool, &full).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(json(&out)["error"].is_string(), "{args:?}");
    }
    let out = cli(&pool, &["admin", "rate-card", "enable-range", "moon"]).await;
    assert!(!out.status.success());
    let after = run_admin_json(&pool, &["rate-card", "changes"]).await;
    assert_eq!(after["changes"].as_array().unwrap().len(), 4);
}
