//! The fake providers together, and the environment that points the service at them: used
//! by the demo's in-process stack and by `copcca-sms fakes` (which `scripts/api-fuzz` runs next to
//! a real `serve`, so fuzzing never reaches an outside host).

use std::path::Path;

use crate::fakes::africastalking::{self as fake_at, FakeAfricasTalking};
use crate::fakes::beem::{self as fake_beem, FakeBeem};
use crate::fakes::daraja::{self, FakeDaraja};
use crate::fakes::stripe::{self as fake_stripe, FakeStripe};
use crate::fakes::twilio::{self as fake_twilio, FakeTwilio};
use crate::fakes::vodacom::{self as fake_vodacom, FakeVodacom};

pub struct FakeProviders {
    pub twilio: FakeTwilio,
    pub daraja: FakeDaraja,
    pub stripe: FakeStripe,
    pub vodacom: FakeVodacom,
    pub beem: FakeBeem,
    pub africastalking: FakeAfricasTalking,
}

impl FakeProviders {
    /// Binds each fake on its own loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let (twilio, daraja, stripe, vodacom, beem, africastalking) = tokio::try_join!(
            FakeTwilio::start(),
            FakeDaraja::start(),
            FakeStripe::start(),
            FakeVodacom::start(),
            FakeBeem::start(),
            FakeAfricasTalking::start(),
        )?;
        Ok(FakeProviders {
            twilio,
            daraja,
            stripe,
            vodacom,
            beem,
            africastalking,
        })
    }

    /// The provider variables of [`crate::config::Config`] that aim the service at these fakes,
    /// with the fakes' own credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TWILIO_API_BASE", self.twilio.base.to_string()),
            ("TWILIO_ACCOUNT_SID", fake_twilio::ACCOUNT_SID.into()),
            ("TWILIO_AUTH_TOKEN", fake_twilio::AUTH_TOKEN.into()),
            ("TWILIO_FROM", fake_twilio::FROM.into()),
            ("MPESA_API_BASE", self.daraja.base.to_string()),
            ("MPESA_CONSUMER_KEY", daraja::CONSUMER_KEY.into()),
            ("MPESA_CONSUMER_SECRET", daraja::CONSUMER_SECRET.into()),
            ("MPESA_SHORTCODE", daraja::SHORTCODE.into()),
            ("MPESA_PASSKEY", daraja::PASSKEY.into()),
            ("STRIPE_API_BASE", self.stripe.base.to_string()),
            ("STRIPE_SECRET_KEY", fake_stripe::SECRET_KEY.into()),
            ("STRIPE_WEBHOOK_SECRET", fake_stripe::WEBHOOK_SECRET.into()),
            ("VODACOM_API_BASE", self.vodacom.base.to_string()),
            ("VODACOM_API_KEY", fake_vodacom::API_KEY.into()),
            ("VODACOM_PUBLIC_KEY", fake_vodacom::PUBLIC_KEY.into()),
            (
                "VODACOM_SERVICE_PROVIDER_CODE",
                fake_vodacom::SERVICE_PROVIDER_CODE.into(),
            ),
            // The fake's sessions are live at once.
            ("VODACOM_SESSION_WAIT_SECS", "0".into()),
            ("BEEM_API_BASE", self.beem.base.to_string()),
            ("BEEM_DLR_BASE", self.beem.base.to_string()),
            ("BEEM_API_KEY", fake_beem::API_KEY.into()),
            ("BEEM_SECRET_KEY", fake_beem::SECRET_KEY.into()),
            ("BEEM_SOURCE_ADDR", fake_beem::SOURCE_ADDR.into()),
            ("AT_API_BASE", self.africastalking.base.to_string()),
            ("AT_USERNAME", fake_at::USERNAME.into()),
            ("AT_API_KEY", fake_at::API_KEY.into()),
            ("AT_SENDER_ID", fake_at::SENDER_ID.into()),
        ]
    }

    /// Writes [`Self::env`] as `NAME=value` lines (values are URLs and fixed test credentials, no
    /// quoting needed), complete or not at all: written aside, then renamed into place, so a
    /// script waiting for the file never reads half of it.
    pub fn write_env_file(&self, path: &Path) -> std::io::Result<()> {
        let text: String = self
            .env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)
    }
}
