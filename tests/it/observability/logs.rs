//! JSON logs from the real binary: a request id on every request's lines, the job id on every
//! job's lines, and no secret anywhere, in an answer or a log line.

use std::time::Duration;

use copcca_sms::accounts;
use copcca_sms::domain::{Country, CreditDelta, Role};
use copcca_sms::fakes::africastalking::{self as fake_at, FakeAfricasTalking};
use copcca_sms::fakes::beem::{self as fake_beem, FakeBeem};
use copcca_sms::fakes::twilio::{self as fake, FakeTwilio};
use copcca_sms::http::JwtKeys;
use copcca_sms::ledger;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{Service, eventually, json_lines};

const JWT_SECRET: &str = "observability-test-jwt-secret-0123456789";
/// The shape of a payment's callback token (32 random bytes, base64url).
const MPESA_CALLBACK_TOKEN: &str = "kq3VZr8x0NeverLoggedCallbackToken0000000000";
const SETTINGS_KEY: &str = "5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b5aa765d61d8327deb882cf99";

/// A field of the event's spans (the current one or any parent).
fn span_field<'a>(line: &'a Value, field: &str) -> Option<&'a Value> {
    line["span"]
        .get(field)
        .or_else(|| line["spans"].as_array()?.iter().find_map(|s| s.get(field)))
}

fn jwt_for(user: copcca_sms::domain::UserId) -> String {
    JwtKeys::new(&crate::support::config(&[("JWT_SECRET", JWT_SECRET)]))
        .issue(user, chrono::Duration::hours(1))
}

async fn company_with_credits(pool: &PgPool, credits: i64) -> copcca_sms::domain::CompanyId {
    let company = accounts::create_company(pool, "Duka", Country::TZ)
        .await
        .unwrap();
    ledger::adjust(
        &mut pool.acquire().await.unwrap(),
        uuid::Uuid::now_v7(),
        company.id,
        CreditDelta::new(credits).unwrap(),
        "test",
        "test",
    )
    .await
    .unwrap();
    company.id
}

/// One answer, kept whole (status, headers, body) for the secret check.
async fn call(req: reqwest::RequestBuilder, answers: &mut Vec<String>) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = format!("{:?}", r.headers());
    let text = r.text().await.unwrap();
    answers.push(format!("{status} {headers} {text}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[sqlx::test]
async fn secrets_never_appear_in_answers_or_logs(pool: PgPool) {
    let twilio = FakeTwilio::start().await.unwrap();
    let wrong_token = "wrong-twilio-token-0123456789abcdef";
    let stripe_key = "sk_test_51NeverShownStripeKey0000000000";
    let stripe_whsec = "whsec_NeverShownSigningSecret000000000";
    let mpesa_key = "NeverShownConsumerKey0000000001";
    let mpesa_secret = "NeverShownConsumerSecret00002";
    let mpesa_passkey = "NeverShownPasskey000000000000000000003";
    let wrong_beem_secret = "wrong-beem-secret-0123456789abcdef";
    let wrong_at_key = "atsk_wrong0123456789abcdef0123456789";
    let (beem, at) = (
        FakeBeem::start().await.unwrap(),
        FakeAfricasTalking::start().await.unwrap(),
    );
    let prefix = format!("obs-{}", uuid::Uuid::new_v4().simple());
    let twilio_base = twilio.base.to_string();
    let (beem_base, at_base) = (beem.base.to_string(), at.base.to_string());
    let env = [
        ("JWT_SECRET", JWT_SECRET),
        ("SETTINGS_KEY", SETTINGS_KEY),
        ("TWILIO_API_BASE", twilio_base.as_str()),
        ("BEEM_API_BASE", beem_base.as_str()),
        ("AT_API_BASE", at_base.as_str()),
        ("REDIS_PREFIX", prefix.as_str()),
        // As talkative as it gets for our code, and debug for every library.
        ("RUST_LOG", "debug,copcca_sms=trace"),
    ];
    let admin = accounts::create_user(&pool, None, Role::SuperAdmin, None)
        .await
        .unwrap();
    let admin_jwt = jwt_for(admin.id);
    let http = reqwest::Client::new();
    let mut answers = Vec::new();

    // The operator sets every provider through the API.
    let serve = Service::start(&pool, "serve", &env).await;
    let put = |path: &str, body: Value| {
        http.put(serve.url(path))
            .bearer_auth(&admin_jwt)
            .json(&body)
    };
    let twilio_body = |token: &str| json!({"account_sid": fake::ACCOUNT_SID, "auth_token": token, "from": fake::FROM});
    let (status, _) = call(
        put("/admin/settings/twilio", twilio_body(wrong_token)),
        &mut answers,
    )
    .await;
    assert_eq!(status, 422);
    let (status, view) = call(
        put("/admin/settings/twilio", twilio_body(fake::AUTH_TOKEN)),
        &mut answers,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let (status, _) = call(
        put(
            "/admin/settings/stripe",
            json!({"secret_key": stripe_key, "webhook_secret": stripe_whsec}),
        ),
        &mut answers,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        put(
            "/admin/settings/mpesa",
            json!({"consumer_key": mpesa_key, "consumer_secret": mpesa_secret,
                   "shortcode": "174379", "passkey": mpesa_passkey}),
        ),
        &mut answers,
    )
    .await;
    assert_eq!(status, 200);
    let beem_body = |secret: &str| json!({"api_key": fake_beem::API_KEY, "secret_key": secret, "source_addr": fake_beem::SOURCE_ADDR});
    let at_body = |key: &str| json!({"username": fake_at::USERNAME, "api_key": key, "sender_id": fake_at::SENDER_ID});
    for (path, refused, accepted) in [
        (
            "/admin/settings/beem",
            beem_body(wrong_beem_secret),
            beem_body(fake_beem::SECRET_KEY),
        ),
        (
            "/admin/settings/africastalking",
            at_body(wrong_at_key),
            at_body(fake_at::API_KEY),
        ),
    ] {
        let (status, _) = call(put(path, refused), &mut answers).await;
        assert_eq!(status, 422, "{path}");
        let (status, view) = call(put(path, accepted), &mut answers).await;
        assert_eq!(status, 200, "{path}: {view}");
    }
    for p in ["twilio", "stripe", "mpesa", "beem", "africastalking"] {
        let (status, view) = call(
            http.get(serve.url(&format!("/admin/settings/{p}")))
                .bearer_auth(&admin_jwt),
            &mut answers,
        )
        .await;
        assert_eq!((status, view["source"].as_str()), (200, Some("settings")));
    }
    let mut lines = serve.stop().await;

    // The next process sends with the account from settings, and checks Twilio's signed
    // callback with its token.
    let run = Service::start(&pool, "run", &env).await;
    let company = company_with_credits(&pool, 5).await;
    let member = accounts::create_user(&pool, Some(company), Role::Member, None)
        .await
        .unwrap();
    let member_jwt = jwt_for(member.id);
    let (status, sent) = call(
        http.post(run.url("/v1/messages"))
            .bearer_auth(&member_jwt)
            .json(&json!({"to": "+255754123456", "body": "Habari, malipo yamepokelewa", "quiet_hours": false})),
        &mut answers,
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    eventually(
        Duration::from_secs(30),
        "the fake Twilio to get the message",
        || {
            let n = twilio.messages().len();
            async move { n == 1 }
        },
    )
    .await;
    let sid = twilio.messages()[0].sid.clone();
    eventually(Duration::from_secs(10), "the message to be sent", || {
        let pool = pool.clone();
        let id = id.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM messages WHERE id = $1::uuid")
                .bind(&id)
                .fetch_one(&pool)
                .await
                .unwrap()
                == "sent"
        }
    })
    .await;
    assert_eq!(twilio.callback(&sid, "delivered", None).await.unwrap(), 204);
    let (status, message) = call(
        http.get(run.url(&format!("/v1/messages/{id}")))
            .bearer_auth(&member_jwt),
        &mut answers,
    )
    .await;
    assert_eq!(
        (status, message["status"].as_str()),
        (200, Some("delivered"))
    );
    let (status, _) = call(http.get(run.url("/metrics")), &mut answers).await;
    assert_eq!(status, 200);
    // An M-Pesa callback URL's token is its credential: its request's lines show the path
    // without it.
    let (status, _) = call(
        http.post(run.url(&format!("/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}")))
            .body("{}"),
        &mut answers,
    )
    .await;
    assert_eq!(status, 404);
    lines.extend(run.stop().await);

    // The logs were really captured, as JSON, and say what happened.
    let parsed = json_lines(&lines);
    let said = |text: &str| parsed.iter().any(|l| l["message"] == text);
    assert!(said("Twilio settings stored"), "{lines:#?}");
    assert!(said("finished processing request"));
    assert!(lines.len() > 50, "only {} log lines", lines.len());

    // No secret, nor any part of one beyond what a mask shows (its last four characters).
    let everything = format!("{}\n{}", lines.join("\n"), answers.join("\n"));
    for secret in [
        fake::AUTH_TOKEN,
        wrong_token,
        stripe_key,
        stripe_whsec,
        mpesa_key,
        mpesa_secret,
        mpesa_passkey,
        wrong_beem_secret,
        fake_beem::API_KEY,
        fake_beem::SECRET_KEY,
        wrong_at_key,
        fake_at::API_KEY,
        SETTINGS_KEY,
        JWT_SECRET,
        admin_jwt.as_str(),
        member_jwt.as_str(),
        MPESA_CALLBACK_TOKEN,
    ] {
        let hidden = &secret[..secret.len() - 4];
        assert!(
            !everything.contains(hidden),
            "{hidden:?} appeared in an answer or a log line"
        );
    }
    assert!(
        answers.iter().any(|a| a.contains(&format!(
            "****{}",
            &fake::AUTH_TOKEN[fake::AUTH_TOKEN.len() - 4..]
        ))),
        "the views show masks"
    );
}

#[sqlx::test]
async fn json_logs_carry_the_request_id_the_job_id_and_what_was_created(pool: PgPool) {
    let twilio = FakeTwilio::start().await.unwrap();
    let prefix = format!("obs-{}", uuid::Uuid::new_v4().simple());
    let twilio_base = twilio.base.to_string();
    let run = Service::start(
        &pool,
        "run",
        &[
            ("JWT_SECRET", JWT_SECRET),
            ("TWILIO_ACCOUNT_SID", fake::ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", fake::AUTH_TOKEN),
            ("TWILIO_FROM", fake::FROM),
            ("TWILIO_API_BASE", twilio_base.as_str()),
            ("REDIS_PREFIX", prefix.as_str()),
            ("RUST_LOG", "info,copcca_sms=debug"),
        ],
    )
    .await;
    let company = company_with_credits(&pool, 5).await;
    let member = accounts::create_user(&pool, Some(company), Role::Member, None)
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(run.url("/v1/messages"))
        .bearer_auth(jwt_for(member.id))
        .header("x-request-id", "req-observability-1")
        .json(&json!({"to": "+255754123456", "body": "Habari", "quiet_hours": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-request-id"], "req-observability-1");
    let message_id = r.json::<Value>().await.unwrap()["id"].clone();
    eventually(Duration::from_secs(30), "the send job to finish", || {
        let done = run.lines().iter().any(|l| l.contains("job done"));
        async move { done }
    })
    .await;
    // Without a request id of its own, the service makes one and returns it.
    let r = reqwest::get(run.url("/healthz")).await.unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    // A batch and a purchase name what they created on their request's line too.
    let created = async |path: &str, request_id: &str, body: Value| {
        let r = reqwest::Client::new()
            .post(run.url(path))
            .bearer_auth(jwt_for(member.id))
            .header("x-request-id", request_id)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json::<Value>().await.unwrap()
    };
    let batch = created(
        "/v1/messages/batch",
        "req-observability-batch",
        json!({"messages": [{"to": "+255754123457", "body": "Habari tena"}]}),
    )
    .await;
    let purchase = created(
        "/v1/purchases",
        "req-observability-purchase",
        json!({"package_id": "business", "method": "bank_transfer"}),
    )
    .await;
    let lines = json_lines(&run.stop().await);
    let request_line = |id: &str| {
        lines
            .iter()
            .find(|l| {
                l["message"] == "finished processing request"
                    && span_field(l, "request_id") == Some(&json!(id))
            })
            .unwrap_or_else(|| panic!("no request line with request id {id}: {lines:#?}"))
    };
    let line = request_line("req-observability-batch");
    assert_eq!(
        span_field(line, "batch_id"),
        Some(&batch["batch_id"]),
        "{line}"
    );
    let line = request_line("req-observability-purchase");
    assert_eq!(
        span_field(line, "payment_id"),
        Some(&purchase["id"]),
        "{line}"
    );

    let request = request_line("req-observability-1");
    assert_eq!(request["status"], 202, "{request}");
    assert_eq!(request["level"], "INFO");
    // The request's line names the message it created, and the job's lines name it too: the
    // caller's request id leads to every line of the message's sending.
    assert_eq!(
        span_field(request, "message_id"),
        Some(&message_id),
        "{request}"
    );
    assert!(
        lines
            .iter()
            .any(|l| span_field(l, "request_id") == Some(&json!(made))),
        "the generated id is on the request's lines too"
    );

    let job = lines
        .iter()
        .find(|l| l["message"] == "job done")
        .unwrap_or_else(|| panic!("no job line: {lines:#?}"));
    assert_eq!(span_field(job, "queue"), Some(&json!("sms")), "{job}");
    let job_id = span_field(job, "job_id").and_then(Value::as_str).unwrap();
    assert!(uuid::Uuid::parse_str(job_id).is_ok(), "{job}");
    let entry = span_field(job, "entry").and_then(Value::as_str).unwrap();
    assert!(entry.contains('-'), "a stream entry id: {job}");
    assert_eq!(span_field(job, "message_id"), Some(&message_id), "{job}");
}
