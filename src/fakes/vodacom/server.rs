//! The fake's HTTP side: bearer decryption, the header and field checks, and the handlers.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};

use super::*;

type St = State<Arc<Shared>>;

const OK_DESC: &str = "Request processed successfully";
const C2B_FIELDS: [&str; 8] = [
    "input_Amount",
    "input_Country",
    "input_Currency",
    "input_CustomerMSISDN",
    "input_ServiceProviderCode",
    "input_ThirdPartyConversationID",
    "input_TransactionReference",
    "input_PurchasedItemsDesc",
];
const REVERSAL_FIELDS: [&str; 5] = [
    "input_ReversalAmount",
    "input_Country",
    "input_ServiceProviderCode",
    "input_ThirdPartyConversationID",
    "input_TransactionID",
];

pub(super) fn answer(status: u16, code: &str, desc: &str, extra: Value) -> Response {
    let mut body = json!({"output_ResponseCode": code, "output_ResponseDesc": desc});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
}

fn boxed_refusal(shared: &Shared, status: u16, code: &str, desc: &str) -> Box<Response> {
    Box::new(refuse(shared, status, code, desc))
}

/// Records why a request was refused and answers with the platform's code.
fn refuse(shared: &Shared, status: u16, code: &str, desc: &str) -> Response {
    shared
        .inner
        .lock()
        .expect("lock")
        .refusals
        .push(format!("{code} {desc}"));
    answer(status, code, desc, Value::Null)
}

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

const HEX: &[u8] = b"0123456789abcdef";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub(super) async fn not_found(State(shared): St) -> Response {
    refuse(&shared, 404, "INS-22", "Invalid Operation Type")
}

/// The headers every request carries, and the decrypted bearer.
fn open_bearer(
    shared: &Shared,
    headers: &HeaderMap,
    needs_body: bool,
) -> Result<String, Box<Response>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("origin") != Some("*") {
        return Err(boxed_refusal(
            shared,
            400,
            "INS-21",
            "Parameter validations failed. Origin header missing or wrong",
        ));
    }
    if header("accept") != Some("application/json")
        || (needs_body && header("content-type") != Some("application/json"))
    {
        return Err(boxed_refusal(
            shared,
            400,
            "INS-21",
            "Parameter validations failed. Content-Type and Accept must be application/json",
        ));
    }
    let sealed = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    let opened = sealed
        .and_then(|s| shared.key.decrypt(rsa::Pkcs1v15Encrypt, &s).ok())
        .and_then(|plain| String::from_utf8(plain).ok());
    opened.ok_or_else(|| Box::new(refuse(shared, 401, "INS-2", "Invalid API Key")))
}

/// The session named by the bearer must be known, live and not expired.
fn authorise(shared: &Shared, headers: &HeaderMap, needs_body: bool) -> Result<(), Box<Response>> {
    let session = open_bearer(shared, headers, needs_body)?;
    let inner = shared.inner.lock().expect("lock");
    let refusal = match inner.sessions.get(&session) {
        None => Some((401, "INS-2", "Invalid API Key")),
        Some(s) if s.revoked => Some((400, "INS-989", "Session Creation Failed")),
        Some(s) if s.opened.elapsed() < inner.live_after => Some((401, "INS-2", "Invalid API Key")),
        Some(_) => None,
    };
    drop(inner);
    match refusal {
        Some((status, code, desc)) => Err(Box::new(refuse(shared, status, code, desc))),
        None => Ok(()),
    }
}

pub(super) async fn session(State(shared): St, headers: HeaderMap) -> Response {
    shared.inner.lock().expect("lock").session_requests += 1;
    let key = match open_bearer(&shared, &headers, false) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    if key != API_KEY {
        return refuse(&shared, 400, "INS-989", "Session Creation Failed");
    }
    let id = random_text(32, HEX);
    shared.inner.lock().expect("lock").sessions.insert(
        id.clone(),
        FakeSession {
            opened: tokio::time::Instant::now(),
            revoked: false,
        },
    );
    answer(200, "INS-0", OK_DESC, json!({"output_SessionID": id}))
}

/// A JSON object with exactly `fields`, all strings.
fn fields(body: &[u8], names: &[&str]) -> Result<HashMap<String, String>, &'static str> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err("body is not a JSON object");
    };
    if map.len() != names.len() || names.iter().any(|n| !map.contains_key(*n)) {
        return Err("missing or unexpected parameters");
    }
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err("parameters are strings"),
        })
        .collect()
}

fn whole_amount(s: &str) -> bool {
    s.parse::<rust_decimal::Decimal>()
        .is_ok_and(|a| a > rust_decimal::Decimal::ZERO && a.fract().is_zero() && !s.contains('.'))
}

pub(super) async fn c2b(State(shared): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorise(&shared, &headers, true) {
        return *r;
    }
    let f = match fields(&body, &C2B_FIELDS) {
        Ok(f) => f,
        Err(why) => {
            return refuse(
                &shared,
                400,
                "INS-20",
                &format!("Not All Parameters Provided. Please Try Again. ({why})"),
            );
        }
    };
    let reference = &f["input_TransactionReference"];
    let checks = [
        (
            whole_amount(&f["input_Amount"]),
            400,
            "INS-15",
            "Invalid Amount Used",
        ),
        (
            f["input_Country"] == "TZN",
            400,
            "INS-21",
            "Parameter validations failed. Please try again. (input_Country)",
        ),
        (
            f["input_Currency"] == "TZS",
            400,
            "INS-21",
            "Parameter validations failed. Please try again. (input_Currency)",
        ),
        (
            msisdn_ok(&f["input_CustomerMSISDN"]),
            400,
            "INS-2051",
            "MSISDN invalid.",
        ),
        (
            f["input_ServiceProviderCode"] == SERVICE_PROVIDER_CODE,
            400,
            "INS-13",
            "Invalid Shortcode Used",
        ),
        (
            !f["input_ThirdPartyConversationID"].trim().is_empty(),
            400,
            "INS-19",
            "Invalid ThirdPartyReference Used",
        ),
        (
            !reference.is_empty() && reference.chars().count() <= 20,
            400,
            "INS-17",
            "Invalid Transaction Reference. Length Should Be Between 1 and 20.",
        ),
        // Stray whitespace in the reference has produced INS-1 on the real platform.
        (
            !reference.chars().any(char::is_whitespace),
            500,
            "INS-1",
            "Internal Error",
        ),
        (
            !f["input_PurchasedItemsDesc"].trim().is_empty(),
            400,
            "INS-21",
            "Parameter validations failed. Please try again. (input_PurchasedItemsDesc)",
        ),
    ];
    if let Some((_, status, code, desc)) = checks.iter().find(|c| !c.0) {
        return refuse(&shared, *status, code, desc);
    }
    let third_party = f["input_ThirdPartyConversationID"].clone();
    let (script, n) = {
        let mut inner = shared.inner.lock().expect("lock");
        if inner.txns.iter().any(|t| t.third_party == third_party) {
            drop(inner);
            return refuse(&shared, 409, "INS-10", "Duplicate Transaction");
        }
        inner.counter += 1;
        let script = inner
            .script
            .pop_front()
            .unwrap_or_else(|| C2bScript::new(C2bOutcome::PinEntered));
        (script, inner.counter)
    };
    use C2bOutcome::*;
    let (status, code, desc, settles_as): (u16, &str, &str, Option<&'static str>) =
        match script.outcome {
            PinEntered => (200, "INS-0", OK_DESC, Some("Completed")),
            Cancelled => (
                401,
                "INS-5",
                "Transaction cancelled by customer",
                Some("Cancelled"),
            ),
            Failed => (401, "INS-6", "Transaction Failed", Some("Failed")),
            InsufficientBalance => (422, "INS-2006", "Insufficient balance", Some("Failed")),
            Timeout => (408, "INS-9", "Request timeout", Some("Expired")),
            InternalError => (500, "INS-1", "Internal Error", Some("Completed")),
            Busy => (
                503,
                "INS-16",
                "Unable to handle the request due to a temporary overloading",
                None,
            ),
            Code(status, code) => (status, code, "Scripted answer", None),
        };
    let transaction_id = settles_as.map(|_| format!("{}{n}", random_text(8, UPPER_DIGITS)));
    let conversation_id = random_text(32, HEX);
    shared.inner.lock().expect("lock").payments.push(FakeC2b {
        amount: f["input_Amount"].clone(),
        msisdn: f["input_CustomerMSISDN"].clone(),
        third_party_conversation_id: third_party.clone(),
        reference: reference.clone(),
        description: f["input_PurchasedItemsDesc"].clone(),
        transaction_id: transaction_id.clone(),
    });
    if let (Some(final_status), Some(txn)) = (script.then.or(settles_as), &transaction_id) {
        shared.inner.lock().expect("lock").txns.push(Txn {
            transaction_id: txn.clone(),
            conversation_id: conversation_id.clone(),
            third_party: third_party.clone(),
            amount: f["input_Amount"].clone(),
            final_status,
            pending_queries: script.pending_queries,
            settled: script.hang.is_none(),
            reversed: false,
        });
    }
    if let Some(hang) = script.hang {
        // The customer's answer comes whether or not the caller is still waiting for it: a
        // task of its own, which a dropped connection does not cancel.
        let (shared, third_party) = (shared.clone(), third_party.clone());
        let settle = tokio::spawn(async move {
            tokio::time::sleep(hang).await;
            if let Some(t) = shared
                .inner
                .lock()
                .expect("lock")
                .txns
                .iter_mut()
                .find(|t| t.third_party == third_party)
            {
                t.settled = true;
            }
        });
        let _ = settle.await;
    }
    if let (Some(url), Some(txn)) = (script.result_to.clone(), transaction_id.clone()) {
        let (shared, third_party) = (shared.clone(), third_party.clone());
        let result_code = if code == "INS-0" { "0" } else { "1" };
        tokio::spawn(async move {
            let _ = post_result(&shared, url.as_str(), &third_party, &txn, result_code).await;
        });
    }
    let extra = if code == "INS-0" {
        json!({
            "output_TransactionID": transaction_id,
            "output_ConversationID": conversation_id,
            "output_ThirdPartyConversationID": third_party,
        })
    } else {
        json!({
            "output_TransactionID": "",
            "output_ConversationID": conversation_id,
            "output_ThirdPartyConversationID": third_party,
        })
    };
    answer(status, code, desc, extra)
}

fn msisdn_ok(s: &str) -> bool {
    (12..=14).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

pub(super) async fn query(
    State(shared): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorise(&shared, &headers, false) {
        return *r;
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if q.len() != 4
        || get("input_QueryReference").is_empty()
        || get("input_ThirdPartyConversationID").is_empty()
    {
        return refuse(
            &shared,
            400,
            "INS-20",
            "Not All Parameters Provided. Please Try Again.",
        );
    }
    if get("input_ServiceProviderCode") != SERVICE_PROVIDER_CODE {
        return refuse(&shared, 400, "INS-13", "Invalid Shortcode Used");
    }
    if get("input_Country") != "TZN" {
        return refuse(
            &shared,
            400,
            "INS-21",
            "Parameter validations failed. Please try again. (input_Country)",
        );
    }
    let reference = get("input_QueryReference").to_string();
    let mut inner = shared.inner.lock().expect("lock");
    let found = inner.txns.iter_mut().find(|t| {
        t.transaction_id == reference
            || t.conversation_id == reference
            || t.third_party == reference
    });
    let (status, original) = match found {
        Some(t) if !t.settled || t.pending_queries > 0 => {
            t.pending_queries = t.pending_queries.saturating_sub(1);
            ("N/A", t.transaction_id.clone())
        }
        Some(t) => (t.final_status, t.transaction_id.clone()),
        None => ("N/A", String::new()),
    };
    inner.queries.push(FakeQuery {
        reference,
        status: status.into(),
    });
    drop(inner);
    answer(
        200,
        "INS-0",
        OK_DESC,
        json!({
            "output_ResponseTransactionStatus": status,
            "output_ConversationID": random_text(32, HEX),
            "output_ThirdPartyConversationID": get("input_ThirdPartyConversationID"),
            "output_OriginalTransactionID": original,
        }),
    )
}

pub(super) async fn reversal(State(shared): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorise(&shared, &headers, true) {
        return *r;
    }
    let f = match fields(&body, &REVERSAL_FIELDS) {
        Ok(f) => f,
        Err(why) => {
            return refuse(
                &shared,
                400,
                "INS-20",
                &format!("Not All Parameters Provided. Please Try Again. ({why})"),
            );
        }
    };
    if f["input_ServiceProviderCode"] != SERVICE_PROVIDER_CODE {
        return refuse(&shared, 400, "INS-13", "Invalid Shortcode Used");
    }
    if f["input_Country"] != "TZN" {
        return refuse(
            &shared,
            400,
            "INS-21",
            "Parameter validations failed. Please try again. (input_Country)",
        );
    }
    let mut inner = shared.inner.lock().expect("lock");
    let Some(txn) = inner.txns.iter_mut().find(|t| {
        t.transaction_id == f["input_TransactionID"]
            && t.final_status == "Completed"
            && t.settled
            && !t.reversed
    }) else {
        drop(inner);
        return refuse(&shared, 400, "INS-18", "Invalid TransactionID Used");
    };
    if txn.amount != f["input_ReversalAmount"] {
        drop(inner);
        return refuse(&shared, 400, "INS-15", "Invalid Amount Used");
    }
    txn.reversed = true;
    inner.reversals.push(FakeReversal {
        transaction_id: f["input_TransactionID"].clone(),
        amount: f["input_ReversalAmount"].clone(),
    });
    drop(inner);
    answer(
        200,
        "INS-0",
        OK_DESC,
        json!({
            "output_TransactionID": random_text(10, UPPER_DIGITS),
            "output_ConversationID": random_text(32, HEX),
            "output_ThirdPartyConversationID": f["input_ThirdPartyConversationID"],
        }),
    )
}

/// Posts the asynchronous result in the platform's shape and records the receiver's answer.
pub(super) async fn post_result(
    shared: &Shared,
    url: &str,
    third_party: &str,
    transaction_id: &str,
    code: &str,
) -> reqwest::Result<u16> {
    let body = json!({
        "input_OriginalConversationID": random_text(32, HEX),
        "input_ThirdPartyReference": third_party,
        "input_TransactionID": transaction_id,
        "input_ResultCode": code,
        "input_ResultDesc": if code == "0" { "Transaction processed successfully" } else { "Transaction failed" },
    });
    let result = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16());
    shared
        .inner
        .lock()
        .expect("lock")
        .results
        .push((url.to_string(), result.as_ref().ok().copied()));
    result
}
