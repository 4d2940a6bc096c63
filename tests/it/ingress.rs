//! Bounded ingress: what a webhook that is refused may cost (a capped record, kept for a
//! while), the per-address flood limit in front of `/webhooks`, and callback URLs under a
//! `PUBLIC_URL` with a path.

use std::time::Duration;

use copcca_sms::domain::Country;
use copcca_sms::fakes::daraja::{PushOutcome, PushScript};
use copcca_sms::inbox;
use copcca_sms::messages::MessageStatus;
use copcca_sms::payments::Status;
use copcca_sms::workers::reconcile;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::sending::{DRAIN, Harness};
use crate::support::spawn_app_with;

/// A forged Twilio status callback (signed with the wrong token) with `padding` bytes of body.
async fn forged(
    client: &reqwest::Client,
    url: &str,
    padding: usize,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let body = format!(
        "MessageSid=SM1&MessageStatus=failed&Pad={}",
        "x".repeat(padding)
    );
    let mut req = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "forged")
        .body(body);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

async fn rejected(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE NOT accepted")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_rejected_webhook_keeps_only_the_start_of_its_body_its_length_and_digest(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[]).await;
    let r = forged(
        &app.client,
        &app.url("/webhooks/twilio/status"),
        500_000,
        None,
    )
    .await;
    assert_eq!(r.status(), 403);
    // An M-Pesa callback to a guessed token: rejected before anything is parsed.
    let big = format!("{{\"Body\":\"{}\"}}", "é".repeat(100_000));
    let r = app
        .client
        .post(app.url("/webhooks/mpesa/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let rows: Vec<(String, String, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT provider, payload, payload_bytes, payload_sha256 FROM webhook_events
         WHERE NOT accepted ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let twilio_body = format!(
        "MessageSid=SM1&MessageStatus=failed&Pad={}",
        "x".repeat(500_000)
    );
    for ((provider, payload, bytes, sha), (want_provider, body)) in rows
        .iter()
        .zip([("twilio", twilio_body.as_str()), ("mpesa", &big)])
    {
        assert_eq!(provider, want_provider);
        assert!(
            payload.len() <= inbox::REJECTED_PAYLOAD_BYTES,
            "{}",
            payload.len()
        );
        assert!(payload.len() > inbox::REJECTED_PAYLOAD_BYTES - 4);
        assert!(body.starts_with(payload.as_str()));
        assert_eq!(*bytes, Some(body.len() as i32));
        assert_eq!(
            sha.as_deref(),
            Some(hex::encode(Sha256::digest(body)).as_str())
        );
    }
}

#[sqlx::test]
async fn rejected_webhooks_past_their_retention_are_deleted_by_the_reconciler(pool: PgPool) {
    let h = Harness::new(pool.clone(), 0).await;
    let url = h.app.url("/webhooks/twilio/status");
    for _ in 0..3 {
        assert_eq!(forged(&h.app.client, &url, 10, None).await.status(), 403);
    }
    // Two rejections and an accepted event are old; one rejection is recent.
    sqlx::query(
        "INSERT INTO webhook_events (provider, event_key, payload, accepted, received_at)
         VALUES ('twilio', 'SMold:delivered', 'x', true, now() - interval '40 days')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE webhook_events SET received_at = now() - interval '31 days'
         WHERE id IN (SELECT id FROM webhook_events WHERE NOT accepted ORDER BY id LIMIT 2)",
    )
    .execute(&pool)
    .await
    .unwrap();

    let settings = reconcile::Settings {
        rejected_webhooks_kept: Duration::from_secs(30 * 86_400),
        ..Default::default()
    };
    let report = reconcile::reconcile_once(&h.deps, &settings).await.unwrap();
    assert_eq!(report.rejected_webhooks_pruned, 2);
    assert_eq!(rejected(&pool).await, 1, "the recent rejection is kept");
    let accepted: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE accepted")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(accepted, 1, "accepted events are the dedupe record: kept");
    let again = reconcile::reconcile_once(&h.deps, &settings).await.unwrap();
    assert_eq!(again.rejected_webhooks_pruned, 0);
}

#[sqlx::test]
async fn a_flood_from_one_address_is_answered_429_before_anything_is_stored(pool: PgPool) {
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("WEBHOOK_RATE_PER_SECOND", "1"),
            ("WEBHOOK_RATE_BURST", "3"),
        ],
    )
    .await;
    let url = app.url("/webhooks/twilio/status");
    let mut statuses = vec![];
    for _ in 0..6 {
        let r = forged(&app.client, &url, 10, None).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
            assert_eq!(
                r.headers()["content-type"].to_str().unwrap(),
                "application/problem+json"
            );
            let problem: serde_json::Value = r.json().await.unwrap();
            assert_eq!(problem["code"], "rate_limited", "{problem}");
        }
    }
    assert_eq!(statuses, [403, 403, 403, 429, 429, 429]);
    assert_eq!(rejected(&pool).await, 3, "a limited request stores nothing");

    // The other routes of the service are not limited by it.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The budget comes back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(forged(&app.client, &url, 10, None).await.status(), 403);
}

#[sqlx::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_budget(pool: PgPool) {
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("WEBHOOK_RATE_PER_SECOND", "1"),
            ("WEBHOOK_RATE_BURST", "2"),
            ("TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
        ],
    )
    .await;
    let url = app.url("/webhooks/twilio/status");
    let send = |xff: &'static str| {
        let (client, url) = (app.client.clone(), url.clone());
        async move { forged(&client, &url, 10, Some(xff)).await.status().as_u16() }
    };
    // What the caller writes on the left is not believed: the proxy's entry is the address.
    assert_eq!(send("9.9.9.1, 203.0.113.5").await, 403);
    assert_eq!(send("9.9.9.2, 203.0.113.5").await, 403);
    assert_eq!(send("9.9.9.3, 203.0.113.5").await, 429);
    // Another address, through the same proxy: its own budget.
    assert_eq!(send("203.0.113.6").await, 403);
}

/// A proxy that serves the service under `/sms/`, as a deployment behind a path does: it strips
/// the prefix and forwards the rest (method, headers, body) to `upstream`.
async fn path_proxy() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}/sms/", listener.local_addr().unwrap());
    (listener, public)
}

fn serve_path_proxy(listener: tokio::net::TcpListener, upstream: String) {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::response::Response;
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let path = req.uri().path_and_query().unwrap().as_str().to_string();
            let Some(rest) = path.strip_prefix("/sms") else {
                return Response::builder().status(404).body(Body::empty()).unwrap();
            };
            let (parts, body) = req.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap();
            let mut forward = client.request(parts.method, format!("{upstream}{rest}"));
            for (name, value) in &parts.headers {
                if name != "host" {
                    forward = forward.header(name, value);
                }
            }
            let answer = forward.body(body).send().await.unwrap();
            Response::builder()
                .status(answer.status().as_u16())
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
}

#[sqlx::test]
async fn twilio_callbacks_work_under_a_public_url_with_a_path(pool: PgPool) {
    let (listener, public) = path_proxy().await;
    let h = Harness::with_env(pool, 10, &[("PUBLIC_URL", &public)]).await;
    serve_path_proxy(listener, h.app.base.clone());

    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let message = &h.twilio.messages()[0];
    assert_eq!(
        message.status_callback.as_deref(),
        Some(format!("{public}webhooks/twilio/status?message={id}").as_str()),
        "the callback URL keeps PUBLIC_URL's path"
    );
    // Twilio signs the URL it was given and posts it through the proxy: accepted.
    assert_eq!(
        h.twilio
            .callback(&message.sid, "failed", Some("30008"))
            .await
            .unwrap(),
        204
    );
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!((m.status, m.refunded), (MessageStatus::Failed, true));
    assert_eq!(rejected(h.pool()).await, 0);
}

#[sqlx::test]
async fn mpesa_and_stripe_callbacks_work_under_a_public_url_with_a_path(pool: PgPool) {
    let (listener, public) = path_proxy().await;
    let h = crate::payments::Harness::with_env(pool, Country::KE, &[("PUBLIC_URL", &public)]).await;
    serve_path_proxy(listener, h.app.base.clone());
    assert_eq!(
        h.app
            .state
            .providers
            .current()
            .payments
            .checkout_success_url,
        format!("{public}billing/success?session_id={{CHECKOUT_SESSION_ID}}")
    );

    h.daraja.script([PushScript::new(PushOutcome::Paid)]);
    let id = h
        .start(
            serde_json::json!({"package_id": "starter", "method": "mpesa", "phone": "0712345678"}),
        )
        .await;
    let push = h.daraja.pushes()[0].clone();
    assert!(
        push.callback_url
            .starts_with(&format!("{public}webhooks/mpesa/")),
        "{}",
        push.callback_url
    );
    h.daraja
        .wait_settled(push.checkout_request_id.as_deref().unwrap())
        .await;
    assert_eq!(
        h.daraja.deliveries()[0].status,
        Some(200),
        "through the proxy"
    );
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Credited);
}
