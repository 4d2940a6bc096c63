//! The SMS routes' accounts in settings: `/admin/settings/{beem,africastalking}`, checked with
//! the provider, stored encrypted, shown masked, overridden by the environment, and sending
//! after the next reload.

use std::time::Duration;

use copcca_sms::domain::Role;
use copcca_sms::fakes::africastalking::{self as fake_at, FakeAfricasTalking};
use copcca_sms::fakes::beem::{self as fake_beem, FakeBeem};
use copcca_sms::http::{self, AppState};
use copcca_sms::live::Providers;
use copcca_sms::routing::RouteName;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::problem;
use crate::support::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// One route's settings: its endpoint, the variable naming its fake's host, an account its fake
/// accepts and one it refuses, and the secrets of the accepted one (row name, value).
struct Case {
    route: RouteName,
    path: &'static str,
    base_var: &'static str,
    good: Value,
    refused: Value,
    secrets: Vec<(&'static str, &'static str)>,
    /// The rows stored in clear (row name, value).
    clear: Vec<(&'static str, &'static str)>,
}

fn beem() -> Case {
    Case {
        route: RouteName::Beem,
        path: "/admin/settings/beem",
        base_var: "BEEM_API_BASE",
        good: json!({"api_key": fake_beem::API_KEY, "secret_key": fake_beem::SECRET_KEY,
                     "source_addr": fake_beem::SOURCE_ADDR}),
        refused: json!({"api_key": fake_beem::API_KEY, "secret_key": "not-the-secret-key-0000",
                        "source_addr": fake_beem::SOURCE_ADDR}),
        secrets: vec![
            ("beem.api_key", fake_beem::API_KEY),
            ("beem.secret_key", fake_beem::SECRET_KEY),
        ],
        clear: vec![("beem.source_addr", fake_beem::SOURCE_ADDR)],
    }
}

fn africastalking() -> Case {
    Case {
        route: RouteName::Africastalking,
        path: "/admin/settings/africastalking",
        base_var: "AT_API_BASE",
        good: json!({"username": fake_at::USERNAME, "api_key": fake_at::API_KEY,
                     "sender_id": fake_at::SENDER_ID}),
        refused: json!({"username": fake_at::USERNAME, "api_key": "atsk_not_the_key_0000",
                        "sender_id": fake_at::SENDER_ID}),
        secrets: vec![("africastalking.api_key", fake_at::API_KEY)],
        clear: vec![
            ("africastalking.username", fake_at::USERNAME),
            ("africastalking.sender_id", fake_at::SENDER_ID),
        ],
    }
}

async fn rows(pool: &PgPool, route: RouteName) -> Vec<(String, String, bool)> {
    sqlx::query_as(
        "SELECT key, value, encrypted FROM system_settings WHERE key LIKE $1 || '.%' ORDER BY key",
    )
    .bind(route.to_string())
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The app `serve` runs: providers loaded from settings and reloaded within 100 ms of a change.
async fn spawn_live_app(pool: PgPool, overrides: &[(&str, &str)]) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut vars = vec![
        ("PUBLIC_URL", base.as_str()),
        ("SETTINGS_KEY", KEY),
        ("SETTINGS_RELOAD_MS", "100"),
    ];
    vars.extend_from_slice(overrides);
    let state = AppState::load(pool, config(&vars)).await.unwrap();
    let served = state.clone();
    tokio::spawn(async move { http::serve(listener, served, std::future::pending()).await });
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
    }
}

/// Whether `GET /admin/routes` says `route` has an account.
async fn configured(app: &TestApp, token: &str, route: RouteName) -> bool {
    route_status(app, token, route).await["configured"]
        .as_bool()
        .unwrap()
}

/// `fake` is the route's provider, accepting `case.good`.
async fn a_route_account_is_checked_stored_encrypted_and_reloaded(
    pool: PgPool,
    case: Case,
    fake: &url::Url,
) {
    let app = spawn_live_app(pool.clone(), &[(case.base_var, fake.as_str())]).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let url = app.url(case.path);
    let get = |token: &str| app.client.get(&url).bearer_auth(token).send();
    let put = |token: &str, body: &Value| app.client.put(&url).bearer_auth(token).json(body).send();

    let empty: Value = get(&admin).await.unwrap().json().await.unwrap();
    assert_eq!(
        (&empty["source"], &empty["stored"]),
        (&Value::Null, &Value::Null)
    );
    assert!(!configured(&app, &admin, case.route).await);

    // Only the operator: a company's admin may neither read nor write.
    let company = company_with(&pool, 0).await;
    let tenant = app.token(Some(company.id), Role::Admin).await;
    problem(
        get(&tenant).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    problem(
        put(&tenant, &case.good).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert!(rows(&pool, case.route).await.is_empty());

    // The provider refuses the credentials: 422, nothing stored.
    let p = problem(
        put(&admin, &case.refused).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "credentials_refused",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("refused"), "{p}");
    assert!(rows(&pool, case.route).await.is_empty());

    // Accepted: stored (secrets encrypted), shown masked, never returned.
    let r = put(&admin, &case.good).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let view: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["source"], "settings", "{view}");
    assert!(
        view["stored"]["updated_by"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    let get_text = get(&admin).await.unwrap().text().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&get_text).unwrap(), view);
    let stored = rows(&pool, case.route).await;
    assert_eq!(
        stored.len(),
        case.secrets.len() + case.clear.len(),
        "{stored:?}"
    );
    for (name, secret) in &case.secrets {
        let field = &name[name.find('.').unwrap() + 1..];
        let tail = &secret[secret.len() - 4..];
        assert_eq!(view[field], format!("****{tail}"), "{field} masked");
        assert!(!text.contains(secret) && !get_text.contains(secret));
        let (_, value, encrypted) = stored.iter().find(|(k, ..)| k == name).unwrap();
        assert!(
            *encrypted && !value.contains(secret),
            "{name} stored in clear"
        );
    }
    for (name, value) in &case.clear {
        let field = &name[name.find('.').unwrap() + 1..];
        assert_eq!(view[field], *value);
        assert!(stored.contains(&(name.to_string(), value.to_string(), false)));
    }

    // The stored account is the route's account in force, in every process after its reload.
    let providers = Providers::load(&pool, &app.state.config).await.unwrap();
    assert!(providers.sms.configured(case.route));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !configured(&app, &admin, case.route).await {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn a_beem_account_is_checked_stored_encrypted_and_reloaded(pool: PgPool) {
    let fake = FakeBeem::start().await.unwrap();
    a_route_account_is_checked_stored_encrypted_and_reloaded(pool, beem(), &fake.base).await;
}

#[sqlx::test]
async fn an_africastalking_account_is_checked_stored_encrypted_and_reloaded(pool: PgPool) {
    let fake = FakeAfricasTalking::start().await.unwrap();
    a_route_account_is_checked_stored_encrypted_and_reloaded(pool, africastalking(), &fake.base)
        .await;
}

#[sqlx::test]
async fn route_accounts_are_validated_and_the_environment_wins(pool: PgPool) {
    // Malformed fields: 422 naming each, before the provider is asked (none answers here).
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("SETTINGS_KEY", KEY),
            ("BEEM_API_BASE", "http://127.0.0.1:1"),
        ],
    )
    .await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let put = |path: &str, body: Value| {
        app.client
            .put(app.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let fields = |p: Value| -> Vec<String> {
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect()
    };
    let body = json!({"api_key": "", "secret_key": "s", "source_addr": "COPCCA-CRM-LTD"});
    let r = put("/admin/settings/beem", body).await.unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(p), ["api_key", "source_addr"]);
    let body = json!({"username": "a b", "api_key": "k", "sender_id": "!!"});
    let r = put("/admin/settings/africastalking", body).await.unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(p), ["username", "sender_id"]);
    // The provider unreachable: 502, nothing stored.
    let r = put("/admin/settings/beem", beem().good).await.unwrap();
    problem(r, StatusCode::BAD_GATEWAY, "provider_unavailable").await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM system_settings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);

    // Both accounts stored; the environment sets other ones, which win, view and route alike.
    let cipher =
        copcca_sms::settings::Cipher::new(&copcca_sms::config::parse_settings_key(KEY).unwrap());
    let secret = copcca_sms::config::Secret::new;
    copcca_sms::settings::set_beem(
        &pool,
        &cipher,
        &copcca_sms::settings::BeemSettings {
            api_key: secret(fake_beem::API_KEY),
            secret_key: secret(fake_beem::SECRET_KEY),
            source_addr: fake_beem::SOURCE_ADDR.into(),
        },
        "test",
    )
    .await
    .unwrap();
    copcca_sms::settings::set_africastalking(
        &pool,
        &cipher,
        &copcca_sms::settings::AfricasTalkingSettings {
            username: fake_at::USERNAME.into(),
            api_key: secret(fake_at::API_KEY),
            sender_id: fake_at::SENDER_ID.into(),
        },
        "test",
    )
    .await
    .unwrap();
    let env = [
        ("SETTINGS_KEY", KEY),
        ("BEEM_API_KEY", "environment-beem-key-1111"),
        ("BEEM_SECRET_KEY", "environment-beem-secret-2222"),
        ("BEEM_SOURCE_ADDR", "ENVBEEM"),
        ("AT_USERNAME", "envuser"),
        ("AT_API_KEY", "environment-at-key-3333"),
        ("AT_SENDER_ID", "ENVAT"),
    ];
    let env_app = spawn_app_with(pool.clone(), &env).await;
    let view = |path: &'static str| {
        let (client, url) = (env_app.client.clone(), env_app.url(path));
        let admin = admin.clone();
        async move {
            let v: Value = client
                .get(url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let b = view("/admin/settings/beem").await;
    assert_eq!(
        (
            &b["source"],
            &b["api_key"],
            &b["secret_key"],
            &b["source_addr"]
        ),
        (
            &json!("environment"),
            &json!("****1111"),
            &json!("****2222"),
            &json!("ENVBEEM")
        )
    );
    assert!(b["stored"]["updated_at"].is_string(), "{b}");
    let a = view("/admin/settings/africastalking").await;
    assert_eq!(
        (&a["source"], &a["username"], &a["api_key"], &a["sender_id"]),
        (
            &json!("environment"),
            &json!("envuser"),
            &json!("****3333"),
            &json!("ENVAT")
        )
    );
    // The routes send through the environment's accounts, not the stored ones.
    let with_env = Providers::load(&pool, &config(&env)).await.unwrap();
    let stored_only = Providers::load(&pool, &config(&[("SETTINGS_KEY", KEY)]))
        .await
        .unwrap();
    let from_env = Providers::from_config(&config(&env));
    for route in [RouteName::Beem, RouteName::Africastalking] {
        let account = |p: &Providers| p.sms.get(route).and_then(|g| g.account()).map(String::from);
        assert!(account(&stored_only).is_some(), "{route} from settings");
        assert_eq!(account(&with_env), account(&from_env), "{route}");
        assert_ne!(account(&with_env), account(&stored_only), "{route}");
    }
}

/// A live app whose Beem account (environment) has secret key `secret`, or none.
async fn app_with_beem_secret(pool: &PgPool, secret: Option<&str>) -> TestApp {
    let beem = secret.map(|secret| {
        [
            ("BEEM_API_KEY", fake_beem::API_KEY),
            ("BEEM_SECRET_KEY", secret),
            ("BEEM_SOURCE_ADDR", fake_beem::SOURCE_ADDR),
        ]
    });
    spawn_live_app(pool.clone(), beem.as_ref().map_or(&[][..], |v| &v[..])).await
}

/// Beem's report path on `app` as `GET /admin/routes` shows it.
async fn beem_report_path(app: &TestApp) -> String {
    let admin = app.token(None, Role::SuperAdmin).await;
    let status = route_status(app, &admin, RouteName::Beem).await;
    let url = status["report_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no Beem report URL: {status}"));
    url[url.find("/webhooks/").unwrap()..].to_string()
}

#[sqlx::test]
async fn a_report_url_still_takes_reports_for_a_grace_period_after_its_secret_changed(
    pool: PgPool,
) {
    let before = app_with_beem_secret(&pool, Some("beem-secret-before-0001")).await;
    let old_path = beem_report_path(&before).await;
    // The deployment restarts with a rotated secret: a new URL, and the old one still works.
    let after = app_with_beem_secret(&pool, Some("beem-secret-after-00002")).await;
    let new_path = beem_report_path(&after).await;
    assert_ne!(old_path, new_path);
    let report = |n: u32| {
        json!({"request_id": "27104651", "recipient_id": format!("r{n}"),
               "dest_addr": "255754123456", "status": "DELIVERED"})
    };
    let post = async |path: &str, n: u32| {
        let url = after.url(path);
        let r = after.client.post(url).json(&report(n)).send().await;
        r.unwrap().status()
    };
    assert_eq!(post(&new_path, 1).await, StatusCode::OK);
    assert_eq!(post(&old_path, 2).await, StatusCode::OK);
    let guessed = old_path.replace("/beem/", "/beem/0");
    assert_eq!(post(&guessed, 3).await, StatusCode::NOT_FOUND);

    // The route is removed: reports of what it sent still come to its last URL for a while.
    let removed = app_with_beem_secret(&pool, None).await;
    let r = removed
        .client
        .post(removed.url(&new_path))
        .json(&report(4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Past the grace (a day by default), the old URL is refused and the refusal recorded.
    sqlx::query("UPDATE report_tokens SET replaced_at = now() - interval '25 hours'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(post(&old_path, 5).await, StatusCode::NOT_FOUND);
    assert_eq!(post(&new_path, 6).await, StatusCode::OK, "still served");
    let (accepted, rejected): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE accepted), count(*) FILTER (WHERE NOT accepted)
         FROM webhook_events WHERE provider = 'beem'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((accepted, rejected), (4, 2));
}

#[sqlx::test]
async fn a_process_that_cannot_record_its_report_token_still_starts_and_takes_reports(
    pool: PgPool,
) {
    // Recording the token in force fails (its table is out of reach): logged, not fatal.
    sqlx::query("ALTER TABLE report_tokens RENAME TO report_tokens_away")
        .execute(&pool)
        .await
        .unwrap();
    let app = app_with_beem_secret(&pool, Some("beem-secret-unrecorded-1")).await;
    sqlx::query("ALTER TABLE report_tokens_away RENAME TO report_tokens")
        .execute(&pool)
        .await
        .unwrap();
    let path = beem_report_path(&app).await;
    let report = json!({"request_id": "27104651", "recipient_id": "r1",
                        "dest_addr": "255754123456", "status": "DELIVERED"});
    let r = app.client.post(app.url(&path)).json(&report).send().await;
    assert_eq!(
        r.unwrap().status(),
        StatusCode::OK,
        "the token in force works"
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM report_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        recorded, 0,
        "nothing was recorded: only a later grace starts late"
    );
}
