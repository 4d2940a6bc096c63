//! Status callbacks: signed, deduplicated, forward-only, refunding what failed.

use copcca_sms::messages::MessageStatus;
use sqlx::PgPool;

use super::*;

async fn sent(h: &Harness) -> (uuid::Uuid, String) {
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    (id, m.view.provider_id.unwrap())
}

#[sqlx::test]
async fn delivered_is_final(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (id, sid) = sent(&h).await;
    assert_eq!(
        h.twilio.callback(&sid, "delivered", None).await.unwrap(),
        204
    );
    assert_eq!(h.message(id).await.status, MessageStatus::Delivered);
    // Late and out of order: ignored.
    assert_eq!(h.twilio.callback(&sid, "sent", None).await.unwrap(), 204);
    assert_eq!(
        h.twilio
            .callback(&sid, "undelivered", Some("30003"))
            .await
            .unwrap(),
        204
    );
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!((m.status, m.refunded), (MessageStatus::Delivered, false));
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}

#[sqlx::test]
async fn undelivered_three_times_is_refunded_once(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (id, sid) = sent(&h).await;
    for _ in 0..3 {
        assert_eq!(
            h.twilio
                .callback(&sid, "undelivered", Some("30003"))
                .await
                .unwrap(),
            204
        );
    }
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.refunded, m.error_code.as_deref()),
        (MessageStatus::Undelivered, true, Some("30003"))
    );
    assert_eq!(h.available().await, 10);
    let refunds: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE kind = 'refund'")
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(refunds, 1);
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE provider = 'twilio' AND accepted",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(
        stored, 1,
        "repeats are deduplicated on (MessageSid, MessageStatus)"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn failed_after_sent_is_refunded(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (id, sid) = sent(&h).await;
    h.twilio.callback(&sid, "sent", None).await.unwrap();
    h.twilio
        .callback(&sid, "failed", Some("30008"))
        .await
        .unwrap();
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!((m.status, m.refunded), (MessageStatus::Failed, true));
    assert_eq!(h.available().await, 10);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_forged_callback_is_refused_and_changes_nothing(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (id, sid) = sent(&h).await;
    let url = h.app.url("/webhooks/twilio/status");
    let form = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "failed"),
        ("AccountSid", copcca_sms::fakes::twilio::ACCOUNT_SID),
    ];
    let forged = copcca_sms::providers::twilio::signature::compute(
        "not-the-token",
        &url,
        &form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    for signature in [Some(forged.as_str()), None] {
        let mut req = h.app.client.post(&url).form(&form);
        if let Some(s) = signature {
            req = req.header("X-Twilio-Signature", s);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!((m.status, m.refunded), (MessageStatus::Sent, false));
    let rejected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE NOT accepted")
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(rejected, 2, "rejections are recorded");
    h.audit_clean().await;
}

#[sqlx::test]
async fn signed_requests_missing_their_fields_are_refused_and_recorded(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let token = copcca_sms::fakes::twilio::AUTH_TOKEN;
    for (path, form) in [
        ("/webhooks/twilio/status", vec![("MessageSid", "SM1")]),
        (
            "/webhooks/twilio/inbound",
            vec![("MessageSid", "SM2"), ("Body", "STOP")],
        ),
    ] {
        let url = h.app.url(path);
        let params: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = copcca_sms::providers::twilio::signature::compute(token, &url, &params);
        let r = h
            .app
            .client
            .post(&url)
            .header("X-Twilio-Signature", signature)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "missing_fields", "{path}");
    }
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT rejection FROM webhook_events WHERE NOT accepted ORDER BY id")
            .fetch_all(h.pool())
            .await
            .unwrap();
    assert_eq!(
        reasons,
        vec![
            "MessageSid and MessageStatus are required",
            "MessageSid and From are required"
        ]
    );
}

/// A sent message whose `delivered` report came before the message had its SID (stored,
/// pending), the SID then recorded: its id and SID.
async fn delivered_before_its_sid(h: &Harness) -> (uuid::Uuid, String) {
    let (id, sid) = sent(h).await;
    sqlx::query("UPDATE messages SET provider_id = NULL WHERE id = $1")
        .bind(id)
        .execute(h.pool())
        .await
        .unwrap();
    assert_eq!(
        h.twilio.callback(&sid, "delivered", None).await.unwrap(),
        204
    );
    assert_eq!(h.message(id).await.status, MessageStatus::Sent);
    sqlx::query("UPDATE messages SET provider_id = $2 WHERE id = $1")
        .bind(id)
        .bind(&sid)
        .execute(h.pool())
        .await
        .unwrap();
    (id, sid)
}

#[sqlx::test]
async fn a_report_that_beats_the_commit_is_applied_later(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    // Pretend the report came before the message had its SID: stored, pending.
    let (id, _) = delivered_before_its_sid(&h).await;
    sqlx::query("UPDATE webhook_events SET received_at = now() - interval '1 minute'")
        .execute(h.pool())
        .await
        .unwrap();
    let report = copcca_sms::workers::reconcile::reconcile_once(&h.deps, &Default::default())
        .await
        .unwrap();
    assert_eq!(report.reports_applied, 1);
    assert_eq!(h.message(id).await.status, MessageStatus::Delivered);
}

#[sqlx::test]
async fn reports_naming_no_message_of_ours_neither_hide_one_that_applies_nor_stay_forever(
    pool: PgPool,
) {
    let h = Harness::new(pool, 10).await;
    // 1,500 signed reports of SIDs we never sent (another deployment on the same account, say)
    // came first and are still waiting: more than a reconciler page.
    sqlx::query(
        "INSERT INTO webhook_events (provider, event_key, subject, payload, accepted, received_at)
         SELECT 'twilio', 'SMx' || i || ':delivered', 'SMx' || i,
                'MessageSid=SMx' || i || '&MessageStatus=delivered', true, now() - interval '1 hour'
         FROM generate_series(1, 1500) i",
    )
    .execute(h.pool())
    .await
    .unwrap();
    let (id, _) = delivered_before_its_sid(&h).await;
    sqlx::query("UPDATE webhook_events SET received_at = received_at - interval '1 minute'")
        .execute(h.pool())
        .await
        .unwrap();
    let settings = copcca_sms::workers::reconcile::Settings::default();
    let report = copcca_sms::workers::reconcile::reconcile_once(&h.deps, &settings)
        .await
        .unwrap();
    assert_eq!((report.reports_applied, report.reports_set_aside), (1, 0));
    assert_eq!(h.message(id).await.status, MessageStatus::Delivered);

    // Once a sent message would have been marked unconfirmed for want of them, they are set
    // aside.
    sqlx::query(
        "UPDATE webhook_events SET received_at = now() - interval '73 hours'
         WHERE event_key LIKE 'SMx%'",
    )
    .execute(h.pool())
    .await
    .unwrap();
    let report = copcca_sms::workers::reconcile::reconcile_once(&h.deps, &settings)
        .await
        .unwrap();
    assert_eq!(report.reports_set_aside, 1500);
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE accepted AND processed_at IS NULL",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(waiting, 0);
}
