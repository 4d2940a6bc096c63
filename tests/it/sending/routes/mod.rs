//! Sending through routes (issue 19): the routing table picks Beem, Africa's Talking or Twilio
//! per message, a failing route's circuit sends new messages to the next one, a send whose
//! outcome is unknown stays on its route, and the unsigned routes' delivery reports come to a
//! secret URL and move only their own route's messages.

use std::time::Duration;

use copcca_sms::fakes::africastalking::{self as fake_at, FakeAfricasTalking};
use copcca_sms::fakes::beem::{self as fake_beem, FakeBeem};
use copcca_sms::messages::{MessageStatus, report_pulls};
use copcca_sms::providers::SmsGateway;
use copcca_sms::routing::{self, CircuitState, RouteName, RouteRule, RoutingTable};
use copcca_sms::workers::reconcile;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::Harness;

const DRAIN: Duration = Duration::from_secs(120);

/// A harness whose workers and API know the fake Beem and Africa's Talking accounts beside the
/// fake Twilio, with `rules` as the routing table.
struct Routed {
    h: Harness,
    beem: FakeBeem,
    at: FakeAfricasTalking,
}

async fn routed(pool: PgPool, credits: i64, rules: &[(&str, &[RouteName])]) -> Routed {
    routed_with_timeout(pool, credits, rules, None).await
}

async fn routed_with_timeout(
    pool: PgPool,
    credits: i64,
    rules: &[(&str, &[RouteName])],
    timeout: Option<Duration>,
) -> Routed {
    let beem = FakeBeem::start().await.unwrap();
    let at = FakeAfricasTalking::start().await.unwrap();
    let (beem_base, at_base) = (beem.base.to_string(), at.base.to_string());
    let env = [
        ("BEEM_API_BASE", beem_base.as_str()),
        ("BEEM_DLR_BASE", beem_base.as_str()),
        ("BEEM_API_KEY", fake_beem::API_KEY),
        ("BEEM_SECRET_KEY", fake_beem::SECRET_KEY),
        ("BEEM_SOURCE_ADDR", fake_beem::SOURCE_ADDR),
        ("AT_API_BASE", at_base.as_str()),
        ("AT_USERNAME", fake_at::USERNAME),
        ("AT_API_KEY", fake_at::API_KEY),
        ("AT_SENDER_ID", fake_at::SENDER_ID),
    ];
    let mut h = Harness::with_env(pool, credits, &env).await;
    let (mut beem_client, mut at_client) = (beem.client(), at.client());
    if let Some(t) = timeout {
        beem_client = beem_client.with_timeout(t);
        at_client = at_client.with_timeout(t);
    }
    h.deps.change_providers(|p| {
        p.sms.beem = Some(SmsGateway::beem(beem_client, 2));
        p.sms.africastalking = Some(SmsGateway::africastalking(at_client, 2));
    });
    let rules = rules
        .iter()
        .map(|(destination, routes)| RouteRule {
            destination: destination.to_string(),
            company_id: None,
            routes: routes.to_vec(),
        })
        .collect();
    routing::replace(h.pool(), &RoutingTable::new(rules).unwrap(), "test")
        .await
        .unwrap();
    Routed { h, beem, at }
}

impl Routed {
    /// The route's delivery-report URL as the operator is shown it.
    async fn report_url(&self, route: RouteName) -> String {
        let app = &self.h.app;
        let admin = app.token(None, copcca_sms::domain::Role::SuperAdmin).await;
        let status = crate::support::route_status(app, &admin, route).await;
        status["report_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no report URL for {route}: {status}"))
            .to_string()
    }

    /// The operator's status page (HTML).
    async fn status_page(&self) -> String {
        let admin = self
            .h
            .app
            .token(None, copcca_sms::domain::Role::SuperAdmin)
            .await;
        let page = self
            .h
            .app
            .client
            .get(self.h.app.url("/admin"))
            .bearer_auth(admin);
        page.send().await.unwrap().text().await.unwrap()
    }

    /// The report URL of `route` on this test's server (the shown one names `PUBLIC_URL`).
    async fn local_report_url(&self, route: RouteName) -> String {
        let shown = self.report_url(route).await;
        let path = &shown[shown.find("/webhooks/").unwrap()..];
        self.h.app.url(path)
    }
}

mod held;
mod reports;

/// Every recipient the fake Beem sent to, by our message id.
fn beem_sent(beem: &FakeBeem) -> Vec<String> {
    beem.sends()
        .into_iter()
        .flat_map(|s| s.recipients)
        .filter(|r| r.valid)
        .map(|r| r.recipient_id)
        .collect()
}

#[sqlx::test]
async fn each_destination_takes_its_route_and_the_rest_twilio(pool: PgPool) {
    let r = routed(
        pool,
        10,
        &[
            ("255", &[RouteName::Beem, RouteName::Twilio]),
            ("254", &[RouteName::Africastalking]),
        ],
    )
    .await;
    let tz = r.h.accept("0754123456", "Habari").await;
    let ke = r.h.accept("+254712345678", "Habari").await;
    let us = r.h.accept("+15005550006", "Hello").await;
    r.h.drain(DRAIN).await;

    assert_eq!(beem_sent(&r.beem), vec![tz.to_string()]);
    let at_sends = r.at.sends();
    assert_eq!(at_sends.len(), 1);
    assert_eq!(r.h.twilio.messages().len(), 1);
    for (id, provider) in [(tz, "beem"), (ke, "africastalking"), (us, "twilio")] {
        let m = r.h.message(id).await;
        assert_eq!(m.status, MessageStatus::Sent, "{provider}");
        assert_eq!(m.provider.as_deref(), Some(provider));
        let account = m.provider_account.unwrap();
        assert_eq!(SmsGateway::route_of_account(&account).as_str(), provider);
    }
    // Africa's Talking reports its price with the send: recorded as the platform's cost.
    let (price, currency): (Option<rust_decimal::Decimal>, Option<String>) =
        sqlx::query_as("SELECT price, price_currency FROM messages WHERE id = $1")
            .bind(ke)
            .fetch_one(r.h.pool())
            .await
            .unwrap();
    assert!(price.is_some_and(|p| p > rust_decimal::Decimal::ZERO));
    assert!(currency.is_some());
    assert_eq!(r.h.available().await, 7, "one credit each");
    r.h.audit_clean().await;

    // Each route's sends in metrics, and on the operator's status page with its cost.
    for route in ["beem", "africastalking", "twilio"] {
        let series = format!("copcca_route_sends_total{{route=\"{route}\",outcome=\"sent\"}}");
        assert_eq!(crate::support::process_counter(&series), 1, "{series}");
    }
    let page = r.status_page().await;
    let row = |route: &str| {
        let start = page.find(&format!(r#"<tr data-route="{route}">"#)).unwrap();
        page[start..start + page[start..].find("</tr>").unwrap()].to_string()
    };
    assert!(
        row("beem").contains(r#"<td class="n">1</td><td class="n">0</td>"#),
        "{}",
        row("beem")
    );
    assert!(
        row("africastalking").contains("KES"),
        "{}",
        row("africastalking")
    );
    assert!(row("twilio").contains("closed"), "{}", row("twilio"));
}

#[sqlx::test]
async fn a_route_that_keeps_failing_is_skipped_and_nothing_is_sent_twice(pool: PgPool) {
    let r = routed(pool, 20, &[("255", &[RouteName::Beem, RouteName::Twilio])]).await;
    // Beem is down: every request fails with a 503 until its circuit opens.
    r.beem.script(std::iter::repeat_n(
        fake_beem::Behaviour::ServerError(503),
        50,
    ));
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(r.h.accept(&format!("07541234{n:02}"), "Reminder").await);
    }
    r.h.drain(DRAIN).await;

    assert!(beem_sent(&r.beem).is_empty(), "Beem sent nothing");
    let twilio = r.h.twilio.messages();
    assert_eq!(twilio.len(), 8, "each message once, through Twilio");
    let mut owners: Vec<String> = twilio.iter().filter_map(|m| m.our_message_id()).collect();
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), 8, "no message twice");
    for id in &ids {
        let m = r.h.message(*id).await;
        assert_eq!(
            (m.status, m.provider.as_deref()),
            (MessageStatus::Sent, Some("twilio"))
        );
    }
    let circuit = r.h.deps.circuits.state(RouteName::Beem).await.unwrap();
    assert_eq!(circuit.state, CircuitState::Open, "{circuit:?}");
    // Opened by the failures (a failed request counts once per message in it), not at once.
    assert!(circuit.failures >= 5, "{circuit:?}");
    assert!(!r.beem.requests().is_empty());
    let page = r.status_page().await;
    assert!(page.contains("Route beem is down"), "the operator is told");
    assert_eq!(r.h.available().await, 12, "charged once each");
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn a_refused_account_fails_over_at_once_and_a_refused_number_is_released(pool: PgPool) {
    let r = routed(
        pool,
        10,
        &[("254", &[RouteName::Africastalking, RouteName::Twilio])],
    )
    .await;
    // A number Africa's Talking refuses for good: failed, its credits released.
    r.at.fail_number("+254712000403", 403);
    let refused = r.h.accept("+254712000403", "Habari").await;
    r.h.drain(DRAIN).await;
    let m = r.h.message(refused).await;
    assert_eq!(m.status, MessageStatus::Failed);
    assert_eq!(m.error_code.as_deref(), Some("403"));
    assert_eq!(r.h.available().await, 10, "released");
    assert!(
        r.h.twilio.messages().is_empty(),
        "a refused number is not retried elsewhere"
    );

    // Our account out of balance (405): a configuration error closes the route at once, and
    // the message goes through Twilio instead.
    r.at.fail_number("+254712000405", 405);
    let moved = r.h.accept("+254712000405", "Habari").await;
    r.h.drain(DRAIN).await;
    let m = r.h.message(moved).await;
    assert_eq!(
        (m.status, m.provider.as_deref()),
        (MessageStatus::Sent, Some("twilio"))
    );
    let circuit =
        r.h.deps
            .circuits
            .state(RouteName::Africastalking)
            .await
            .unwrap();
    assert_eq!(circuit.state, CircuitState::Open);
    assert_eq!(r.h.available().await, 9);
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn messages_to_a_bulk_route_go_in_groups_and_each_is_settled_on_its_own(pool: PgPool) {
    let r = routed_with_timeout(
        pool,
        40,
        &[("254", &[RouteName::Africastalking])],
        Some(Duration::from_secs(5)),
    )
    .await;
    // Each request takes a moment to answer, so the messages waiting meanwhile form groups.
    r.at.script(std::iter::repeat_n(
        fake_at::Behaviour::Hang(Duration::from_millis(300)),
        10,
    ));
    let refused = ["+254712000007", "+254712000019"];
    for number in refused {
        r.at.fail_number(number, 403);
    }
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(r.h.accept(&format!("+2547120000{n:02}"), "Kumbusho").await);
    }
    r.h.drain(DRAIN).await;

    let requests = r.at.requests();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|form| {
            let to = form
                .iter()
                .find(|(k, _)| k == "to")
                .map(|(_, v)| v)
                .unwrap();
            to.split(',').count()
        })
        .collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        30,
        "every message in one request: {sizes:?}"
    );
    assert!(sizes.len() < 30, "grouped: {sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 100));
    for (n, id) in ids.iter().enumerate() {
        let m = r.h.message(*id).await;
        let number = format!("+2547120000{n:02}");
        if refused.contains(&number.as_str()) {
            assert_eq!(m.status, MessageStatus::Failed, "{number}");
        } else {
            assert_eq!(m.status, MessageStatus::Sent, "{number}");
            assert!(
                m.provider_id
                    .as_deref()
                    .is_some_and(|p| p.starts_with("ATXid"))
            );
        }
    }
    assert_eq!(r.h.available().await, 40 - 28, "28 charged, 2 released");
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn two_worker_processes_share_a_bulk_routes_requests_in_flight(pool: PgPool) {
    let mut r = routed(pool, 20, &[("255", &[RouteName::Beem])]).await;
    // Beem takes two requests at once and answers each after 150 ms; every message has its own
    // body (so its own request), and two worker processes, each with its own group runner,
    // send at once: only a fleet-wide cap keeps the third request from being refused.
    r.beem.limit(None, Some(2));
    r.beem.script(std::iter::repeat_n(
        fake_beem::Behaviour::Hang(Duration::from_millis(150)),
        12,
    ));
    let second = |p: &mut copcca_sms::live::Providers| {
        p.sms.beem = Some(SmsGateway::beem(r.beem.client(), 2));
    };
    let mut other = r.h.deps.clone();
    other.change_providers(second);
    r.h.deps.change_providers(second);
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            r.h.accept(&format!("+2557540000{n:02}"), &format!("Kumbusho {n}"))
                .await,
        );
    }
    let queues = ["sms", "refunds", "sweeps"];
    tokio::join!(
        crate::support::run_workers_until_idle(&r.h.deps, &queues, DRAIN),
        crate::support::run_workers_until_idle(&other, &queues, DRAIN),
    );

    let (peak, refused) = r.beem.load();
    assert_eq!(
        refused, 0,
        "a request went past the account's cap in flight"
    );
    assert!(peak <= 2, "{peak} requests at once");
    assert_eq!(beem_sent(&r.beem).len(), 12, "each sent once");
    for id in ids {
        assert_eq!(r.h.message(id).await.status, MessageStatus::Sent);
    }
    assert_eq!(r.h.available().await, 8);
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn a_batch_estimate_follows_each_message_to_its_route(pool: PgPool) {
    let r = routed(pool, 200, &[("255", &[RouteName::Beem, RouteName::Twilio])]).await;
    // Neither quota nor quiet hours hold it back: only the senders' paces do.
    sqlx::query(
        "UPDATE companies SET sms_per_hour = 1000000, quiet_hours_start = '00:00',
                quiet_hours_end = '00:00' WHERE id = $1",
    )
    .bind(r.h.company.id)
    .execute(r.h.pool())
    .await
    .unwrap();
    // 100 Tanzanian numbers (Beem, 50/s at 97%) and 50 Kenyan ones (no rule: Twilio, 10/s).
    let messages: Vec<Value> = (0..150)
        .map(|i| {
            let to = if i < 100 {
                format!("+2557540{i:05}")
            } else {
                format!("+2547120{i:05}")
            };
            json!({"to": to, "body": "Kumbusho"})
        })
        .collect();
    let answer =
        r.h.app
            .client
            .post(r.h.app.url("/v1/messages/batch"))
            .bearer_auth(&r.h.token)
            .json(&json!({"messages": messages}))
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let v: Value = answer.json().await.unwrap();
    // Side by side, Twilio's 50 are the slowest part: 50 / 9.7 s. Through Twilio alone all 150
    // would take 150 / 9.7.
    let seconds = v["estimate"]["sending_seconds"].as_f64().unwrap();
    assert!((seconds - 50.0 / 9.7).abs() < 0.1, "{v}");
    assert_eq!(v["estimate"]["bounded_by"], "sender");

    // The operator sends everything through Twilio again: the estimate follows at once.
    let admin =
        r.h.app
            .token(None, copcca_sms::domain::Role::SuperAdmin)
            .await;
    let put =
        r.h.app
            .client
            .put(r.h.app.url("/admin/routes"))
            .bearer_auth(admin)
            .json(&json!({"rules": []}))
            .send()
            .await
            .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let batch = v["batch_id"].as_str().unwrap();
    let p: Value =
        r.h.app
            .client
            .get(r.h.app.url(&format!("/v1/batches/{batch}")))
            .bearer_auth(&r.h.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let seconds = p["estimate"]["sending_seconds"].as_f64().unwrap();
    assert!((seconds - 150.0 / 9.7).abs() < 0.1, "{p}");
}

#[tokio::test]
async fn a_bulk_request_with_no_lease_free_never_leaves() {
    let beem = FakeBeem::start().await.unwrap();
    let client = beem.client().with_timeout(Duration::from_millis(200));
    let account = client.account().to_string();
    let queues = crate::queue::queues().await;
    let pacer = copcca_sms::pacing::Pacer::new(queues.connection(), queues.prefix());
    // Another worker holds the account's one request in flight for longer than a lease lasts.
    let held = pacer
        .take_lease(&account, "elsewhere", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(held, Ok(()));
    let gateway = SmsGateway::beem(client, 1);
    let to = copcca_sms::domain::E164::parse_sms("+255754000001", copcca_sms::domain::Country::TZ)
        .unwrap();
    let message = copcca_sms::domain::MessageId(uuid::Uuid::new_v4());
    let answer = gateway.send(message, &to, "Karibu", &pacer).await;
    // Waited a lease's hold (the timeout plus 5 s), then gave up: nothing left, safe to retry.
    let e = answer.unwrap_err();
    assert_eq!(e.label(), "not_sent", "{e:?}");
    assert!(beem.requests().is_empty(), "a request left without a lease");
    queues.delete_all().await.unwrap();
}
