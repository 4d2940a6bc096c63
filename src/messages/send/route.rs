//! The route a new attempt takes (issue 19): the first in the message's routing rule that has
//! an account and whose circuit lets it through. A message whose previous attempt may have
//! reached a provider never comes here until that is resolved (`previous`): moving it to
//! another route could deliver it twice.

use std::time::Duration;

use super::Sending;
use crate::messages::Message;
use crate::providers::SmsGateway;
use crate::providers::answer::{RouteHealth, SendError, Sent};
use crate::queue::{JobError, JobResultExt};
use crate::routing::RouteName;

/// The route of an attempt.
pub(super) struct Chosen<'a> {
    pub(super) gateway: &'a SmsGateway,
    /// Whether its answer is told to the route's circuit: only where the rule offers another
    /// route to fail over to (Twilio alone, as by default, costs no circuit round trips).
    pub(super) watched: bool,
}

/// The account this attempt goes through: the first route of the message's rule that has an
/// account and whose circuit is closed (or lets this send probe it). When every such route is
/// open, the first of them anyway: with nowhere else to go, the message's own retries and
/// their backoff pace it, as with one route. Snoozes when no route of the rule has an account.
pub(super) async fn choose<'a>(s: &Sending<'a>, message: &Message) -> Result<Chosen<'a>, JobError> {
    let table = s.tables.table().await.retry()?;
    let routes = table.routes_for(message.company_id, &message.to);
    let configured: Vec<(RouteName, &'a SmsGateway)> = s.routes.offered(routes).collect();
    let Some(&(_, first)) = configured.first() else {
        tracing::warn!(alert = true, message = %message.id, ?routes,
            "no route of this message's rule has an account; it waits");
        return Err(JobError::Snooze(NO_ROUTE_RETRY));
    };
    if configured.len() == 1 {
        return Ok(Chosen {
            gateway: first,
            watched: false,
        });
    }
    for (route, gateway) in configured {
        if s.circuits.allows(route).await.retry()? {
            return Ok(Chosen {
                gateway,
                watched: true,
            });
        }
    }
    tracing::warn!(message = %message.id, ?routes, "every route of this message's rule is down; trying the first");
    Ok(Chosen {
        gateway: first,
        watched: true,
    })
}

/// How soon a message whose rule has no configured route looks again.
const NO_ROUTE_RETRY: Duration = Duration::from_secs(15);

/// Tells the attempt's route's circuit what the provider's answer says about the route. A Redis
/// error is logged: the outcome is written regardless.
pub(super) async fn report(s: &Sending<'_>, outcome: &Result<Sent, SendError>) {
    let route = s.gateway.route();
    let health = match outcome {
        Ok(_) => RouteHealth::Answered,
        Err(e) => e.route_health(),
    };
    let reason = || {
        outcome
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let told = match health {
        RouteHealth::Answered => s.circuits.succeeded(route).await,
        RouteHealth::Failing => s.circuits.failed(route, &reason()).await.map(drop),
        RouteHealth::Misconfigured => s.circuits.misconfigured(route, &reason()).await.map(drop),
        RouteHealth::Unknown => Ok(()),
    };
    if let Err(e) = told {
        tracing::warn!(%route, error = %e, "the route's circuit was not told of this answer");
    }
}
