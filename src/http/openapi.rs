//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        super::admin::adjustments::create,
    ),
    components(schemas(super::problem::Problem, super::problem::FieldError)),
    modifiers(&Security),
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

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async { ApiJson(ApiDoc::openapi()) }),
    )
}
