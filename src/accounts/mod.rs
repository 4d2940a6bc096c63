//! Tenants and who may act for them: companies, users (JWT subjects) and API keys.

mod api_keys;
mod companies;
mod users;

pub use api_keys::{ApiKey, ApiKeys, IssuedApiKey, KEY_PREFIX, create_api_key, revoke_api_key};
pub use companies::{
    Company, CompanyChange, CompanyListing, CompanyPatch, Countries, InvalidSetting,
    MAX_SMS_PER_HOUR, SettingsChange, Updated, company_changes, create_company, find_company,
    list_companies, update_company,
};
pub use users::{User, create_user, find_user};
