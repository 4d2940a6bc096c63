//! The operator's status page (`GET /admin`): who gets in (header, `?token=` exchanged for a
//! cookie, the cookie), what it shows, that it escapes what it shows and survives Redis being
//! down, and the queue sampler behind its depth chart. `browser.rs` loads it in headless Chromium.

mod browser;

use std::time::Duration;

use copcca_sms::accounts;
use copcca_sms::domain::{CompanyId, Country, CreditDelta, Role};
use copcca_sms::ledger;
use copcca_sms::queue::Queues;
use copcca_sms::workers::sample_queues;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use sqlx::PgPool;

use crate::support::*;

/// Checks a problem+json answer and returns its body.
async fn problem(r: reqwest::Response, status: StatusCode, code: &str) -> serde_json::Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}

fn prefix() -> String {
    format!("status-{}", uuid::Uuid::new_v4().simple())
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn company_named(pool: &PgPool, name: &str, credits: i64) -> CompanyId {
    let company = accounts::create_company(pool, name, Country::KE)
        .await
        .unwrap();
    ledger::adjust(
        &mut pool.acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        company.id,
        CreditDelta::new(credits).unwrap(),
        "test grant",
        "test",
    )
    .await
    .unwrap();
    company.id
}

/// A message whose send began `minutes_ago` and that ended in `status`.
async fn sent_message(
    pool: &PgPool,
    company: CompanyId,
    minutes_ago: i64,
    status: &str,
    error: Option<(&str, &str)>,
) {
    let id = message(pool, company, 1).await;
    sqlx::query(
        "UPDATE messages SET status = $2, error_code = $3, error_message = $4,
             send_attempt_started_at = now() - make_interval(mins => $5::int),
             updated_at = now() - make_interval(mins => $5::int)
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .bind(minutes_ago as i32)
    .execute(pool)
    .await
    .unwrap();
}

/// Depth samples of `queue` for the minutes `ago` (minutes before the current one).
async fn samples(pool: &PgPool, queue: &str, points: &[(i64, i64)]) {
    for &(ago, ready) in points {
        sqlx::query(
            "INSERT INTO queue_samples (taken_at, queue, ready, in_flight, delayed, dead)
             VALUES (date_trunc('minute', now()) - make_interval(mins => $1::int), $2, $3, 1, 0, 0)",
        )
        .bind(ago as i32)
        .bind(queue)
        .bind(ready)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// A dead letter in `queue`, as the settle script writes it.
async fn dead_letter(queues: &Queues, queue: &str, error: &str) {
    let store = queues.store(queue);
    let mut conn = queues.connection();
    let _: String = redis::cmd("XADD")
        .arg(&store.keys.dead)
        .arg("*")
        .arg(&[
            ("id", "job-dead-1"),
            (
                "args",
                r#"{"message_id":"00000000-0000-0000-0000-000000000001"}"#,
            ),
            ("attempt", "5"),
            ("max", "5"),
            ("idem", ""),
            ("enq", "1700000000000"),
            ("error", error),
            ("failed_at", &copcca_sms::queue::now_ms().to_string()),
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// What the seeded page must show.
struct Seeded {
    kilimo: CompanyId,
    bahari: CompanyId,
}

/// Two companies (one with markup in its name), messages sent and failed over the last hour,
/// depth samples, a waiting job and a dead letter.
async fn seed(app: &TestApp) -> Seeded {
    let pool = &app.state.pool;
    let kilimo = company_named(pool, "Kilimo <Traders> & Sons", 500).await;
    let bahari = accounts::create_company(pool, "Bahari Ltd", Country::TZ)
        .await
        .unwrap()
        .id;
    let payment = paid_payment(pool, bahari, 120).await;
    let mut conn = pool.acquire().await.unwrap();
    ledger::credit_purchase(&mut conn, payment, "test")
        .await
        .unwrap();
    // Kilimo has 3 credits held for a message on its way (`sending`).
    let waiting = message(pool, kilimo, 3).await;
    reserve_one(
        &mut conn,
        kilimo,
        waiting,
        credits(3),
        Duration::from_secs(600),
    )
    .await
    .unwrap()
    .expect("a hold");
    for ago in [1, 1, 2, 5, 5, 5, 20] {
        sent_message(pool, kilimo, ago, "delivered", None).await;
    }
    sent_message(pool, bahari, 3, "sent", None).await;
    sent_message(
        pool,
        bahari,
        4,
        "undelivered",
        Some(("30003", "Unreachable <handset>")),
    )
    .await;
    sent_message(
        pool,
        kilimo,
        10,
        "failed",
        Some(("21211", "Invalid 'To' number")),
    )
    .await;
    samples(pool, "sms", &[(30, 4), (20, 9), (10, 3), (1, 6), (0, 2)]).await;
    samples(pool, "refunds", &[(20, 1), (0, 0)]).await;
    app.state
        .queues
        .enqueue(&copcca_jobs::SendSms {
            message_id: uuid::Uuid::now_v7(),
        })
        .await
        .unwrap();
    dead_letter(
        &app.state.queues,
        "refunds",
        "gave up after 5 attempts: <boom>",
    )
    .await;
    Seeded { kilimo, bahari }
}

#[sqlx::test]
async fn a_token_in_the_url_becomes_a_strict_http_only_cookie_and_leaves_the_url(pool: PgPool) {
    let app = spawn_app_with(pool, &[("REDIS_PREFIX", &prefix())]).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let client = no_redirects();

    let r = client
        .get(app.url(&format!("/admin?token={admin}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/admin");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with(&format!("copcca_admin={admin};")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let page = client
        .get(app.url("/admin"))
        .header(COOKIE, format!("other=1; copcca_admin={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<svg id="chart-queue-depth""#));

    // The bearer header works as on every /admin endpoint.
    let r = client
        .get(app.url("/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.state.queues.delete_all().await.unwrap();
}

#[sqlx::test]
async fn the_cookie_is_secure_when_the_service_is_served_over_https(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        &[
            ("REDIS_PREFIX", &prefix()),
            ("PUBLIC_URL", "https://sms.example.com"),
        ],
    )
    .await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let r = no_redirects()
        .get(app.url(&format!("/admin?token={admin}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[sqlx::test]
async fn only_the_operator_gets_the_page_or_a_cookie(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("REDIS_PREFIX", &prefix())]).await;
    let company = company_with(&pool, 0).await.id;
    let member = app.token(Some(company), Role::Member).await;
    let company_admin = app.token(Some(company), Role::Admin).await;
    let client = no_redirects();
    let get = |path: String, cookie: Option<String>| {
        let mut req = client.get(app.url(&path));
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send()
    };

    for token in [&member, &company_admin] {
        let r = get(format!("/admin?token={token}"), None).await.unwrap();
        assert!(r.headers().get(SET_COOKIE).is_none());
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = get("/admin".into(), Some(format!("copcca_admin={token}")))
            .await
            .unwrap();
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for bad in ["not-a-jwt", "", "a.b.c"] {
        let r = get(format!("/admin?token={bad}"), None).await.unwrap();
        assert!(r.headers().get(SET_COOKIE).is_none());
        problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    let r = get("/admin".into(), Some("copcca_admin=forged.token.x".into()))
        .await
        .unwrap();
    let body = problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(
        body["detail"].as_str().unwrap().contains("/admin?token="),
        "{body}"
    );
    // An expired operator token is refused as a cookie too.
    let user = accounts::create_user(&pool, None, Role::SuperAdmin, None)
        .await
        .unwrap();
    let expired = app.state.jwt.issue(user.id, chrono::Duration::hours(-2));
    let r = get("/admin".into(), Some(format!("copcca_admin={expired}")))
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;

    let r = get("/admin".into(), None).await.unwrap();
    let body = problem(r, StatusCode::UNAUTHORIZED, "missing_credentials").await;
    assert!(
        body["detail"].as_str().unwrap().contains("/admin?token="),
        "{body}"
    );
}

#[sqlx::test]
async fn the_page_shows_balances_queues_failures_and_dead_letters_escaped(pool: PgPool) {
    let app = spawn_app_with(pool, &[("REDIS_PREFIX", &prefix())]).await;
    let seeded = seed(&app).await;
    let evil = company_named(&app.state.pool, "<script>alert(1)</script>", 1).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let html = app
        .client
        .get(app.url("/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(
        !html.contains("<script"),
        "markup from the database is escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains(&format!(r#"data-company="{evil}""#)));
    // Kilimo: 500 granted by adjustment, 3 of them reserved; Bahari: 120 bought.
    let row = |company: CompanyId, name: &str, figures: [i64; 4]| {
        let cells: String = figures
            .iter()
            .map(|n| format!(r#"<td class="n">{n}</td>"#))
            .collect();
        format!(r#"<tr data-company="{company}"><td>{name}</td>{cells}</tr>"#)
    };
    let kilimo = row(
        seeded.kilimo,
        "Kilimo &lt;Traders&gt; &amp; Sons",
        [497, 3, 0, 0],
    );
    assert!(html.contains(&kilimo), "{kilimo} not in {html}");
    assert!(html.contains(&row(seeded.bahari, "Bahari Ltd", [120, 0, 120, 0])));
    assert!(html.contains(r#"<tr data-queue="sms"><td>sms</td><td class="n">1</td>"#));
    assert!(html.contains("Unreachable &lt;handset&gt;"));
    assert!(html.contains("Invalid &#39;To&#39; number"));
    assert!(html.contains("30003") && html.contains("21211"));
    assert!(html.contains("gave up after 5 attempts: &lt;boom&gt;"));
    assert!(
        html.contains("refunds/"),
        "the dead letter's id names its queue"
    );
    // Depth: the samples of the hour (5 for sms, 2 for refunds); backlog = ready + in flight.
    let depth = svg(&html, "chart-queue-depth");
    assert_eq!(depth.matches("<circle").count(), 7, "{depth}");
    assert!(depth.contains(r#"data-series="sms""#) && depth.contains(r#"data-value="10""#));
    // Send rate: one point per minute per series; 10 sends began this hour, 2 of them failed.
    let rate = svg(&html, "chart-send-rate");
    assert_eq!(rate.matches("<circle").count(), 120);
    assert_eq!(point_sum(rate), 10);
    let (_, failed) = rate
        .split_once(r#"data-series="failed / undelivered""#)
        .unwrap();
    assert_eq!(point_sum(failed), 2);
    assert!(html.contains("Ledger: no clean audit recorded yet"));
    // Once a clean audit has recorded its checkpoint, the page says when and how far.
    let audit =
        copcca_sms::ledger::audit_and_checkpoint(&app.state.pool, copcca_sms::ledger::Scope::Full)
            .await
            .unwrap();
    let through = audit.checkpoint.expect("a checkpoint");
    let html = app
        .client
        .get(app.url("/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("through entry {through};")),
        "{html}"
    );
    app.state.queues.delete_all().await.unwrap();
}

#[sqlx::test]
async fn the_page_still_answers_when_redis_is_down(pool: PgPool) {
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("REDIS_PREFIX", &prefix()),
        ],
    )
    .await;
    company_named(&pool, "Bahari Ltd", 42).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let started = std::time::Instant::now();
    let r = app
        .client
        .get(app.url("/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    // Redis is waited for 2 s, once: its reads run together. One after the other, the queues,
    // the dead letters, the pause and three route circuits took over 10 s.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(html.contains(r#"<p class="error">Redis"#), "{html}");
    assert!(html.contains(r#"<td class="n">42</td>"#));
    assert!(html.contains(r#"<svg id="chart-send-rate""#));
}

#[sqlx::test]
async fn the_sampler_keeps_one_row_per_queue_and_minute_for_a_day(pool: PgPool) {
    let queues = Queues::connect(&std::env::var("REDIS_URL").unwrap(), &prefix())
        .await
        .unwrap();
    for _ in 0..2 {
        queues
            .enqueue(&copcca_jobs::SendSms {
                message_id: uuid::Uuid::now_v7(),
            })
            .await
            .unwrap();
    }
    samples(&pool, "sms", &[(25 * 60, 7), (23 * 60, 5)]).await;

    assert_eq!(sample_queues::sample_once(&pool, &queues).await.unwrap(), 4);
    // Again within the minute (a restart, a second scheduler): the row is overwritten.
    assert_eq!(sample_queues::sample_once(&pool, &queues).await.unwrap(), 4);

    let rows: Vec<(String, i64, bool)> = sqlx::query_as(
        "SELECT queue, ready, taken_at = date_trunc('minute', now()) FROM queue_samples
         ORDER BY taken_at, queue",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let sms_now = rows.iter().find(|r| r.0 == "sms" && r.2).unwrap();
    assert_eq!(sms_now.1, 2);
    assert_eq!(rows.iter().filter(|r| r.2).count(), 4, "{rows:?}");
    // The 25-hour-old sample is gone, the 23-hour-old one stays.
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[0].1, 5);
    queues.delete_all().await.unwrap();
}

/// The `svg` element with `id` in `html`.
fn svg<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!(r#"<svg id="{id}""#))
        .unwrap_or_else(|| panic!("no svg#{id}"));
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}

/// The sum of the `data-value`s of the points in `svg`.
fn point_sum(svg: &str) -> i64 {
    svg.split(r#"data-value=""#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse::<i64>().unwrap())
        .sum()
}
