//! What the CRM, the buyers and the operator do meanwhile, through the public HTTP API: single
//! messages (some sent twice with one Idempotency-Key) and batches for several companies, and
//! credits bought by M-Pesa (its callback replayed concurrently), card (Stripe's events
//! redelivered concurrently and out of order) and bank transfer (approved twice at once). Every
//! request is retried with its own key while the service cannot answer (PostgreSQL down), as a
//! careful client does.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use url::Url;

use crate::accounts;
use crate::domain::{CompanyId, Country, CreditDelta, Role};
use crate::fakes::daraja::FakeDaraja;
use crate::fakes::stripe::FakeStripe;
use crate::http::auth::JwtKeys;
use crate::ledger;

/// How long a request is retried while the service answers 5xx or not at all.
const RETRY_FOR: Duration = Duration::from_secs(300);
/// Of the run's length, the part during which traffic is sent (the faults go on a little longer).
const TRAFFIC_SHARE: f64 = 0.8;

pub struct Tenant {
    pub id: CompanyId,
    pub country: Country,
    token: String,
}

/// The companies (each with a member's token and an opening balance) and the operator.
pub struct Tenants {
    pub companies: Vec<Tenant>,
    operator: String,
}

impl Tenants {
    pub async fn create(
        pool: &PgPool,
        jwt: &JwtKeys,
        companies: usize,
        opening_credits: i64,
    ) -> anyhow::Result<Self> {
        let ttl = chrono::Duration::days(1);
        let mut tenants = Vec::new();
        for i in 0..companies {
            let country = if i % 2 == 0 { Country::KE } else { Country::TZ };
            let company =
                accounts::create_company(pool, &format!("Chaos Traders {}", i + 1), country)
                    .await?;
            // The run goes on at any hour, at any pace: no quiet hours, no hourly quota.
            sqlx::query(
                "UPDATE companies SET sms_per_hour = 100000000, quiet_hours_start = '00:00',
                     quiet_hours_end = '00:00'
                 WHERE id = $1",
            )
            .bind(company.id)
            .execute(pool)
            .await?;
            let mut conn = pool.acquire().await?;
            ledger::adjust(
                &mut conn,
                uuid::Uuid::now_v7(),
                company.id,
                CreditDelta::new(opening_credits)?,
                "chaos run: opening balance",
                "chaos",
            )
            .await?;
            let member = accounts::create_user(pool, Some(company.id), Role::Member, None).await?;
            tenants.push(Tenant {
                id: company.id,
                country,
                token: jwt.issue(member.id, ttl),
            });
        }
        let operator = accounts::create_user(pool, None, Role::SuperAdmin, None).await?;
        Ok(Tenants {
            companies: tenants,
            operator: jwt.issue(operator.id, ttl),
        })
    }
}

/// 5xx answers and unanswered requests, by status (0: no answer), retried each time.
#[derive(Debug, Default)]
pub struct Retries(Mutex<BTreeMap<u16, usize>>);

impl Retries {
    fn note(&self, status: u16) {
        *self.0.lock().expect("lock").entry(status).or_default() += 1;
    }

    pub fn figures(&self) -> BTreeMap<u16, usize> {
        self.0.lock().expect("lock").clone()
    }
}

pub struct Api {
    client: reqwest::Client,
    base: Url,
    pub retries: Retries,
}

impl Api {
    pub fn new(base: Url) -> anyhow::Result<Self> {
        Ok(Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base,
            retries: Retries::default(),
        })
    }

    /// POSTs until the answer is not a 5xx (nor 429), for at most [`RETRY_FOR`], with the same
    /// Idempotency-Key every time. The status and the JSON body.
    async fn post(
        &self,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, token, key, body)
            .await
    }

    /// As [`Self::post`], any method.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let url = self.base.join(path.trim_start_matches('/'))?;
        let started = Instant::now();
        loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .bearer_auth(token)
                .json(body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            let status = match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    if status < 500 && status != 429 {
                        return Ok((status, r.json().await.unwrap_or(Value::Null)));
                    }
                    status
                }
                Err(_) => 0,
            };
            self.retries.note(status);
            if started.elapsed() > RETRY_FOR {
                bail!("{method} {path}: no answer but {status} for {RETRY_FOR:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Vodacom Tanzania's numbers (`+25575`): sent through Beem, falling back to Twilio.
pub const BEEM_PREFIX: &str = "25575";

/// The operator's routing table, as set through the admin API: Vodacom Tanzania through Beem
/// then Twilio, everything else through Twilio. Beem's report URL, from the answer.
pub async fn route_through_beem(api: &Api, tenants: &Tenants) -> anyhow::Result<String> {
    let rules = json!({"rules": [{"destination": BEEM_PREFIX, "routes": ["beem", "twilio"]}]});
    let (status, routes) = api
        .call(
            reqwest::Method::PUT,
            "/admin/routes",
            &tenants.operator,
            None,
            &rules,
        )
        .await?;
    if status != 200 {
        bail!("PUT /admin/routes answered {status}: {routes}");
    }
    let beem = routes["routes"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["route"] == "beem"));
    let url = beem.and_then(|r| r["report_url"].as_str());
    Ok(url
        .context("Beem configured, with a report URL")?
        .to_string())
}

/// What the traffic did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sent {
    pub single_requests: usize,
    pub batch_requests: usize,
    /// Single messages posted twice at once with one Idempotency-Key.
    pub idempotent_replays: usize,
    pub accepted: i64,
    pub rejected: i64,
    pub accepted_by_company: BTreeMap<CompanyId, i64>,
    pub errors: Vec<String>,
}

/// Sends `total` messages, spread over [`TRAFFIC_SHARE`] of `duration`.
pub async fn send_messages(
    api: &Api,
    tenants: &Tenants,
    seed: u64,
    total: usize,
    duration: Duration,
) -> Sent {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e4d_0001);
    let span = duration.mul_f64(TRAFFIC_SHARE);
    let started = Instant::now();
    let mut sent = Sent::default();
    let mut done = 0;
    while done < total {
        let tenant = &tenants.companies[rng.random_range(0..tenants.companies.len())];
        let size = if rng.random_bool(0.3) {
            1
        } else {
            rng.random_range(2..=100).min(total - done)
        };
        let items: Vec<Value> = (0..size)
            .map(|i| {
                json!({"to": number(&mut rng, tenant.country), "body": body(&mut rng, done + i)})
            })
            .collect();
        let key = uuid::Uuid::from_u128(rng.random()).to_string();
        let result = if size == 1 {
            let replay = rng.random_bool(0.2);
            sent.single_requests += 1;
            sent.idempotent_replays += usize::from(replay);
            single(api, tenant, &key, &items[0], replay).await
        } else {
            sent.batch_requests += 1;
            batch(api, tenant, &key, items).await
        };
        match result {
            Ok((accepted, rejected)) => {
                sent.accepted += accepted;
                sent.rejected += rejected;
                *sent.accepted_by_company.entry(tenant.id).or_default() += accepted;
            }
            Err(e) => sent.errors.push(format!("{e:#}")),
        }
        done += size;
        let due = span.mul_f64(done as f64 / total as f64);
        tokio::time::sleep_until((started + due).into()).await;
    }
    sent
}

/// One message; `replay`: the same request twice at once, which must accept it once.
async fn single(
    api: &Api,
    tenant: &Tenant,
    key: &str,
    item: &Value,
    replay: bool,
) -> anyhow::Result<(i64, i64)> {
    let post = || api.post("/v1/messages", &tenant.token, Some(key), item);
    let answers = if replay {
        let (a, b) = tokio::join!(post(), post());
        vec![a?, b?]
    } else {
        vec![post().await?]
    };
    let mut ids: Vec<&str> = Vec::new();
    for (status, body) in &answers {
        match status {
            202 => ids.push(body["id"].as_str().context("an id")?),
            // The twin still running under the same key: the first answer stands.
            409 if replay && body["code"] == "conflict" => {}
            _ => bail!("POST /v1/messages answered {status}: {body}"),
        }
    }
    ids.dedup();
    match ids.len() {
        0 => bail!("neither of two POST /v1/messages with one key was accepted: {answers:?}"),
        1 => Ok((1, 0)),
        _ => bail!("one Idempotency-Key accepted two messages: {ids:?}"),
    }
}

async fn batch(
    api: &Api,
    tenant: &Tenant,
    key: &str,
    items: Vec<Value>,
) -> anyhow::Result<(i64, i64)> {
    let n = items.len() as i64;
    let (status, body) = api
        .post(
            "/v1/messages/batch",
            &tenant.token,
            Some(key),
            &json!({ "messages": items }),
        )
        .await?;
    match status {
        202 => {
            let accepted = body["accepted"].as_i64().context("accepted")?;
            Ok((accepted, n - accepted))
        }
        _ => bail!("POST /v1/messages/batch answered {status}: {body}"),
    }
}

/// A mobile number of the company's country: Safaricom's 071x range in Kenya; in Tanzania
/// Vodacom's (Beem's route) for [`VODACOM_SHARE`] of them, else Tigo's 071x.
fn number(rng: &mut impl Rng, country: Country) -> String {
    let prefix = match country {
        Country::KE => "25471",
        Country::TZ if rng.random_bool(VODACOM_SHARE) => BEEM_PREFIX,
        Country::TZ => "25571",
    };
    format!("+{prefix}{:07}", rng.random_range(0..10_000_000))
}

/// Of Tanzanian numbers, the Vodacom ones (with half the companies Tanzanian: about a third of all).
const VODACOM_SHARE: f64 = 0.7;

/// A reminder of one or two segments.
fn body(rng: &mut impl Rng, n: usize) -> String {
    let text = format!("Chaos reminder {n}: invoice INV-{n:06} is due, please pay.");
    if rng.random_bool(0.2) {
        format!("{text} {}", "Thank you for your business. ".repeat(4))
    } else {
        text
    }
}

/// One purchase and what became of it at the provider's end.
#[derive(Debug, Clone, Serialize)]
pub struct Purchase {
    pub id: String,
    pub company: CompanyId,
    pub method: &'static str,
    pub credits: i64,
    /// What was done to it: `callback replayed 3x`, `events reordered`, `approved twice: 200 409`.
    pub how: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Bought {
    pub purchases: Vec<Purchase>,
    pub errors: Vec<String>,
}

const PACKAGES: [&str; 3] = ["starter", "business", "pro"];

/// Makes `count` purchases over [`TRAFFIC_SHARE`] of `duration`, a few at a time.
pub async fn buy_credits(
    api: &Api,
    tenants: &Tenants,
    providers: (&FakeDaraja, &FakeStripe),
    pool: &PgPool,
    seed: u64,
    count: usize,
    duration: Duration,
) -> Bought {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb0_0917);
    let span = duration.mul_f64(TRAFFIC_SHARE);
    let started = Instant::now();
    let mut plans: Vec<(Duration, usize, &'static str, &'static str, u64)> = (0..count)
        .map(|i| {
            let tenant = rng.random_range(0..tenants.companies.len());
            let method = match (i % 3, tenants.companies[tenant].country) {
                (0, Country::KE) => "mpesa",
                (0 | 1, _) => "card",
                _ => "bank_transfer",
            };
            (
                span.mul_f64(rng.random()),
                tenant,
                method,
                PACKAGES[rng.random_range(0..PACKAGES.len())],
                rng.random(),
            )
        })
        .collect();
    plans.sort_by_key(|p| p.0);
    let runs = plans
        .into_iter()
        .map(|(at, tenant, method, package, seed)| {
            let tenant = &tenants.companies[tenant];
            async move {
                tokio::time::sleep_until((started + at).into()).await;
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                buy(
                    api,
                    tenant,
                    &tenants.operator,
                    providers,
                    pool,
                    method,
                    package,
                    &mut rng,
                )
                .await
            }
        });
    let mut bought = Bought::default();
    for result in futures::future::join_all(runs).await {
        match result {
            Ok(p) => bought.purchases.push(p),
            Err(e) => bought.errors.push(format!("{e:#}")),
        }
    }
    bought
}

#[allow(clippy::too_many_arguments)]
async fn buy(
    api: &Api,
    tenant: &Tenant,
    operator: &str,
    (daraja, stripe): (&FakeDaraja, &FakeStripe),
    pool: &PgPool,
    method: &'static str,
    package: &str,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Purchase> {
    let mut request = json!({"package_id": package, "method": method});
    if method == "mpesa" {
        request["phone"] = json!("0712345678");
    }
    let key = uuid::Uuid::from_u128(rng.random()).to_string();
    let (status, purchase) = api
        .post("/v1/purchases", &tenant.token, Some(&key), &request)
        .await?;
    // 200: a replay of the key, after an earlier try got no answer or a 5xx.
    if !matches!(status, 200 | 201) {
        bail!("POST /v1/purchases ({method}) answered {status}: {purchase}");
    }
    let id = purchase["id"]
        .as_str()
        .context("a purchase id")?
        .to_string();
    let provider_ref = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT provider_ref FROM payments WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(pool)
        .await
    };
    let how = match method {
        "mpesa" => {
            // A replay may answer before the push's CheckoutRequestID is known (its first try
            // could not record it): Daraja's callback names it then.
            let started = Instant::now();
            let checkout = loop {
                if let Some(checkout) = provider_ref().await? {
                    break checkout;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    bail!("M-Pesa purchase {id} has no CheckoutRequestID after a minute");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            // The customer pays; Daraja's callback comes, then comes again, several at once.
            let started = Instant::now();
            while daraja.callback_body(&checkout).is_none() {
                if started.elapsed() > Duration::from_secs(60) {
                    bail!("the M-Pesa push {checkout} was never paid");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let times = rng.random_range(2..=5);
            futures::future::join_all((0..times).map(|_| daraja.replay_callback(&checkout))).await;
            format!("callback replayed {times}x at once")
        }
        "card" => {
            let session = provider_ref().await?.context("a Checkout Session")?;
            if rng.random_bool(0.5) {
                let paid = stripe.complete(&session, true).await;
                let times = rng.random_range(2..=4);
                stripe.redeliver(&paid.event_id, times, true).await;
                until_taken(stripe, &paid.event_id).await?;
                format!("checkout.session.completed redelivered {times}x at once")
            } else {
                // A delayed method: completed unpaid, then paid; the older event arrives again
                // after the newer one, and both at once.
                let completed = stripe.complete(&session, false).await;
                let paid = stripe.async_payment_succeeded(&session).await;
                let (a, b) = tokio::join!(
                    stripe.redeliver(&completed.event_id, 2, true),
                    stripe.redeliver(&paid.event_id, 2, true)
                );
                drop((a, b));
                stripe.redeliver(&completed.event_id, 1, false).await;
                until_taken(stripe, &paid.event_id).await?;
                "async payment: events redelivered out of order".into()
            }
        }
        _ => {
            let approval = json!({
                "amount": purchase["amount"], "currency": purchase["currency"],
                "bank_reference": format!("CHAOS-{id}"),
            });
            let path = format!("/admin/purchases/{id}/approve");
            // The operator approves, and approves again at the same moment.
            let (a, b) = tokio::join!(
                api.post(&path, operator, None, &approval),
                api.post(&path, operator, None, &approval)
            );
            let answers = [a?, b?];
            let statuses = [answers[0].0, answers[1].0];
            let ok = statuses.iter().filter(|s| **s == 200).count();
            if ok == 0 || statuses.iter().any(|s| !matches!(s, 200 | 409)) {
                bail!("bank transfer {id} approved twice answered {answers:?}");
            }
            format!("approved twice at once: {} {}", statuses[0], statuses[1])
        }
    };
    Ok(Purchase {
        credits: purchase["credits"].as_i64().context("credits")?,
        id,
        company: tenant.id,
        method,
        how,
    })
}

/// Redelivers a Stripe event until the service takes it (200), as Stripe retries.
async fn until_taken(stripe: &FakeStripe, event_id: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while stripe.redeliver(event_id, 1, false).await != [200] {
        if started.elapsed() > RETRY_FOR {
            bail!("Stripe event {event_id} refused for {RETRY_FOR:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
