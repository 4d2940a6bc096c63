//! Accepting messages through the API: bad input, Idempotency-Key, listing, concurrent requests
//! written together.

use copcca_sms::domain::{Country, E164};
use copcca_sms::messages::opt_outs;
use serde_json::json;
use sqlx::PgPool;

use super::*;

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

/// A local number is read in the company's country, which the accept path reads once per
/// process: a country is set when the company is created and never changed, so the copy held
/// is what a second read would say (here the row is changed behind its back to show the copy
/// is used), and an unknown company is not held.
#[sqlx::test]
async fn a_companys_country_is_read_once_per_process(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let countries = copcca_sms::accounts::Countries::default();
    let id = h.company.id;
    assert_eq!(countries.of(h.pool(), id).await.unwrap(), Some(Country::TZ));
    let first = h.accept("0754000001", "Reminder").await;
    sqlx::query("UPDATE companies SET country = 'KE' WHERE id = $1")
        .bind(id)
        .execute(h.pool())
        .await
        .unwrap();
    assert_eq!(countries.of(h.pool(), id).await.unwrap(), Some(Country::TZ));
    let fresh = copcca_sms::accounts::Countries::default();
    assert_eq!(fresh.of(h.pool(), id).await.unwrap(), Some(Country::KE));
    let unknown = copcca_sms::domain::CompanyId::new();
    assert_eq!(countries.of(h.pool(), unknown).await.unwrap(), None);
    // The API's copy was taken at the first message: the second is still read as Tanzanian.
    let second = h.accept("0754000002", "Reminder").await;
    for id in [first, second] {
        assert!(h.message(id).await.to.as_str().starts_with("+255"));
    }
}

/// The send job's first read is grouped across concurrent sends: one answer per id asked, in
/// the order asked (an id asked twice answered twice), `None` for an unknown one, and a row that
/// cannot be read (its company's time zone is not one) is an error for that message only.
#[sqlx::test]
async fn the_send_jobs_grouped_read_answers_each_id_in_order(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let a = MessageId(h.accept("0754000001", "First").await);
    let b = MessageId(h.accept("0754000002", "Second").await);
    let other = accounts::create_company(h.pool(), "Other Co", Country::TZ)
        .await
        .unwrap();
    let broken = MessageId::new();
    sqlx::query(
        "INSERT INTO messages (id, company_id, to_number, body, encoding, segments, credits, sender)
         VALUES ($1, $2, '+255754000003', 'Third', 'GSM-7', 1, 1, 'test')",
    )
    .bind(broken)
    .bind(other.id)
    .execute(h.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE companies SET timezone = 'Nowhere/Else' WHERE id = $1")
        .bind(other.id)
        .execute(h.pool())
        .await
        .unwrap();
    let unknown = MessageId::new();
    let read = store::find_for_sending(h.pool(), &[b, unknown, a, broken, b])
        .await
        .unwrap();
    let ids: Vec<_> = read
        .iter()
        .map(|r| match r {
            Ok(found) => Ok(found
                .as_ref()
                .map(|f| (f.message.id, f.message.body.as_str()))),
            Err(_) => Err(()),
        })
        .collect();
    assert_eq!(
        ids,
        [
            Ok(Some((b, "Second"))),
            Ok(None),
            Ok(Some((a, "First"))),
            Err(()),
            Ok(Some((b, "Second")))
        ]
    );
    assert!(
        read[0]
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .rules
            .sms_per_hour
            > 0
    );
}

/// Provider ids stay unique once known (the index holds known ids only, migration 0036), and
/// any number of messages may wait without one.
#[sqlx::test]
async fn a_provider_id_names_one_message(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let a = h.accept("0754000001", "First").await;
    let b = h.accept("0754000002", "Second").await;
    let set = |id: uuid::Uuid| {
        sqlx::query("UPDATE messages SET provider_id = 'SM0001' WHERE id = $1")
            .bind(id)
            .execute(h.pool())
    };
    set(a).await.unwrap();
    let refused = set(b).await.unwrap_err();
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("23505"),
        "{refused}"
    );
    let unknown: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE provider_id IS NULL")
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(unknown, 1);
}

/// A database that fails the accept's insert for a reason that goes away (here: the server
/// shutting down, SQLSTATE 57P01, raised by a trigger) is answered 503 with `Retry-After`, like
/// any other endpoint's, not 500; nothing is written, and the same request with its
/// Idempotency-Key succeeds once the database is back.
#[sqlx::test]
async fn a_database_failing_the_accept_is_answered_503_and_the_retry_is_accepted(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    sqlx::raw_sql(
        "CREATE FUNCTION shutting_down() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'terminating connection' USING ERRCODE = '57P01'; END $$;
         CREATE TRIGGER shutting_down BEFORE INSERT ON messages
             FOR EACH ROW EXECUTE FUNCTION shutting_down();",
    )
    .execute(h.pool())
    .await
    .unwrap();
    let body = json!({"to": "0754123456", "body": "Reminder"});
    let (status, v) = h.send(body.clone(), Some("crm-retry-1")).await;
    assert_eq!(
        (status, v["code"].as_str(), v["retry_after"].as_u64()),
        (503, Some("database_unavailable"), Some(2)),
        "{v}"
    );
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(written, 0);

    sqlx::raw_sql("DROP TRIGGER shutting_down ON messages")
        .execute(h.pool())
        .await
        .unwrap();
    let (status, v) = h.send(body, Some("crm-retry-1")).await;
    assert_eq!(status, 202, "{v}");
    h.drain(DRAIN).await;
    assert_eq!(h.twilio.messages().len(), 1);
    assert_eq!(h.available().await, 9);
}
