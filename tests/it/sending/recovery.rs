//! Recovering what a crash, a hang, a lost job or an overlapping run leaves: nothing is sent
//! twice, charged twice, or left unfinished; and the reconciler's part in it.

use std::time::Duration;

use copcca_sms::domain::{Country, E164, MessageId};
use copcca_sms::fakes::twilio::Behaviour;
use copcca_sms::messages::MessageStatus;
use sqlx::PgPool;

use super::*;

#[sqlx::test]
async fn an_unanswered_send_is_reconciled_not_resent(pool: PgPool) {
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_millis(300))).await;
    h.twilio.script([Behaviour::Hang(Duration::from_secs(2))]);
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    // Adopted the message Twilio created during the hang.
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn a_worker_dying_between_twilios_201_and_the_commit_charges_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Reminder").await;
    // The state such a crash leaves: reserved, marked sending, accepted by Twilio, not committed.
    // Its job comes back once the dead worker's lease runs out, longer than a request can take.
    h.hold(id, Duration::from_secs(600)).await;
    let mut conn = h.pool().acquire().await.unwrap();
    mark_sending(&mut conn, id, Duration::from_secs(60)).await;
    let to = E164::parse_sms("0754123456", Country::TZ).unwrap();
    let client = h.twilio.client(&h.app.state.config.public_url);
    client.send(MessageId(id), &to, "Reminder").await.unwrap();

    h.drain(DRAIN).await; // the job accept() enqueued runs now, as a redelivery would
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn a_redelivered_job_waits_for_the_run_still_sending_instead_of_sending_again(pool: PgPool) {
    // Requests give up after 2 s, so a run's attempt is settled within 6 s.
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_secs(2))).await;
    let id = h.accept("0754123456", "Reminder").await;
    // Another run (the job before a lost lease) has just reserved and marked the message
    // `sending`; its request reaches Twilio two seconds later (within its window, on a busy
    // machine too).
    h.hold(id, Duration::from_secs(600)).await;
    let mut conn = h.pool().acquire().await.unwrap();
    mark_sending(&mut conn, id, Duration::ZERO).await;
    let to = E164::parse_sms("0754123456", Country::TZ).unwrap();
    let client = h.twilio.client(&h.app.state.config.public_url);
    let in_flight = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        client.send(MessageId(id), &to, "Reminder").await.unwrap()
    });

    // The job accept() enqueued runs now, as the redelivery would: Twilio has nothing yet, and
    // sending now would send twice. It waits out the other run's request, then adopts it.
    h.drain(DRAIN).await;
    let theirs = in_flight.await.unwrap();
    assert_eq!(h.twilio.messages()[0].sid, theirs.sid);
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn a_claim_that_waited_past_its_window_sends_nothing_and_a_later_run_sends_once(
    pool: PgPool,
) {
    // Requests give up after 1 s: a run must start its request within 1 s of its claim.
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_secs(1))).await;
    let id = h.accept("0754123456", "Reminder").await;
    let late_claims = interruptions("claim_too_late");
    // A long transaction holds the message: the job's claim waits behind it, and is let through
    // 1.2 s after it started waiting.
    let mut blocker = h.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let pool = h.pool().clone();
    let unblock = tokio::spawn(async move {
        let started = std::time::Instant::now();
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(started.elapsed() < DRAIN, "the claim never waited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        blocker.commit().await.unwrap();
    });

    h.drain(DRAIN).await;
    unblock.await.unwrap();
    // The late claim sent nothing and put the message back in the queue: the next run sent
    // it, with nothing to look up first.
    assert!(interruptions("claim_too_late") > late_claims);
    assert!(
        h.twilio.lists().is_empty(),
        "nothing unanswered to look for"
    );
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn a_charge_that_fails_after_twilio_took_the_message_is_retried_with_its_sid(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    // The charge statement fails twice as a lock timeout would (55P03), then goes through.
    sqlx::raw_sql(
        "CREATE SEQUENCE charge_faults;
         CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF nextval('charge_faults') <= 2 THEN
                 RAISE EXCEPTION 'canceling statement due to lock timeout' USING ERRCODE = '55P03';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER fail_twice BEFORE UPDATE ON holds FOR EACH ROW EXECUTE FUNCTION fail_twice();",
    )
    .execute(h.pool())
    .await
    .unwrap();
    let id = h.accept("0754123456", "Reminder").await;
    let retries = interruptions("charge_retried");

    h.drain(DRAIN).await;
    // The run kept Twilio's answer and charged on its third try: no second send, and no need
    // to find the message again in Twilio's list.
    let faults: i64 = sqlx::query_scalar("SELECT last_value FROM charge_faults")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(
        faults, 3,
        "two failed charges, then the one that went through"
    );
    assert!(interruptions("charge_retried") >= retries + 2);
    assert!(h.twilio.lists().is_empty(), "no reconciling needed");
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn a_run_whose_attempt_was_taken_over_leaves_the_outcome_to_the_run_that_took_it(
    pool: PgPool,
) {
    // Twilio fails the request, but only after a few seconds: time enough for the takeover
    // below even on a loaded machine (with one second, a slow UPDATE lost the race in CI).
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_secs(8))).await;
    h.twilio
        .script([Behaviour::SlowServerError(500, Duration::from_secs(4))]);
    let id = h.accept("0754123456", "Reminder").await;
    let taken_over = interruptions("taken_over");
    let h = std::sync::Arc::new(h);
    let draining = tokio::spawn({
        let h = h.clone();
        async move { h.drain(DRAIN).await }
    });
    // Once the job has claimed its attempt and Twilio has its request, another run takes the
    // send over, as it would after the attempt's window (stamping its own attempt on the
    // message, keeping the hold).
    let started = std::time::Instant::now();
    while h.twilio.requests().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.message(id).await.status, MessageStatus::Sending);
    sqlx::query(
        "UPDATE messages SET send_attempt_id = gen_random_uuid(), send_attempt_started_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(h.pool())
    .await
    .unwrap();
    draining.await.unwrap();

    // The 500 would send the message back to `queued` for a retry; the run wrote nothing and
    // ended: the message is the other run's, still `sending` on its hold.
    assert!(interruptions("taken_over") > taken_over);
    assert_eq!(h.message(id).await.status, MessageStatus::Sending);
    assert_eq!(h.twilio.requests().len(), 1, "no retry of its own");
    assert!(h.twilio.messages().is_empty());
    assert_eq!(
        h.available().await,
        9,
        "the hold stays for the run that took over"
    );
    h.audit_clean().await;
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
    crate::support::forget_jobs(&h.deps.queues).await;

    let report = h.reconcile(Duration::ZERO).await;
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
    h.hold(stranded, Duration::ZERO).await;
    assert_eq!(h.available().await, 8);

    let report = h.reconcile(Duration::from_secs(3600)).await;
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
async fn the_reconciler_leaves_an_expired_hold_alone_once_a_send_has_started_on_it(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Reminder").await;
    let hold = h.hold(id, Duration::ZERO).await;
    // A send step resuming the queued message has it locked and is marking it `sending`.
    let mut send = h.pool().begin().await.unwrap();
    mark_sending(&mut send, id, Duration::ZERO).await;

    // The message is being worked on: the reconciler leaves it (and its hold) to the next pass.
    let report = h.reconcile(Duration::from_secs(3600)).await;
    assert_eq!(report.holds_released, 0, "{report:?}");
    send.commit().await.unwrap();
    // The next pass sees it `sending`: the hold the send will be charged on stays.
    let report = h.reconcile(Duration::from_secs(3600)).await;
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

/// After a Redis flush, every company's lost messages are enqueued again within two passes,
/// however many messages another company has waiting for the morning: more than a page of the
/// reconciler's reads here.
#[sqlx::test]
async fn after_a_redis_flush_messages_waiting_for_the_morning_do_not_hide_others_lost(
    pool: PgPool,
) {
    let mut h = Harness::new(pool, 20).await;
    h.deps.clock = clock_at(22, 30);
    // This company's reminders wait for 08:00 in the delayed set.
    let mut waiting = Vec::new();
    for i in 0..12 {
        waiting.push(h.accept(&format!("07541234{i:02}"), "Kumbusho").await);
    }
    h.drain(Duration::from_secs(2)).await;
    assert_eq!(
        h.deps.queues.store("sms").stats().await.unwrap().delayed,
        12
    );
    // Another company's one-time codes, sent at any hour, accepted afterwards.
    let other = accounts::create_company(h.pool(), "Zahanati", Country::TZ)
        .await
        .unwrap();
    let mut conn = h.pool().acquire().await.unwrap();
    ledger::adjust(
        &mut conn,
        uuid::Uuid::now_v7(),
        other.id,
        CreditDelta::new(5).unwrap(),
        "test",
        "test",
    )
    .await
    .unwrap();
    let token = h.app.token(Some(other.id), Role::Member).await;
    let mut codes = Vec::new();
    for i in 0..3 {
        let r = h
            .app
            .client
            .post(h.app.url("/v1/messages"))
            .bearer_auth(&token)
            .json(&json!({"to": format!("07551234{i:02}"), "body": "Code 4821", "quiet_hours": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        codes.push(v["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    // Redis loses this deployment's keys before any worker ran the codes.
    crate::support::forget_jobs(&h.deps.queues).await;

    // Two passes reading five messages at a time, the workers running after each.
    let settings = workers::reconcile::Settings {
        stale_queued: Duration::ZERO,
        batch: 5,
        ..Default::default()
    };
    let mut requeued = 0;
    for _ in 0..2 {
        requeued += workers::reconcile::reconcile_once(&h.deps, &settings)
            .await
            .unwrap()
            .requeued;
        h.drain(Duration::from_secs(3)).await;
    }
    assert_eq!(requeued, 15, "every lost message enqueued once");
    for id in codes {
        assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    }
    // The reminders are still waiting for the morning, each with its job again.
    for id in waiting {
        assert_eq!(h.message(id).await.status, MessageStatus::Queued);
    }
    assert_eq!(
        h.deps.queues.store("sms").stats().await.unwrap().delayed,
        12
    );
    h.audit_clean().await;
}

/// A batch's messages share one `updated_at` (one transaction): the reconciler's pages go
/// through them by id too, each message once, none skipped at a page's edge.
#[sqlx::test]
async fn the_stale_reads_page_through_messages_of_one_instant_each_once(pool: PgPool) {
    use copcca_sms::messages::recovery::StaleMessages;

    let company = crate::support::company_with(&pool, 0).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(crate::support::message(&pool, company.id, 1).await);
    }
    sqlx::query("UPDATE messages SET updated_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();

    let mut stale = StaleMessages::queued(Duration::from_secs(60));
    let mut pages = Vec::new();
    while let Some(page) = stale.next_page(&pool, 5).await.unwrap() {
        pages.push(page);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2]);
    let mut read: Vec<_> = pages.concat();
    read.sort_by_key(|id| id.0);
    ids.sort_by_key(|id| id.0);
    assert_eq!(read, ids);
    // None of them is `sending`.
    let mut sending = StaleMessages::sending(Duration::ZERO);
    assert!(sending.next_page(&pool, 5).await.unwrap().is_none());
}

#[sqlx::test]
async fn a_run_refused_for_credits_leaves_the_message_to_a_run_that_claimed_it_since(pool: PgPool) {
    use copcca_sms::db::group_commit::GroupCommit;
    use copcca_sms::domain::{CreditDelta, Credits};
    use copcca_sms::ledger::{BeginSend, LedgerError};

    let mut h = Harness::new(pool, 0).await;
    let id = h.accept("0754123456", "Reminder").await;
    // The real claim step, which finds no credits for the job's run. Between that answer and
    // the run's next write, the company tops up and another run of the message's job (a
    // redelivery) claims the message, as the step lets it: the message is its to send now.
    let company = h.company.id;
    let steps_pool = h.pool().clone();
    h.deps.steps.begin = GroupCommit::start("send_begin", 64, 1, move |items: Vec<BeginSend>| {
        let pool = steps_pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            let answers = ledger::begin_sends(&mut conn, &items).await?;
            if answers
                .iter()
                .any(|a| matches!(a, Err(LedgerError::InsufficientCredits { .. })))
            {
                let ten = CreditDelta::new(10).unwrap();
                ledger::adjust(
                    &mut conn,
                    uuid::Uuid::now_v7(),
                    company,
                    ten,
                    "top-up",
                    "test",
                )
                .await
                .unwrap();
                let one = Credits::new(1).unwrap();
                let ttl = Duration::from_secs(600);
                reserve_one(&mut conn, company, MessageId(id), one, ttl)
                    .await
                    .unwrap()
                    .expect("the other run claims the message");
            }
            Ok(answers)
        }
    });
    h.drain(DRAIN).await;

    // The refused run wrote nothing: the message is the other run's, `sending` on its hold.
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Sending, None)
    );
    assert!(h.twilio.requests().is_empty());
    // The other run's send goes through and is charged; the message is `sent`, not `failed`.
    let hold = ledger::active_hold(h.pool(), MessageId(id))
        .await
        .unwrap()
        .expect("the other run's hold");
    let mut conn = h.pool().acquire().await.unwrap();
    crate::support::commit_one(
        &mut conn,
        hold.id,
        copcca_sms::domain::Credits::new(1).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}
