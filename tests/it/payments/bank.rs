//! Bank transfers: bank details and reference, operator approval (once), under-payment, rejection.

use copcca_sms::domain::{Country, Role};
use copcca_sms::payments::Status;
use serde_json::json;
use sqlx::PgPool;

use super::Harness;

async fn transfer(h: &Harness) -> (copcca_sms::domain::PaymentId, serde_json::Value) {
    let (status, v) = h
        .purchase(
            json!({"package_id": "business", "method": "bank_transfer"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    (v["id"].as_str().unwrap().parse().unwrap(), v)
}

#[sqlx::test]
async fn approved_transfer_is_credited_once_however_often_it_is_approved(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, v) = transfer(&h).await;
    assert_eq!(v["status"], "pending");
    assert_eq!(v["amount"], "20000.00");
    assert_eq!(v["currency"], "TZS");
    let reference = v["bank"]["reference"].as_str().unwrap();
    let company_code = &h.company.id.0.simple().to_string().to_ascii_uppercase()[24..];
    assert!(
        reference.starts_with(&format!("SMS-{company_code}-")) && reference.len() == 27,
        "{reference}"
    );
    assert!(v["bank"]["account_number"].is_string());

    let approve = json!({"amount": "20000.00", "currency": "TZS", "bank_reference": "CRDB-778812"});
    let path = format!("/admin/purchases/{id}/approve");
    let (s1, first) = h.post_as(&h.admin, &path, approve.clone()).await;
    assert_eq!(s1, 200, "{first}");
    assert_eq!(first["status"], "paid");
    // The operator clicks again (and again, concurrently): still one credit.
    let (a, b) = tokio::join!(
        h.post_as(&h.admin, &path, approve.clone()),
        h.post_as(&h.admin, &path, approve.clone())
    );
    assert_eq!((a.0, b.0), (200, 200));
    h.drain().await;

    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Credited);
    assert_eq!(p.receipt.as_deref(), Some("bank:CRDB-778812"));
    assert_eq!(h.available().await, 500);
    assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 500)]);
    // After crediting, approving again is still a no-op.
    let (s, after) = h.post_as(&h.admin, &path, approve).await;
    assert_eq!((s, after["status"].as_str()), (200, Some("credited")));
    h.drain().await;
    assert_eq!(h.available().await, 500);

    // The history names who did what.
    let events = copcca_sms::payments::events(h.pool(), id).await.unwrap();
    let moves: Vec<(Option<String>, String)> = events
        .iter()
        .map(|e| (e.from_status.clone(), e.to_status.clone()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (None, "initiated".into()),
            (Some("initiated".into()), "pending".into()),
            (Some("pending".into()), "paid".into()),
            (Some("paid".into()), "credited".into()),
        ]
    );
    assert!(events[2].actor.starts_with("user:"), "{:?}", events[2]);
    h.audit_clean().await;
}

#[sqlx::test]
async fn only_a_super_admin_approves(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, _) = transfer(&h).await;
    let company_admin = h.app.token(Some(h.company.id), Role::Admin).await;
    let approve = json!({"amount": "20000.00", "currency": "TZS", "bank_reference": "X1"});
    for token in [&h.token, &company_admin] {
        let (s, v) = h
            .post_as(
                token,
                &format!("/admin/purchases/{id}/approve"),
                approve.clone(),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["code"], "forbidden");
    }
    assert_eq!(h.payment(id).await.status, Status::Pending);
    assert_eq!(h.available().await, 0);
}

#[sqlx::test]
async fn under_payment_needs_explicit_credits(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, _) = transfer(&h).await;
    let path = format!("/admin/purchases/{id}/approve");
    let (s, v) = h
        .post_as(
            &h.admin,
            &path,
            json!({"amount": "15000", "currency": "TZS", "bank_reference": "R-1"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["code"], "approval_refused");
    assert!(
        v["detail"].as_str().unwrap().contains("under-payment"),
        "{v}"
    );
    // The wrong currency is refused too.
    let (s, _) = h
        .post_as(
            &h.admin,
            &path,
            json!({"amount": "20000", "currency": "KES", "bank_reference": "R-1"}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(h.payment(id).await.status, Status::Pending);

    let (s, v) = h
        .post_as(
            &h.admin,
            &path,
            json!({"amount": "15000", "currency": "TZS", "bank_reference": "R-1", "credits": 375}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["credits"], 375);
    h.drain().await;
    assert_eq!(h.available().await, 375);
    let p = h.payment(id).await;
    assert_eq!((p.status, p.credits_granted), (Status::Credited, Some(375)));
    h.audit_clean().await;
}

#[sqlx::test]
async fn one_bank_reference_pays_one_payment_and_rejected_ones_stay_rejected(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (first, _) = transfer(&h).await;
    let (second, _) = transfer(&h).await;
    let approve = json!({"amount": "20000.00", "currency": "TZS", "bank_reference": "SAME-REF"});
    let (s, _) = h
        .post_as(
            &h.admin,
            &format!("/admin/purchases/{first}/approve"),
            approve.clone(),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = h
        .post_as(
            &h.admin,
            &format!("/admin/purchases/{second}/approve"),
            approve,
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("already paid"),
        "{v}"
    );

    let (s, v) = h
        .post_as(
            &h.admin,
            &format!("/admin/purchases/{second}/reject"),
            json!({"reason": "no money arrived"}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("failed")), "{v}");
    let (s, v) = h
        .post_as(
            &h.admin,
            &format!("/admin/purchases/{second}/approve"),
            json!({"amount": "20000.00", "currency": "TZS", "bank_reference": "OTHER"}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["code"], "payment_settled");
    h.drain().await;
    assert_eq!(h.available().await, 500);
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_cli_approves_a_transfer(pool: PgPool) {
    let h = Harness::new(pool.clone(), Country::TZ).await;
    let (id, _) = transfer(&h).await;
    let out = crate::cli::run_admin_json(
        &pool,
        &[
            "approve-transfer",
            "--payment",
            &id.to_string(),
            "--amount",
            "20000",
            "--currency",
            "TZS",
            "--bank-reference",
            "CLI-1",
        ],
    )
    .await;
    assert_eq!(out["status"], "credited", "{out}");
    assert_eq!(h.available().await, 500);
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_approval_whose_job_was_lost_is_credited_once_by_the_sweep(pool: PgPool) {
    let h = Harness::new(pool, Country::TZ).await;
    let (id, _) = transfer(&h).await;
    let approve = json!({"amount": "20000.00", "currency": "TZS", "bank_reference": "NMB-4410"});
    let path = format!("/admin/purchases/{id}/approve");
    let (s, v) = h.post_as(&h.admin, &path, approve).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("paid")), "{v}");
    let purchases = h.deps.queues.store("purchases");
    assert_eq!(purchases.stats().await.unwrap().ready, 1);
    // Redis loses everything of this deployment before a worker takes the job (a crash, a
    // failover to an empty replica): the approval is only in PostgreSQL.
    assert!(h.deps.queues.delete_all().await.unwrap() > 0);
    h.drain().await;
    assert_eq!(h.payment(id).await.status, Status::Paid);
    assert_eq!(h.available().await, 0, "nothing runs without the job");

    // The reconciler finds the paid, uncredited payment. Two schedulers at once enqueue one job
    // per two-minute window (two if the window turns between them): either way, one credit.
    let (a, b) = tokio::join!(h.sweep(), h.sweep());
    let checked = a.payments_checked + b.payments_checked;
    assert!((1..=2).contains(&checked), "{checked}");
    h.drain().await;
    let p = h.payment(id).await;
    assert_eq!(p.status, Status::Credited);
    assert_eq!(p.receipt.as_deref(), Some("bank:NMB-4410"));
    assert_eq!(h.entries_of(id).await, vec![("purchase".to_string(), 500)]);
    assert_eq!(h.available().await, 500);

    // Nothing is left to find.
    let report = h.sweep().await;
    assert_eq!(report.payments_checked, 0);
    h.audit_clean().await;
}
