//! The SMS routing table (`/admin/routes`) and the routes' circuits.

use copcca_sms::domain::Role;
use copcca_sms::routing::{CircuitSettings, CircuitState, Circuits, RouteName};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

async fn put(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url("/admin/routes"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn the_operator_sets_the_table_and_every_change_is_kept(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let company = company_with(&pool, 0).await.id;
    let admin = app.token(None, Role::SuperAdmin).await;

    let get = || async {
        app.client
            .get(app.url("/admin/routes"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let empty = get().await;
    assert_eq!(empty["rules"], json!([]));
    assert_eq!(empty["default"], json!(["twilio"]));
    let routes = empty["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3);
    assert!(
        routes.iter().all(|r| r["circuit"]["state"] == "closed"),
        "{empty}"
    );
    // This deployment has no account for any route (Twilio runs as the demo provider).
    assert!(routes.iter().all(|r| r["configured"] == false), "{empty}");

    let rules = json!([
        {"destination": "+255", "routes": ["beem", "twilio"]},
        {"destination": "254", "routes": ["africastalking", "twilio"]},
        {"destination": "255", "company_id": company, "routes": ["twilio"]},
    ]);
    let r = put(&app, &admin, json!({ "rules": rules })).await;
    assert_eq!(r.status(), 200);
    let set = get().await;
    assert_eq!(set["rules"][0]["destination"], "255", "+ is dropped");
    assert_eq!(set["rules"][2]["company_id"], company.to_string());
    assert_eq!(
        set["rules"][1]["routes"],
        json!(["africastalking", "twilio"])
    );

    // The table the send path reads.
    let table = copcca_sms::routing::load(&pool).await.unwrap();
    let to = |n: &str| copcca_sms::domain::E164::try_from(n.to_string()).unwrap();
    let other = copcca_sms::domain::CompanyId::new();
    assert_eq!(
        table.routes_for(other, &to("+255754123456")),
        [RouteName::Beem, RouteName::Twilio]
    );
    assert_eq!(
        table.routes_for(company, &to("+255754123456")),
        [RouteName::Twilio]
    );

    // Replaced by nothing: Twilio for everything again; both changes kept with who made them.
    assert_eq!(put(&app, &admin, json!({"rules": []})).await.status(), 200);
    assert_eq!(get().await["rules"], json!([]));
    let history: Vec<(String, Value, Value)> =
        sqlx::query_as("SELECT actor, before, after FROM sms_route_changes ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].0.starts_with("user:"), "{}", history[0].0);
    assert_eq!(history[0].1, json!([]));
    assert_eq!(history[1].1, history[0].2);
    assert_eq!(history[1].2, json!([]));
}

#[sqlx::test]
async fn a_route_counts_as_configured_once_its_account_is(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        &[
            ("BEEM_API_KEY", "k"),
            ("BEEM_SECRET_KEY", "s"),
            ("BEEM_SOURCE_ADDR", "COPCCA"),
        ],
    )
    .await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let v: Value = app
        .client
        .get(app.url("/admin/routes"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let configured: Vec<(&str, bool)> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["route"].as_str().unwrap(),
                r["configured"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        configured,
        [("twilio", false), ("beem", true), ("africastalking", false)]
    );
}

#[sqlx::test]
async fn bad_tables_are_refused_precisely_and_change_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let good = json!({"destination": "255", "routes": ["beem"]});
    let cases = [
        (
            json!([good, {"destination": "25x", "routes": ["beem"]}]),
            "rules[1]",
        ),
        (json!([{"destination": "255", "routes": []}]), "rules[0]"),
        (
            json!([{"destination": "255", "routes": ["beem", "beem"]}]),
            "rules[0]",
        ),
        (
            json!([good, {"destination": "+255", "routes": ["twilio"]}]),
            "rules[1]",
        ),
        (
            json!([good, {"destination": "254", "company_id": uuid::Uuid::now_v7(), "routes": ["beem"]}]),
            "rules[1].company_id",
        ),
    ];
    for (rules, field) in cases {
        let r = put(&app, &admin, json!({ "rules": rules })).await;
        let body =
            crate::http_api::problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                .await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    // An unknown route name or field is malformed JSON for this body.
    for rules in [
        json!([{"destination": "255", "routes": ["sms"]}]),
        json!([{"destination": "255", "routes": ["beem"], "weight": 2}]),
    ] {
        let r = put(&app, &admin, json!({ "rules": rules })).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sms_routes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // Only the operator.
    let member = app
        .token(Some(company_with(&pool, 0).await.id), Role::Admin)
        .await;
    assert_eq!(put(&app, &member, json!({"rules": []})).await.status(), 403);
}

async fn circuits(settings: CircuitSettings) -> Circuits {
    let queues = copcca_sms::queue::Queues::connect(
        &std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()),
        &format!("circuit-{}", uuid::Uuid::new_v4().simple()),
    )
    .await
    .unwrap();
    Circuits::new(queues.connection(), queues.prefix(), settings)
}

#[tokio::test]
async fn transient_failures_in_a_row_open_a_route_then_one_probe_decides() {
    let settings = CircuitSettings::default();
    let c = circuits(settings).await;
    let beem = RouteName::Beem;
    let t0 = 1_000_000_000;
    // A success in between starts the count again.
    for _ in 0..4 {
        c.failed_at(beem, "503", t0).await.unwrap();
    }
    c.succeeded(beem).await.unwrap();
    for i in 1..=4 {
        let s = c.failed_at(beem, "503", t0).await.unwrap();
        assert_eq!((s.state, s.failures), (CircuitState::Closed, i));
        assert!(c.allows_at(beem, t0).await.unwrap());
    }
    let opened = c.failed_at(beem, "HTTP 503 from Beem", t0).await.unwrap();
    assert_eq!(opened.state, CircuitState::Open);
    assert_eq!(opened.open_until_ms, Some(t0 + 30_000));
    assert!(!c.allows_at(beem, t0 + 29_999).await.unwrap());
    // Other routes are not affected.
    assert!(c.allows_at(RouteName::Twilio, t0).await.unwrap());

    // Half-open: one send probes; the others keep skipping the route meanwhile.
    assert!(c.allows_at(beem, t0 + 30_000).await.unwrap());
    assert!(!c.allows_at(beem, t0 + 30_001).await.unwrap());
    // The probe failed: open again at once, for another period.
    let reopened = c.failed_at(beem, "503 again", t0 + 30_500).await.unwrap();
    assert_eq!(reopened.state, CircuitState::Open);
    assert_eq!(reopened.open_until_ms, Some(t0 + 60_500));
    // A probe whose outcome never came (its worker died): another may probe after its window.
    assert!(c.allows_at(beem, t0 + 60_500).await.unwrap());
    assert!(!c.allows_at(beem, t0 + 90_499).await.unwrap());
    assert!(c.allows_at(beem, t0 + 90_500).await.unwrap());
    // A send that began before the circuit opened answers while it is open: still open.
    c.failed_at(beem, "503", t0 + 90_600).await.unwrap();
    c.succeeded_at(beem, t0 + 91_000).await.unwrap();
    assert!(!c.allows_at(beem, t0 + 91_001).await.unwrap());
    // The probe after it succeeded: closed.
    assert!(c.allows_at(beem, t0 + 120_600).await.unwrap());
    c.succeeded_at(beem, t0 + 120_700).await.unwrap();
    let closed = c.state(beem).await.unwrap();
    assert_eq!((closed.state, closed.failures), (CircuitState::Closed, 0));
}

#[tokio::test]
async fn a_configuration_error_opens_a_route_at_once_for_longer() {
    let c = circuits(CircuitSettings::default()).await;
    let at = RouteName::Africastalking;
    let s = c.misconfigured(at, "402 InvalidSenderId").await.unwrap();
    assert_eq!(s.state, CircuitState::Open);
    assert_eq!(s.reason, "402 InvalidSenderId");
    assert!(!c.allows(at).await.unwrap());
    let now = s.open_until_ms.unwrap() - 300_000;
    // Transient failures of sends still in flight neither shorten it nor hide its reason.
    for _ in 0..6 {
        let s = c.failed_at(at, "HTTP 500", now + 1_000).await.unwrap();
        assert_eq!(s.open_until_ms, Some(now + 300_000));
        assert_eq!(s.reason, "402 InvalidSenderId");
    }
    assert!(!c.allows_at(at, now + 299_999).await.unwrap());
    assert!(c.allows_at(at, now + 300_000).await.unwrap());
}
