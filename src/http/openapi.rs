//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::content::{Content, ContentBuilder};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::problem::ApiJson;

#[derive(OpenApi)]
#[openapi(
    info(title = "copcca-sms", description = "SMS credits and sending service behind COPCCA CRM"),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::api::balance::get_balance,
        super::api::balance::get_ledger,
        super::api::packages::list,
        super::api::purchases::create,
        super::api::purchases::get_one,
        super::api::purchases::list,
        super::api::purchases::methods,
        super::api::messages::create,
        super::api::messages::get_one,
        super::api::messages::list,
        super::api::batches::create,
        super::api::batches::get_one,
        super::api::opt_outs::add,
        super::api::opt_outs::remove,
        super::api::opt_outs::list,
        super::api::templates::list,
        super::api::templates::get_one,
        super::api::templates::save,
        super::api::templates::preview,
        super::webhooks::twilio::status,
        super::webhooks::twilio::inbound,
        super::webhooks::mpesa::callback,
        super::webhooks::stripe::event,
        super::webhooks::vodacom::result,
        super::webhooks::bulk_reports::beem,
        super::webhooks::bulk_reports::africastalking,
        super::admin::companies::list,
        super::admin::companies::update,
        super::admin::companies::changes,
        super::admin::adjustments::create,
        super::admin::opt_outs::remove,
        super::admin::held_sends::resolve,
        super::admin::reports::revenue,
        super::admin::routes::get,
        super::admin::routes::put,
        super::admin::purchases::approve,
        super::admin::purchases::reject,
        super::admin::purchases::refund,
        super::admin::settings::get_twilio,
        super::admin::settings::put_twilio,
        super::admin::settings::get_stripe,
        super::admin::settings::put_stripe,
        super::admin::settings::get_mpesa,
        super::admin::settings::put_mpesa,
        super::admin::settings::get_vodacom,
        super::admin::settings::put_vodacom,
        super::admin::settings::get_beem,
        super::admin::settings::put_beem,
        super::admin::settings::get_africastalking,
        super::admin::settings::put_africastalking,
        super::admin::rate_card::get,
        super::admin::rate_card::put,
        super::admin::rate_card::changes,
        super::admin::status::page,
        super::metrics::scrape,
        document,
    ),
    components(schemas(super::problem::Problem, super::problem::FieldError)),
    modifiers(&Security, &CommonResponses),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The answers any endpoint can give without saying so in its own annotation, added to every
/// operation that lacks them, so the document describes every response the service sends: 401
/// where credentials are needed, 403 on `/v1` (no company) and `/admin`, 429 with `Retry-After`
/// on `/v1` (per company) and `/webhooks` (per client address), 503 with `Retry-After` wherever
/// the database is read (`database_unavailable`), 404 where the path holds an id, 422 where there
/// is a query, the body failures (400, 413, 415, 422) where there
/// is a body, and problem+json as the content of every error response.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common(path, op);
            }
        }
    }
}

fn add_common(path: &str, op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if secured {
        wanted.push((
            "401",
            "missing_credentials, invalid_token, invalid_api_key or unknown_user",
        ));
    }
    if path.starts_with("/v1") {
        wanted.push(("403", "no_company: the caller belongs to no company"));
        wanted.push(("429", "rate_limited: the company is over its request rate"));
    }
    if path.starts_with("/admin") {
        wanted.push(("403", "forbidden: not the platform operator"));
    }
    if path.starts_with("/webhooks") {
        wanted.push((
            "429",
            "rate_limited: too many requests from this client address",
        ));
    }
    if path.contains('{') {
        wanted.push(("404", "not_found (also a malformed id)"));
    }
    let queried = op
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    if queried {
        wanted.push(("422", "invalid_query"));
    }
    if path != "/healthz" && path != "/openapi.json" {
        wanted.push((
            "503",
            "database_unavailable: PostgreSQL is down or restarting; retry after Retry-After",
        ));
    }
    if op.request_body.is_some() {
        wanted.push(("400", "malformed_json or malformed_body"));
        wanted.push(("413", "payload_too_large"));
        wanted.push(("415", "unsupported_media_type"));
        wanted.push(("422", "invalid_body or validation_failed"));
    }
    let responses = &mut op.responses.responses;
    for (status, description) in wanted {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(status, description).into());
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(r)) = (is_error, response)
            && r.content.is_empty()
        {
            r.content.insert(PROBLEM.to_string(), problem_content());
        }
    }
}

const PROBLEM: &str = "application/problem+json";

fn problem_content() -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

fn problem_response(status: &str, description: &str) -> Response {
    let mut builder = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, problem_content());
    if status == "429" || status == "503" {
        builder = builder.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("seconds to wait before trying again"))
                .build(),
        );
    }
    builder.build()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
pub async fn document() -> ApiJson<utoipa::openapi::OpenApi> {
    ApiJson(ApiDoc::openapi())
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two types of one name would share a component, and one would document the other's values.
    #[test]
    fn each_source_enum_documents_its_own_values() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["TemplateSource"]["enum"],
            serde_json::json!(["company", "default"])
        );
        assert_eq!(
            schemas["CredentialsSource"]["enum"],
            serde_json::json!(["environment", "settings"])
        );
        assert!(schemas.get("Source").is_none());
    }
}
