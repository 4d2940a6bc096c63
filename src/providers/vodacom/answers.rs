//! Reading Vodacom's answers: the INS code of a C2B payment's or a status query's answer, and
//! what each class of code means for the caller (paid, unknown, busy, refused).

use serde_json::Value;

use super::codes::InsClass;
use super::error::{InsFault, VodacomError};

/// INS-0 with a transaction id: the customer entered the PIN. Still to be confirmed by the
/// status query before anything is credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2bAccepted {
    pub transaction_id: String,
    pub conversation_id: String,
    pub third_party_conversation_id: String,
    pub desc: String,
}

/// `output_ResponseTransactionStatus`, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnStatus {
    Completed,
    Cancelled,
    Expired,
    Failed,
    /// `Pending`, `N/A` or empty: nothing final yet (or not found yet).
    Pending,
    /// Anything else, as sent.
    Other(String),
}

impl TxnStatus {
    pub(super) fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "completed" => TxnStatus::Completed,
            "cancelled" | "canceled" => TxnStatus::Cancelled,
            "expired" => TxnStatus::Expired,
            "failed" => TxnStatus::Failed,
            "" | "n/a" | "pending" => TxnStatus::Pending,
            _ => TxnStatus::Other(s.trim().to_string()),
        }
    }
}

/// What `queryTransactionStatus/` said about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    pub status: TxnStatus,
    /// As sent (`Completed`, `N/A`…).
    pub raw_status: String,
    /// `output_OriginalTransactionID`: the C2B transaction the query found.
    pub transaction_id: Option<String>,
    pub conversation_id: Option<String>,
}

pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// The answer's INS code and description, if its body is the platform's JSON.
fn ins(status: u16, text: &str) -> Option<(InsFault, Value)> {
    let body: Value = serde_json::from_str(text).ok()?;
    let code = text_of(&body["output_ResponseCode"]);
    if code.is_empty() {
        return None;
    }
    let fault = InsFault {
        http_status: status,
        code,
        desc: text_of(&body["output_ResponseDesc"]),
    };
    Some((fault, body))
}

/// INS-2 / INS-989, or HTTP 401 without an INS code: the platform refused the session. (A 401
/// with INS-4, INS-5 or INS-6 is the customer's answer, not ours.)
pub(super) fn session_refused(status: u16, text: &str) -> bool {
    match ins(status, text) {
        Some((f, _)) => f.class() == InsClass::Session,
        None => status == 401,
    }
}

fn gateway_fault(status: u16, text: &str) -> InsFault {
    InsFault {
        http_status: status,
        code: String::new(),
        desc: text.chars().take(200).collect(),
    }
}

pub(super) fn parse_c2b(status: u16, text: &str) -> Result<C2bAccepted, VodacomError> {
    let Some((fault, body)) = ins(status, text) else {
        // Not the platform's answer: a gateway's page, or nothing readable. The request may
        // have reached the platform, unless the gateway says it is overloaded.
        if status == 503 || status == 429 {
            return Err(VodacomError::Unavailable(gateway_fault(status, text)));
        }
        return Err(VodacomError::Unknown(
            gateway_fault(status, text).to_string(),
        ));
    };
    match fault.class() {
        InsClass::Success => {
            let transaction_id = text_of(&body["output_TransactionID"]);
            if transaction_id.is_empty() {
                return Err(VodacomError::Unknown(format!(
                    "{fault} without a transaction id"
                )));
            }
            Ok(C2bAccepted {
                transaction_id,
                conversation_id: text_of(&body["output_ConversationID"]),
                third_party_conversation_id: text_of(&body["output_ThirdPartyConversationID"]),
                desc: fault.desc,
            })
        }
        InsClass::Unknown => Err(VodacomError::Unknown(fault.to_string())),
        InsClass::Busy => Err(VodacomError::Unavailable(fault)),
        InsClass::Unrecognised => {
            tracing::error!(code = %fault.code, desc = %fault.desc, "vodacom answered a code not in the table; the payment is ended");
            Err(VodacomError::Refused(fault))
        }
        InsClass::Configuration | InsClass::Session => {
            tracing::error!(code = %fault.code, desc = %fault.desc, "vodacom refused our configuration; the operator must look");
            Err(VodacomError::Refused(fault))
        }
        InsClass::Declined | InsClass::Input => Err(VodacomError::Refused(fault)),
    }
}

pub(super) fn parse_query(status: u16, text: &str) -> Result<QueryAnswer, VodacomError> {
    let Some((fault, body)) = ins(status, text) else {
        if status == 503 || status == 429 || status >= 500 {
            return Err(VodacomError::Unavailable(gateway_fault(status, text)));
        }
        return Err(VodacomError::Unanswered(
            gateway_fault(status, text).to_string(),
        ));
    };
    match fault.class() {
        InsClass::Success => {
            let raw_status = text_of(&body["output_ResponseTransactionStatus"]);
            let non_empty = |v: &Value| Some(text_of(v)).filter(|s| !s.is_empty());
            Ok(QueryAnswer {
                status: TxnStatus::parse(&raw_status),
                raw_status,
                transaction_id: non_empty(&body["output_OriginalTransactionID"])
                    .or_else(|| non_empty(&body["output_TransactionID"])),
                conversation_id: non_empty(&body["output_ConversationID"]),
            })
        }
        // The query could not say (INS-1, INS-9, INS-23: not indexed yet): ask again.
        InsClass::Unknown => Err(VodacomError::Unanswered(fault.to_string())),
        InsClass::Busy => Err(VodacomError::Unavailable(fault)),
        InsClass::Configuration | InsClass::Session => {
            tracing::error!(code = %fault.code, desc = %fault.desc, "vodacom refused our query's configuration; the operator must look");
            Err(VodacomError::Refused(fault))
        }
        _ => Err(VodacomError::Refused(fault)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2b_answers_are_classified() {
        let ok = parse_c2b(200, r#"{"output_ResponseCode":"INS-0","output_ResponseDesc":"Request processed successfully","output_TransactionID":"49XCDF6","output_ConversationID":"AG_20260101_1","output_ThirdPartyConversationID":"abc"}"#).unwrap();
        assert_eq!(ok.transaction_id, "49XCDF6");
        assert!(
            parse_c2b(
                200,
                r#"{"output_ResponseCode":"INS-0","output_TransactionID":""}"#
            )
            .unwrap_err()
            .is_unknown()
        );
        for (status, code) in [
            (500, "INS-1"),
            (408, "INS-9"),
            (409, "INS-10"),
            (400, "INS-23"),
        ] {
            let body = format!(r#"{{"output_ResponseCode":"{code}","output_ResponseDesc":"x"}}"#);
            assert!(parse_c2b(status, &body).unwrap_err().is_unknown(), "{code}");
        }
        for (status, code) in [
            (401, "INS-5"),
            (401, "INS-6"),
            (422, "INS-2006"),
            (400, "INS-2051"),
            (400, "INS-13"),
            (400, "INS-17"),
            (400, "INS-777"),
        ] {
            let body = format!(r#"{{"output_ResponseCode":"{code}","output_ResponseDesc":"x"}}"#);
            let e = parse_c2b(status, &body).unwrap_err();
            assert!(e.is_permanent(), "{code}");
            assert_eq!(e.fault().unwrap().code, code);
        }
        let busy = parse_c2b(
            503,
            r#"{"output_ResponseCode":"INS-16","output_ResponseDesc":"busy"}"#,
        );
        assert!(busy.unwrap_err().is_transient());
        assert!(parse_c2b(504, "<html>").unwrap_err().is_unknown());
        assert!(parse_c2b(503, "").unwrap_err().is_transient());
    }

    #[test]
    fn query_statuses_are_read_case_insensitively() {
        let a = parse_query(200, r#"{"output_ResponseCode":"INS-0","output_ResponseDesc":"Request processed successfully","output_ResponseTransactionStatus":"completed","output_ConversationID":"c","output_ThirdPartyConversationID":"t","output_OriginalTransactionID":"49XCDF6"}"#).unwrap();
        assert_eq!(a.status, TxnStatus::Completed);
        assert_eq!(a.transaction_id.as_deref(), Some("49XCDF6"));
        for (raw, status) in [
            ("Cancelled", TxnStatus::Cancelled),
            ("EXPIRED", TxnStatus::Expired),
            ("N/A", TxnStatus::Pending),
            ("Pending", TxnStatus::Pending),
            ("Failed", TxnStatus::Failed),
            ("Reversed", TxnStatus::Other("Reversed".into())),
        ] {
            let body = format!(
                r#"{{"output_ResponseCode":"INS-0","output_ResponseTransactionStatus":"{raw}"}}"#
            );
            assert_eq!(parse_query(200, &body).unwrap().status, status, "{raw}");
        }
        assert!(
            parse_query(500, r#"{"output_ResponseCode":"INS-1"}"#)
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn a_refused_session_is_recognised() {
        assert!(session_refused(401, ""));
        assert!(session_refused(
            400,
            r#"{"output_ResponseCode":"INS-989","output_ResponseDesc":"Session Creation Failed"}"#
        ));
        assert!(session_refused(401, r#"{"output_ResponseCode":"INS-2"}"#));
        assert!(!session_refused(401, r#"{"output_ResponseCode":"INS-5"}"#));
    }
}
