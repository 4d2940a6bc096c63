//! The fake's HTTP side: token, STK Push and STK Push Query handlers with Daraja's field checks, and the callbacks it posts.

use super::*;

/// Posts a callback and records it.
pub(super) async fn deliver(
    shared: &Shared,
    checkout_request_id: &str,
    url: &str,
    body: String,
) -> Result<u16, Box<reqwest::Error>> {
    let result = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16());
    shared
        .inner
        .lock()
        .expect("lock")
        .deliveries
        .push(Delivery {
            checkout_request_id: checkout_request_id.into(),
            url: url.into(),
            status: result.as_ref().ok().copied(),
        });
    result.map_err(Box::new)
}

pub(super) fn fault(status: u16, code: &str, message: &str) -> Response {
    let mut rng = rand::rng();
    let request_id = format!(
        "{}-{}-1",
        rng.random_range(10000..99999),
        rng.random_range(1_000_000..99_999_999)
    );
    let body = json!({"requestId": request_id, "errorCode": code, "errorMessage": message});
    (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
}

pub(super) fn refuse(shared: &Shared, status: u16, code: &str, message: &str) -> Response {
    shared
        .inner
        .lock()
        .expect("lock")
        .refusals
        .push(format!("{code} {message}"));
    fault(status, code, message)
}

pub(super) fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

pub(super) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(super) const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub(super) async fn generate(
    State(shared): St,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    shared.inner.lock().expect("lock").token_requests += 1;
    if q.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse(&shared, 400, "400.008.02", "Invalid grant type passed");
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{CONSUMER_KEY}:{CONSUMER_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return refuse(&shared, 400, "400.008.01", "Invalid Authentication passed");
    }
    let token = random_text(28, ALNUM);
    shared
        .inner
        .lock()
        .expect("lock")
        .tokens
        .insert(token.clone());
    Json(json!({"access_token": token, "expires_in": "3599"})).into_response()
}

pub(super) fn bearer_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| shared.inner.lock().expect("lock").tokens.contains(t))
}

/// The fields Daraja checks on a push or query. The fake answers a wrong Password with
/// 400.002.02 so a client bug fails loudly (real Daraja may say 500.001.1001 "Wrong credentials").
pub(super) fn check_password(body: &Value) -> Result<String, String> {
    let shortcode = text_or_number(&body["BusinessShortCode"]);
    if shortcode.as_deref() != Some(SHORTCODE) {
        return Err("BusinessShortCode".into());
    }
    let timestamp = body["Timestamp"].as_str().unwrap_or_default();
    if timestamp.len() != 14
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
        || NaiveDateTime::parse_from_str(timestamp, "%Y%m%d%H%M%S").is_err()
    {
        return Err("Timestamp".into());
    }
    if body["Password"].as_str() != Some(stk_password(SHORTCODE, PASSKEY, timestamp).as_str()) {
        return Err("Password".into());
    }
    Ok(timestamp.to_string())
}

pub(super) fn text_or_number(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A 12-digit Kenyan or Tanzanian MSISDN as a JSON number.
pub(super) fn msisdn(v: &Value) -> Option<u64> {
    let n = v.as_u64()?;
    let s = n.to_string();
    (s.len() == 12 && (s.starts_with("254") || s.starts_with("255"))).then_some(n)
}

pub(super) fn bounded_text(v: &Value, max: usize) -> Option<String> {
    let s = v.as_str()?;
    (!s.is_empty() && s.chars().count() <= max).then(|| s.to_string())
}

pub(super) struct ValidPush {
    amount: i64,
    phone: u64,
    account_reference: String,
    transaction_desc: String,
    callback_url: String,
    timestamp: String,
}

pub(super) fn validate_push(body: &Value) -> Result<ValidPush, String> {
    let timestamp = check_password(body)?;
    if !matches!(
        body["TransactionType"].as_str(),
        Some("CustomerPayBillOnline" | "CustomerBuyGoodsOnline")
    ) {
        return Err("TransactionType".into());
    }
    let amount = body["Amount"]
        .as_i64()
        .filter(|a| *a >= 1)
        .ok_or("Amount")?;
    let party_a = msisdn(&body["PartyA"]).ok_or("PartyA")?;
    if text_or_number(&body["PartyB"]).as_deref() != Some(SHORTCODE) {
        return Err("PartyB".into());
    }
    let phone = msisdn(&body["PhoneNumber"]).ok_or("PhoneNumber")?;
    if party_a != phone {
        return Err("PartyA".into());
    }
    let callback_url = body["CallBackURL"]
        .as_str()
        .and_then(|s| Url::parse(s).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("CallBackURL")?;
    let account_reference =
        bounded_text(&body["AccountReference"], 12).ok_or("AccountReference")?;
    let transaction_desc = bounded_text(&body["TransactionDesc"], 13).ok_or("TransactionDesc")?;
    Ok(ValidPush {
        amount,
        phone,
        account_reference,
        transaction_desc,
        callback_url: callback_url.to_string(),
        timestamp,
    })
}

pub(super) async fn push(State(shared): St, headers: HeaderMap, body: String) -> Response {
    if !bearer_ok(&shared, &headers) {
        return refuse(&shared, 404, "404.001.03", "Invalid Access Token");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return refuse(&shared, 400, "400.002.02", "Bad Request - Invalid JSON");
    };
    let valid = match validate_push(&body) {
        Ok(v) => v,
        Err(field) => {
            return refuse(
                &shared,
                400,
                "400.002.02",
                &format!("Bad Request - Invalid {field}"),
            );
        }
    };
    let mut record = FakePush {
        amount: valid.amount,
        phone: valid.phone,
        account_reference: valid.account_reference,
        transaction_desc: valid.transaction_desc,
        callback_url: valid.callback_url.clone(),
        timestamp: valid.timestamp,
        checkout_request_id: None,
        merchant_request_id: None,
    };
    let (script, n) = {
        let mut inner = shared.inner.lock().expect("lock");
        inner.counter += 1;
        (
            inner
                .script
                .pop_front()
                .unwrap_or_else(|| PushScript::new(PushOutcome::Paid)),
            inner.counter,
        )
    };
    if let Some(e) = script.sync_error {
        shared.inner.lock().expect("lock").pushes.push(record);
        return fault(e.http, e.code, e.message);
    }
    let now = Utc::now().with_timezone(&chrono_tz::Africa::Nairobi);
    let checkout = format!("ws_CO_{}{:09}", now.format("%d%m%Y%H%M%S%3f"), n);
    let merchant = format!(
        "{}-{}-{}",
        rand::rng().random_range(10000..99999),
        rand::rng().random_range(1_000_000..99_999_999),
        n
    );
    record.checkout_request_id = Some(checkout.clone());
    record.merchant_request_id = Some(merchant.clone());
    {
        let mut inner = shared.inner.lock().expect("lock");
        inner.pushes.push(record);
        inner.txns.insert(
            checkout.clone(),
            Txn {
                merchant_request_id: merchant.clone(),
                pending_queries: script.pending_queries,
                failing_queries: script.failing_queries,
                script: script.clone(),
                phone: valid.phone,
                amount: valid.amount,
                callback_url: valid.callback_url,
                callback_body: None,
                settled: false,
            },
        );
    }
    tokio::spawn(settle(shared.clone(), checkout.clone(), script.delay));
    if let Some(hang) = script.hang {
        tokio::time::sleep(hang).await;
    }
    Json(json!({
        "MerchantRequestID": merchant,
        "CheckoutRequestID": checkout,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    }))
    .into_response()
}

/// The customer's outcome after `delay`: fixes the callback body and posts it if scripted.
pub(super) async fn settle(shared: Arc<Shared>, checkout: String, delay: Duration) {
    tokio::time::sleep(delay).await;
    let (url, body, send) = {
        let mut inner = shared.inner.lock().expect("lock");
        let receipt = loop {
            let r = format!(
                "{}{}",
                random_text(1, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                random_text(9, UPPER_DIGITS)
            );
            if inner.receipts.insert(r.clone()) {
                break r;
            }
        };
        let txn = inner.txns.get_mut(&checkout).expect("txn");
        let body = callback_json(txn, &checkout, &receipt);
        txn.callback_body = Some(body.clone());
        (txn.callback_url.clone(), body, txn.script.callback)
    };
    if send {
        // A refused or failed delivery is recorded; Daraja does not retry.
        let _ = deliver(&shared, &checkout, &url, body).await;
    }
    if let Some(txn) = shared.inner.lock().expect("lock").txns.get_mut(&checkout) {
        txn.settled = true;
    }
}

/// The callback in Daraja's shapes, written by hand so Amount keeps its `1.00` form.
pub(super) fn callback_json(txn: &Txn, checkout: &str, receipt: &str) -> String {
    let (code, desc) = txn.script.outcome.result();
    let head = format!(
        r#""MerchantRequestID":{},"CheckoutRequestID":{},"ResultCode":{code},"ResultDesc":{}"#,
        json!(txn.merchant_request_id),
        json!(checkout),
        json!(desc)
    );
    if code != 0 {
        return format!(r#"{{"Body":{{"stkCallback":{{{head}}}}}}}"#);
    }
    let mut amount = txn
        .script
        .callback_amount
        .unwrap_or_else(|| Decimal::from(txn.amount))
        .round_dp(2);
    amount.rescale(2);
    let date = stk_timestamp(Utc::now());
    format!(
        r#"{{"Body":{{"stkCallback":{{{head},"CallbackMetadata":{{"Item":[{{"Name":"Amount","Value":{amount}}},{{"Name":"MpesaReceiptNumber","Value":"{receipt}"}},{{"Name":"Balance"}},{{"Name":"TransactionDate","Value":{date}}},{{"Name":"PhoneNumber","Value":{phone}}}]}}}}}}}}"#,
        phone = txn.phone
    )
}

pub(super) async fn query(State(shared): St, headers: HeaderMap, body: String) -> Response {
    if !bearer_ok(&shared, &headers) {
        return refuse(&shared, 404, "404.001.03", "Invalid Access Token");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return refuse(&shared, 400, "400.002.02", "Bad Request - Invalid JSON");
    };
    if let Err(field) = check_password(&body) {
        return refuse(
            &shared,
            400,
            "400.002.02",
            &format!("Bad Request - Invalid {field}"),
        );
    }
    let checkout = body["CheckoutRequestID"].as_str().unwrap_or_default();
    let scripted = {
        let mut inner = shared.inner.lock().expect("lock");
        inner.queries.push(checkout.to_string());
        inner.txns.get_mut(checkout).and_then(|txn| {
            let fault = txn.script.query_fault.filter(|_| txn.failing_queries > 0)?;
            txn.failing_queries -= 1;
            Some(fault)
        })
    };
    match scripted {
        Some(QueryFault::Error(e)) => return fault(e.http, e.code, e.message),
        Some(QueryFault::Hang(d)) => {
            tokio::time::sleep(d).await;
            // What Daraja's gateway (Apigee) says when its backend never answered.
            let body = json!({"fault": {"faultstring": "Gateway Timeout",
                "detail": {"errorcode": "messaging.adaptors.http.flow.GatewayTimeout"}}});
            return (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response();
        }
        None => {}
    }
    let mut inner = shared.inner.lock().expect("lock");
    let Some(txn) = inner.txns.get_mut(checkout) else {
        drop(inner);
        return refuse(
            &shared,
            400,
            "400.002.02",
            "Bad Request - Invalid CheckoutRequestID",
        );
    };
    if txn.pending_queries > 0 || txn.callback_body.is_none() {
        txn.pending_queries = txn.pending_queries.saturating_sub(1);
        return fault(500, "500.001.1001", "The transaction is being processed");
    }
    let (code, desc) = txn.script.outcome.result();
    Json(json!({
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": checkout,
        "ResultCode": code.to_string(),
        "ResultDesc": desc,
    }))
    .into_response()
}
