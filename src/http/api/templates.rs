//! `GET /v1/templates`, `GET`/`PUT /v1/templates/{name}`, `POST /v1/templates/preview`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, Company};
use crate::domain::{E164, Encoding, Segments, SmsBody};
use crate::http::AppState;
use crate::http::auth::CompanyCaller;
use crate::http::problem::{ApiError, ApiJson, ApiPath, ApiResult, FieldError, Problem};
use crate::templates::{
    self, Language, Problem as ValueProblem, Source, StoredTemplate, Template, Variable,
};

/// A template as the company sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub name: String,
    pub language: Language,
    pub body: String,
    /// The variables it uses, in order of first use.
    pub variables: Vec<Variable>,
    /// Encoding of its fixed text: `UCS-2` warns that every message costs a segment per 67
    /// characters instead of 153.
    pub encoding: Encoding,
    /// `company` (saved by the company) or `default` (the service's, until the company saves its own).
    pub source: Source,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl TemplateView {
    fn new(t: StoredTemplate) -> Self {
        let parsed = Template::parse(&t.body).ok();
        TemplateView {
            variables: parsed.as_ref().map(Template::variables).unwrap_or_default(),
            encoding: Segments::count(&parsed.map(|p| p.fixed_text()).unwrap_or_default()).encoding,
            name: t.name,
            language: t.language,
            body: t.body,
            source: t.source,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateView>,
}

/// Every template the company can use: its own, and the defaults it has not replaced.
#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    security(("bearer" = []), ("api_key" = [])), responses((status = 200, body = TemplateList)))]
pub async fn list(
    State(state): State<AppState>,
    caller: CompanyCaller,
) -> ApiResult<ApiJson<TemplateList>> {
    let all = templates::store::list(&state.pool, caller.company).await?;
    Ok(ApiJson(TemplateList {
        templates: all.into_iter().map(TemplateView::new).collect(),
    }))
}

/// One template, in each language the company has it in.
#[utoipa::path(get, path = "/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = TemplateList),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<ApiJson<TemplateList>> {
    let found = templates::store::by_name(&state.pool, caller.company, &name).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!("no template {name:?}")));
    }
    Ok(ApiJson(TemplateList {
        templates: found.into_iter().map(TemplateView::new).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplate {
    /// Up to 1,600 characters; `{variable}` placeholders, `{{` and `}}` for literal braces.
    pub body: String,
    /// `en` or `sw`.
    pub language: String,
}

/// Saves the company's template `name` in one language (201 when new, 200 when replaced).
/// Unknown variables and stray braces are refused here, never at send time.
#[utoipa::path(put, path = "/v1/templates/{name}", tag = "templates", params(("name" = String, Path)),
    request_body = SaveTemplate, security(("bearer" = []), ("api_key" = [])), responses(
    (status = 201, body = TemplateView), (status = 200, body = TemplateView),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed, with errors [{field, message}]"),
))]
pub async fn save(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<SaveTemplate>,
) -> ApiResult<(StatusCode, ApiJson<TemplateView>)> {
    let mut errors = Vec::new();
    if !templates::valid_name(&name) {
        errors.push(field(
            "name",
            "1 to 64 lower-case letters, digits and _, starting with a letter",
        ));
    }
    let language = req
        .language
        .parse::<Language>()
        .map_err(|e| errors.push(field("language", e.to_string())))
        .ok();
    let template = Template::parse(&req.body)
        .map_err(|es| errors.extend(es.iter().map(|e| field("body", e.to_string()))))
        .ok();
    let (Some(language), Some(template), true) = (language, template, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let (saved, created) =
        templates::store::save(&state.pool, caller.company, &name, language, &template).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(TemplateView::new(saved))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A saved template's name; or give `body`.
    pub template: Option<String>,
    /// An unsaved template text, checked as a save would.
    pub body: Option<String>,
    /// `en` (default) or `sw`.
    pub language: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub vars: Option<serde_json::Map<String, serde_json::Value>>,
    /// Price the message for this number; without it, for a number of the company's country.
    pub to: Option<String>,
}

/// A rendered message and what it would cost.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub text: String,
    pub language: Language,
    pub encoding: Encoding,
    pub segments: u32,
    pub characters: usize,
    /// `segments` x `credits_per_segment`.
    pub credits: i64,
    /// The rate card's credits per segment to `to` (or to a mobile of the company's country).
    pub credits_per_segment: i64,
}

/// Renders a template with values, as a batch would, and prices it. A missing or malformed
/// value is 422 (`missing_variable` / `invalid_variable`) naming each variable.
#[utoipa::path(post, path = "/v1/templates/preview", tag = "templates", request_body = PreviewRequest,
    security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = Preview),
    (status = 422, body = Problem, content_type = "application/problem+json",
     description = "validation_failed, unknown_template, missing_variable or invalid_variable; errors name the fields (vars.<variable>); destination_unpriced, destination_forbidden or destination_restricted when the rate card refuses `to`"),
))]
pub async fn preview(
    State(state): State<AppState>,
    caller: CompanyCaller,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<ApiJson<Preview>> {
    let company = accounts::find_company(&state.pool, caller.company)
        .await?
        .ok_or_else(|| ApiError::not_found("no company"))?;
    let language = match req.language.as_deref() {
        None => Language::default(),
        Some(l) => l
            .parse()
            .map_err(|e: templates::UnknownLanguage| ApiError::field("language", e.to_string()))?,
    };
    let country = company.country;
    let to = req
        .to
        .as_deref()
        .map(|t| E164::parse_sms(t, country))
        .transpose()
        .map_err(|e| ApiError::field("to", e.to_string()))?;
    let template = template_for(&state, &company, &req, language).await?;
    let vars = templates::vars_from_json(&req.vars.unwrap_or_default())
        .map_err(|e| ApiError::field("vars", e))?;
    let mut conn = state.pool.acquire().await?;
    let link = templates::store::company_payment_link(&mut conn, company.id).await?;
    let ctx = templates::Context {
        language,
        company_name: &company.name,
        currency: company.currency,
        payment_link: link.as_deref(),
    };
    let text = template.render(&vars, &ctx).map_err(|errors| {
        let code = match errors[0].problem {
            ValueProblem::Missing => "missing_variable",
            ValueProblem::Invalid(_) => "invalid_variable",
        };
        let names: Vec<&str> = errors.iter().map(|e| e.variable.name()).collect();
        let fields = errors
            .iter()
            .map(|e| field(&format!("vars.{}", e.variable.name()), e.to_string()))
            .collect();
        ApiError {
            code,
            ..ApiError::validation(fields)
        }
        .with("variables", names)
    })?;
    let body = SmsBody::parse(&text)
        .map_err(|e| ApiError::field("body", format!("the rendered message: {e}")))?;
    let segments = body.segments();
    let card = state.rates.card().await?;
    let per_segment = match &to {
        Some(to) => {
            card.price(to)
                .map_err(|r| crate::http::api::messages::destination_refused(&r))?
                .credits_per_segment
        }
        None => card.home_rate(country),
    };
    Ok(ApiJson(Preview {
        characters: text.chars().count(),
        credits: i64::from(segments.count) * per_segment,
        credits_per_segment: per_segment,
        segments: segments.count,
        encoding: segments.encoding,
        language,
        text,
    }))
}

/// The saved template named in the request, or its ad-hoc `body` checked as a save would.
async fn template_for(
    state: &AppState,
    company: &Company,
    req: &PreviewRequest,
    language: Language,
) -> ApiResult<Template> {
    match (&req.template, &req.body) {
        (Some(name), None) => {
            let mut conn = state.pool.acquire().await?;
            let stored = templates::store::effective(&mut conn, company.id, name, language)
                .await?
                .ok_or_else(|| ApiError {
                    code: "unknown_template",
                    ..ApiError::field("template", format!("no template {name:?} in {language}"))
                })?;
            Template::parse(&stored.body).map_err(|e| {
                ApiError::internal(format!("stored template {name} does not parse: {e:?}"))
            })
        }
        (None, Some(body)) => Template::parse(body).map_err(|es| {
            ApiError::validation(es.iter().map(|e| field("body", e.to_string())).collect())
        }),
        _ => Err(ApiError::field(
            "template",
            "give a template name or a body, not both",
        )),
    }
}

fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_string(),
        message: message.into(),
    }
}
