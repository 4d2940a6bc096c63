//! The Daraja client against the fake Daraja: tokens, pushes, error classes, queries, and the
//! callback as a receiver sees it. No database.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use base64::Engine;
use copcca_sms::config::Secret;
use copcca_sms::fakes::daraja::{
    CONSUMER_KEY, FakeDaraja, PASSKEY, PushOutcome, PushScript, SHORTCODE, SyncError,
};
use copcca_sms::providers::mpesa::{
    CALLBACK_ACK, DarajaClient, DarajaError, StkCallback, StkPush, StkQuery, stk_password,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use url::Url;

const PHONE: &str = "254708374149";

/// Callbacks received: (the path's token, the body).
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A loopback callback receiver: records (path token, body) and answers with the ACK.
#[derive(Clone)]
struct Receiver {
    base: Url,
    got: Received,
}

impl Receiver {
    async fn start() -> Self {
        let got: Received = Arc::default();
        let app = Router::new()
            .route(
                "/webhooks/mpesa/{token}",
                post(
                    |State(got): State<Received>,
                     Path(token): Path<String>,
                     body: Bytes| async move {
                        got.lock().unwrap().push((token, body));
                        ([("content-type", "application/json")], CALLBACK_ACK)
                    },
                ),
            )
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, got }
    }

    fn url(&self, token: &str) -> Url {
        self.base.join(&format!("/webhooks/mpesa/{token}")).unwrap()
    }

    fn bodies(&self) -> Vec<(String, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

fn push(callback_url: &Url, amount: i64) -> StkPush<'_> {
    StkPush {
        amount,
        msisdn: PHONE,
        callback_url,
        account_reference: "SMS42",
        description: "SMS credits",
    }
}

fn unreachable_callback() -> Url {
    Url::parse("http://127.0.0.1:1/webhooks/mpesa/none").unwrap()
}

#[tokio::test]
async fn one_token_serves_several_calls() {
    let fake = FakeDaraja::start().await.unwrap();
    let client = fake.client();
    let cb = unreachable_callback();
    let first = client.stk_push(&push(&cb, 10)).await.unwrap();
    client.stk_query(&first.checkout_request_id).await.unwrap();
    client.clone().stk_push(&push(&cb, 20)).await.unwrap();
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(fake.refusals(), Vec::<String>::new());
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_call_goes_through() {
    let fake = FakeDaraja::start().await.unwrap();
    let client = fake.client();
    let cb = unreachable_callback();
    client.stk_push(&push(&cb, 10)).await.unwrap();
    fake.revoke_tokens();

    let second = client.stk_push(&push(&cb, 20)).await.unwrap();
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(fake.refusals(), vec!["404.001.03 Invalid Access Token"]);
    // The refused attempt was not a push: exactly two prompts went out.
    let pushes = fake.pushes();
    assert_eq!(pushes.len(), 2);
    assert_eq!(
        pushes[1].checkout_request_id.as_deref(),
        Some(second.checkout_request_id.as_str())
    );
    // The new token is cached in turn.
    client.stk_push(&push(&cb, 30)).await.unwrap();
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn an_accepted_push_carries_what_daraja_wants() {
    let fake = FakeDaraja::start().await.unwrap();
    let cb = Url::parse("https://127.0.0.1:1/webhooks/mpesa/abc").unwrap();
    let accepted = fake
        .client()
        .stk_push(&StkPush {
            amount: 1500,
            msisdn: PHONE,
            callback_url: &cb,
            account_reference: "COPCCA-SMS-PACK-42",
            description: "Malipo ya SMS za COPCCA",
        })
        .await
        .unwrap();
    assert!(accepted.checkout_request_id.starts_with("ws_CO_"));
    assert!(
        accepted.checkout_request_id[6..]
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert_eq!(
        accepted.customer_message,
        "Success. Request accepted for processing"
    );
    let pushes = fake.pushes();
    assert_eq!(pushes.len(), 1);
    let p = &pushes[0];
    assert_eq!(p.amount, 1500);
    assert_eq!(p.phone, 254708374149);
    assert_eq!(p.callback_url, cb.as_str());
    assert_eq!(p.account_reference, "COPCCA-SMS-P");
    assert_eq!(p.transaction_desc, "Malipo ya SMS");
    assert_eq!(
        p.checkout_request_id.as_deref(),
        Some(accepted.checkout_request_id.as_str())
    );
    assert_eq!(
        p.merchant_request_id.as_deref(),
        Some(accepted.merchant_request_id.as_str())
    );
}

#[tokio::test]
async fn a_bad_request_or_a_locked_subscriber_fails_the_push_for_good() {
    let fake = FakeDaraja::start().await.unwrap();
    fake.script([
        PushScript::sync_error(SyncError::INVALID_PHONE),
        PushScript::sync_error(SyncError::SUBSCRIBER_LOCKED),
    ]);
    let client = fake.client();
    let cb = unreachable_callback();

    let e = client.stk_push(&push(&cb, 10)).await.unwrap_err();
    assert!(
        e.is_permanent() && !e.is_transient() && !e.is_ambiguous(),
        "{e}"
    );
    let fault = e.fault().unwrap();
    assert_eq!(
        (fault.http_status, fault.error_code.as_str()),
        (400, "400.002.02")
    );
    assert_eq!(fault.error_message, "Bad Request - Invalid PhoneNumber");
    assert!(!fault.request_id.is_empty());

    let e = client.stk_push(&push(&cb, 10)).await.unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert_eq!(e.fault().unwrap().error_code, "500.001.1001");
    assert!(
        fake.pushes()
            .iter()
            .all(|p| p.checkout_request_id.is_none())
    );
}

#[tokio::test]
async fn spike_arrest_and_quota_are_retried() {
    let fake = FakeDaraja::start().await.unwrap();
    fake.script([
        PushScript::sync_error(SyncError::SPIKE_ARREST),
        PushScript::sync_error(SyncError::QUOTA),
    ]);
    let client = fake.client();
    let cb = unreachable_callback();
    for code in ["500.003.02", "500.003.03"] {
        let e = client.stk_push(&push(&cb, 10)).await.unwrap_err();
        assert!(e.is_transient() && !e.is_permanent(), "{e}");
        assert_eq!(e.fault().unwrap().error_code, code);
    }
    // Then Daraja takes it.
    client.stk_push(&push(&cb, 10)).await.unwrap();
}

#[tokio::test]
async fn a_push_without_an_answer_is_ambiguous() {
    let fake = FakeDaraja::start().await.unwrap();
    fake.script([PushScript::new(PushOutcome::Paid)
        .hang(Duration::from_secs(3))
        .no_callback()]);
    let client = fake.client().with_timeout(Duration::from_millis(500));
    let e = client
        .stk_push(&push(&unreachable_callback(), 10))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DarajaError::Ambiguous(_)) && e.is_ambiguous(),
        "{e:?}"
    );
    assert!(!e.is_transient() && !e.is_permanent());
    // Daraja did take it: the prompt is on the phone.
    assert!(fake.pushes()[0].checkout_request_id.is_some());
}

#[tokio::test]
async fn token_failures_are_transient() {
    let fake = FakeDaraja::start().await.unwrap();
    let cb = unreachable_callback();
    let wrong = DarajaClient::new(
        fake.base.clone(),
        Secret::new(CONSUMER_KEY),
        Secret::new("not-the-secret"),
        SHORTCODE.into(),
        Secret::new(PASSKEY),
    );
    let e = wrong.stk_push(&push(&cb, 10)).await.unwrap_err();
    assert!(
        matches!(e, DarajaError::Token(_)) && e.is_transient(),
        "{e}"
    );
    assert!(e.to_string().contains("400.008.01"), "{e}");
    assert!(
        !e.to_string().contains("not-the-secret") && !format!("{e:?}").contains("not-the-secret")
    );
    assert!(fake.pushes().is_empty());

    // Nobody listens on a just-closed port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gone = DarajaClient::new(
        Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        Secret::new(CONSUMER_KEY),
        Secret::new("s"),
        SHORTCODE.into(),
        Secret::new(PASSKEY),
    );
    let e = gone.stk_query("ws_CO_1").await.unwrap_err();
    assert!(e.is_transient(), "{e}");
}

#[tokio::test]
async fn the_query_stays_pending_then_gives_the_result_code() {
    let fake = FakeDaraja::start().await.unwrap();
    fake.script([PushScript::new(PushOutcome::Cancelled)
        .pending_queries(2)
        .delay(Duration::from_millis(300))
        .no_callback()]);
    let client = fake.client();
    let accepted = client
        .stk_push(&push(&unreachable_callback(), 10))
        .await
        .unwrap();
    let id = accepted.checkout_request_id.as_str();
    assert_eq!(client.stk_query(id).await.unwrap(), StkQuery::Pending);
    assert_eq!(client.stk_query(id).await.unwrap(), StkQuery::Pending);
    fake.wait_settled(id).await;
    assert_eq!(
        client.stk_query(id).await.unwrap(),
        StkQuery::Completed {
            result_code: 1032,
            result_desc: "Request cancelled by user".into()
        }
    );
    // Still final when asked again.
    assert!(matches!(
        client.stk_query(id).await.unwrap(),
        StkQuery::Completed {
            result_code: 1032,
            ..
        }
    ));
    assert_eq!(fake.queries().len(), 4);
    assert!(fake.deliveries().is_empty());
}

#[tokio::test]
async fn an_unknown_checkout_request_is_refused() {
    let fake = FakeDaraja::start().await.unwrap();
    let e = fake.client().stk_query("ws_CO_000").await.unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert_eq!(e.fault().unwrap().error_code, "400.002.02");
}

#[tokio::test]
async fn a_paid_push_calls_back_and_the_receiver_parses_it() {
    let fake = FakeDaraja::start().await.unwrap();
    let receiver = Receiver::start().await;
    let client = fake.client();
    let cb = receiver.url("tok-1");
    let accepted = client.stk_push(&push(&cb, 150)).await.unwrap();
    fake.wait_settled(&accepted.checkout_request_id).await;

    let got = receiver.bodies();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "tok-1");
    let text = std::str::from_utf8(&got[0].1).unwrap();
    assert!(text.contains(r#""Value":150.00}"#), "{text}");
    assert!(text.contains(r#"{"Name":"Balance"}"#), "{text}");
    let callback = StkCallback::parse(&got[0].1).unwrap();
    assert!(callback.is_success());
    assert_eq!(callback.checkout_request_id, accepted.checkout_request_id);
    assert_eq!(callback.merchant_request_id, accepted.merchant_request_id);
    assert_eq!(callback.amount, Some(Decimal::from(150)));
    assert_eq!(callback.phone.as_deref(), Some(PHONE));
    let receipt = callback.receipt.unwrap();
    assert_eq!(receipt.len(), 10);
    assert!(
        receipt
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    let date = callback.transaction_date.unwrap();
    assert!(date.len() == 14 && date.starts_with("20"), "{date}");

    let delivered = fake.deliveries();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].status, Some(200));
    assert_eq!(
        client
            .stk_query(&accepted.checkout_request_id)
            .await
            .unwrap(),
        StkQuery::Completed {
            result_code: 0,
            result_desc: "The service request is processed successfully.".into()
        }
    );
}

#[tokio::test]
async fn failures_call_back_without_metadata() {
    let fake = FakeDaraja::start().await.unwrap();
    let receiver = Receiver::start().await;
    fake.script([
        PushOutcome::WrongPin.into(),
        PushOutcome::Timeout.into(),
        PushOutcome::Fail(1).into(),
    ]);
    let client = fake.client();
    let cb = receiver.url("t");
    for code in [2001, 1037, 1] {
        let accepted = client.stk_push(&push(&cb, 10)).await.unwrap();
        fake.wait_settled(&accepted.checkout_request_id).await;
        let (_, body) = receiver.bodies().pop().unwrap();
        assert!(
            !std::str::from_utf8(&body)
                .unwrap()
                .contains("CallbackMetadata")
        );
        let callback = StkCallback::parse(&body).unwrap();
        assert_eq!(callback.result_code, code);
        assert_eq!((callback.amount, callback.receipt), (None, None));
    }
}

#[tokio::test]
async fn receipts_are_unique_and_a_callback_can_lie_about_the_amount() {
    let fake = FakeDaraja::start().await.unwrap();
    let receiver = Receiver::start().await;
    fake.script([
        PushScript::new(PushOutcome::Paid),
        PushScript::new(PushOutcome::Paid).callback_amount(Decimal::ONE),
    ]);
    let client = fake.client();
    let cb = receiver.url("t");
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let accepted = client.stk_push(&push(&cb, 1000)).await.unwrap();
        fake.wait_settled(&accepted.checkout_request_id).await;
        let callback = StkCallback::parse(&receiver.bodies().pop().unwrap().1).unwrap();
        receipts.push((callback.receipt.unwrap(), callback.amount.unwrap()));
    }
    assert_ne!(receipts[0].0, receipts[1].0);
    assert_eq!(receipts[0].1, Decimal::from(1000));
    assert_eq!(receipts[1].1, Decimal::ONE);
    assert_eq!(fake.pushes()[1].amount, 1000);
}

#[tokio::test]
async fn a_lost_callback_can_be_delivered_late_and_replayed() {
    let fake = FakeDaraja::start().await.unwrap();
    let receiver = Receiver::start().await;
    fake.script([PushScript::new(PushOutcome::Paid).no_callback()]);
    let client = fake.client();
    let accepted = client
        .stk_push(&push(&receiver.url("t"), 10))
        .await
        .unwrap();
    let id = accepted.checkout_request_id.as_str();
    fake.wait_settled(id).await;
    assert!(receiver.bodies().is_empty());
    // The query knows anyway.
    assert!(matches!(
        client.stk_query(id).await.unwrap(),
        StkQuery::Completed { result_code: 0, .. }
    ));

    for _ in 0..10 {
        assert_eq!(fake.replay_callback(id).await.unwrap(), 200);
    }
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 10);
    assert!(bodies.iter().all(|(_, b)| *b == bodies[0].1));
    assert_eq!(fake.callback_body(id).unwrap().as_bytes(), &bodies[0].1[..]);
    assert_eq!(
        StkCallback::parse(&bodies[0].1)
            .unwrap()
            .checkout_request_id,
        id
    );

    // A forged delivery to another path, with any body.
    let forged = receiver.url("wrong-token");
    let status = fake
        .post_callback(forged.as_str(), &fake.callback_body(id).unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(receiver.bodies().last().unwrap().0, "wrong-token");
}

/// The fake checks what real Daraja checks, so a client bug cannot pass unnoticed.
#[tokio::test]
async fn the_fake_refuses_malformed_pushes() {
    let fake = FakeDaraja::start().await.unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .get(
            fake.base
                .join("/oauth/v1/generate?grant_type=client_credentials")
                .unwrap(),
        )
        .basic_auth(
            CONSUMER_KEY,
            Some(copcca_sms::fakes::daraja::CONSUMER_SECRET),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], "3599");
    let token = token["access_token"].as_str().unwrap().to_string();
    let timestamp = "20160216165627";
    let good = json!({
        "BusinessShortCode": SHORTCODE, "Password": stk_password(SHORTCODE, PASSKEY, timestamp),
        "Timestamp": timestamp, "TransactionType": "CustomerPayBillOnline", "Amount": 1,
        "PartyA": 254708374149u64, "PartyB": 174379, "PhoneNumber": 254708374149u64,
        "CallBackURL": "http://127.0.0.1:1/cb", "AccountReference": "SMS42", "TransactionDesc": "SMS credits",
    });
    let url = fake.base.join("/mpesa/stkpush/v1/processrequest").unwrap();
    let send = |body: Value, bearer: String| {
        let request = http.post(url.clone()).bearer_auth(bearer).json(&body);
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, ok) = send(good.clone(), token.clone()).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["ResponseCode"], "0");

    let (status, e) = send(good.clone(), "stale".into()).await;
    assert_eq!((status, e["errorCode"].as_str()), (404, Some("404.001.03")));

    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let basic = base64::engine::general_purpose::STANDARD.encode("x");
    for (field, value) in [
        ("Password", json!(basic)),
        ("Timestamp", json!("2016021616562")),
        ("PhoneNumber", json!("254708374149")),
        ("PhoneNumber", json!(712345678)),
        ("Amount", json!("1")),
        ("Amount", json!(0)),
        ("AccountReference", json!("ABCDEFGHIJKLM")),
        ("TransactionDesc", json!("ABCDEFGHIJKLMN")),
        ("CallBackURL", json!(null)),
    ] {
        let (status, e) = send(with(field, value.clone()), token.clone()).await;
        assert_eq!(status, 400, "{field} = {value}");
        assert_eq!(e["errorCode"], "400.002.02");
        assert_eq!(
            e["errorMessage"],
            format!("Bad Request - Invalid {field}"),
            "{value}"
        );
    }
    assert_eq!(fake.pushes().len(), 1);
}
