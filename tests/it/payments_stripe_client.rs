//! The Stripe Checkout client against the fake Stripe (no database): idempotent creates, error
//! classification, reading sessions back, and signed events received by a loopback endpoint that
//! verifies them as the service must.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use copcca_sms::config::Secret;
use copcca_sms::fakes::stripe::{self as fake, Behaviour, FakeStripe};
use copcca_sms::providers::stripe::{
    CheckoutRequest, CheckoutSession, Event, StripeClient, StripeError, signature,
};
use url::Url;
use uuid::Uuid;

fn request(key: &str) -> CheckoutRequest<'_> {
    CheckoutRequest {
        idempotency_key: key,
        payment_id: Uuid::from_u128(0x9001),
        company_id: Uuid::from_u128(0x42),
        amount_minor: 2_500_000,
        currency: "TZS",
        product_name: "1,000 SMS credits",
        success_url: "https://crm.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url: "https://crm.example/billing/cancel",
        expires_at: None,
    }
}

async fn create(fake: &FakeStripe, key: &str) -> CheckoutSession {
    fake.client()
        .create_checkout_session(&request(key))
        .await
        .unwrap()
}

fn api_error(e: &StripeError) -> (u16, &str, Option<&str>) {
    match e {
        StripeError::Api {
            status, kind, code, ..
        } => (*status, kind.as_str(), code.as_deref()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn one_key_creates_one_session_and_other_params_under_it_are_refused() {
    let fake = FakeStripe::start().await.unwrap();
    let key = Uuid::new_v4().to_string();
    let first = create(&fake, &key).await;
    let again = create(&fake, &key).await;
    assert_eq!(first, again);
    assert_eq!(fake.sessions().len(), 1);

    assert!(first.id.starts_with("cs_test_"));
    assert_eq!(
        first.url.as_deref(),
        Some(format!("https://checkout.stripe.com/c/pay/{}", first.id).as_str())
    );
    assert_eq!(
        (first.status.as_str(), first.payment_status.as_str()),
        ("open", "unpaid")
    );
    assert_eq!(
        (first.amount_total, first.currency.as_deref()),
        (Some(2_500_000), Some("tzs"))
    );
    let payment_id = Uuid::from_u128(0x9001).to_string();
    assert_eq!(
        first.client_reference_id.as_deref(),
        Some(payment_id.as_str())
    );
    assert_eq!(first.metadata["payment_id"], payment_id);
    assert_eq!(
        first.metadata["company_id"],
        Uuid::from_u128(0x42).to_string()
    );
    let stored = fake.session(&first.id).unwrap();
    assert_eq!(stored.payment_intent_metadata["payment_id"], payment_id);

    // What went over the wire: the key, and the bracket form decoded as Stripe reads it.
    let sent = &fake.requests()[0];
    assert_eq!(sent.idempotency_key.as_deref(), Some(key.as_str()));
    let expected: Vec<(String, String)> = request(&key)
        .form()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(sent.params, expected);

    let mut changed = request(&key);
    changed.amount_minor = 50_000;
    let err = fake
        .client()
        .create_checkout_session(&changed)
        .await
        .unwrap_err();
    assert_eq!(api_error(&err), (400, "idempotency_error", None));
    assert!(!err.is_retryable());
    assert_eq!(fake.sessions().len(), 1);
}

#[tokio::test]
async fn a_wrong_key_is_refused_for_good() {
    let fake = FakeStripe::start().await.unwrap();
    let client = StripeClient::new(
        fake.base.clone(),
        Secret::new("sk_test_wrongwrongwrong1234"),
    );
    let err = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap_err();
    assert_eq!(api_error(&err), (401, "invalid_request_error", None));
    assert!(!err.is_retryable());
    let StripeError::Api { message, .. } = &err else {
        unreachable!()
    };
    assert!(message.starts_with("Invalid API Key provided: sk_test_"));
    assert!(
        !message.contains("wrongwrong"),
        "the key is echoed redacted"
    );
    assert!(fake.sessions().is_empty());

    let err = client
        .retrieve_checkout_session("cs_test_x")
        .await
        .unwrap_err();
    assert_eq!(api_error(&err).0, 401);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable_with_the_same_key() {
    let fake = FakeStripe::start().await.unwrap();
    let client = fake.client();
    fake.fail_next_creates(1, 500);
    fake.script([Behaviour::Fail(429)]);

    let err = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap_err();
    assert_eq!(api_error(&err), (500, "api_error", None));
    assert!(err.is_retryable());
    let err = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StripeError::RateLimited), "{err:?}");
    assert!(err.is_retryable());

    let session = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap();
    assert_eq!(fake.sessions().len(), 1);
    assert_eq!(fake.sessions()[0].id, session.id);
}

#[tokio::test]
async fn a_500_saved_under_a_key_is_replayed_until_a_new_key() {
    let fake = FakeStripe::start().await.unwrap();
    let client = fake.client();
    fake.script([Behaviour::FailSaved]);
    for _ in 0..2 {
        let err = client
            .create_checkout_session(&request("k1"))
            .await
            .unwrap_err();
        assert_eq!(api_error(&err), (500, "api_error", None));
    }
    assert!(fake.sessions().is_empty());
    client
        .create_checkout_session(&request("k2"))
        .await
        .unwrap();
    assert_eq!(fake.sessions().len(), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_later_retry_finds_the_session() {
    let fake = FakeStripe::start().await.unwrap();
    let client = fake.client().with_timeout(Duration::from_millis(300));
    fake.set_delay(Some(Duration::from_millis(1000)));

    let err = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StripeError::Timeout), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(fake.sessions().len(), 1, "Stripe acted on it anyway");

    // While the first is still executing, the key is locked: 409, retryable.
    let err = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap_err();
    assert_eq!(api_error(&err), (409, "idempotency_error", None));
    assert!(err.is_retryable());

    tokio::time::sleep(Duration::from_millis(1200)).await;
    fake.set_delay(None);
    let session = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap();
    assert_eq!(session.id, fake.sessions()[0].id);
    assert_eq!(fake.sessions().len(), 1);
}

#[tokio::test]
async fn an_unreachable_stripe_is_not_sent_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let client = StripeClient::new(base, Secret::new(fake::SECRET_KEY));
    let err = client
        .create_checkout_session(&request("k1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StripeError::Transport { sent: false, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_session_is_read_back_as_stripe_holds_it() {
    let fake = FakeStripe::start().await.unwrap();
    let client = fake.client();
    let created = create(&fake, "k1").await;
    assert_eq!(
        client.retrieve_checkout_session(&created.id).await.unwrap(),
        created
    );

    fake.set_session_amount(&created.id, 100, "usd");
    let changed = client.retrieve_checkout_session(&created.id).await.unwrap();
    assert_eq!(
        (changed.amount_total, changed.currency.as_deref()),
        (Some(100), Some("usd"))
    );

    let err = client
        .retrieve_checkout_session("cs_test_nope")
        .await
        .unwrap_err();
    assert_eq!(
        api_error(&err),
        (404, "invalid_request_error", Some("resource_missing"))
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn the_fake_refuses_what_stripe_refuses() {
    let fake = FakeStripe::start().await.unwrap();
    let post = |form: Vec<(&'static str, &'static str)>| {
        let url = fake.base.join("/v1/checkout/sessions").unwrap();
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(fake::SECRET_KEY)
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"]["param"].as_str().map(str::to_string))
        }
    };
    let valid = vec![
        ("mode", "payment"),
        ("success_url", "https://crm.example/s"),
        ("line_items[0][price_data][currency]", "kes"),
        ("line_items[0][price_data][unit_amount]", "50000"),
        ("line_items[0][price_data][product_data][name]", "credits"),
        ("line_items[0][quantity]", "1"),
    ];
    assert_eq!(post(valid.clone()).await.0, 200);
    let without = |k: &str| valid.iter().copied().filter(|(n, _)| *n != k).collect();
    assert_eq!(post(without("mode")).await, (400, Some("mode".into())));
    assert_eq!(
        post(without("line_items[0][price_data][product_data][name]")).await,
        (
            400,
            Some("line_items[0][price_data][product_data][name]".into())
        )
    );
    let mut upper = without("line_items[0][price_data][currency]");
    upper.push(("line_items[0][price_data][currency]", "KES"));
    assert_eq!(
        post(upper).await,
        (400, Some("line_items[0][price_data][currency]".into()))
    );
    let mut unknown = valid.clone();
    unknown.push(("metdata[x]", "1"));
    assert_eq!(post(unknown).await, (400, Some("metdata[x]".into())));
    let mut too_soon = valid.clone();
    let soon: &'static str = (chrono::Utc::now().timestamp() + 60).to_string().leak();
    too_soon.push(("expires_at", soon));
    assert_eq!(post(too_soon).await, (400, Some("expires_at".into())));
    assert_eq!(fake.sessions().len(), 1);
}

/// What a webhook endpoint saw: verified events, or the reason a delivery was refused.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Result<Event, &'static str>>>>,
}

impl Receiver {
    async fn start(fake: &FakeStripe) -> Self {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/webhooks/stripe", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake.set_webhook_url(Url::parse(&format!("http://{addr}/webhooks/stripe")).unwrap());
        receiver
    }

    fn events(&self) -> Vec<Event> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter_map(|r| r.clone().ok()).collect()
    }

    fn last(&self) -> Event {
        self.events().pop().expect("an event")
    }

    fn refusals(&self) -> Vec<&'static str> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter_map(|r| r.clone().err()).collect()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let verdict = signature::verify(header, &body, fake::WEBHOOK_SECRET, now, 300)
        .map(|_| serde_json::from_slice::<Event>(&body).expect("a verified body is an event"))
        .map_err(|e| e.reason());
    let status = if verdict.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    r.seen.lock().unwrap().push(verdict);
    status
}

#[tokio::test]
async fn a_paid_session_then_refunds_arrive_signed() {
    let fake = FakeStripe::start().await.unwrap();
    let receiver = Receiver::start(&fake).await;
    let created = create(&fake, "k1").await;

    let delivery = fake.complete(&created.id, true).await;
    assert_eq!(delivery.status, 200);
    let event = receiver.last();
    assert_eq!(event.id, delivery.event_id);
    assert_eq!(event.kind, "checkout.session.completed");
    let session = event.checkout_session().unwrap();
    assert_eq!(
        (session.status.as_str(), session.payment_status.as_str()),
        ("complete", "paid")
    );
    assert_eq!(session.url, None);
    assert_eq!(session.metadata, created.metadata);
    let pi = session.payment_intent.clone().unwrap();
    assert!(pi.starts_with("pi_"));
    assert_eq!(
        fake.client()
            .retrieve_checkout_session(&created.id)
            .await
            .unwrap(),
        session
    );

    assert_eq!(fake.refund(&created.id, 500_000).await.status, 200);
    let event = receiver.last();
    assert_eq!(event.kind, "charge.refunded");
    let charge = event.charge().unwrap();
    assert_eq!(
        (
            charge.amount,
            charge.amount_refunded,
            charge.refunded,
            charge.currency.as_str()
        ),
        (2_500_000, 500_000, false, "tzs")
    );
    assert_eq!(charge.payment_intent.as_deref(), Some(pi.as_str()));
    assert_eq!(
        charge.metadata["payment_id"],
        Uuid::from_u128(0x9001).to_string()
    );

    fake.refund(&created.id, 2_000_000).await;
    let charge = receiver.last().charge().unwrap();
    assert_eq!((charge.amount_refunded, charge.refunded), (2_500_000, true));
    assert!(receiver.refusals().is_empty());
}

#[tokio::test]
async fn delayed_payments_and_expiry() {
    let fake = FakeStripe::start().await.unwrap();
    let receiver = Receiver::start(&fake).await;

    let succeeds = create(&fake, "k1").await;
    fake.complete(&succeeds.id, false).await;
    let s = receiver.last().checkout_session().unwrap();
    assert_eq!(
        (s.status.as_str(), s.payment_status.as_str()),
        ("complete", "unpaid")
    );
    fake.async_payment_succeeded(&succeeds.id).await;
    let event = receiver.last();
    assert_eq!(event.kind, "checkout.session.async_payment_succeeded");
    assert_eq!(event.checkout_session().unwrap().payment_status, "paid");

    let fails = create(&fake, "k2").await;
    fake.complete(&fails.id, false).await;
    fake.async_payment_failed(&fails.id).await;
    let event = receiver.last();
    assert_eq!(event.kind, "checkout.session.async_payment_failed");
    assert_eq!(event.checkout_session().unwrap().payment_status, "unpaid");

    let lapses = create(&fake, "k3").await;
    fake.expire(&lapses.id).await;
    let event = receiver.last();
    assert_eq!(event.kind, "checkout.session.expired");
    let s = event.checkout_session().unwrap();
    assert_eq!((s.status.as_str(), s.url), ("expired", None));
    assert_eq!(receiver.events().len(), 5);
}

#[tokio::test]
async fn forged_stale_and_repeated_deliveries() {
    let fake = FakeStripe::start().await.unwrap();
    let created = create(&fake, "k1").await;

    // No endpoint yet: stored, not delivered.
    let held = fake.complete(&created.id, true).await;
    assert_eq!(held.status, 0);
    let receiver = Receiver::start(&fake).await;
    let body = fake.events()[0].body.clone();
    assert!(
        body.contains("\n  \"id\""),
        "posted pretty-printed, as Stripe does"
    );

    let now = chrono::Utc::now().timestamp();
    assert_eq!(fake.deliver(&body, None).await, 400);
    let forged = signature::sign("whsec_not_ours", now, body.as_bytes());
    assert_eq!(fake.deliver(&body, Some(forged)).await, 400);
    let stale = signature::sign(fake::WEBHOOK_SECRET, now - 600, body.as_bytes());
    assert_eq!(fake.deliver(&body, Some(stale)).await, 400);
    let future = signature::sign(fake::WEBHOOK_SECRET, now + 600, body.as_bytes());
    assert_eq!(fake.deliver(&body, Some(future)).await, 400);
    let tampered = body.replace("\"paid\"", "\"unpaid\"");
    let signed = signature::sign(fake::WEBHOOK_SECRET, now, body.as_bytes());
    assert_eq!(fake.deliver(&tampered, Some(signed)).await, 400);
    assert_eq!(
        receiver.refusals(),
        vec!["malformed", "mismatch", "too_old", "too_new", "mismatch"]
    );
    assert!(receiver.events().is_empty());

    assert_eq!(
        fake.redeliver(&held.event_id, 3, true).await,
        vec![200, 200, 200]
    );
    assert_eq!(fake.redeliver(&held.event_id, 1, false).await, vec![200]);
    let events = receiver.events();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.id == held.event_id));
}
