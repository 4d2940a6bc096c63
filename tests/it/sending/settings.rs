//! Where the Twilio account comes from: the environment, else settings (encrypted), else demo.

use std::process::Command;

use copcca_sms::fakes::twilio as fake;
use copcca_sms::messages::MessageStatus;
use sqlx::PgPool;

use super::*;

const KEY: &str = "0001020304050607080910111213141516171819202122232425262728293031";

#[sqlx::test]
async fn set_twilio_checks_encrypts_and_never_prints_the_token(pool: PgPool) {
    let twilio = FakeTwilio::start().await.unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/x".into()),
    )
    .unwrap();
    url.set_path(&db);
    // The fake Twilio runs on this test's runtime: run the CLI off it, so the fake can answer.
    let run = |token: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_copcca-sms"));
        cmd.args([
            "admin",
            "--json",
            "set-twilio",
            "--account-sid",
            fake::ACCOUNT_SID,
            "--from",
            fake::FROM,
            "--auth-token",
            token,
        ])
        .env("DATABASE_URL", url.as_str())
        .env("SETTINGS_KEY", KEY)
        .env("TWILIO_API_BASE", twilio.base.as_str())
        .env("RUST_LOG", "warn");
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    let refused = run("wrong-token").await;
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("refused these credentials"),
        "{refused:?}"
    );
    assert!(!refused.status.success());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM system_settings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "refused credentials are not stored");

    let out = run(fake::AUTH_TOKEN).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !printed.contains(fake::AUTH_TOKEN),
        "the token was printed: {printed}"
    );
    assert!(printed.contains("****"), "{printed}");
    let (value, encrypted): (String, bool) = sqlx::query_as(
        "SELECT value, encrypted FROM system_settings WHERE key = 'twilio.auth_token'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(encrypted && !value.contains(fake::AUTH_TOKEN));

    // Workers built from this configuration use the account from settings.
    let config = crate::support::config(&[
        ("SETTINGS_KEY", KEY),
        ("TWILIO_API_BASE", twilio.base.as_str()),
    ]);
    let queues = Queues::connect(
        &crate::queue::redis_url(),
        &format!("set-{}", uuid::Uuid::new_v4().simple()),
    )
    .await
    .unwrap();
    let deps = Deps::load(pool.clone(), queues.clone(), &config)
        .await
        .unwrap();
    assert_eq!(deps.providers.current().sms.twilio.name(), "twilio");
    // Without the key the stored secret is unreadable: demo mode, never a crash.
    let without_key = crate::support::config(&[]);
    assert_eq!(
        Deps::load(pool, queues, &without_key)
            .await
            .unwrap()
            .providers
            .current()
            .sms
            .twilio
            .name(),
        "demo"
    );
}

#[sqlx::test]
async fn with_no_account_the_demo_provider_logs_messages_as_sent(pool: PgPool) {
    let mut h = Harness::new(pool, 5).await;
    h.deps.change_providers(|p| p.sms.twilio = SmsGateway::Demo);
    let id = h.accept("0754123456", "Habari").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.provider.as_deref()),
        (MessageStatus::Sent, Some("demo"))
    );
    assert!(m.view.provider_id.unwrap().starts_with("DM"));
    assert!(h.twilio.requests().is_empty(), "nothing left the machine");
    assert_eq!(h.available().await, 4, "charged as for real");
    h.audit_clean().await;
}
