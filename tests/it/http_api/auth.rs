//! Who may call: JWT defects, API keys, roles.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use copcca_sms::accounts;
use copcca_sms::domain::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::problem;
use crate::support::*;

fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// `GET /v1/balance` with `key` in `X-API-Key`.
async fn balance_with_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/balance"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn bad_credentials_are_401_problems(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await.id;
    let user = accounts::create_user(&pool, Some(company), Role::Member, None)
        .await
        .unwrap();
    let secret = app.state.config.jwt_secret.expose().to_string();
    let now = chrono::Utc::now().timestamp();
    let sub = user.id.to_string();

    let get = |auth: Option<String>| {
        let mut req = app.client.get(app.url("/v1/balance"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    problem(
        get(None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "missing_credentials",
    )
    .await;
    problem(
        get(Some("Basic abc".into())).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    problem(
        get(Some("Bearer not.a.jwt".into())).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    let valid = sign(
        json!({"sub": sub, "aud": "authenticated", "exp": now + 600, "iat": now}),
        &secret,
    );
    assert_eq!(
        get(Some(format!("Bearer {valid}"))).await.unwrap().status(),
        200
    );

    let defects = [
        (
            "bad signature",
            sign(
                json!({"sub": sub, "aud": "authenticated", "exp": now + 600}),
                "another-secret-of-enough-length-000",
            ),
        ),
        (
            "expired",
            sign(
                json!({"sub": sub, "aud": "authenticated", "exp": now - 3600}),
                &secret,
            ),
        ),
        (
            "wrong audience",
            sign(
                json!({"sub": sub, "aud": "someone-else", "exp": now + 600}),
                &secret,
            ),
        ),
        (
            "no audience",
            sign(json!({"sub": sub, "exp": now + 600}), &secret),
        ),
        (
            "no expiry",
            sign(json!({"sub": sub, "aud": "authenticated"}), &secret),
        ),
        ("another algorithm with the right secret (HS512)", {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS512),
                &json!({"sub": sub, "aud": "authenticated", "exp": now + 600}),
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        }),
        (
            "not valid yet (nbf an hour ahead)",
            sign(
                json!({"sub": sub, "aud": "authenticated", "exp": now + 7200, "nbf": now + 3600}),
                &secret,
            ),
        ),
        (
            "audience list without ours",
            sign(
                json!({"sub": sub, "aud": ["anon", "service_role"], "exp": now + 600}),
                &secret,
            ),
        ),
        (
            "sub not a user id",
            sign(
                json!({"sub": "service_role", "aud": "authenticated", "exp": now + 600}),
                &secret,
            ),
        ),
        ("signature stripped", {
            let mut parts: Vec<&str> = valid.split('.').collect();
            parts[2] = "";
            parts.join(".")
        }),
        ("alg none", {
            let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
            let claims = URL_SAFE_NO_PAD
                .encode(json!({"sub": sub, "aud": "authenticated", "exp": now + 600}).to_string());
            format!("{header}.{claims}.")
        }),
    ];
    for (name, token) in defects {
        let r = get(Some(format!("Bearer {token}"))).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    // A well-signed token for a user that does not exist.
    let ghost = sign(
        json!({"sub": uuid::Uuid::now_v7(), "aud": "authenticated", "exp": now + 600}),
        &secret,
    );
    problem(
        get(Some(format!("Bearer {ghost}"))).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unknown_user",
    )
    .await;
}

#[sqlx::test]
async fn api_keys_authenticate_until_revoked(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 3).await.id;
    let issued = accounts::create_api_key(&pool, company, "crm")
        .await
        .unwrap();
    let key = issued.secret.expose().to_string();

    let r = balance_with_key(&app, &key).await;
    assert_eq!(r.json::<Value>().await.unwrap()["available"], 3);
    let r = app
        .client
        .get(app.url("/v1/balance"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let forged = format!("{}x", &key[..key.len() - 1]);
    let r = balance_with_key(&app, &forged).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_api_key").await;

    assert!(
        accounts::revoke_api_key(&pool, company, issued.key.id)
            .await
            .unwrap()
    );
    let r = balance_with_key(&app, &key).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
}

/// Concurrent requests' keys are looked up together (one statement for the lookups waiting);
/// each request still gets its own key's answer: its company's balance, or 401 for a revoked
/// or unknown key, and the same key sent by several requests at once answers each of them.
#[sqlx::test]
async fn api_keys_looked_up_together_each_answer_their_own_request(pool: PgPool) {
    let app = std::sync::Arc::new(spawn_app(pool.clone()).await);
    let mut keys = Vec::new();
    for credits in [3, 5, 8] {
        let company = company_with(&pool, credits).await.id;
        let issued = accounts::create_api_key(&pool, company, "crm")
            .await
            .unwrap();
        keys.push((issued.secret.expose().to_string(), Some(credits)));
        if credits == 5 {
            let gone = accounts::create_api_key(&pool, company, "old crm")
                .await
                .unwrap();
            accounts::revoke_api_key(&pool, company, gone.key.id)
                .await
                .unwrap();
            keys.push((gone.secret.expose().to_string(), None));
        }
    }
    keys.push((format!("{}{}", accounts::KEY_PREFIX, "A".repeat(43)), None));
    let calls: Vec<_> = (0..60)
        .map(|n| {
            let (app, (key, credits)) = (app.clone(), keys[n % keys.len()].clone());
            tokio::spawn(async move {
                let r = balance_with_key(&app, &key).await;
                (credits, r.status(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    for call in calls {
        match call.await.unwrap() {
            (Some(credits), status, v) => {
                assert_eq!(
                    (status, v["available"].as_i64()),
                    (StatusCode::OK, Some(credits)),
                    "{v}"
                )
            }
            (None, status, v) => {
                assert_eq!(
                    (status, v["code"].as_str()),
                    (StatusCode::UNAUTHORIZED, Some("invalid_api_key")),
                    "{v}"
                )
            }
        }
    }
}

/// A key's `last_used_at` is stamped by its first request and refreshed at most once a minute.
/// A request whose key row another transaction holds (a revocation being written) is answered
/// at once, without the stamp: the lookup skips a locked row rather than wait for it.
#[sqlx::test]
async fn a_keys_last_use_is_kept_without_waiting_for_its_row(pool: PgPool) {
    type Stamp = Option<chrono::DateTime<chrono::Utc>>;
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 3).await.id;
    let issued = accounts::create_api_key(&pool, company, "crm")
        .await
        .unwrap();
    let id = issued.key.id;
    let balance = || balance_with_key(&app, issued.secret.expose());
    let last_used = async || -> Stamp {
        sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(last_used().await, None);

    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *holder)
        .await
        .unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), balance())
        .await
        .expect("the lookup waited for the key's locked row");
    assert_eq!(r.status(), StatusCode::OK);
    holder.rollback().await.unwrap();
    assert_eq!(last_used().await, None, "a locked row is skipped");

    assert_eq!(balance().await.status(), StatusCode::OK);
    let first = last_used().await.expect("stamped by the first free lookup");
    assert_eq!(balance().await.status(), StatusCode::OK);
    assert_eq!(
        last_used().await,
        Some(first),
        "not again within the minute"
    );

    sqlx::query("UPDATE api_keys SET last_used_at = now() - interval '1 hour' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(balance().await.status(), StatusCode::OK);
    assert!(
        last_used().await.unwrap() >= first,
        "an hour-old stamp is refreshed"
    );
}

#[sqlx::test]
async fn admin_adjustments_need_a_super_admin(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await.id;
    let url = app.url(&format!("/admin/companies/{company}/adjustments"));
    let body = json!({"credits": 25, "reason": "goodwill"});

    for role in [Role::Member, Role::Admin] {
        let token = app.token(Some(company), role).await;
        let r = app
            .client
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let key = accounts::create_api_key(&pool, company, "crm")
        .await
        .unwrap();
    let r = app
        .client
        .post(&url)
        .header("x-api-key", key.secret.expose())
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.client.post(&url).json(&body).send().await.unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "missing_credentials").await;
    assert_eq!(
        available(&pool, company).await,
        0,
        "a refused request changed the balance"
    );

    let admin = app.token(None, Role::SuperAdmin).await;
    let idem = uuid::Uuid::now_v7().to_string();
    let send = || {
        app.client
            .post(&url)
            .bearer_auth(&admin)
            .header("idempotency-key", &idem)
            .json(&body)
            .send()
    };
    let r = send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    assert_eq!(
        (
            first["replay"].as_bool(),
            first["balance"]["available"].as_i64()
        ),
        (Some(false), Some(25))
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(
        (again["replay"].as_bool(), again["entry_id"].clone()),
        (Some(true), first["entry_id"].clone())
    );
    assert_eq!(available(&pool, company).await, 25);

    // The same key with another body is refused.
    let r = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("idempotency-key", &idem)
        .json(&json!({"credits": 26, "reason": "goodwill"}))
        .send()
        .await
        .unwrap();
    problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;

    // Removing more than is available.
    let r = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"credits": -26, "reason": "x"}))
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::CONFLICT, "insufficient_credits").await;
    assert_eq!(
        (p["needed"].as_i64(), p["available"].as_i64()),
        (Some(26), Some(25))
    );
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn a_super_admin_without_a_company_has_no_v1_view(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let r = app
        .client
        .get(app.url("/v1/balance"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN, "no_company").await;
}
