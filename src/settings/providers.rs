//! The providers' credentials kept in settings: the central Twilio account, Stripe, M-Pesa,
//! Vodacom M-Pesa, and the Beem and Africa's Talking SMS routes.
//! Each provider is a group of rows written in one transaction. The environment, when it sets a
//! provider (all of its variables), wins over settings; when it sets only some, that is an error
//! rather than a silent mix of two accounts.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgPool;

use super::{Cipher, SettingsError, put_in};
use crate::config::{AfricasTalkingAccount, BeemAccount, Config, Secret, VodacomAccount};

/// Where the credentials in force come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
// Named apart from the templates' `Source`: one component name would stand for both enums.
#[schema(as = CredentialsSource)]
pub enum Source {
    Environment,
    Settings,
}

/// The central Twilio account.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: Secret,
    /// An E.164 number, an alphanumeric sender id, or a Messaging Service SID (MG...).
    pub from: String,
}

/// Stripe's API key and the signing secret of its webhook endpoint.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub secret_key: Secret,
    pub webhook_secret: Secret,
}

/// The Daraja app's credentials and the Lipa na M-Pesa Online shortcode and passkey.
#[derive(Debug, Clone)]
pub struct MpesaSettings {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    pub shortcode: String,
    pub passkey: Secret,
}

/// Beem's key pair and registered sender. One type with the environment's account: both are
/// the same fields, and the hosts stay configuration (`BEEM_API_BASE`, `BEEM_DLR_BASE`).
pub type BeemSettings = BeemAccount;

/// Africa's Talking's username, API key and sender id (the host stays `AT_API_BASE`).
pub type AfricasTalkingSettings = AfricasTalkingAccount;

/// Reads every `<provider>.<field>`; `None` unless all are stored.
async fn load(
    pool: impl sqlx::PgExecutor<'_>,
    cipher: Option<&Cipher>,
    provider: &str,
    fields: &[&str],
) -> Result<Option<HashMap<String, Secret>>, SettingsError> {
    let names: Vec<String> = fields.iter().map(|f| format!("{provider}.{f}")).collect();
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT key, value, encrypted FROM system_settings WHERE key = ANY($1)")
            .bind(&names)
            .fetch_all(pool)
            .await?;
    if rows.len() < names.len() {
        return Ok(None);
    }
    let mut out = HashMap::new();
    for (name, value, encrypted) in rows {
        let value = if encrypted {
            cipher.ok_or(SettingsError::NoKey)?.decrypt(&name, &value)?
        } else {
            Secret::new(value)
        };
        let field = name[provider.len() + 1..].to_string();
        out.insert(field, value);
    }
    Ok(Some(out))
}

/// Writes `(field, value, secret)` rows of `provider` together.
async fn store(
    pool: &PgPool,
    cipher: &Cipher,
    provider: &str,
    fields: &[(&str, &str, bool)],
    actor: &str,
) -> Result<(), SettingsError> {
    let mut tx = pool.begin().await?;
    store_in(&mut tx, cipher, provider, fields, actor).await?;
    tx.commit().await?;
    Ok(())
}

async fn store_in(
    tx: &mut sqlx::PgConnection,
    cipher: &Cipher,
    provider: &str,
    fields: &[(&str, &str, bool)],
    actor: &str,
) -> Result<(), SettingsError> {
    for (field, value, secret) in fields {
        let name = format!("{provider}.{field}");
        put_in(
            &mut *tx,
            Some(cipher),
            &name,
            value,
            *secret,
            provider,
            actor,
        )
        .await?;
    }
    Ok(())
}

fn take(map: &mut HashMap<String, Secret>, field: &str) -> Secret {
    map.remove(field).expect("load returns every field")
}

/// Settings' reading of `effective_*`: no key means "nothing usable", never a crash.
fn unless_no_key<T>(r: Result<Option<T>, SettingsError>) -> Result<Option<T>, SettingsError> {
    match r {
        Err(SettingsError::NoKey) => Ok(None),
        other => other,
    }
}

fn cipher_of(config: &Config) -> Option<Cipher> {
    config.settings_key.as_ref().map(Cipher::new)
}

/// The account in force: the environment's when it sets one (it wins, and settings are not
/// read), else the stored one, which counts as none without `SETTINGS_KEY`.
async fn env_else_stored<T>(
    env: Option<T>,
    stored: impl std::future::Future<Output = Result<Option<T>, SettingsError>>,
) -> Result<Option<(Source, T)>, SettingsError> {
    if let Some(env) = env {
        return Ok(Some((Source::Environment, env)));
    }
    Ok(unless_no_key(stored.await)?.map(|s| (Source::Settings, s)))
}

/// All of a provider's variables or none: `Ok(None)` when none are set.
fn env_group<const N: usize>(
    vars: [(&'static str, Option<String>); N],
) -> Result<Option<[String; N]>, SettingsError> {
    if vars.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    if let Some((name, _)) = vars.iter().find(|(_, v)| v.is_none()) {
        return Err(SettingsError::IncompleteEnv(name));
    }
    Ok(Some(vars.map(|(_, v)| v.expect("checked above"))))
}

const TWILIO: [&str; 3] = ["account_sid", "from", "auth_token"];

/// The Twilio account stored in settings.
pub async fn twilio(
    pool: impl sqlx::PgExecutor<'_>,
    cipher: Option<&Cipher>,
) -> Result<Option<TwilioSettings>, SettingsError> {
    Ok(load(pool, cipher, "twilio", &TWILIO)
        .await?
        .map(|mut m| TwilioSettings {
            account_sid: take(&mut m, "account_sid").expose().to_string(),
            from: take(&mut m, "from").expose().to_string(),
            auth_token: take(&mut m, "auth_token"),
        }))
}

/// The auth token the stored account had before its latest rotation, and when it was rotated:
/// callbacks signed with it are accepted for a grace period (`TwilioTiming::token_grace`).
#[derive(Debug, Clone)]
pub struct PreviousToken {
    pub token: Secret,
    pub rotated_at: chrono::DateTime<chrono::Utc>,
}

impl PreviousToken {
    /// Until when callbacks signed with it are accepted, `grace` after the rotation.
    pub fn accepted_until(&self, grace: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
        self.rotated_at + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero())
    }
}

const PREVIOUS: [&str; 2] = ["previous_auth_token", "rotated_at"];

/// Stores the Twilio account. A new auth token keeps the one it replaces as the previous token
/// (with the time of the rotation). A new account SID is refused while messages sent through
/// the stored account are unresolved: only that account can say what became of them.
pub async fn set_twilio(
    pool: &PgPool,
    cipher: &Cipher,
    t: &TwilioSettings,
    actor: &str,
) -> Result<(), SettingsError> {
    let mut tx = pool.begin().await?;
    // One writer at a time: the rotation reads what it replaces.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('settings.twilio'))")
        .execute(&mut *tx)
        .await?;
    let before = unless_no_key(twilio(&mut *tx, Some(cipher)).await)?;
    if let Some(before) = &before {
        if before.account_sid != t.account_sid {
            let unresolved =
                crate::messages::recovery::unresolved_on_account(&mut tx, &before.account_sid)
                    .await?;
            if unresolved > 0 {
                return Err(SettingsError::AccountInUse {
                    account: before.account_sid.clone(),
                    unresolved,
                });
            }
        }
        if before.auth_token.expose() != t.auth_token.expose() {
            let now = chrono::Utc::now().to_rfc3339();
            let previous = [
                ("previous_auth_token", before.auth_token.expose(), true),
                ("rotated_at", now.as_str(), false),
            ];
            store_in(&mut tx, cipher, "twilio", &previous, actor).await?;
        }
    }
    let fields = [
        ("account_sid", t.account_sid.as_str(), false),
        ("from", t.from.as_str(), false),
        ("auth_token", t.auth_token.expose(), true),
    ];
    store_in(&mut tx, cipher, "twilio", &fields, actor).await?;
    tx.commit().await?;
    Ok(())
}

/// The stored account's previous auth token, if it was ever rotated in settings.
pub async fn twilio_previous_token(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<PreviousToken>, SettingsError> {
    let Some(mut m) = unless_no_key(load(pool, cipher, "twilio", &PREVIOUS).await)? else {
        return Ok(None);
    };
    let rotated_at = take(&mut m, "rotated_at");
    let Ok(rotated_at) = chrono::DateTime::parse_from_rfc3339(rotated_at.expose()) else {
        tracing::warn!("twilio.rotated_at is not a timestamp; the previous token is not accepted");
        return Ok(None);
    };
    Ok(Some(PreviousToken {
        token: take(&mut m, "previous_auth_token"),
        rotated_at: rotated_at.with_timezone(&chrono::Utc),
    }))
}

/// The Twilio account in force and where it comes from: the environment's when set (it wins),
/// else the one in settings (unreadable without `SETTINGS_KEY`: then none).
pub async fn twilio_in_force(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<(Source, TwilioSettings)>, SettingsError> {
    let env = config.twilio.as_ref().map(|t| TwilioSettings {
        account_sid: t.account_sid.clone(),
        auth_token: t.auth_token.clone(),
        from: t.from.clone(),
    });
    let cipher = cipher_of(config);
    env_else_stored(env, twilio(pool, cipher.as_ref())).await
}

/// The Twilio account in force: the environment's when set (it wins), else the one in settings.
pub async fn effective_twilio(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<TwilioSettings>, SettingsError> {
    Ok(twilio_in_force(pool, config).await?.map(|(_, t)| t))
}

const STRIPE: [&str; 2] = ["secret_key", "webhook_secret"];

/// The Stripe credentials stored in settings.
pub async fn stripe(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<StripeSettings>, SettingsError> {
    Ok(load(pool, cipher, "stripe", &STRIPE)
        .await?
        .map(|mut m| StripeSettings {
            secret_key: take(&mut m, "secret_key"),
            webhook_secret: take(&mut m, "webhook_secret"),
        }))
}

pub async fn set_stripe(
    pool: &PgPool,
    cipher: &Cipher,
    s: &StripeSettings,
    actor: &str,
) -> Result<(), SettingsError> {
    let fields = [
        ("secret_key", s.secret_key.expose(), true),
        ("webhook_secret", s.webhook_secret.expose(), true),
    ];
    store(pool, cipher, "stripe", &fields, actor).await
}

/// The Stripe credentials in force and where they come from (the environment wins).
pub async fn stripe_in_force(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<(Source, StripeSettings)>, SettingsError> {
    let expose = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_string());
    let env = env_group([
        ("STRIPE_SECRET_KEY", expose(&config.stripe_secret_key)),
        (
            "STRIPE_WEBHOOK_SECRET",
            expose(&config.stripe_webhook_secret),
        ),
    ])?
    .map(|[secret_key, webhook_secret]| StripeSettings {
        secret_key: Secret::new(secret_key),
        webhook_secret: Secret::new(webhook_secret),
    });
    let cipher = cipher_of(config);
    env_else_stored(env, stripe(pool, cipher.as_ref())).await
}

/// The Stripe credentials in force: `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` when set
/// (they win), else the ones in settings; `None` when neither has them.
pub async fn effective_stripe(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<StripeSettings>, SettingsError> {
    Ok(stripe_in_force(pool, config).await?.map(|(_, s)| s))
}

const MPESA: [&str; 4] = ["consumer_key", "consumer_secret", "shortcode", "passkey"];

/// The M-Pesa credentials stored in settings.
pub async fn mpesa(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<MpesaSettings>, SettingsError> {
    Ok(load(pool, cipher, "mpesa", &MPESA)
        .await?
        .map(|mut m| MpesaSettings {
            consumer_key: take(&mut m, "consumer_key"),
            consumer_secret: take(&mut m, "consumer_secret"),
            shortcode: take(&mut m, "shortcode").expose().to_string(),
            passkey: take(&mut m, "passkey"),
        }))
}

pub async fn set_mpesa(
    pool: &PgPool,
    cipher: &Cipher,
    m: &MpesaSettings,
    actor: &str,
) -> Result<(), SettingsError> {
    let fields = [
        ("consumer_key", m.consumer_key.expose(), true),
        ("consumer_secret", m.consumer_secret.expose(), true),
        ("shortcode", m.shortcode.as_str(), false),
        ("passkey", m.passkey.expose(), true),
    ];
    store(pool, cipher, "mpesa", &fields, actor).await
}

/// The M-Pesa credentials in force and where they come from (the environment wins).
pub async fn mpesa_in_force(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<(Source, MpesaSettings)>, SettingsError> {
    let expose = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_string());
    let env = env_group([
        ("MPESA_CONSUMER_KEY", expose(&config.mpesa_consumer_key)),
        (
            "MPESA_CONSUMER_SECRET",
            expose(&config.mpesa_consumer_secret),
        ),
        ("MPESA_SHORTCODE", config.mpesa_shortcode.clone()),
        ("MPESA_PASSKEY", expose(&config.mpesa_passkey)),
    ])?
    .map(|[key, secret, shortcode, passkey]| MpesaSettings {
        consumer_key: Secret::new(key),
        consumer_secret: Secret::new(secret),
        shortcode,
        passkey: Secret::new(passkey),
    });
    let cipher = cipher_of(config);
    env_else_stored(env, mpesa(pool, cipher.as_ref())).await
}

/// The M-Pesa credentials in force: the four `MPESA_*` credential variables when set (they win),
/// else the ones in settings; `None` when neither has them. `MPESA_CALLBACK_TOKEN` stays in the
/// environment.
pub async fn effective_mpesa(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<MpesaSettings>, SettingsError> {
    Ok(mpesa_in_force(pool, config).await?.map(|(_, m)| m))
}

const VODACOM: [&str; 4] = ["api_key", "public_key", "service_provider_code", "market"];

/// The Vodacom M-Pesa account stored in settings (the API key encrypted).
pub async fn vodacom(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<VodacomAccount>, SettingsError> {
    let text = |m: &mut HashMap<String, Secret>, f: &str| take(m, f).expose().to_string();
    Ok(load(pool, cipher, "vodacom", &VODACOM)
        .await?
        .map(|mut m| VodacomAccount {
            api_key: take(&mut m, "api_key"),
            public_key: text(&mut m, "public_key"),
            service_provider_code: text(&mut m, "service_provider_code"),
            market: text(&mut m, "market"),
        }))
}

pub async fn set_vodacom(
    pool: &PgPool,
    cipher: &Cipher,
    v: &VodacomAccount,
    actor: &str,
) -> Result<(), SettingsError> {
    let fields = [
        ("api_key", v.api_key.expose(), true),
        ("public_key", v.public_key.as_str(), false),
        (
            "service_provider_code",
            v.service_provider_code.as_str(),
            false,
        ),
        ("market", v.market.as_str(), false),
    ];
    store(pool, cipher, "vodacom", &fields, actor).await
}

/// The Vodacom account in force and where it comes from: the `VODACOM_*` variables when set
/// (they win), else the one in settings; `None` when neither has one.
pub async fn vodacom_in_force(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<(Source, VodacomAccount)>, SettingsError> {
    let cipher = cipher_of(config);
    env_else_stored(config.vodacom.clone(), vodacom(pool, cipher.as_ref())).await
}

pub async fn effective_vodacom(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<VodacomAccount>, SettingsError> {
    Ok(vodacom_in_force(pool, config).await?.map(|(_, v)| v))
}

const BEEM: [&str; 3] = ["api_key", "secret_key", "source_addr"];

/// The Beem account stored in settings (both keys encrypted).
pub async fn beem(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<BeemSettings>, SettingsError> {
    Ok(load(pool, cipher, "beem", &BEEM)
        .await?
        .map(|mut m| BeemSettings {
            api_key: take(&mut m, "api_key"),
            secret_key: take(&mut m, "secret_key"),
            source_addr: take(&mut m, "source_addr").expose().to_string(),
        }))
}

pub async fn set_beem(
    pool: &PgPool,
    cipher: &Cipher,
    b: &BeemSettings,
    actor: &str,
) -> Result<(), SettingsError> {
    let fields = [
        ("api_key", b.api_key.expose(), true),
        ("secret_key", b.secret_key.expose(), true),
        ("source_addr", b.source_addr.as_str(), false),
    ];
    store(pool, cipher, "beem", &fields, actor).await
}

/// The Beem account in force and where it comes from: the `BEEM_*` credentials when set (they
/// win), else the one in settings; `None` when neither has one.
pub async fn beem_in_force(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<(Source, BeemSettings)>, SettingsError> {
    let cipher = cipher_of(config);
    env_else_stored(config.beem.clone(), beem(pool, cipher.as_ref())).await
}

const AFRICASTALKING: [&str; 3] = ["username", "api_key", "sender_id"];

/// The Africa's Talking account stored in settings (the API key encrypted).
pub async fn africastalking(
    pool: &PgPool,
    cipher: Option<&Cipher>,
) -> Result<Option<AfricasTalkingSettings>, SettingsError> {
    let text = |m: &mut HashMap<String, Secret>, f: &str| take(m, f).expose().to_string();
    Ok(load(pool, cipher, "africastalking", &AFRICASTALKING)
        .await?
        .map(|mut m| AfricasTalkingSettings {
            username: text(&mut m, "username"),
            api_key: take(&mut m, "api_key"),
            sender_id: text(&mut m, "sender_id"),
        }))
}

pub async fn set_africastalking(
    pool: &PgPool,
    cipher: &Cipher,
    a: &AfricasTalkingSettings,
    actor: &str,
) -> Result<(), SettingsError> {
    let fields = [
        ("username", a.username.as_str(), false),
        ("api_key", a.api_key.expose(), true),
        ("sender_id", a.sender_id.as_str(), false),
    ];
    store(pool, cipher, "africastalking", &fields, actor).await
}

/// The Africa's Talking account in force and where it comes from: the `AT_*` credentials when
/// set (they win), else the one in settings; `None` when neither has one.
pub async fn africastalking_in_force(
    pool: &PgPool,
    config: &Config,
) -> Result<Option<(Source, AfricasTalkingSettings)>, SettingsError> {
    let cipher = cipher_of(config);
    env_else_stored(
        config.africastalking.clone(),
        africastalking(pool, cipher.as_ref()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_comes_from_the_environment_whole_or_not_at_all() {
        assert!(env_group([("A", None), ("B", None)]).unwrap().is_none());
        assert_eq!(
            env_group([("A", Some("a".into())), ("B", Some("b".into()))]).unwrap(),
            Some(["a".to_string(), "b".to_string()])
        );
        assert!(matches!(
            env_group([("A", Some("a".into())), ("B", None)]),
            Err(SettingsError::IncompleteEnv("B"))
        ));
    }
}
