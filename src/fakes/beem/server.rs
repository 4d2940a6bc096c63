//! The fake's HTTP side: send (auth, load, script, field checks), pull, balance, and the
//! reports it posts.

use super::*;
use crate::domain::Segments;

/// Beem's error body shape (`code`, `message`). Its codes are not published; these are the
/// fake's own and a client must treat any of them as terminal.
pub(super) fn error(status: u16, code: i64, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

fn refuse(shared: &Shared, status: u16, code: i64, message: &str) -> Response {
    shared
        .inner
        .lock()
        .expect("lock")
        .refusals
        .push(format!("{code} {message}"));
    error(status, code, message)
}

fn authorised(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{SECRET_KEY}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn unauthorised(shared: &Shared) -> Response {
    refuse(shared, 401, 120, "Invalid Authentication Parameters")
}

fn text_or_number(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A send's source_addr, encoding, message and (recipient_id, dest_addr) pairs.
type SendFields = (String, i64, String, Vec<(String, String)>);

/// The send's fields as Beem checks them, or what is wrong.
fn read_send(body: &Value) -> Result<SendFields, String> {
    let source = body["source_addr"].as_str().ok_or("source_addr")?;
    let encoding = body["encoding"].as_i64().filter(|e| *e == 0 || *e == 1);
    let encoding = encoding.ok_or("encoding")?;
    if !body["schedule_time"].is_string() {
        return Err("schedule_time".into());
    }
    let message = body["message"].as_str().filter(|m| !m.is_empty());
    let message = message.ok_or("message")?;
    let list = body["recipients"].as_array().filter(|r| !r.is_empty());
    let mut recipients = Vec::new();
    for r in list.ok_or("recipients")? {
        let id = text_or_number(&r["recipient_id"]).ok_or("recipient_id")?;
        let dest = r["dest_addr"].as_str().ok_or("dest_addr")?;
        recipients.push((id, dest.to_string()));
    }
    Ok((source.into(), encoding, message.into(), recipients))
}

pub(super) async fn send(State(shared): St, headers: HeaderMap, body: String) -> Response {
    shared
        .inner
        .lock()
        .expect("lock")
        .requests
        .push(body.clone());
    if !authorised(&headers) {
        return unauthorised(&shared);
    }
    let Some(_answering) = Traffic::admit(&shared.traffic) else {
        return error(429, 429, "Too Many Requests");
    };
    let behaviour = shared
        .inner
        .lock()
        .expect("lock")
        .script
        .pop_front()
        .unwrap_or(Behaviour::Accept);
    match behaviour {
        Behaviour::ServerError(status) => return error(status, status.into(), "Internal Error"),
        Behaviour::RateLimit(secs) => {
            let mut r = error(429, 429, "Too Many Requests");
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().expect("header"));
            return r;
        }
        Behaviour::Accept | Behaviour::Hang(_) | Behaviour::DropAnswer => {}
    }
    let parsed = serde_json::from_str::<Value>(&body).map_err(|e| e.to_string());
    let (source, encoding, message, recipients) = match parsed.and_then(|v| read_send(&v)) {
        Ok(fields) => fields,
        Err(field) => return refuse(&shared, 400, 113, &format!("Invalid parameter: {field}")),
    };
    if source != SOURCE_ADDR {
        return refuse(&shared, 400, 111, "Invalid Sender Id");
    }
    let segments = Segments::count(&message).count;
    let (answer, send) = {
        let mut inner = shared.inner.lock().expect("lock");
        let request_id = inner.next_request_id;
        inner.next_request_id += 1;
        let mut seen = HashSet::new();
        let (mut valid, mut invalid, mut duplicates) = (0u64, 0u64, 0u64);
        let mut fakes = Vec::new();
        for (recipient_id, dest_addr) in recipients {
            let shaped = (9..=15).contains(&dest_addr.len())
                && dest_addr.bytes().all(|b| b.is_ascii_digit());
            let ok = if !seen.insert(dest_addr.clone()) {
                duplicates += 1;
                false
            } else if !shaped || inner.invalid.contains(&dest_addr) {
                invalid += 1;
                false
            } else {
                valid += 1;
                true
            };
            fakes.push(FakeRecipient {
                recipient_id,
                dest_addr,
                valid: ok,
                status: if ok { "PENDING" } else { "INVALID" }.into(),
            });
        }
        let charge = inner.price * Decimal::from(valid * u64::from(segments));
        inner.balance -= charge;
        let send = FakeSend {
            request_id,
            source_addr: source,
            message,
            encoding,
            segments,
            recipients: fakes,
        };
        inner.sends.push(send.clone());
        let answer = json!({
            "successful": true, "request_id": request_id, "code": 100,
            "message": "Message Submitted Successfully",
            "valid": valid, "invalid": invalid, "duplicates": duplicates,
        });
        (answer, send)
    };
    schedule_reports(&shared, &send);
    if let Behaviour::Hang(after) = behaviour {
        tokio::time::sleep(after).await;
    }
    if behaviour == Behaviour::DropAnswer {
        let mut cut = answer.to_string();
        cut.truncate(cut.len() / 2);
        return ([("content-type", "application/json")], cut).into_response();
    }
    Json(answer).into_response()
}

/// After the set delay each valid recipient reaches its final status (whether or not a report
/// URL is set: the network delivers regardless), and its report is posted when one is (again
/// while refused, for the set time).
fn schedule_reports(shared: &Arc<Shared>, send: &FakeSend) {
    let (url, delay, retry_for, statuses) = {
        let inner = shared.inner.lock().expect("lock");
        let statuses: Vec<(String, String, String)> = send
            .recipients
            .iter()
            .filter(|r| r.valid)
            .map(|r| {
                let status = inner.final_status.get(&r.dest_addr).cloned();
                (
                    r.recipient_id.clone(),
                    r.dest_addr.clone(),
                    status.unwrap_or("DELIVERED".into()),
                )
            })
            .collect();
        (
            inner.report_url.clone(),
            inner.report_delay,
            inner.report_retry_for,
            statuses,
        )
    };
    let shared = shared.clone();
    let request_id = send.request_id;
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for (recipient_id, dest_addr, status) in statuses {
            set_status(&shared, request_id, &recipient_id, &status);
            let Some(url) = &url else { continue };
            let body = json!({
                "request_id": request_id, "recipient_id": recipient_id,
                "dest_addr": dest_addr, "status": status,
            })
            .to_string();
            let started = tokio::time::Instant::now();
            loop {
                let answer = post_report(&shared, url, &body).await;
                if answer.is_some_and(|s| (200..300).contains(&s)) || started.elapsed() >= retry_for
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
}

/// Posts one report and records it with the receiver's status (`None`: no connection).
async fn post_report(shared: &Shared, url: &str, body: &str) -> Option<u16> {
    let result = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let status = result.ok().map(|r| r.status().as_u16());
    shared
        .inner
        .lock()
        .expect("lock")
        .deliveries
        .push(Delivery {
            url: url.into(),
            body: body.into(),
            status,
        });
    status
}

fn set_status(shared: &Shared, request_id: u64, recipient_id: &str, status: &str) {
    let mut inner = shared.inner.lock().expect("lock");
    let send = inner.sends.iter_mut().find(|s| s.request_id == request_id);
    if let Some(r) = send.and_then(|s| {
        s.recipients
            .iter_mut()
            .find(|r| r.recipient_id == recipient_id)
    }) {
        r.status = status.into();
    }
}

pub(super) async fn pull(
    State(shared): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorised(&headers) {
        return unauthorised(&shared);
    }
    let (Some(dest), Some(request_id)) = (q.get("dest_addr"), q.get("request_id")) else {
        return refuse(
            &shared,
            400,
            113,
            "Invalid parameter: dest_addr, request_id",
        );
    };
    let mut inner = shared.inner.lock().expect("lock");
    inner.pulls.push((dest.clone(), request_id.clone()));
    match inner.pull_outage {
        Some(401) => return error(401, 120, "Invalid Authentication Parameters"),
        Some(status) => return error(status, status.into(), "Service Unavailable"),
        None => {}
    }
    let items: Vec<Value> = inner
        .sends
        .iter()
        .filter(|s| s.request_id.to_string() == *request_id)
        .flat_map(|s| s.recipients.iter().map(move |r| (s.request_id, r)))
        .filter(|(_, r)| r.valid && r.dest_addr == *dest)
        .map(|(id, r)| {
            json!({"request_id": id, "recipient_id": r.recipient_id,
                   "dest_addr": r.dest_addr, "status": r.status})
        })
        .collect();
    Json(Value::Array(items)).into_response()
}

pub(super) async fn balance(State(shared): St, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return unauthorised(&shared);
    }
    let balance = shared.inner.lock().expect("lock").balance;
    Json(json!({"data": {"credit_balance": balance.to_string()}})).into_response()
}
