//! The fake's HTTP side: the Checkout Sessions endpoints, Stripe's form and idempotency rules, error bodies, and the JSON of sessions and charges.

use super::*;

pub(super) fn pay(s: &mut FakeSession) {
    s.payment_status = "paid".into();
    s.charge = Some(random_id("ch_", 24));
    s.amount_charged = s.amount_total;
}

/// `request` of an event no API call caused (the customer paid, the session lapsed).
pub(super) fn automatic() -> Value {
    json!({ "id": null, "idempotency_key": null })
}

pub(super) fn random_id(prefix: &str, len: usize) -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

pub(super) fn session_json(s: &FakeSession) -> Value {
    json!({
        "id": s.id, "object": "checkout.session",
        "amount_subtotal": s.amount_total, "amount_total": s.amount_total,
        "cancel_url": s.cancel_url, "client_reference_id": s.client_reference_id,
        "created": s.created, "currency": s.currency, "customer": null, "customer_details": null,
        "expires_at": s.expires_at, "livemode": false, "metadata": s.metadata, "mode": s.mode,
        "payment_intent": s.payment_intent, "payment_status": s.payment_status, "status": s.status,
        "success_url": s.success_url, "ui_mode": "hosted_page",
        "url": (s.status == "open").then_some(&s.url),
    })
}

pub(super) fn charge_json(s: &FakeSession) -> Value {
    json!({
        "id": s.charge, "object": "charge", "amount": s.amount_charged,
        "amount_captured": s.amount_charged, "amount_refunded": s.amount_refunded, "captured": true,
        "created": s.created, "currency": s.currency, "livemode": false,
        "metadata": s.payment_intent_metadata, "paid": true, "payment_intent": s.payment_intent,
        "refunded": s.amount_refunded >= s.amount_charged, "status": "succeeded",
    })
}

/// Stripe's error envelope.
pub(super) fn error_body(
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> String {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{code}"));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error }).to_string()
}

pub(super) fn respond(status: u16, body: String) -> Response {
    let mut response = (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert("request-id", random_id("req_", 14).parse().expect("header"));
    response
}

/// A status and body not yet sent (small, unlike a `Response`).
pub(super) type Answer = (u16, String);

pub(super) fn invalid(message: String, param: &str) -> Answer {
    (
        400,
        error_body("invalid_request_error", None, &message, Some(param)),
    )
}

/// The error Stripe gives for a scripted failure status.
pub(super) fn scripted_failure(status: u16) -> Response {
    let body = match status {
        429 => error_body(
            "invalid_request_error",
            Some("rate_limit"),
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            None,
        ),
        s if s >= 500 => error_body(
            "api_error",
            None,
            "Sorry, something went wrong. We've already been notified of the problem.",
            None,
        ),
        _ => error_body("invalid_request_error", None, "Scripted failure.", None),
    };
    respond(status, body)
}

/// `Authorization: Bearer <SECRET_KEY>`, or Stripe's 401.
pub(super) fn authenticate(headers: &HeaderMap) -> Result<(), Answer> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let message = match given {
        Some(key) if key == SECRET_KEY => return Ok(()),
        Some(key) => format!("Invalid API Key provided: {}", redact(key)),
        None => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').".into(),
    };
    Err((
        401,
        error_body("invalid_request_error", None, &message, None),
    ))
}

/// `sk_test_****abcd`, as Stripe echoes a wrong key.
pub(super) fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 12))
}

/// Parameters the create endpoint knows (others get Stripe's "unknown parameter").
pub(super) fn known_param(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "mode",
        "client_reference_id",
        "success_url",
        "cancel_url",
        "expires_at",
        "customer_email",
        "locale",
        "currency",
        "ui_mode",
    ];
    const PREFIXES: &[&str] = &[
        "line_items[",
        "metadata[",
        "payment_intent_data[metadata][",
        "payment_method_types[",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The bracket keys under `prefix[...]`, e.g. `metadata[payment_id]` -> `payment_id`.
pub(super) fn bracketed(params: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    params
        .iter()
        .filter_map(|(k, v)| {
            let inner = k
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            (!inner.contains('[')).then(|| (inner.to_string(), v.clone()))
        })
        .collect()
}

pub(super) fn fingerprint(path: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    format!(
        "POST {path} {}",
        serde_urlencoded::to_string(&sorted).unwrap_or_default()
    )
}

/// Builds a session from the form, or answers Stripe's 400 naming the parameter.
pub(super) fn new_session(params: &[(String, String)], now: i64) -> Result<FakeSession, Answer> {
    if let Some((k, _)) = params.iter().find(|(k, _)| !known_param(k)) {
        return Err(invalid(format!("Received unknown parameter: {k}"), k));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let require =
        |k: &str| get(k).ok_or_else(|| invalid(format!("Missing required param: {k}."), k));
    let mode = require("mode")?;
    if !["payment", "setup", "subscription"].contains(&mode.as_str()) {
        return Err(invalid(format!("Invalid mode: {mode}"), "mode"));
    }
    let success_url = require("success_url")?;
    let currency = require("line_items[0][price_data][currency]")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(invalid(
            format!(
                "Invalid currency: {currency}. Stripe currencies are three-letter lower-case ISO codes."
            ),
            "line_items[0][price_data][currency]",
        ));
    }
    let unit_amount = require("line_items[0][price_data][unit_amount]")?;
    let unit_amount: i64 = unit_amount.parse().ok().filter(|a| *a > 0).ok_or_else(|| {
        invalid(
            format!("Invalid positive integer: {unit_amount}"),
            "line_items[0][price_data][unit_amount]",
        )
    })?;
    let product_name = require("line_items[0][price_data][product_data][name]")?;
    let quantity = require("line_items[0][quantity]")?;
    let quantity: i64 = quantity.parse().ok().filter(|q| *q > 0).ok_or_else(|| {
        invalid(
            format!("Invalid positive integer: {quantity}"),
            "line_items[0][quantity]",
        )
    })?;
    let expires_at = match get("expires_at") {
        None => now + 24 * 3600,
        Some(raw) => {
            let at: i64 = raw
                .parse()
                .map_err(|_| invalid(format!("Invalid integer: {raw}"), "expires_at"))?;
            if at < now + 30 * 60 || at > now + 24 * 3600 {
                return Err(invalid(
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.".into(),
                    "expires_at",
                ));
            }
            at
        }
    };
    let id = random_id("cs_test_", 58);
    Ok(FakeSession {
        url: format!("https://checkout.stripe.com/c/pay/{id}"),
        id,
        mode,
        status: "open".into(),
        payment_status: "unpaid".into(),
        amount_total: unit_amount * quantity,
        currency,
        product_name,
        client_reference_id: get("client_reference_id"),
        metadata: bracketed(params, "metadata"),
        payment_intent_metadata: bracketed(params, "payment_intent_data[metadata]"),
        payment_intent: None,
        charge: None,
        amount_charged: 0,
        amount_refunded: 0,
        success_url,
        cancel_url: get("cancel_url"),
        created: now,
        expires_at,
    })
}

/// The answer to a reused `Idempotency-Key`: the saved result replayed, 400 when the parameters
/// differ, or 409 while the first request is still executing.
pub(super) fn replay(saved: &Saved, k: &str, print: &str) -> Response {
    if saved.fingerprint != print {
        return respond(
            400,
            error_body(
                "idempotency_error",
                None,
                &format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."
                ),
                None,
            ),
        );
    }
    match &saved.response {
        Some((status, body)) => {
            let mut r = respond(*status, body.clone());
            r.headers_mut()
                .insert("idempotent-replayed", "true".parse().expect("header"));
            r
        }
        None => respond(
            409,
            error_body(
                "idempotency_error",
                None,
                &format!(
                    "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {k}. Please try again later."
                ),
                None,
            ),
        ),
    }
}

pub(super) async fn create(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    const PATH: &str = "/v1/checkout/sessions";
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    inner.lock().expect("lock").requests.push(FakeRequest {
        method: "POST",
        path: PATH.into(),
        idempotency_key: key.clone(),
        params: params.clone(),
    });
    if let Err((status, body)) = authenticate(&headers) {
        return respond(status, body);
    }
    let (behaviour, delay) = {
        let mut inner = inner.lock().expect("lock");
        let behaviour = inner.script.pop_front().unwrap_or(Behaviour::Accept);
        (behaviour, inner.delay)
    };
    if let Behaviour::Fail(status) = behaviour {
        return scripted_failure(status);
    }
    let print = fingerprint(PATH, &params);
    let now = Utc::now().timestamp();
    // Look up, validate and claim the key in one critical section.
    let created = {
        let mut inner = inner.lock().expect("lock");
        if let Some(k) = &key
            && let Some(saved) = inner.idempotency.get(k)
        {
            return replay(saved, k, &print);
        }
        // Validation failures are not saved under the key (Stripe saves only once execution begins).
        let session = match new_session(&params, now) {
            Ok(s) => s,
            Err((status, body)) => return respond(status, body),
        };
        let response = match behaviour {
            Behaviour::FailSaved => (
                500,
                error_body(
                    "api_error",
                    None,
                    "Sorry, something went wrong. We've already been notified of the problem.",
                    None,
                ),
            ),
            _ => {
                let body = session_json(&session).to_string();
                inner.sessions.push(session);
                (200, body)
            }
        };
        if let Some(k) = &key {
            inner.idempotency.insert(
                k.clone(),
                Saved {
                    fingerprint: print,
                    response: delay.is_none().then(|| response.clone()),
                },
            );
        }
        response
    };
    if let Some(d) = delay {
        // Stripe finishes the request even when the client hangs up (and the server then drops
        // this handler), so the key is released by a task of its own.
        let finish = {
            let (inner, created) = (inner.clone(), created.clone());
            async move {
                tokio::time::sleep(d).await;
                if let Some(k) = key
                    && let Some(saved) = inner.lock().expect("lock").idempotency.get_mut(&k)
                {
                    saved.response = Some(created);
                }
            }
        };
        let _ = tokio::spawn(finish).await;
    }
    respond(created.0, created.1)
}

pub(super) async fn retrieve(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let delay = {
        let mut inner = inner.lock().expect("lock");
        inner.requests.push(FakeRequest {
            method: "GET",
            path: format!("/v1/checkout/sessions/{id}"),
            idempotency_key: None,
            params: Vec::new(),
        });
        inner.delay
    };
    if let Err((status, body)) = authenticate(&headers) {
        return respond(status, body);
    }
    let scripted = inner.lock().expect("lock").retrieve_script.pop_front();
    if let Some(status) = scripted {
        return retrieve_failure(status, &id);
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let found = inner
        .lock()
        .expect("lock")
        .sessions
        .iter()
        .find(|s| s.id == id)
        .map(session_json);
    match found {
        Some(s) => respond(200, s.to_string()),
        None => respond(404, no_such_session(&id)),
    }
}

/// Stripe's 404 for a session it does not hold (for this key's account and mode).
pub(super) fn no_such_session(id: &str) -> String {
    error_body(
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such checkout.session: '{id}'"),
        Some("session"),
    )
}

/// The error Stripe gives a session read for a scripted failure status: a rolled (expired) key
/// for 401, an unknown session for 404, otherwise as [`scripted_failure`].
pub(super) fn retrieve_failure(status: u16, id: &str) -> Response {
    match status {
        401 => respond(
            401,
            error_body(
                "invalid_request_error",
                None,
                &format!("Expired API Key provided: {}", redact(SECRET_KEY)),
                None,
            ),
        ),
        404 => respond(404, no_such_session(id)),
        s => scripted_failure(s),
    }
}

/// `POST /v1/refunds` with `payment_intent`: refunds what is left of its charge, answers the
/// refund, then (as Stripe does, a moment later) sends `charge.refunded`. A repeated
/// `Idempotency-Key` answers the same refund and refunds nothing more.
pub(super) async fn create_refund(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: String,
) -> Response {
    const PATH: &str = "/v1/refunds";
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.lock().requests.push(FakeRequest {
        method: "POST",
        path: PATH.into(),
        idempotency_key: key.clone(),
        params: params.clone(),
    });
    if let Err((status, body)) = authenticate(&headers) {
        return respond(status, body);
    }
    if let Some(saved) = key
        .as_ref()
        .and_then(|k| fake.lock().refunds.get(k).cloned())
    {
        return respond(200, saved);
    }
    let Some(pi) = params
        .iter()
        .find(|(k, _)| k == "payment_intent")
        .map(|(_, v)| v.clone())
    else {
        let body = error_body(
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: payment_intent.",
            Some("payment_intent"),
        );
        return respond(400, body);
    };
    let refunded = {
        let mut inner = fake.lock();
        let found = inner.sessions.iter_mut().find(|s| {
            s.payment_intent.as_deref() == Some(pi.as_str()) && s.payment_status == "paid"
        });
        match found {
            None => None,
            Some(s) if s.amount_refunded >= s.amount_charged => Some(Err(())),
            Some(s) => {
                let previous = s.amount_refunded;
                let amount = s.amount_charged - previous;
                s.amount_refunded = s.amount_charged;
                let refund = json!({
                    "id": random_id("re_", 24), "object": "refund", "amount": amount,
                    "charge": s.charge, "currency": s.currency, "payment_intent": pi,
                    "status": "succeeded", "created": Utc::now().timestamp(),
                })
                .to_string();
                let event = json!({ "object": charge_json(s),
                    "previous_attributes": { "amount_refunded": previous } });
                Some(Ok((refund, event)))
            }
        }
    };
    let (refund, event) = match refunded {
        None => {
            let body = error_body(
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such payment_intent: '{pi}'"),
                Some("payment_intent"),
            );
            return respond(400, body);
        }
        Some(Err(())) => {
            let body = error_body(
                "invalid_request_error",
                Some("charge_already_refunded"),
                "Charge has already been refunded.",
                None,
            );
            return respond(400, body);
        }
        Some(Ok(r)) => r,
    };
    if let Some(k) = key {
        fake.lock().refunds.insert(k.clone(), refund.clone());
    }
    let request = json!({ "id": random_id("req_", 14), "idempotency_key": null });
    tokio::spawn(async move {
        fake.emit_data("charge.refunded", event, request).await;
    });
    respond(200, refund)
}
