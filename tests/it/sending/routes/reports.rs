//! The unsigned routes' delivery reports: the secret URL per route, and Beem's pull.

use super::*;

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
async fn a_pull_refused_or_unanswered_ends_the_pass_and_counts_nothing(pool: PgPool) {
    let r = routed(pool, 10, &[("255", &[RouteName::Beem])]).await;
    r.beem
        .report_to(Some("http://127.0.0.1:9/dlr"), Duration::from_millis(50));
    let ids = [
        r.h.accept("+255754000001", "Karibu").await,
        r.h.accept("+255754000002", "Karibu").await,
    ];
    r.h.drain(DRAIN).await;
    r.beem.wait_deliveries(2).await;

    // Beem's report host down, then our key refused there: each pass stops at the first
    // answer, nothing is counted as a pull, nothing moves, and nothing waits longer for it.
    for status in [503, 401] {
        r.beem.fail_pulls(Some(status));
        let before = r.beem.pulls().len();
        assert_eq!(
            pull_pass(&r, Duration::ZERO).await,
            report_pulls::Pulled::default()
        );
        assert!(
            r.beem.pulls().len() > before,
            "asked, and refused ({status})"
        );
        for id in ids {
            assert_eq!(r.h.message(id).await.status, MessageStatus::Sent);
        }
        let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM report_pulls")
            .fetch_one(r.h.pool())
            .await
            .unwrap();
        assert_eq!(counted, 0, "a failed pull is not a pull ({status})");
    }
    // Back: the next pass settles both.
    r.beem.fail_pulls(None);
    let pulled = pull_pass(&r, Duration::ZERO).await;
    assert_eq!((pulled.asked, pulled.applied), (2, 2));
    for id in ids {
        assert_eq!(r.h.message(id).await.status, MessageStatus::Delivered);
    }
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
