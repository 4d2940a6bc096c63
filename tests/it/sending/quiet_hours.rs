//! Quiet hours, with a controllable clock: held until 08:00 local, then sent.

use copcca_sms::messages::MessageStatus;
use redis::AsyncCommands;
use sqlx::PgPool;

use super::*;

#[sqlx::test]
async fn a_message_at_night_waits_for_the_morning(pool: PgPool) {
    let mut h = Harness::new(pool, 10).await;
    h.deps.clock = clock_at(22, 30);
    let id = h.accept("0754123456", "Kumbusho la deni").await;
    h.drain(Duration::from_secs(2)).await;
    assert_eq!(
        h.message(id).await.status,
        MessageStatus::Queued,
        "held, not failed"
    );
    assert!(h.twilio.requests().is_empty());

    // The job sleeps in the delayed set until 08:00 Dar es Salaam time: 9 h 30 min after 22:30.
    let store = h.deps.queues.store("sms");
    let mut conn = h.deps.queues.connection();
    let due: Vec<(String, f64)> = conn
        .zrange_withscores(&store.keys.delayed, 0, -1)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let wait_ms = due[0].1 - copcca_sms::queue::now_ms() as f64;
    let expected = 9.5 * 3600.0 * 1000.0;
    assert!(
        (wait_ms - expected).abs() < 60_000.0,
        "waits {wait_ms} ms, expected about {expected}"
    );

    // Morning comes: the clock moves to 08:01 and the delayed job falls due.
    h.deps.clock = clock_at(8, 1);
    let _: () = conn.zadd(&store.keys.delayed, &due[0].0, 0).await.unwrap();
    h.drain(DRAIN).await;
    assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_message_may_opt_out_of_quiet_hours(pool: PgPool) {
    let mut h = Harness::new(pool, 10).await;
    h.deps.clock = clock_at(23, 0);
    let (status, v) = h.send(json!({"to": "0754123456", "body": "Nambari yako ya siri ni 4821", "quiet_hours": false}), None).await;
    assert_eq!(status, 202);
    h.drain(DRAIN).await;
    assert_eq!(
        h.message(v["id"].as_str().unwrap().parse().unwrap())
            .await
            .status,
        MessageStatus::Sent
    );
}

#[sqlx::test]
async fn batch_messages_respect_quiet_hours(pool: PgPool) {
    let mut h = Harness::new(pool, 10).await;
    h.deps.clock = clock_at(5, 0);
    let body =
        json!({"messages": [{"to": "0754123456", "body": "a"}, {"to": "0754123457", "body": "b"}]});
    let r = h
        .app
        .client
        .post(h.app.url("/v1/messages/batch"))
        .bearer_auth(&h.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    h.drain(Duration::from_secs(2)).await;
    assert!(h.twilio.requests().is_empty());
    assert_eq!(h.deps.queues.store("sms").stats().await.unwrap().delayed, 2);
}

/// A time zone the company row holds but nobody knows is an error that stops the send (retried,
/// and visible), not a silent fall back to Dar es Salaam's night.
#[sqlx::test]
async fn an_unknown_stored_time_zone_stops_the_send_instead_of_guessing(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Kumbusho la deni").await;
    sqlx::query("UPDATE companies SET timezone = 'Africa/Atlantis' WHERE id = $1")
        .bind(h.company.id)
        .execute(h.pool())
        .await
        .unwrap();
    h.drain(Duration::from_secs(2)).await;
    assert!(h.twilio.requests().is_empty(), "nothing sent on a guess");
    assert_eq!(h.message(id).await.status, MessageStatus::Queued);
    assert_eq!(h.available().await, 10, "nothing reserved");
}
