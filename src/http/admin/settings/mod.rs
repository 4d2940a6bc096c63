//! `GET`/`PUT /admin/settings/{twilio,stripe,mpesa,vodacom,beem,africastalking}`: the providers'
//! credentials kept in settings (`sms`: Twilio, Beem, Africa's Talking; `payments`: Stripe,
//! M-Pesa, Vodacom; here what they share). A PUT stores them encrypted (`SETTINGS_KEY`); a GET shows where
//! the credentials in force come from (the environment wins) with every secret masked (`****` and
//! at most its last four characters). No answer ever carries a secret. Every running process uses
//! what a PUT stores within `SETTINGS_RELOAD_MS` (`crate::live`).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::AppState;
use crate::http::problem::{ApiError, ApiResult, FieldError};
use crate::settings::{self, Cipher, SettingsError};

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::NoKey => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "settings_key_missing",
                "SETTINGS_KEY is not set: secrets cannot be stored or read",
            ),
            SettingsError::Undecryptable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "settings_undecryptable",
                e.to_string(),
            ),
            SettingsError::IncompleteEnv(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "settings_incomplete_environment",
                e.to_string(),
            ),
            SettingsError::AccountInUse { .. } => {
                ApiError::new(StatusCode::CONFLICT, "account_in_use", e.to_string())
            }
            SettingsError::Database(db) => ApiError::internal(db),
        }
    }
}

fn cipher(state: &AppState) -> ApiResult<Cipher> {
    state
        .config
        .settings_key
        .as_ref()
        .map(Cipher::new)
        .ok_or_else(|| SettingsError::NoKey.into())
}

/// When the stored settings were last written and by whom.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stored {
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
}

async fn stored(state: &AppState, category: &str) -> ApiResult<Option<Stored>> {
    Ok(settings::last_written(&state.pool, category)
        .await?
        .map(|w| Stored {
            updated_at: w.at,
            updated_by: w.by,
        }))
}

/// Collects field errors; `finish` answers 422 with all of them.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.0.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }

    fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_graphic())
}

mod payments;
mod sms;

pub use payments::*;
pub use sms::*;
