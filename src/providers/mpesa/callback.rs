//! The STK callback Daraja POSTs to the push's CallBackURL. It is unsigned: treat it as a hint
//! naming a CheckoutRequestID, and confirm with the STK Push Query before crediting.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

/// The conventional answer to a callback (HTTP 200).
pub const CALLBACK_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#;

/// `{"Body":{"stkCallback":{…}}}`. The metadata fields are present only on success
/// (`result_code == 0`); none of them is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StkCallback {
    pub merchant_request_id: String,
    pub checkout_request_id: String,
    /// 0 is the only success; every code is final for the CheckoutRequestID.
    pub result_code: i64,
    pub result_desc: String,
    pub amount: Option<Decimal>,
    /// MpesaReceiptNumber, e.g. `NLJ7RT61SV`.
    pub receipt: Option<String>,
    /// Digits, no `+` (`254708374149`).
    pub phone: Option<String>,
    /// `YYYYMMDDHHmmss` in EAT, as sent.
    pub transaction_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("not an STK callback: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Body")]
    body: Body,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "stkCallback")]
    stk_callback: Raw,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "MerchantRequestID", default)]
    merchant_request_id: String,
    #[serde(rename = "CheckoutRequestID")]
    checkout_request_id: String,
    #[serde(rename = "ResultCode")]
    result_code: Value,
    #[serde(rename = "ResultDesc", default)]
    result_desc: String,
    #[serde(rename = "CallbackMetadata", default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "Item", default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "Name")]
    name: String,
    /// Missing on some items (`{"Name":"Balance"}`).
    #[serde(rename = "Value", default)]
    value: Option<Value>,
}

impl StkCallback {
    pub fn parse(body: &[u8]) -> Result<Self, CallbackError> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let raw = envelope.body.stk_callback;
        if raw.checkout_request_id.is_empty() {
            return Err(CallbackError::Malformed("empty CheckoutRequestID".into()));
        }
        // A number here (unlike the query API); a string is accepted too.
        let result_code = match &raw.result_code {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| CallbackError::Malformed(format!("ResultCode {}", raw.result_code)))?;
        let items = raw.metadata.map(|m| m.items).unwrap_or_default();
        let item = |name: &str| {
            items
                .iter()
                .find(|i| i.name == name)
                .and_then(|i| i.value.as_ref())
                .and_then(scalar_text)
        };
        let amount = match item("Amount") {
            Some(text) => Some(
                text.parse::<Decimal>()
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map_err(|_| CallbackError::Malformed(format!("Amount {text}")))?,
            ),
            None => None,
        };
        Ok(StkCallback {
            merchant_request_id: raw.merchant_request_id,
            checkout_request_id: raw.checkout_request_id,
            result_code,
            result_desc: raw.result_desc,
            amount,
            receipt: item("MpesaReceiptNumber"),
            phone: item("PhoneNumber"),
            transaction_date: item("TransactionDate"),
        })
    }

    /// The customer paid (still to be confirmed by a query).
    pub fn is_success(&self) -> bool {
        self.result_code == 0
    }
}

/// A metadata value as text: numbers as written (`254708374149`, `1.0`), strings as they are.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Daraja's documented success sample, verbatim.
    const DOCUMENTED_SUCCESS: &str = r#"{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_191220191020363925",
 "ResultCode":0,"ResultDesc":"The service request is processed successfully.",
 "CallbackMetadata":{"Item":[{"Name":"Amount","Value":1.00},{"Name":"MpesaReceiptNumber","Value":"NLJ7RT61SV"},
 {"Name":"TransactionDate","Value":20191219102115},{"Name":"PhoneNumber","Value":254708374149}]}}}}"#;

    /// A production success with a valueless Balance item. The capture masks the phone as
    /// `2547XXXXXXXX`, which is not JSON; the X's are zeros here.
    const PRODUCTION_SUCCESS: &str = r#"{"Body":{"stkCallback":{"MerchantRequestID":"11225-96181251-1","CheckoutRequestID":"ws_CO_17112022155730304796440427","ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":1.00},{"Name":"MpesaReceiptNumber","Value":"QKH94M1Z11"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20221117155745},{"Name":"PhoneNumber","Value":254700000000}]}}}}"#;

    /// A production cancellation, verbatim: no CallbackMetadata.
    const PRODUCTION_CANCELLED: &str = r#"{"Body":{"stkCallback":{"MerchantRequestID":"68441-128341933-1","CheckoutRequestID":"ws_CO_17112022155511840796440427","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}"#;

    #[test]
    fn the_documented_success_sample_parses() {
        let cb = StkCallback::parse(DOCUMENTED_SUCCESS.as_bytes()).unwrap();
        assert_eq!(
            cb,
            StkCallback {
                merchant_request_id: "29115-34620561-1".into(),
                checkout_request_id: "ws_CO_191220191020363925".into(),
                result_code: 0,
                result_desc: "The service request is processed successfully.".into(),
                amount: Some(Decimal::ONE),
                receipt: Some("NLJ7RT61SV".into()),
                phone: Some("254708374149".into()),
                transaction_date: Some("20191219102115".into()),
            }
        );
        assert!(cb.is_success());
    }

    #[test]
    fn a_valueless_balance_item_is_tolerated() {
        let cb = StkCallback::parse(PRODUCTION_SUCCESS.as_bytes()).unwrap();
        assert_eq!(cb.checkout_request_id, "ws_CO_17112022155730304796440427");
        assert_eq!(cb.amount, Some(Decimal::ONE));
        assert_eq!(cb.receipt.as_deref(), Some("QKH94M1Z11"));
        assert_eq!(cb.phone.as_deref(), Some("254700000000"));
        assert_eq!(cb.transaction_date.as_deref(), Some("20221117155745"));
    }

    #[test]
    fn a_cancellation_has_no_metadata() {
        let cb = StkCallback::parse(PRODUCTION_CANCELLED.as_bytes()).unwrap();
        assert_eq!(cb.result_code, 1032);
        assert_eq!(cb.result_desc, "Request cancelled by user");
        assert_eq!(
            (cb.amount, cb.receipt, cb.phone, cb.transaction_date),
            (None, None, None, None)
        );
        assert!(
            !StkCallback::parse(PRODUCTION_CANCELLED.as_bytes())
                .unwrap()
                .is_success()
        );
    }

    #[test]
    fn items_in_any_order_string_codes_and_odd_amounts() {
        let body = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_1","ResultCode":"0","ResultDesc":"ok",
            "CallbackMetadata":{"Item":[{"Name":"PhoneNumber","Value":"255754123456"},{"Name":"Balance","Value":null},
            {"Name":"TransactionDate","Value":"20240101120000"},{"Name":"MpesaReceiptNumber","Value":"SAB1CD2EF3"},{"Name":"Amount","Value":1500.5}]}}}}"#;
        let cb = StkCallback::parse(body.as_bytes()).unwrap();
        assert_eq!(cb.result_code, 0);
        assert_eq!(cb.amount, Some(Decimal::new(15005, 1)));
        assert_eq!(cb.phone.as_deref(), Some("255754123456"));
        assert_eq!(cb.receipt.as_deref(), Some("SAB1CD2EF3"));
    }

    #[test]
    fn garbage_is_malformed() {
        for body in [
            "",
            "{}",
            r#"{"Body":{}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_1","ResultCode":"x"}}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"","ResultCode":0}}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_1","ResultCode":0,"CallbackMetadata":{"Item":[{"Name":"Amount","Value":"lots"}]}}}}"#,
        ] {
            assert!(StkCallback::parse(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn the_ack_is_json() {
        let v: Value = serde_json::from_str(CALLBACK_ACK).unwrap();
        assert_eq!(v["ResultCode"], 0);
    }
}
