//! Environment -> typed [`Config`], parsed once at start-up (DESIGN.md section 8).
//!
//! Every variable has a local default so a newcomer needs no configuration, except where a
//! default would be unsafe in production (`COPCCA_ENV=production` requires the secrets).
//! A malformed value stops start-up with a [`ConfigError`] naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

mod providers;
mod redacted;
mod sms_routes;
mod values;
mod vars;
mod vodacom;

pub use providers::{BankAccount, TwilioEnv, TwilioTiming};
pub use sms_routes::{AfricasTalkingAccount, BeemAccount, check_at_username, check_sender};
pub use values::{PublicUrl, Secret};
pub use vars::parse_settings_key;
use vars::{Vars, bad, is_identifier, parse_key, parse_url};
pub use vodacom::{VodacomAccount, check_public_key as check_vodacom_public_key};

/// Where the client address that ingress limits are keyed by comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddress {
    /// The TCP peer (no proxy in front, or one that does not say who called).
    Peer,
    /// A header our proxies append to (`X-Forwarded-For`): the entry `hops` from the right,
    /// the address the outermost of our `hops` proxies saw. Entries further left are written
    /// by the caller and never believed. Without the header (a request that bypassed the
    /// proxies), the peer.
    Header { name: String, hops: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `Debug` is written out below: it prints no secret, nor the passwords of connection URLs.
#[derive(Clone)]
pub struct Config {
    pub environment: Environment,
    pub database_url: String,
    /// PostgreSQL schema holding every object, so the service can share the CRM's database.
    pub database_schema: String,
    pub redis_url: String,
    /// Prefix of every Redis key this deployment uses.
    pub redis_prefix: String,
    pub bind_addr: SocketAddr,
    /// Base of the callback URLs given to providers (see [`PublicUrl::route`]).
    pub public_url: PublicUrl,
    pub jwt_secret: Secret,
    pub jwt_audience: String,
    /// AES-256-GCM key for provider secrets at rest.
    pub settings_key: Option<[u8; 32]>,
    pub max_body_bytes: usize,
    /// Webhook requests per second each client address may make to `/webhooks` in this process
    /// (0: no limit), and how many at once above it.
    pub webhook_rate_per_second: u32,
    pub webhook_rate_burst: u32,
    /// Where the client address of a request comes from.
    pub client_address: ClientAddress,
    /// How long rejected webhooks are kept (the reconciler deletes older ones).
    pub rejected_webhook_retention: std::time::Duration,
    /// How long `/metrics` serves the same PostgreSQL figures before reading them again.
    pub metrics_cache: std::time::Duration,
    /// Requests per second each company may make to `/v1` (0: no limit), held fleet-wide.
    pub api_rate_per_second: u32,
    /// Requests a company may make at once above that rate.
    pub api_rate_burst: u32,
    /// Where `work` and `schedule` serve their own `/metrics` (unset: they do not).
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub twilio_api_base: Url,
    pub stripe_api_base: Url,
    pub mpesa_api_base: Url,
    pub twilio: Option<TwilioEnv>,
    /// The account/sender's send rate, held fleet-wide.
    pub twilio_max_per_second: u32,
    /// Requests in flight to the account at most, held fleet-wide.
    pub twilio_max_in_flight: u32,
    /// `BEEM_MAX_PER_SECOND`: message segments a second through Beem, fleet-wide (default 50).
    pub beem_max_per_second: u32,
    /// `AT_MAX_PER_SECOND`: message segments a second through Africa's Talking (default 50).
    pub at_max_per_second: u32,
    /// `BEEM_MAX_IN_FLIGHT`: grouped requests in flight to Beem at most, fleet-wide (default 2).
    pub beem_max_in_flight: u32,
    /// `AT_MAX_IN_FLIGHT`: grouped requests in flight to Africa's Talking at most (default 2).
    pub at_max_in_flight: u32,
    /// `SEND_CONCURRENCY`: send jobs a worker process runs at once (default 256, 1-1024). Their
    /// reads and writes are grouped into shared statements, so more at once makes fewer, larger
    /// statements and less CPU per message (see the README's sending bench).
    pub send_concurrency: usize,
    /// `REPORT_TOKEN_GRACE_SECS`: how long a bulk route's previous report URL still takes
    /// reports after its secret changed (default a day).
    pub report_token_grace: Duration,
    /// How the sends and callbacks of the Twilio account are timed.
    pub twilio_timing: TwilioTiming,
    /// How often every running process looks for changed operator settings.
    pub settings_reload: Duration,
    /// How long `serve`, `work`, `schedule` and `run` wait at start for PostgreSQL and Redis.
    pub startup_wait: Duration,
    /// When `schedule` enqueues the overdue-debt sweep: cron with seconds first, in UTC.
    pub sweep_cron: String,
    pub stripe_secret_key: Option<Secret>,
    pub stripe_webhook_secret: Option<Secret>,
    pub mpesa_consumer_key: Option<Secret>,
    pub mpesa_consumer_secret: Option<Secret>,
    pub mpesa_shortcode: Option<String>,
    pub mpesa_passkey: Option<Secret>,
    pub mpesa_callback_token: Option<Secret>,
    /// `VODACOM_API_BASE`: the Vodacom M-Pesa OpenAPI host (or the sandbox's path under it).
    pub vodacom_api_base: Url,
    /// The Vodacom Tanzania M-Pesa account (`VODACOM_*`: all or none).
    pub vodacom: Option<VodacomAccount>,
    /// How long a new Vodacom session is left before it is used.
    pub vodacom_session_wait: Duration,
    /// `BEEM_API_BASE`: Beem's sending and balance host.
    pub beem_api_base: Url,
    /// `BEEM_DLR_BASE`: Beem's delivery-report pull host.
    pub beem_dlr_base: Url,
    /// The Beem route (`BEEM_*`: credentials all or none).
    pub beem: Option<BeemAccount>,
    /// `AT_API_BASE`: Africa's Talking's host.
    pub africastalking_api_base: Url,
    /// The Africa's Talking route (`AT_*`: credentials all or none).
    pub africastalking: Option<AfricasTalkingAccount>,
    /// The account customers pay bank transfers into.
    pub bank: BankAccount,
    /// Where Stripe Checkout sends the buyer back to (`{CHECKOUT_SESSION_ID}` is Stripe's).
    pub checkout_success_url: String,
    pub checkout_cancel_url: String,
}

/// A variable that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

/// Used only outside production, with a warning at start-up.
pub const DEV_JWT_SECRET: &str = "copcca-sms-development-jwt-secret-not-for-production";
const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(&get);
        let var = |k: &str| vars.var(k);
        let or = |k: &str, default: &str| vars.or(k, default);

        let environment = match or("COPCCA_ENV", "development").as_str() {
            "development" => Environment::Development,
            "production" => Environment::Production,
            other => {
                return Err(bad(
                    "COPCCA_ENV",
                    format!("{other:?} is not development or production"),
                ));
            }
        };
        let production = environment == Environment::Production;

        let database_url = or(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/copcca_sms",
        );
        let parsed = Url::parse(&database_url).map_err(|e| bad("DATABASE_URL", e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(bad("DATABASE_URL", "must start with postgres://".into()));
        }
        let database_schema = or("DATABASE_SCHEMA", "public");
        if !is_identifier(&database_schema) {
            return Err(bad(
                "DATABASE_SCHEMA",
                "must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)".into(),
            ));
        }

        let redis_url = or("REDIS_URL", "redis://127.0.0.1:6379");
        let parsed = Url::parse(&redis_url).map_err(|e| bad("REDIS_URL", e.to_string()))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(bad(
                "REDIS_URL",
                "must start with redis:// or rediss://".into(),
            ));
        }
        let redis_prefix = or("REDIS_PREFIX", "copcca");
        if redis_prefix.contains(['{', '}', ' ']) {
            return Err(bad(
                "REDIS_PREFIX",
                "must not contain braces or spaces".into(),
            ));
        }

        let bind_addr = or("BIND_ADDR", "127.0.0.1:8080")
            .parse()
            .map_err(|e| bad("BIND_ADDR", format!("not a socket address: {e}")))?;
        let public_url = PublicUrl::parse(&or("PUBLIC_URL", "http://127.0.0.1:8080"))
            .map_err(|problem| bad("PUBLIC_URL", problem))?;

        let jwt_secret = match var("JWT_SECRET") {
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                return Err(bad(
                    "JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                ));
            }
            Some(s) => Secret::new(s),
            None if production => {
                return Err(bad("JWT_SECRET", "is required in production".into()));
            }
            None => Secret::new(DEV_JWT_SECRET),
        };
        let jwt_audience = or("JWT_AUDIENCE", "authenticated");

        let settings_key = match var("SETTINGS_KEY") {
            Some(hex_key) => Some(parse_key(&hex_key)?),
            None if production => {
                return Err(bad("SETTINGS_KEY", "is required in production".into()));
            }
            None => None,
        };

        let max_body_bytes = or("MAX_BODY_BYTES", "1048576")
            .parse::<usize>()
            .ok()
            .filter(|n| (1024..=64 * 1024 * 1024).contains(n))
            .ok_or_else(|| {
                bad(
                    "MAX_BODY_BYTES",
                    "must be a number of bytes between 1024 and 67108864".into(),
                )
            })?;
        let api_rate_per_second = vars.number("API_RATE_PER_SECOND", "20", 0..=100_000)?;
        let api_rate_burst = vars.number("API_RATE_BURST", "40", 1..=1_000_000)?;
        let webhook_rate_per_second = vars.number("WEBHOOK_RATE_PER_SECOND", "50", 0..=100_000)?;
        let webhook_rate_burst = vars.number("WEBHOOK_RATE_BURST", "500", 1..=1_000_000)?;
        let client_address = match var("TRUSTED_PROXY_HEADER") {
            None => ClientAddress::Peer,
            Some(name) => {
                if !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(bad(
                        "TRUSTED_PROXY_HEADER",
                        format!("{name:?} is not a header name"),
                    ));
                }
                ClientAddress::Header {
                    name: name.to_ascii_lowercase(),
                    hops: vars.number("TRUSTED_PROXY_HOPS", "1", 1..=10)? as usize,
                }
            }
        };
        let rejected_webhook_retention = std::time::Duration::from_secs(
            u64::from(vars.number("REJECTED_WEBHOOK_RETENTION_DAYS", "30", 1..=3650)?) * 86_400,
        );
        let metrics_cache = std::time::Duration::from_secs(u64::from(vars.number(
            "METRICS_CACHE_SECS",
            "30",
            0..=3600,
        )?));
        let metrics_addr = var("METRICS_ADDR")
            .map(|a| {
                a.parse()
                    .map_err(|e| bad("METRICS_ADDR", format!("not a socket address: {e}")))
            })
            .transpose()?;
        let log_format = match or("LOG_FORMAT", "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(bad("LOG_FORMAT", format!("{other:?} is not text or json"))),
        };

        let twilio = TwilioEnv::read(&vars)?;

        let twilio_timing = TwilioTiming::read(&vars)?;
        let settings_reload = match var("SETTINGS_RELOAD_MS") {
            None => Duration::from_secs(5),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (50..=10_000).contains(n))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    bad(
                        "SETTINGS_RELOAD_MS",
                        "must be a number of milliseconds between 50 and 10000".into(),
                    )
                })?,
        };

        let startup_wait = Duration::from_secs(u64::from(vars.number(
            "STARTUP_WAIT_SECS",
            "60",
            0..=3600,
        )?));

        let checkout_success_url = or(
            "CHECKOUT_SUCCESS_URL",
            public_url
                .route("/billing/success?session_id={CHECKOUT_SESSION_ID}")
                .as_str(),
        );
        let checkout_cancel_url = or(
            "CHECKOUT_CANCEL_URL",
            public_url.route("/billing/cancel").as_str(),
        );

        Ok(Config {
            environment,
            database_url,
            database_schema,
            redis_url,
            redis_prefix,
            bind_addr,
            public_url,
            jwt_secret,
            jwt_audience,
            settings_key,
            max_body_bytes,
            webhook_rate_per_second,
            webhook_rate_burst,
            client_address,
            rejected_webhook_retention,
            metrics_cache,
            api_rate_per_second,
            api_rate_burst,
            metrics_addr,
            log_format,
            twilio_api_base: parse_url(
                "TWILIO_API_BASE",
                &or("TWILIO_API_BASE", "https://api.twilio.com"),
            )?,
            stripe_api_base: parse_url(
                "STRIPE_API_BASE",
                &or("STRIPE_API_BASE", "https://api.stripe.com"),
            )?,
            mpesa_api_base: parse_url(
                "MPESA_API_BASE",
                &or("MPESA_API_BASE", "https://sandbox.safaricom.co.ke"),
            )?,
            twilio,
            twilio_max_per_second: providers::twilio_max_per_second(&vars)?,
            twilio_max_in_flight: providers::twilio_max_in_flight(&vars)?,
            beem_max_per_second: providers::bulk_max_per_second(&vars, "BEEM_MAX_PER_SECOND")?,
            at_max_per_second: providers::bulk_max_per_second(&vars, "AT_MAX_PER_SECOND")?,
            beem_max_in_flight: providers::bulk_max_in_flight(&vars, "BEEM_MAX_IN_FLIGHT")?,
            at_max_in_flight: providers::bulk_max_in_flight(&vars, "AT_MAX_IN_FLIGHT")?,
            send_concurrency: vars.number("SEND_CONCURRENCY", "256", 1..=1024)? as usize,
            report_token_grace: vars.secs("REPORT_TOKEN_GRACE_SECS", 86_400, 0..=30 * 86_400)?,
            twilio_timing,
            settings_reload,
            startup_wait,
            sweep_cron: {
                // 06:00 UTC is 09:00 in Dar es Salaam and Nairobi (EAT, no daylight saving).
                let expr = or("SWEEP_CRON", "0 0 6 * * *");
                <cron::Schedule as std::str::FromStr>::from_str(&expr).map_err(|e| {
                    bad(
                        "SWEEP_CRON",
                        format!("not a cron schedule (seconds first, e.g. \"0 0 6 * * *\"): {e}"),
                    )
                })?;
                expr
            },
            stripe_secret_key: var("STRIPE_SECRET_KEY").map(Secret::new),
            stripe_webhook_secret: var("STRIPE_WEBHOOK_SECRET").map(Secret::new),
            mpesa_consumer_key: var("MPESA_CONSUMER_KEY").map(Secret::new),
            mpesa_consumer_secret: var("MPESA_CONSUMER_SECRET").map(Secret::new),
            mpesa_shortcode: var("MPESA_SHORTCODE"),
            mpesa_passkey: var("MPESA_PASSKEY").map(Secret::new),
            mpesa_callback_token: var("MPESA_CALLBACK_TOKEN").map(Secret::new),
            vodacom_api_base: vodacom::api_base(&vars)?,
            vodacom: VodacomAccount::read(&vars)?,
            vodacom_session_wait: vodacom::session_wait(&vars)?,
            beem_api_base: sms_routes::beem_api_base(&vars)?,
            beem_dlr_base: sms_routes::beem_dlr_base(&vars)?,
            beem: BeemAccount::read(&vars)?,
            africastalking_api_base: sms_routes::africastalking_api_base(&vars)?,
            africastalking: AfricasTalkingAccount::read(&vars)?,
            bank: BankAccount::read(&vars),
            checkout_success_url,
            checkout_cancel_url,
        })
    }

    /// True when the built-in development JWT secret is in use (start-up warns).
    pub fn uses_dev_jwt_secret(&self) -> bool {
        self.jwt_secret.expose() == DEV_JWT_SECRET
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(super) fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_point_at_local_services() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.database_url,
            "postgres://postgres@127.0.0.1:5432/copcca_sms"
        );
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8080");
        assert!(c.uses_dev_jwt_secret());
        assert!(c.twilio.is_none());
        assert_eq!(c.sweep_cron, "0 0 6 * * *");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("REDIS_URL", "not a url")], "REDIS_URL"),
            (&[("BIND_ADDR", "localhost")], "BIND_ADDR"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("SETTINGS_KEY", "abcd")], "SETTINGS_KEY"),
            (&[("API_RATE_PER_SECOND", "-1")], "API_RATE_PER_SECOND"),
            (&[("API_RATE_BURST", "0")], "API_RATE_BURST"),
            (&[("METRICS_ADDR", "nowhere")], "METRICS_ADDR"),
            (&[("MAX_BODY_BYTES", "lots")], "MAX_BODY_BYTES"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("DATABASE_SCHEMA", "Bad-Name")], "DATABASE_SCHEMA"),
            (
                &[("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")],
                "TWILIO_AUTH_TOKEN",
            ),
            (&[("COPCCA_ENV", "production")], "JWT_SECRET"),
            (&[("SWEEP_CRON", "every morning")], "SWEEP_CRON"),
        ];
        for (vars, expected) in cases {
            let err = config(vars).unwrap_err();
            assert_eq!(err.var, *expected, "{vars:?} gave {err}");
            assert!(err.to_string().contains(expected));
        }
    }

    #[test]
    fn production_requires_settings_key_too() {
        let secret = "x".repeat(40);
        let err = config(&[("COPCCA_ENV", "production"), ("JWT_SECRET", &secret)]).unwrap_err();
        assert_eq!(err.var, "SETTINGS_KEY");
        let key = "ab".repeat(32);
        let ok = config(&[
            ("COPCCA_ENV", "production"),
            ("JWT_SECRET", &secret),
            ("SETTINGS_KEY", &key),
        ])
        .unwrap();
        assert_eq!(ok.settings_key, Some([0xab; 32]));
    }

    #[test]
    fn the_settings_key_may_be_hex_or_base64() {
        let hex_key = "ab".repeat(32);
        let b64 = "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=";
        assert_eq!(parse_settings_key(&hex_key), Ok([0xab; 32]));
        assert_eq!(parse_settings_key(b64), Ok([0xab; 32]));
        assert!(parse_settings_key("q6urq6s=").is_err(), "too short");
        assert!(parse_settings_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn send_concurrency_has_a_default_and_a_range() {
        assert_eq!(config(&[]).unwrap().send_concurrency, 256);
        assert_eq!(
            config(&[("SEND_CONCURRENCY", "64")])
                .unwrap()
                .send_concurrency,
            64
        );
        for bad in ["0", "1025", "many"] {
            let err = config(&[("SEND_CONCURRENCY", bad)]).unwrap_err();
            assert_eq!(err.var, "SEND_CONCURRENCY", "{bad}");
        }
    }

    #[test]
    fn the_api_rate_limit_has_defaults_and_can_be_turned_off() {
        let c = config(&[]).unwrap();
        assert_eq!((c.api_rate_per_second, c.api_rate_burst), (20, 40));
        let off = config(&[("API_RATE_PER_SECOND", "0")]).unwrap();
        assert_eq!(off.api_rate_per_second, 0);
    }

    #[test]
    fn the_client_address_is_the_peer_unless_a_proxy_header_is_trusted() {
        assert_eq!(config(&[]).unwrap().client_address, ClientAddress::Peer);
        let c = config(&[("TRUSTED_PROXY_HEADER", "X-Forwarded-For")]).unwrap();
        assert_eq!(
            c.client_address,
            ClientAddress::Header {
                name: "x-forwarded-for".into(),
                hops: 1
            }
        );
        let err = config(&[("TRUSTED_PROXY_HEADER", "bad header")]).unwrap_err();
        assert_eq!(err.var, "TRUSTED_PROXY_HEADER");
        let err = config(&[
            ("TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
            ("TRUSTED_PROXY_HOPS", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "TRUSTED_PROXY_HOPS");
    }
}
