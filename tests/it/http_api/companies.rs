//! The operator's company settings: `PATCH /admin/companies/{id}` (validation, no partial write,
//! every change recorded), `GET /admin/companies` (search, pages, balances), the change history,
//! roles, and a new quota taking effect on sending.

use std::time::Duration;

use copcca_sms::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::problem;
use crate::sending::Harness;
use crate::support::*;

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/admin/companies/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// The settings row as stored, for comparing before and after a refused change.
async fn stored(pool: &PgPool, id: copcca_sms::domain::CompanyId) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(c) - 'updated_at' FROM companies c WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn change_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM company_changes")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_super_admin_changes_every_setting_and_the_change_is_recorded(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await;
    let operator = accounts_user(&app, Role::SuperAdmin).await;
    let id = company.id.to_string();

    let resp = patch(
        &app,
        &operator.1,
        &id,
        json!({
            "name": "  Duka Kubwa  ", "sms_per_hour": 5000, "timezone": "Africa/Nairobi",
            "quiet_hours_start": "22:30", "quiet_hours_end": "06:00", "sweep_enabled": true,
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let c = &body["company"];
    assert_eq!(
        (
            &c["name"],
            &c["sms_per_hour"],
            &c["timezone"],
            &c["quiet_hours_start"],
            &c["quiet_hours_end"],
            &c["sweep_enabled"]
        ),
        (
            &json!("Duka Kubwa"),
            &json!(5000),
            &json!("Africa/Nairobi"),
            &json!("22:30"),
            &json!("06:00"),
            &json!(true)
        )
    );
    let row: (String, i32, String, String, String, bool) = sqlx::query_as(
        "SELECT name, sms_per_hour, timezone, quiet_hours_start::text, quiet_hours_end::text,
                sweep_enabled FROM companies WHERE id = $1",
    )
    .bind(company.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "Duka Kubwa".into(),
            5000,
            "Africa/Nairobi".into(),
            "22:30:00".into(),
            "06:00:00".into(),
            true
        )
    );

    // Only what changed, before and after, with who did it.
    let change = &body["change"];
    assert_eq!(change["actor"], format!("user:{}", operator.0));
    assert_eq!(
        change["before"],
        json!({
            "name": "Test Co", "sms_per_hour": 100, "timezone": "Africa/Dar_es_Salaam",
            "quiet_hours_start": "21:00", "quiet_hours_end": "08:00", "sweep_enabled": false,
        })
    );
    assert_eq!(
        change["after"],
        json!({
            "name": "Duka Kubwa", "sms_per_hour": 5000, "timezone": "Africa/Nairobi",
            "quiet_hours_start": "22:30", "quiet_hours_end": "06:00", "sweep_enabled": true,
        })
    );

    // A second change, then the history: newest first, each with its own before and after.
    let second: Value = patch(&app, &operator.1, &id, json!({"sms_per_hour": 200}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["change"]["before"], json!({"sms_per_hour": 5000}));
    assert_eq!(second["change"]["after"], json!({"sms_per_hour": 200}));
    let history = get(
        &app,
        &operator.1,
        &format!("/admin/companies/{id}/changes?limit=1"),
    )
    .await;
    assert_eq!(history["changes"].as_array().unwrap().len(), 1);
    assert_eq!(history["changes"][0]["after"], json!({"sms_per_hour": 200}));
    let before = history["next_before"].as_i64().unwrap();
    let older = get(
        &app,
        &operator.1,
        &format!("/admin/companies/{id}/changes?before={before}"),
    )
    .await;
    assert_eq!(older["changes"][0]["after"]["name"], "Duka Kubwa");
    assert!(older["changes"][0]["changed_at"].is_string());
    assert!(older["next_before"].is_null());

    // Asking for what is already there records nothing.
    let same: Value = patch(&app, &operator.1, &id, json!({"sms_per_hour": 200}))
        .await
        .json()
        .await
        .unwrap();
    assert!(same["change"].is_null(), "{same}");
    assert_eq!(change_rows(&pool).await, 2);
}

/// A user of `role` (a super_admin has no company) and a token for it.
async fn accounts_user(app: &TestApp, role: Role) -> (uuid::Uuid, String) {
    let user = copcca_sms::accounts::create_user(&app.state.pool, None, role, None)
        .await
        .unwrap();
    (
        user.id.0,
        app.state.jwt.issue(user.id, chrono::Duration::hours(1)),
    )
}

#[sqlx::test]
async fn each_bad_field_is_named_and_nothing_is_written(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await;
    let (_, operator) = accounts_user(&app, Role::SuperAdmin).await;
    let id = company.id.to_string();
    let before = stored(&pool, company.id).await;

    for (body, fields) in [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "x".repeat(201)}), vec!["name"]),
        (json!({"sms_per_hour": 0}), vec!["sms_per_hour"]),
        (json!({"sms_per_hour": 1_000_001}), vec!["sms_per_hour"]),
        (
            json!({"sms_per_hour": 5_000_000_000i64}),
            vec!["sms_per_hour"],
        ),
        (json!({"timezone": "Africa/Atlantis"}), vec!["timezone"]),
        (json!({"timezone": ""}), vec!["timezone"]),
        (
            json!({"quiet_hours_start": "24:00"}),
            vec!["quiet_hours_start"],
        ),
        (json!({"quiet_hours_end": "8:00"}), vec!["quiet_hours_end"]),
        (
            json!({"quiet_hours_end": "08:00:00"}),
            vec!["quiet_hours_end"],
        ),
        (json!({}), vec!["body"]),
        // Good values beside a bad one are not written either.
        (
            json!({"name": "Fine", "sms_per_hour": 500, "timezone": "Nowhere/City",
                   "quiet_hours_start": "25:61"}),
            vec!["timezone", "quiet_hours_start"],
        ),
    ] {
        let resp = patch(&app, &operator, &id, body.clone()).await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let named: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}: {p}");
    }
    // Unknown fields and wrong types are refused by the body's shape.
    for body in [
        json!({"sms_per_hour": 500, "country": "KE"}),
        json!({"routes": []}),
        json!({"sms_per_hour": "500"}),
        json!({"sweep_enabled": "yes"}),
        json!({"name": null, "quiet_hours": "21:00-08:00"}),
    ] {
        let resp = patch(&app, &operator, &id, body.clone()).await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
        assert!(p["detail"].is_string(), "{body}");
    }
    assert_eq!(stored(&pool, company.id).await, before, "nothing written");
    assert_eq!(change_rows(&pool).await, 0, "nothing recorded");
}

#[sqlx::test]
async fn only_the_platform_operator_may_list_or_change_companies(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await;
    let id = company.id.to_string();
    let body = json!({"sms_per_hour": 999});
    for role in [Role::Member, Role::Admin] {
        let token = app.token(Some(company.id), role).await;
        let resp = patch(&app, &token, &id, body.clone()).await;
        problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
        for path in [
            "/admin/companies".to_string(),
            format!("/admin/companies/{id}/changes"),
        ] {
            let resp = app
                .client
                .get(app.url(&path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    let resp = app
        .client
        .patch(app.url(&format!("/admin/companies/{id}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(resp, StatusCode::UNAUTHORIZED, "missing_credentials").await;
    assert_eq!(change_rows(&pool).await, 0);

    let (_, operator) = accounts_user(&app, Role::SuperAdmin).await;
    let resp = patch(
        &app,
        &operator,
        &uuid::Uuid::now_v7().to_string(),
        body.clone(),
    )
    .await;
    problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = patch(&app, &operator, "not-a-uuid", body.clone()).await;
    problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = patch(&app, &operator, &id, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(change_rows(&pool).await, 1);
}

#[sqlx::test]
async fn the_list_searches_pages_and_shows_balances(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (_, operator) = accounts_user(&app, Role::SuperAdmin).await;
    let mut ids = Vec::new();
    for (name, credits) in [("Duka la Mama", 40), ("Shamba 100%", 0), ("Duka_Bora", 7)] {
        let c = copcca_sms::accounts::create_company(&pool, name, copcca_sms::domain::Country::KE)
            .await
            .unwrap();
        if credits > 0 {
            copcca_sms::ledger::adjust(
                &mut pool.acquire().await.unwrap(),
                uuid::Uuid::now_v7(),
                c.id,
                copcca_sms::domain::CreditDelta::new(credits).unwrap(),
                "grant",
                "test",
            )
            .await
            .unwrap();
        }
        ids.push(c.id.to_string());
    }
    let first = get(&app, &operator, "/admin/companies?limit=2").await;
    let names = |page: &Value| -> Vec<String> {
        page["companies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["Duka la Mama", "Shamba 100%"]);
    assert_eq!(first["companies"][0]["available"], 40);
    assert_eq!(first["companies"][0]["reserved"], 0);
    assert_eq!(first["companies"][0]["sms_per_hour"], 100);
    let after = first["next_after"].as_str().unwrap();
    assert_eq!(after, ids[1]);
    let second = get(
        &app,
        &operator,
        &format!("/admin/companies?limit=2&after={after}"),
    )
    .await;
    assert_eq!(names(&second), ["Duka_Bora"]);
    assert_eq!(second["companies"][0]["available"], 7);
    assert!(second["next_after"].is_null());

    // Case-insensitive, and % and _ are letters, not wildcards.
    let duka = get(&app, &operator, "/admin/companies?search=DUKA").await;
    assert_eq!(names(&duka), ["Duka la Mama", "Duka_Bora"]);
    let percent = get(&app, &operator, "/admin/companies?search=%25").await;
    assert_eq!(names(&percent), ["Shamba 100%"]);
    let underscore = get(&app, &operator, "/admin/companies?search=_").await;
    assert_eq!(names(&underscore), ["Duka_Bora"]);
    let by_id = get(
        &app,
        &operator,
        &format!("/admin/companies?search={}", ids[2]),
    )
    .await;
    assert_eq!(names(&by_id), ["Duka_Bora"]);

    for bad in ["limit=0", "limit=201", "after=nope"] {
        let resp = app
            .client
            .get(app.url(&format!("/admin/companies?{bad}")))
            .bearer_auth(&operator)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{bad}");
    }
}

/// The quota set through the API is what the send limiter applies, and raising it lets the
/// messages the old quota held back go at once, not after the hour it gave them.
#[sqlx::test]
async fn a_new_quota_takes_effect_on_sending_at_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (_, operator) = accounts_user(&h.app, Role::SuperAdmin).await;
    let id = h.company.id.to_string();
    let resp = patch(&h.app, &operator, &id, json!({"sms_per_hour": 1})).await;
    assert_eq!(resp.status(), 200);

    let first = h.accept("+255754123456", "Kumbusho la kwanza").await;
    let second = h.accept("+255754123457", "Kumbusho la pili").await;
    h.drain(Duration::from_secs(3)).await;
    use copcca_sms::messages::MessageStatus::{Queued, Sent};
    let mut statuses = [
        (h.message(first).await.status, first),
        (h.message(second).await.status, second),
    ];
    statuses.sort_by_key(|(s, _)| *s != Sent);
    assert_eq!(
        (statuses[0].0, statuses[1].0),
        (Sent, Queued),
        "one an hour: one of them waits"
    );
    let waiting = statuses[1].1;

    let raised: Value = patch(&h.app, &operator, &id, json!({"sms_per_hour": 100}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(raised["messages_requeued"], 1, "{raised}");
    h.drain(Duration::from_secs(5)).await;
    assert_eq!(
        h.message(waiting).await.status,
        Sent,
        "sent under the new quota"
    );
    assert_eq!(h.twilio.messages().len(), 2, "each sent once");
    assert_eq!(h.available().await, 8, "each charged once");
    h.audit_clean().await;
}

/// What the README used to do with raw SQL: `admin update-company` changes a quota (and the
/// rest), recorded as the operator's; a bad value names its flag and changes nothing.
#[sqlx::test]
async fn admin_update_company_changes_settings_without_sql(pool: PgPool) {
    let company = company_with(&pool, 0).await;
    let id = company.id.to_string();
    let out = crate::cli::run_admin_json(
        &pool,
        &[
            "update-company",
            "--company",
            &id,
            "--sms-per-hour",
            "5000",
            "--quiet-hours",
            "22:00-07:00",
            "--timezone",
            "Africa/Nairobi",
            "--sweeps",
            "on",
        ],
    )
    .await;
    assert_eq!(out["company"]["sms_per_hour"], 5000, "{out}");
    assert_eq!(out["company"]["quiet_hours_end"], "07:00");
    assert_eq!(out["change"]["actor"], "cli:admin");
    assert_eq!(out["change"]["before"]["sms_per_hour"], 100);
    assert_eq!(out["change"]["after"]["sweep_enabled"], true);
    assert_eq!(out["messages_requeued"], 0);

    let history = crate::cli::run_admin_json(&pool, &["company-changes", "--company", &id]).await;
    assert_eq!(history["changes"][0]["after"]["timezone"], "Africa/Nairobi");
    let listed = crate::cli::run_admin_json(&pool, &["companies", "--search", "test co"]).await;
    assert_eq!(listed["companies"][0]["id"], id);
    assert_eq!(listed["companies"][0]["sms_per_hour"], 5000);

    let before = stored(&pool, company.id).await;
    let refused = crate::reports::binary(
        &pool,
        &[
            "admin",
            "--json",
            "update-company",
            "--company",
            &id,
            "--sms-per-hour",
            "0",
            "--quiet-hours",
            "22:00-7",
        ],
    )
    .await;
    assert!(!refused.status.success());
    let err: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("--sms-per-hour") && message.contains("--quiet-hours"),
        "{message}"
    );
    assert_eq!(stored(&pool, company.id).await, before, "nothing written");
    assert_eq!(change_rows(&pool).await, 1);
}
