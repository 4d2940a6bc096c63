//! The texts of a batch's items: explicit bodies as they are, templates rendered.

use sqlx::PgPool;

use super::Content;
use crate::accounts::Company;
use crate::templates::{self, Problem};

/// Items' texts: explicit bodies as they are, templates loaded once each and rendered. The
/// database is only touched once a template item appears.
pub(super) struct Texts<'c> {
    pool: &'c PgPool,
    company: &'c Company,
    loaded: Option<(sqlx::pool::PoolConnection<sqlx::Postgres>, Option<String>)>,
    loader: templates::store::Loader,
}

impl<'c> Texts<'c> {
    pub(super) fn new(pool: &'c PgPool, company: &'c Company) -> Self {
        Texts {
            pool,
            company,
            loaded: None,
            loader: templates::store::Loader::new(company.id),
        }
    }

    /// The text, or the refusal's code and detail.
    pub(super) async fn text(
        &mut self,
        content: Content,
    ) -> Result<Result<String, (&'static str, String)>, sqlx::Error> {
        let (name, language, vars) = match content {
            Content::Body(b) => return Ok(Ok(b)),
            Content::Refused { code, detail } => return Ok(Err((code, detail))),
            Content::Template {
                name,
                language,
                vars,
            } => (name, language, vars),
        };
        if self.loaded.is_none() {
            let mut conn = self.pool.acquire().await?;
            let link = templates::store::company_payment_link(&mut conn, self.company.id).await?;
            self.loaded = Some((conn, link));
        }
        let (conn, payment_link) = self.loaded.as_mut().expect("loaded above");
        let Some(template) = self.loader.get(conn, &name, language).await? else {
            return Ok(Err((
                "unknown_template",
                format!("no template {name:?} in {language}"),
            )));
        };
        let ctx = templates::Context {
            language,
            company_name: &self.company.name,
            currency: self.company.currency,
            payment_link: payment_link.as_deref(),
        };
        Ok(template.render(&vars, &ctx).map_err(|errors| {
            let code = match errors[0].problem {
                Problem::Missing => "missing_variable",
                Problem::Invalid(_) => "invalid_variable",
            };
            let detail = errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            (code, detail)
        }))
    }
}
