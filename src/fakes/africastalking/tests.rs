use super::*;
use crate::domain::{E164, MessageId};
use crate::providers::africastalking::{AtReport, classify, parse_report};
use crate::providers::bulk::{
    BulkError, DeliveryState, FailureClass, Price, Recipient, RecipientAnswer,
};

fn batch(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| Recipient {
            message: MessageId::new(),
            to: E164::try_from(format!("+2547121{i:05}")).unwrap(),
        })
        .collect()
}

fn kes(s: &str) -> Option<Price> {
    Some(Price {
        amount: s.parse().unwrap(),
        currency: "KES".into(),
    })
}

#[tokio::test]
async fn africastalking_sends_100_in_one_request_with_mixed_outcomes() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let recipients = batch(100);
    let scripted = [
        (3, 403),
        (10, 406),
        (20, 405),
        (30, 402),
        (40, 409),
        (50, 501),
        (60, 404),
    ];
    for (i, code) in scripted {
        fake.fail_number(recipients[i].to.as_str(), code);
    }
    let answers = fake.client().send(&recipients, "Habari").await.unwrap();

    assert!(fake.refusals().is_empty(), "{:?}", fake.refusals());
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let get = |k: &str| {
        requests[0]
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("username").as_deref(), Some(USERNAME));
    assert_eq!(get("from").as_deref(), Some(SENDER_ID));
    assert_eq!(get("bulkSMSMode").as_deref(), Some("1"));
    assert_eq!(get("enqueue").as_deref(), Some("1"));
    let to = get("to").unwrap();
    assert_eq!(to.split(',').count(), 100);
    assert!(to.starts_with("+254712100000,+254712100001,"));

    let expected_class = |i: usize| match scripted.iter().find(|(j, _)| *j == i) {
        Some((_, 403 | 406 | 409 | 404)) => Some(FailureClass::Permanent),
        Some((_, 405 | 402)) => Some(FailureClass::Configuration),
        Some((_, 501)) => Some(FailureClass::Transient),
        Some(_) => unreachable!(),
        None => None,
    };
    let send = &fake.sends()[0];
    for (i, ((message, answer), r)) in answers.iter().zip(&recipients).enumerate() {
        assert_eq!(*message, r.message);
        match (expected_class(i), answer) {
            (
                None,
                RecipientAnswer::Accepted {
                    provider_id,
                    segments,
                    cost,
                },
            ) => {
                assert_eq!(Some(provider_id), send.recipients[i].message_id.as_ref());
                assert!(provider_id.starts_with("ATXid_"));
                assert_eq!(*segments, Some(1));
                assert_eq!(*cost, kes("0.8"));
            }
            (
                Some(class),
                RecipientAnswer::Failed {
                    class: got, code, ..
                },
            ) => {
                assert_eq!(class, *got, "recipient {i}");
                assert_eq!(*code, send.recipients[i].status_code.to_string());
            }
            (want, got) => panic!("recipient {i}: wanted {want:?}, got {got:?}"),
        }
    }
    let reason = |i: usize| match &answers[i].1 {
        RecipientAnswer::Failed { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reason(3), "InvalidPhoneNumber");
    assert_eq!(reason(10), "UserInBlacklist");
    assert_eq!(reason(20), "InsufficientBalance");
}

#[tokio::test]
async fn africastalking_refuses_a_number_twice_or_more_than_100() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let mut twice = batch(3);
    twice[2].to = twice[0].to.clone();
    let e = fake.client().send(&twice, "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Invalid(_)), "{e:?}");
    let e = fake.client().send(&batch(101), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Invalid(_)), "{e:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn africastalking_cost_follows_the_price_per_segment() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    fake.set_price("TZS", Decimal::new(22, 0));
    let recipients = vec![Recipient {
        message: MessageId::new(),
        to: E164::try_from("+255754123456".to_string()).unwrap(),
    }];
    let answers = fake
        .client()
        .send(&recipients, &"a".repeat(161))
        .await
        .unwrap();
    let RecipientAnswer::Accepted { segments, cost, .. } = &answers[0].1 else {
        panic!("{answers:?}");
    };
    assert_eq!(*segments, Some(2));
    assert_eq!(
        *cost,
        Some(Price {
            amount: Decimal::new(44, 0),
            currency: "TZS".into()
        })
    );
    let balance = fake.client().balance().await.unwrap();
    assert_eq!(balance.amount, Decimal::new(956, 0));
}

#[tokio::test]
async fn africastalking_an_unregistered_sender_is_configuration_for_everyone() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let client = AfricasTalkingClient::new(
        fake.base.clone(),
        USERNAME,
        Secret::new(API_KEY),
        Some("OTHER".into()),
    );
    let answers = client.send(&batch(2), "x").await.unwrap();
    for (_, a) in &answers {
        assert!(matches!(
            a,
            RecipientAnswer::Failed { class: FailureClass::Configuration, code, .. } if code == "402"
        ));
    }
}

#[tokio::test]
async fn africastalking_wrong_key_or_username_is_a_credentials_error() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let wrong_key = AfricasTalkingClient::new(fake.base.clone(), USERNAME, Secret::new("x"), None);
    let e = wrong_key.send(&batch(1), "x").await.unwrap_err();
    assert_eq!(
        e,
        BulkError::Credentials {
            status: 401,
            reason: "The supplied authentication is invalid".into()
        }
    );
    let wrong_user =
        AfricasTalkingClient::new(fake.base.clone(), "sandbox", Secret::new(API_KEY), None);
    assert!(matches!(
        wrong_user.check_credentials().await,
        Err(BulkError::Credentials { status: 401, .. })
    ));
    assert!(fake.sends().is_empty());
    fake.client().check_credentials().await.unwrap();
    assert_eq!(fake.client().balance().await.unwrap(), kes("1000").unwrap());
}

#[tokio::test]
async fn africastalking_outages_are_unavailable_or_not_sent() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let client = fake.client();
    fake.script([Behaviour::ServerError(500), Behaviour::RateLimit(3)]);
    assert_eq!(
        client.send(&batch(1), "x").await.unwrap_err(),
        BulkError::Unavailable {
            status: 500,
            retry_after: None
        }
    );
    assert_eq!(
        client.send(&batch(1), "x").await.unwrap_err(),
        BulkError::Unavailable {
            status: 429,
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert!(fake.sends().is_empty());

    fake.limit(None, Some(1));
    fake.script([Behaviour::Hang(Duration::from_millis(300))]);
    let slow = client.clone();
    let first = tokio::spawn(async move { slow.send(&batch(1), "x").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = client.send(&batch(1), "x").await.unwrap_err();
    assert!(
        matches!(e, BulkError::Unavailable { status: 429, .. }),
        "{e:?}"
    );
    first.await.unwrap().unwrap();
    assert_eq!(fake.load(), (1, 1));

    fake.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = fake.client().send(&batch(1), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::NotSent(_)), "{e:?}");
}

#[tokio::test]
async fn africastalking_a_hang_after_sending_is_ambiguous_and_the_report_still_comes() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let (url, got) = crate::fakes::traffic::receiver().await;
    fake.report_to(Some(&url), Duration::from_millis(10));
    fake.script([Behaviour::Hang(Duration::from_secs(3))]);
    let client = fake.client().with_timeout(Duration::from_millis(300));
    let e = client.send(&batch(2), "x").await.unwrap_err();
    assert!(e.may_have_sent(), "{e:?}");
    assert_eq!(fake.sends().len(), 1);
    fake.wait_deliveries(2).await;
    let reports: Vec<_> = got
        .lock()
        .unwrap()
        .iter()
        .map(|b| parse_report(b.as_bytes()).unwrap())
        .collect();
    let ids: Vec<_> = fake.sends()[0]
        .recipients
        .iter()
        .map(|r| r.message_id.clone().unwrap())
        .collect();
    assert_eq!(
        reports
            .iter()
            .map(|r| r.provider_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert!(
        reports
            .iter()
            .all(|r| r.state == DeliveryState::Delivered && r.is_final)
    );
}

#[tokio::test]
async fn africastalking_posts_form_reports_with_the_scripted_final_status() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    let (url, got) = crate::fakes::traffic::receiver().await;
    fake.report_to(Some(&url), Duration::from_millis(10));
    let recipients = batch(2);
    fake.final_report(
        recipients[1].to.as_str(),
        "Failed",
        Some("UserDoesNotExist"),
    );
    let answers = fake.client().send(&recipients, "x").await.unwrap();
    fake.wait_deliveries(2).await;
    let bodies = got.lock().unwrap().clone();
    let raw = AtReport::parse(bodies[1].as_bytes()).unwrap();
    assert_eq!(raw.network_code.as_deref(), Some("63902"));
    assert_eq!(raw.retry_count.as_deref(), Some("0"));
    let report = raw.neutral();
    let RecipientAnswer::Accepted { provider_id, .. } = &answers[1].1 else {
        panic!()
    };
    assert_eq!(&report.provider_id, provider_id);
    assert_eq!(
        report.state,
        DeliveryState::Failed {
            reason: "UserDoesNotExist".into()
        }
    );
    assert!(report.is_final);
}

#[test]
fn africastalking_reports_parse_and_only_three_statuses_are_final() {
    let body = b"id=ATXid_fabd5d394a3ca5c081d451d2bea93665&status=Rejected&phoneNumber=%2B255754123456&networkCode=64004&failureReason=UserInBlackList&retryCount=0";
    let r = parse_report(body).unwrap();
    assert_eq!(r.provider_id, "ATXid_fabd5d394a3ca5c081d451d2bea93665");
    assert_eq!(r.to.as_deref(), Some("+255754123456"));
    assert_eq!(
        (r.state, r.is_final),
        (
            DeliveryState::Failed {
                reason: "UserInBlackList".into()
            },
            true
        )
    );
    for (status, is_final) in [
        ("Success", true),
        ("Failed", true),
        ("Sent", false),
        ("Submitted", false),
        ("Buffered", false),
        ("AbsentSubscriber", false),
        ("Expired", false),
    ] {
        let body = format!("id=ATXid_1&status={status}&phoneNumber=%2B254711000111&retryCount=2");
        assert_eq!(
            parse_report(body.as_bytes()).unwrap().is_final,
            is_final,
            "{status}"
        );
    }
    assert!(parse_report(b"status=Success").is_err());
}

#[test]
fn africastalking_every_status_code_is_classified() {
    for code in [100, 101, 102] {
        assert_eq!(classify(code), None);
    }
    for code in [401, 402, 405, 407] {
        assert_eq!(classify(code), Some(FailureClass::Configuration), "{code}");
    }
    for code in [403, 404, 406, 409] {
        assert_eq!(classify(code), Some(FailureClass::Permanent), "{code}");
    }
    for code in [500, 501, 502] {
        assert_eq!(classify(code), Some(FailureClass::Transient), "{code}");
    }
    assert_eq!(classify(999), Some(FailureClass::Permanent));
}

#[test]
fn africastalking_the_documented_answer_parses_with_its_cost() {
    let body = r#"{"SMSMessageData":{"Message":"Sent to 1/1 Total Cost: KES 0.8000","Recipients":[{"statusCode":101,"number":"+254711XXXYYY","status":"Success","cost":"KES 0.8000","messageId":"ATXid_1","messageParts":1}]}}"#;
    let a: crate::providers::africastalking::SmsAnswer = serde_json::from_str(body).unwrap();
    let r = &a.data.recipients[0];
    assert_eq!(r.cost.as_deref().and_then(Price::parse), kes("0.8000"));
    assert_eq!((r.status_code, r.message_parts), (101, Some(1)));
}

#[tokio::test]
async fn africastalking_an_answer_cut_short_after_sending_is_ambiguous() {
    let fake = FakeAfricasTalking::start().await.unwrap();
    fake.script([Behaviour::DropAnswer]);
    let e = fake.client().send(&batch(3), "x").await.unwrap_err();
    assert!(matches!(e, BulkError::Ambiguous(_)), "{e:?}");
    assert_eq!(fake.sends()[0].recipients.len(), 3);
}
