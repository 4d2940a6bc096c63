//! The Vodacom OpenAPI client against the fake Vodacom: sessions (opened once, shared through
//! Redis, refreshed once when refused, not used before they are live), the C2B payment's every
//! scripted outcome, the status query, and reversals. No database.

use std::time::Duration;

use copcca_sms::fakes::vodacom::{C2bOutcome, C2bScript, FakeVodacom};
use copcca_sms::providers::vodacom::{
    C2bPayment, InsClass, TxnStatus, VodacomClient, VodacomError,
};
use rust_decimal::Decimal;

use crate::queue::redis_url;

fn prefix() -> String {
    format!("vodacom-{}", uuid::Uuid::new_v4().simple())
}

async fn fake_and_client() -> (FakeVodacom, VodacomClient) {
    let fake = FakeVodacom::start().await.unwrap();
    let client = fake.client(&redis_url(), &prefix());
    (fake, client)
}

fn payment(third_party: &str) -> C2bPayment<'_> {
    C2bPayment {
        amount: Decimal::new(20_000, 0),
        msisdn: "255754123456",
        third_party_conversation_id: third_party,
        reference: "SMSa1b2c3d4",
        description: "SMS credits",
    }
}

fn conversation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[tokio::test]
async fn a_payment_with_the_pin_entered_is_confirmed_by_the_query() {
    let (fake, client) = fake_and_client().await;
    let id = conversation();
    let accepted = client.c2b(&payment(&id)).await.unwrap();
    assert_eq!(accepted.third_party_conversation_id, id);
    let sent = &fake.payments()[0];
    assert_eq!(
        (
            sent.amount.as_str(),
            sent.msisdn.as_str(),
            sent.reference.as_str()
        ),
        ("20000", "255754123456", "SMSa1b2c3d4")
    );
    assert_eq!(
        sent.transaction_id.as_deref(),
        Some(accepted.transaction_id.as_str())
    );

    // By our own id: the answer to the payment call is not needed to find it.
    let answer = client.query(&id).await.unwrap();
    assert_eq!(answer.status, TxnStatus::Completed);
    assert_eq!(
        answer.transaction_id.as_deref(),
        Some(accepted.transaction_id.as_str())
    );
    assert_eq!(fake.refusals(), Vec::<String>::new());
    assert_eq!(fake.session_requests(), 1, "one session for both calls");
}

#[tokio::test]
async fn every_scripted_outcome_is_classified() {
    let (fake, client) = fake_and_client().await;
    fake.script([
        C2bOutcome::Cancelled.into(),
        C2bOutcome::Failed.into(),
        C2bOutcome::InsufficientBalance.into(),
        C2bOutcome::Timeout.into(),
        C2bOutcome::InternalError.into(),
        C2bOutcome::Busy.into(),
        C2bOutcome::Code(400, "INS-996").into(),
    ]);
    let mut seen = Vec::new();
    for _ in 0..7 {
        let id = conversation();
        let e = client.c2b(&payment(&id)).await.unwrap_err();
        seen.push((
            e.is_permanent(),
            e.is_unknown(),
            e.is_transient(),
            e.fault().map(|f| f.code.clone()),
        ));
    }
    let refused = |code: &str| (true, false, false, Some(code.to_string()));
    assert_eq!(
        seen,
        vec![
            refused("INS-5"),
            refused("INS-6"),
            refused("INS-2006"),
            (false, true, false, None),
            (false, true, false, None),
            (false, false, true, Some("INS-16".into())),
            refused("INS-996"),
        ]
    );
    assert_eq!(fake.refusals(), Vec::<String>::new());
}

#[tokio::test]
async fn a_timed_out_prompt_is_unknown_and_the_query_settles_it_either_way() {
    let (fake, client) = fake_and_client().await;
    fake.script([
        C2bOutcome::Timeout.into(),
        C2bScript::new(C2bOutcome::Timeout)
            .then("Completed")
            .pending_queries(1),
    ]);
    let (late, paid) = (conversation(), conversation());
    assert!(client.c2b(&payment(&late)).await.unwrap_err().is_unknown());
    assert!(client.c2b(&payment(&paid)).await.unwrap_err().is_unknown());
    assert_eq!(
        client.query(&late).await.unwrap().status,
        TxnStatus::Expired
    );
    assert_eq!(
        client.query(&paid).await.unwrap().status,
        TxnStatus::Pending,
        "N/A while young"
    );
    let answer = client.query(&paid).await.unwrap();
    assert_eq!(
        (answer.status, answer.raw_status.as_str()),
        (TxnStatus::Completed, "Completed")
    );
}

#[tokio::test]
async fn a_payment_that_hangs_past_the_timeout_is_unknown_and_never_sent_twice() {
    let fake = FakeVodacom::start().await.unwrap();
    let client = fake
        .client(&redis_url(), &prefix())
        .with_timeouts(Duration::from_millis(400), Duration::from_secs(5));
    fake.script([C2bScript::new(C2bOutcome::PinEntered).hang(Duration::from_millis(1200))]);
    let id = conversation();
    let e = client.c2b(&payment(&id)).await.unwrap_err();
    assert!(e.is_unknown(), "{e}");
    assert_eq!(client.query(&id).await.unwrap().status, TxnStatus::Pending);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        client.query(&id).await.unwrap().status,
        TxnStatus::Completed
    );
    // The platform refuses the same ThirdPartyConversationID: INS-10, unknown, query instead.
    let again = client.c2b(&payment(&id)).await.unwrap_err();
    assert!(again.is_unknown(), "{again}");
    assert_eq!(fake.payments().len(), 1);
}

#[tokio::test]
async fn a_session_refused_with_ins_989_is_refreshed_once() {
    let (fake, client) = fake_and_client().await;
    let id = conversation();
    client.c2b(&payment(&id)).await.unwrap();
    fake.expire_sessions();
    assert_eq!(
        client.query(&id).await.unwrap().status,
        TxnStatus::Completed
    );
    assert_eq!(fake.session_requests(), 2);
    assert_eq!(
        fake.refusals(),
        vec!["INS-989 Session Creation Failed".to_string()]
    );
}

#[tokio::test]
async fn a_session_is_opened_once_for_every_client_sharing_redis() {
    let fake = FakeVodacom::start().await.unwrap();
    let shared = prefix();
    let (a, b) = (
        fake.client(&redis_url(), &shared),
        fake.client(&redis_url(), &shared),
    );
    a.c2b(&payment(&conversation())).await.unwrap();
    b.c2b(&payment(&conversation())).await.unwrap();
    assert_eq!(fake.session_requests(), 1);
}

#[tokio::test]
async fn a_session_is_not_used_before_it_is_live() {
    let fake = FakeVodacom::start().await.unwrap();
    fake.sessions_live_after(Duration::from_millis(800));
    let client = fake
        .client(&redis_url(), &prefix())
        .with_session_wait(Duration::from_millis(800));
    let id = conversation();
    let e = client.c2b(&payment(&id)).await.unwrap_err();
    assert!(
        matches!(e, VodacomError::SessionNotLive(d) if d <= Duration::from_millis(800)),
        "{e}"
    );
    assert!(e.is_transient() && e.retry_in().is_some());
    assert!(
        fake.payments().is_empty(),
        "nothing sent with a session not live"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    client.c2b(&payment(&id)).await.unwrap();
    assert_eq!(fake.session_requests(), 1);
    assert_eq!(fake.refusals(), Vec::<String>::new());

    // A client that does not wait is refused, refreshes once, and gives up.
    let hasty = fake.client(&redis_url(), &prefix());
    let e = hasty.query(&id).await.unwrap_err();
    assert_eq!(e.fault().map(|f| f.class()), Some(InsClass::Session), "{e}");
    assert_eq!(fake.session_requests(), 3);
}

#[tokio::test]
async fn warming_opens_the_session_ahead_of_the_first_payment() {
    let (fake, client) = fake_and_client().await;
    client.warm().await.unwrap();
    client.warm().await.unwrap();
    assert_eq!(fake.session_requests(), 1);
    client.c2b(&payment(&conversation())).await.unwrap();
    assert_eq!(fake.session_requests(), 1);
}

#[tokio::test]
async fn a_wrong_api_key_opens_no_session() {
    let fake = FakeVodacom::start().await.unwrap();
    let mut settings = FakeVodacom::settings();
    settings.api_key = copcca_sms::config::Secret::new("not-the-key");
    let sessions = copcca_sms::providers::vodacom::SessionStore::new(
        &redis_url(),
        &prefix(),
        &settings.api_key,
    )
    .unwrap();
    let client = VodacomClient::new(fake.base.clone(), settings, sessions).unwrap();
    let e = client.c2b(&payment(&conversation())).await.unwrap_err();
    assert!(matches!(e, VodacomError::Session(_)), "{e}");
    assert!(fake.payments().is_empty());
}

#[tokio::test]
async fn requests_the_platform_would_refuse_are_not_sent() {
    let (fake, client) = fake_and_client().await;
    let id = conversation();
    for bad in [
        C2bPayment {
            reference: "SMS-0123456789abcdefXYZ",
            ..payment(&id)
        },
        C2bPayment {
            reference: "SMS 42",
            ..payment(&id)
        },
        C2bPayment {
            amount: Decimal::new(2_000_050, 2),
            ..payment(&id)
        },
        C2bPayment {
            msisdn: "+255754123456",
            ..payment(&id)
        },
    ] {
        let e = client.c2b(&bad).await.unwrap_err();
        assert!(matches!(e, VodacomError::Invalid(_)), "{e}");
    }
    assert!(fake.payments().is_empty());
}
