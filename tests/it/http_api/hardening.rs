//! What an attacker meets: the per-company request rate, body limits, tenant isolation on every
//! company endpoint, and the operator API closed to everyone but the operator.

use std::collections::BTreeSet;
use std::time::Duration;

use copcca_sms::accounts;
use copcca_sms::domain::{CompanyId, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::problem;
use crate::support::*;

fn prefix() -> String {
    format!("hard-{}", uuid::Uuid::new_v4().simple())
}

#[sqlx::test]
async fn a_company_over_its_request_rate_gets_429_with_retry_after_on_every_process(pool: PgPool) {
    let prefix = prefix();
    let limits = [
        ("REDIS_PREFIX", prefix.as_str()),
        ("API_RATE_PER_SECOND", "1"),
        ("API_RATE_BURST", "3"),
    ];
    // Two serve processes sharing one Redis: one budget per company between them.
    let first = spawn_app_with(pool.clone(), &limits).await;
    let second = spawn_app_with(pool.clone(), &limits).await;
    let a = company_with(&pool, 0).await.id;
    let b = company_with(&pool, 0).await.id;
    let token_a = first.token(Some(a), Role::Member).await;
    let token_b = first.token(Some(b), Role::Member).await;
    let balance = |app: &TestApp, token: &str| {
        app.client
            .get(app.url("/v1/balance"))
            .bearer_auth(token)
            .send()
    };

    for _ in 0..3 {
        assert_eq!(balance(&first, &token_a).await.unwrap().status(), 200);
    }
    let refused = balance(&second, &token_a).await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let p = problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(p["retry_after"], retry_after);
    problem(
        balance(&first, &token_a).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    // Another company has its own budget; the operator API is not company-limited.
    assert_eq!(balance(&second, &token_b).await.unwrap().status(), 200);
    let admin = first.token(None, Role::SuperAdmin).await;
    for _ in 0..5 {
        let r = first
            .client
            .get(first.url("/admin/settings/twilio"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Once the budget refills (burst / rate = 3 s) the company may call again, by any
    // credential: they share one budget.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let key = accounts::create_api_key(&pool, a, "crm").await.unwrap();
    for _ in 0..3 {
        let r = second
            .client
            .get(second.url("/v1/balance"))
            .header("x-api-key", key.secret.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    problem(
        balance(&first, &token_a).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

/// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length), as raw HTTP/1.1.
async fn post_chunked(base: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(512) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).unwrap());
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[sqlx::test]
async fn bodies_over_the_limit_are_413_problems_on_every_kind_of_route(pool: PgPool) {
    let prefix = prefix();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("MAX_BODY_BYTES", "2048"),
            ("REDIS_PREFIX", &prefix),
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
            ("TWILIO_AUTH_TOKEN", "token"),
            ("TWILIO_FROM", "+15005550006"),
        ],
    )
    .await;
    let company = company_with(&pool, 10).await.id;
    let token = app.token(Some(company), Role::Member).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let big = "x".repeat(4096);

    let r = app
        .client
        .post(app.url("/v1/messages"))
        .bearer_auth(&token)
        .json(&json!({"to": "+255754123456", "body": big}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let r = app
        .client
        .put(app.url("/admin/settings/stripe"))
        .bearer_auth(&admin)
        .json(&json!({"secret_key": big, "webhook_secret": "whsec_x"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A webhook reads its body raw: its 413 is a problem too.
    let r = app
        .client
        .post(app.url("/webhooks/twilio/status"))
        .header("x-twilio-signature", "x")
        .form(&[("MessageSid", "SM1"), ("Body", big.as_str())])
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Without a Content-Length the limit still holds.
    let one = json!({"to": "+255754123456", "body": big}).to_string();
    let (status, answer) = post_chunked(&app.base, "/v1/messages", &token, &one).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");

    for table in ["messages", "webhook_events", "system_settings"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}: a refused body wrote something");
    }
}

/// Another company's things, which the caller must neither see nor touch.
struct Victim {
    company: CompanyId,
    message: String,
    batch: String,
    /// On the victim's opt-out list.
    phone: String,
    /// The victim's message went to this number.
    to: String,
    /// The victim's bank-transfer purchase.
    payment: String,
}

/// A template only the victim has, and a word only its body contains.
const VICTIM_TEMPLATE: &str = "victim_note";
/// Another of the victim's templates, which no probe writes (so it stays the victim's alone).
const VICTIM_PRIVATE: &str = "victim_private";
const VICTIM_WORD: &str = "XYZZYVICTIM";

enum Expect {
    /// 404 `not_found`: the id names nothing the caller can see.
    NotFound,
    /// 4xx: the request is refused as it stands (e.g. a `company_id` field is not accepted).
    Refused,
    /// 2xx, showing only the caller's own data: no id of the victim anywhere in the answer.
    OwnDataOnly,
}

/// One request of the walk. `route` is the OpenAPI path template it exercises.
struct Probe {
    method: Method,
    route: &'static str,
    path: fn(&Victim) -> String,
    body: Option<fn(&Victim) -> Value>,
    expect: Expect,
}

/// Every company endpoint, each aimed at the victim. A route added to `/v1` needs a row here:
/// the walk fails for any `/v1` operation of the OpenAPI document that no row covers.
fn probes() -> Vec<Probe> {
    use Expect::*;
    vec![
        Probe {
            method: Method::GET,
            route: "/v1/balance",
            path: |v| format!("/v1/balance?company_id={}", v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::GET,
            route: "/v1/ledger",
            path: |v| format!("/v1/ledger?company_id={}", v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::GET,
            route: "/v1/packages",
            path: |v| format!("/v1/packages?company_id={}", v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::POST,
            route: "/v1/messages",
            path: |_| "/v1/messages".into(),
            body: Some(|v| json!({"to": v.to, "body": "x", "company_id": v.company})),
            expect: Refused,
        },
        Probe {
            method: Method::GET,
            route: "/v1/messages",
            path: |v| format!("/v1/messages?to={}", v.to.replace('+', "%2B")),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::GET,
            route: "/v1/messages",
            path: |v| format!("/v1/messages?before={}&company_id={}", v.message, v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::GET,
            route: "/v1/messages/{id}",
            path: |v| format!("/v1/messages/{}", v.message),
            body: None,
            expect: NotFound,
        },
        Probe {
            method: Method::POST,
            route: "/v1/messages/batch",
            path: |_| "/v1/messages/batch".into(),
            body: Some(
                |v| json!({"messages": [{"to": v.to, "body": "x"}], "company_id": v.company}),
            ),
            expect: Refused,
        },
        Probe {
            method: Method::GET,
            route: "/v1/batches/{id}",
            path: |v| format!("/v1/batches/{}", v.batch),
            body: None,
            expect: NotFound,
        },
        Probe {
            method: Method::POST,
            route: "/v1/opt-outs",
            path: |_| "/v1/opt-outs".into(),
            body: Some(|v| json!({"phone": v.phone, "company_id": v.company})),
            expect: Refused,
        },
        Probe {
            method: Method::GET,
            route: "/v1/opt-outs",
            path: |v| format!("/v1/opt-outs?company_id={}", v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::DELETE,
            route: "/v1/opt-outs/{phone}",
            path: |v| format!("/v1/opt-outs/{}", v.phone.replace('+', "%2B")),
            body: None,
            expect: NotFound,
        },
        Probe {
            method: Method::POST,
            route: "/v1/purchases",
            path: |_| "/v1/purchases".into(),
            body: Some(
                |v| json!({"package_id": "starter", "method": "bank_transfer", "company_id": v.company}),
            ),
            expect: Refused,
        },
        Probe {
            method: Method::GET,
            route: "/v1/purchases",
            path: |v| format!("/v1/purchases?company_id={}", v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::GET,
            route: "/v1/purchases/{id}",
            path: |v| format!("/v1/purchases/{}", v.payment),
            body: None,
            expect: NotFound,
        },
        Probe {
            method: Method::GET,
            route: "/v1/templates",
            path: |v| format!("/v1/templates?company_id={}", v.company),
            body: None,
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::GET,
            route: "/v1/templates/{name}",
            path: |_| format!("/v1/templates/{VICTIM_PRIVATE}"),
            body: None,
            expect: NotFound,
        },
        Probe {
            method: Method::PUT,
            route: "/v1/templates/{name}",
            path: |_| format!("/v1/templates/{VICTIM_TEMPLATE}"),
            body: Some(|_| json!({"body": "Our own note for {customer_name}", "language": "en"})),
            // The caller saves a template of its own under that name; the victim's is untouched.
            expect: OwnDataOnly,
        },
        Probe {
            method: Method::POST,
            route: "/v1/templates/preview",
            path: |_| "/v1/templates/preview".into(),
            body: Some(|_| json!({"template": VICTIM_TEMPLATE, "vars": {"customer_name": "Asha"}})),
            // Renders the caller's own template of that name (saved by the row above), never
            // the victim's.
            expect: OwnDataOnly,
        },
    ]
}

/// Everything of `company` the database holds, as text: equal before and after means untouched.
async fn footprint(pool: &PgPool, company: CompanyId) -> String {
    let mut out = Vec::new();
    for query in [
        "SELECT row_to_json(b)::text FROM balances b WHERE company_id = $1",
        "SELECT row_to_json(e)::text FROM ledger_entries e WHERE company_id = $1 ORDER BY id",
        "SELECT row_to_json(m)::text FROM messages m WHERE company_id = $1 ORDER BY id",
        "SELECT row_to_json(o)::text FROM opt_outs o WHERE company_id = $1 ORDER BY phone",
        "SELECT row_to_json(x)::text FROM message_batches x WHERE company_id = $1 ORDER BY id",
        "SELECT row_to_json(h)::text FROM holds h WHERE company_id = $1 ORDER BY id",
        "SELECT row_to_json(p)::text FROM payments p WHERE company_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM templates t WHERE company_id = $1 ORDER BY name, language",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(query)
            .bind(company)
            .fetch_all(pool)
            .await
            .unwrap();
        out.extend(rows);
    }
    out.join("\n")
}

#[sqlx::test]
async fn no_endpoint_lets_one_company_read_or_act_on_anothers_data(pool: PgPool) {
    let prefix = prefix();
    let app = spawn_app_with(
        pool.clone(),
        &[("REDIS_PREFIX", &prefix), ("API_RATE_PER_SECOND", "0")],
    )
    .await;
    let victim_company = company_with(&pool, 10).await.id;
    let victim_token = app.token(Some(victim_company), Role::Member).await;
    let as_victim = |method: Method, path: &str, body: Value| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&victim_token)
            .json(&body)
            .send()
    };
    let sent: Value = as_victim(
        Method::POST,
        "/v1/messages",
        json!({"to": "+255754123456", "body": "Habari"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let batch: Value = as_victim(
        Method::POST,
        "/v1/messages/batch",
        json!({"messages": [{"to": "+255754123457", "body": "Habari"}, {"to": "+255754123458", "body": "Habari"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let r = as_victim(
        Method::POST,
        "/v1/opt-outs",
        json!({"phone": "+255754000111"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let purchase: Value = as_victim(
        Method::POST,
        "/v1/purchases",
        json!({"package_id": "starter", "method": "bank_transfer"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for name in [VICTIM_TEMPLATE, VICTIM_PRIVATE] {
        let r = as_victim(
            Method::PUT,
            &format!("/v1/templates/{name}"),
            json!({"body": format!("{VICTIM_WORD} {{customer_name}}"), "language": "en"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
    }
    let victim = Victim {
        company: victim_company,
        message: sent["id"].as_str().unwrap().to_string(),
        batch: batch["batch_id"].as_str().unwrap().to_string(),
        phone: "+255754000111".into(),
        to: "+255754123456".into(),
        payment: purchase["id"].as_str().unwrap().to_string(),
    };
    let before = footprint(&pool, victim.company).await;

    // The table covers every company endpoint the service documents.
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/v1"))
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let probes = probes();
    let covered: BTreeSet<(String, String)> = probes
        .iter()
        .map(|p| (p.method.to_string(), p.route.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "add a row to probes() for each of these company endpoints: {missing:?}"
    );

    // The attacker: another company, as a member, an admin, and by API key.
    let attacker = company_with(&pool, 10).await.id;
    let member = app.token(Some(attacker), Role::Member).await;
    let company_admin = app.token(Some(attacker), Role::Admin).await;
    let key = accounts::create_api_key(&pool, attacker, "crm")
        .await
        .unwrap();
    let credentials: [(&str, &str, &str); 3] = [
        ("member", "authorization", &format!("Bearer {member}")),
        ("admin", "authorization", &format!("Bearer {company_admin}")),
        ("API key", "x-api-key", key.secret.expose()),
    ];
    let victim_ids = [
        victim.company.to_string(),
        victim.message.clone(),
        victim.batch.clone(),
        victim.phone.clone(),
        victim.payment.clone(),
        VICTIM_WORD.to_string(),
    ];
    for (who, header, value) in credentials {
        for probe in &probes {
            let path = (probe.path)(&victim);
            let mut req = app
                .client
                .request(probe.method.clone(), app.url(&path))
                .header(header, value);
            if let Some(body) = probe.body {
                req = req.json(&body(&victim));
            }
            let r = req.send().await.unwrap();
            let what = format!("{who}: {} {path}", probe.method);
            match probe.expect {
                Expect::NotFound => {
                    problem(r, StatusCode::NOT_FOUND, "not_found").await;
                }
                Expect::Refused => {
                    let status = r.status();
                    let text = r.text().await.unwrap();
                    assert!(status.is_client_error(), "{what}: {status} {text}");
                }
                Expect::OwnDataOnly => {
                    let status = r.status();
                    let text = r.text().await.unwrap();
                    assert!(status.is_success(), "{what}: {status} {text}");
                    for id in &victim_ids {
                        assert!(!text.contains(id.as_str()), "{what} showed {id}: {text}");
                    }
                    let body: Value = serde_json::from_str(&text).unwrap();
                    if let Some(c) = body.get("company_id") {
                        assert_eq!(c, &json!(attacker), "{what}");
                    }
                }
            }
        }
    }
    assert_eq!(
        footprint(&pool, victim.company).await,
        before,
        "the victim's data changed"
    );
    assert_audit_clean(&pool).await;
}

#[sqlx::test]
async fn every_admin_route_refuses_everyone_but_the_operator(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("API_RATE_PER_SECOND", "0")]).await;
    let company = company_with(&pool, 0).await.id;
    let member = app.token(Some(company), Role::Member).await;
    let company_admin = app.token(Some(company), Role::Admin).await;
    let key = accounts::create_api_key(&pool, company, "crm")
        .await
        .unwrap();
    // A member's token claiming the operator's role: roles come from our rows, not claims.
    let member_user = accounts::create_user(&pool, Some(company), Role::Member, None)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims_admin = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": member_user.id, "aud": "authenticated", "exp": now + 600,
                "role": "super_admin", "app_metadata": {"role": "super_admin"}}),
        &EncodingKey::from_secret(app.state.config.jwt_secret.expose().as_bytes()),
    )
    .unwrap();
    let callers = [
        ("member", "authorization", format!("Bearer {member}")),
        ("admin", "authorization", format!("Bearer {company_admin}")),
        ("API key", "x-api-key", key.secret.expose().to_string()),
        (
            "role claimed in the token",
            "authorization",
            format!("Bearer {claims_admin}"),
        ),
    ];

    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut walked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        if !template.starts_with("/admin") {
            continue;
        }
        // Every path parameter gets a well-formed id (so no 404 comes before the 403).
        let path: String = template
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    company.to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let request = |extra: Option<(&str, &str)>| {
                let mut req = app
                    .client
                    .request(method.clone(), app.url(&path))
                    .json(&json!({"credits": 5, "reason": "x"}));
                if let Some((h, v)) = extra {
                    req = req.header(h, v);
                }
                req.send()
            };
            for (who, header, value) in &callers {
                let r = request(Some((header, value))).await.unwrap();
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}: {method} {path}");
                problem(r, StatusCode::FORBIDDEN, "forbidden").await;
            }
            let r = request(None).await.unwrap();
            problem(r, StatusCode::UNAUTHORIZED, "missing_credentials").await;
            walked += 1;
        }
    }
    assert!(walked >= 7, "only {walked} admin operations documented");
    let settings: i64 = sqlx::query_scalar("SELECT count(*) FROM system_settings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(settings, 0);
    assert_eq!(available(&pool, company).await, 0);
}
