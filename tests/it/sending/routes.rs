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
        p.sms.beem = Some(SmsGateway::beem(beem_client));
        p.sms.africastalking = Some(SmsGateway::africastalking(at_client));
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
        let admin = self
            .h
            .app
            .token(None, copcca_sms::domain::Role::SuperAdmin)
            .await;
        let routes: Value = self
            .h
            .app
            .client
            .get(self.h.app.url("/admin/routes"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == route.as_str())
            .and_then(|r| r["report_url"].as_str())
            .unwrap_or_else(|| panic!("no report URL for {route}: {routes}"))
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

/// A message to a Tanzanian number (rule: Beem, then Twilio) that Beem sends but answers only
/// after the client has given up; the workers run for `drain`.
async fn unanswered_on_beem(pool: PgPool, drain: Duration) -> (Routed, uuid::Uuid) {
    let r = routed_with_timeout(
        pool,
        10,
        &[("255", &[RouteName::Beem, RouteName::Twilio])],
        Some(Duration::from_secs(1)),
    )
    .await;
    r.beem
        .script([fake_beem::Behaviour::Hang(Duration::from_secs(3))]);
    let id = r.h.accept("0754123456", "Reminder").await;
    r.h.drain(drain).await;
    (r, id)
}

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
async fn an_unanswered_send_stays_on_its_route_until_its_report_names_it(pool: PgPool) {
    // Long enough for its retries to find it unanswered (its job then waits minutes).
    let (r, id) = unanswered_on_beem(pool, Duration::from_secs(8)).await;
    let m = r.h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sending, "unknown: held");
    assert!(
        r.h.twilio.messages().is_empty(),
        "never moved to another route"
    );
    assert_eq!(beem_sent(&r.beem), vec![id.to_string()], "sent once");

    // Its delivery report names our message: the send is adopted and charged, never resent.
    let url = r.local_report_url(RouteName::Beem).await;
    let request_id = r.beem.sends()[0].request_id;
    let report = json!({"request_id": request_id, "recipient_id": id.to_string(),
                        "dest_addr": "255754123456", "status": "DELIVERED"});
    let answer =
        r.h.app
            .client
            .post(&url)
            .json(&report)
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let ack: Value = answer.json().await.unwrap();
    assert_eq!(ack["successful"], true);
    r.h.drain(Duration::from_secs(5)).await;
    // The report came before the charge: the reconciler applies it.
    let settings = copcca_sms::workers::reconcile::Settings {
        pending_report_after: Duration::ZERO,
        ..Default::default()
    };
    copcca_sms::workers::reconcile::reconcile_once(&r.h.deps, &settings)
        .await
        .unwrap();

    let m = r.h.message(id).await;
    assert_eq!(m.status, MessageStatus::Delivered);
    assert_eq!(
        m.provider_id,
        Some(format!("{request_id}:{id}")),
        "Beem's id for it"
    );
    assert_eq!(beem_sent(&r.beem).len(), 1, "still sent once");
    assert!(r.h.twilio.messages().is_empty());
    assert_eq!(r.h.available().await, 9, "charged once");
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn unsigned_reports_need_the_routes_token_and_move_only_its_messages(pool: PgPool) {
    let r = routed(pool, 10, &[("254", &[RouteName::Africastalking])]).await;
    let ke = r.h.accept("+254712345678", "Habari").await;
    let us = r.h.accept("+15005550006", "Hello").await;
    r.h.drain(DRAIN).await;
    let at_id = r.h.message(ke).await.provider_id.clone().unwrap();
    let twilio_sid = r.h.message(us).await.provider_id.clone().unwrap();
    let url = r.local_report_url(RouteName::Africastalking).await;
    let post = |url: String, id: String| {
        let client = r.h.app.client.clone();
        async move {
            client
                .post(url)
                .form(&[
                    ("id", id.as_str()),
                    ("status", "Success"),
                    ("phoneNumber", "+254712345678"),
                    ("networkCode", "63902"),
                    ("retryCount", "0"),
                ])
                .send()
                .await
                .unwrap()
        }
    };

    // The wrong token, or Beem's path with Africa's Talking's token: refused and recorded.
    let wrong = url.replace("/africastalking/", "/africastalking/00");
    assert_eq!(
        post(wrong, at_id.clone()).await.status(),
        StatusCode::NOT_FOUND
    );
    let beem_path = url.replace("/africastalking/", "/beem/");
    assert_eq!(
        post(beem_path, at_id.clone()).await.status(),
        StatusCode::NOT_FOUND
    );
    let rejected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE NOT accepted AND rejection LIKE '%token%'",
    )
    .fetch_one(r.h.pool())
    .await
    .unwrap();
    assert_eq!(rejected, 2);
    assert_eq!(r.h.message(ke).await.status, MessageStatus::Sent);

    // The right token, naming a Twilio message: nothing moves.
    assert_eq!(post(url.clone(), twilio_sid).await.status(), StatusCode::OK);
    assert_eq!(r.h.message(us).await.status, MessageStatus::Sent);

    // The right token, naming its own message: delivered; again: a repeat, nothing more.
    for _ in 0..2 {
        assert_eq!(
            post(url.clone(), at_id.clone()).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(r.h.message(ke).await.status, MessageStatus::Delivered);
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
async fn a_failure_report_does_not_charge_an_unanswered_send(pool: PgPool) {
    let (r, id) = unanswered_on_beem(pool, Duration::from_secs(3)).await;
    assert_eq!(r.h.message(id).await.status, MessageStatus::Sending);

    let url = r.local_report_url(RouteName::Beem).await;
    let request_id = r.beem.sends()[0].request_id;
    let failed = json!({"request_id": request_id, "recipient_id": id.to_string(),
                        "dest_addr": "255754123456", "status": "REJECTED"});
    let answer =
        r.h.app
            .client
            .post(&url)
            .json(&failed)
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    r.h.drain(Duration::from_secs(2)).await;
    let m = r.h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sending, "held for the operator");
    assert!(m.provider_id.is_none(), "not adopted, so not charged");
    assert!(r.h.twilio.messages().is_empty(), "nor sent elsewhere");
    r.h.audit_clean().await;
}

/// One reconciler pass that pulls Beem's reports of messages silent for `after`.
async fn pull_pass(r: &Routed, after: Duration) -> report_pulls::Pulled {
    let settings = reconcile::Settings {
        report_pulls: report_pulls::Pulls {
            after,
            per_pass: 100,
        },
        ..Default::default()
    };
    reconcile::reconcile_once(&r.h.deps, &settings)
        .await
        .unwrap()
        .reports_pulled
}

#[sqlx::test]
async fn beem_is_asked_for_the_reports_that_never_came(pool: PgPool) {
    let r = routed(pool, 10, &[("255", &[RouteName::Beem])]).await;
    // The portal's report URL is wrong: every push fails, the network delivers all the same.
    r.beem
        .report_to(Some("http://127.0.0.1:9/dlr"), Duration::from_millis(50));
    r.beem.final_status("255754000002", "UNDELIVERED");
    let delivered = r.h.accept("+255754000001", "Karibu").await;
    let undelivered = r.h.accept("+255754000002", "Karibu").await;
    r.h.drain(DRAIN).await;
    r.beem.wait_deliveries(2).await;
    assert_eq!(r.h.message(delivered).await.status, MessageStatus::Sent);

    // Not silent long enough yet: nobody is asked.
    assert_eq!(pull_pass(&r, Duration::from_secs(3600)).await.asked, 0);
    let pulled = pull_pass(&r, Duration::ZERO).await;
    assert_eq!((pulled.asked, pulled.applied), (2, 2));
    assert_eq!(r.beem.pulls().len(), 2);
    assert_eq!(
        r.h.message(delivered).await.status,
        MessageStatus::Delivered
    );
    let failed = r.h.message(undelivered).await;
    assert_eq!(failed.status, MessageStatus::Undelivered);
    assert_eq!(failed.error_code.as_deref(), Some("UNDELIVERED"));

    // Final now: not asked again. The same report pushed late is a repeat, stored once.
    assert_eq!(pull_pass(&r, Duration::ZERO).await.asked, 0);
    let provider_id = r.h.message(delivered).await.provider_id.clone().unwrap();
    let (request_id, recipient_id) = provider_id.split_once(':').unwrap();
    let push = json!({"request_id": request_id, "recipient_id": recipient_id,
                      "dest_addr": "255754000001", "status": "DELIVERED"});
    let url = r.local_report_url(RouteName::Beem).await;
    let answer = r.h.app.client.post(url).json(&push).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE provider = 'beem' AND event_key LIKE $1",
    )
    .bind(format!("{provider_id}:%"))
    .fetch_one(r.h.pool())
    .await
    .unwrap();
    assert_eq!(stored, 1);
    r.h.drain(DRAIN).await;
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn a_report_not_final_yet_is_asked_for_again_later_and_only_at_its_own_account(pool: PgPool) {
    let r = routed(pool, 10, &[("255", &[RouteName::Beem])]).await;
    r.beem.report_to(None, Duration::from_secs(3600));
    let pending = r.h.accept("+255754000001", "Karibu").await;
    let elsewhere = r.h.accept("+255754000002", "Karibu").await;
    r.h.drain(DRAIN).await;
    // The second went through a Beem key since replaced: this key cannot ask about it.
    sqlx::query("UPDATE messages SET provider_account = 'beem:0000000000000000' WHERE id = $1")
        .bind(elsewhere)
        .execute(r.h.pool())
        .await
        .unwrap();

    let pulled = pull_pass(&r, Duration::ZERO).await;
    assert_eq!((pulled.asked, pulled.applied), (1, 0));
    assert_eq!(r.h.message(pending).await.status, MessageStatus::Sent);
    // Asked again only once its spacing has passed.
    assert_eq!(pull_pass(&r, Duration::from_secs(60)).await.asked, 0);
    sqlx::query("UPDATE report_pulls SET next_at = now() WHERE message_id = $1")
        .bind(pending)
        .execute(r.h.pool())
        .await
        .unwrap();
    assert_eq!(pull_pass(&r, Duration::ZERO).await.asked, 1);
    let (pulls, spacing): (i32, f64) = sqlx::query_as(
        "SELECT pulls, extract(epoch FROM next_at - now())::float8 FROM report_pulls
         WHERE message_id = $1",
    )
    .bind(pending)
    .fetch_one(r.h.pool())
    .await
    .unwrap();
    assert_eq!(pulls, 2);
    assert!(spacing <= 0.0, "after × 2² with after = 0: {spacing}");
    assert_eq!(
        r.beem.pulls().len(),
        2,
        "never for the other account's message"
    );
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

// Crashes a real process at a fail point (built with the `failpoints` feature, as scripts/test does).
#[cfg(feature = "failpoints")]
#[sqlx::test]
async fn a_serve_that_dies_taking_a_beem_report_keeps_nothing_and_its_next_post_adopts_the_send(
    pool: PgPool,
) {
    use crate::faults::{Crashing, free_port, serving};
    let (r, id) = unanswered_on_beem(pool, Duration::from_secs(8)).await;
    assert_eq!(r.h.message(id).await.status, MessageStatus::Sending);
    let (port, base) = free_port();
    let (addr, beem_base) = (format!("127.0.0.1:{port}"), r.beem.base.to_string());
    let env = [
        ("BIND_ADDR", addr.as_str()),
        ("PUBLIC_URL", base.as_str()),
        ("BEEM_API_BASE", beem_base.as_str()),
        ("BEEM_API_KEY", fake_beem::API_KEY),
        ("BEEM_SECRET_KEY", fake_beem::SECRET_KEY),
        ("BEEM_SOURCE_ADDR", fake_beem::SOURCE_ADDR),
    ];
    let serve = Crashing::start(
        r.h.pool(),
        &r.h.deps,
        "serve",
        copcca_sms::faults::CALLBACK_BEFORE_ADOPT,
        &env,
    )
    .await;
    serving(&base).await;
    let local = r.local_report_url(RouteName::Beem).await;
    let path = &local[local.find("/webhooks/").unwrap()..];
    let report = json!({"request_id": r.beem.sends()[0].request_id, "recipient_id": id.to_string(),
                        "dest_addr": "255754123456", "status": "DELIVERED"});
    let post = |url: String| r.h.app.client.post(url).json(&report).send();
    assert!(post(format!("{base}{path}")).await.is_err(), "serve died");
    serve.crashed().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE provider = 'beem'")
            .fetch_one(r.h.pool())
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing of it kept");
    assert_eq!(r.h.message(id).await.provider_id, None, "still held");

    // Beem posts it again: adopted and charged, never resent.
    assert_eq!(post(local.clone()).await.unwrap().status(), StatusCode::OK);
    r.h.drain(Duration::from_secs(5)).await;
    let m = r.h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert!(m.provider_id.is_some());
    assert_eq!(beem_sent(&r.beem).len(), 1, "sent once");
    assert_eq!(r.h.available().await, 9, "charged once");
    r.h.audit_clean().await;
}

// Crashes a real process at a fail point (built with the `failpoints` feature, as scripts/test does).
#[cfg(feature = "failpoints")]
#[sqlx::test]
async fn a_beem_send_whose_worker_died_before_its_request_left_is_sent_again_once(pool: PgPool) {
    use crate::faults::{Crashing, fresh_worker};
    // The recovering run's Beem client gives up after 1 s: its attempt window is 3 s.
    let r = routed_with_timeout(
        pool,
        10,
        &[("255", &[RouteName::Beem])],
        Some(Duration::from_secs(1)),
    )
    .await;
    let id = r.h.accept("0754123456", "Reminder").await;
    let beem_base = r.beem.base.to_string();
    let env = [
        ("BEEM_API_BASE", beem_base.as_str()),
        ("BEEM_API_KEY", fake_beem::API_KEY),
        ("BEEM_SECRET_KEY", fake_beem::SECRET_KEY),
        ("BEEM_SOURCE_ADDR", fake_beem::SOURCE_ADDR),
    ];
    let worker = Crashing::start(
        r.h.pool(),
        &r.h.deps,
        "work",
        copcca_sms::faults::SEND_AFTER_CLAIM,
        &env,
    )
    .await;
    worker.crashed().await;
    let m = r.h.message(id).await;
    assert_eq!(
        m.status,
        MessageStatus::Sending,
        "claimed, then the worker died"
    );
    assert!(r.beem.sends().is_empty(), "nothing left");
    // The fence a recovering run puts up first: had the old run only stalled, it could no
    // longer record its request leaving (and so send) once its attempt was taken over; and an
    // attempt recorded as leaving is never taken over.
    let stalled: uuid::Uuid =
        sqlx::query_scalar("SELECT send_attempt_id FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(r.h.pool())
            .await
            .unwrap();
    let message = copcca_sms::domain::MessageId(id);
    use copcca_sms::messages::store;
    assert!(
        store::mark_request_leaving(r.h.pool(), message, stalled)
            .await
            .unwrap()
    );
    assert!(
        !store::take_over_unsent_attempt(r.h.pool(), message, stalled)
            .await
            .unwrap()
    );
    sqlx::query("UPDATE messages SET request_left_attempt = NULL WHERE id = $1")
        .bind(id)
        .execute(r.h.pool())
        .await
        .unwrap();
    assert!(
        store::take_over_unsent_attempt(r.h.pool(), message, stalled)
            .await
            .unwrap()
    );
    assert!(
        !store::mark_request_leaving(r.h.pool(), message, stalled)
            .await
            .unwrap()
    );

    // Beem cannot be asked, but the attempt never recorded its request leaving: sent again,
    // once, instead of being held for the operator.
    fresh_worker(&r.h.deps, &["sms"]).await;
    let m = r.h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(beem_sent(&r.beem), vec![id.to_string()], "sent once");
    assert_eq!(r.h.available().await, 9, "charged once");
    let unanswered: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT unanswered_since FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(r.h.pool())
            .await
            .unwrap();
    assert_eq!(unanswered, None, "never held");
    r.h.audit_clean().await;
}

#[sqlx::test]
async fn the_operator_settles_a_held_send_as_the_providers_console_shows_it(pool: PgPool) {
    let (r, id) = unanswered_on_beem(pool, Duration::from_secs(8)).await;
    assert_eq!(r.h.message(id).await.status, MessageStatus::Sending);
    let page = r.status_page().await;
    assert!(
        page.contains("1 sends got no answer") && page.contains(&id.to_string()),
        "the status page names it: {page}"
    );
    let admin =
        r.h.app
            .token(None, copcca_sms::domain::Role::SuperAdmin)
            .await;
    let resolve = |token: String, body: Value| {
        let url = r.h.app.url(&format!("/admin/messages/{id}/resolve"));
        let request = r.h.app.client.post(url).bearer_auth(token).json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Only the operator; `sent` needs the provider's id, `not_sent` takes none.
    let (status, _) = resolve(r.h.token.clone(), json!({"outcome": "not_sent"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"outcome": "sent"}),
        json!({"outcome": "not_sent", "provider_id": "x"}),
        json!({"outcome": "maybe"}),
    ] {
        let (status, v) = resolve(admin.clone(), bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    // Its report said undelivered days ago: not adopted (a failure), then set aside.
    let provider_id = format!("{}:{id}", r.beem.sends()[0].request_id);
    let failure = json!({"request_id": r.beem.sends()[0].request_id, "recipient_id": id.to_string(),
                         "dest_addr": "255754123456", "status": "UNDELIVERED"});
    let url = r.local_report_url(RouteName::Beem).await;
    let answer =
        r.h.app
            .client
            .post(url)
            .json(&failure)
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    sqlx::query("UPDATE webhook_events SET received_at = now() - interval '73 hours'")
        .execute(r.h.pool())
        .await
        .unwrap();
    assert_eq!(
        r.h.reconcile(Duration::from_secs(3600))
            .await
            .reports_set_aside,
        1
    );

    // While its attempt may still be in flight, the operator's word waits.
    let (status, v) = resolve(admin.clone(), json!({"outcome": "not_sent"})).await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::CONFLICT, &json!("attempt_in_flight"))
    );
    sqlx::query(
        "UPDATE messages SET send_attempt_started_at = now() - interval '5 minutes' WHERE id = $1",
    )
    .bind(id)
    .execute(r.h.pool())
    .await
    .unwrap();
    // Beem's console shows it: charged under Beem's id, never sent again; its set-aside report
    // is taken up again, so the failure is applied and refunded.
    let (status, v) = resolve(
        admin.clone(),
        json!({"outcome": "sent", "provider_id": provider_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    r.h.drain(Duration::from_secs(5)).await;
    let m = r.h.message(id).await;
    assert_eq!(
        (m.status, m.provider_id.as_deref()),
        (MessageStatus::Sent, Some(provider_id.as_str()))
    );
    assert_eq!(beem_sent(&r.beem).len(), 1, "never sent again");
    assert_eq!(r.h.available().await, 9, "charged once");
    let settings = reconcile::Settings {
        pending_report_after: Duration::ZERO,
        ..Default::default()
    };
    let report = reconcile::reconcile_once(&r.h.deps, &settings)
        .await
        .unwrap();
    assert_eq!(report.reports_applied, 1);
    r.h.drain(Duration::from_secs(5)).await;
    assert_eq!(r.h.message(id).await.status, MessageStatus::Undelivered);
    assert_eq!(r.h.available().await, 10, "refunded");
    // Settled: not held any more.
    let (status, v) = resolve(admin.clone(), json!({"outcome": "not_sent"})).await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::CONFLICT, &json!("not_held"))
    );

    // Another held send, which the operator finds the provider never had: failed, its credit
    // released.
    r.beem
        .script([fake_beem::Behaviour::Hang(Duration::from_secs(3))]);
    let other = r.h.accept("0754123457", "Reminder").await;
    r.h.drain(Duration::from_secs(8)).await;
    assert_eq!(r.h.message(other).await.status, MessageStatus::Sending);
    assert_eq!(r.h.available().await, 9, "its credit reserved");
    sqlx::query(
        "UPDATE messages SET send_attempt_started_at = now() - interval '5 minutes' WHERE id = $1",
    )
    .bind(other)
    .execute(r.h.pool())
    .await
    .unwrap();
    let url = r.h.app.url(&format!("/admin/messages/{other}/resolve"));
    let answer =
        r.h.app
            .client
            .post(url)
            .bearer_auth(&admin)
            .json(&json!({"outcome": "not_sent"}))
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let m = r.h.message(other).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Failed, Some("not_sent"))
    );
    assert_eq!(r.h.available().await, 10, "released");
    r.h.audit_clean().await;
}
