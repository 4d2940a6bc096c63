//! Tenant isolation: a table of every company endpoint, each aimed at another company's ids, run
//! as a member, a company admin and an API key; nothing of the other company is shown or changed.

use std::collections::BTreeSet;

use copcca_sms::accounts;
use copcca_sms::domain::{CompanyId, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::problem;
use crate::support::*;

fn prefix() -> String {
    format!("tenancy-{}", uuid::Uuid::new_v4().simple())
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
            method: Method::GET,
            route: "/v1/payment-methods",
            path: |v| format!("/v1/payment-methods?company_id={}", v.company),
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
