//! The accounts in force for each route, as one snapshot of the providers holds them.

use super::RouteName;
use crate::config::{AfricasTalkingAccount, BeemAccount, Config};
use crate::pacing::Pace;
use crate::providers::SmsGateway;
use crate::providers::africastalking::AfricasTalkingClient;
use crate::providers::beem::BeemClient;

/// Every route's account. The Twilio route always has one: with no Twilio account configured,
/// the demo provider stands for it.
#[derive(Clone)]
pub struct SmsRoutes {
    pub twilio: SmsGateway,
    pub beem: Option<SmsGateway>,
    pub africastalking: Option<SmsGateway>,
}

impl SmsRoutes {
    /// `twilio` (or the demo) beside these Beem and Africa's Talking accounts (the ones in
    /// force), on the hosts `config` names.
    pub fn new(
        twilio: SmsGateway,
        config: &Config,
        beem: Option<&BeemAccount>,
        africastalking: Option<&AfricasTalkingAccount>,
    ) -> Self {
        let beem = beem.map(|b| {
            SmsGateway::beem(
                BeemClient::new(
                    config.beem_api_base.clone(),
                    config.beem_dlr_base.clone(),
                    b.api_key.expose(),
                    b.secret_key.clone(),
                    &b.source_addr,
                ),
                config.beem_max_in_flight,
            )
        });
        let africastalking = africastalking.map(|a| {
            SmsGateway::africastalking(
                AfricasTalkingClient::new(
                    config.africastalking_api_base.clone(),
                    &a.username,
                    a.api_key.clone(),
                    Some(a.sender_id.clone()),
                ),
                config.at_max_in_flight,
            )
        });
        SmsRoutes {
            twilio,
            beem,
            africastalking,
        }
    }

    /// Twilio (or the demo) alone.
    pub fn twilio_only(twilio: SmsGateway) -> Self {
        SmsRoutes {
            twilio,
            beem: None,
            africastalking: None,
        }
    }

    /// The account of `route`, if it has one.
    pub fn get(&self, route: RouteName) -> Option<&SmsGateway> {
        match route {
            RouteName::Twilio => Some(&self.twilio),
            RouteName::Beem => self.beem.as_ref(),
            RouteName::Africastalking => self.africastalking.as_ref(),
        }
    }

    /// Of a rule's `routes`, in order, those this deployment has an account for: where a new
    /// attempt may go (the send path then skips the ones whose circuit is open).
    pub fn offered<'g, 'r>(
        &'g self,
        routes: &'r [RouteName],
    ) -> impl Iterator<Item = (RouteName, &'g SmsGateway)> + use<'g, 'r> {
        routes
            .iter()
            .filter_map(|&route| self.get(route).map(|gateway| (route, gateway)))
    }

    /// Whether `route` can send for real (the demo provider does not count).
    pub fn configured(&self, route: RouteName) -> bool {
        self.get(route).is_some_and(|g| g.account().is_some())
    }

    /// The route's account in force for an attempt recorded as having gone through `account`
    /// (`None`: the demo's, or an attempt from before accounts were recorded). Where that
    /// route has no account now, the Twilio route's: the caller compares the accounts, and an
    /// attempt whose account is not in force is held, never sent elsewhere.
    pub fn for_attempt(&self, account: Option<&str>) -> &SmsGateway {
        account
            .and_then(|a| self.get(SmsGateway::route_of_account(a)))
            .unwrap_or(&self.twilio)
    }
}

/// Each route's pace at its sender (`pacing`): Twilio's from `TWILIO_MAX_PER_SECOND`, the bulk
/// routes' from `BEEM_MAX_PER_SECOND` and `AT_MAX_PER_SECOND`.
#[derive(Debug, Clone, Copy)]
pub struct RoutePaces {
    pub twilio: Pace,
    pub beem: Pace,
    pub africastalking: Pace,
}

impl RoutePaces {
    pub fn from_config(config: &Config) -> Self {
        RoutePaces {
            twilio: Pace::per_second(config.twilio_max_per_second),
            beem: Pace::per_second(config.beem_max_per_second),
            africastalking: Pace::per_second(config.at_max_per_second),
        }
    }

    pub fn get(&self, route: RouteName) -> Pace {
        match route {
            RouteName::Twilio => self.twilio,
            RouteName::Beem => self.beem,
            RouteName::Africastalking => self.africastalking,
        }
    }
}
