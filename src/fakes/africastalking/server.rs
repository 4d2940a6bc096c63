//! The fake's HTTP side: send (auth, load, script, field checks, per-number answers), user
//! data, and the form-encoded reports it posts.

use rand::Rng;

use super::*;
use crate::domain::Segments;

/// AT answers refused auth with 401 and a plain-text body.
fn unauthorised(shared: &Shared) -> Response {
    refuse(shared, 401, "The supplied authentication is invalid")
}

fn refuse(shared: &Shared, status: u16, text: &str) -> Response {
    shared
        .inner
        .lock()
        .expect("lock")
        .refusals
        .push(format!("{status} {text}"));
    plain(status, text)
}

fn plain(status: u16, text: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "text/plain")],
        text.to_string(),
    )
        .into_response()
}

fn api_key_ok(headers: &HeaderMap) -> bool {
    headers.get("apikey").and_then(|v| v.to_str().ok()) == Some(API_KEY)
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn message_id() -> String {
    let mut rng = rand::rng();
    let hex: String = (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("hex"))
        .collect();
    format!("ATXid_{hex}")
}

/// The network a number is on, for the report (Vodacom TZ, else Safaricom KE).
fn network_code(number: &str) -> &'static str {
    if number.starts_with("+255") {
        "64004"
    } else {
        "63902"
    }
}

fn money(currency: &str, amount: Decimal) -> String {
    format!("{currency} {:.4}", amount)
}

pub(super) async fn send(State(shared): St, headers: HeaderMap, body: String) -> Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    shared
        .inner
        .lock()
        .expect("lock")
        .requests
        .push(params.clone());
    if !api_key_ok(&headers) || get("username").as_deref() != Some(USERNAME) {
        return unauthorised(&shared);
    }
    let Some(_answering) = Traffic::admit(&shared.traffic) else {
        return plain(429, "Too Many Requests");
    };
    let behaviour = shared
        .inner
        .lock()
        .expect("lock")
        .script
        .pop_front()
        .unwrap_or(Behaviour::Accept);
    match behaviour {
        Behaviour::ServerError(status) => return plain(status, "Internal Server Error"),
        Behaviour::RateLimit(secs) => {
            let mut r = plain(429, "Too Many Requests");
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().expect("header"));
            return r;
        }
        Behaviour::Accept | Behaviour::Hang(_) | Behaviour::DropAnswer => {}
    }
    if !wants_json(&headers) {
        // The real API answers XML then; a client of ours must ask for JSON.
        return refuse(&shared, 406, "Accept: application/json expected");
    }
    let (Some(to), Some(text)) = (get("to"), get("message")) else {
        return refuse(
            &shared,
            400,
            "Request is missing required form field 'to' or 'message'",
        );
    };
    if text.is_empty() || to.is_empty() {
        return refuse(&shared, 400, "Must have to and message");
    }
    for flag in ["bulkSMSMode", "enqueue"] {
        if get(flag).as_deref() != Some("1") {
            return refuse(&shared, 400, &format!("{flag} must be 1"));
        }
    }
    let bad_sender = get("from").is_some_and(|f| f != SENDER_ID);
    let parts = Segments::count(&text).count;
    let (answer, send, index) = {
        let mut inner = shared.inner.lock().expect("lock");
        let mut entries = Vec::new();
        let mut recipients = Vec::new();
        let (mut sent, mut total) = (0usize, Decimal::ZERO);
        let numbers: Vec<String> = to.split(',').map(|n| n.trim().to_string()).collect();
        for number in &numbers {
            let shaped = number.strip_prefix('+').is_some_and(|d| {
                (9..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
            });
            let cost = inner.price * Decimal::from(parts);
            let code = if bad_sender {
                402
            } else if !shaped {
                403
            } else if let Some(code) = inner.failing.get(number) {
                *code
            } else if inner.balance < cost {
                405
            } else {
                101
            };
            let accepted = (100..=102).contains(&code);
            let id = accepted.then(message_id);
            let entry = if accepted {
                sent += 1;
                total += cost;
                inner.balance -= cost;
                json!({"statusCode": code, "number": number, "status": status_name(code),
                       "cost": money(&inner.currency, cost), "messageId": id, "messageParts": parts})
            } else {
                json!({"statusCode": code, "number": number, "status": status_name(code),
                       "cost": "0", "messageId": "None"})
            };
            entries.push(entry);
            recipients.push(FakeRecipient {
                number: number.clone(),
                status_code: code,
                message_id: id,
                parts,
                reported: None,
            });
        }
        let total = if sent == 0 {
            "0".to_string()
        } else {
            money(&inner.currency, total)
        };
        let message = format!("Sent to {sent}/{} Total Cost: {total}", numbers.len());
        let answer = json!({"SMSMessageData": {"Message": message, "Recipients": entries}});
        let send = FakeSend {
            params: params.clone(),
            recipients,
        };
        inner.sends.push(send.clone());
        (answer, send, inner.sends.len() - 1)
    };
    schedule_reports(&shared, index, &send);
    if let Behaviour::Hang(after) = behaviour {
        tokio::time::sleep(after).await;
    }
    if behaviour == Behaviour::DropAnswer {
        let mut cut = answer.to_string();
        cut.truncate(cut.len() / 2);
        let json = [("content-type", "application/json")];
        return (StatusCode::CREATED, json, cut).into_response();
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// Posts each accepted recipient's final report (form-encoded) after the set delay.
fn schedule_reports(shared: &Arc<Shared>, index: usize, send: &FakeSend) {
    let (url, delay, reports) = {
        let inner = shared.inner.lock().expect("lock");
        let reports: Vec<(String, String, FinalReport)> = send
            .recipients
            .iter()
            .filter_map(|r| Some((r.message_id.clone()?, r.number.clone())))
            .map(|(id, number)| {
                let report = inner.finals.get(&number).cloned();
                let report = report.unwrap_or(FinalReport {
                    status: "Success".into(),
                    failure_reason: None,
                });
                (id, number, report)
            })
            .collect();
        (inner.report_url.clone(), inner.report_delay, reports)
    };
    let Some(url) = url else { return };
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for (id, number, report) in reports {
            let mut form = vec![
                ("id", id.clone()),
                ("status", report.status.clone()),
                ("phoneNumber", number.clone()),
                ("networkCode", network_code(&number).into()),
                ("retryCount", "0".into()),
            ];
            if let Some(reason) = &report.failure_reason {
                form.push(("failureReason", reason.clone()));
            }
            let body = serde_urlencoded::to_string(&form).expect("form");
            let result = shared
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            let status = result.ok().map(|r| r.status().as_u16());
            let mut inner = shared.inner.lock().expect("lock");
            if let Some(r) = inner.sends[index]
                .recipients
                .iter_mut()
                .find(|r| r.message_id.as_deref() == Some(id.as_str()))
            {
                r.reported = Some(report.status.clone());
            }
            inner.deliveries.push(Delivery {
                url: url.clone(),
                body,
                status,
            });
        }
    });
}

pub(super) async fn user(
    State(shared): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !api_key_ok(&headers) || q.get("username").map(String::as_str) != Some(USERNAME) {
        return unauthorised(&shared);
    }
    let inner = shared.inner.lock().expect("lock");
    let balance = money(&inner.currency, inner.balance);
    Json(json!({"UserData": {"balance": balance}})).into_response()
}
