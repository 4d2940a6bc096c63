//! The operator's provider settings: `/admin/settings/{twilio,stripe,mpesa}` and
//! `admin rotate-settings-key`.

use copcca_sms::domain::Role;
use copcca_sms::fakes::twilio::{self as fake, FakeTwilio};
use copcca_sms::settings::{self, Cipher, SettingsError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::problem;
use crate::support::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn key_bytes(hex_key: &str) -> [u8; 32] {
    copcca_sms::config::parse_settings_key(hex_key).unwrap()
}

async fn stored(pool: &PgPool, name: &str) -> Option<(String, bool)> {
    sqlx::query_as("SELECT value, encrypted FROM system_settings WHERE key = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn twilio_settings_are_checked_stored_encrypted_and_shown_masked(pool: PgPool) {
    let twilio = FakeTwilio::start().await.unwrap();
    let base = twilio.base.to_string();
    let app = spawn_app_with(
        pool.clone(),
        &[("SETTINGS_KEY", KEY), ("TWILIO_API_BASE", &base)],
    )
    .await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let url = app.url("/admin/settings/twilio");
    let get = || app.client.get(&url).bearer_auth(&admin).send();
    let put = |body: Value| app.client.put(&url).bearer_auth(&admin).json(&body).send();

    let empty: Value = get().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&empty["source"], &empty["auth_token"], &empty["stored"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );

    // Twilio refuses the token: nothing is stored.
    let body = |token: &str| json!({"account_sid": fake::ACCOUNT_SID, "auth_token": token, "from": fake::FROM});
    let p = problem(
        put(body("not-the-token-0000")).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "credentials_refused",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("20003"), "{p}");
    assert!(stored(&pool, "twilio.auth_token").await.is_none());

    let r = put(body(fake::AUTH_TOKEN)).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(fake::AUTH_TOKEN), "{text}");
    let view: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["source"], "settings");
    assert_eq!(view["account_sid"], fake::ACCOUNT_SID);
    assert_eq!(view["from"], fake::FROM);
    assert_eq!(view["auth_token"], "****oken");
    assert!(
        view["stored"]["updated_by"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    let (first, encrypted) = stored(&pool, "twilio.auth_token").await.unwrap();
    assert!(encrypted && !first.contains(fake::AUTH_TOKEN));
    assert_eq!(
        stored(&pool, "twilio.account_sid").await,
        Some((fake::ACCOUNT_SID.to_string(), false)),
        "the SID is not secret"
    );
    let get_text = get().await.unwrap().text().await.unwrap();
    assert!(!get_text.contains(fake::AUTH_TOKEN));
    assert_eq!(serde_json::from_str::<Value>(&get_text).unwrap(), view);

    // A second write of the same token seals it under a fresh nonce.
    assert_eq!(put(body(fake::AUTH_TOKEN)).await.unwrap().status(), 200);
    let (second, _) = stored(&pool, "twilio.auth_token").await.unwrap();
    assert_ne!(first, second);
    // A refused change leaves the stored account alone.
    put(body("another-wrong-token")).await.unwrap();
    let account = settings::twilio(&pool, Some(&Cipher::new(&key_bytes(KEY))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.auth_token.expose(), fake::AUTH_TOKEN);

    // Malformed fields: 422 naming each.
    let p = problem(
        put(json!({"account_sid": "XX1", "auth_token": "", "from": ""}))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<_> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["account_sid", "auth_token", "from"]);

    // When the environment sets an account, it is the one in force, and the view says so.
    let env_app = spawn_app_with(
        pool.clone(),
        &[
            ("SETTINGS_KEY", KEY),
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000009"),
            ("TWILIO_AUTH_TOKEN", "environment-token-5678"),
            ("TWILIO_FROM", "COPCCA"),
        ],
    )
    .await;
    let view: Value = env_app
        .client
        .get(env_app.url("/admin/settings/twilio"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            view["source"].as_str(),
            view["from"].as_str(),
            view["auth_token"].as_str()
        ),
        (Some("environment"), Some("COPCCA"), Some("****5678"))
    );
    assert!(view["stored"]["updated_at"].is_string(), "{view}");
}

#[sqlx::test]
async fn settings_need_the_key_and_a_reachable_twilio(pool: PgPool) {
    let body = json!({"account_sid": fake::ACCOUNT_SID, "auth_token": fake::AUTH_TOKEN, "from": fake::FROM});
    // No SETTINGS_KEY: nothing can be stored.
    let app = spawn_app(pool.clone()).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    for (path, body) in [
        ("/admin/settings/twilio", body.clone()),
        (
            "/admin/settings/stripe",
            json!({"secret_key": "sk_test_abc", "webhook_secret": "whsec_abc"}),
        ),
    ] {
        let r = app
            .client
            .put(app.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::SERVICE_UNAVAILABLE, "settings_key_missing").await;
    }
    // Twilio unreachable: 502, nothing stored.
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("SETTINGS_KEY", KEY),
            ("TWILIO_API_BASE", "http://127.0.0.1:1"),
        ],
    )
    .await;
    let r = app
        .client
        .put(app.url("/admin/settings/twilio"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_GATEWAY, "provider_unavailable").await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM system_settings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[sqlx::test]
async fn stripe_and_mpesa_settings_are_stored_encrypted_and_the_environment_wins(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("SETTINGS_KEY", KEY)]).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let put = |path: &str, body: Value| {
        app.client
            .put(app.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let stripe = json!({"secret_key": "sk_test_51Abcdefghijklmnop1234", "webhook_secret": "whsec_Zyxwvutsrqponm9876"});
    let r = put("/admin/settings/stripe", stripe.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        view,
        json!({"source": "settings", "secret_key": "****1234", "webhook_secret": "****9876",
               "stored": view["stored"].clone()})
    );
    let mpesa = json!({"consumer_key": "ConsumerKey0000abcd", "consumer_secret": "ConsumerSecret0000efgh",
                       "shortcode": "174379", "passkey": "Passkey00000000000000ijkl"});
    let r = put("/admin/settings/mpesa", mpesa.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &view["consumer_key"],
            &view["consumer_secret"],
            &view["shortcode"],
            &view["passkey"]
        ),
        (
            &json!("****abcd"),
            &json!("****efgh"),
            &json!("174379"),
            &json!("****ijkl")
        )
    );
    for (name, secret) in [
        ("stripe.secret_key", true),
        ("stripe.webhook_secret", true),
        ("mpesa.consumer_key", true),
        ("mpesa.consumer_secret", true),
        ("mpesa.passkey", true),
        ("mpesa.shortcode", false),
    ] {
        let (value, encrypted) = stored(&pool, name).await.unwrap();
        assert_eq!(encrypted, secret, "{name}");
        assert!(!secret || !value.contains("0000"), "{name} stored in clear");
    }

    // Shapes are checked.
    let r = put(
        "/admin/settings/stripe",
        json!({"secret_key": "pk_live_public", "webhook_secret": "nope"}),
    )
    .await
    .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(p["errors"].as_array().unwrap().len(), 2);
    let r = put(
        "/admin/settings/mpesa",
        json!({"consumer_key": "k", "consumer_secret": "s", "shortcode": "12ab", "passkey": "p"}),
    )
    .await
    .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(p["errors"][0]["field"], "shortcode");
    let r = put(
        "/admin/settings/mpesa",
        json!({"consumer_key": "k", "consumer_secret": "s", "shortcode": "174379"}),
    )
    .await
    .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // What the payments code reads: settings, unless the environment sets the provider.
    let config = config(&[("SETTINGS_KEY", KEY)]);
    let s = settings::effective_stripe(&pool, &config)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.secret_key.expose(), "sk_test_51Abcdefghijklmnop1234");
    let m = settings::effective_mpesa(&pool, &config)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.shortcode.as_str(), m.passkey.expose()),
        ("174379", "Passkey00000000000000ijkl")
    );
    let env = config_with_stripe_env(&[
        ("STRIPE_SECRET_KEY", "sk_live_fromenv"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_fromenv"),
    ]);
    let s = settings::effective_stripe(&pool, &env)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.secret_key.expose(), "sk_live_fromenv");
    // Half an environment is an error, never a mix of two accounts.
    let half = config_with_stripe_env(&[("STRIPE_SECRET_KEY", "sk_live_fromenv")]);
    assert!(matches!(
        settings::effective_stripe(&pool, &half).await,
        Err(SettingsError::IncompleteEnv("STRIPE_WEBHOOK_SECRET"))
    ));
    // Without the key, stored secrets are simply not there.
    assert!(
        settings::effective_mpesa(&pool, &crate::support::config(&[]))
            .await
            .unwrap()
            .is_none()
    );
    let half_app = spawn_app_with(
        pool.clone(),
        &[
            ("SETTINGS_KEY", KEY),
            ("MPESA_CONSUMER_KEY", "only-this-one"),
        ],
    )
    .await;
    let r = half_app
        .client
        .get(half_app.url("/admin/settings/mpesa"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    problem(
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "settings_incomplete_environment",
    )
    .await;
}

fn config_with_stripe_env(vars: &[(&str, &str)]) -> copcca_sms::config::Config {
    let mut all = vec![("SETTINGS_KEY", KEY)];
    all.extend_from_slice(vars);
    config(&all)
}

/// Runs `copcca-sms admin --json rotate-settings-key` on the test's database.
async fn rotate(pool: &PgPool, current: &str, new: &str) -> (bool, Value, String) {
    let url = crate::observability::database_url(pool).await;
    let (current, new) = (current.to_string(), new.to_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .args(["admin", "--json", "rotate-settings-key", "--new-key", &new])
            .env("DATABASE_URL", url)
            .env("SETTINGS_KEY", current)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let printed = stdout.clone() + &String::from_utf8_lossy(&out.stderr);
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), value, printed)
}

#[sqlx::test]
async fn rotating_the_key_keeps_settings_readable_with_the_new_key_only(pool: PgPool) {
    let old = Cipher::new(&key_bytes(KEY));
    settings::set_twilio(
        &pool,
        &old,
        &settings::TwilioSettings {
            account_sid: fake::ACCOUNT_SID.into(),
            auth_token: copcca_sms::config::Secret::new(fake::AUTH_TOKEN),
            from: fake::FROM.into(),
        },
        "test",
    )
    .await
    .unwrap();
    settings::set_stripe(
        &pool,
        &old,
        &settings::StripeSettings {
            secret_key: copcca_sms::config::Secret::new("sk_test_rotate_me_0001"),
            webhook_secret: copcca_sms::config::Secret::new("whsec_rotate_me_0002"),
        },
        "test",
    )
    .await
    .unwrap();
    let before: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM system_settings ORDER BY key")
            .fetch_all(&pool)
            .await
            .unwrap();

    // The new key in base64 (the same 32 bytes as NEW_HEX).
    let new_hex = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    use base64::Engine;
    let new_b64 = base64::engine::general_purpose::STANDARD.encode(key_bytes(new_hex));
    let (ok, report, printed) = rotate(&pool, KEY, &new_b64).await;
    assert!(ok, "{printed}");
    assert_eq!(
        report["rotated"],
        json!([
            "stripe.secret_key",
            "stripe.webhook_secret",
            "twilio.auth_token"
        ])
    );
    assert_eq!(report["old_fingerprint"], old.fingerprint());
    for secret in [KEY, new_hex, new_b64.as_str(), fake::AUTH_TOKEN] {
        assert!(!printed.contains(secret), "{printed}");
    }
    let after: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM system_settings ORDER BY key")
            .fetch_all(&pool)
            .await
            .unwrap();
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        let secret = name.ends_with("token") || name.starts_with("stripe.");
        assert_eq!(was != is, secret, "{name}: only secrets change");
    }

    let new = Cipher::new(&key_bytes(new_hex));
    let t = settings::twilio(&pool, Some(&new)).await.unwrap().unwrap();
    assert_eq!(t.auth_token.expose(), fake::AUTH_TOKEN);
    let s = settings::stripe(&pool, Some(&new)).await.unwrap().unwrap();
    assert_eq!(s.webhook_secret.expose(), "whsec_rotate_me_0002");
    assert!(matches!(
        settings::twilio(&pool, Some(&old)).await,
        Err(SettingsError::Undecryptable(_))
    ));

    // The service with the new key reads them; with the old one it says it cannot.
    let admin = {
        let app = spawn_app_with(pool.clone(), &[("SETTINGS_KEY", new_hex)]).await;
        let admin = app.token(None, Role::SuperAdmin).await;
        let view: Value = app
            .client
            .get(app.url("/admin/settings/twilio"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["auth_token"], "****oken");
        admin
    };
    let stale = spawn_app_with(pool.clone(), &[("SETTINGS_KEY", KEY)]).await;
    let r = stale
        .client
        .get(stale.url("/admin/settings/stripe"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "settings_undecryptable").await;

    // Running the same rotation again changes nothing; a wrong current key is refused whole.
    let (ok, report, printed) = rotate(&pool, KEY, new_hex).await;
    assert!(ok, "{printed}");
    assert_eq!(report["rotated"], json!([]));
    assert_eq!(report["already"].as_array().unwrap().len(), 3);
    let third = "0f".repeat(32);
    let (ok, report, _) = rotate(&pool, &third, &"1e".repeat(32)).await;
    assert!(!ok);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("does not decrypt"),
        "{report}"
    );
    let t = settings::twilio(&pool, Some(&new)).await.unwrap().unwrap();
    assert_eq!(t.auth_token.expose(), fake::AUTH_TOKEN);
    let (ok, report, _) = rotate(&pool, new_hex, new_hex).await;
    assert!(!ok && report["error"].as_str().unwrap().contains("current key"));
}

#[sqlx::test]
async fn a_rotation_that_meets_an_unreadable_secret_changes_nothing(pool: PgPool) {
    let old = Cipher::new(&[1u8; 32]);
    let new = Cipher::new(&[2u8; 32]);
    settings::put(&pool, Some(&old), "a.first", "one", true, "a", "t")
        .await
        .unwrap();
    settings::put(
        &pool,
        Some(&Cipher::new(&[3u8; 32])),
        "b.stray",
        "x",
        true,
        "b",
        "t",
    )
    .await
    .unwrap();
    settings::put(&pool, Some(&old), "c.last", "three", true, "c", "t")
        .await
        .unwrap();
    let err = settings::rotate_key(&pool, &old, &new, "test")
        .await
        .unwrap_err();
    assert!(matches!(err, SettingsError::Undecryptable(ref n) if n == "b.stray"));
    for (name, value) in [("a.first", "one"), ("c.last", "three")] {
        let got = settings::get(&pool, Some(&old), name)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), value, "{name} still under the old key");
    }
}
