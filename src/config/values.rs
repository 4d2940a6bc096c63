//! The configuration's value types: a secret that never prints, and the public base URL every
//! callback URL is built from.

use url::Url;

/// A secret string: `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; call only where it is handed to a signer or a provider.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The service's public base (`PUBLIC_URL`), which may carry a path (`https://host/sms/`, behind a
/// proxy that strips it). Every URL handed to a provider or a browser is built by
/// [`PublicUrl::route`], and the Twilio signature check rebuilds the requested URL with it, so
/// they all keep that path alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(Url);

impl PublicUrl {
    /// `http(s)://` without a query or fragment (they would end up inside every callback URL).
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or a fragment".into());
        }
        Ok(PublicUrl(url))
    }

    /// The public URL of this service's route `path_and_query` (as the router sees it, starting
    /// with `/`): the base, its path kept, then the route. `https://host/sms/` and
    /// `/webhooks/twilio/status` give `https://host/sms/webhooks/twilio/status`.
    pub fn route(&self, path_and_query: &str) -> Url {
        let base = self.0.as_str().trim_end_matches('/');
        let route = path_and_query.trim_start_matches('/');
        Url::parse(&format!("{base}/{route}")).expect("a URL base and a route path make a URL")
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::PublicUrl;

    #[test]
    fn a_public_url_with_a_path_keeps_it_in_every_route() {
        for base in ["https://host.example/sms/", "https://host.example/sms"] {
            let url = PublicUrl::parse(base).unwrap();
            assert_eq!(
                url.route("/webhooks/twilio/status").as_str(),
                "https://host.example/sms/webhooks/twilio/status"
            );
            assert_eq!(
                url.route("/webhooks/twilio/status?m=1").as_str(),
                "https://host.example/sms/webhooks/twilio/status?m=1"
            );
        }
        let bare = PublicUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            bare.route("/webhooks/mpesa/abc").as_str(),
            "http://127.0.0.1:8080/webhooks/mpesa/abc"
        );
        let c = config(&[("PUBLIC_URL", "https://host.example/sms/")]).unwrap();
        assert_eq!(
            c.checkout_success_url,
            "https://host.example/sms/billing/success?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            c.checkout_cancel_url,
            "https://host.example/sms/billing/cancel"
        );
        for bad in ["https://h/?a=1", "https://h/#x", "ftp://h/"] {
            assert_eq!(
                config(&[("PUBLIC_URL", bad)]).unwrap_err().var,
                "PUBLIC_URL"
            );
        }
    }
}
