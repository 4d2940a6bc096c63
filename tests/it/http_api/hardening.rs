//! What an attacker meets: the per-company request rate, body limits, and the operator API closed
//! to everyone but the operator (tenant isolation is in `tenancy.rs`).

use std::time::Duration;

use copcca_sms::accounts;
use copcca_sms::domain::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::problem;
use crate::support::*;

fn prefix() -> String {
    format!("hard-{}", uuid::Uuid::new_v4().simple())
}

#[sqlx::test]
async fn a_company_over_its_request_rate_gets_429_with_retry_after_on_every_process(pool: PgPool) {
    let prefix = prefix();
    let limits = [
        ("REDIS_PREFIX", prefix.as_str()),
        ("API_RATE_PER_SECOND", "1"),
        ("API_RATE_BURST", "3"),
    ];
    // Two serve processes sharing one Redis: one budget per company between them.
    let first = spawn_app_with(pool.clone(), &limits).await;
    let second = spawn_app_with(pool.clone(), &limits).await;
    let a = company_with(&pool, 0).await.id;
    let b = company_with(&pool, 0).await.id;
    let token_a = first.token(Some(a), Role::Member).await;
    let token_b = first.token(Some(b), Role::Member).await;
    let balance = |app: &TestApp, token: &str| {
        app.client
            .get(app.url("/v1/balance"))
            .bearer_auth(token)
            .send()
    };

    for _ in 0..3 {
        assert_eq!(balance(&first, &token_a).await.unwrap().status(), 200);
    }
    let refused = balance(&second, &token_a).await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let p = problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(p["retry_after"], retry_after);
    problem(
        balance(&first, &token_a).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    // Another company has its own budget; the operator API is not company-limited.
    assert_eq!(balance(&second, &token_b).await.unwrap().status(), 200);
    let admin = first.token(None, Role::SuperAdmin).await;
    for _ in 0..5 {
        let r = first
            .client
            .get(first.url("/admin/settings/twilio"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Once the budget refills (burst / rate = 3 s) the company may call again, by any
    // credential: they share one budget.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let key = accounts::create_api_key(&pool, a, "crm").await.unwrap();
    for _ in 0..3 {
        let r = second
            .client
            .get(second.url("/v1/balance"))
            .header("x-api-key", key.secret.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    problem(
        balance(&first, &token_a).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

/// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length), as raw HTTP/1.1.
async fn post_chunked(base: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(512) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).unwrap());
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[sqlx::test]
async fn bodies_over_the_limit_are_413_problems_on_every_kind_of_route(pool: PgPool) {
    let prefix = prefix();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("MAX_BODY_BYTES", "2048"),
            ("REDIS_PREFIX", &prefix),
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
            ("TWILIO_AUTH_TOKEN", "token"),
            ("TWILIO_FROM", "+15005550006"),
        ],
    )
    .await;
    let company = company_with(&pool, 10).await.id;
    let token = app.token(Some(company), Role::Member).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let big = "x".repeat(4096);

    let r = app
        .client
        .post(app.url("/v1/messages"))
        .bearer_auth(&token)
        .json(&json!({"to": "+255754123456", "body": big}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let r = app
        .client
        .put(app.url("/admin/settings/stripe"))
        .bearer_auth(&admin)
        .json(&json!({"secret_key": big, "webhook_secret": "whsec_x"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A webhook reads its body raw: its 413 is a problem too.
    let r = app
        .client
        .post(app.url("/webhooks/twilio/status"))
        .header("x-twilio-signature", "x")
        .form(&[("MessageSid", "SM1"), ("Body", big.as_str())])
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Without a Content-Length the limit still holds.
    let one = json!({"to": "+255754123456", "body": big}).to_string();
    let (status, answer) = post_chunked(&app.base, "/v1/messages", &token, &one).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");

    for table in ["messages", "webhook_events", "system_settings"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}: a refused body wrote something");
    }
}

#[sqlx::test]
async fn every_admin_route_refuses_everyone_but_the_operator(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("API_RATE_PER_SECOND", "0")]).await;
    let company = company_with(&pool, 0).await.id;
    let member = app.token(Some(company), Role::Member).await;
    let company_admin = app.token(Some(company), Role::Admin).await;
    let key = accounts::create_api_key(&pool, company, "crm")
        .await
        .unwrap();
    // A member's token claiming the operator's role: roles come from our rows, not claims.
    let member_user = accounts::create_user(&pool, Some(company), Role::Member, None)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims_admin = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": member_user.id, "aud": "authenticated", "exp": now + 600,
                "role": "super_admin", "app_metadata": {"role": "super_admin"}}),
        &EncodingKey::from_secret(app.state.config.jwt_secret.expose().as_bytes()),
    )
    .unwrap();
    let callers = [
        ("member", "authorization", format!("Bearer {member}")),
        ("admin", "authorization", format!("Bearer {company_admin}")),
        ("API key", "x-api-key", key.secret.expose().to_string()),
        (
            "role claimed in the token",
            "authorization",
            format!("Bearer {claims_admin}"),
        ),
    ];

    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut walked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        if !template.starts_with("/admin") {
            continue;
        }
        // Every path parameter gets a well-formed id (so no 404 comes before the 403).
        let path: String = template
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    company.to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let request = |extra: Option<(&str, &str)>| {
                let mut req = app
                    .client
                    .request(method.clone(), app.url(&path))
                    .json(&json!({"credits": 5, "reason": "x"}));
                if let Some((h, v)) = extra {
                    req = req.header(h, v);
                }
                req.send()
            };
            for (who, header, value) in &callers {
                let r = request(Some((header, value))).await.unwrap();
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}: {method} {path}");
                problem(r, StatusCode::FORBIDDEN, "forbidden").await;
            }
            let r = request(None).await.unwrap();
            problem(r, StatusCode::UNAUTHORIZED, "missing_credentials").await;
            walked += 1;
        }
    }
    assert!(walked >= 7, "only {walked} admin operations documented");
    let settings: i64 = sqlx::query_scalar("SELECT count(*) FROM system_settings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(settings, 0);
    assert_eq!(available(&pool, company).await, 0);
}

#[sqlx::test]
async fn a_database_outage_is_answered_503_with_retry_after_and_the_retry_succeeds(
    pool_options: sqlx::postgres::PgPoolOptions,
    db: sqlx::postgres::PgConnectOptions,
) {
    let direct = pool_options.connect_with(db.clone()).await.unwrap();
    let upstream = tokio::net::lookup_host((db.get_host(), db.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = crate::proxy::CuttableProxy::start(upstream).await;
    // The API reaches PostgreSQL through the proxy, and waits at most 300 ms for a connection.
    let through_proxy = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(300))
        .connect_with(db.clone().port(proxy.addr.port()))
        .await
        .unwrap();
    let app = spawn_app(through_proxy).await;
    let company = company_with(&direct, 5).await;
    let token = app.token(Some(company.id), Role::Member).await;
    let balance = || {
        app.client
            .get(app.url("/v1/balance"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(balance().await.unwrap().status(), StatusCode::OK);

    // An API key is looked up with other requests' keys (group commit); that lookup failing is
    // the same 503.
    let key = copcca_sms::accounts::create_api_key(&direct, company.id, "crm")
        .await
        .unwrap();
    let by_key = || {
        app.client
            .get(app.url("/v1/balance"))
            .header("x-api-key", key.secret.expose())
            .send()
    };

    proxy.cut();
    for resp in [balance().await.unwrap(), by_key().await.unwrap()] {
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "2");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "database_unavailable");
    }

    proxy.restore();
    for resp in [balance().await.unwrap(), by_key().await.unwrap()] {
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["available"], 5);
    }
}
