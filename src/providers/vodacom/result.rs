//! The asynchronous result the platform may POST after a C2B payment (documented for the same
//! platform in Mozambique; not seen in Tanzanian integrations). Unsigned: it only makes us ask
//! `queryTransactionStatus/`, never credits by itself.

use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncResult {
    pub original_conversation_id: String,
    /// Our `input_ThirdPartyConversationID` (the payment).
    pub third_party_reference: String,
    pub transaction_id: String,
    /// `"0"` on success.
    pub result_code: String,
    pub result_desc: String,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "input_OriginalConversationID", default)]
    original_conversation_id: Value,
    #[serde(rename = "input_ThirdPartyReference", default)]
    third_party_reference: Value,
    #[serde(rename = "input_TransactionID", default)]
    transaction_id: Value,
    #[serde(rename = "input_ResultCode", default)]
    result_code: Value,
    #[serde(rename = "input_ResultDesc", default)]
    result_desc: Value,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl AsyncResult {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: Raw = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let r = AsyncResult {
            original_conversation_id: text(&raw.original_conversation_id),
            third_party_reference: text(&raw.third_party_reference),
            transaction_id: text(&raw.transaction_id),
            result_code: text(&raw.result_code),
            result_desc: text(&raw.result_desc),
        };
        if r.third_party_reference.is_empty() || r.result_code.is_empty() {
            return Err("input_ThirdPartyReference and input_ResultCode are required".into());
        }
        Ok(r)
    }
}

/// The acknowledgement the platform expects (HTTP 200).
pub fn result_ack(r: &AsyncResult) -> Value {
    json!({
        "output_OriginalConversationID": r.original_conversation_id,
        "output_ResponseCode": "0",
        "output_ResponseDesc": "Successfully Accepted Result",
        "output_ThirdPartyConversationID": r.third_party_reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_result_parses_and_is_acknowledged() {
        let r = AsyncResult::parse(br#"{"input_OriginalConversationID":"9d1b0b5f0b2c4a0e","input_ThirdPartyReference":"0b5e5a3c9f7d4e21a6c8b2d4f6e8a0c2","input_TransactionID":"8JH2KD81J3","input_ResultCode":"0","input_ResultDesc":"Transaction processed successfully"}"#).unwrap();
        assert_eq!(r.transaction_id, "8JH2KD81J3");
        assert_eq!(r.result_code, "0");
        let ack = result_ack(&r);
        assert_eq!(ack["output_ResponseCode"], "0");
        assert_eq!(
            ack["output_ThirdPartyConversationID"],
            "0b5e5a3c9f7d4e21a6c8b2d4f6e8a0c2"
        );
        assert!(AsyncResult::parse(b"{}").is_err());
        assert!(AsyncResult::parse(b"nope").is_err());
    }
}
