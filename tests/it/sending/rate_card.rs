//! The rate card at accept and at send: home markets at 1 credit per segment, a priced country
//! charged its rate x segments and given back in full on failure, unpriced and special-range
//! numbers refused with nothing written, the longest prefix winning; and the operator's API.

use copcca_sms::domain::Role;
use copcca_sms::messages::MessageStatus;
use sqlx::PgPool;

use super::*;

/// 200 GSM-7 characters: two segments.
const TWO_SEGMENTS: &str = "Habari! Hii ni kumbukumbu ya malipo ya ankara yako. Tafadhali lipa kabla ya tarehe ya mwisho ili kuepuka adhabu. Asante kwa kuwa mteja wetu wa muda mrefu. Karibu tena dukani kwetu, Duka la Mama.......";

async fn messages_written(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(h.pool())
        .await
        .unwrap()
}

async fn enable(h: &Harness, range: rates::SpecialRange) {
    let edit = rates::Edit {
        ranges: [(range, true)].into(),
        ..rates::Edit::default()
    };
    rates::apply(h.pool(), &edit, "test").await.unwrap();
    h.app.state.rates.invalidate();
}

#[sqlx::test]
async fn a_home_market_number_costs_one_credit_per_segment(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    assert_eq!(TWO_SEGMENTS.chars().count(), 200);
    for to in ["0754123456", "+254712345678"] {
        let (status, v) = h.send(json!({"to": to, "body": TWO_SEGMENTS}), None).await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(
            (&v["segments"], &v["credits_per_segment"], &v["credits"]),
            (&json!(2), &json!(1), &json!(2)),
            "{to}"
        );
    }
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 6);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_priced_country_is_charged_its_rate_per_segment_and_released_in_full_on_failure(
    pool: PgPool,
) {
    let h = Harness::new(pool, 20).await;
    h.price("44", 3).await;
    let (status, v) = h
        .send(json!({"to": "+447400123456", "body": TWO_SEGMENTS}), None)
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        (&v["segments"], &v["credits_per_segment"], &v["credits"]),
        (&json!(2), &json!(3), &json!(6))
    );
    let sent: uuid::Uuid = v["id"].as_str().unwrap().parse().unwrap();
    h.drain(DRAIN).await;
    assert_eq!(h.message(sent).await.status, MessageStatus::Sent);
    assert_eq!(h.available().await, 14, "3 credits x 2 segments charged");

    // Twilio's magic number that fails (21211), priced at 3: the hold of 6 is released whole.
    h.price("1500555", 3).await;
    let failing = h.accept("+15005550001", TWO_SEGMENTS).await;
    assert_eq!(h.message(failing).await.view.credits.get(), 6);
    h.drain(DRAIN).await;
    assert_eq!(h.message(failing).await.status, MessageStatus::Failed);
    assert_eq!(
        h.available().await,
        14,
        "the failed send is released in full"
    );

    // Undelivered after the send: the 6 credits come back as a refund.
    let sid = h.message(sent).await.view.provider_id.unwrap();
    h.twilio
        .callback(&sid, "undelivered", Some("30003"))
        .await
        .unwrap();
    h.drain(DRAIN).await;
    assert!(h.message(sent).await.refunded);
    assert_eq!(h.available().await, 20);
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_unpriced_country_is_refused_and_nothing_is_written(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let (status, v) = h
        .send(
            json!({"to": "+12015550123", "body": "Hello"}),
            Some("key-unpriced"),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["code"], "destination_unpriced");
    assert_eq!(v["to"], "+12015550123");
    assert_eq!(v["errors"][0]["field"], "to");
    assert!(v["detail"].as_str().unwrap().contains("+12015550123"));
    assert_eq!(messages_written(&h).await, 0);
    assert_eq!(h.available().await, 10);

    // Priced afterwards, the same request (and key) is accepted.
    h.price("1", 2).await;
    let (status, v) = h
        .send(
            json!({"to": "+12015550123", "body": "Hello"}),
            Some("key-unpriced"),
        )
        .await;
    assert_eq!((status, &v["credits"]), (202, &json!(2)), "{v}");
}

#[sqlx::test]
async fn a_forbidden_prefix_is_refused(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    rates::apply(
        h.pool(),
        &rates::Edit {
            set: vec![
                rates::Rate {
                    prefix: "44".into(),
                    credits_per_segment: 3,
                    allowed: true,
                },
                rates::Rate {
                    prefix: "4474".into(),
                    credits_per_segment: 3,
                    allowed: false,
                },
            ],
            ..rates::Edit::default()
        },
        "test",
    )
    .await
    .unwrap();
    let (status, v) = h
        .send(json!({"to": "+447400123456", "body": "Hello"}), None)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("destination_forbidden"))
    );
    assert_eq!(v["prefix"], "4474");
    assert_eq!(messages_written(&h).await, 0);
}

#[sqlx::test]
async fn premium_and_satellite_numbers_are_refused_unless_enabled(pool: PgPool) {
    let h = Harness::new(pool, 200).await;
    h.price("44", 3).await;
    h.price("881", 40).await;
    for (to, range) in [
        ("+449012345678", "premium_rate"),
        ("+881612345678", "satellite"),
    ] {
        let (status, v) = h.send(json!({"to": to, "body": "Hello"}), None).await;
        assert_eq!(
            (status, v["code"].as_str(), v["range"].as_str()),
            (422, Some("destination_restricted"), Some(range)),
            "{to}: {v}"
        );
    }
    assert_eq!(messages_written(&h).await, 0);

    enable(&h, rates::SpecialRange::PremiumRate).await;
    enable(&h, rates::SpecialRange::Satellite).await;
    for (to, rate) in [("+449012345678", 3), ("+881612345678", 40)] {
        let (status, v) = h.send(json!({"to": to, "body": "Hello"}), None).await;
        assert_eq!(status, 202, "{to}: {v}");
        assert_eq!(v["credits_per_segment"], rate, "{to}");
    }
}

#[sqlx::test]
async fn the_longest_prefix_wins(pool: PgPool) {
    let h = Harness::new(pool, 100).await;
    h.price("44", 3).await;
    h.price("4474", 5).await;
    for (to, rate) in [("+442071838750", 3), ("+447400123456", 5)] {
        let (status, v) = h.send(json!({"to": to, "body": "Hello"}), None).await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["credits_per_segment"], rate, "{to}");
    }
    // The template preview prices its `to` the same way.
    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(
                json!({"body": "Hello {{customer_name}}", "vars": {"customer_name": "Juma"},
                        "to": "+447400123456"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (&p["credits_per_segment"], &p["credits"]),
        (&json!(5), &json!(5))
    );
    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(json!({"body": "Hello", "to": "+12015550123"})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("destination_unpriced"))
    );
}

#[sqlx::test]
async fn a_batch_refuses_unpriced_items_by_index_and_prices_the_rest(pool: PgPool) {
    let h = Harness::new(pool, 100).await;
    h.price("44", 3).await;
    let (status, v) = h
        .call(
            "POST",
            "/v1/messages/batch",
            Some(json!({"messages": [
                {"to": "0754123456", "body": "One"},
                {"to": "+12015550123", "body": "Two"},
                {"to": "+447400123456", "body": TWO_SEGMENTS},
                {"to": "+881612345678", "body": "Four"},
            ]})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!((&v["accepted"], &v["credits"]), (&json!(2), &json!(7)));
    let rejected: Vec<(u64, &str)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [(1, "destination_unpriced"), (3, "destination_restricted")]
    );
    assert_eq!(messages_written(&h).await, 2);
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 93);
    h.audit_clean().await;
}

#[sqlx::test]
async fn the_operator_replaces_the_card_through_the_api_every_field_checked(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let admin = h.app.token(None, Role::SuperAdmin).await;
    let put = |body: Value, token: String| {
        let req = h
            .app
            .client
            .put(h.app.url("/admin/rate-card"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = put(json!({"rates": []}), h.token.clone()).await;
    assert_eq!(status, 403, "{v}");

    let (status, v) = put(
        json!({"rates": [
            {"prefix": "44", "credits_per_segment": 0},
            {"prefix": "+1", "credits_per_segment": 2},
            {"prefix": "2557", "credits_per_segment": 1},
            {"prefix": "33", "credits_per_segment": 2},
            {"prefix": "33", "credits_per_segment": 2},
        ], "enabled_ranges": ["moon"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("validation_failed")),
        "{v}"
    );
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "rates[0].credits_per_segment",
            "rates[1].prefix",
            "rates[2].prefix",
            "rates[4].prefix",
            "enabled_ranges[0]"
        ]
    );
    let (status, v) = put(json!({"rates": [], "extra": 1}), admin.clone()).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid_body")));

    // A valid card: applied at once, recorded with who made it.
    let (status, v) = put(
        json!({"rates": [
            {"prefix": "44", "credits_per_segment": 3},
            {"prefix": "1500555", "credits_per_segment": 1, "allowed": false},
        ], "enabled_ranges": ["satellite"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let change = &v["change"];
    assert!(change["actor"].as_str().unwrap().starts_with("user:"));
    assert_eq!(
        change["after"],
        json!({"rates": {"44": {"credits_per_segment": 3, "allowed": true},
                         "1500555": {"credits_per_segment": 1, "allowed": false}},
               "special_ranges": {"satellite": true}})
    );
    let prefixes: Vec<&str> = v["card"]["rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(
        prefixes,
        ["1500555", "254", "255", "44"],
        "the home markets stay"
    );
    let (status, m) = h
        .send(json!({"to": "+447400123456", "body": "Hello"}), None)
        .await;
    assert_eq!((status, &m["credits_per_segment"]), (202, &json!(3)), "{m}");

    // The same card again changes nothing; the GET and the history show the change.
    let (status, again) = put(
        json!({"rates": [
            {"prefix": "44", "credits_per_segment": 3},
            {"prefix": "1500555", "credits_per_segment": 1, "allowed": false},
            {"prefix": "255", "credits_per_segment": 1},
        ], "enabled_ranges": ["satellite"]}),
        admin.clone(),
    )
    .await;
    assert_eq!((status, &again["change"]), (200, &Value::Null), "{again}");
    let (_, card) = h_get(&h, "/admin/rate-card", &admin).await;
    assert_eq!(card["last_change"]["id"], change["id"]);
    let (_, history) = h_get(&h, "/admin/rate-card/changes", &admin).await;
    assert_eq!(history["changes"].as_array().unwrap().len(), 2, "{history}");
}

async fn h_get(h: &Harness, path: &str, token: &str) -> (u16, Value) {
    let r = h
        .app
        .client
        .get(h.app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[sqlx::test]
async fn a_replay_keeps_the_price_it_was_accepted_at_whatever_the_card_says_now(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.price("44", 3).await;
    let request = json!({"to": "+447400123456", "body": "Hello"});
    let (status, first) = h.send(request.clone(), Some("key-44")).await;
    assert_eq!((status, &first["credits"]), (202, &json!(3)), "{first}");
    h.price("44", 5).await;
    let (status, again) = h.send(request.clone(), Some("key-44")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!((&again["id"], &again["credits"]), (&first["id"], &json!(3)));
    rates::apply(
        h.pool(),
        &rates::Edit {
            remove: vec!["44".into()],
            ..rates::Edit::default()
        },
        "test",
    )
    .await
    .unwrap();
    h.app.state.rates.invalidate();
    let (status, replay) = h.send(request.clone(), Some("key-44")).await;
    assert_eq!((status, &replay["id"]), (202, &first["id"]), "{replay}");
    let (status, fresh) = h.send(request, None).await;
    assert_eq!(
        (status, fresh["code"].as_str()),
        (422, Some("destination_unpriced"))
    );
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 7, "charged the 3 it was accepted at");
    h.audit_clean().await;
}
