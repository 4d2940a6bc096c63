//! Health, balance, ledger, packages, OpenAPI, request ids, and bad input on every path.

use copcca_sms::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::problem;
use crate::support::*;

#[sqlx::test]
async fn health_and_readiness(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"postgres": "ok", "redis": "ok"})
    );
}

#[sqlx::test]
async fn readiness_fails_cleanly_when_redis_is_down(pool: PgPool) {
    // Nothing listens on port 1.
    let app = spawn_app_with(pool, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "redis_unavailable").await;
}

#[sqlx::test]
async fn a_company_sees_its_own_balance_and_ledger_only(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let a = company_with(&pool, 40).await.id;
    let b = company_with(&pool, 7).await.id;
    let token_a = app.token(Some(a), Role::Member).await;
    let token_b = app.token(Some(b), Role::Member).await;

    let body = app.get_json("/v1/balance", &token_a).await;
    assert_eq!(body["company_id"], a.to_string());
    assert_eq!(
        (body["available"].as_i64(), body["reserved"].as_i64()),
        (Some(40), Some(0))
    );
    for field in ["total_purchased", "total_sent", "total_refunded"] {
        assert!(body[field].is_i64(), "{field} missing in {body}");
    }
    let body: Value = app
        .client
        .get(app.url("/v1/balance"))
        .bearer_auth(&token_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["company_id"].as_str(), body["available"].as_i64()),
        (Some(b.to_string().as_str()), Some(7))
    );

    let ledger_a: Value = app
        .client
        .get(app.url("/v1/ledger"))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = ledger_a["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["available_delta"], 40);

    // A query parameter cannot widen the view to another company.
    let r = app
        .client
        .get(app.url(&format!("/v1/balance?company_id={b}")))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["company_id"],
        a.to_string()
    );
}

#[sqlx::test]
async fn ledger_pages_newest_first(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 1).await.id;
    for _ in 0..4 {
        copcca_sms::ledger::adjust(
            &mut pool.acquire().await.unwrap(),
            uuid::Uuid::now_v7(),
            company,
            copcca_sms::domain::CreditDelta::new(1).unwrap(),
            "x",
            "t",
        )
        .await
        .unwrap();
    }
    let token = app.token(Some(company), Role::Member).await;
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut url = app.url("/v1/ledger?limit=2");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        let page: Value = app
            .client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");

    for bad in ["limit=0", "limit=201", "limit=abc", "before=-1"] {
        let r = app
            .client
            .get(app.url(&format!("/v1/ledger?{bad}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[sqlx::test]
async fn packages_are_listed_with_prices_per_currency(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await.id;
    let token = app.token(Some(company), Role::Member).await;
    let body: Value = app
        .client
        .get(app.url("/v1/packages"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["starter", "business", "pro", "enterprise", "mega"]);
    let business = &body[1];
    assert_eq!(business["credits"], 500);
    assert_eq!(business["prices"]["USD"], "8.00");
    assert_eq!(business["prices"]["TZS"], "20000.00");
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|p| p["prices"].as_object().unwrap().len() == 3)
    );
}

#[sqlx::test]
async fn bad_input_gets_precise_problems_and_writes_nothing(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("MAX_BODY_BYTES", "2048")]).await;
    let company = company_with(&pool, 0).await.id;
    let admin = app.token(None, Role::SuperAdmin).await;
    let url = app.url(&format!("/admin/companies/{company}/adjustments"));
    let post = |body: String| {
        app.client
            .post(&url)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    problem(
        post("{not json".into()).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    problem(
        post(r#"{"credits": "ten", "reason": "x"}"#.into())
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    problem(
        post(r#"{"credits": 5, "reason": "x", "extra": 1}"#.into())
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    let p = problem(
        post(r#"{"credits": 0, "reason": " "}"#.into())
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
    assert_eq!(fields, ["credits", "reason"]);
    let big = format!(r#"{{"credits": 5, "reason": "{}"}}"#, "x".repeat(4096));
    problem(
        post(big).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let r = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("idempotency-key", "nope")
        .json(&json!({"credits": 1, "reason": "x"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let unknown = app.url(&format!(
        "/admin/companies/{}/adjustments",
        uuid::Uuid::now_v7()
    ));
    let r = app
        .client
        .post(unknown)
        .bearer_auth(&admin)
        .json(&json!({"credits": 1, "reason": "x"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .client
        .post(app.url("/admin/companies/not-a-uuid/adjustments"))
        .bearer_auth(&admin)
        .json(&json!({"credits": 1, "reason": "x"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    problem(
        app.client
            .get(app.url("/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        app.client
            .delete(app.url("/v1/balance"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;

    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(entries, 0, "a refused request wrote to the ledger");
}

#[sqlx::test]
async fn the_openapi_document_lists_every_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/readyz",
        "/v1/balance",
        "/v1/ledger",
        "/v1/packages",
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/messages/batch",
        "/v1/batches/{id}",
        "/v1/opt-outs",
        "/v1/opt-outs/{phone}",
        "/webhooks/twilio/status",
        "/webhooks/twilio/inbound",
        "/admin/companies/{id}/adjustments",
        "/admin/settings/twilio",
        "/admin/settings/stripe",
        "/admin/settings/mpesa",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Every operation documents the errors it can answer, each as problem+json.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has = |s: &str| responses.contains_key(s);
            let what = format!("{method} {path}");
            if path.starts_with("/v1") {
                assert!(has("401") && has("403") && has("429"), "{what}");
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "{what}"
                );
            }
            if path.starts_with("/admin") {
                assert!(has("401") && has("403"), "{what}");
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(has(s), "{what} lacks {s}");
                }
            }
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{what} {status} is not problem+json: {r}"
                    );
                }
            }
        }
    }
}

#[sqlx::test]
async fn responses_carry_a_request_id(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}
