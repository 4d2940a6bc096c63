//! The send job's outcomes: success, Twilio's errors, rate limits, outages, hangs, crashes.

use std::time::Duration;

use copcca_sms::domain::{Country, Credits, E164, MessageId};
use copcca_sms::fakes::twilio::Behaviour;
use copcca_sms::messages::MessageStatus;
use copcca_sms::messages::opt_outs;
use copcca_sms::workers::reconcile;
use serde_json::json;
use sqlx::PgPool;

use super::*;

#[sqlx::test]
async fn a_message_is_sent_and_charged_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (status, v) = h
        .send(
            json!({"to": "0754123456", "body": "Habari! Deni lako ni TZS 20,000."}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["to"].as_str()),
        (Some("queued"), Some("+255754123456"))
    );
    assert_eq!(
        (
            v["segments"].as_i64(),
            v["credits"].as_i64(),
            v["encoding"].as_str()
        ),
        (Some(1), Some(1), Some("GSM-7"))
    );
    let id: uuid::Uuid = v["id"].as_str().unwrap().parse().unwrap();

    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert!(m.provider_id.as_deref().unwrap().starts_with("SM"));
    assert_eq!(m.provider.as_deref(), Some("twilio"));
    assert_eq!(h.available().await, 9);

    let requests = h.twilio.requests();
    assert_eq!(requests.len(), 1);
    let get = |k: &str| {
        requests[0]
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("To").as_deref(), Some("+255754123456"));
    assert_eq!(
        get("From").as_deref(),
        Some(copcca_sms::fakes::twilio::FROM)
    );
    assert_eq!(
        get("StatusCallback"),
        Some(format!("{}/webhooks/twilio/status", h.app.base))
    );

    // Read back through the API, and invisible to another company.
    let got: Value = h
        .app
        .client
        .get(h.app.url(&format!("/v1/messages/{id}")))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (got["status"].as_str(), got["refunded"].as_bool()),
        (Some("sent"), Some(false))
    );
    let other = accounts::create_company(h.pool(), "Other", copcca_sms::domain::Country::KE)
        .await
        .unwrap();
    let other_token = h.app.token(Some(other.id), Role::Member).await;
    let r = h
        .app
        .client
        .get(h.app.url(&format!("/v1/messages/{id}")))
        .bearer_auth(other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    h.audit_clean().await;
}

#[sqlx::test]
async fn each_magic_number_fails_with_its_code_and_charges_nothing(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let cases = [
        ("+15005550001", "21211"),
        ("+15005550002", "21612"),
        ("+15005550003", "21408"),
        ("+15005550004", "21610"),
        ("+15005550009", "21614"),
    ];
    let mut ids = Vec::new();
    for (to, _) in cases {
        ids.push(h.accept(to, "Reminder").await);
    }
    h.drain(DRAIN).await;
    for ((to, code), id) in cases.iter().zip(ids) {
        let m = h.message(id).await;
        assert_eq!(
            (m.status, m.error_code.as_deref()),
            (MessageStatus::Failed, Some(*code)),
            "{to}"
        );
        assert!(m.error_message.is_some());
    }
    assert_eq!(
        h.available().await,
        10,
        "failed sends are released, not charged"
    );
    // 21610: the number is now opted out, and refused at accept time.
    let (status, v) = h
        .send(json!({"to": "+15005550004", "body": "again"}), None)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("recipient_opted_out"))
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_429_snoozes_then_the_message_goes_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio.script([Behaviour::RateLimit(1)]);
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    assert_eq!(h.twilio.requests().len(), 2);
    assert_eq!(h.twilio.messages().len(), 1);
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_twilio_outage_until_the_attempt_cap_releases_and_dead_letters(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio
        .script(std::iter::repeat_n(Behaviour::ServerError(500), 8));
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Failed, Some("provider_unavailable"))
    );
    assert_eq!(h.twilio.requests().len(), 8);
    assert_eq!(h.available().await, 10);
    assert_eq!(h.deps.queues.store("sms").stats().await.unwrap().dead, 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_unanswered_send_is_reconciled_not_resent(pool: PgPool) {
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_millis(300))).await;
    h.twilio.script([Behaviour::Hang(Duration::from_secs(2))]);
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(h.twilio.messages().len(), 1, "never sent twice");
    assert_eq!(
        m.provider_id.as_deref(),
        Some(h.twilio.messages()[0].sid.as_str()),
        "adopted Twilio's message"
    );
    assert_eq!(h.available().await, 9, "charged once");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_worker_dying_between_twilios_201_and_the_commit_charges_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Reminder").await;
    // The state such a crash leaves: reserved, marked sending, accepted by Twilio, not committed.
    // Its job comes back once the dead worker's lease runs out, longer than a request can take.
    let mut conn = h.pool().acquire().await.unwrap();
    copcca_sms::ledger::reserve(
        &mut conn,
        h.company.id,
        MessageId(id),
        Credits::new(1).unwrap(),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE messages SET status = 'sending', send_attempt_started_at = now() - interval '1 minute'
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .unwrap();
    let to =
        copcca_sms::domain::E164::parse_sms("0754123456", copcca_sms::domain::Country::TZ).unwrap();
    let client = h.twilio.client(&h.app.state.config.public_url);
    client.send(&to, "Reminder").await.unwrap();

    h.drain(DRAIN).await; // the job accept() enqueued runs now, as a redelivery would
    let m = h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(h.twilio.messages().len(), 1, "not resent");
    assert_eq!(h.available().await, 9, "charged once");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_redelivered_job_waits_for_the_run_still_sending_instead_of_sending_again(pool: PgPool) {
    // Requests give up after 2 s, so a run's attempt is settled within 6 s.
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_secs(2))).await;
    let id = h.accept("0754123456", "Reminder").await;
    // Another run (the job before a lost lease) has just reserved and marked the message
    // `sending`; its request reaches Twilio two seconds later (within its window, on a busy
    // machine too).
    let mut conn = h.pool().acquire().await.unwrap();
    copcca_sms::ledger::reserve(
        &mut conn,
        h.company.id,
        MessageId(id),
        Credits::new(1).unwrap(),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE messages SET status = 'sending', send_attempt_started_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .unwrap();
    let to = E164::parse_sms("0754123456", Country::TZ).unwrap();
    let client = h.twilio.client(&h.app.state.config.public_url);
    let in_flight = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        client.send(&to, "Reminder").await.unwrap()
    });

    // The job accept() enqueued runs now, as the redelivery would: Twilio has nothing yet, and
    // sending now would send twice. It waits out the other run's request, then adopts it.
    h.drain(DRAIN).await;
    let theirs = in_flight.await.unwrap();
    let m = h.message(id).await;
    assert_eq!(h.twilio.messages().len(), 1, "sent once");
    assert_eq!(
        (m.status, m.provider_id.as_deref()),
        (MessageStatus::Sent, Some(theirs.sid.as_str()))
    );
    assert_eq!(h.available().await, 9, "charged once");
    h.audit_clean().await;
}

#[sqlx::test]
async fn insufficient_credits_fail_the_message_without_a_send(pool: PgPool) {
    let h = Harness::new(pool, 0).await;
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Failed, Some("insufficient_credits"))
    );
    assert!(h.twilio.requests().is_empty());
    assert_eq!(
        h.deps.queues.store("sms").stats().await.unwrap().dead,
        0,
        "not retried"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn long_and_unicode_messages_are_charged_by_segments(pool: PgPool) {
    let h = Harness::new(pool, 20).await;
    let swahili = "Habari Bw. Juma, tunakukumbusha kuwa ankara yako namba INV-2024-0117 ya kiasi cha TZS 450,000 \
                   imepita tarehe ya mwisho ya malipo. Tafadhali lipa kupitia M-Pesa au benki leo ili kuepuka usumbufu. Asante.";
    let (_, v) = h
        .send(json!({"to": "0754123456", "body": swahili}), None)
        .await;
    assert_eq!(
        (
            v["encoding"].as_str(),
            v["segments"].as_i64(),
            v["credits"].as_i64()
        ),
        (Some("GSM-7"), Some(2), Some(2))
    );
    let emoji = "Asante sana! 🙏 Malipo yako yamepokelewa, karibu tena dukani kwetu kwa bidhaa mpya za msimu huu.";
    let (_, u) = h
        .send(json!({"to": "0754123457", "body": emoji}), None)
        .await;
    assert_eq!(
        (u["encoding"].as_str(), u["segments"].as_i64()),
        (Some("UCS-2"), Some(2))
    );
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 20 - 2 - 2);
    for v in [v, u] {
        let m = h.message(v["id"].as_str().unwrap().parse().unwrap()).await;
        assert_eq!((m.status, m.segments), (MessageStatus::Sent, 2));
    }
    h.audit_clean().await;
}

#[sqlx::test]
async fn more_segments_than_reserved_are_recorded_not_charged(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio.report_segments(Some(3));
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.segments, m.uncharged_credits),
        (MessageStatus::Sent, 3, 2)
    );
    assert_eq!(h.available().await, 9, "charged what was reserved");
    h.audit_clean().await;
}

#[sqlx::test]
async fn bad_input_is_refused_with_precise_problems(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    for (body, field) in [
        (json!({"to": "0754", "body": "x"}), "to"),
        (json!({"to": "hello", "body": "x"}), "to"),
        (json!({"to": "0222123456", "body": "x"}), "to"),
        (json!({"to": "0754123456", "body": "   "}), "body"),
        (
            json!({"to": "0754123456", "body": "x".repeat(1601)}),
            "body",
        ),
    ] {
        let (status, v) = h.send(body, None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (422, Some("validation_failed")),
            "{v}"
        );
        assert_eq!(v["errors"][0]["field"], field);
    }
    let (status, v) = h.send(json!({"to": "0754123456"}), None).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid_body")));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing written");
}

#[sqlx::test]
async fn an_idempotency_key_returns_the_same_message(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let body = json!({"to": "0754123456", "body": "Reminder"});
    let (s1, a) = h.send(body.clone(), Some("crm-req-1")).await;
    let (s2, b) = h.send(body, Some("crm-req-1")).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["id"], b["id"]);
    let (s3, c) = h
        .send(
            json!({"to": "0754123456", "body": "Different"}),
            Some("crm-req-1"),
        )
        .await;
    assert_eq!(
        (s3, c["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    h.drain(DRAIN).await;
    assert_eq!(h.twilio.messages().len(), 1);
    assert_eq!(h.available().await, 9);
}

#[sqlx::test]
async fn messages_queued_when_redis_was_flushed_are_still_sent(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let ids = [
        h.accept("0754123456", "One").await,
        h.accept("0754123457", "Two").await,
        h.accept("0754123458", "Three").await,
    ];
    // Redis loses everything of this deployment (its keys; other tests' keys stay).
    let mut conn = h.deps.queues.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", h.deps.queues.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();

    let settings = reconcile::Settings {
        stale_queued: Duration::ZERO,
        ..Default::default()
    };
    let report = reconcile::reconcile_once(&h.deps, &settings).await.unwrap();
    assert_eq!(report.requeued, 3);
    h.drain(DRAIN).await;
    for id in ids {
        assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    }
    assert_eq!(h.available().await, 7);
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_reconciler_releases_stranded_holds_and_flags_silent_messages(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let silent = h.accept("0754123456", "Sent long ago").await;
    h.drain(DRAIN).await;
    sqlx::query("UPDATE messages SET updated_at = now() - interval '4 days' WHERE id = $1")
        .bind(silent)
        .execute(h.pool())
        .await
        .unwrap();

    // A message whose hold expired while it never reached Twilio (still queued).
    let stranded = h.accept("0754123457", "Never went out").await;
    let mut conn = h.pool().acquire().await.unwrap();
    copcca_sms::ledger::reserve(
        &mut conn,
        h.company.id,
        MessageId(stranded),
        Credits::new(1).unwrap(),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(h.available().await, 8);

    let settings = reconcile::Settings {
        stale_queued: Duration::from_secs(3600),
        ..Default::default()
    };
    let report = reconcile::reconcile_once(&h.deps, &settings).await.unwrap();
    assert_eq!(
        (report.holds_released, report.unconfirmed),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(h.available().await, 9);
    let flagged: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT unconfirmed_at FROM messages WHERE id = $1")
            .bind(silent)
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert!(flagged.is_some());
    // The stranded message is still sent afterwards: its job reserves afresh.
    h.drain(DRAIN).await;
    assert_eq!(h.message(stranded).await.status, MessageStatus::Sent);
    assert_eq!(h.available().await, 8);
    h.audit_clean().await;
}

#[sqlx::test]
async fn messages_are_listed_newest_first_with_filters(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let ok1 = h.accept("0754123456", "One").await;
    let ok2 = h.accept("0754123457", "Two").await;
    let bad = h.accept("+15005550001", "Three").await;
    h.drain(DRAIN).await;
    let get = |q: &str| {
        let url = h.app.url(&format!("/v1/messages{q}"));
        let req = h.app.client.get(url).bearer_auth(&h.token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let sent = get("?status=sent&limit=1").await;
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1);
    assert_eq!(sent["messages"][0]["id"], ok2.to_string());
    let next = sent["next_before"].as_str().unwrap();
    let page2 = get(&format!("?status=sent&limit=1&before={next}")).await;
    assert_eq!(page2["messages"][0]["id"], ok1.to_string());
    let failed = get("?status=failed").await;
    assert_eq!(failed["messages"][0]["id"], bad.to_string());
    assert_eq!(
        get("?to=%2B255754123457").await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = h
        .app
        .client
        .get(h.app.url("/v1/messages?status=lost"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[sqlx::test]
async fn a_company_over_its_hourly_quota_waits_rather_than_fails(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    sqlx::query("UPDATE companies SET sms_per_hour = 2 WHERE id = $1")
        .bind(h.company.id)
        .execute(h.pool())
        .await
        .unwrap();
    let ids = [
        h.accept("0754123456", "a").await,
        h.accept("0754123457", "b").await,
        h.accept("0754123458", "c").await,
    ];
    h.drain(Duration::from_secs(3)).await;
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(h.message(id).await.status);
    }
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(
        statuses,
        [
            MessageStatus::Queued,
            MessageStatus::Sent,
            MessageStatus::Sent
        ]
    );
    let s = h.deps.queues.store("sms").stats().await.unwrap();
    assert_eq!(
        (s.delayed, s.dead),
        (1, 0),
        "the third is snoozed (about 30 minutes at 2 per hour), not failed"
    );
    assert_eq!(h.available().await, 8);
}

/// Concurrent requests are written together (group commit); each still gets its own answer:
/// opted-out numbers refused, one Idempotency-Key sent ten times at once makes one message,
/// and every other request its own message and job.
#[sqlx::test]
async fn concurrent_requests_written_together_each_get_their_own_answer(pool: PgPool) {
    let h = std::sync::Arc::new(Harness::new(pool, 100).await);
    let stopped = E164::parse_sms("0754000001", Country::TZ).unwrap();
    opt_outs::add(h.pool(), h.company.id, &stopped, "api")
        .await
        .unwrap();
    let calls: Vec<_> = (0..40)
        .map(|n| {
            let h = h.clone();
            tokio::spawn(async move {
                let (to, key) = match n % 4 {
                    0 => ("0754000001".to_string(), None), // opted out
                    1 => ("0754000002".to_string(), Some("same-request")),
                    _ => (format!("07541{n:05}"), None),
                };
                let (status, v) = h.send(json!({"to": to, "body": "Reminder"}), key).await;
                (n, status, v)
            })
        })
        .collect();
    let (mut keyed, mut own) = (std::collections::HashSet::new(), 0);
    for call in calls {
        let (n, status, v) = call.await.unwrap();
        match n % 4 {
            0 => assert_eq!(
                (status, v["code"].as_str()),
                (422, Some("recipient_opted_out")),
                "{v}"
            ),
            1 => {
                assert_eq!(status, 202, "{v}");
                keyed.insert(v["id"].as_str().unwrap().to_string());
            }
            _ => {
                assert_eq!(status, 202, "{v}");
                own += 1;
            }
        }
    }
    assert_eq!((keyed.len(), own), (1, 20));
    h.drain(DRAIN).await;
    assert_eq!(h.twilio.messages().len(), 21);
    assert_eq!(h.available().await, 100 - 21);
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(written, 21);
    assert_audit_clean(h.pool()).await;
}

#[sqlx::test]
async fn the_reconciler_leaves_an_expired_hold_alone_once_a_send_has_started_on_it(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Reminder").await;
    let mut conn = h.pool().acquire().await.unwrap();
    let hold = copcca_sms::ledger::reserve(
        &mut conn,
        h.company.id,
        MessageId(id),
        Credits::new(1).unwrap(),
        Duration::ZERO,
    )
    .await
    .unwrap()
    .value;
    // A send step resuming the queued message has it locked and is marking it `sending`.
    let mut send = h.pool().begin().await.unwrap();
    sqlx::query(
        "UPDATE messages SET status = 'sending', send_attempt_started_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *send)
    .await
    .unwrap();

    let settings = reconcile::Settings {
        stale_queued: Duration::from_secs(3600),
        ..Default::default()
    };
    // The message is being worked on: the reconciler leaves it (and its hold) to the next pass.
    let report = reconcile::reconcile_once(&h.deps, &settings).await.unwrap();
    assert_eq!(report.holds_released, 0, "{report:?}");
    send.commit().await.unwrap();
    // The next pass sees it `sending`: the hold the send will be charged on stays.
    let report = reconcile::reconcile_once(&h.deps, &settings).await.unwrap();
    assert_eq!(report.holds_released, 0, "{report:?}");
    let status: String = sqlx::query_scalar("SELECT status FROM holds WHERE id = $1")
        .bind(hold.id)
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(status, "active");
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}
