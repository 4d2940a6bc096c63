use super::*;
use crate::providers::mpesa::StkCallback;

fn txn(outcome: PushOutcome, amount: Option<Decimal>) -> Txn {
    let mut script = PushScript::new(outcome);
    script.callback_amount = amount;
    Txn {
        merchant_request_id: "29115-34620561-1".into(),
        script,
        phone: 254708374149,
        amount: 1,
        callback_url: "http://127.0.0.1:1/cb".into(),
        pending_queries: 0,
        failing_queries: 0,
        callback_body: None,
        settled: false,
    }
}

#[test]
fn the_success_callback_has_the_real_shape() {
    let body = callback_json(&txn(PushOutcome::Paid, None), "ws_CO_1", "QKH94M1Z11");
    assert!(body.contains(r#"{"Name":"Amount","Value":1.00}"#), "{body}");
    assert!(body.contains(r#"{"Name":"Balance"}"#), "{body}");
    assert!(body.contains(r#""ResultCode":0,"#), "{body}");
    let cb = StkCallback::parse(body.as_bytes()).unwrap();
    assert_eq!(cb.amount, Some(Decimal::ONE));
    assert_eq!(cb.receipt.as_deref(), Some("QKH94M1Z11"));
    assert_eq!(cb.phone.as_deref(), Some("254708374149"));
    assert_eq!(cb.transaction_date.map(|d| d.len()), Some(14));
}

#[test]
fn a_failure_callback_has_no_metadata_and_an_amount_can_be_overridden() {
    let body = callback_json(&txn(PushOutcome::WrongPin, None), "ws_CO_1", "R");
    assert!(!body.contains("CallbackMetadata"), "{body}");
    assert_eq!(
        StkCallback::parse(body.as_bytes()).unwrap().result_code,
        2001
    );
    let body = callback_json(
        &txn(PushOutcome::Paid, Some(Decimal::new(5, 1))),
        "ws_CO_1",
        "R",
    );
    assert!(body.contains(r#""Value":0.50}"#), "{body}");
}
