//! Opt-outs: by API, by inbound STOP / START, refused at accept time and again at send time;
//! the recipient's own STOP is not the company's to remove.

use std::time::Duration;

use copcca_sms::messages::MessageStatus;
use sqlx::PgPool;

use super::*;

#[sqlx::test]
async fn stop_then_start_by_inbound_reply(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.accept("0754123456", "Reminder").await; // the conversation that decides the company
    let inbound = h.app.url("/webhooks/twilio/inbound");
    assert_eq!(
        h.twilio
            .inbound(&inbound, "+255754123456", "Acha")
            .await
            .unwrap(),
        204
    );
    let (status, v) = h
        .send(json!({"to": "0754123456", "body": "again"}), None)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("recipient_opted_out")),
        "{v}"
    );
    let listed: Value = h
        .app
        .client
        .get(h.app.url("/v1/opt-outs"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["opt_outs"][0]["source"], "inbound_stop");

    assert_eq!(
        h.twilio
            .inbound(&inbound, "+255754123456", "START")
            .await
            .unwrap(),
        204
    );
    let (status, _) = h
        .send(json!({"to": "0754123456", "body": "again"}), None)
        .await;
    assert_eq!(status, 202);
    // An ordinary reply changes nothing; an unsigned one is refused.
    assert_eq!(
        h.twilio
            .inbound(&inbound, "+255754123456", "Asante, nimelipa")
            .await
            .unwrap(),
        204
    );
    let r = h
        .app
        .client
        .post(&inbound)
        .form(&[
            ("From", "+255754123456"),
            ("Body", "STOP"),
            ("MessageSid", "SMx"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, _) = h
        .send(json!({"to": "0754123456", "body": "still fine"}), None)
        .await;
    assert_eq!(status, 202);
}

#[sqlx::test]
async fn the_api_adds_lists_and_removes_opt_outs(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let url = h.app.url("/v1/opt-outs");
    let r = h
        .app
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&json!({"phone": "0754 123 456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["phone"], "+255754123456");
    let again = h
        .app
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&json!({"phone": "+255754123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let bad = h
        .app
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&json!({"phone": "12"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let (status, _) = h.send(json!({"to": "0754123456", "body": "x"}), None).await;
    assert_eq!(status, 422);

    // Another company's list is its own.
    let other = accounts::create_company(h.pool(), "Other", copcca_sms::domain::Country::TZ)
        .await
        .unwrap();
    let other_token = h.app.token(Some(other.id), Role::Member).await;
    let theirs: Value = h
        .app
        .client
        .get(&url)
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(theirs["opt_outs"].as_array().unwrap().is_empty());
    let r = h
        .app
        .client
        .delete(format!("{url}/%2B255754123456"))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let r = h
        .app
        .client
        .delete(format!("{url}/%2B255754123456"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = h.send(json!({"to": "0754123456", "body": "x"}), None).await;
    assert_eq!(status, 202);
}

#[sqlx::test]
async fn a_stop_while_a_message_is_queued_fails_it_at_send_time_uncharged(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    // Accepted while the recipients could still be messaged.
    let plain = h.accept("0754123456", "Reminder").await;
    let held = h.accept("0754654321", "Reminder").await;
    // The second one waits for a retry on the credit its earlier attempt reserved.
    h.hold(held, Duration::from_secs(600)).await;
    assert_eq!(h.available().await, 9);
    // Then the first recipient replies STOP; the company opts the second one out.
    let inbound = h.app.url("/webhooks/twilio/inbound");
    let stop = h.twilio.inbound(&inbound, "+255754123456", "STOP").await;
    assert_eq!(stop.unwrap(), 204);
    let r = h
        .app
        .client
        .post(h.app.url("/v1/opt-outs"))
        .bearer_auth(&h.token)
        .json(&json!({"phone": "0754654321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    h.drain(DRAIN).await;
    for id in [plain, held] {
        let m = h.message(id).await;
        assert_eq!(
            (m.status, m.error_code.as_deref()),
            (MessageStatus::Failed, Some("opted_out")),
            "{id}"
        );
        assert!(!m.refunded, "nothing was charged, so nothing is refunded");
    }
    assert!(h.twilio.requests().is_empty(), "nothing sent");
    assert_eq!(
        h.available().await,
        10,
        "nothing charged, the hold released"
    );
    assert_eq!(
        h.deps.queues.store("sms").stats().await.unwrap().dead,
        0,
        "not retried"
    );
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_recipients_stop_is_not_the_companys_to_remove(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.accept("0754123456", "Reminder").await; // the conversation that decides the company
    let url = h.app.url("/v1/opt-outs");
    // The company had opted the number out itself; then the recipient says STOP: the opt-out is
    // the recipient's now.
    let r = h
        .app
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&json!({"phone": "0754123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inbound = h.app.url("/webhooks/twilio/inbound");
    let stop = h.twilio.inbound(&inbound, "+255754123456", "STOP").await;
    assert_eq!(stop.unwrap(), 204);
    let company_admin = h.app.token(Some(h.company.id), Role::Admin).await;
    for token in [&h.token, &company_admin] {
        let r = h
            .app
            .client
            .delete(format!("{url}/%2B255754123456"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "opted_out_by_recipient", "{body}");
    }
    // Adding it again changes nothing either.
    let r = h
        .app
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&json!({"phone": "0754123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["source"], "inbound_stop");
    let (status, v) = h.send(json!({"to": "0754123456", "body": "x"}), None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("recipient_opted_out"))
    );

    // The operator can remove it.
    let operator = h.app.token(None, Role::SuperAdmin).await;
    let admin_url = h.app.url(&format!(
        "/admin/companies/{}/opt-outs/%2B255754123456",
        h.company.id
    ));
    let r = h
        .app
        .client
        .delete(&admin_url)
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "not a company member");
    let r = h
        .app
        .client
        .delete(&admin_url)
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = h
        .app
        .client
        .delete(&admin_url)
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, _) = h.send(json!({"to": "0754123456", "body": "x"}), None).await;
    assert_eq!(status, 202);
}
