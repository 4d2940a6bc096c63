//! The HTTP skeleton: problem+json shapes, authentication, roles and tenant isolation.

mod auth;
mod companies;
mod hardening;
mod route_settings;
mod routes;
mod settings;
mod tenancy;

use reqwest::StatusCode;
use serde_json::Value;

/// Asserts an RFC 9457 problem with the given status and code, and returns it.
pub(crate) async fn problem(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], format!("urn:copcca-sms:problem:{code}"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}
