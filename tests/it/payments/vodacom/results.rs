//! Vodacom's asynchronous result at its per-payment secret URL: it only triggers the status
//! query, however often and by whomever it is posted.

use super::*;

/// Gives the payment a known secret result URL (the service keeps only its hash).
async fn result_url(h: &Harness, id: PaymentId) -> String {
    let token = format!("test-token-{}", id.0.simple());
    sqlx::query("UPDATE payments SET callback_token_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(Sha256::digest(token.as_bytes()).to_vec())
        .execute(h.pool())
        .await
        .unwrap();
    h.app.url(&format!("/webhooks/vodacom/{token}"))
}

#[sqlx::test]
async fn the_same_result_ten_times_concurrently_credits_once(pool: PgPool) {
    let h = tanzanian(pool).await;
    h.vodacom.script([C2bScript::new(C2bOutcome::Timeout)
        .then("Completed")
        .pending_queries(2)]);
    let id = h.start(business()).await;
    let url = result_url(&h, id).await;
    // The job sends it: unknown, and the query keeps saying N/A.
    let first = payments::verify(h.pool(), &h.deps.providers.current().payments, id)
        .await
        .unwrap();
    assert!(
        matches!(first, payments::Verified::Waiting { .. }),
        "{first:?}"
    );
    let transaction = h.vodacom.payments()[0].transaction_id.clone().unwrap();
    let conversation = payments::vodacom_conversation_id(id);
    let posts = (0..10).map(|_| {
        h.vodacom
            .post_result(&url, &conversation, &transaction, "0")
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(
        statuses.iter().all(|s| *s.as_ref().unwrap() == 200),
        "{statuses:?}"
    );
    let accepted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE provider = 'vodacom' AND accepted",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(accepted, 1, "stored once");
    assert_eq!(
        h.payment(id).await.status,
        Status::Pending,
        "a result credits nothing by itself"
    );
    // The one check it enqueued asks the status query until it says Completed: credited once.
    h.drain().await;
    credited_once(&h, id, 500).await;
    assert_eq!(h.vodacom.payments().len(), 1);
}

#[sqlx::test]
async fn a_forged_result_changes_nothing(pool: PgPool) {
    let h = tanzanian(pool).await;
    h.vodacom.script([C2bScript::new(C2bOutcome::Cancelled)]);
    let id = h.start(business()).await;
    let url = result_url(&h, id).await;
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Cancelled);
    let conversation = payments::vodacom_conversation_id(id);
    // A guessed URL, and the right URL naming another payment: 404, stored as rejections.
    let guessed = h.app.url("/webhooks/vodacom/guessed-token");
    assert_eq!(
        h.vodacom
            .post_result(&guessed, &conversation, "FORGED1", "0")
            .await
            .unwrap(),
        404
    );
    let other = uuid::Uuid::new_v4().simple().to_string();
    assert_eq!(
        h.vodacom
            .post_result(&url, &other, "FORGED2", "0")
            .await
            .unwrap(),
        404
    );
    assert_eq!(
        h.rejections("vodacom").await,
        vec![
            "unknown_token".to_string(),
            "reference_mismatch".to_string()
        ]
    );
    // The right URL and payment, claiming success after the customer cancelled: the status
    // query says Cancelled, so nothing is credited; the operator is told.
    assert_eq!(
        h.vodacom
            .post_result(&url, &conversation, "FORGED3", "0")
            .await
            .unwrap(),
        200
    );
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Cancelled);
    assert!(p.flagged_reason.unwrap().contains("FORGED3"));
    assert_eq!(h.available().await, 0);
    h.audit_clean().await;
}
