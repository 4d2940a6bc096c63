//! The Checkout Sessions API client: create a hosted payment page for a purchase, and read a
//! session back (the webhook is only a hint; the amount is checked against what Stripe returns).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use url::Url;
use uuid::Uuid;

use super::error::{StripeError, from_reqwest, from_response, should_retry_header};
use crate::config::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client of `base` (`https://api.stripe.com` or a fake) with a secret key. Cheap to clone.
/// `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: Url,
    secret_key: Secret,
}

/// One Checkout Session for one purchase: a single line item, quantity 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest<'a> {
    /// Sent as `Idempotency-Key`; reuse it on every retry of this purchase's create.
    pub idempotency_key: &'a str,
    /// Our payment's id: `client_reference_id`, and in the session's and the PaymentIntent's metadata.
    pub payment_id: Uuid,
    pub company_id: Uuid,
    /// In Stripe's minor units (see [`super::minor_units`]).
    pub amount_minor: i64,
    /// ISO code, any case; sent lower-case.
    pub currency: &'a str,
    pub product_name: &'a str,
    /// May contain `{CHECKOUT_SESSION_ID}`, which Stripe fills in.
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Unix time; Stripe accepts 30 min to 24 h after creation (default 24 h).
    pub expires_at: Option<i64>,
}

impl CheckoutRequest<'_> {
    /// The form body in Stripe's bracket encoding, in the order the official library sends it
    /// (PROTOCOLS.md section 4). Session metadata does not reach the PaymentIntent or its Charge,
    /// so the ids go into `payment_intent_data[metadata]` too (refunds are mapped through them).
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let payment_id = self.payment_id.to_string();
        let company_id = self.company_id.to_string();
        let mut form = vec![
            ("mode", "payment".to_string()),
            ("client_reference_id", payment_id.clone()),
            (
                "line_items[0][price_data][currency]",
                self.currency.to_ascii_lowercase(),
            ),
            (
                "line_items[0][price_data][unit_amount]",
                self.amount_minor.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]",
                self.product_name.to_string(),
            ),
            ("line_items[0][quantity]", "1".to_string()),
            ("success_url", self.success_url.to_string()),
            ("cancel_url", self.cancel_url.to_string()),
            ("metadata[payment_id]", payment_id.clone()),
            ("metadata[company_id]", company_id.clone()),
            ("payment_intent_data[metadata][payment_id]", payment_id),
            ("payment_intent_data[metadata][company_id]", company_id),
        ];
        if let Some(at) = self.expires_at {
            form.push(("expires_at", at.to_string()));
        }
        form
    }
}

/// The parts of a Checkout Session we use; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    /// The hosted payment page; null once the session is complete or expired.
    #[serde(default)]
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `paid`, `unpaid` or `no_payment_required`. Credit only on `paid`.
    pub payment_status: String,
    #[serde(default)]
    pub amount_total: Option<i64>,
    /// Lower-case ISO code.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    /// `pi_…` (may be null before payment). An expanded object is reduced to its id.
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: HashMap<String, String>,
}

impl StripeClient {
    pub fn new(base: Url, secret_key: Secret) -> Self {
        StripeClient {
            http: http_client(TIMEOUT),
            base,
            secret_key,
        }
    }

    /// Shorter timeouts, for tests that make Stripe slow.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// `POST /v1/checkout/sessions`. Not retried here; retry with the same request (same
    /// `Idempotency-Key`) when [`StripeError::is_retryable`] says so: Stripe then returns the
    /// session it already created.
    pub async fn create_checkout_session(
        &self,
        req: &CheckoutRequest<'_>,
    ) -> Result<CheckoutSession, StripeError> {
        timed("create_checkout_session", async {
            let response = self
                .http
                .post(self.url(&["v1", "checkout", "sessions"]))
                .bearer_auth(self.secret_key.expose())
                .header("Idempotency-Key", req.idempotency_key)
                .form(&req.form())
                .send()
                .await
                .map_err(from_reqwest)?;
            parse(response).await
        })
        .await
    }

    /// `GET /v1/checkout/sessions/{id}`: the session as Stripe holds it now.
    pub async fn retrieve_checkout_session(
        &self,
        id: &str,
    ) -> Result<CheckoutSession, StripeError> {
        timed("retrieve_checkout_session", async {
            let response = self
                .http
                .get(self.url(&["v1", "checkout", "sessions", id]))
                .bearer_auth(self.secret_key.expose())
                .send()
                .await
                .map_err(from_reqwest)?;
            parse(response).await
        })
        .await
    }
}

/// A refund Stripe made (`POST /v1/refunds`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StripeRefund {
    pub id: String,
    #[serde(default)]
    pub status: String,
    /// Minor units.
    #[serde(default)]
    pub amount: i64,
}

impl StripeClient {
    /// `POST /v1/refunds` of what is left of `payment_intent`'s charge. Its `charge.refunded`
    /// event follows. The same `idempotency_key` on a retry returns the same refund.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        idempotency_key: &str,
    ) -> Result<StripeRefund, StripeError> {
        timed("create_refund", async {
            let response = self
                .http
                .post(self.url(&["v1", "refunds"]))
                .bearer_auth(self.secret_key.expose())
                .header("Idempotency-Key", idempotency_key)
                .form(&[("payment_intent", payment_intent)])
                .send()
                .await
                .map_err(from_reqwest)?;
            parse(response).await
        })
        .await
    }
}

/// Runs one API call and records its latency and outcome (`crate::metrics::provider_call`).
async fn timed<T>(
    operation: &str,
    call: impl std::future::Future<Output = Result<T, StripeError>>,
) -> Result<T, StripeError> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = result.as_ref().map_or_else(StripeError::reason, |_| "ok");
    crate::metrics::provider_call("stripe", operation, status, started.elapsed());
    result
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

async fn parse<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, StripeError> {
    let status = response.status().as_u16();
    let should_retry = should_retry_header(response.headers());
    let text = response.text().await.map_err(from_reqwest)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| StripeError::Decode {
            detail: e.to_string(),
        });
    }
    Err(from_response(status, should_retry, &text))
}

fn id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<serde_json::Value> = Option::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(o)) => o.get("id").and_then(|v| v.as_str()).map(Into::into),
        _ => None,
    })
}

pub(super) fn null_as_empty<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<HashMap<String, String>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CheckoutRequest<'static> {
        CheckoutRequest {
            idempotency_key: "key-1",
            payment_id: Uuid::parse_str("0190f1e4-0000-7000-8000-000000009001").unwrap(),
            company_id: Uuid::parse_str("0190f1e4-0000-7000-8000-000000000042").unwrap(),
            amount_minor: 2_500_000,
            currency: "TZS",
            product_name: "1,000 SMS credits",
            success_url: "https://crm.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
            cancel_url: "https://crm.example/billing/cancel",
            expires_at: None,
        }
    }

    #[test]
    fn the_form_uses_stripes_bracket_encoding() {
        let form = request().form();
        let p = "0190f1e4-0000-7000-8000-000000009001";
        let c = "0190f1e4-0000-7000-8000-000000000042";
        let expected: Vec<(&str, &str)> = vec![
            ("mode", "payment"),
            ("client_reference_id", p),
            ("line_items[0][price_data][currency]", "tzs"),
            ("line_items[0][price_data][unit_amount]", "2500000"),
            (
                "line_items[0][price_data][product_data][name]",
                "1,000 SMS credits",
            ),
            ("line_items[0][quantity]", "1"),
            (
                "success_url",
                "https://crm.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
            ),
            ("cancel_url", "https://crm.example/billing/cancel"),
            ("metadata[payment_id]", p),
            ("metadata[company_id]", c),
            ("payment_intent_data[metadata][payment_id]", p),
            ("payment_intent_data[metadata][company_id]", c),
        ];
        let got: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, expected);
        let with_expiry = CheckoutRequest {
            expires_at: Some(1_800_000_000),
            ..request()
        };
        assert_eq!(
            with_expiry.form().last(),
            Some(&("expires_at", "1800000000".to_string()))
        );
    }

    #[test]
    fn a_session_parses_ignoring_what_we_do_not_use() {
        let body = r#"{"id":"cs_test_a1","object":"checkout.session","amount_subtotal":2500000,"amount_total":2500000,"cancel_url":"https://x/c","client_reference_id":"p1","created":1700000000,"currency":"tzs","customer":null,"customer_details":null,"expires_at":1700086400,"livemode":false,"metadata":{"payment_id":"p1","company_id":"c1"},"mode":"payment","payment_intent":null,"payment_status":"unpaid","status":"open","success_url":"https://x/s","ui_mode":"hosted_page","url":"https://checkout.stripe.com/c/pay/cs_test_a1"}"#;
        let s: CheckoutSession = serde_json::from_str(body).unwrap();
        assert_eq!(s.amount_total, Some(2_500_000));
        assert_eq!(s.payment_intent, None);
        assert_eq!(s.metadata["payment_id"], "p1");
        let expanded: CheckoutSession = serde_json::from_str(
            r#"{"id":"cs_1","status":"complete","payment_status":"paid","metadata":null,"payment_intent":{"id":"pi_1","object":"payment_intent"}}"#,
        )
        .unwrap();
        assert_eq!(expanded.payment_intent.as_deref(), Some("pi_1"));
        assert!(expanded.metadata.is_empty());
    }

    #[test]
    fn urls_join_onto_the_base_and_escape_the_id() {
        let client = StripeClient::new(
            Url::parse("http://127.0.0.1:9/").unwrap(),
            Secret::new("sk_test_x"),
        );
        assert_eq!(
            client
                .url(&["v1", "checkout", "sessions", "cs_1/../x"])
                .as_str(),
            "http://127.0.0.1:9/v1/checkout/sessions/cs_1%2F..%2Fx"
        );
        assert!(!format!("{client:?}").contains("sk_test_x"));
    }
}
