//! Sends whose outcome is unknown on a route that cannot be asked: held on their route until a
//! report names them or the operator settles them, and sent again only when their request
//! never left.

use super::*;

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
    // The worker below is a process of its own, on the real clock, not the harness's mid-morning
    // one: without this, in Dar es Salaam's quiet hours (18:00-05:00 UTC) it would hold the
    // message back and never reach the claim.
    r.h.without_quiet_hours().await;
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
