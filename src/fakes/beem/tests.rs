use super::*;
use crate::domain::{E164, MessageId};
use crate::providers::beem::{MAX_RECIPIENTS, parse_report};
use crate::providers::bulk::{BulkError, DeliveryState, FailureClass, Recipient, RecipientAnswer};

fn batch(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| Recipient {
            message: MessageId::new(),
            to: E164::try_from(format!("+2557541{i:05}")).unwrap(),
        })
        .collect()
}

fn accepted_id(answer: &RecipientAnswer) -> &str {
    match answer {
        RecipientAnswer::Accepted { provider_id, .. } => provider_id,
        other => panic!("not accepted: {other:?}"),
    }
}

#[tokio::test]
async fn beem_sends_100_recipients_in_one_request_in_beems_format() {
    let fake = FakeBeem::start().await.unwrap();
    let recipients = batch(MAX_RECIPIENTS);
    let answers = fake.client().send(&recipients, "Habari").await.unwrap();

    assert_eq!(fake.requests().len(), 1);
    assert!(fake.refusals().is_empty(), "{:?}", fake.refusals());
    let body: Value = serde_json::from_str(&fake.requests()[0]).unwrap();
    assert_eq!(body["source_addr"], SOURCE_ADDR);
    assert_eq!(body["encoding"], 0);
    assert_eq!(body["schedule_time"], "");
    assert_eq!(body["message"], "Habari");
    assert_eq!(body["recipients"].as_array().unwrap().len(), 100);
    assert_eq!(body["recipients"][7]["dest_addr"], "255754100007");
    assert_eq!(
        body["recipients"][7]["recipient_id"],
        recipients[7].message.to_string()
    );

    let send = &fake.sends()[0];
    assert_eq!(answers.len(), 100);
    for ((message, answer), r) in answers.iter().zip(&recipients) {
        assert_eq!(*message, r.message);
        assert_eq!(
            accepted_id(answer),
            format!("{}:{}", send.request_id, r.message)
        );
    }
}

#[tokio::test]
async fn beem_refuses_more_than_100_or_a_number_twice_before_sending() {
    let fake = FakeBeem::start().await.unwrap();
    let client = fake.client();
    let e = client.send(&batch(101), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Invalid(_)), "{e:?}");
    let mut twice = batch(2);
    twice[1].to = twice[0].to.clone();
    let e = client.send(&twice, "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Invalid(_)), "{e:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn beem_counts_without_names_leave_every_recipient_unknown_until_its_report() {
    let fake = FakeBeem::start().await.unwrap();
    let recipients = batch(100);
    for i in [3, 50, 99] {
        fake.invalid_number(recipients[i].to.digits());
    }
    let answers = fake.client().send(&recipients, "Habari").await.unwrap();
    let request_id = fake.sends()[0].request_id;
    for ((_, answer), r) in answers.iter().zip(&recipients) {
        assert_eq!(
            *answer,
            RecipientAnswer::UnknownUntilReport {
                provider_id: Some(format!("{request_id}:{}", r.message))
            }
        );
    }
    // All invalid: that is not a guess.
    let few = batch(2);
    for r in &few {
        fake.invalid_number(r.to.digits());
    }
    let answers = fake.client().send(&few, "Habari").await.unwrap();
    assert!(answers.iter().all(|(_, a)| matches!(
        a,
        RecipientAnswer::Failed {
            class: FailureClass::Permanent,
            ..
        }
    )));
}

#[tokio::test]
async fn beem_wrong_credentials_are_credentials_errors() {
    let fake = FakeBeem::start().await.unwrap();
    let wrong = BeemClient::new(
        fake.base.clone(),
        fake.base.clone(),
        API_KEY,
        Secret::new("not-the-secret"),
        SOURCE_ADDR,
    );
    let e = wrong.send(&batch(1), "x").await.unwrap_err();
    assert!(
        matches!(e, BulkError::Credentials { status: 401, .. }),
        "{e:?}"
    );
    assert!(matches!(
        wrong.check_credentials().await,
        Err(BulkError::Credentials { .. })
    ));
    assert!(fake.sends().is_empty());
    fake.client().check_credentials().await.unwrap();
}

#[tokio::test]
async fn beem_an_unregistered_sender_is_refused_terminally() {
    let fake = FakeBeem::start().await.unwrap();
    let client = BeemClient::new(
        fake.base.clone(),
        fake.base.clone(),
        API_KEY,
        Secret::new(SECRET_KEY),
        "NOTOURS",
    );
    let e = client.send(&batch(1), "x").await.unwrap_err();
    assert_eq!(
        e,
        BulkError::Refused {
            code: "111".into(),
            reason: "Invalid Sender Id".into()
        }
    );
}

#[tokio::test]
async fn beem_outages_are_unavailable_or_not_sent() {
    let fake = FakeBeem::start().await.unwrap();
    let client = fake.client();
    fake.script([Behaviour::ServerError(503), Behaviour::RateLimit(7)]);
    let e = client.send(&batch(2), "x").await.unwrap_err();
    assert_eq!(
        e,
        BulkError::Unavailable {
            status: 503,
            retry_after: None
        }
    );
    let e = client.send(&batch(2), "x").await.unwrap_err();
    assert_eq!(
        e,
        BulkError::Unavailable {
            status: 429,
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(fake.sends().is_empty());

    // A fresh one-second window, then two sends in it: the second is past the cap.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fake.limit(Some(1), None);
    client.send(&batch(1), "x").await.unwrap();
    let e = client.send(&batch(1), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Unavailable { status: 429, .. }));
    assert_eq!(fake.load().1, 1);

    fake.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = fake.client();
    let e = fresh.send(&batch(1), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::NotSent(_)), "{e:?}");
}

#[tokio::test]
async fn beem_a_hang_after_sending_is_ambiguous_and_the_pull_settles_it() {
    let fake = FakeBeem::start().await.unwrap();
    fake.report_to(Some("http://127.0.0.1:9/dlr"), Duration::from_millis(400));
    fake.script([Behaviour::Hang(Duration::from_secs(3))]);
    let client = fake.client().with_timeout(Duration::from_millis(300));
    let recipients = batch(2);
    let e = client.send(&recipients, "x").await.unwrap_err();
    assert!(e.may_have_sent(), "{e:?}");
    let send = fake.sends()[0].clone();
    assert_eq!(send.recipients.len(), 2);

    let request_id = send.request_id.to_string();
    let early = client
        .delivery_reports(&recipients[0].to, &request_id)
        .await
        .unwrap();
    assert_eq!(early.len(), 1);
    assert_eq!(
        (&early[0].state, early[0].is_final),
        (&DeliveryState::Pending, false)
    );

    fake.wait_deliveries(2).await;
    let late = client
        .delivery_reports(&recipients[0].to, &request_id)
        .await
        .unwrap();
    assert_eq!(late[0].state, DeliveryState::Delivered);
    assert!(late[0].is_final);
    assert_eq!(
        late[0].provider_id,
        format!("{request_id}:{}", recipients[0].message)
    );
    assert_eq!(late[0].to.as_deref(), Some(recipients[0].to.as_str()));
    assert_eq!(fake.pulls().len(), 2);
}

#[tokio::test]
async fn beem_posts_reports_as_json_that_match_the_accepted_ids() {
    let fake = FakeBeem::start().await.unwrap();
    let (url, got) = crate::fakes::traffic::receiver().await;
    fake.report_to(Some(&url), Duration::from_millis(10));
    let recipients = batch(3);
    fake.final_status(recipients[1].to.digits(), "UNDELIVERED");
    let answers = fake.client().send(&recipients, "x").await.unwrap();
    let deliveries = fake.wait_deliveries(3).await;
    assert!(deliveries.iter().all(|d| d.status == Some(200)));

    let bodies = got.lock().unwrap().clone();
    let reports: Vec<_> = bodies
        .iter()
        .map(|b| parse_report(b.as_bytes()).unwrap())
        .collect();
    for ((_, answer), report) in answers.iter().zip(&reports) {
        assert_eq!(accepted_id(answer), report.provider_id);
        assert!(report.is_final);
    }
    assert_eq!(reports[0].state, DeliveryState::Delivered);
    assert_eq!(
        reports[1].state,
        DeliveryState::Failed {
            reason: "UNDELIVERED".into()
        }
    );
}

#[test]
fn beem_report_bodies_parse_in_both_spellings() {
    let body = br#"{"request_id":27104651,"recipient_id":"0190f3c2-1","dest_addr":"255754123456","status":"DELIVERED"}"#;
    let r = parse_report(body).unwrap();
    assert_eq!(r.provider_id, "27104651:0190f3c2-1");
    assert_eq!(r.to.as_deref(), Some("+255754123456"));
    assert_eq!((r.state, r.is_final), (DeliveryState::Delivered, true));
    // Beem's receiver samples read `Status`.
    let body = br#"{"request_id":"27104651","recipient_id":"1","dest_addr":"255754123456","Status":"PENDING"}"#;
    let r = parse_report(body).unwrap();
    assert_eq!((r.state, r.is_final), (DeliveryState::Pending, false));
    assert!(parse_report(br#"{"request_id":1,"dest_addr":"2557"}"#).is_err());
    assert!(parse_report(b"request_id=1").is_err());
}

#[tokio::test]
async fn beem_balance_drops_by_the_price_per_segment() {
    let fake = FakeBeem::start().await.unwrap();
    fake.set_balance(Decimal::new(1000, 0));
    fake.set_price(Decimal::new(25, 1));
    let client = fake.client();
    // 161 GSM characters: 2 segments, to 4 recipients.
    client.send(&batch(4), &"a".repeat(161)).await.unwrap();
    assert_eq!(client.balance().await.unwrap(), Decimal::new(980, 0));
}

#[tokio::test]
async fn beem_an_answer_cut_short_after_sending_is_ambiguous() {
    let fake = FakeBeem::start().await.unwrap();
    fake.script([Behaviour::DropAnswer]);
    let e = fake.client().send(&batch(3), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Ambiguous(_)), "{e:?}");
    assert_eq!(fake.sends()[0].recipients.len(), 3);
}

#[tokio::test]
async fn beem_posts_a_refused_report_again_for_the_set_time() {
    let fake = FakeBeem::start().await.unwrap();
    fake.report_to(Some("http://127.0.0.1:9/dlr"), Duration::from_millis(10));
    fake.retry_reports_for(Duration::from_millis(1_200));
    fake.client().send(&batch(1), "x").await.unwrap();
    let tries = fake.wait_deliveries(3).await;
    assert!(
        tries
            .iter()
            .all(|d| d.status.is_none() && d.body == tries[0].body)
    );
    // Posted at 0, 0.5, 1 and 1.5 s, then given up.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(fake.deliveries().len(), 4);
}
