//! `Config`'s `Debug`: every field, no secret (secrets as `Secret(***)`, the settings key as
//! `***`, a password inside a URL as `***`).

use url::Url;

use super::Config;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field does not compile until it is decided here how it
        // prints. Secrets print as `Secret(***)`, the settings key as `***`, and a password
        // inside a URL as `***`.
        let Config {
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
            twilio_api_base,
            stripe_api_base,
            mpesa_api_base,
            twilio,
            twilio_max_per_second,
            twilio_max_in_flight,
            beem_max_per_second,
            at_max_per_second,
            beem_max_in_flight,
            at_max_in_flight,
            send_concurrency,
            report_token_grace,
            twilio_timing,
            settings_reload,
            startup_wait,
            sweep_cron,
            stripe_secret_key,
            stripe_webhook_secret,
            mpesa_consumer_key,
            mpesa_consumer_secret,
            mpesa_shortcode,
            mpesa_passkey,
            mpesa_callback_token,
            vodacom_api_base,
            vodacom,
            vodacom_session_wait,
            beem_api_base,
            beem_dlr_base,
            beem,
            africastalking_api_base,
            africastalking,
            bank,
            checkout_success_url,
            checkout_cancel_url,
        } = self;
        f.debug_struct("Config")
            .field("environment", environment)
            .field("database_url", &without_password(database_url))
            .field("database_schema", database_schema)
            .field("redis_url", &without_password(redis_url))
            .field("redis_prefix", redis_prefix)
            .field("bind_addr", bind_addr)
            .field("public_url", &without_password(&public_url.to_string()))
            .field("jwt_secret", jwt_secret)
            .field("jwt_audience", jwt_audience)
            .field("settings_key", &settings_key.map(|_| "***"))
            .field("max_body_bytes", max_body_bytes)
            .field("webhook_rate_per_second", webhook_rate_per_second)
            .field("webhook_rate_burst", webhook_rate_burst)
            .field("client_address", client_address)
            .field("rejected_webhook_retention", rejected_webhook_retention)
            .field("metrics_cache", metrics_cache)
            .field("api_rate_per_second", api_rate_per_second)
            .field("api_rate_burst", api_rate_burst)
            .field("metrics_addr", metrics_addr)
            .field("log_format", log_format)
            .field(
                "twilio_api_base",
                &without_password(twilio_api_base.as_str()),
            )
            .field(
                "stripe_api_base",
                &without_password(stripe_api_base.as_str()),
            )
            .field("mpesa_api_base", &without_password(mpesa_api_base.as_str()))
            .field("twilio", twilio)
            .field("twilio_max_per_second", twilio_max_per_second)
            .field("twilio_max_in_flight", twilio_max_in_flight)
            .field("beem_max_per_second", beem_max_per_second)
            .field("report_token_grace", report_token_grace)
            .field("at_max_per_second", at_max_per_second)
            .field("beem_max_in_flight", beem_max_in_flight)
            .field("at_max_in_flight", at_max_in_flight)
            .field("send_concurrency", send_concurrency)
            .field("twilio_timing", twilio_timing)
            .field("settings_reload", settings_reload)
            .field("startup_wait", startup_wait)
            .field("sweep_cron", sweep_cron)
            .field("stripe_secret_key", stripe_secret_key)
            .field("stripe_webhook_secret", stripe_webhook_secret)
            .field("mpesa_consumer_key", mpesa_consumer_key)
            .field("mpesa_consumer_secret", mpesa_consumer_secret)
            .field("mpesa_shortcode", mpesa_shortcode)
            .field("mpesa_passkey", mpesa_passkey)
            .field("mpesa_callback_token", mpesa_callback_token)
            .field(
                "vodacom_api_base",
                &without_password(vodacom_api_base.as_str()),
            )
            .field("vodacom", vodacom)
            .field("vodacom_session_wait", vodacom_session_wait)
            .field("beem_api_base", &without_password(beem_api_base.as_str()))
            .field("beem_dlr_base", &without_password(beem_dlr_base.as_str()))
            .field("beem", beem)
            .field(
                "africastalking_api_base",
                &without_password(africastalking_api_base.as_str()),
            )
            .field("africastalking", africastalking)
            .field("bank", bank)
            .field(
                "checkout_success_url",
                &without_password(checkout_success_url),
            )
            .field(
                "checkout_cancel_url",
                &without_password(checkout_cancel_url),
            )
            .finish()
    }
}

/// `url` with the password of its user info (`postgres://app:PASSWORD@db/...`) replaced by `***`;
/// a value that does not parse as a URL is not printed at all.
fn without_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;

    #[test]
    fn debug_prints_no_secret_of_any_kind() {
        let key = "9c".repeat(32);
        let secrets = [
            (
                "DATABASE_URL",
                "postgres://app:DbPassw0rdNeverShown@db:5432/sms",
                "DbPassw0rdNeverShown",
            ),
            (
                "REDIS_URL",
                "rediss://default:RedisPassNeverShown@cache:6380",
                "RedisPassNeverShown",
            ),
            (
                "JWT_SECRET",
                "jwt-secret-never-shown-0123456789abcdef",
                "jwt-secret-never-shown",
            ),
            ("SETTINGS_KEY", key.as_str(), key.as_str()),
            (
                "TWILIO_ACCOUNT_SID",
                "AC0123456789abcdef0123456789abcdef",
                "AC0123456789abcdef",
            ),
            (
                "TWILIO_AUTH_TOKEN",
                "TwilioTokenNeverShown",
                "TwilioTokenNeverShown",
            ),
            ("TWILIO_FROM", "COPCCA", "COPCCA"),
            (
                "STRIPE_SECRET_KEY",
                "sk_live_NeverShown",
                "sk_live_NeverShown",
            ),
            (
                "STRIPE_WEBHOOK_SECRET",
                "whsec_NeverShown",
                "whsec_NeverShown",
            ),
            (
                "MPESA_CONSUMER_KEY",
                "MpesaKeyNeverShown",
                "MpesaKeyNeverShown",
            ),
            (
                "MPESA_CONSUMER_SECRET",
                "MpesaSecretNeverShown",
                "MpesaSecretNeverShown",
            ),
            (
                "MPESA_PASSKEY",
                "MpesaPasskeyNeverShown",
                "MpesaPasskeyNeverShown",
            ),
            (
                "MPESA_CALLBACK_TOKEN",
                "MpesaCallbackNeverShown",
                "MpesaCallbackNeverShown",
            ),
            (
                "BEEM_API_KEY",
                "BeemApiKeyNeverShown",
                "BeemApiKeyNeverShown",
            ),
            (
                "BEEM_SECRET_KEY",
                "BeemSecretNeverShown",
                "BeemSecretNeverShown",
            ),
            ("BEEM_SOURCE_ADDR", "COPCCA", "COPCCA"),
            ("AT_USERNAME", "copcca", "copcca"),
            ("AT_API_KEY", "atsk_NeverShown", "atsk_NeverShown"),
            ("AT_SENDER_ID", "COPCCA", "COPCCA"),
            (
                "STRIPE_API_BASE",
                "https://proxy:StripeProxyPassNeverShown@stripe.example",
                "StripeProxyPassNeverShown",
            ),
        ];
        let vars: Vec<(&str, &str)> = secrets.iter().map(|(k, v, _)| (*k, *v)).collect();
        let c = config(&vars).unwrap();
        let printed = format!("{c:?}");
        let not_secret = [
            "TWILIO_ACCOUNT_SID",
            "TWILIO_FROM",
            "BEEM_SOURCE_ADDR",
            "AT_USERNAME",
            "AT_SENDER_ID",
        ];
        for (var, _, secret) in secrets.iter().filter(|(k, ..)| !not_secret.contains(k)) {
            assert!(!printed.contains(secret), "{var} printed: {printed}");
        }
        // The key's bytes, in the form an array prints.
        let bytes = format!("{:?}", c.settings_key.unwrap());
        assert!(
            !printed.contains(&bytes[1..40]),
            "SETTINGS_KEY printed: {printed}"
        );
        // What is not secret still reads.
        assert!(
            printed.contains("postgres://app:***@db:5432/sms"),
            "{printed}"
        );
        assert!(printed.contains("AC0123456789abcdef"));
    }
}
