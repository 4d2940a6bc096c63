//! Templates: the defaults in English and Swahili rendered, counted and charged by segments; a
//! company's own template; unknown variables refused at save, missing values at preview and as
//! per-item batch errors.

use sqlx::PgPool;

use super::*;

pub const LINK: &str = "https://pay.duka.co.tz/i";

impl Harness {
    /// An authenticated request to the API as the harness company; the status and the body.
    pub(super) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        if status >= 400 {
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            assert_eq!(ct, "application/problem+json", "{path}");
        }
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn reminder_vars(name: &str, invoice: &str, amount: Value) -> Value {
    json!({
        "customer_name": name,
        "invoice_number": invoice,
        "amount": amount,
        "due_date": "2026-11-24",
        "payment_link": format!("{LINK}/{}", &invoice[invoice.len() - 2..]),
    })
}

const EN: &str = "Hello Asha Mwinyi, this is a reminder that invoice INV-2026-0042 for TZS 20,000 was due on 24 Nov 2026. Please pay at https://pay.duka.co.tz/i/42. If you have already paid, please ignore this message. Thank you, Duka la Mama.";
const SW: &str = "Habari Juma Hamisi, tunakukumbusha kuwa ankara namba INV-2026-0043 ya TZS 150,000 ilipaswa kulipwa tarehe 24/11/2026. Tafadhali lipa kupitia https://pay.duka.co.tz/i/43. Kama umeshalipa, puuza ujumbe huu. Asante, Duka la Mama.";

#[sqlx::test]
async fn the_defaults_render_in_english_and_swahili_and_are_charged_by_segments(pool: PgPool) {
    let h = Harness::new(pool, 20).await;
    let (status, list) = h.call("GET", "/v1/templates", None).await;
    assert_eq!(status, 200);
    let defaults: Vec<(&str, &str, &str, &str)> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["language"].as_str().unwrap(),
                t["source"].as_str().unwrap(),
                t["encoding"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        defaults,
        [
            ("payment_reminder", "en", "default", "GSM-7"),
            ("payment_reminder", "sw", "default", "GSM-7")
        ]
    );
    assert_eq!(
        list["templates"][1]["variables"],
        json!([
            "customer_name",
            "invoice_number",
            "amount",
            "due_date",
            "payment_link",
            "company_name"
        ])
    );

    // Preview first: the text, its encoding, segments and price.
    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(json!({"template": "payment_reminder", "language": "sw",
                        "vars": reminder_vars("Juma Hamisi", "INV-2026-0043", json!("150000")),
                        "to": "0754123457"})),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p,
        json!({"text": SW, "language": "sw", "encoding": "GSM-7", "segments": 2,
               "characters": SW.chars().count(), "credits": 2,
               "credits_per_segment": 1})
    );

    let (status, v) = h
        .call(
            "POST",
            "/v1/messages/batch",
            Some(json!({"messages": [
                {"to": "0754123456", "template": "payment_reminder",
                 "vars": reminder_vars("Asha Mwinyi", "INV-2026-0042", json!(20000))},
                {"to": "0754123457", "template": "payment_reminder", "language": "sw",
                 "vars": reminder_vars("Juma Hamisi", "INV-2026-0043", json!("150000"))},
            ]})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        (v["accepted"].as_i64(), &v["rejected"]),
        (Some(2), &json!([]))
    );
    let rows: Vec<(String, String, i32, i64, Option<String>)> = sqlx::query_as(
        "SELECT to_number, body, segments, credits, invoice_number FROM messages ORDER BY to_number",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                "+255754123456".into(),
                EN.into(),
                2,
                2,
                Some("INV-2026-0042".into())
            ),
            (
                "+255754123457".into(),
                SW.into(),
                2,
                2,
                Some("INV-2026-0043".into())
            ),
        ]
    );

    h.drain(DRAIN).await;
    let sent: Vec<String> = h.twilio.messages().iter().map(|m| m.body.clone()).collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.contains(&EN.to_string()) && sent.contains(&SW.to_string()));
    let id = v["batch_id"].as_str().unwrap();
    let (_, report) = h.call("GET", &format!("/v1/batches/{id}"), None).await;
    assert_eq!(
        (
            report["by_status"]["sent"].as_i64(),
            report["credits_charged"].as_i64()
        ),
        (Some(2), Some(4))
    );
    assert_eq!(h.available().await, 16, "two messages of two segments");
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_company_template_replaces_the_default_for_that_company_only(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let short = "Habari {customer_name}, deni lako ni {amount}. Tafadhali lipa kabla ya {due_date}. {company_name}";
    let put = |body: &str, language: &str| json!({"body": body, "language": language});
    let (status, t) = h
        .call(
            "PUT",
            "/v1/templates/payment_reminder",
            Some(put(short, "sw")),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        (
            t["source"].as_str(),
            t["language"].as_str(),
            t["body"].as_str()
        ),
        (Some("company"), Some("sw"), Some(short))
    );
    let (status, _) = h
        .call(
            "PUT",
            "/v1/templates/payment_reminder",
            Some(put(short, "sw")),
        )
        .await;
    assert_eq!(status, 200, "a second save replaces");
    let (status, t) = h.call("GET", "/v1/templates/payment_reminder", None).await;
    assert_eq!(status, 200);
    let sources: Vec<(&str, &str)> = t["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["language"].as_str().unwrap(),
                t["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(sources, [("en", "default"), ("sw", "company")]);

    // A short Swahili reminder fits one segment, and costs one credit.
    let (status, v) = h
        .call(
            "POST",
            "/v1/messages/batch",
            Some(json!({"messages": [{"to": "0754123456", "template": "payment_reminder", "language": "sw",
                "vars": {"customer_name": "Neema", "amount": "1500", "currency": "KES", "due_date": "2026-12-01"}}]})),
        )
        .await;
    assert_eq!((status, v["accepted"].as_i64()), (202, Some(1)), "{v}");
    h.drain(DRAIN).await;
    assert_eq!(
        h.twilio.messages()[0].body,
        "Habari Neema, deni lako ni KES 1,500.00. Tafadhali lipa kabla ya 01/12/2026. Duka la Mama"
    );
    assert_eq!(h.available().await, 9);

    // Another company still has the default.
    let other = accounts::create_company(h.pool(), "Other", copcca_sms::domain::Country::KE)
        .await
        .unwrap();
    let token = h.app.token(Some(other.id), Role::Member).await;
    let theirs = h
        .app
        .get_json("/v1/templates/payment_reminder", &token)
        .await;
    assert_eq!(theirs["templates"][1]["source"], "default");
    let (status, _) = h.call("GET", "/v1/templates/no_such_template", None).await;
    assert_eq!(status, 404);
    h.audit_clean().await;
}

#[sqlx::test]
async fn unknown_variables_and_bad_fields_are_refused_at_save(pool: PgPool) {
    let h = Harness::new(pool, 0).await;
    let (status, p) = h
        .call(
            "PUT",
            "/v1/templates/payment_reminder",
            Some(json!({"body": "Hi {customer_nmae}, pay {amount} by {due} {", "language": "en"})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("validation_failed")),
        "{p}"
    );
    let errors = p["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{p}");
    assert!(errors.iter().all(|e| e["field"] == "body"));
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown variable {customer_nmae}; the variables are {customer_name}"),
        "{p}"
    );
    assert!(errors[1]["message"].as_str().unwrap().contains("{due}"));
    assert!(
        errors[2]["message"]
            .as_str()
            .unwrap()
            .contains("never closed")
    );

    let (status, p) = h
        .call(
            "PUT",
            "/v1/templates/Bad%20Name",
            Some(json!({"body": "", "language": "fr"})),
        )
        .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "language", "body"], "{p}");
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM templates")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(saved, 0);
}

#[sqlx::test]
async fn missing_values_are_refused_at_preview_and_per_item_in_a_batch(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let mut vars = reminder_vars("Asha", "INV-2026-0042", json!(20000));
    vars.as_object_mut().unwrap().remove("due_date");
    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(json!({"template": "payment_reminder", "vars": vars})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("missing_variable")),
        "{p}"
    );
    assert_eq!(
        p["errors"],
        json!([{"field": "vars.due_date", "message": "no value for {due_date}"}])
    );
    assert_eq!(p["variables"], json!(["due_date"]));

    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(json!({"template": "no_such", "vars": {}})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("unknown_template"))
    );
    // An ad-hoc body is checked as a save would be, and priced for the number given.
    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(json!({"body": "{customer_name}: {total}", "vars": {}})),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("body"))
    );
    let (status, p) = h
        .call(
            "POST",
            "/v1/templates/preview",
            Some(json!({"body": "Karibu {customer_name} 🙂", "vars": {"customer_name": "Zawadi"}, "to": "+254712123456"})),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (
            p["text"].as_str(),
            p["encoding"].as_str(),
            p["segments"].as_i64(),
            p["credits"].as_i64()
        ),
        (Some("Karibu Zawadi 🙂"), Some("UCS-2"), Some(1), Some(1))
    );

    let ok = reminder_vars("Asha", "INV-2026-0042", json!(20000));
    let mut bad_amount = ok.clone();
    bad_amount["amount"] = json!("20,000");
    let (status, v) = h
        .call(
            "POST",
            "/v1/messages/batch",
            Some(json!({"messages": [
                {"to": "0754123456", "template": "payment_reminder", "vars": ok},
                {"to": "0754123457", "template": "payment_reminder", "vars": vars},
                {"to": "0754123458", "template": "payment_reminder", "vars": bad_amount},
                {"to": "0754123459", "template": "reminder_v2", "vars": ok},
                {"to": "0754123460", "template": "payment_reminder", "language": "fr", "vars": ok},
                {"to": "0754123461", "template": "payment_reminder", "body": "both"},
                {"to": "0754123462", "body": "Plain reminder"},
            ]})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["accepted"], 2);
    let rejected: Vec<(i64, &str, &str)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_i64().unwrap(),
                r["code"].as_str().unwrap(),
                r["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rejected[0],
        (1, "missing_variable", "no value for {due_date}")
    );
    assert_eq!((rejected[1].0, rejected[1].1), (2, "invalid_variable"));
    assert!(
        rejected[1]
            .2
            .starts_with("bad value for {amount}: \"20,000\""),
        "{v}"
    );
    assert_eq!((rejected[2].0, rejected[2].1), (3, "unknown_template"));
    assert_eq!((rejected[3].0, rejected[3].1), (4, "unknown_template"));
    assert_eq!((rejected[4].0, rejected[4].1), (5, "invalid_body"));
    assert_eq!(rejected.len(), 5);
    let holes: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE body LIKE '%{%'")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(holes, 0, "never a message with a hole");
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 10 - 2 - 1);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_batch_of_templates_may_exceed_the_general_body_limit(pool: PgPool) {
    let h = Harness::new(pool, 3).await;
    let messages: Vec<Value> = (0..6_000)
        .map(|i| {
            json!({"to": format!("0754{i:06}"), "template": "payment_reminder", "language": "sw",
                   "vars": reminder_vars("Juma Hamisi", &format!("INV-2026-{i:04}"), json!(150000))})
        })
        .collect();
    let body = json!({"messages": messages, "allow_partial": true});
    assert!(
        body.to_string().len() > 1024 * 1024,
        "larger than MAX_BODY_BYTES"
    );
    let (status, v) = h.call("POST", "/v1/messages/batch", Some(body)).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["accepted"], 1, "two segments fit the three credits once");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 5_999);
    assert_eq!(v["rejected"][0]["code"], "insufficient_credits");
    h.drain(DRAIN).await;
    assert_eq!(h.available().await, 1);
    h.audit_clean().await;
}
